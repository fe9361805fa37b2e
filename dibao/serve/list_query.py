"""One work list of a run as a caller may read it: their counties only, filtered and sorted.

``GET /candidates`` (JSON page or CSV) and the web page ``/ui/lists`` (HTML page or XLSX download) both call
``list_frame``, so what a caseworker sees on the page, downloads and gets from the API is the same rows; masking
is applied afterwards by ``masking.candidate_view`` (page and JSON) or ``masking.mask_list_frame`` (XLSX).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl
from fastapi import Request

from dibao.publish.contract import ListName
from dibao.serve import deps
from dibao.serve.tokens import Principal

# Sort keys: a column, descending with a leading '-'. The API offers the first four (its schema is fixed).
SORT_KEYS = ("first_seen", "-first_seen", "town", "-town", "subject_id", "-subject_id", "grace_until",
             "-grace_until")


@dataclass(frozen=True)
class ListFilter:
    """What a caller narrows a list to. ``grace_within_days``: 应退尽退 households whose 渐退 period ends within
    that many days of the run date (ended ones excluded)."""

    type: ListName = "exit"
    county: str | None = None
    township: str | None = None
    reason: str | None = None
    first_seen_from: dt.date | None = None
    first_seen_to: dt.date | None = None
    grace_within_days: int | None = None
    sort: str = "first_seen"


def list_frame(request: Request, who: Principal, want: ListFilter, date: dt.date | None = None
               ) -> tuple[dt.date, pl.DataFrame]:
    """The run asked for (404 when none) and its list ``want.type``: rows of ``who``'s counties (all for an admin),
    filtered and sorted (ties by ``subject_id``), unmasked."""
    run = deps.run_date(request, date)
    frame = deps.scoped(deps.lists(request, run)[want.type], None if who.is_admin else who.counties, want.county)
    if not frame.width:
        return run, frame
    if want.township is not None:
        frame = frame.filter(pl.col("town") == want.township)
    if want.reason is not None:
        frame = frame.filter(pl.col("code") == want.reason if want.type == "flag"
                             else pl.col("reasons").list.contains(want.reason))
    if want.first_seen_from is not None:
        frame = frame.filter(pl.col("first_seen") >= want.first_seen_from)
    if want.first_seen_to is not None:
        frame = frame.filter(pl.col("first_seen") <= want.first_seen_to)
    if want.grace_within_days is not None:
        if "grace_until" not in frame.columns:
            frame = frame.clear()
        else:
            last = run + dt.timedelta(days=want.grace_within_days)
            frame = frame.filter(pl.col("grace_until").is_between(run, last))
    by = want.sort.lstrip("-")
    if by not in frame.columns:
        by = "first_seen"
    return run, frame.sort([by, "subject_id"], descending=[want.sort.startswith("-"), False], nulls_last=True)

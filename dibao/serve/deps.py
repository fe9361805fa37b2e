"""What a route reads from the application: the served snapshot, a run's files, the run a request names."""

from __future__ import annotations

import datetime as dt

import polars as pl
from fastapi import Request

from dibao.serve.problems import NO_RUN_DETAIL, ApiProblem, no_run_for
from dibao.serve.snapshot import RunSnapshot
from dibao.serve.watcher import SnapshotHolder


def holder(request: Request) -> SnapshotHolder:
    result: SnapshotHolder = request.app.state.snapshots
    return result


def snapshot(request: Request) -> RunSnapshot:
    """The served run; 503 before the first run is published."""
    snap = holder(request).snapshot
    if snap is None:
        raise ApiProblem(503, NO_RUN_DETAIL, type_="urn:dibao:problem:no-run")
    return snap


def run_date(request: Request, date: dt.date | None) -> dt.date:
    """The run asked for (default: the served one); 404 when no such run is published."""
    if date is None:
        return snapshot(request).date
    if holder(request).files.stamp(date) is None:
        raise ApiProblem(404, no_run_for(date.isoformat()))
    return date


def lists(request: Request, date: dt.date) -> dict[str, pl.DataFrame]:
    """The three lists of a run: the served snapshot's when it is that run, else read (and cached)."""
    snap = holder(request).snapshot
    return snap.lists if snap is not None and snap.date == date else holder(request).files.lists(date)


def scoped(frame: pl.DataFrame, counties: frozenset[str] | None, county: str | None) -> pl.DataFrame:
    """Rows of the caller's counties (``None``: all, an admin), narrowed to ``county`` when given."""
    if not frame.width:
        return frame
    if counties is not None:
        frame = frame.filter(pl.col("county_code").is_in(sorted(counties)))
    if county is not None:
        frame = frame.filter(pl.col("county_code") == county)
    return frame


def page(frame: pl.DataFrame, number: int, size: int) -> list[dict[str, object]]:
    return frame.slice((number - 1) * size, size).to_dicts() if frame.width else []

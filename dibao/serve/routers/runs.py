"""Published runs and what changed in each."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import polars as pl
from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam

from dibao.publish.contract import LIST_FILES, LISTS, Change, ListName
from dibao.serve import deps
from dibao.serve.auth import Audited, reader
from dibao.serve.masking import change_view
from dibao.serve.models import DiffPage, RunInfo
from dibao.serve.problems import AUTH_ERRORS, NO_RUN_ERROR, PERSONAL_ERRORS
from dibao.serve.tokens import Principal
from dibao.serve.watcher import SnapshotHolder

router = APIRouter()


def run_info(holder: SnapshotHolder, date: dt.date, served: dt.date | None) -> dict[str, Any] | None:
    """One published run as ``GET /runs`` and the page /ui/runs list it (None: its manifest cannot be read)."""
    try:
        m = holder.files.manifest(date)
    except (OSError, ValueError):
        return None
    decisions = m.get("decisions") or {}
    previous = m.get("previous_run")
    return {
        "date": date, "served": date == served,
        "previous_run": dt.date.fromisoformat(previous) if isinstance(previous, str) else None,
        "counts": {LIST_FILES[name].name: decisions.get(LIST_FILES[name].name) for name in LISTS},
        "changes": {k: int(v) for k, v in (m.get("changes") or {}).items()},
        "summary": m.get("summary"), "rejected_rows": m.get("rejected_rows"),
        "skipped": m.get("skipped") or {}, "content_sha256": m.get("content_sha256"),
    }


def diff_frame(request: Request, who: Principal, date: dt.date | None, list_: ListName | None = None,
               change: Change | None = None, county: str | None = None) -> tuple[dt.date, pl.DataFrame]:
    """A run's changes (404 when no such run) of ``who``'s counties, unmasked: what ``/runs/{date}/diff`` and the
    page /ui/runs show (masked by ``masking.change_view``)."""
    run = deps.run_date(request, date)
    frame = deps.scoped(deps.holder(request).files.diff(run), None if who.is_admin else who.counties, county)
    if frame.width:
        if list_ is not None:
            frame = frame.filter(pl.col("list") == list_)
        if change is not None:
            frame = frame.filter(pl.col("change") == change)
    return run, frame


@router.get("/runs", response_model=list[RunInfo], tags=["runs"], summary="已发布的运行 / published runs",
            responses=AUTH_ERRORS)
def runs(request: Request,
         who: Annotated[Principal, Depends(reader(None, personal=False))]) -> list[dict[str, Any]]:
    """Every published run, oldest first, with its counts, changes and summary (aggregates only)."""
    holder = deps.holder(request)
    snap = holder.snapshot
    infos = [run_info(holder, d, snap.date if snap else None) for d in holder.files.dates()]
    return [i for i in infos if i is not None]


@router.get("/runs/{date}/diff", response_model=DiffPage, tags=["runs"],
            summary="与上次运行相比的变化 / changes since the previous run",
            responses={**PERSONAL_ERRORS, **NO_RUN_ERROR})
def diff(
    request: Request,
    date: Annotated[dt.date, PathParam(description="运行日期 / run date, YYYY-MM-DD")],
    who: Annotated[Principal, Depends(reader("diff", personal=True))],
    list: Annotated[ListName | None, Query(description="名单 / list")] = None,
    change: Annotated[Change | None, Query(description="变化 / change")] = None,
    county: Annotated[str | None, Query(pattern=r"^[0-9]{6}$", description="县级区划代码")] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    size: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """Items added to, resolved from or changed on each list in that run; a caseworker sees their counties."""
    with Audited(request, who, "diff") as audited:
        run, frame = diff_frame(request, who, date, list, change, county)
        items = [change_view(row, who, run) for row in deps.page(frame, page, size)]
        audited.count = len(items)
        return {"run": run, "total": frame.height, "page": page, "size": size, "items": items}

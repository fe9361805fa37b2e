"""Aggregates for analysts: coverage rates, their trend across runs, list counts (no personal data).

Small figures are withheld for roles that do not see exact ones (``dibao/serve/statistics_tables.py``): each run's
table is suppressed whole, once per audience, and only then filtered, so a filter cannot change which cells are
withheld."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import polars as pl
from fastapi import APIRouter, Depends, Query, Request

from dibao.publish.contract import CoverageLevel
from dibao.serve import deps
from dibao.serve.auth import reader
from dibao.serve.models import CountRow, CoverageRow
from dibao.serve.problems import AUTH_ERRORS, NO_RUN_ERROR
from dibao.serve.statistics_tables import Disclosure, count_rows, coverage_frame, suppress_counts, suppress_coverage
from dibao.serve.tokens import Principal

router = APIRouter()

_WITHHELD = ("Figures below the minimum cell size (default 5) are withheld as null with `suppressed: true`, with "
             "the cells that would give them back from totals; admins see exact figures, caseworkers exact "
             "figures of their own counties.")


def _disclosure(request: Request) -> Disclosure:
    result: Disclosure = request.app.state.disclosure
    return result


def coverage_table(request: Request, who: Principal, run: dt.date) -> pl.DataFrame:
    """The run's whole coverage table as ``who`` may see it (computed once per run and audience)."""
    holder = deps.holder(request)
    disclosure = _disclosure(request)
    exact = disclosure.policy.exact_counties(who)

    def make() -> pl.DataFrame:
        snap = holder.snapshot
        frame = snap.coverage if snap is not None and snap.date == run else holder.files.coverage(run)
        return coverage_frame(suppress_coverage(frame, disclosure.policy.threshold, exact))

    key = ("coverage", run, holder.files.stamp(run), disclosure.policy.threshold, exact)
    return disclosure.rows(key, make)


@router.get("/coverage", response_model=list[CoverageRow], tags=["statistics"],
            summary="覆盖率等指标 / coverage statistics", description=_WITHHELD,
            responses={**AUTH_ERRORS, **NO_RUN_ERROR})
def coverage(
    request: Request,
    who: Annotated[Principal, Depends(reader(None, personal=False))],
    level: Annotated[CoverageLevel | None, Query(description="层级 / county, city or province")] = None,
    area: Annotated[str | None, Query(max_length=12, description="区划代码 / area code")] = None,
    date: Annotated[dt.date | None, Query(description="运行日期 (默认当前) / run date")] = None,
) -> list[dict[str, Any]]:
    """Coverage rates of one run by county, city and province (empty for runs made before coverage)."""
    if date is None and deps.holder(request).snapshot is None:
        return []
    frame = coverage_table(request, who, deps.run_date(request, date))
    if level is not None:
        frame = frame.filter(pl.col("level") == level)
    if area is not None:
        frame = frame.filter(pl.col("area_code") == area)
    return frame.to_dicts()


@router.get("/coverage/trend", response_model=list[CoverageRow], tags=["statistics"],
            summary="指标历次变化 / coverage across all published runs", description=_WITHHELD,
            responses=AUTH_ERRORS)
def coverage_trend(
    request: Request,
    who: Annotated[Principal, Depends(reader(None, personal=False))],
    measure: Annotated[str | None, Query(max_length=64, description="指标 / e.g. rural_dibao_coverage")] = None,
    area: Annotated[str | None, Query(max_length=12, description="区划代码 / area code")] = None,
    level: Annotated[CoverageLevel | None, Query(description="层级 / county, city or province")] = None,
) -> list[dict[str, Any]]:
    """One row per run for each (level, area, measure), oldest run first; each run withheld as on its own."""
    frames = []
    for d in deps.holder(request).files.dates():
        try:
            frames.append(coverage_table(request, who, d))
        except FileNotFoundError:  # removed (rebuilt) since listed
            continue
    if not frames:
        return []
    frame = pl.concat(frames, how="vertical_relaxed")
    if measure is not None:
        frame = frame.filter(pl.col("measure") == measure)
    if area is not None:
        frame = frame.filter(pl.col("area_code") == area)
    if level is not None:
        frame = frame.filter(pl.col("level") == level)
    return frame.sort("measure", "level", "area_code", "run_date").to_dicts()


@router.get("/counts", response_model=list[CountRow], tags=["statistics"],
            summary="名单户数汇总 / list counts by county and reason", description=_WITHHELD,
            responses={**AUTH_ERRORS, **NO_RUN_ERROR})
def counts(
    request: Request,
    who: Annotated[Principal, Depends(reader(None, personal=False))],
    date: Annotated[dt.date | None, Query(description="运行日期 (默认当前) / run date")] = None,
) -> list[dict[str, Any]]:
    """How many households each list holds per county and reason (aggregates, no personal data)."""
    run = deps.run_date(request, date)
    disclosure = _disclosure(request)
    exact = disclosure.policy.exact_counties(who)
    key = ("counts", run, deps.holder(request).files.stamp(run), disclosure.policy.threshold, exact)
    return disclosure.rows(key, lambda: suppress_counts(count_rows(deps.lists(request, run)),
                                                        disclosure.policy.threshold, exact))

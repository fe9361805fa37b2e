"""Aggregates for analysts: coverage rates, their trend across runs, list counts (no personal data)."""

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
from dibao.serve.tokens import Principal

router = APIRouter()


@router.get("/coverage", response_model=list[CoverageRow], tags=["statistics"],
            summary="覆盖率等指标 / coverage statistics", responses={**AUTH_ERRORS, **NO_RUN_ERROR})
def coverage(
    request: Request,
    who: Annotated[Principal, Depends(reader(None, personal=False))],
    level: Annotated[CoverageLevel | None, Query(description="层级 / county, city or province")] = None,
    area: Annotated[str | None, Query(max_length=12, description="区划代码 / area code")] = None,
    date: Annotated[dt.date | None, Query(description="运行日期 (默认当前) / run date")] = None,
) -> list[dict[str, Any]]:
    """Coverage rates of one run by county, city and province (empty for runs made before coverage)."""
    holder = deps.holder(request)
    snap = holder.snapshot
    if date is None and snap is None:
        return []
    run = deps.run_date(request, date)
    frame = snap.coverage if snap is not None and snap.date == run else holder.files.coverage(run)
    if level is not None:
        frame = frame.filter(pl.col("level") == level)
    if area is not None:
        frame = frame.filter(pl.col("area_code") == area)
    return frame.to_dicts()


@router.get("/coverage/trend", response_model=list[CoverageRow], tags=["statistics"],
            summary="指标历次变化 / coverage across all published runs", responses=AUTH_ERRORS)
def coverage_trend(
    request: Request,
    who: Annotated[Principal, Depends(reader(None, personal=False))],
    measure: Annotated[str | None, Query(max_length=64, description="指标 / e.g. rural_dibao_coverage")] = None,
    area: Annotated[str | None, Query(max_length=12, description="区划代码 / area code")] = None,
    level: Annotated[CoverageLevel | None, Query(description="层级 / county, city or province")] = None,
) -> list[dict[str, Any]]:
    """One row per run for each (level, area, measure), oldest run first."""
    holder = deps.holder(request)
    frames = []
    for d in holder.files.dates():
        try:
            frames.append(holder.files.coverage(d))
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
            summary="名单户数汇总 / list counts by county and reason", responses={**AUTH_ERRORS, **NO_RUN_ERROR})
def counts(
    request: Request,
    who: Annotated[Principal, Depends(reader(None, personal=False))],
    date: Annotated[dt.date | None, Query(description="运行日期 (默认当前) / run date")] = None,
) -> list[dict[str, Any]]:
    """How many households each list holds per county and reason (aggregates, no personal data)."""
    rows: list[dict[str, Any]] = []
    for name, frame in deps.lists(request, deps.run_date(request, date)).items():
        if not frame.width or not frame.height:
            continue
        if name == "flag":
            exploded = frame.select("county_code", pl.col("code").alias("reason"),
                                    pl.col("label").alias("reason_label"))
        else:
            exploded = frame.select("county_code", pl.col("reasons").alias("reason"),
                                    pl.col("reason_labels").alias("reason_label")).explode("reason", "reason_label")
        grouped = exploded.group_by("county_code", "reason", "reason_label").len("count").sort(
            "county_code", "reason")
        rows.extend({**r, "list": name} for r in grouped.to_dicts())
    return rows

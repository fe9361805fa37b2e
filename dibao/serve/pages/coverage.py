"""覆盖率 ``/ui/coverage``: every coverage measure per area against its national reference rate, drilled down
province → city → county; a bar chart by county with the reference line, the trend across runs; the table as
XLSX (``/ui/coverage.xlsx``) and the chart as PNG (``/ui/coverage.png``).

Figures come from ``routers.statistics.coverage_table`` — the API's ``/coverage`` table as the caller may see
it: small cells withheld for analysts (and the cells that would give them back), exact for admins and for a
caseworker's own counties. A withheld figure is shown as "<N" (N = the minimum cell size), never computed back.
"""

from __future__ import annotations

import datetime as dt
import io
from typing import Annotated, Any
from urllib.parse import urlencode

import polars as pl
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from dibao.publish.contract import COVERAGE_MEASURES
from dibao.publish.xlsx import new_workbook
from dibao.serve import deps
from dibao.serve.pages import params
from dibao.serve.pages.charts import Bar, Series, bar_chart, to_png, to_svg, trend_chart
from dibao.serve.pages.render import page
from dibao.serve.pages.web import UI, PageUser, page_user
from dibao.serve.routers.statistics import coverage_table
from dibao.serve.statistics_tables import Disclosure

router = APIRouter(include_in_schema=False)
PATH = f"{UI}/coverage"
MEASURES = tuple(COVERAGE_MEASURES)
DEFAULT_MEASURE = "rural_dibao_coverage"
LEVEL_LABELS = {"province": "省", "city": "市", "county": "县区"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def is_percent(measure: str) -> bool:
    """Shares are percentages; the per-10,000 measures are counts per 10,000 covered persons."""
    return not measure.endswith("_per_10k")


def run_date(request: Request) -> dt.date | None:
    """The run asked for, else the served one; None when nothing is published yet."""
    asked = params.date(request.query_params, "date")
    if asked is None and deps.holder(request).snapshot is None:
        return None
    return deps.run_date(request, asked)


def within(frame: pl.DataFrame, area: str | None) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, Any] | None]:
    """(the areas one level below ``area``, every county within it, ``area``'s own row) — at the top the
    provinces and every county."""
    code = pl.col("area_code")
    counties = frame.filter(pl.col("level") == "county")
    if area is None:
        return frame.filter(pl.col("level") == "province"), counties, None
    own = frame.filter(code == area)
    level = own["level"][0] if own.height else None
    info = {"code": area, "name": own["area_name"][0] if own.height else area, "level": level}
    if level == "province":
        prefix = area[:2]
        below = frame.filter((pl.col("level") == "city") & code.str.starts_with(prefix))
        return below, counties.filter(code.str.starts_with(prefix)), info
    if level == "city":
        inside = counties.filter(code.str.starts_with(area[:4]))
        return inside, inside, info
    return frame.clear(), counties.filter(code == area), info


def table_rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """One row per area with a cell per measure (rate, numerator, denominator, reference, withheld fields)."""
    rows: dict[str, dict[str, Any]] = {}
    for r in frame.sort("area_code").iter_rows(named=True):
        row = rows.setdefault(r["area_code"], {"code": r["area_code"], "name": r["area_name"], "level": r["level"],
                                               "cells": {}})
        row["cells"][r["measure"]] = r
    return list(rows.values())


def references(frame: pl.DataFrame) -> dict[str, float | None]:
    """The reference rate of each measure (the same for every area of a run)."""
    known = frame.drop_nulls("reference_rate").unique("measure", keep="first")
    found = dict(zip(known["measure"].to_list(), known["reference_rate"].to_list(), strict=True))
    return {m: found.get(m) for m in MEASURES}


def county_chart(frame: pl.DataFrame, counties: pl.DataFrame, measure: str, area_name: str | None) -> Any:
    chosen = counties.filter(pl.col("measure") == measure).sort("area_code")
    bars = [Bar(r["area_name"] or r["area_code"], r["area_code"], r["rate"], "rate" in (r["suppressed_fields"] or []))
            for r in chosen.iter_rows(named=True)]
    title = f"{COVERAGE_MEASURES[measure]}：{area_name + '各县区' if area_name else '各县区'}"
    return bar_chart(title, bars, references(frame)[measure], percent=is_percent(measure))


def _trend(request: Request, user: PageUser, area: str | None, measure: str) -> tuple[Any, list[dt.date]]:
    """The measure across every published run (each run as the caller may see it), for ``area`` or, at the top,
    each province."""
    frames = []
    for day in deps.holder(request).files.dates():
        try:
            frames.append(coverage_table(request, user.who, day))
        except FileNotFoundError:  # removed (rebuilt) since listed
            continue
    frame = pl.concat(frames, how="vertical_relaxed") if frames else pl.DataFrame()
    if not frame.height:
        return None, []
    chosen = frame.filter(pl.col("measure") == measure)
    chosen = chosen.filter(pl.col("level") == "province") if area is None else chosen.filter(
        pl.col("area_code") == area)
    dates = sorted(set(frame["run_date"].to_list()))
    series = []
    for code, part in chosen.sort("run_date").partition_by("area_code", as_dict=True, maintain_order=True).items():
        values = dict(zip(part["run_date"].to_list(), part["rate"].to_list(), strict=True))
        series.append(Series(part["area_name"][0] or str(code[0]), tuple((d, values.get(d)) for d in dates)))
    ref = references(chosen)[measure] if chosen.height else None
    title = f"{COVERAGE_MEASURES[measure]}：历次运行"
    return trend_chart(title, series, ref, percent=is_percent(measure)), dates


def _crumbs(frame: pl.DataFrame, info: dict[str, Any] | None) -> list[tuple[str | None, str]]:
    crumbs: list[tuple[str | None, str]] = [(None, "全部")]
    if info is None:
        return crumbs
    code = info["code"]
    for level, prefix_len in (("province", 2), ("city", 4)):
        if info["level"] == level:
            break
        parent = frame.filter((pl.col("level") == level) & (pl.col("area_code").str.slice(0, prefix_len)
                                                             == code[:prefix_len]))
        if parent.height:
            crumbs.append((parent["area_code"][0], parent["area_name"][0] or parent["area_code"][0]))
    crumbs.append((code, info["name"] or code))
    return crumbs


@router.get(PATH)
def coverage_page(request: Request, user: Annotated[PageUser, Depends(page_user)]) -> Response:
    q = request.query_params
    area = params.area(q)
    measure = params.choice(q, "measure", MEASURES, DEFAULT_MEASURE)
    run = run_date(request)
    disclosure: Disclosure = request.app.state.disclosure
    base: dict[str, Any] = {"run": run, "area": area, "measure": measure, "measures": COVERAGE_MEASURES,
                            "threshold": disclosure.policy.threshold, "percent": is_percent}
    frame = coverage_table(request, user.who, run) if run is not None else pl.DataFrame()
    if not frame.height:
        return page(request, "coverage.html", {**base, "empty": True})
    children, counties, info = within(frame, area)
    chart = county_chart(frame, counties, measure, info["name"] if info else None)
    trend, dates = _trend(request, user, area, measure)
    query = {"area": area or "", "measure": measure, "date": q.get("date") or ""}
    return page(request, "coverage.html", {
        **base, "empty": False, "info": info, "crumbs": _crumbs(frame, info),
        "children": table_rows(children) if info is None or info["level"] != "city" else [],
        "counties": table_rows(counties), "references": references(frame),
        "chart_svg": to_svg(chart, "county-chart"), "trend_svg": to_svg(trend, "trend-chart") if trend else None,
        "runs": len(dates), "dates": deps.holder(request).files.dates(),
        "png": f"{PATH}.png?{urlencode({k: v for k, v in query.items() if v})}",
        "xlsx": f"{PATH}.xlsx?{urlencode({k: v for k, v in query.items() if v and k != 'measure'})}",
    })


@router.get(f"{PATH}.png")
def coverage_png(request: Request, user: Annotated[PageUser, Depends(page_user)]) -> Response:
    q = request.query_params
    area, measure = params.area(q), params.choice(q, "measure", MEASURES, DEFAULT_MEASURE)
    run = run_date(request)
    frame = coverage_table(request, user.who, run) if run is not None else pl.DataFrame()
    if not frame.height:
        chart = bar_chart(COVERAGE_MEASURES[measure], [], None, percent=is_percent(measure))
    else:
        _, counties, info = within(frame, area)
        chart = county_chart(frame, counties, measure, info["name"] if info else None)
    name = f"coverage-{measure}-{area or 'all'}-{run.isoformat() if run else 'none'}.png"
    return Response(to_png(chart), media_type="image/png",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


XLSX_COLUMNS = (("层级", 8), ("区划代码", 12), ("区划名称", 16), ("指标", 30), ("分子", 12), ("分母", 12),
                ("比率", 12), ("全国参考值", 12), ("说明", 28))


def coverage_workbook(frame: pl.DataFrame, run: dt.date, threshold: int) -> bytes:
    """The coverage rows as one sheet, printable (A4 landscape, one page wide, header repeated); a withheld
    figure is an empty cell with the reason beside it."""
    out = io.BytesIO()
    workbook = new_workbook(out, {"title": f"低保覆盖率 {run.isoformat()}", "author": "dibao", "company": "民政"})
    header = workbook.add_format({"bold": True, "bg_color": "#D9E1F2", "border": 1, "text_wrap": True,
                                  "valign": "vcenter", "font_size": 10})
    text = workbook.add_format({"num_format": "@", "font_size": 10})
    count = workbook.add_format({"num_format": "#,##0", "font_size": 10})
    share = workbook.add_format({"num_format": "0.0%", "font_size": 10})
    per10k = workbook.add_format({"num_format": "#,##0.0", "font_size": 10})
    sheet = workbook.add_worksheet("覆盖率")
    for col, (title, width) in enumerate(XLSX_COLUMNS):
        sheet.set_column(col, col, width)
        sheet.write_string(0, col, title, header)
    order = {"province": 0, "city": 1, "county": 2}
    rows = sorted(frame.iter_rows(named=True), key=lambda r: (r["area_code"][:2], order.get(r["level"], 3),
                                                              r["area_code"], MEASURES.index(r["measure"])
                                                              if r["measure"] in MEASURES else 99))
    for n, r in enumerate(rows, start=1):
        rate_format = share if is_percent(r["measure"]) else per10k
        sheet.write_string(n, 0, LEVEL_LABELS.get(r["level"], r["level"]), text)
        sheet.write_string(n, 1, r["area_code"], text)
        sheet.write_string(n, 2, r["area_name"] or "", text)
        sheet.write_string(n, 3, r["label"] or COVERAGE_MEASURES.get(r["measure"], r["measure"]), text)
        for col, key, fmt in ((4, "numerator", count), (5, "denominator", count), (6, "rate", rate_format),
                              (7, "reference_rate", rate_format)):
            if r[key] is not None:
                sheet.write_number(n, col, r[key], fmt)
        if r["suppressed"]:
            sheet.write_string(n, 8, f"小于{threshold}或可由合计推算的数值已隐去", text)
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, max(1, len(rows)), len(XLSX_COLUMNS) - 1)
    sheet.set_landscape()
    sheet.set_paper(9)
    sheet.fit_to_pages(1, 0)
    sheet.repeat_rows(0)
    sheet.set_header(f"&L低保覆盖率&R运行 {run.isoformat()}")
    sheet.set_footer("&C第 &P/&N 页")
    workbook.close()
    return out.getvalue()


@router.get(f"{PATH}.xlsx")
def coverage_xlsx(request: Request, user: Annotated[PageUser, Depends(page_user)]) -> Response:
    area = params.area(request.query_params)
    run = run_date(request)
    if run is None:
        frame, run = pl.DataFrame(), dt.date.today()
    else:
        frame = coverage_table(request, user.who, run)
    if frame.height and area is not None:
        frame = frame.filter(pl.col("area_code").str.starts_with(
            area[:2] if area.endswith("0000") else area[:4] if area.endswith("00") else area))
    disclosure: Disclosure = request.app.state.disclosure
    body = coverage_workbook(frame, run, disclosure.policy.threshold)
    name = f"coverage-{area or 'all'}-{run.isoformat()}.xlsx"
    return Response(body, media_type=XLSX, headers={"Content-Disposition": f'attachment; filename="{name}"'})


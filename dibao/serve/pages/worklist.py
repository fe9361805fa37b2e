"""工作清单 ``/ui/lists``: one work list of the caller's counties, filtered, sorted and paged; ``/ui/lists.xlsx``
downloads every matching row as the batch work lists print them.

Rows come from ``list_query.list_frame`` (what ``GET /candidates`` answers) and are masked by
``masking.candidate_view`` on the page and ``masking.mask_list_frame`` in the download — the API's masking: names
and ID numbers masked for everyone but an admin. Both are audited as the API's ``candidates`` (the page with the
rows shown, the download with every row). The download is at most ``DIBAO_API_EXPORT_MAX_ROWS`` rows, as the CSV.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import polars as pl
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from dibao.publish.contract import HOUSEHOLD_SOURCE_LABELS, LIST_LABELS, LISTS, ListName
from dibao.publish.worklist_rows import COLUMNS
from dibao.publish.worklist_sheets import write_list_workbook
from dibao.serve import deps, export
from dibao.serve.auth import Audited
from dibao.serve.list_query import SORT_KEYS, ListFilter, list_frame
from dibao.serve.masking import candidate_view, mask_list_frame
from dibao.serve.pages import params
from dibao.serve.pages.render import page
from dibao.serve.pages.settings import PageSettings
from dibao.serve.pages.web import UI, PageUser, personal_page_user
from dibao.serve.problems import ApiProblem
from dibao.serve.tokens import Principal

router = APIRouter(include_in_schema=False)
PATH = f"{UI}/lists"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
GRACE_DAYS = ("30", "60", "90")  # 渐退 ending within this many days


def headers(name: ListName) -> tuple[str, str]:
    """The printed work list's headers of the number column and the reason column (退出原因, 纳入原因, 核查事项)."""
    columns = COLUMNS[LIST_LABELS[name]]
    return columns[3].header, next(c.header for c in columns if c.kind == "wrap")


def read_filters(request: Request) -> tuple[ListFilter, int]:
    """The list, filters, order and page number the page's URL asks for."""
    q = request.query_params
    name: ListName = params.choice(q, "type", LISTS, "exit")
    grace = params.optional_choice(q, "grace", GRACE_DAYS) if name == "exit" else None
    return ListFilter(
        type=name, county=params.county(q), township=params.text(q, "town"), reason=params.text(q, "reason"),
        first_seen_from=params.date(q, "from"), first_seen_to=params.date(q, "to"),
        grace_within_days=int(grace) if grace else None, sort=params.choice(q, "sort", SORT_KEYS, "first_seen"),
    ), params.number(q, "page", 1, 1, 1_000_000)


def filter_query(want: ListFilter, **changes: Any) -> str:
    """The URL query of ``want`` with ``changes`` (e.g. another page or order), blanks left out."""
    values: dict[str, Any] = {
        "type": want.type, "county": want.county, "town": want.township, "reason": want.reason,
        "from": want.first_seen_from, "to": want.first_seen_to, "grace": want.grace_within_days,
        "sort": None if want.sort == "first_seen" else want.sort, **changes}
    return urlencode({k: str(v) for k, v in values.items() if v not in (None, "")})


def _options(request: Request, who: Principal, want: ListFilter) -> dict[str, list[tuple[str, str]]]:
    """What the filters offer: the counties, townships and reasons of the caller's rows of this list."""
    _, frame = list_frame(request, who, ListFilter(type=want.type))
    if not frame.height:
        return {"counties": [], "towns": [], "reasons": []}
    counties = frame.select("county_code", "county_name").unique().drop_nulls("county_code").sort("county_code")
    in_county = frame if want.county is None else frame.filter(pl.col("county_code") == want.county)
    towns = sorted(t for t in in_county["town"].unique().to_list() if t)
    if want.type == "flag":
        reasons = frame.select("code", "label").unique().drop_nulls("code").sort("code").rows()
    else:
        pairs = frame.select(pl.col("reasons").alias("code"), pl.col("reason_labels").alias("label")).explode(
            "code", "label")
        reasons = pairs.unique().drop_nulls("code").sort("code").rows()
    return {"counties": [(c, n or c) for c, n in counties.rows()], "towns": [(t, t) for t in towns],
            "reasons": [(c, lbl or c) for c, lbl in reasons]}


def _row(name: ListName, row: dict[str, Any], who: Principal) -> dict[str, Any]:
    item = candidate_view(name, row, who)
    subject = item["subject_id"] or ""
    return {**item, "due_date": row.get("due_date"),
            "source_label": HOUSEHOLD_SOURCE_LABELS.get(item["source"] or "", item["source"]),
            "link": None if "*" in subject else f"/ui/households?{urlencode({'q': subject})}"}


@router.get(PATH)
def lists_page(request: Request, user: Annotated[PageUser, Depends(personal_page_user("candidates"))]) -> Response:
    want, number = read_filters(request)
    settings: PageSettings = request.app.state.page_settings
    with Audited(request, user.who, "candidates") as audited:
        run, frame = list_frame(request, user.who, want)
        rows = [_row(want.type, row, user.who) for row in deps.page(frame, number, settings.page_size)]
        audited.count = len(rows)
    pages = max(1, -(-frame.height // settings.page_size))
    context = {
        "run": run, "want": want, "rows": rows, "total": frame.height, "number": number, "pages": pages,
        "size": settings.page_size, "options": _options(request, user.who, want), "lists": LIST_LABELS,
        "grace_days": GRACE_DAYS, "id_header": headers(want.type)[0], "reason_header": headers(want.type)[1],
        "query": lambda **changes: filter_query(want, **changes),
        "download": f"{PATH}.xlsx?{filter_query(want)}",
    }
    return page(request, "lists.html", context)


def _place(frame: pl.DataFrame, want: ListFilter) -> str:
    """What the printed header names: the rows' counties (at most three), and the township when filtered."""
    names = sorted({n for n in frame["county_name"].to_list() if n}) if frame.height else []
    place = "、".join(names[:3]) + ("等" if len(names) > 3 else "") if names else "本人辖区"
    return f"{place} {want.township}" if want.township else place


def list_workbook_bytes(name: ListName, frame: pl.DataFrame, place: str, stamp: str) -> bytes:
    """The workbook in a private temporary folder (0700), read back and removed."""
    with tempfile.TemporaryDirectory(prefix="dibao-list-") as folder:
        path = Path(folder) / "list.xlsx"
        write_list_workbook(path, name, frame, place, stamp)
        return path.read_bytes()


@router.get(f"{PATH}.xlsx")
def lists_download(request: Request,
                   user: Annotated[PageUser, Depends(personal_page_user("candidates"))]) -> Response:
    want, _ = read_filters(request)
    with Audited(request, user.who, "candidates") as audited:
        run, frame = list_frame(request, user.who, want)
        if frame.height > export.MAX_ROWS:
            raise ApiProblem(422, export.too_many_rows(frame.height, export.MAX_ROWS),
                             type_="urn:dibao:problem:export-too-large")
        body = list_workbook_bytes(want.type, mask_list_frame(frame, user.who), _place(frame, want),
                                   run.isoformat())
        audited.count = frame.height
    label = LIST_LABELS[want.type]
    ascii_name = f"worklist-{want.type}-{run.isoformat()}.xlsx"
    utf8_name = quote(f"{label}-{run.isoformat()}.xlsx")
    return Response(body, media_type=XLSX, headers={
        "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{utf8_name}"})


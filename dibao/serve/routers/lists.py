"""The work lists: 应退尽退, 应保尽保, 其他核查, filtered, sorted and paged — or all matching rows as CSV."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from dibao.publish.contract import ListName
from dibao.serve import deps, export
from dibao.serve.auth import Audited, reader
from dibao.serve.export import CSV_RESPONSE, candidates_csv, too_many_rows
from dibao.serve.list_query import ListFilter, list_frame
from dibao.serve.masking import candidate_view
from dibao.serve.models import CandidatePage
from dibao.serve.problems import PERSONAL_ERRORS, ApiProblem
from dibao.serve.tokens import Principal

router = APIRouter()


@router.get("/candidates", response_model=CandidatePage, tags=["lists"], summary="工作名单 / work lists",
            responses={**PERSONAL_ERRORS, **CSV_RESPONSE})
def candidates(
    request: Request,
    who: Annotated[Principal, Depends(reader("candidates", personal=True))],
    type: Annotated[ListName, Query(description="exit 应退尽退 | inclusion 应保尽保 | flag 其他核查")] = "exit",
    county: Annotated[str | None, Query(pattern=r"^[0-9]{6}$", description="县级区划代码")] = None,
    township: Annotated[str | None, Query(max_length=64, description="乡镇 / township")] = None,
    reason: Annotated[str | None, Query(max_length=64, description="原因代码 / reason code")] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000, description="页码 / page")] = 1,
    size: Annotated[int, Query(ge=1, le=500, description="每页条数 / page size")] = 50,
    sort: Annotated[Literal["first_seen", "-first_seen", "town", "subject_id"],
                    Query(description="排序 / order")] = "first_seen",
    date: Annotated[dt.date | None, Query(description="运行日期 (默认当前) / run date")] = None,
    format: Annotated[Literal["json", "csv"], Query(
        description="json: one page | csv: 全部符合条件的行，供 Excel 打开 / every matching row as a CSV download "
                    "(page and size ignored)")] = "json",
) -> dict[str, Any] | StreamingResponse:
    """One list of a run, filtered and paged; a caseworker sees their counties only, with names and ID
    numbers masked. ``format=csv``: the same rows, all of them, masked the same way, as a download."""
    with Audited(request, who, "candidates") as audited:
        run, frame = list_frame(request, who, ListFilter(type, county, township, reason, sort=sort), date)
        if format == "csv":
            if frame.height > export.MAX_ROWS:
                raise ApiProblem(422, too_many_rows(frame.height, export.MAX_ROWS),
                                 type_="urn:dibao:problem:export-too-large")
            audited.count = frame.height
            return candidates_csv(type, run, frame, who)
        items = [candidate_view(type, row, who) for row in deps.page(frame, page, size)]
        audited.count = len(items)
        return {"run": run, "type": type, "total": frame.height, "page": page, "size": size, "items": items}

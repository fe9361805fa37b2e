"""One household across systems, by ID number or household number (dibao/publish/household.py builds it)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from dibao.publish.household import Resolution
from dibao.serve import deps
from dibao.serve.audit.recorder import AuditRecorder
from dibao.serve.auth import Audited, reader
from dibao.serve.masking import household_view
from dibao.serve.models import HouseholdLookup
from dibao.serve.problems import INVALID_ID_TITLE, NOT_FOUND_DETAIL, PERSONAL_ERRORS, ApiProblem, problem_doc
from dibao.serve.snapshot import RunSnapshot
from dibao.serve.tokens import Principal

router = APIRouter()


_LOOKUP_RESPONSES: dict[int | str, dict[str, Any]] = {
    **PERSONAL_ERRORS,
    404: problem_doc("未找到 (或不在本人辖区) / not found, or outside the caller's counties"),
    422: problem_doc("证件号码格式错误，说明具体问题 / malformed ID number: what is wrong"),
    429: problem_doc("请求过于频繁 (见 Retry-After) / too many requests: see Retry-After"),
}
_ID_DESCRIPTION = ("公民身份号码 (15/18位，可含空格、连字符、全角、小写x) 或任一系统的家庭编号 / "
                   "ID number (any formatting) or a household number of any source")


class LookupRequest(BaseModel):
    """The body of ``POST /households/lookup``: the ID number travels here, not in the URL."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=64, description=_ID_DESCRIPTION,
                    examples=["340421199304072971"])


def lookup_family(request: Request, id: str, who: Principal, audited_query: str | None = None,
                  resolved: tuple[RunSnapshot, Resolution] | None = None) -> dict[str, Any]:
    """What both forms answer — and the web page /ui/households (dibao/serve/pages/): the same scoping, masking,
    404 rule and 422, audited as ``action`` household. Blocks until the audit entry is on disk (for a worker
    thread); on the event loop use ``answered``. ``resolved``: ``id`` already resolved on that snapshot."""
    request.state.lookup_subject = id  # for the enumeration watch (dibao/serve/throttle.py); never stored
    with Audited(request, who, "household", audited_query) as audited:
        if resolved is None:
            snap = deps.snapshot(request)
            found = snap.index.resolve(id)
        else:
            snap, found = resolved
        # A household outside the caller's counties is answered exactly like one nobody knows.
        gids = tuple(g for g in found.gids if who.is_admin or snap.index.counties_of(g) & who.counties)
        if not gids:
            fault = found.query.fault()
            if fault is not None:
                raise ApiProblem(422, fault[1], type_="urn:dibao:problem:invalid-id-number",
                                 title=INVALID_ID_TITLE, id_status=fault[0].value)
            raise ApiProblem(404, NOT_FOUND_DETAIL)
        households = [household_view(h, who, snap.county_names) for h in snap.index.family(gids)]
        audited.count = len(households)
        return {"run": snap.date, "matched_by": found.matched_by, "person_key": found.person_key,
                "households": households}


# A family that reads more index rows than this is looked up in a worker thread instead: on the event loop it would
# hold up the worker's other requests for its whole duration (families of a province's run read at most ~70 rows, a
# few milliseconds; a household number shared by thousands of rows in a faulty export would read far more).
LOOP_LOOKUP_MAX_ROWS = 500


async def answered(request: Request, id: str, who: Principal, audited_query: str | None = None) -> dict[str, Any]:
    """``lookup_family`` run on the event loop: the index is memory-mapped and a lookup takes a fraction of a
    millisecond, so a hop to a worker thread and back cost more than the lookup (it halved the throughput); the
    audit entry's disk flush, the only wait, is shared with the other lookups in flight and awaited
    (``AuditRecorder.durable``) before the answer leaves. An unusually large family still goes to a thread."""
    recorder: AuditRecorder = request.app.state.audit
    snap = deps.holder(request).snapshot  # None before the first run: lookup_family answers 503
    resolved = None if snap is None else (snap, snap.index.resolve(id))
    with recorder.deferring() as tickets:
        if resolved is not None and resolved[0].index.rows_of(resolved[1].gids) > LOOP_LOOKUP_MAX_ROWS:
            result = await run_in_threadpool(lookup_family, request, id, who, audited_query, resolved)
        else:
            result = lookup_family(request, id, who, audited_query, resolved)
    await recorder.durable(tickets)
    return result


@router.post("/households/lookup", response_model=HouseholdLookup, tags=["households"],
             summary="按证件号或家庭编号查询家庭 (号码不进URL) / one household, the ID in the body, not the URL",
             responses=_LOOKUP_RESPONSES)
async def household_by_body(
    request: Request,
    body: LookupRequest,
    who: Annotated[Principal, Depends(reader("household", personal=True))],
) -> dict[str, Any]:
    """Exactly what ``GET /households/{id}`` answers, with the ID number in a JSON body (``{"id": "…"}``) so it
    stays out of URLs: proxy logs, browser history and Referer headers. The audit log records it as ``id=…``."""
    return await answered(request, body.id, who, urlencode({"id": body.id}))


@router.get("/households/{id}", response_model=HouseholdLookup, tags=["households"],
            summary="按证件号或家庭编号查询家庭 / one household across systems", responses=_LOOKUP_RESPONSES)
async def household(
    request: Request,
    id: Annotated[str, PathParam(max_length=64, description=_ID_DESCRIPTION)],
    who: Annotated[Principal, Depends(reader("household", personal=True))],
) -> dict[str, Any]:
    """The family across systems: households, members with link evidence, every decision with its figures,
    parameters in force and policy reference, 渐退 dates, and the lists it was on in every published run.
    ``POST /households/lookup`` answers the same with the ID number kept out of the URL."""
    return await answered(request, id, who)

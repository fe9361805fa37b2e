"""One household across systems, by ID number or household number (dibao/publish/household.py builds it)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi import Path as PathParam

from dibao.serve import deps
from dibao.serve.auth import Audited, reader
from dibao.serve.masking import household_view
from dibao.serve.models import HouseholdLookup
from dibao.serve.problems import INVALID_ID_TITLE, NOT_FOUND_DETAIL, PERSONAL_ERRORS, ApiProblem, problem_doc
from dibao.serve.tokens import Principal

router = APIRouter()


@router.get("/households/{id}", response_model=HouseholdLookup, tags=["households"],
            summary="按证件号或家庭编号查询家庭 / one household across systems",
            responses={**PERSONAL_ERRORS,
                       404: problem_doc("未找到 (或不在本人辖区) / not found, or outside the caller's counties"),
                       422: problem_doc("证件号码格式错误，说明具体问题 / malformed ID number: what is wrong")})
async def household(
    request: Request,
    id: Annotated[str, PathParam(max_length=64, description=(
        "公民身份号码 (15/18位，可含空格、连字符、全角、小写x) 或任一系统的家庭编号 / ID number (any formatting) "
        "or a household number of any source"))],
    who: Annotated[Principal, Depends(reader("household", personal=True))],
) -> dict[str, Any]:
    """The family across systems: households, members with link evidence, every decision with its figures,
    parameters in force and policy reference, 渐退 dates, and the lists it was on in every published run."""
    with Audited(request, who, "household") as audited:
        snap = deps.snapshot(request)
        found = snap.index.resolve(id)
        # A household outside the caller's counties is answered exactly like one nobody knows.
        gids = tuple(g for g in found.gids if who.is_admin or snap.index.counties_of(g) & who.counties)
        if not gids:
            fault = found.query.fault()
            if fault is not None:
                raise ApiProblem(422, fault[1], type_="urn:dibao:problem:invalid-id-number",
                                 title=INVALID_ID_TITLE, id_status=fault[0].value)
            raise ApiProblem(404, NOT_FOUND_DETAIL)
        households = [household_view(h, who) for h in snap.index.family(gids)]
        audited.count = len(households)
        return {"run": snap.date, "matched_by": found.matched_by, "person_key": found.person_key,
                "households": households}

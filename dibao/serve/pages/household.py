"""户查询 ``/ui/households``: one family across systems, from the same lookup the API answers with.

The page calls ``routers.households.lookup_family`` — the API's own function: the same index, the same county
scoping (a household outside the caller's counties answers exactly as an unknown number: 404, the same page), the
same masking (``masking.household_view``), the same audit entry (action ``household``, the number hashed) and the
same 422 with ``check_id(...).problem()`` for a malformed ID number. What is added here is only wording: labels,
units and the link evidence in Chinese.

The search form is sent by POST (with the session's CSRF token), so a typed ID number stays out of the URL, the
browser history and any proxy log; ``GET /ui/households?q=…`` answers the same (the work lists link to it with a
household number).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from dibao.normalise.ids import STATUS_LABELS_ZH, IdStatus
from dibao.publish.contract import HOUSEHOLD_KIND_LABELS, HOUSEHOLD_SOURCE_LABELS, METHOD_LABELS, SOURCE_TITLES
from dibao.rules.catalog import CATALOG, FACT_LABELS
from dibao.rules.params import load_parameters
from dibao.serve.pages.render import page
from dibao.serve.pages.web import UI, PageUser, check_csrf, personal_page_user, read_form
from dibao.serve.problems import ApiProblem
from dibao.serve.routers.households import lookup_family

router = APIRouter(include_in_schema=False)
PATH = f"{UI}/households"
MAX_QUERY = 64  # the API's limit for an ID or household number

# Link evidence (person_links.evidence, dibao/link/persons.py) in words.
EVIDENCE_WORDS = {
    "id": METHOD_LABELS["exact"], "name": "姓名一致", "name_pinyin": "姓名同音", "name_differs": "姓名不一致",
    "no_name": "无姓名可比对", "county": "县区一致", "household": "同户成员", "birth_date": "出生日期一致",
    "id_first17": "证件号前17位一致",
}
EDIT_WORDS = {"digit_typo": "一位数字录错", "check_digit": "校验位录错", "digit_swap": "相邻两位颠倒"}
NOT_FOUND_PAGE = "未找到匹配的证件号码或家庭编号 (nothing matches this ID number or household number)"


def evidence_words(codes: list[str] | None) -> list[str]:
    """``["id_one_edit:digit_swap", "name", "county"]`` → ``["证件号纠错(相邻两位颠倒)", "姓名一致", "县区一致"]``."""
    words = []
    for code in codes or []:
        if code.startswith("id_one_edit:"):
            edit = code.partition(":")[2]
            words.append(f"证件号纠错({EDIT_WORDS.get(edit, edit)})")
        elif code in EVIDENCE_WORDS:
            words.append(EVIDENCE_WORDS[code])
        elif code.startswith("id_"):
            status = code[3:]
            label = STATUS_LABELS_ZH.get(IdStatus(status)) if status in IdStatus._value2member_map_ else None
            words.append(f"证件号{label or status}")
        else:
            words.append(code)
    return words


@lru_cache(maxsize=1)
def parameter_labels() -> dict[str, str]:
    """Chinese names of the policy parameters (the shipped parameters file)."""
    return {name: p.label for name, p in load_parameters().parameters.items()}


@lru_cache(maxsize=1)
def fact_units() -> dict[str, str]:
    return {f.name: f.unit for f in CATALOG.facts if f.unit}


def fact_words(name: str, value: Any) -> Any:
    """A coded fact in Chinese (收入口径 per_capita → …), a source by its title; other values as they are."""
    if isinstance(value, str):
        coded = CATALOG.codes.get(name, {})
        if value in coded:
            return coded[value]
    return value


def _figure(name: str, value: Any) -> dict[str, Any]:
    return {"label": FACT_LABELS.get(name, name), "value": fact_words(name, value), "unit": fact_units().get(name)}


def household_card(h: dict[str, Any]) -> dict[str, Any]:
    """One household of the API's answer (already masked) with words for the page."""
    return {
        **h,
        "kind_label": HOUSEHOLD_KIND_LABELS.get(h["subject_type"], h["subject_type"]),
        "source_label": HOUSEHOLD_SOURCE_LABELS.get(h["source"], SOURCE_TITLES.get(h["source"], h["source"])),
        "facts": [_figure(f["name"], f["value"]) | {"name": f["name"]} for f in h["facts"]
                  if f["value"] is not None and f["name"] != "county_code"],
        "decisions": [{
            **d,
            "figures": [_figure(name, value) for name, value in d["figures"].items()],
            "standards": [{"label": parameter_labels().get(name, name), **p} for name, p in d["parameters"].items()],
        } for d in h["decisions"]],
        "members": [{**m, "evidence_words": evidence_words(m["evidence"]),
                     "source_label": SOURCE_TITLES.get(m["source"], m["source"]),
                     "id_status_label": STATUS_LABELS_ZH.get(IdStatus(m["id_status"]), m["id_status"])
                     if m["id_status"] in IdStatus._value2member_map_ else m["id_status"]}
                    for m in h["members"]],
        "history": list(reversed(h["history"])),  # newest run first
    }


def _answer(request: Request, user: PageUser, query: str) -> Response:
    query = query.strip()
    if not query:
        return page(request, "household.html", {"q": "", "result": None, "message": None})
    if len(query) > MAX_QUERY:
        return page(request, "household.html", {"q": query[:MAX_QUERY], "result": None, "message":
                    f"输入过长，最多 {MAX_QUERY} 个字符 (at most {MAX_QUERY} characters)"}, status=422)
    try:
        result = lookup_family(request, query, user.who, urlencode({"id": query}))
    except ApiProblem as problem:
        if problem.status not in (404, 422):
            raise
        message = NOT_FOUND_PAGE if problem.status == 404 else problem.detail
        return page(request, "household.html", {"q": query, "result": None, "message": message},
                    status=problem.status)
    cards = [household_card(h) for h in result["households"]]
    cards.sort(key=lambda card: not card["decisions"])  # the households with findings first, else as answered
    result = {**result, "households": cards}
    return page(request, "household.html", {"q": query, "result": result, "message": None})


@router.get(PATH)
def household_get(request: Request, user: Annotated[PageUser, Depends(personal_page_user("household"))],
                  q: str = "") -> Response:
    return _answer(request, user, q)


@router.post(PATH)
async def household_post(request: Request,
                         user: Annotated[PageUser, Depends(personal_page_user("household"))]) -> Response:
    form = await read_form(request)
    check_csrf(request, user.session.csrf, form)
    # In a worker thread, as the GET's handler is: the audit entry's flush must not stall the event loop.
    return await run_in_threadpool(_answer, request, user, form.get("q", ""))

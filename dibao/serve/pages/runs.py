"""运行 ``/ui/runs``: the published runs with their list sizes, the day's summary line and changes; the changes
of one run item by item for caseworkers (their counties) and admins.

The run list is ``routers.runs.run_info`` (``GET /runs``: aggregates, every role); the items are
``routers.runs.diff_frame`` masked by ``masking.change_view`` and audited as the API's ``diff`` — an analyst gets
the counts only, as the API refuses them ``/runs/{date}/diff``.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from dibao.publish.contract import CHANGE_LABELS, CHANGES, LIST_FILES, LIST_LABELS, LISTS
from dibao.serve import deps
from dibao.serve.auth import Audited
from dibao.serve.masking import change_view
from dibao.serve.pages import params
from dibao.serve.pages.render import page
from dibao.serve.pages.settings import PageSettings
from dibao.serve.pages.web import UI, PageUser, page_user
from dibao.serve.routers.runs import diff_frame, run_info

router = APIRouter(include_in_schema=False)
PATH = f"{UI}/runs"
COUNT_FILES = {name: LIST_FILES[name].name for name in LISTS}  # run_info counts each list by its file


@router.get(PATH)
def runs_page(request: Request, user: Annotated[PageUser, Depends(page_user)]) -> Response:
    q = request.query_params
    holder = deps.holder(request)
    snap = holder.snapshot
    infos = [i for i in (run_info(holder, d, snap.date if snap else None) for d in holder.files.dates()) if i]
    infos.reverse()  # newest first
    chosen_date = params.date(q, "date")
    chosen = next((i for i in infos if i["date"] == chosen_date), None) if chosen_date else (
        infos[0] if infos else None)
    context: dict[str, Any] = {"infos": infos, "chosen": chosen, "lists": LIST_LABELS, "changes": CHANGE_LABELS,
                               "count_files": COUNT_FILES, "items": None}
    if chosen is not None and user.who.reads_personal_data:
        settings: PageSettings = request.app.state.page_settings
        list_ = params.optional_choice(q, "list", LISTS)
        change = params.optional_choice(q, "change", CHANGES)
        number = params.number(q, "page", 1, 1, 1_000_000)
        with Audited(request, user.who, "diff") as audited:
            run, frame = diff_frame(request, user.who, chosen["date"], list_, change)
            items = [change_view(row, user.who, run) for row in deps.page(frame, number, settings.page_size)]
            audited.count = len(items)
        for item in items:
            subject = item["subject_id"] or ""
            item["link"] = None if "*" in subject else f"/ui/households?{urlencode({'q': subject})}"

        def query(**changes: Any) -> str:
            values = {"date": chosen["date"].isoformat(), "list": list_, "change": change, **changes}
            return urlencode({k: str(v) for k, v in values.items() if v not in (None, "")})

        context.update(items=items, total=frame.height, number=number, size=settings.page_size,
                       pages=max(1, -(-frame.height // settings.page_size)), list_=list_, change=change,
                       query=query)
    return page(request, "runs.html", context)

"""Web pages for the people who use dibao (``/ui/``, Chinese, server-rendered), on the same app as the API.

| page | who | what |
|---|---|---|
| ``/ui/login`` | everyone | a bearer token in, a session cookie out (``account``) |
| ``/ui/households`` | caseworker, admin | one family across systems, every decision with figures and standards |
| ``/ui/lists`` | caseworker, admin | 应退尽退 / 应保尽保 / 其他核查, filtered, sorted, paged; XLSX download |
| ``/ui/coverage`` | everyone logged in | coverage per county against the reference rates; chart, trend, XLSX, PNG |
| ``/ui/runs`` | everyone logged in | published runs with counts and summary; the changes (items for caseworkers) |

One code path with the API: each page calls the function the API's router calls (lookup, list query, coverage
table, run list, diff) with the same principal, so scoping, masking, small-cell suppression and audit entries are
the API's. Modules: ``web`` (session cookie, CSRF), ``sessions`` (server-side store), ``render`` (templates, CSP,
error pages), ``charts`` (SVG and PNG), ``downloads`` (XLSX), one module per page.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse

from dibao.serve.pages import account, coverage, household, runs, worklist
from dibao.serve.pages.render import ProblemPages
from dibao.serve.pages.sessions import SESSIONS_FILE, SessionStore
from dibao.serve.pages.settings import PageSettings
from dibao.serve.pages.web import LoginRequired, PageSessionMiddleware


async def _to_login(_: Request, exc: Exception) -> RedirectResponse:
    assert isinstance(exc, LoginRequired)
    return RedirectResponse(exc.target, status_code=303)


def install_pages(app: FastAPI, store: Path, settings: PageSettings | None = None,
                  sessions_file: Path | None = None) -> None:
    """The pages' routes on ``app``, and their two middlewares just outside the throttle (call right after adding
    ``ThrottleMiddleware``): sessions read before throttling, errors of pages shown as pages. Sessions are kept in
    ``sessions_file`` (default ``STORE/api/ui-sessions.sqlite3``)."""
    settings = settings or PageSettings.from_env()
    app.state.page_settings = settings
    app.state.page_sessions = SessionStore(sessions_file or store / "api" / SESSIONS_FILE,
                                           idle_seconds=settings.idle_seconds,
                                           lifetime_seconds=settings.lifetime_seconds)
    app.add_exception_handler(LoginRequired, _to_login)
    for area in (account, household, worklist, coverage, runs):
        app.include_router(area.router)
    app.add_middleware(PageSessionMiddleware)
    app.add_middleware(ProblemPages)

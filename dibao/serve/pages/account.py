"""Log-in, log-out and the start page.

Log-in takes the bearer token a caseworker was given (form field ``token``), checks it exactly as the API does
(``TokenBook.identify``: unknown, expired, tokens file broken) and starts a server-side session. A refused token is
answered 401, which the throttle counts as a failed authentication of the address (the same lockout as the API).
Log-in and log-out are written to the audit log (actions ``login`` / ``logout``).
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from dibao.serve import deps
from dibao.serve.auth import audit
from dibao.serve.pages.render import page, static_file
from dibao.serve.pages.sessions import SessionStore
from dibao.serve.pages.web import (
    CSRF_FAILED,
    ENDED_REASONS,
    LOGIN_COOKIE,
    LOGIN_PATH,
    PAGE_SESSION,
    SESSION_COOKIE,
    UI,
    PageUser,
    check_csrf,
    cookie_value,
    page_user,
    read_form,
    safe_next,
    same_origin,
    set_cookie_header,
)
from dibao.serve.problems import NO_ENDPOINT_DETAIL, TOKENS_FILE_BROKEN, ApiProblem, token_expired
from dibao.serve.tokens import Principal, TokenBook, hash_token

router = APIRouter(include_in_schema=False)

BAD_TOKEN = "令牌无效，请检查后重试 (the token is not valid: check it and try again)"
LOGGED_OUT = "已退出登录 (logged out)"
LOGIN_FORM_MINUTES = 30  # how long a log-in form may stay open


def _sessions(request: Request) -> SessionStore:
    store: SessionStore = request.app.state.page_sessions
    return store


def _login_page(request: Request, *, message: str | None, next_path: str | None, status: int = 200) -> Response:
    value = secrets.token_urlsafe(24)
    response = page(request, "login.html", {"message": message, "next": safe_next(next_path), "login_csrf": value},
                    status=status)
    response.headers.append("set-cookie", set_cookie_header(request.scope, LOGIN_COOKIE, value,
                                                            LOGIN_FORM_MINUTES * 60))
    return response


@router.get("/", include_in_schema=False)
@router.get("/index.html", include_in_schema=False)
async def root() -> RedirectResponse:
    return RedirectResponse(f"{UI}/", status_code=307)


@router.get(UI, include_in_schema=False)
async def ui_root() -> RedirectResponse:
    return RedirectResponse(f"{UI}/", status_code=307)


@router.get(LOGIN_PATH)
async def login_form(request: Request, why: str | None = None, next: str | None = None) -> Response:
    if request.scope.get(PAGE_SESSION) is not None:
        return RedirectResponse(safe_next(next) or f"{UI}/", status_code=303)
    message = LOGGED_OUT if why == "logout" else ENDED_REASONS.get(why or "")
    return _login_page(request, message=message, next_path=next)


@router.post(LOGIN_PATH)
async def login(request: Request) -> Response:
    form = await read_form(request)
    expected = cookie_value(request.scope, LOGIN_COOKIE)
    sent = form.get("csrf", "")
    if not expected or not sent or not same_origin(request) or not hmac.compare_digest(sent, expected):
        raise ApiProblem(403, CSRF_FAILED, type_="urn:dibao:problem:csrf")
    token = form.get("token", "").strip()
    book: TokenBook = request.app.state.tokens
    who = book.identify(token or None)
    next_path = safe_next(form.get("next"))
    if not isinstance(who, Principal):
        audit(request, who.who, "login", 503 if who.reason == "tokens_file_broken" else 401, query="")
        if who.reason == "tokens_file_broken":
            raise ApiProblem(503, TOKENS_FILE_BROKEN, type_="urn:dibao:problem:tokens-file-broken")
        message = BAD_TOKEN
        if who.reason == "expired" and who.who is not None and who.who.expires is not None:
            message = token_expired(who.who.expires.astimezone().isoformat(sep=" ", timespec="minutes"))
        return _login_page(request, message=message, next_path=next_path, status=401)
    sessions = _sessions(request)
    sessions.end(cookie_value(request.scope, SESSION_COOKIE))  # a new id at every log-in: no session fixation
    session_id, _ = sessions.create(hash_token(token))
    audit(request, who, "login", 303, query="")
    response = RedirectResponse(next_path or f"{UI}/", status_code=303)
    lifetime = max(1, int(sessions.lifetime))
    response.headers.append("set-cookie", set_cookie_header(request.scope, SESSION_COOKIE, session_id, lifetime))
    response.headers.append("set-cookie", set_cookie_header(request.scope, LOGIN_COOKIE, "", 0))
    return response


@router.post(f"{UI}/logout")
async def logout(request: Request, user: Annotated[PageUser, Depends(page_user)]) -> Response:
    form = await read_form(request)
    check_csrf(request, user.session.csrf, form)
    _sessions(request).end(user.session_id)
    audit(request, user.who, "logout", 303, query="")
    response = RedirectResponse(f"{LOGIN_PATH}?why=logout", status_code=303)
    response.headers.append("set-cookie", set_cookie_header(request.scope, SESSION_COOKIE, "", 0))
    return response


@router.get(f"{UI}/")
def home(request: Request, user: Annotated[PageUser, Depends(page_user)]) -> Response:
    """What the caller can do here, and the served run; a caseworker's list sizes for their counties."""
    snap = deps.holder(request).snapshot
    counts: dict[str, int] = {}
    if snap is not None and user.who.reads_personal_data:
        for name, frame in snap.lists.items():
            counts[name] = deps.scoped(frame, None if user.who.is_admin else user.who.counties, None).height
    context: dict[str, Any] = {"run": snap.date if snap else None, "counts": counts,
                               "ends": user.session.ends}
    return page(request, "home.html", context)


@router.get(f"{UI}/static/{{name}}")
async def static(name: str) -> Response:
    body = static_file(name)
    if body is None:
        raise ApiProblem(404, NO_ENDPOINT_DETAIL)
    return Response(body, media_type="text/css; charset=utf-8")

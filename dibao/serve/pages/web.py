"""Who is on a web page: the session cookie read once per request, before throttling, CSRF checked on every form.

``PageSessionMiddleware`` runs outside ``throttle.ThrottleMiddleware``: for a path under ``/ui/`` it turns the
session cookie into the token holder (``audit.middleware.PRINCIPAL``), so that pages draw on the same per-token
buckets as the API and refusals are audited under the holder's name. The API itself never reads the cookie: a
bearer token there, as before, so no other site can make a browser call the API with a caseworker's session.

Cookies (``Path=/``, ``HttpOnly``, ``SameSite=Strict``; over HTTPS also ``Secure`` and the ``__Host-`` name prefix,
which a browser accepts only from this host over HTTPS):

* ``dibao_session``: the session id (``sessions.SessionStore``), for the session's remaining lifetime;
* ``dibao_login``: a random value set by the log-in page and sent back in its form (double submit), so that no
  other site can log a browser in under someone else's token. Every form after log-in carries the session's
  own CSRF token instead, and a form sent from another origin (``Origin`` header) is refused too.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from dibao.serve.audit.middleware import PRINCIPAL
from dibao.serve.auth import audit
from dibao.serve.pages.sessions import Session, SessionStore
from dibao.serve.problems import AGGREGATES_ONLY, TOKENS_FILE_BROKEN, ApiProblem
from dibao.serve.tokens import Principal, TokenBook

UI = "/ui"
LOGIN_PATH = f"{UI}/login"
SESSION_COOKIE, LOGIN_COOKIE = "dibao_session", "dibao_login"
SECURE_PREFIX = "__Host-"
PAGE_SESSION = "dibao.page_session"  # scope key: (session id, Session) of a live session
SESSION_ENDED = "dibao.page_session_ended"  # scope key: why the cookie's session no longer counts
MAX_FORM_BYTES = 4096

CSRF_FAILED = ("表单已失效或来自其他网站，请刷新页面后重试 "
               "(the form has expired or came from another site: reload the page and try again)")
FORM_INVALID = "表单格式错误 (malformed form)"
ENDED_REASONS = {
    "expired": "访问令牌已过期，请向管理员申请新令牌 (the token has expired; ask an admin for a new one)",
    "unknown": "访问令牌已被撤销，请重新登录 (the token was revoked: log in again)",
    "timeout": "登录已超时，请重新登录 (the session has ended: log in again)",
}


def cookie_name(base: str, scope: Scope) -> str:
    """``__Host-`` + name over HTTPS (Secure, this host only), the plain name over HTTP."""
    return SECURE_PREFIX + base if scope.get("scheme") == "https" else base


def cookie_value(scope: Scope, base: str) -> str | None:
    """The value of cookie ``base`` (its HTTPS name over HTTPS) from the request headers."""
    name = cookie_name(base, scope)
    for key, value in scope.get("headers", ()):
        if key == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except CookieError:
                continue
            if name in jar:
                return jar[name].value
    return None


def set_cookie_header(scope: Scope, base: str, value: str, max_age: int) -> str:
    """A ``Set-Cookie`` value: HttpOnly, SameSite=Strict, Path=/, and Secure over HTTPS; ``max_age`` 0 deletes."""
    secure = "; Secure" if scope.get("scheme") == "https" else ""
    return f"{cookie_name(base, scope)}={value}; Max-Age={max_age}; Path=/; HttpOnly; SameSite=Strict{secure}"


def is_page(path: str) -> bool:
    return path == UI or path.startswith(UI + "/")


class PageSessionMiddleware:
    """Reads the session cookie of a page request: a live session of a valid token sets ``PRINCIPAL`` and
    ``PAGE_SESSION``; one whose token was revoked or has expired is ended (``SESSION_ENDED`` says why)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_page(scope["path"]):
            state = scope["app"].state
            sessions: SessionStore = state.page_sessions
            session_id = cookie_value(scope, SESSION_COOKIE)
            session = sessions.get(session_id)
            if session is None and session_id:
                scope[SESSION_ENDED] = "timeout"
            elif session is not None:
                book: TokenBook = state.tokens
                who = book.identify_digest(session.token_sha256)
                if isinstance(who, Principal):
                    scope[PRINCIPAL] = who
                    scope[PAGE_SESSION] = (session_id, session)
                elif who.reason == "tokens_file_broken":
                    scope[SESSION_ENDED] = who.reason  # kept: the file is being fixed, not the holder's fault
                else:
                    sessions.end(session_id)
                    scope[SESSION_ENDED] = who.reason
        await self.app(scope, receive, send)


class LoginRequired(Exception):
    """No live session: the page answers with a redirect to the log-in page."""

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.target = target


def login_url(next_path: str | None = None, why: str | None = None) -> str:
    params = []
    if why:
        params.append(f"why={quote(why)}")
    if next_path and safe_next(next_path):
        params.append(f"next={quote(next_path, safe='/')}")
    return LOGIN_PATH + ("?" + "&".join(params) if params else "")


def safe_next(target: str | None) -> str | None:
    """A page to go to after log-in: a path of this site's pages only (no other host, no scheme)."""
    if not target or not target.startswith(UI + "/") or "//" in target or "\\" in target or "\n" in target:
        return None
    return target


@dataclass(frozen=True)
class PageUser:
    """The caller of a page: who, and their session (its CSRF token goes into every form)."""

    who: Principal
    session_id: str
    session: Session


def page_user(request: Request) -> PageUser:
    """A dependency: the session's holder, else a redirect to log in (503 page while the tokens file is broken)."""
    found = request.scope.get(PAGE_SESSION)
    who = request.scope.get(PRINCIPAL)
    if found is None or not isinstance(who, Principal):
        ended = request.scope.get(SESSION_ENDED)
        if ended == "tokens_file_broken":
            raise ApiProblem(503, TOKENS_FILE_BROKEN, type_="urn:dibao:problem:tokens-file-broken")
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(login_url(target if request.method == "GET" else None, ended))
    return PageUser(who, found[0], found[1])


def personal_page_user(action: str) -> Any:
    """A dependency for pages with personal data: as ``page_user``, and an analyst is refused (403, audited as
    the API's ``reader(action, personal=True)`` refuses and audits them)."""

    def dependency(request: Request) -> PageUser:
        user = page_user(request)
        if not user.who.reads_personal_data:
            audit(request, user.who, action, 403)
            raise ApiProblem(403, AGGREGATES_ONLY)
        return user

    return dependency


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (at most ``MAX_FORM_BYTES``): each field's first value."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        raise ApiProblem(400, FORM_INVALID)
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise ApiProblem(413, FORM_INVALID)
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise ApiProblem(400, FORM_INVALID) from None
    return {key: values[0] for key, values in fields.items() if values}


def same_origin(request: Request) -> bool:
    """A form sent by a page of this site. Browsers say so in ``Sec-Fetch-Site`` (Fetch Metadata); without it, an
    ``Origin`` naming another site is refused. Under this server's ``Referrer-Policy: no-referrer`` a browser
    sends ``Origin: null`` even for its own forms, so ``null`` proves nothing either way: the CSRF token decides."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin"
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    return origin == f"{request.url.scheme}://{request.headers.get('host', '')}"


def check_csrf(request: Request, expected: str | None, form: dict[str, str]) -> None:
    """403 unless the form carries ``expected`` (compared in constant time) and came from this site."""
    sent = form.get("csrf", "")
    if not expected or not sent or not same_origin(request) or not hmac.compare_digest(sent, expected):
        raise ApiProblem(403, CSRF_FAILED, type_="urn:dibao:problem:csrf")


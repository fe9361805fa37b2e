"""HTML out: the Jinja2 templates of the pages (``templates/``, autoescaped), their Content-Security-Policy, and
every error of a page shown as a page.

The pages run no script at all and load nothing from another host: one style sheet from this server
(``static/dibao.css``), charts drawn as SVG by the server (``charts``), the browser's own fonts. Their CSP says
exactly that — ``script-src 'none'``, no inline style — so an injected tag could neither run nor restyle a page.
"""

from __future__ import annotations

import datetime as dt
import json
from functools import lru_cache
from http import HTTPStatus
from importlib.resources import files
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dibao.explain import figure_text
from dibao.serve.audit.middleware import PRINCIPAL
from dibao.serve.pages.web import PAGE_SESSION, is_page
from dibao.serve.problems import PROBLEM_JSON
from dibao.serve.tokens import ROLE_LABELS, Principal

PAGE_CSP = ("default-src 'none'; script-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'")
HTML = "text/html; charset=utf-8"
STATIC: dict[str, str] = {"dibao.css": "text/css; charset=utf-8"}

# The pages a role reaches from the top bar (path, label, roles).
NAV: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("/ui/households", "户查询", frozenset({"caseworker", "admin"})),
    ("/ui/lists", "工作清单", frozenset({"caseworker", "admin"})),
    ("/ui/coverage", "覆盖率", frozenset({"caseworker", "analyst", "admin"})),
    ("/ui/runs", "运行", frozenset({"caseworker", "analyst", "admin"})),
)


def number(value: Any) -> str:
    """A figure as a caseworker reads it (``dibao explain``'s form): 941.5, 1,200, 是/否, — for none."""
    if value is None:
        return "—"
    return figure_text(value)


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def day(value: Any) -> str:
    if value is None:
        return "—"
    return value.isoformat() if isinstance(value, dt.date) else str(value)


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=PackageLoader("dibao.serve.pages", "templates"), autoescape=select_autoescape(),
                      trim_blocks=True, lstrip_blocks=True, auto_reload=False)
    env.filters.update(number=number, percent=percent, day=day, tojson=lambda v: json.dumps(v, ensure_ascii=False))
    env.globals.update(role_labels=ROLE_LABELS)
    return env


def static_file(name: str) -> bytes | None:
    if name not in STATIC:
        return None
    return (files("dibao.serve.pages") / "static" / name).read_bytes()


def nav_for(who: Principal | None) -> list[tuple[str, str]]:
    return [(path, label) for path, label, roles in NAV if who is not None and who.role in roles]


def render_html(template: str, context: dict[str, Any]) -> str:
    return environment().get_template(template).render(**context)


def page(request: Request, template: str, context: dict[str, Any], status: int = 200,
         headers: dict[str, str] | None = None) -> HTMLResponse:
    """A page for the caller of ``request``: the template with who is logged in, their CSRF token and menu."""
    who = request.scope.get(PRINCIPAL)
    found = request.scope.get(PAGE_SESSION)
    base = {"who": who if isinstance(who, Principal) else None, "csrf": found[1].csrf if found else None,
            "nav": nav_for(who if isinstance(who, Principal) else None), "path": request.url.path}
    html = render_html(template, {**base, **context})
    return HTMLResponse(html, status_code=status, media_type=HTML,
                        headers={"Content-Security-Policy": PAGE_CSP, **(headers or {})})


class ProblemPages:
    """A page's error (401, 403, 404, 429, 503 … answered as ``application/problem+json`` by the handlers and the
    throttle) becomes an HTML page with the same status, message and ``Retry-After``; the API is left alone."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_page(scope["path"]):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        body = bytearray()

        async def send_as_page(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                content_type = dict(message.get("headers", [])).get(b"content-type", b"")
                if content_type.startswith(PROBLEM_JSON.encode()):
                    start = message
                    return
            if start is not None and message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    await self._send_page(start, bytes(body), scope, send)
                return
            await send(message)

        await self.app(scope, receive, send_as_page)

    @staticmethod
    async def _send_page(start: Message, body: bytes, scope: Scope, send: Send) -> None:
        status = int(start["status"])
        try:
            problem = json.loads(body)
        except ValueError:
            problem = {}
        who = scope.get(PRINCIPAL)
        who = who if isinstance(who, Principal) else None
        html = render_html("error.html", {
            "status": status, "title": problem.get("title") or HTTPStatus(status).phrase,
            "detail": problem.get("detail") or "", "who": who, "nav": nav_for(who), "csrf": None,
            "path": scope.get("path", ""), "login": status in (401, 503)}).encode("utf-8")
        keep = {b"retry-after", b"cache-control", b"x-content-type-options", b"referrer-policy", b"x-frame-options",
                b"connection"}
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() in keep]
        headers += [(b"content-type", HTML.encode()), (b"content-length", str(len(html)).encode()),
                    (b"content-security-policy", PAGE_CSP.encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": html})

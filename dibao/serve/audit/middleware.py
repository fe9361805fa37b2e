"""Refused and malformed requests go to the audit log too: an ASGI middleware that writes an entry for every
answer of 400 or more that the endpoint did not write itself (401/404/405 anywhere, FastAPI's 422 for invalid
parameters, 500…). Endpoints that read personal data write their own entries (``dibao.serve.auth``) and mark
the request; the user is known when the token was valid (``PRINCIPAL``)."""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dibao.serve.audit.log import AuditWriteError
from dibao.serve.audit.recorder import AuditRecorder
from dibao.serve.problems import problem_response

AUDITED = "dibao.audited"  # scope key: the endpoint wrote this request's entry
PRINCIPAL = "dibao.principal"  # scope key: who the valid token belongs to
log = logging.getLogger("dibao.audit")
AUDIT_UNAVAILABLE = ("审计日志暂时无法写入：在恢复之前不提供个人信息，请稍后再试 "
                     "(the audit log cannot be written: no personal data is served until it can; try again later)")


async def audit_unavailable(request: Request, exc: Exception) -> Response:
    """An entry that had to be written first could not be: 503, and nothing the request asked for."""
    log.error("audit log cannot be written; %s %s refused with 503: %s", request.method, request.url.path, exc)
    return problem_response(503, AUDIT_UNAVAILABLE, type_="urn:dibao:problem:audit-unavailable",
                            headers={"Retry-After": "30"})


def recorder_of(scope: Scope) -> AuditRecorder | None:
    app = scope.get("app")
    recorder = getattr(getattr(app, "state", None), "audit", None)
    return recorder if isinstance(recorder, AuditRecorder) else None


def record_unaudited(scope: Scope, status: int, action: str | None = None) -> None:
    """One entry for a request nobody wrote one for; a failure to write it is logged (nothing is served)."""
    recorder = recorder_of(scope)
    if recorder is None or scope.get(AUDITED):
        return
    scope[AUDITED] = True
    who: Any = scope.get(PRINCIPAL)
    endpoint = scope.get("endpoint")
    try:
        recorder.record(user=getattr(who, "name", None), role=getattr(who, "role", None),
                        action=action or getattr(endpoint, "__name__", None) or "request",
                        path=str(scope.get("path", "")),
                        query=bytes(scope.get("query_string", b"")).decode("latin-1"), status=status)
    except AuditWriteError:
        log.exception("audit entry for a refused request (%d) not written", status)


class AuditTrailMiddleware:
    """Writes the entry of an error answer (status ≥ 400) that no endpoint wrote."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_audited(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] >= 400:
                record_unaudited(scope, int(message["status"]))
            await send(message)

        await self.app(scope, receive, send_audited)

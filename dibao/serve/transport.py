"""ASGI middleware at the edge of the API: the security headers on every answer, and a cap on request bodies.

No endpoint takes more than a small JSON object (``POST /households/lookup``), so a body over ``MAX_BODY_BYTES``
is refused with 413 before it is buffered: uvicorn itself sets no limit.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dibao.serve.headers import HSTS, SECURITY_HEADERS
from dibao.serve.problems import problem_response

MAX_BODY_BYTES = 16 * 1024
BODY_TOO_LARGE = f"请求体过大，最多 {MAX_BODY_BYTES} 字节 (request body too large: at most {MAX_BODY_BYTES} bytes)"


class SecurityHeaders:
    """Adds ``SECURITY_HEADERS`` to every HTTP answer (a page's own Content-Security-Policy is kept), and HSTS
    over HTTPS."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name == "Content-Security-Policy" and name in headers:
                        continue
                    headers[name] = value
                if https:
                    headers[HSTS[0]] = HSTS[1]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """413 for a request body over ``limit`` bytes: at once when Content-Length says so, else while it streams."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await problem_response(413, BODY_TOO_LARGE)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise HTTPException(413, BODY_TOO_LARGE)  # answered as problem+json by the handlers
            return message

        await self.app(scope, counted, send)

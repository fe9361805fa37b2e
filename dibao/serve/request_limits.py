"""Request size limits, checked before any other work: the outermost ASGI middleware answers an over-long URL
(414) or header (431) as application/problem+json, and writes the refusal to the audit log (a bounded entry).
``dibao.serve.http_protocol`` applies the same limits while the request is still being read, so a 20 MB header
is refused after its first ~40 KB instead of being read whole, and a malformed request gets a problem+json 400.
Request bodies are capped by ``transport.BodyLimit`` (413).

| variable | default | what |
|---|---|---|
| ``DIBAO_API_MAX_URL_BYTES`` | 2048 | path and query string as sent (percent-escaped) |
| ``DIBAO_API_MAX_HEADER_BYTES`` | 8192 | one header, name and value |
| ``DIBAO_API_MAX_HEADERS_BYTES`` | 32768 | all headers together |
| ``DIBAO_API_MAX_HEADER_COUNT`` | 100 | number of headers |
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from dibao.errors import ConfigError
from dibao.serve.audit.log import AuditWriteError
from dibao.serve.audit.middleware import AuditTrailMiddleware, audit_unavailable, record_unaudited
from dibao.serve.problems import problem_response

REFUSED = "dibao.refused"  # scope key set by ``dibao.serve.protocol``: the status a request was refused with
log = logging.getLogger("dibao.api")

_ENV = {"max_url_bytes": "DIBAO_API_MAX_URL_BYTES", "max_header_bytes": "DIBAO_API_MAX_HEADER_BYTES",
        "max_headers_bytes": "DIBAO_API_MAX_HEADERS_BYTES", "max_header_count": "DIBAO_API_MAX_HEADER_COUNT"}


@dataclass(frozen=True)
class RequestLimits:
    max_url_bytes: int = 2048
    max_header_bytes: int = 8192
    max_headers_bytes: int = 32768
    max_header_count: int = 100

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RequestLimits:
        env = os.environ if environ is None else environ
        values: dict[str, int] = {}
        for name, variable in _ENV.items():
            text = env.get(variable, "").strip()
            if not text:
                continue
            if not text.isdigit() or int(text) < 1:
                raise ConfigError(f"{variable}={text!r} must be a whole number above 0")
            values[name] = int(text)
        return cls(**values)

    @property
    def max_head_bytes(self) -> int:
        """What the request line and headers may take together as read from the socket (with some room for the
        method, version and line ends)."""
        return self.max_url_bytes + self.max_headers_bytes + 1024

    def detail(self, status: int) -> str:
        """The problem's ``detail`` for a refusal: Chinese, English beside."""
        if status == 414:
            return (f"请求地址过长，上限{self.max_url_bytes}字节 "
                    f"(the request URL is too long: at most {self.max_url_bytes} bytes)")
        if status == 431:
            return (f"请求头过大：单个上限{self.max_header_bytes}字节，合计上限{self.max_headers_bytes}字节，"
                    f"最多{self.max_header_count}个 (request headers too large: at most {self.max_header_bytes} "
                    f"bytes each, {self.max_headers_bytes} in all, {self.max_header_count} headers)")
        return "请求格式错误 (malformed HTTP request)"

    def check_head(self, raw_url_bytes: int, headers: Iterable[tuple[bytes, bytes]]) -> int | None:
        """414 / 431 for a request's head, or None when it is within the limits."""
        if raw_url_bytes > self.max_url_bytes:
            return 414
        total = 0
        for count, (name, value) in enumerate(headers, start=1):
            size = len(name) + len(value)
            total += size
            if size > self.max_header_bytes or total > self.max_headers_bytes or count > self.max_header_count:
                return 431
        return None


def refusal(limits: RequestLimits, status: int) -> ASGIApp:
    return problem_response(status, limits.detail(status), type_="urn:dibao:problem:request-too-large"
                            if status != 400 else "urn:dibao:problem:malformed-request",
                            headers={"Connection": "close"})


class RequestLimitMiddleware:
    """Outermost: refuses what is over the limits before the request is routed, authenticated or logged
    in full; writes the refusal to the audit log (cut to a bounded entry, numbers hashed)."""

    def __init__(self, app: ASGIApp, limits: RequestLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = scope.get(REFUSED)
        if status is None:
            url_bytes = len(scope.get("raw_path") or scope["path"].encode()) + len(scope.get("query_string", b""))
            status = self.limits.check_head(url_bytes, scope.get("headers", ()))
        if status is not None:
            await self._refuse(scope, receive, send, int(status))
            return
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, status: int) -> None:
        record_unaudited(scope, status, action="refused")
        await refusal(self.limits, status)(scope, receive, send)


class GuardedFastAPI(FastAPI):
    """FastAPI with ``RequestLimitMiddleware`` outermost and the audit of refused requests
    (``AuditTrailMiddleware``) inside it, both outside Starlette's error middleware, so that nothing runs before
    the limits and a 500 is audited too. Limits: ``app.state.request_limits``, else the environment. An audit
    entry that cannot be written (``AuditWriteError``) fails the request with 503."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_exception_handler(AuditWriteError, audit_unavailable)

    def build_middleware_stack(self) -> ASGIApp:
        limits = getattr(self.state, "request_limits", None)
        return RequestLimitMiddleware(AuditTrailMiddleware(super().build_middleware_stack()),
                                      limits if isinstance(limits, RequestLimits) else RequestLimits.from_env())

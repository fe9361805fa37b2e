"""Throttling: token buckets per client address and per token, a lockout for addresses that send bad tokens, a
budget of lookups that find nothing, and a warning when a token's lookups look like enumeration.

Before a request is handled it draws on (all or nothing, ``buckets.Buckets``):

- its address's bucket (``per_address``) — and is refused outright while the address is locked out;
- with a known token, that token's bucket (``per_token`` of its role);
- for a household lookup also the token's ``lookups`` bucket, and it must have a miss left (``lookup_misses``).

As the answer starts (before the client can read it and send its next request, perhaps to another worker): a 401
to a request that carried credentials takes one from the address's ``failed_auth``
bucket, and with none left locks the address out for ``lockout_seconds`` — whatever token it sends next. A lookup
answered 404 or 422 takes one from the token's ``lookup_misses``; once they are spent every lookup of that token
is refused (decided before the lookup, so a refusal says nothing about the ID asked for) until one refills.
Refusals are 429 ``application/problem+json`` with ``Retry-After``; a refused household lookup is audited like
any other refused attempt. A token whose lookups look like enumeration (``enumeration.EnumerationWatch``) gets a
log warning and one audit entry (action ``enumeration-suspected``) per window.

The client address is the TCP peer's, or — only when ``dibao serve --forwarded-allow-ips`` names the proxy —
the one the proxy puts in ``X-Forwarded-For`` (uvicorn's proxy-headers middleware rewrites it before this runs).
An IPv6 address is counted by its /64, since one host can hold a whole /64.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dibao.serve.audit import AuditLog
from dibao.serve.audit.middleware import AUDITED, PRINCIPAL
from dibao.serve.buckets import Buckets, Draw, Refused
from dibao.serve.enumeration import EnumerationWatch, Suspicion
from dibao.serve.limits import Bucket, Limits
from dibao.serve.problems import problem_response
from dibao.serve.tokens import Principal, TokenBook

log = logging.getLogger("dibao.api.throttle")

LOOKUP_PREFIX, LOOKUP_POST = "/households/", "/households/lookup"
# The web pages (dibao/serve/pages/): a lookup page, and a log-in form whose body carries a token.
PAGE_LOOKUP, PAGE_LOGIN = "/ui/households", "/ui/login"
THROTTLE_FILE = "throttle.sqlite3"  # in STORE/api/ unless create_app is told otherwise
TOO_MANY_TITLE = "请求过于频繁 (Too Many Requests)"
TOO_MANY_TYPE = "urn:dibao:problem:too-many-requests"
# What the caller reads, per bucket that refused: Chinese first, English beside; {s} is the wait in seconds.
REFUSALS = {
    "auth": ("认证失败次数过多，此地址已被暂时锁定，请 {s} 秒后再试 "
             "(too many failed authentication attempts from this address: locked out, retry after {s} s)"),
    "addr": "此地址请求过于频繁，请 {s} 秒后再试 (too many requests from this address: retry after {s} s)",
    "token": "此令牌请求过于频繁，请 {s} 秒后再试 (too many requests with this token: retry after {s} s)",
    "lookup": "查询过于频繁，请 {s} 秒后再试 (too many household lookups: retry after {s} s)",
    "miss": ("未找到结果的查询过多，请 {s} 秒后再试；批量核对请联系管理员 "
             "(too many lookups found nothing: retry after {s} s; for bulk checks ask an administrator)"),
}
LIMIT_NAMES = {"auth": "failed_auth", "addr": "per_address", "token": "per_token", "lookup": "lookups",
               "miss": "lookup_misses"}


def client_address(scope: Scope) -> str:
    """The caller's address as throttled: IPv4 as is, IPv6 by its /64, anything else (a test client) verbatim."""
    client = scope.get("client")
    host = str(client[0]) if client else "unknown"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


def is_household_lookup(method: str, path: str, query: bytes = b"") -> bool:
    """``GET /households/{id}`` or ``POST /households/lookup`` (dibao/serve/routers/households.py); the page
    ``/ui/households``: POST, or GET with a ``q`` (dibao/serve/pages/household.py)."""
    if path == PAGE_LOOKUP:
        return method == "POST" or (method == "GET" and any(
            part.startswith(b"q=") and len(part) > 2 for part in query.split(b"&")))
    if method == "POST":
        return path == LOOKUP_POST
    return method == "GET" and path.startswith(LOOKUP_PREFIX) and "/" not in path[len(LOOKUP_PREFIX):]


def _bearer(scope: Scope) -> tuple[bool, str | None]:
    """(credentials sent at all, the bearer token if that is what they are)."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return True, token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return False, None


def _draw(key: str, bucket: Bucket, *, cost: float = 1.0, need: float = 1.0) -> Draw:
    return Draw(key, bucket.per_second, float(bucket.burst), cost, need)


@dataclass(frozen=True)
class Caller:
    address: str
    who: Principal | None
    credentials_sent: bool
    lookup: bool


class Throttle:
    """The limits applied to one server's requests, over buckets shared by its worker processes."""

    def __init__(self, limits: Limits, state: Path | None) -> None:
        self.limits = limits
        self.buckets = Buckets(state)
        self.watch = EnumerationWatch(limits.enumeration)

    def close(self) -> None:
        self.buckets.close()

    def admit(self, caller: Caller) -> Refused | None:
        draws = [_draw(f"addr:{caller.address}", self.limits.per_address)]
        who = caller.who
        if who is not None:
            if (bucket := self.limits.per_token.get(who.role)) is not None:
                draws.append(_draw(f"token:{who.name}", bucket))
            if caller.lookup:
                if (bucket := self.limits.lookups.get(who.role)) is not None:
                    draws.append(_draw(f"lookup:{who.name}", bucket))
                if (bucket := self.limits.lookup_misses.get(who.role)) is not None:
                    draws.append(_draw(f"miss:{who.name}", bucket, cost=0.0))
        return self.buckets.admit(draws, locks=[f"auth:{caller.address}"])

    def settle(self, caller: Caller, status: int, subject: str | None) -> Suspicion | None:
        """Count the answer: failed authentication, a lookup that found nothing, the enumeration window."""
        if status == 401 and caller.credentials_sent:
            failed = self.limits.failed_auth
            if self.buckets.fail(_draw(f"auth:{caller.address}", failed), failed.lockout_seconds):
                log.warning("address %s locked out for %.0f s after repeated failed authentication",
                            caller.address, failed.lockout_seconds)
        who = caller.who
        if who is None or not caller.lookup or status not in (200, 404, 422):
            return None
        missed = status != 200
        if missed and (bucket := self.limits.lookup_misses.get(who.role)) is not None:
            self.buckets.spend(_draw(f"miss:{who.name}", bucket))
        return self.watch.observe(who.name, subject, missed, self.buckets.clock())


def refusal_response(refused: Refused) -> Any:
    kind = refused.key.partition(":")[0]
    seconds = refused.retry_after
    return problem_response(429, REFUSALS[kind].format(s=seconds), type_=TOO_MANY_TYPE, title=TOO_MANY_TITLE,
                            headers={"Retry-After": str(seconds)}, limit=LIMIT_NAMES[kind], retry_after=seconds)


def _audit(audit: AuditLog, who: Principal, action: str, path: str, query: str, status: int,
           count: int | None = None) -> None:
    """The one place this module writes to the audit log (its public ``append`` only)."""
    audit.append(user=who.name, role=who.role, action=action, path=path, query=query, status=status, count=count)


def _report(audit: AuditLog, who: Principal, suspicion: Suspicion, status: int) -> None:
    log.warning("possible enumeration by token %r (%s): %d lookups, %d found nothing, %d different IDs in %.0f s",
                who.name, who.role, suspicion.lookups, suspicion.not_found, suspicion.distinct,
                suspicion.window_seconds)
    figures = f"not_found={suspicion.not_found}&distinct={suspicion.distinct}&window={suspicion.window_seconds:g}s"
    _audit(audit, who, "enumeration-suspected", "/households", figures, status, suspicion.lookups)


class ThrottleMiddleware:
    """Applies ``app.state.throttle`` to every HTTP request; tokens and audit log from ``app.state`` too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        throttle: Throttle = state.throttle
        sent, token = _bearer(scope)
        book: TokenBook = state.tokens
        # A page's caller is its session's token holder, found by the page session middleware just outside.
        session_holder = scope.get(PRINCIPAL)
        who = book.verify(token) if token else session_holder if isinstance(session_holder, Principal) else None
        sent = sent or (scope["method"] == "POST" and scope["path"] == PAGE_LOGIN)
        caller = Caller(client_address(scope), who, sent,
                        is_household_lookup(scope["method"], scope["path"], scope.get("query_string", b"")))
        refused = throttle.admit(caller)
        if refused is not None:
            if caller.who is not None and caller.lookup:
                scope[AUDITED] = True  # the audit trail middleware writes no second entry for this 429
                _audit(state.audit, caller.who, "household", scope["path"],
                       scope.get("query_string", b"").decode("latin-1"), 429)
            await refusal_response(refused)(scope, receive, send)
            return
        status, settled = 500, False
        suspicion: Suspicion | None = None

        def settle() -> None:
            nonlocal settled, suspicion
            settled = True
            suspicion = throttle.settle(caller, status, (scope.get("state") or {}).get("lookup_subject"))

        async def send_settling_first(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                # Counted before the client can read the answer: its next request, on whichever worker process,
                # must already meet this miss or failed authentication (settling after the send let one through).
                settle()
            await send(message)

        try:
            await self.app(scope, receive, send_settling_first)
        finally:
            if not settled:  # no answer started (an error): counted as the 500 it becomes
                settle()
            if suspicion is not None and caller.who is not None:
                _report(state.audit, caller.who, suspicion, status)

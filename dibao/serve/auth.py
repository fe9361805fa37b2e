"""Who is calling and what they may read: bearer tokens checked per request (401 / 403), and every household
lookup, list read or refused attempt written to the audit log."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from dibao.serve.audit.middleware import AUDITED, PRINCIPAL
from dibao.serve.audit.recorder import AuditRecorder
from dibao.serve.problems import AGGREGATES_ONLY, TOKEN_REQUIRED, TOKENS_FILE_BROKEN, ApiProblem, token_expired
from dibao.serve.tokens import Principal, Refusal, TokenBook

bearer = HTTPBearer(auto_error=False, description="令牌 / token from `add_token` (Authorization: Bearer <token>)")


def audit(request: Request, who: Principal | None, action: str, status: int, count: int | None = None,
          query: str | None = None) -> None:
    """One audit entry for this request (``query``: what was asked in the body, e.g. ``id=…`` of a POST)."""
    request.scope[AUDITED] = True  # written here: the audit trail middleware writes no second entry
    log: AuditRecorder = request.app.state.audit
    log.append(user=who.name if who else None, role=who.role if who else None, action=action,
               path=request.url.path, query=request.url.query if query is None else query, status=status, count=count)


def reader(action: str | None, *, personal: bool) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller's principal; 401 without a valid token (an expired one: saying so), 503 while the
    tokens file is broken, 403 for an analyst on personal data.

    With ``action`` set, refusals are audited too (who tried to read what).
    """

    async def dependency(request: Request,
                         credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
        book: TokenBook = request.app.state.tokens
        who = book.identify(credentials.credentials if credentials else None)
        if isinstance(who, Refusal):
            status = 503 if who.reason == "tokens_file_broken" else 401
            if action:
                audit(request, who.who, action, status)
            if who.reason == "tokens_file_broken":  # fail closed; 503, not 401: no caller's fault, no lockout
                raise ApiProblem(503, TOKENS_FILE_BROKEN, type_="urn:dibao:problem:tokens-file-broken")
            if who.reason == "expired" and who.who is not None and who.who.expires is not None:
                when = who.who.expires.astimezone().isoformat(sep=" ", timespec="minutes")
                raise ApiProblem(401, token_expired(when), type_="urn:dibao:problem:token-expired",
                                 headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
            raise ApiProblem(401, TOKEN_REQUIRED, headers={"WWW-Authenticate": "Bearer"})
        if personal and not who.reads_personal_data:
            if action:
                audit(request, who, action, 403)
            raise ApiProblem(403, AGGREGATES_ONLY)
        request.scope[PRINCIPAL] = who  # a later refusal (FastAPI's 422) is audited under this name
        return who

    return dependency


class Audited:
    """``with Audited(request, who, action) as a: ...; a.count = n`` records the outcome, errors included."""

    def __init__(self, request: Request, who: Principal, action: str, query: str | None = None) -> None:
        self.request, self.who, self.action, self.query = request, who, action, query
        self.count: int | None = None

    def __enter__(self) -> Audited:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        status = 200 if exc is None else exc.status if isinstance(exc, ApiProblem) else 500
        audit(self.request, self.who, self.action, status, self.count if exc is None else None, self.query)

"""Who is calling and what they may read: bearer tokens checked per request (401 / 403), and every household
lookup, list read or refused attempt written to the audit log."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from dibao.serve.audit import AuditLog
from dibao.serve.problems import AGGREGATES_ONLY, TOKEN_REQUIRED, ApiProblem
from dibao.serve.tokens import Principal, TokenBook

bearer = HTTPBearer(auto_error=False, description="令牌 / token from `add_token` (Authorization: Bearer <token>)")


def audit(request: Request, who: Principal | None, action: str, status: int, count: int | None = None) -> None:
    """One audit entry for this request."""
    log: AuditLog = request.app.state.audit
    log.append(user=who.name if who else None, role=who.role if who else None, action=action,
               path=request.url.path, query=request.url.query, status=status, count=count)


def reader(action: str | None, *, personal: bool) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller's principal; 401 without a known token, 403 for an analyst on personal data.

    With ``action`` set, refusals are audited too (who tried to read what).
    """

    async def dependency(request: Request,
                         credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
        book: TokenBook = request.app.state.tokens
        who = book.verify(credentials.credentials if credentials else None)
        if who is None:
            if action:
                audit(request, None, action, 401)
            raise ApiProblem(401, TOKEN_REQUIRED, headers={"WWW-Authenticate": "Bearer"})
        if personal and not who.reads_personal_data:
            if action:
                audit(request, who, action, 403)
            raise ApiProblem(403, AGGREGATES_ONLY)
        return who

    return dependency


class Audited:
    """``with Audited(request, who, action) as a: ...; a.count = n`` records the outcome, errors included."""

    def __init__(self, request: Request, who: Principal, action: str) -> None:
        self.request, self.who, self.action = request, who, action
        self.count: int | None = None

    def __enter__(self) -> Audited:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        status = 200 if exc is None else exc.status if isinstance(exc, ApiProblem) else 500
        audit(self.request, self.who, self.action, status, self.count if exc is None else None)

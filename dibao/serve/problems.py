"""Errors as RFC 9457 ``application/problem+json``: the messages a caseworker reads (Chinese, English beside), the
responses' OpenAPI documentation, and the exception handlers. No traceback or SQL ever leaves the server."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from dibao.serve.headers import SECURITY_HEADERS
from dibao.serve.models import Problem

log = logging.getLogger("dibao.api")

PROBLEM_JSON = "application/problem+json"

# What the caller reads: Chinese first, the English beside it.
TOKEN_REQUIRED = ("需要有效的访问令牌：请在请求头中写 Authorization: Bearer <令牌> "
                  "(a valid bearer token is required: Authorization: Bearer <token>)")
AGGREGATES_ONLY = ("统计分析人员只能查看汇总统计（覆盖率、运行记录、名单户数）；查看个人信息需要经办人员或管理员的令牌 "
                   "(the analyst role reads aggregate statistics only — coverage, runs, counts; personal data needs "
                   "a caseworker or admin token)")
TOKENS_FILE_BROKEN = ("令牌文件损坏，修复前暂停所有需要令牌的访问；原因见服务器日志 "
                      "(the tokens file is broken: every token is refused until it is fixed; the server log says why)")


def token_expired(when: str) -> str:
    return f"访问令牌已于 {when} 过期，请向管理员申请新令牌 (the token expired on {when}; ask an admin for a new one)"


# The detail of a malformed ID number is ``check_id(...).problem()`` (dibao/normalise/ids.py), Chinese with
# English beside.
INVALID_ID_TITLE = "证件号码有误 (Invalid ID number)"
NOT_FOUND_DETAIL = ("nothing in the served run matches this ID number or household number "
                    "(未找到匹配的证件号码或家庭编号)")
NO_RUN_DETAIL = "no run has been published in this store yet (尚无已发布的运行)"
NO_ENDPOINT_DETAIL = "no such endpoint; see /docs"
SERVER_ERROR_DETAIL = "an unexpected error occurred; it has been logged on the server"


def no_run_for(date: str) -> str:
    return f"no run is published for {date}"


class ApiProblem(Exception):
    """An error answered as application/problem+json."""

    def __init__(self, status: int, detail: str, *, type_: str = "about:blank", title: str | None = None,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.type = type_
        self.title = title or HTTPStatus(status).phrase
        self.headers = headers
        self.extra = extra


def problem_response(status: int, detail: str, *, type_: str = "about:blank", title: str | None = None,
                     headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body = {"type": type_, "title": title or HTTPStatus(status).phrase, "status": status, "detail": detail, **extra}
    # The security headers here too: a 500 is answered outside the middleware that adds them.
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON,
                        headers={**SECURITY_HEADERS, **(headers or {})})


_PROBLEM_SCHEMA = Problem.model_json_schema()


def problem_doc(description: str) -> dict[str, Any]:
    """An OpenAPI response entry whose body is a Problem."""
    return {"description": description, "content": {PROBLEM_JSON: {"schema": _PROBLEM_SCHEMA}}}


AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: problem_doc("缺少或无效的令牌 / missing or unknown bearer token"),
    422: problem_doc("参数无效 / invalid parameters"),
    503: problem_doc("尚无已发布的运行，或令牌文件损坏 / no run published yet, or the tokens file is broken"),
}
PERSONAL_ERRORS: dict[int | str, dict[str, Any]] = {
    **AUTH_ERRORS, 403: problem_doc("统计分析人员无权查看个人信息 / the analyst role reads aggregates only")}
NO_RUN_ERROR: dict[int | str, dict[str, Any]] = {404: problem_doc("无此日期的运行 / no run for that date")}


def install_handlers(app: FastAPI) -> None:
    """Every error of ``app`` as application/problem+json."""

    @app.exception_handler(ApiProblem)
    async def _api_problem(_: Request, exc: ApiProblem) -> JSONResponse:
        return problem_response(exc.status, exc.detail, type_=exc.type, title=exc.title, headers=exc.headers,
                                **exc.extra)

    @app.exception_handler(StarletteHTTPException)
    async def _http_problem(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if exc.status_code == 404:
            detail = NO_ENDPOINT_DETAIL
        return problem_response(exc.status_code, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_problem(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))} for e in exc.errors()]
        detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors) or "invalid request"
        return problem_response(422, detail, type_="urn:dibao:problem:invalid-request",
                                title="Invalid request parameters", errors=errors)

    @app.exception_handler(Exception)
    async def _server_problem(_: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=exc)
        return problem_response(500, SERVER_ERROR_DETAIL)

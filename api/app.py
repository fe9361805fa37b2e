"""The FastAPI application: household lookup, work lists, runs and diffs, coverage statistics.

Roles (tokens file, see api/tokens.py): a ``caseworker`` reads households and lists of their own counties, an
``analyst`` reads aggregates only (coverage, runs, counts), an ``admin`` reads everything. A household outside a
caseworker's counties gets exactly the answer an unknown number gets. Personal data is masked wherever the role
does not need it in full (api/masking.py). Every household lookup and list read is written to the hash-chained
audit log (api/audit.py). Every error is ``application/problem+json``; no traceback or SQL ever leaves the server.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Any, Literal

import polars as pl
from fastapi import Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.audit import AuditLog
from api.masking import looks_like_id, mask_id, mask_name, mask_person_key, mask_subject_id
from api.models import (
    CandidatePage,
    CountRow,
    CoverageRow,
    DiffPage,
    Health,
    HouseholdLookup,
    Level,
    ListName,
    Problem,
    RunInfo,
)
from api.snapshot import RunSnapshot, SnapshotHolder, id_problem
from api.tokens import Principal, TokenBook
from dibao import __version__
from dibao.explain import fact_label
from dibao.rules.params import UNITS
from dibao.state import CHANGE_LABELS, LIST_LABELS
from dibao.store import RunStore

log = logging.getLogger("dibao.api")

PROBLEM_JSON = "application/problem+json"
METHOD_LABELS = {"exact": "证件号一致", "upgraded_15": "15位升18位", "repaired_id": "证件号纠错",
                 "name_match": "户内姓名匹配", "internal": "未关联"}
NOT_FOUND_DETAIL = ("nothing in the served run matches this ID number or household number "
                    "(未找到匹配的证件号码或家庭编号)")


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
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


_PROBLEM_SCHEMA = Problem.model_json_schema()


def _problem_doc(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_JSON: {"schema": _PROBLEM_SCHEMA}}}


AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: _problem_doc("缺少或无效的令牌 / missing or unknown bearer token"),
    422: _problem_doc("参数无效 / invalid parameters"),
    503: _problem_doc("尚无已发布的运行 / no run published yet"),
}
PERSONAL_ERRORS: dict[int | str, dict[str, Any]] = {
    **AUTH_ERRORS, 403: _problem_doc("统计分析人员无权查看个人信息 / the analyst role reads aggregates only")}

bearer = HTTPBearer(auto_error=False, description="令牌 / token from `add_token` (Authorization: Bearer <token>)")


# --- state and dependencies ----------------------------------------------------------------------------------


def _holder(request: Request) -> SnapshotHolder:
    holder: SnapshotHolder = request.app.state.snapshots
    return holder


def _snapshot(request: Request) -> RunSnapshot:
    snap = _holder(request).snapshot
    if snap is None:
        raise ApiProblem(503, "no run has been published in this store yet (尚无已发布的运行)",
                         type_="urn:dibao:problem:no-run")
    return snap


def _audit(request: Request, who: Principal | None, action: str, status: int, count: int | None = None) -> None:
    audit: AuditLog = request.app.state.audit
    audit.append(user=who.name if who else None, role=who.role if who else None, action=action,
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
                _audit(request, None, action, 401)
            raise ApiProblem(401, "a valid bearer token is required (Authorization: Bearer <token>)",
                             headers={"WWW-Authenticate": "Bearer"})
        if personal and not who.reads_personal_data:
            if action:
                _audit(request, who, action, 403)
            raise ApiProblem(403, "the analyst role reads aggregate statistics only (coverage, runs, counts); "
                                  "personal data needs a caseworker or admin token")
        return who

    return dependency


class _Audited:
    """``with _Audited(request, who, action) as a: ...; a.count = n`` records the outcome, errors included."""

    def __init__(self, request: Request, who: Principal, action: str) -> None:
        self.request, self.who, self.action = request, who, action
        self.count: int | None = None

    def __enter__(self) -> _Audited:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        status = 200 if exc is None else exc.status if isinstance(exc, ApiProblem) else 500
        _audit(self.request, self.who, self.action, status, self.count if exc is None else None)


# --- views with masking ----------------------------------------------------------------------------------------


def _full_view(who: Principal, county_code: str | None) -> bool:
    """Personal data in full: an admin always; a caseworker in a single-household lookup of their own county."""
    return who.is_admin or (who.role == "caseworker" and county_code in who.counties)


def _household_view(h: dict[str, Any], who: Principal) -> dict[str, Any]:
    full = _full_view(who, h["county_code"])
    members = []
    for m in h["members"]:
        key = m["person_key"]
        id_number = key if looks_like_id(key) else None
        members.append({
            "name": m["name"] if full else mask_name(m["name"]),
            "id_number": id_number if full else mask_id(id_number),
            "person_key": key if full else mask_person_key(key),
            "source": m["source"], "row": m["row"], "method": m["method"],
            "method_label": METHOD_LABELS.get(m["method"], m["method"]),
            "score": m["score"], "evidence": m["evidence"], "id_status": m["id_status"],
        })
    decisions = []
    for d in h["decisions"]:
        parameters = {}
        for name, p in d["parameters"].items():
            p = dict(p) if isinstance(p, dict) else {"value": p}
            if p.get("unit"):
                p["unit_label"] = UNITS.get(p["unit"], p["unit"])
            parameters[name] = p
        decisions.append({**d, "outcome_label": LIST_LABELS.get(d["outcome"], d["outcome"]),
                          "parameters": parameters})
    return {
        **{k: h[k] for k in ("subject_type", "source", "household_id", "county_code", "town", "village",
                             "first_seen", "grace_start", "grace_until")},
        "head_name": h["head_name"] if full else mask_name(h["head_name"]),
        "head_id": h["head_id"] if full else mask_id(h["head_id"]),
        "in_scope": who.sees_county(h["county_code"]),
        "facts": [{"name": k, "label": fact_label(k), "value": v} for k, v in h["facts"].items()],
        "decisions": decisions,
        "members": members,
        "history": [{"run_date": e["run_date"], "lists": [
            {**entry, "list_label": LIST_LABELS.get(entry["list"], entry["list"])} for entry in e["lists"]]}
            for e in h["history"]],
    }


def _figures(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {"value": value}


def _candidate_view(name: str, row: dict[str, Any], who: Principal) -> dict[str, Any]:
    full = who.is_admin
    if name == "flag":
        reasons, labels = [row["code"]], [row["label"]]
    else:
        reasons, labels = row["reasons"] or [], row["reason_labels"] or []
    return {
        "list": name,
        "subject_type": row.get("subject_type", "roll" if name == "exit" else "household"),
        "subject_id": row["subject_id"] if full else mask_subject_id(row["subject_id"]),
        "source": row.get("source", "dibao_roll" if name == "exit" else None),
        "county_code": row.get("county_code"), "town": row.get("town"), "village": row.get("village"),
        "head_name": row.get("head_name") if full else mask_name(row.get("head_name")),
        "head_id": row.get("head_id") if full else mask_id(row.get("head_id")),
        "reasons": reasons, "reason_labels": labels, "figures": _figures(row.get("figures")),
        "detail": row.get("detail"), "first_seen": row.get("first_seen"),
        "grace_start": row.get("grace_start"), "grace_until": row.get("grace_until"),
    }


def _scoped(frame: pl.DataFrame, who: Principal, county: str | None) -> pl.DataFrame:
    """Rows of the caller's counties (a caseworker), narrowed to ``county`` when given."""
    if not frame.width:
        return frame
    if not who.is_admin:
        frame = frame.filter(pl.col("county_code").is_in(sorted(who.counties)))
    if county is not None:
        frame = frame.filter(pl.col("county_code") == county)
    return frame


def _page(frame: pl.DataFrame, page: int, size: int) -> list[dict[str, Any]]:
    return frame.slice((page - 1) * size, size).to_dicts() if frame.width else []


def _run_date(request: Request, date: dt.date | None) -> dt.date:
    """The run asked for (default: the served one); 404 when no such run is published."""
    if date is None:
        return _snapshot(request).date
    if _holder(request).files.stamp(date) is None:
        raise ApiProblem(404, f"no run is published for {date.isoformat()}")
    return date


def _manifest_info(holder: SnapshotHolder, date: dt.date, served: dt.date | None) -> dict[str, Any] | None:
    try:
        m = holder.files.manifest(date)
    except (OSError, ValueError):
        return None
    decisions = m.get("decisions") or {}
    previous = m.get("previous_run")
    return {
        "date": date, "served": date == served,
        "previous_run": dt.date.fromisoformat(previous) if isinstance(previous, str) else None,
        "counts": {k: decisions.get(k) for k in ("exit_candidates", "inclusion_candidates", "flags")},
        "changes": {k: int(v) for k, v in (m.get("changes") or {}).items()},
        "summary": m.get("summary"), "rejected_rows": m.get("rejected_rows"),
        "skipped": m.get("skipped") or {}, "content_sha256": m.get("content_sha256"),
    }


# --- the application -----------------------------------------------------------------------------------------


def create_app(store: Path, tokens_file: Path, audit_dir: Path | None = None, *,
               refresh_seconds: float = 2.0) -> FastAPI:
    """The API over the run store ``store``; tokens from ``tokens_file``; audit log in ``audit_dir``
    (default ``store/audit``). The newest published run is served and swapped in when a newer one appears
    (checked every ``refresh_seconds``)."""
    holder = SnapshotHolder(RunStore(store), refresh_seconds=refresh_seconds)
    audit = AuditLog(audit_dir if audit_dir is not None else store / "audit")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        holder.start()
        try:
            yield
        finally:
            holder.stop()

    app = FastAPI(
        title="dibao API — 低保 核对服务",
        version=__version__,
        description=(
            "户籍/低保/监测/银行/部门数据比对结果查询。经办人员按证件号或家庭编号查询本县家庭及其判定依据；"
            "统计分析人员查看覆盖率等汇总指标。\n\n"
            "Household lookup with the reasons behind every flag (caseworkers, own counties only), work lists, "
            "run history and coverage statistics (analysts: aggregates only). Authenticate with "
            "`Authorization: Bearer <token>`. Errors are `application/problem+json`."),
        lifespan=lifespan,
    )
    app.state.snapshots = holder
    app.state.tokens = TokenBook(tokens_file)
    app.state.audit = audit

    @app.exception_handler(ApiProblem)
    async def _api_problem(_: Request, exc: ApiProblem) -> JSONResponse:
        return problem_response(exc.status, exc.detail, type_=exc.type, title=exc.title, headers=exc.headers,
                                **exc.extra)

    @app.exception_handler(StarletteHTTPException)
    async def _http_problem(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if exc.status_code == 404:
            detail = "no such endpoint; see /docs"
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
        return problem_response(500, "an unexpected error occurred; it has been logged on the server")

    @app.get("/health", response_model=Health, tags=["service"], summary="服务状态 / health")
    async def health(request: Request) -> dict[str, Any]:
        snap = _holder(request).snapshot
        return {"status": "ok", "run": snap.date if snap else None}

    @app.get("/households/{id}", response_model=HouseholdLookup, tags=["households"],
             summary="按证件号或家庭编号查询家庭 / one household across systems",
             responses={**PERSONAL_ERRORS,
                        404: _problem_doc("未找到 (或不在本人辖区) / not found, or outside the caller's counties"),
                        422: _problem_doc("证件号码格式错误，说明具体问题 / malformed ID number: what is wrong")})
    async def household(
        request: Request,
        id: Annotated[str, PathParam(max_length=64, description=(
            "公民身份号码 (15/18位，可含空格、连字符、全角、小写x) 或任一系统的家庭编号 / ID number (any formatting) "
            "or a household number of any source"))],
        who: Annotated[Principal, Depends(reader("household", personal=True))],
    ) -> dict[str, Any]:
        """The family across systems: households, members with link evidence, every decision with its figures,
        parameters in force and policy reference, 渐退 dates, and the lists it was on in every published run."""
        with _Audited(request, who, "household") as audited:
            snap = _snapshot(request)
            found = snap.resolve(id)
            gids = tuple(g for g in found.gids if who.is_admin or snap.counties_of(g) & who.counties)
            if not gids:
                fault = id_problem(id) if found.looks_like_id else None
                if fault is not None:
                    raise ApiProblem(422, fault[1], type_="urn:dibao:problem:invalid-id-number",
                                     title="Invalid ID number", id_status=fault[0])
                raise ApiProblem(404, NOT_FOUND_DETAIL)
            households = [_household_view(h, who) for h in snap.family(gids)]
            audited.count = len(households)
            return {"run": snap.date, "matched_by": found.matched_by, "person_key": found.person_key,
                    "households": households}

    @app.get("/candidates", response_model=CandidatePage, tags=["lists"], summary="工作名单 / work lists",
             responses=PERSONAL_ERRORS)
    def candidates(
        request: Request,
        who: Annotated[Principal, Depends(reader("candidates", personal=True))],
        type: Annotated[ListName, Query(description="exit 应退尽退 | inclusion 应保尽保 | flag 其他核查")] = "exit",
        county: Annotated[str | None, Query(pattern=r"^[0-9]{6}$", description="县级区划代码")] = None,
        township: Annotated[str | None, Query(max_length=64, description="乡镇 / township")] = None,
        reason: Annotated[str | None, Query(max_length=64, description="原因代码 / reason code")] = None,
        page: Annotated[int, Query(ge=1, le=1_000_000, description="页码 / page")] = 1,
        size: Annotated[int, Query(ge=1, le=500, description="每页条数 / page size")] = 50,
        sort: Annotated[Literal["first_seen", "-first_seen", "town", "subject_id"],
                        Query(description="排序 / order")] = "first_seen",
        date: Annotated[dt.date | None, Query(description="运行日期 (默认当前) / run date")] = None,
    ) -> dict[str, Any]:
        """One list of a run, filtered and paged; a caseworker sees their counties only, with names and ID
        numbers masked."""
        with _Audited(request, who, "candidates") as audited:
            run = _run_date(request, date)
            snap = _holder(request).snapshot
            lists = snap.lists if snap is not None and snap.date == run else _holder(request).files.lists(run)
            frame = _scoped(lists[type], who, county)
            if frame.width:
                if township is not None:
                    frame = frame.filter(pl.col("town") == township)
                if reason is not None:
                    frame = frame.filter(pl.col("code") == reason if type == "flag"
                                         else pl.col("reasons").list.contains(reason))
                by = sort.lstrip("-")
                frame = frame.sort([by, "subject_id"], descending=[sort.startswith("-"), False], nulls_last=True)
            items = [_candidate_view(type, row, who) for row in _page(frame, page, size)]
            audited.count = len(items)
            return {"run": run, "type": type, "total": frame.height, "page": page, "size": size, "items": items}

    @app.get("/runs", response_model=list[RunInfo], tags=["runs"], summary="已发布的运行 / published runs",
             responses=AUTH_ERRORS)
    def runs(request: Request,
             who: Annotated[Principal, Depends(reader(None, personal=False))]) -> list[dict[str, Any]]:
        """Every published run, oldest first, with its counts, changes and summary (aggregates only)."""
        holder = _holder(request)
        snap = holder.snapshot
        infos = [_manifest_info(holder, d, snap.date if snap else None) for d in holder.files.dates()]
        return [i for i in infos if i is not None]

    @app.get("/runs/{date}/diff", response_model=DiffPage, tags=["runs"],
             summary="与上次运行相比的变化 / changes since the previous run",
             responses={**PERSONAL_ERRORS, 404: _problem_doc("无此日期的运行 / no run for that date")})
    def diff(
        request: Request,
        date: Annotated[dt.date, PathParam(description="运行日期 / run date, YYYY-MM-DD")],
        who: Annotated[Principal, Depends(reader("diff", personal=True))],
        list: Annotated[ListName | None, Query(description="名单 / list")] = None,
        change: Annotated[Literal["added", "resolved", "changed"] | None, Query(description="变化 / change")] = None,
        county: Annotated[str | None, Query(pattern=r"^[0-9]{6}$", description="县级区划代码")] = None,
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
        size: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> dict[str, Any]:
        """Items added to, resolved from or changed on each list in that run; a caseworker sees their counties."""
        with _Audited(request, who, "diff") as audited:
            run = _run_date(request, date)
            frame = _scoped(_holder(request).files.diff(run), who, county)
            if frame.width:
                if list is not None:
                    frame = frame.filter(pl.col("list") == list)
                if change is not None:
                    frame = frame.filter(pl.col("change") == change)
            items = [{**row, "subject_id": row["subject_id"] if who.is_admin else mask_subject_id(row["subject_id"]),
                      "list_label": LIST_LABELS.get(row["list"], row["list"]),
                      "change_label": CHANGE_LABELS.get(row["change"], row["change"]),
                      "date": row.get("date") or run}
                     for row in _page(frame, page, size)]
            audited.count = len(items)
            return {"run": run, "total": frame.height, "page": page, "size": size, "items": items}

    @app.get("/coverage", response_model=list[CoverageRow], tags=["statistics"],
             summary="覆盖率等指标 / coverage statistics",
             responses={**AUTH_ERRORS, 404: _problem_doc("无此日期的运行 / no run for that date")})
    def coverage(
        request: Request,
        who: Annotated[Principal, Depends(reader(None, personal=False))],
        level: Annotated[Level | None, Query(description="层级 / county, city or province")] = None,
        area: Annotated[str | None, Query(max_length=12, description="区划代码 / area code")] = None,
        date: Annotated[dt.date | None, Query(description="运行日期 (默认当前) / run date")] = None,
    ) -> list[dict[str, Any]]:
        """Coverage rates of one run by county, city and province (empty for runs made before coverage)."""
        holder = _holder(request)
        snap = holder.snapshot
        if date is None and snap is None:
            return []
        run = _run_date(request, date)
        frame = snap.coverage if snap is not None and snap.date == run else holder.files.coverage(run)
        if level is not None:
            frame = frame.filter(pl.col("level") == level)
        if area is not None:
            frame = frame.filter(pl.col("area_code") == area)
        return frame.to_dicts()

    @app.get("/coverage/trend", response_model=list[CoverageRow], tags=["statistics"],
             summary="指标历次变化 / coverage across all published runs", responses=AUTH_ERRORS)
    def coverage_trend(
        request: Request,
        who: Annotated[Principal, Depends(reader(None, personal=False))],
        measure: Annotated[str | None, Query(max_length=64, description="指标 / e.g. rural_dibao_coverage")] = None,
        area: Annotated[str | None, Query(max_length=12, description="区划代码 / area code")] = None,
        level: Annotated[Level | None, Query(description="层级 / county, city or province")] = None,
    ) -> list[dict[str, Any]]:
        """One row per run for each (level, area, measure), oldest run first."""
        holder = _holder(request)
        frames = []
        for d in holder.files.dates():
            try:
                frames.append(holder.files.coverage(d))
            except FileNotFoundError:  # removed (rebuilt) since listed
                continue
        if not frames:
            return []
        frame = pl.concat(frames, how="vertical_relaxed")
        if measure is not None:
            frame = frame.filter(pl.col("measure") == measure)
        if area is not None:
            frame = frame.filter(pl.col("area_code") == area)
        if level is not None:
            frame = frame.filter(pl.col("level") == level)
        return frame.sort("measure", "level", "area_code", "run_date").to_dicts()

    @app.get("/counts", response_model=list[CountRow], tags=["statistics"],
             summary="名单户数汇总 / list counts by county and reason",
             responses={**AUTH_ERRORS, 404: _problem_doc("无此日期的运行 / no run for that date")})
    def counts(
        request: Request,
        who: Annotated[Principal, Depends(reader(None, personal=False))],
        date: Annotated[dt.date | None, Query(description="运行日期 (默认当前) / run date")] = None,
    ) -> list[dict[str, Any]]:
        """How many households each list holds per county and reason (aggregates, no personal data)."""
        run = _run_date(request, date)
        snap = _holder(request).snapshot
        lists = snap.lists if snap is not None and snap.date == run else _holder(request).files.lists(run)
        rows: list[dict[str, Any]] = []
        for name, frame in lists.items():
            if not frame.width or not frame.height:
                continue
            if name == "flag":
                exploded = frame.select("county_code", pl.col("code").alias("reason"),
                                        pl.col("label").alias("reason_label"))
            else:
                exploded = frame.select("county_code", pl.col("reasons").alias("reason"),
                                        pl.col("reason_labels").alias("reason_label")).explode(
                    "reason", "reason_label")
            grouped = exploded.group_by("county_code", "reason", "reason_label").len("count").sort(
                "county_code", "reason")
            rows.extend({**r, "list": name} for r in grouped.to_dicts())
        return rows

    return app

"""The FastAPI application, wired: household lookup, work lists, runs and diffs, coverage statistics.

Roles (tokens file, see ``tokens``): a ``caseworker`` reads households and lists of their own counties, an
``analyst`` reads aggregates only (coverage, runs, counts), an ``admin`` reads everything. A household outside a
caseworker's counties gets exactly the answer an unknown number gets. Personal data is masked wherever the role
does not need it in full (``masking``). Every household lookup and list read is written to the hash-chained audit
log (``audit``). Every error is ``application/problem+json`` (``problems``). Requests are throttled per address
and per token (``throttle``); every answer carries no-store/nosniff/no-referrer headers (``headers``); /docs is
served without any CDN (``docs``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from dibao import __version__
from dibao.private_files import secure_service_files
from dibao.publish.store import RunStore
from dibao.serve.audit.recorder import AuditRecorder
from dibao.serve.audit.settings import AuditSettings
from dibao.serve.docs import install_docs
from dibao.serve.limits import Limits, limits_from
from dibao.serve.pages import install_pages
from dibao.serve.problems import install_handlers
from dibao.serve.request_limits import GuardedFastAPI, RequestLimits
from dibao.serve.routers import households, lists, runs, service, statistics
from dibao.serve.statistics_tables import Disclosure
from dibao.serve.throttle import THROTTLE_FILE, Throttle, ThrottleMiddleware
from dibao.serve.tokens import TokenBook
from dibao.serve.transport import BodyLimit, SecurityHeaders
from dibao.serve.watcher import SnapshotHolder

DESCRIPTION = (
    "户籍/低保/监测/银行/部门数据比对结果查询。经办人员按证件号或家庭编号查询本县家庭及其判定依据；"
    "统计分析人员查看覆盖率等汇总指标。\n\n"
    "Household lookup with the reasons behind every flag (caseworkers, own counties only), work lists, "
    "run history and coverage statistics (analysts: aggregates only). Authenticate with "
    "`Authorization: Bearer <token>`. Errors are `application/problem+json`.")


def create_app(store: Path, tokens_file: Path, audit_dir: Path | None = None, *,
               refresh_seconds: float = 2.0, request_limits: RequestLimits | None = None,
               audit_settings: AuditSettings | None = None, limits: Limits | None = None,
               throttle_state: Path | None = None) -> FastAPI:
    """The API over the run store ``store``; tokens from ``tokens_file``; audit log in ``audit_dir``
    (default ``store/audit``). The newest published run is served and swapped in when a newer one appears
    (checked every ``refresh_seconds``). Requests are throttled by ``limits`` (default: ``limits.DEFAULTS``) over
    buckets in ``throttle_state`` (default ``store/api/throttle.sqlite3``, shared by worker processes).
    Everything it writes is owner-only (umask 0o077; a store, tokens file or audit folder others can read is fixed
    with a warning: ``dibao/private_files.py``)."""
    secure_service_files(store, tokens_file, audit_dir if audit_dir is not None else store / "audit")
    holder = SnapshotHolder(RunStore(store), refresh_seconds=refresh_seconds)
    # Audit: settings from the environment (dibao/serve/audit/settings.py); size limits: request_limits.py
    recorder = AuditRecorder(audit_settings or AuditSettings.for_store(store, audit_dir))
    throttle = Throttle(limits or limits_from(), throttle_state or store / "api" / THROTTLE_FILE)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        holder.start()
        try:
            yield
        finally:
            holder.stop()
            recorder.close()  # writes the count of anonymous refusals not yet written

    app = GuardedFastAPI(  # size limits outermost, refusals audited (request_limits.py)
        title="dibao API — 低保 核对服务", version=__version__, description=DESCRIPTION, lifespan=lifespan,
        docs_url=None, redoc_url=None, swagger_ui_oauth2_redirect_url=None)  # /docs: docs.py, no CDN
    app.state.snapshots = holder
    app.state.tokens = TokenBook(tokens_file)
    app.state.disclosure = Disclosure()  # small figures withheld: DIBAO_API_MIN_CELL, DIBAO_API_EXACT_ROLES
    app.state.audit = recorder
    app.state.request_limits = request_limits or RequestLimits.from_env()
    app.state.throttle = throttle
    install_handlers(app)
    install_docs(app)
    for area in (service, households, lists, runs, statistics):
        app.include_router(area.router)
    # Outermost last: headers on every answer (429s included), then the body cap, then throttling.
    app.add_middleware(ThrottleMiddleware)
    install_pages(app, store)  # /ui/: routes, and the page session read just outside the throttle (pages/)
    app.add_middleware(BodyLimit)
    app.add_middleware(SecurityHeaders)
    return app

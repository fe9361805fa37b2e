"""The FastAPI application, wired: household lookup, work lists, runs and diffs, coverage statistics.

Roles (tokens file, see ``tokens``): a ``caseworker`` reads households and lists of their own counties, an
``analyst`` reads aggregates only (coverage, runs, counts), an ``admin`` reads everything. A household outside a
caseworker's counties gets exactly the answer an unknown number gets. Personal data is masked wherever the role
does not need it in full (``masking``). Every household lookup and list read is written to the hash-chained audit
log (``audit``). Every error is ``application/problem+json`` (``problems``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from dibao import __version__
from dibao.private_files import secure_service_files
from dibao.publish.store import RunStore
from dibao.serve.audit import AuditLog
from dibao.serve.problems import install_handlers
from dibao.serve.routers import households, lists, runs, service, statistics
from dibao.serve.statistics_tables import Disclosure
from dibao.serve.tokens import TokenBook
from dibao.serve.watcher import SnapshotHolder

DESCRIPTION = (
    "户籍/低保/监测/银行/部门数据比对结果查询。经办人员按证件号或家庭编号查询本县家庭及其判定依据；"
    "统计分析人员查看覆盖率等汇总指标。\n\n"
    "Household lookup with the reasons behind every flag (caseworkers, own counties only), work lists, "
    "run history and coverage statistics (analysts: aggregates only). Authenticate with "
    "`Authorization: Bearer <token>`. Errors are `application/problem+json`.")


def create_app(store: Path, tokens_file: Path, audit_dir: Path | None = None, *,
               refresh_seconds: float = 2.0) -> FastAPI:
    """The API over the run store ``store``; tokens from ``tokens_file``; audit log in ``audit_dir``
    (default ``store/audit``). The newest published run is served and swapped in when a newer one appears
    (checked every ``refresh_seconds``). Everything it writes is owner-only (umask 0o077; a store, tokens file or
    audit folder others can read is fixed with a warning: ``dibao/private_files.py``)."""
    secure_service_files(store, tokens_file, audit_dir if audit_dir is not None else store / "audit")
    holder = SnapshotHolder(RunStore(store), refresh_seconds=refresh_seconds)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        holder.start()
        try:
            yield
        finally:
            holder.stop()

    app = FastAPI(title="dibao API — 低保 核对服务", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.snapshots = holder
    app.state.tokens = TokenBook(tokens_file)
    app.state.disclosure = Disclosure()  # small figures withheld: DIBAO_API_MIN_CELL, DIBAO_API_EXACT_ROLES
    app.state.audit = AuditLog(audit_dir if audit_dir is not None else store / "audit")
    install_handlers(app)
    for area in (service, households, lists, runs, statistics):
        app.include_router(area.router)
    return app

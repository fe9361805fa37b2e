"""Service status (no token needed)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from dibao.serve import deps
from dibao.serve.models import Health

router = APIRouter()


@router.get("/health", response_model=Health, tags=["service"], summary="服务状态 / health")
async def health(request: Request) -> dict[str, Any]:
    snap = deps.holder(request).snapshot
    return {"status": "ok", "run": snap.date if snap else None}

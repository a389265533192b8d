"""Liveness for the container healthcheck and load balancers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from app.api.deps import AppContext, get_ctx

router = APIRouter()


@router.get("/healthz")
async def healthz(ctx: Annotated[AppContext, Depends(get_ctx)]) -> dict[str, object]:
    return {"status": "ok", "active_calls": len(ctx.registry)}

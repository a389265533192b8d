"""Liveness and readiness, for the container healthcheck and load balancers.

``/healthz``: the process is alive (200 while it drains too). ``/readyz``: it wants new calls
(503 once SIGTERM has started the drain, so the load balancer sends them elsewhere)."""

from __future__ import annotations

import os
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from app.api.deps import AppContext, get_ctx

router = APIRouter()


@router.get("/healthz")
async def healthz(ctx: Annotated[AppContext, Depends(get_ctx)]) -> dict[str, object]:
    return {"status": "ok", "active_calls": len(ctx.registry)}


@router.get("/readyz")
async def readyz(ctx: Annotated[AppContext, Depends(get_ctx)]) -> JSONResponse:
    """``worker``: the process id, telling the workers on one port apart."""
    draining = ctx.drain.draining
    status = "draining" if draining else "ready"
    body = {"status": status, "active_calls": len(ctx.registry), "worker": os.getpid()}
    return JSONResponse(body, status_code=503 if draining else 200)

"""``GET /metrics``: the Prometheus text exposition (unauthenticated; METRICS_ENABLED=false
leaves the route out). Keep it off the public internet, or behind the ingress's own auth."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app.observability.metrics import VoiceMetrics

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    voice_metrics: VoiceMetrics = request.app.state.metrics
    body, content_type = voice_metrics.render()
    return Response(body, media_type=content_type)

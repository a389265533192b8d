"""``GET /calls`` and ``GET /calls/{call_id}``: the call records, and ``POST
/calls/{call_id}/hangup``: end a live call wherever it is; all behind ``CALLS_API_KEY``.

The key travels as ``Authorization: Bearer KEY`` or ``X-API-Key: KEY`` and is compared in
constant time. With no key configured the routes answer 404, as if they did not exist: records
hold phone numbers and transcripts, so they are never served unauthenticated. A missing or wrong
key is 401.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from app.api.bus import MAX_CALL_ID
from app.api.deps import AppContext, get_ctx
from app.config import Settings
from app.recordings import recording_file, snapshot
from app.records.store import CallStore, UnknownCall

router = APIRouter(prefix="/calls")
OPERATOR_HANGUP = "operator-hangup"  # the session's end reason


def presented_key(authorization: str | None, x_api_key: str | None) -> str | None:
    """The key the client sent: a Bearer token, else the X-API-Key header."""
    if authorization:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return x_api_key.strip() if x_api_key else None


async def operator(
    ctx: Annotated[AppContext, Depends(get_ctx)],
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> AppContext:
    """The app's context, once the caller has shown the key."""
    expected = ctx.settings.calls_api_key.get_secret_value().encode()
    if not expected:
        raise HTTPException(status_code=404, detail="Not Found")
    given = presented_key(authorization, x_api_key)
    if given is None or not hmac.compare_digest(given.encode(), expected):
        raise HTTPException(
            status_code=401, detail="missing or wrong API key", headers={"WWW-Authenticate": "Bearer"}
        )
    return ctx


Operator = Annotated[AppContext, Depends(operator)]


async def records(request: Request, _: Operator) -> CallStore:
    """The store, once the caller has shown the key."""
    store: CallStore = request.app.state.call_records
    return store


Records = Annotated[CallStore, Depends(records)]


@router.get("")
async def list_calls(
    store: Records,
    limit: Annotated[int, Query(ge=1, le=200, description="Calls per page.")] = 50,
    before: Annotated[str | None, Query(description="The previous page's next_before.")] = None,
) -> dict[str, Any]:
    """Calls newest first, without transcripts; ``next_before`` fetches the next page (null: none)."""
    try:
        page, next_before = await store.recent(limit, before)
    except UnknownCall:
        raise HTTPException(status_code=400, detail="before: no such call") from None
    return {"calls": [call.to_json() for call in page], "next_before": next_before}


@router.get("/{call_id}")
async def get_call(store: Records, call_id: str) -> dict[str, Any]:
    """One call's whole record: transcript, tool calls, per-turn latency, counters."""
    record = await store.get(call_id)
    if record is None:
        raise HTTPException(status_code=404, detail="no record of that call")
    return record.to_json()


@router.get(
    "/{call_id}/recording",
    response_class=StreamingResponse,
    responses={200: {"content": {"audio/wav": {}}, "description": "Stereo 16-bit WAV."}},
)
async def get_recording(ctx: Operator, call_id: str) -> StreamingResponse:
    """The call's recording: stereo 16-bit PCM WAV at the line's rate, left the caller, right the
    agent as the caller heard it. A live call's file is served as written so far (up to its
    last write, ½ s ago), with a header to match. 404 when the call was not recorded (or its
    file is past retention)."""
    return await recording_response(ctx.settings, call_id)


async def recording_response(settings: Settings, call_id: str) -> StreamingResponse:
    """The recording's WAV as a response (here and on the dashboard); 404 when there is none."""
    path = recording_file(settings, call_id)
    found = None
    if path is not None:
        try:
            found = await asyncio.to_thread(snapshot, path)
        except FileNotFoundError:  # deleted meanwhile (retention)
            found = None
    if found is None:
        raise HTTPException(status_code=404, detail="no recording of that call")
    headers = {
        "Content-Length": str(found.size),
        "Content-Disposition": f'attachment; filename="{found.path.name}"',
    }
    return StreamingResponse(found.chunks(), media_type="audio/wav", headers=headers)


@router.post("/{call_id}/hangup", status_code=202)
async def hang_up(ctx: Operator, call_id: str) -> dict[str, Any]:
    """End a live call, whichever process or replica carries it (the call bus): its session
    ends with ``operator-hangup`` and closes the stream, and Vobiz, with no XML after the
    stream, hangs up. 404 when no process holds a live call of that id."""
    if len(call_id) > MAX_CALL_ID or not await ctx.bus.end(call_id, OPERATOR_HANGUP):
        raise HTTPException(status_code=404, detail="no such live call")
    return {"call_id": call_id, "status": "ending"}

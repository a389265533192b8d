"""A fake Vobiz REST API (Audio Streams + call control) for tests and the platform emulator.

Serves ``/api/v1/Account/{auth_id}/Call/…`` exactly as PROTOCOL.md §6 and §8 document it:
capitalised segments and trailing slashes are required (lowercase → 401, no slash → 404),
``X-Auth-ID``/``X-Auth-Token`` must match, and the path's account id must be the caller's.
Validation failures use the generic error envelope; unknown streams/calls use the flat
``{"api_id", "error"}`` shape. Every request is logged in ``FakeVobizState`` first.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import uuid
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.simulator.vobiz_rest_checks import (
    DTMF_FIELDS,
    MAKE_CALL_FIELDS,
    START_STREAM_FIELDS,
    TRANSFER_FIELDS,
    BadRequest,
    NotFound,
    UnsupportedMediaType,
    as_bool,
    as_int,
    check_method,
    check_url,
    choice,
    error_envelope,
    header_pairs,
    read_json,
    text,
)
from app.simulator.vobiz_rest_state import RINGING, FakeCall, FakeVobizState, RecordedRequest

__all__ = ["FakeVobizState", "create_fake_rest_app"]

PREFIX = "/api/v1"
AUDIO_TRACKS = ("inbound", "outbound", "both")
CONTENT_TYPES = (
    "audio/x-l16;rate=8000",
    "audio/x-l16;rate=16000",
    "audio/x-l16;rate=24000",
    "audio/x-mulaw;rate=8000",
)
LEGS = ("aleg", "bleg", "both")
_STRUCTURE = {0: "Account", 2: "Call", 4: "Stream"}  # segment index after /api/v1 → exact spelling


def _api_id() -> str:
    return str(uuid.uuid4())


def _refusal(path: str, headers: Any, auth_id: str, auth_token: str) -> str | None:
    """Why a request under /api/v1 is refused with 401, or None if it may proceed."""
    segments = path[len(PREFIX) :].strip("/").split("/")
    for index, spelling in _STRUCTURE.items():
        if (
            index < len(segments)
            and segments[index] != spelling
            and segments[index].lower() == spelling.lower()
        ):
            return "Authentication failed: check the request path casing"
    given_id = headers.get("x-auth-id", "")
    given_token = headers.get("x-auth-token", "")
    if not (
        hmac.compare_digest(given_id.encode(), auth_id.encode())
        and hmac.compare_digest(given_token.encode(), auth_token.encode())
    ):
        return "Authentication credentials were missing or invalid"
    if segments[0] == "Account" and len(segments) > 1 and segments[1] != auth_id:
        return "The account in the path does not belong to these credentials"
    return None


def _fault_response(status: int, body: Any, headers: dict[str, str]) -> Response:
    if body is None:
        try:
            phrase = HTTPStatus(status)
        except ValueError:
            return error_envelope(status, "ERROR", f"HTTP {status}", headers=headers)
        return error_envelope(status, phrase.name, phrase.phrase, headers=headers)
    if isinstance(body, str):
        return PlainTextResponse(body, status_code=status, headers=headers)
    return JSONResponse(body, status_code=status, headers=headers)


def create_fake_rest_app(auth_id: str, auth_token: str, state: FakeVobizState) -> FastAPI:
    """An ASGI app for one account, backed by ``state``."""
    app = FastAPI(
        title="Fake Vobiz REST API",
        redirect_slashes=False,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )

    @app.middleware("http")
    async def gate(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        state.request_started()
        try:
            return await serve(request, call_next)
        finally:
            state.request_finished()

    async def serve(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        path = request.url.path
        state.record(
            RecordedRequest(
                method=request.method,
                path=path,
                raw_path=request.scope.get("raw_path", path.encode()).decode("latin-1"),
                query=request.url.query,
                headers=dict(request.headers.items()),
                body=await request.body(),
            )
        )
        fault = state.take_fault(request.method, path)
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.status is not None:
                return _fault_response(fault.status, fault.body, dict(fault.headers))
        if path.startswith(PREFIX + "/"):
            reason = _refusal(path, request.headers, auth_id, auth_token)
            if reason is not None:
                return error_envelope(401, "UNAUTHORIZED", reason)
        return await call_next(request)

    @app.exception_handler(BadRequest)
    async def bad_request(_: Request, exc: BadRequest) -> Response:
        return error_envelope(400, "VALIDATION_ERROR", exc.message, exc.details)

    @app.exception_handler(UnsupportedMediaType)
    async def unsupported_media_type(_: Request, exc: UnsupportedMediaType) -> Response:
        return error_envelope(415, "UNSUPPORTED_MEDIA_TYPE", exc.message)

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> Response:
        return JSONResponse({"api_id": _api_id(), "error": exc.message}, status_code=404)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> Response:
        message = "Not found" if exc.status_code == 404 else str(exc.detail)
        return JSONResponse({"api_id": _api_id(), "error": message}, status_code=exc.status_code)

    router = APIRouter(prefix=PREFIX + "/Account/{account_id}/Call")

    def live_call(call_uuid: str) -> FakeCall:
        call = state.calls.get(call_uuid)
        if call is None or not call.is_live:
            raise NotFound("Call not found")
        return call

    @router.post("/{call_uuid}/Stream/")
    async def start_stream(call_uuid: str, request: Request) -> Response:
        body = await read_json(request, START_STREAM_FIELDS)
        call = state.calls.get(call_uuid)
        if call is None:
            raise NotFound("Call not found")
        if not call.is_live:
            raise BadRequest("Call is not in progress", {"call_uuid": call_uuid})
        service_url = check_url(body, "service_url", ("ws", "wss"), required=True)
        bidirectional = as_bool(body, "bidirectional", False)
        audio_track = choice(body, "audio_track", AUDIO_TRACKS)
        if bidirectional and audio_track != "inbound":
            raise BadRequest("audio_track must be inbound if bidirectional", {"field": "audio_track"})
        content_type = choice(body, "content_type", CONTENT_TYPES)
        if any(s.service_url == service_url for s in state.active_streams(call_uuid)):
            raise BadRequest("An active stream already exists at this URL", {"field": "service_url"})
        stream = state.new_stream(
            call_uuid=call_uuid,
            service_url=service_url,
            audio_track=audio_track,
            bidirectional=bidirectional,
            content_type=content_type,
            stream_timeout=as_int(body, "stream_timeout", 86400, minimum=1),
            status_callback_url=check_url(body, "status_callback_url", ("http", "https")),
            status_callback_method=check_method(body, "status_callback_method"),
            extra_headers=header_pairs(body, "extra_headers"),
        )
        await state.on_stream_started(stream)
        payload = {"api_id": _api_id(), "stream_id": stream.stream_id, "message": "Stream started"}
        return JSONResponse(payload, status_code=202)

    @router.get("/{call_uuid}/Stream/")
    async def list_streams(call_uuid: str, request: Request) -> Response:
        query = dict(request.query_params)
        limit = as_int(query, "limit", 20, minimum=1, maximum=100)
        offset = as_int(query, "offset", 0, minimum=0)
        streams = state.streams_of(call_uuid)
        objects = [s.to_api(auth_id) for s in streams[offset : offset + limit]]
        payload = {"page": offset // limit + 1, "per_page": limit, "total": len(streams), "objects": objects}
        return JSONResponse(payload)

    @router.get("/{call_uuid}/Stream/{stream_id}/")
    async def get_stream(call_uuid: str, stream_id: str) -> Response:
        stream = state.streams.get(stream_id)
        if stream is None or stream.call_uuid != call_uuid:
            raise NotFound("Stream not found")
        return JSONResponse({"api_id": _api_id(), **stream.to_api(auth_id)})

    @router.delete("/{call_uuid}/Stream/{stream_id}/")
    async def stop_stream(call_uuid: str, stream_id: str) -> Response:
        stream = state.streams.get(stream_id)
        if stream is None or stream.call_uuid != call_uuid or not stream.is_active:
            raise NotFound("Stream not found")
        state.stop_stream(stream)
        await state.on_stream_stopped(stream)
        return Response(status_code=204)

    @router.delete("/{call_uuid}/Stream/")
    async def stop_all_streams(call_uuid: str) -> Response:
        for stream in state.stop_streams(call_uuid):
            await state.on_stream_stopped(stream)
        return Response(status_code=204)

    @router.delete("/{call_uuid}/")
    async def hangup(call_uuid: str) -> Response:
        live_call(call_uuid)
        for stream in state.end_call(call_uuid, source="API"):
            await state.on_stream_stopped(stream)
        await state.on_hangup(call_uuid)
        return Response(status_code=204)

    @router.get("/{call_uuid}/")
    async def get_call(call_uuid: str, request: Request) -> Response:
        """``?status=live``: a live call, else 404; without it the CDR of an ended call, else 404."""
        call = state.calls.get(call_uuid)
        live = request.query_params.get("status") == "live"
        if call is None or call.is_live != live:
            raise NotFound("Call not found")
        return JSONResponse({"api_id": _api_id(), **call.to_api()})

    @router.post("/{call_uuid}/DTMF/")
    async def send_dtmf(call_uuid: str, request: Request) -> Response:
        body = await read_json(request, DTMF_FIELDS)
        call = live_call(call_uuid)
        digits = text(body, "digits") or ""
        if not re.fullmatch(r"[0-9*#wW]+", digits):
            raise BadRequest("digits must be 0-9, *, # or w/W", {"field": "digits"})
        choice(body, "leg", ("aleg", "bleg"))
        call.dtmf.append(dict(body))
        return JSONResponse({"api_id": _api_id(), "message": "digits sent"}, status_code=202)

    @router.post("/{call_uuid}/")
    async def transfer(call_uuid: str, request: Request) -> Response:
        body = await read_json(request, TRANSFER_FIELDS)
        call = live_call(call_uuid)
        legs = choice(body, "legs", LEGS)
        aleg = check_url(body, "aleg_url", ("http", "https"))
        bleg = check_url(body, "bleg_url", ("http", "https"))
        needed = {"aleg": aleg is not None, "bleg": bleg is not None, "both": None not in (aleg, bleg)}
        if not needed[legs]:
            raise BadRequest(f"No transfer URL given for legs={legs}", {"field": "legs"})
        check_method(body, "aleg_method")
        check_method(body, "bleg_method")
        call.transfers.append(dict(body))
        await state.on_transfer(call, body)
        payload = {"api_id": _api_id(), "message": "call transferred", "call_uuid": call_uuid}
        return JSONResponse(payload, status_code=202)

    @router.post("/")
    async def make_call(request: Request) -> Response:
        body = await read_json(request, MAKE_CALL_FIELDS)
        for name in ("from", "to", "answer_url"):
            if not text(body, name):
                raise BadRequest(f"{name} is required", {"field": name})
        call = FakeCall(
            call_uuid=str(uuid.uuid4()),
            from_number=text(body, "from") or "",
            to_number=text(body, "to") or "",
            direction="outbound",
            status="in-progress" if state.auto_answer else RINGING,
            answer_url=check_url(body, "answer_url", ("http", "https"), required=True),
            answer_method=check_method(body, "answer_method"),
            hangup_url=check_url(body, "hangup_url", ("http", "https")),
            hangup_method=check_method(body, "hangup_method"),
            request=dict(body),
            initiated=state.now(),
        )
        state.add_call(call)
        await state.on_call_fired(call)
        payload = {"api_id": _api_id(), "request_uuid": call.call_uuid, "message": "Call fired"}
        return JSONResponse(payload, status_code=201)

    app.include_router(router)
    return app

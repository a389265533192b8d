"""Vobiz's HTTP callbacks: the answer webhook, the hang-up callback, stream status.

Every route checks the webhook signature (``SIGNATURE_MODE``) against the PUBLIC URL
Vobiz called (``PUBLIC_URL`` + path): behind a tunnel or proxy ``request.url`` differs.
The signature covers only URL and nonce, so a signed request's nonce is good once
(``app/api/guard.py``): a replay is refused like a bad signature.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from agents.personas import is_valid_name
from app.api.deps import AppContext, get_ctx
from app.config import SignatureMode, phone_digits
from app.pipeline.lifecycle import notify_hangup
from app.telephony.callback import check_callback
from app.telephony.errors import CallbackFieldError
from app.telephony.signature import verify_signature
from app.telephony.token import StreamClaims, issue_token
from app.telephony.xml import StreamSettings, answer_xml, dial_xml, speak_hangup_xml

log = logging.getLogger("app.webhooks")
router = APIRouter(prefix="/vobiz")

ANSWER_PATH = "/vobiz/answer"
HANGUP_PATH = "/vobiz/hangup"
STREAM_STATUS_PATH = "/vobiz/stream-status"
MEDIA_PATH = "/vobiz/media"
TRANSFER_PATH = "/vobiz/transfer"
MOVED_EVENTS = ("Transfer", "Redirect")  # answer-URL requests for a call already under way


async def vobiz_params(request: Request) -> dict[str, str]:
    """The callback's fields: the query string, overlaid by a form body on POST; 400 unless every
    field is within bounds (``check_callback``)."""
    params = {k: v for k, v in request.query_params.items()}
    if request.method == "POST":
        form = await request.form()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    try:
        return check_callback(params)
    except CallbackFieldError as exc:
        log.warning("webhook refused: %s", exc, extra={"path": request.url.path})
        raise HTTPException(status_code=400, detail=str(exc)) from None


async def check_signature(request: Request, ctx: Annotated[AppContext, Depends(get_ctx)]) -> None:
    """Verify X-Vobiz-Signature-V3/-V2 per ``SIGNATURE_MODE``; 403 in enforce mode."""
    mode = ctx.settings.signature_mode
    if mode is SignatureMode.OFF:
        return
    url = ctx.settings.public_base + request.url.path
    result = verify_signature(request.headers, url, ctx.settings.vobiz_auth_token.get_secret_value())
    reason: str = result.reason
    if result.ok:
        if await ctx.guard.first_use(result.nonces):
            return
        reason = "replayed"  # a nonce accepted before: a captured request sent again
    log.warning("webhook signature %s", reason, extra={"path": request.url.path, "mode": mode.value})
    if mode is SignatureMode.ENFORCE:
        raise HTTPException(status_code=403, detail=f"webhook signature {reason}")


Signed = Depends(check_signature)
Ctx = Annotated[AppContext, Depends(get_ctx)]


def is_hangup(params: dict[str, str]) -> bool:
    """A hang-up callback, also when ``hangup_url`` fell back to ``answer_url`` (D24)."""
    return params.get("Event") == "Hangup" or "HangupCause" in params or "EndTime" in params


def choose_persona(ctx: AppContext, params: dict[str, str]) -> str:
    """The answer URL's ``persona`` query parameter, else the persona of the number called
    (``PERSONA_BY_NUMBER``), else the default."""
    wanted = params.get("persona", "")
    if wanted and is_valid_name(wanted) and wanted in ctx.personas:
        return wanted
    if wanted:
        log.warning("unknown persona requested; using the number's or the default")
    by_number = ctx.settings.persona_by_number.get(phone_digits(params.get("To", "")))
    return by_number or ctx.settings.default_persona


@router.get("/answer", dependencies=[Signed])
@router.post("/answer", dependencies=[Signed])
async def answer(request: Request, ctx: Ctx) -> Response:
    params = await vobiz_params(request)
    if is_hangup(params):
        return await _end_call(ctx, params)
    call_id = params.get("CallUUID", "").strip()
    if not call_id:
        raise HTTPException(status_code=400, detail="CallUUID is required")
    state = await ctx.guard.call_state(call_id)
    # a live call's stream is not minted twice, nor an ended call's again; but a live call moved
    # here by a transfer (or redirect) fetches new XML: Vobiz ends the old stream, then opens this one
    if state == "ended" or (state == "live" and params.get("Event") not in MOVED_EVENTS):
        log.warning("answer refused: the call is %s", state, extra={"call_id": call_id})
        raise HTTPException(status_code=409, detail=f"call is {state}")
    settings = ctx.settings
    claims = StreamClaims(
        call_id=call_id,
        persona=choose_persona(ctx, params),
        expires_at=int(ctx.wall_time()) + settings.stream_token_ttl_seconds,
        caller=phone_digits(params.get("From", ""))[:15],
        called=phone_digits(params.get("To", ""))[:15],
    )
    if params.get("vars"):  # an outbound campaign's contact (app/api/voicemail.py)
        from app.api.contact_values import remember_variables

        remember_variables(ctx, call_id, claims.persona, params["vars"])
    token = issue_token(ctx.token_secret, claims)
    document = answer_xml(
        StreamSettings(
            url=f"{settings.public_ws_base}{MEDIA_PATH}/{token}",
            content_type=settings.stream_content_type,
            stream_timeout=settings.stream_timeout_seconds,
            status_callback_url=(
                settings.public_base + STREAM_STATUS_PATH if settings.stream_status_callbacks else None
            ),
        )
    )
    log.info("call answered", extra={"call_id": call_id, "persona": claims.persona})
    return Response(document, media_type="application/xml")


@router.get("/hangup", dependencies=[Signed])
@router.post("/hangup", dependencies=[Signed])
async def hangup(request: Request, ctx: Ctx) -> Response:
    return await _end_call(ctx, await vobiz_params(request))


async def _end_call(ctx: AppContext, params: dict[str, str]) -> Response:
    call_id = params.get("CallUUID", "")
    held = False
    if call_id:
        await ctx.guard.call_ended(call_id, "hangup")  # authoritative: no socket opens for it again
        held = await ctx.bus.end(call_id, "hangup")  # the session ends wherever it is (app/api/bus.py)
    cause = params.get("HangupCause", "")[:64]
    log.info("hangup callback", extra={"call_id": call_id, "held": held, "cause": cause})
    if call_id and not held:
        # no process holds the call (none ever did, or its process died): complete its record
        # here; a holder writes the record itself, so a call gets exactly one completed record
        await notify_hangup(ctx.listeners, call_id, cause, _seconds(params.get("Duration", "")))
    return Response(status_code=204)


def _seconds(text: str) -> float | None:
    """Vobiz's ``Duration`` (whole seconds), or None when absent or not a sane number."""
    text = text.strip()
    return float(text) if text.isdigit() and len(text) <= 7 else None


# a route per method: each gets its own OpenAPI operation id
@router.get("/transfer/{persona}", dependencies=[Signed, Depends(vobiz_params)])
@router.post("/transfer/{persona}", dependencies=[Signed, Depends(vobiz_params)])
async def transfer(persona: str, ctx: Ctx) -> Response:
    """Where ``transfer_call`` sends the call: dial the persona's transfer number."""
    found = ctx.personas.get(persona) if is_valid_name(persona) else None
    number = found.settings.transfer_number if found is not None else None
    if number is None:
        log.warning("transfer requested for a persona without a transfer number")
        return Response(
            speak_hangup_xml("Sorry, no one is available. Goodbye."), media_type="application/xml"
        )
    return Response(dial_xml(number), media_type="application/xml")


def is_stream_stopped(params: dict[str, str]) -> bool:
    """A status callback saying the stream stopped: ``StopStream`` (PROTOCOL.md §7.1), also
    spelled ``stop-stream``, ``StreamStopped`` or ``stopped`` (case and separators ignored)."""
    event = "".join(c for c in params.get("Event", "").lower() if c.isalpha())
    return event in STOPPED_EVENTS


STOPPED_EVENTS = frozenset({"stopstream", "streamstop", "streamstopped", "stop", "stopped"})


@router.get("/stream-status", dependencies=[Signed])
@router.post("/stream-status", dependencies=[Signed])
async def stream_status(request: Request, ctx: Ctx) -> Response:
    params = await vobiz_params(request)
    call_id = params.get("CallUUID", "").strip()
    held = False
    if call_id and is_stream_stopped(params):
        # Vobiz stopped the stream (REST stop, streamTimeout, our own ``stop``): its session ends
        # wherever it is; the call's record is the holder's, and the hang-up callback completes it
        held = await ctx.bus.end(call_id, "stream-stopped")
    log.debug(
        "stream status",
        extra={
            "call_id": call_id,
            "stream_id": params.get("StreamID", ""),
            "event": params.get("Event", "")[:40],
            "held": held,
        },
    )
    return Response(status_code=204)

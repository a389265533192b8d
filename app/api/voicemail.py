"""Outbound campaign calls: a contact's variables, and what to do when a machine answers.

- The answer URL of a campaign call carries the contact's values sealed (``app/campaign/sealed.py``);
  ``remember_variables`` keeps them for the call's conversation (its prompt and greeting).
- ``/vobiz/machine``: Vobiz's answering-machine detection callback (``machine_detection_url``,
  ``Event=MachineDetection``, ``Machine=true|false``). On a machine the call is marked in its record
  (``stats.answered_by``) and, per the persona's ``voicemail`` setting, hung up or transferred to
  ``/vobiz/voicemail/{persona}``, whose XML waits for the beep, says ``voicemail_message`` (the
  contact's values filled in) and hangs up.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response

from agents.personas import fill, is_valid_name
from app.api.contact_values import contact_values
from app.api.webhooks import Ctx, Signed, vobiz_params
from app.telephony.errors import VobizError
from app.telephony.xml import speak_hangup_xml, voicemail_xml

log = logging.getLogger("app.voicemail")
router = APIRouter(prefix="/vobiz")

MACHINE_PATH = "/vobiz/machine"
VOICEMAIL_PATH = "/vobiz/voicemail"
BEEP_WAIT_S = 30


@router.get("/machine", dependencies=[Signed])
@router.post("/machine", dependencies=[Signed])
async def machine(request: Request, ctx: Ctx) -> Response:
    params = await vobiz_params(request)
    call_id = params.get("CallUUID", "").strip()
    if not call_id or params.get("Machine", "").strip().lower() != "true":
        return Response(status_code=204)
    persona_name = params.get("persona", "")
    persona = ctx.personas.get(persona_name) if is_valid_name(persona_name) else None
    store = getattr(request.app.state, "call_records", None)
    if store is not None:
        with ctx.clock.hold():  # a database write: virtual time waits for it in tests
            await store.mark_answered_by(call_id, "machine")
    leave = (
        persona is not None and persona.settings.voicemail == "leave" and persona.settings.voicemail_message
    )
    log.info("answering machine", extra={"call_id": call_id, "voicemail": "leave" if leave else "hangup"})
    if ctx.vobiz is None:
        log.warning("answering machine: no Vobiz credentials to act on the call", extra={"call_id": call_id})
        return Response(status_code=204)
    try:
        if leave and persona is not None:
            query = {"vars": params["vars"]} if params.get("vars") else {}
            url = f"{ctx.settings.public_base}{VOICEMAIL_PATH}/{persona.name}"
            await ctx.vobiz.transfer_call(call_id, url + ("?" + urlencode(query) if query else ""))
        else:
            await ctx.vobiz.hangup_call(call_id)
    except VobizError as exc:
        log.warning("answering machine: Vobiz refused (%s)", type(exc).__name__, extra={"call_id": call_id})
    return Response(status_code=204)


@router.get("/voicemail/{persona}", dependencies=[Signed])
@router.post("/voicemail/{persona}", dependencies=[Signed])
async def voicemail(persona: str, request: Request, ctx: Ctx) -> Response:
    """The XML a machine-answered call is transferred to: wait for the beep, leave the message."""
    params = await vobiz_params(request)
    found = ctx.personas.get(persona) if is_valid_name(persona) else None
    if found is None or not found.settings.voicemail_message:
        return Response(speak_hangup_xml("Goodbye."), media_type="application/xml")
    values = {**found.settings.variables, **contact_values(ctx, persona, params.get("vars", ""))}
    text = fill(found.settings.voicemail_message, values)
    return Response(voicemail_xml(text, BEEP_WAIT_S), media_type="application/xml")

"""A campaign contact's ``{placeholder}`` values: sealed into the answer URL by ``voice-agent
campaign run`` (``app.campaign.sealed``), opened here, and kept by call id until the call's
socket opens (the answer webhook calls ``remember_variables``)."""

from __future__ import annotations

import logging

from app.api.deps import AppContext
from app.campaign.sealed import SealError, campaign_key, unseal

log = logging.getLogger("app.voicemail")
MAX_REMEMBERED = 10_000  # calls answered whose socket has not opened yet (bounded: never a leak)


def contact_values(ctx: AppContext, persona: str, sealed: str) -> dict[str, str]:
    """The sealed values of a campaign call, only those the persona declares; {} if none or forged."""
    if not sealed:
        return {}
    found = ctx.personas.get(persona)
    if found is None:
        return {}
    settings = ctx.settings
    try:
        key = campaign_key(
            settings.stream_token_secret.get_secret_value(), settings.vobiz_auth_token.get_secret_value()
        )
        values = unseal(key, sealed)
    except SealError:
        log.warning("campaign values refused: they do not verify")
        return {}
    return {k: v for k, v in values.items() if k in found.settings.variables}


def remember_variables(ctx: AppContext, call_id: str, persona: str, sealed: str) -> None:
    values = contact_values(ctx, persona, sealed)
    if not values:
        return
    while len(ctx.call_variables) >= MAX_REMEMBERED:
        ctx.call_variables.pop(next(iter(ctx.call_variables)))
    ctx.call_variables[call_id] = values

"""Call control for the agent, over the Vobiz REST API (hang-up, transfer)."""

from __future__ import annotations

import logging

from app.telephony.rest import VobizClient, VobizError

log = logging.getLogger("app.control")


class VobizCallControl:
    """``CallControl`` for one call. Without REST credentials, hang-up relies on ``stop``
    alone and transfer is unavailable (the model is told so)."""

    def __init__(self, client: VobizClient | None, call_id: str, transfer_url: str | None) -> None:
        self._client = client
        self._call_id = call_id
        self._transfer_url = transfer_url

    async def hang_up(self) -> None:
        if self._client is None:
            return
        try:
            await self._client.hangup_call(self._call_id)
        except VobizError as exc:
            # the stream's stop already ends the call; the REST hang-up is belt and braces
            log.warning("REST hang-up failed: %s", exc, extra={"call_id": self._call_id})

    async def transfer(self) -> str:
        if self._client is None or self._transfer_url is None:
            return "Transfer is not available on this line; offer to help another way."
        try:
            await self._client.transfer_call(self._call_id, self._transfer_url)
        except VobizError as exc:
            log.warning("transfer failed: %s", exc, extra={"call_id": self._call_id})
            return "The transfer did not go through; apologise and offer to help another way."
        return "The caller is being transferred now."

    async def send_dtmf(self, digits: str) -> str:
        if self._client is None:
            return "error: pressing keys is not available on this line"
        try:
            await self._client.send_dtmf(self._call_id, digits)
        except (VobizError, ValueError) as exc:
            log.warning("DTMF failed: %s", type(exc).__name__, extra={"call_id": self._call_id})
            return "error: the keys could not be pressed"
        return f"Pressed {len(digits)} key(s)."

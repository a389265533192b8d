"""``/dashboard``: the calls on a page, behind ``CALLS_API_KEY``.

A login form takes the key once; the browser then holds a cookie derived from it (an HMAC of a
fixed label under the key, so the key itself is never stored in the browser, never in a URL, and
changing the key logs everyone out). The cookie is HttpOnly and SameSite=Strict (no other site
can make the browser use it), Secure when the service is reached over https. With no key
configured the pages answer 404, like ``/calls``: records hold phone numbers and transcripts.

Pages: the recent calls (numbers masked unless asked for), and a call's transcript with its cut
marks, per-turn latency, tool calls, and the recording player when the call has a recording.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from app.api.calls import recording_response
from app.api.deps import AppContext, get_ctx
from app.pipeline.latency import STAGES
from app.records.store import CallStore, UnknownCall

router = APIRouter(prefix="/dashboard", include_in_schema=False)
WEB = Path(__file__).resolve().parents[1] / "web"
templates = Jinja2Templates(directory=str(WEB / "templates"))
COOKIE = "voice_agent_dashboard"
COOKIE_MAX_AGE_S = 8 * 3600  # a working day; then the key is asked for again
PAGE = 50


def session_value(key: bytes) -> str:
    """What the cookie holds for ``key``: not the key, and useless for the API."""
    return hmac.new(key, b"voice-agent dashboard session v1", hashlib.sha256).hexdigest()


def _key(ctx: AppContext) -> bytes:
    key = ctx.settings.calls_api_key.get_secret_value().encode()
    if not key:
        raise HTTPException(status_code=404, detail="Not Found")
    return key


Ctx = Annotated[AppContext, Depends(get_ctx)]


def signed_in(request: Request, ctx: AppContext) -> bool:
    """Whether the browser holds the cookie for today's key (404 when no key is configured)."""
    expected = session_value(_key(ctx)).encode()
    return hmac.compare_digest(request.cookies.get(COOKIE, "").encode(), expected)


def _login_page(request: Request, *, failed: bool, status: int = 200) -> HTMLResponse:
    return templates.TemplateResponse(request, "login.html", {"failed": failed}, status_code=status)


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, ctx: Ctx) -> Response:
    _key(ctx)
    return _login_page(request, failed=False)


@router.post("/login")
async def login(request: Request, ctx: Ctx, key: Annotated[str, Form(max_length=4096)] = "") -> Response:
    expected = _key(ctx)
    if not hmac.compare_digest(key.strip().encode(), expected):
        return _login_page(request, failed=True, status=401)
    response = RedirectResponse("/dashboard", status_code=303)
    response.set_cookie(
        COOKIE,
        session_value(expected),
        max_age=COOKIE_MAX_AGE_S,
        path="/",  # the playground accepts a signed-in user too
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https" or ctx.settings.public_base.startswith("https://"),
    )
    return response


@router.post("/logout")
async def logout(ctx: Ctx) -> Response:
    _key(ctx)
    response = RedirectResponse("/dashboard/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


def mask(number: str) -> str:
    """A phone number with all but its last four digits hidden ("+••••••••3210")."""
    digits = sum(ch.isdigit() for ch in number)
    if digits <= 4:
        return "•" * len(number)
    seen = 0
    out = []
    for ch in number:
        if ch.isdigit():
            seen += 1
            out.append(ch if seen > digits - 4 else "•")
        else:
            out.append(ch)
    return "".join(out)


def _when(unix: float | None) -> str:
    if unix is None:
        return ""
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _store(request: Request) -> CallStore:
    store: CallStore = request.app.state.call_records
    return store


@router.get("", response_class=HTMLResponse)
async def calls_page(
    request: Request,
    ctx: Ctx,
    before: Annotated[str | None, Query(max_length=200)] = None,
    numbers: Annotated[str, Query(pattern="^(masked|shown)$")] = "masked",
) -> Response:
    if not signed_in(request, ctx):
        return RedirectResponse("/dashboard/login", status_code=303)
    try:
        page, next_before = await _store(request).recent(PAGE, before)
    except UnknownCall:
        raise HTTPException(status_code=400, detail="before: no such call") from None
    show = numbers == "shown"
    rows = [
        {
            "call_id": call.call_id,
            "started": _when(call.started_at),
            "caller": call.caller if show else mask(call.caller),
            "called": call.called if show else mask(call.called),
            "persona": call.persona,
            "duration": "" if call.duration is None else f"{call.duration:.0f} s",
            "end_reason": call.end_reason or call.status,
        }
        for call in page
    ]
    context = {"rows": rows, "next_before": next_before, "numbers": numbers}
    return templates.TemplateResponse(request, "calls.html", context)


def latency_rows(latency: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each reply's stages as milliseconds after the caller stopped speaking (the greeting, which
    answers nobody, has no row)."""
    rows = []
    for turn in latency:
        origin = turn.get("speech_end")
        if origin is None:
            continue  # the greeting: nobody had spoken
        stages: dict[str, str] = {}
        for stage in STAGES[1:]:
            at = turn.get(stage)
            if isinstance(at, int | float) and isinstance(origin, int | float):
                stages[stage] = f"{(at - origin) * 1000:.0f}"
            else:
                stages[stage] = "–"
        rows.append(
            {"turn": turn.get("turn"), "stages": stages, "interrupted": bool(turn.get("interrupted"))}
        )
    return rows


@router.get("/calls/{call_id}", response_class=HTMLResponse)
async def call_page(
    request: Request,
    ctx: Ctx,
    call_id: str,
    numbers: Annotated[str, Query(pattern="^(masked|shown)$")] = "masked",
) -> Response:
    if not signed_in(request, ctx):
        return RedirectResponse("/dashboard/login", status_code=303)
    record = await _store(request).get(call_id)
    if record is None:
        raise HTTPException(status_code=404, detail="no record of that call")
    data = record.to_json()
    show = numbers == "shown"
    context = {
        "call": data,
        "started": _when(record.started_at),
        "caller": record.caller if show else mask(record.caller),
        "called": record.called if show else mask(record.called),
        "duration": "" if record.summary.duration is None else f"{record.summary.duration:.1f} s",
        "stages": STAGES[1:],
        "latency": latency_rows(data["latency"]),
        "recording": bool(data.get("recording")),
        "numbers": numbers,
    }
    return templates.TemplateResponse(request, "call.html", context)


@router.get("/calls/{call_id}/recording")
async def call_recording(request: Request, ctx: Ctx, call_id: str) -> Response:
    """The call's recording for the page's player (the cookie stands for the key)."""
    if not signed_in(request, ctx):
        raise HTTPException(status_code=401, detail="sign in at /dashboard/login")
    return await recording_response(ctx.settings, call_id)

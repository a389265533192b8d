"""``create_app(settings)``: the FastAPI service. ``uvicorn --factory app.main:create_app``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from agents.catalog import ALL_TOOLS
from agents.personas import PersonaError, load_personas
from app.api import calls, dashboard, health, media, playground, voicemail, webhooks
from app.api import metrics as metrics_api
from app.api.bus import CallBus, LocalBus, RedisBus, bus_id
from app.api.deps import AgentFactory, AppContext
from app.api.docs import add_docs
from app.api.guard import RECONNECTABLE, CallGuard
from app.api.playground_feed import Observers, PlaygroundFeed
from app.api.webhooks import TRANSFER_PATH
from app.audio.formats import AudioFormat
from app.clock import Clock, SystemClock
from app.config import PriceTable, Settings, SignatureMode
from app.drain import Drain
from app.facts import FactStore, FactsUnavailable, MemoryFactStore
from app.facts_redis import RedisFactStore, redis_client
from app.logs import redact_stream_paths
from app.observability.calls import CallObserver, turn_hook
from app.observability.metrics import VoiceMetrics
from app.pipeline.call_io import outbound_format
from app.pipeline.control import VobizCallControl
from app.pipeline.conversation import Conversation, ConversationObserver
from app.pipeline.echo import EchoAgent
from app.pipeline.factory import conversation_config, persona_providers, persona_tools, warm_greetings
from app.pipeline.lifecycle import CallListener
from app.pipeline.registry import CallRegistry
from app.pipeline.session import Agent
from app.pipeline.usage import LLMPrice, Prices
from app.postcall.deliverer import PostCallWebhook
from app.providers.errors import ProviderSetupError
from app.providers.registry import ProviderSet, build_providers
from app.recordings import recording_on, sweep_forever, sweep_once
from app.records.listener import CallRecorder
from app.records.owner import is_dead as owner_is_dead
from app.records.store import CallStore, DatabaseURLError
from app.telephony.rest import VobizClient
from app.telephony.token import MIN_SECRET_BYTES, StreamClaims, new_secret

log = logging.getLogger("app")


class ConfigurationError(RuntimeError):
    """The settings cannot work; raised at start-up, never mid-call."""


def echo_factory(claims: StreamClaims, ctx: AppContext) -> Agent:
    return EchoAgent()


def conversation_factory(
    providers: ProviderSet, observer: ConversationObserver | None = None
) -> AgentFactory:
    """Each call gets a ``Conversation`` built from its persona and the shared providers."""

    def make(claims: StreamClaims, ctx: AppContext) -> Agent:
        persona = ctx.personas[claims.persona]
        transfer_url = f"{ctx.settings.public_base}{TRANSFER_PATH}/{persona.name}"
        caller = f"+{claims.caller}" if claims.caller else ""
        return Conversation(
            config=conversation_config(
                persona,
                caller_number=caller,
                variables=ctx.call_variables.pop(claims.call_id, None),
                recording=recording_on(ctx.settings, persona),
            ),
            providers=persona_providers(persona, providers),
            clock=ctx.clock,
            control=VobizCallControl(ctx.vobiz, claims.call_id, transfer_url),
            tools=persona_tools(persona),
            call_id=claims.call_id,
            persona=persona.name,
            on_turn=turn_hook(ctx.listeners, claims.call_id),  # latency metrics as each turn is heard
            observer=observer,
            data_dir=ctx.settings.data_dir,
            caller_number=caller,
        )

    return make


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    agent_factory: AgentFactory | None = None,
    prompts_dir: Path | None = None,
    vobiz_http: httpx.AsyncClient | None = None,
    observer: ConversationObserver | None = None,
    listeners: Sequence[CallListener] = (),
    voice_variation: bool = True,
) -> FastAPI:
    """The service. ``clock``, ``agent_factory``, ``vobiz_http`` (the REST API's HTTP client) and
    ``observer`` (sees each call's transcript grow and its end) and ``listeners`` (told of each
    call's start and end, beside the service's own) are for tests and the simulator, and so is
    ``voice_variation=False`` (the offline voice without random prosody: a run repeats exactly);
    production passes settings only. Offline models load here, once per process."""
    settings = settings if settings is not None else Settings()
    clock = clock or SystemClock()
    prompts_dir = prompts_dir or settings.prompts_dir
    if settings.signature_mode is not SignatureMode.OFF and not settings.vobiz_auth_token.get_secret_value():
        raise ConfigurationError(
            f"SIGNATURE_MODE={settings.signature_mode.value} needs VOBIZ_AUTH_TOKEN to check webhook "
            "signatures: set VOBIZ_AUTH_TOKEN, or SIGNATURE_MODE=off for local experiments"
        )
    redact_stream_paths()  # the stream URL's token never reaches an access log line
    try:
        personas = load_personas(prompts_dir, frozenset(ALL_TOOLS))
    except PersonaError as exc:
        raise ConfigurationError(f"broken persona: {exc}") from None
    if settings.default_persona not in personas:
        raise ConfigurationError(
            f"DEFAULT_PERSONA={settings.default_persona!r}: no {settings.default_persona}.md in {prompts_dir}"
        )
    for number, name in settings.persona_by_number.items():
        if name not in personas:
            raise ConfigurationError(f"PERSONA_BY_NUMBER: {number} maps to {name!r}, which has no {name}.md")
    secret = settings.stream_token_secret.get_secret_value().encode()
    if secret and len(secret) < MIN_SECRET_BYTES:
        raise ConfigurationError(f"STREAM_TOKEN_SECRET must be at least {MIN_SECRET_BYTES} characters")
    if not secret:
        secret = new_secret()
        log.warning("STREAM_TOKEN_SECRET is not set: using a random key (valid for one replica only)")
    vobiz: VobizClient | None = None
    if settings.vobiz_auth_id and settings.vobiz_auth_token.get_secret_value():
        vobiz = VobizClient.from_settings(settings, http=vobiz_http)
    else:
        log.info("VOBIZ_AUTH_ID/VOBIZ_AUTH_TOKEN not set: REST call control (hang-up, transfer) is off")

    feed = PlaygroundFeed() if settings.playground else None
    if feed is not None:
        observer = feed if observer is None else Observers(observer, feed)
    providers: ProviderSet | None = None
    if agent_factory is None:
        try:
            providers = build_providers(settings, clock, voice_variation=voice_variation)
        except ProviderSetupError as exc:
            raise ConfigurationError(str(exc)) from None
        if providers is None:
            log.warning("PROVIDERS=echo: no conversation, the agent repeats the caller")
            agent_factory = echo_factory
        else:
            log.info("providers: %s", providers.describe())
            agent_factory = conversation_factory(providers, observer)

    # the facts every process must agree on, and the bus that reaches the process holding a call:
    # in Redis when REDIS_URL is set (every process and replica), else in this process alone
    registry = CallRegistry()
    node = bus_id()
    redis_url = settings.redis_url.get_secret_value()
    redis = redis_client(redis_url) if redis_url else None
    store: FactStore = RedisFactStore(redis) if redis is not None else MemoryFactStore(clock.now)
    guard = CallGuard(
        store,
        # an ended call is remembered at least as long as a token for it stays valid
        replay_window=max(settings.replay_window_seconds, settings.stream_token_ttl_seconds),
        socket_ttl=settings.stream_timeout_seconds + 60,
        holder=node,
    )
    bus: CallBus = RedisBus(redis, registry, guard, node) if redis is not None else LocalBus(registry)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await records.migrate()  # call records: the schema is current before the first call
        orphans = await records.end_orphans(owner_is_dead)  # calls of a process that died mid-call
        if orphans:
            log.warning("%d call record(s) left in progress by a dead process: ended", len(orphans))
        try:
            if providers is not None:  # the greetings, rendered once before the first call (bounded)
                inbound = AudioFormat.from_content_type(settings.stream_content_type, settings.l16_byte_order)
                fmt = outbound_format(inbound, settings.playback_sample_rate)
                await warm_greetings(personas, providers, fmt, clock)
            await sweep_once(settings)  # recordings past RECORDING_RETENTION_DAYS
            async with asyncio.TaskGroup() as tasks:
                if isinstance(bus, RedisBus):
                    listener = tasks.create_task(bus.listen(), name="call-bus-listener")
                    await _subscribed(bus)
                sweeper = None
                if settings.recording_retention_days:
                    sweeper = tasks.create_task(sweep_forever(settings, clock), name="recordings-retention")
                if webhook is not None:  # sends at once what a stopped process left pending
                    sender = tasks.create_task(webhook.run(), name="post-call-webhook")
                try:
                    yield
                finally:
                    if isinstance(bus, RedisBus):
                        listener.cancel()
                    if sweeper is not None:
                        sweeper.cancel()
                    if webhook is not None:
                        sender.cancel()
        finally:
            if redis is not None:
                await redis.aclose()
            if vobiz is not None:
                await vobiz.aclose()
            if providers is not None:
                await providers.aclose()
            await records.aclose()

    app = FastAPI(title="Vobiz voice agent", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.ctx = AppContext(
        settings=settings,
        token_secret=secret,
        registry=registry,
        clock=clock,
        wall_time=clock.wall,  # on a virtual clock, wall time follows virtual time
        agent_factory=agent_factory,
        personas=personas,
        vobiz=vobiz,
        guard=guard,
        bus=bus,
        listeners=list(listeners),
        drain=Drain(timeout_s=settings.drain_timeout),
        playground=feed,
    )
    # the service's own listeners (call records, metrics) are appended to ctx.listeners here
    try:  # call records (DATABASE_URL); the engine connects on first use, ``lifespan`` disposes it
        records = CallStore.from_settings(settings)
    except DatabaseURLError as exc:
        raise ConfigurationError(str(exc)) from None
    app.state.call_records = records
    prices = price_table(settings.prices)  # the usage's cost estimate, in records and metrics
    webhook: PostCallWebhook | None = None
    if settings.post_call_webhook_url:  # one signed POST per ended call (app/postcall/)
        llm = providers.llm if providers is not None else None
        webhook = PostCallWebhook(settings, records, reconnectable=RECONNECTABLE, personas=personas, llm=llm)
    app.state.post_call_webhook = webhook
    app.state.ctx.listeners.append(CallRecorder(records, clock, prices, webhook))
    app.state.metrics = metrics = VoiceMetrics() if settings.metrics_enabled else None  # a registry per app
    app.state.ctx.listeners.append(CallObserver(metrics, prices))
    app.add_exception_handler(FactsUnavailable, _store_unavailable)
    app.include_router(health.router)
    app.include_router(webhooks.router)
    app.include_router(voicemail.router)
    app.include_router(media.router)
    app.include_router(calls.router)
    if metrics is not None:
        app.include_router(metrics_api.router)
    app.include_router(dashboard.router)
    if feed is not None:
        app.include_router(playground.router)
    app.mount("/assets", StaticFiles(directory=str(dashboard.WEB / "static")), name="assets")
    add_docs(app)
    return app


async def _subscribed(bus: RedisBus, wait_s: float = 3.0) -> None:
    """Start-up waits briefly for the bus's subscription; with Redis down the service starts
    anyway (calls on this process work; the listener keeps trying)."""
    try:
        async with asyncio.timeout(wait_s):
            await bus.subscribed.wait()
    except TimeoutError:
        log.warning("call bus: not subscribed after %.0f s (Redis unreachable?); starting anyway", wait_s)


async def _store_unavailable(request: Request, exc: Exception) -> Response:
    """Redis could not be reached: 503, so Vobiz retries the callback later. One line, no URL."""
    log.warning("request refused with 503: %s", exc, extra={"path": request.url.path})
    return JSONResponse({"detail": "shared store unavailable, retry later"}, status_code=503)


def price_table(table: PriceTable) -> Prices:
    """The ``PRICES`` setting as the plain table the cost arithmetic reads."""
    return Prices(
        stt_per_minute=dict(table.stt),
        llm_per_million_tokens={m: LLMPrice(p.input, p.output) for m, p in table.llm.items()},
        tts_per_million_characters=dict(table.tts),
    )

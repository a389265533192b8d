"""``Conversation``: the agent of one call. VAD → STT → TurnTaker → Responder → Playout.

It wires the pieces and executes the ``TurnTaker``'s actions; it decides nothing about who
has the floor. Every task belongs to one ``TaskGroup`` that ends with the call.

When the call ends, however it ends, the session awaits ``finish`` (bounded) before it cancels
``run``: the reply in flight is settled (what was heard, marked interrupted), the recogniser is
flushed (``STTStream.end_input``) and its last words are written down; nothing new is spoken and
no tool runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from agents.tools import ToolContext, ToolRegistry
from app.clock import Clock
from app.pipeline import turns as tt
from app.pipeline.history import INTERRUPTED_MARK as INTERRUPTED_MARK
from app.pipeline.history import heard_history
from app.pipeline.latency import LatencyLog, TurnStamps
from app.pipeline.playout import Cut, Playout
from app.pipeline.responder import Responder
from app.pipeline.session import CallIO
from app.providers.base import (
    LanguageModel,
    LLMOptions,
    Message,
    ProviderError,
    SpeechStarted,
    SpeechSynthesizer,
    SpeechToText,
    STTOptions,
    STTStream,
    Transcript,
    TTSOptions,
    UtteranceEnd,
)
from app.providers.vad import VoiceActivityDetector, WebRtcVad
from app.telephony import events as ev

log = logging.getLogger("app.conversation")

TRANSFER_DRAIN_S = 10.0  # at most this long waiting for queued speech before a transfer
FRAME_S = 0.02


@dataclass(frozen=True, slots=True)
class ConversationConfig:
    system_prompt: str = "You are a friendly, concise phone assistant."
    greeting: str = "Hello! How can I help you today?"
    goodbye: str = "Thank you for calling. Goodbye!"
    apology: str = "Sorry, I had a problem there. Could you say that again?"
    policy: tt.TurnPolicy = field(default_factory=tt.TurnPolicy)
    llm: LLMOptions = field(default_factory=LLMOptions)
    tts: TTSOptions = field(default_factory=TTSOptions)
    stt: STTOptions = field(default_factory=STTOptions)
    vad_aggressiveness: int = 2
    tool_filler_after_s: float = 0.8  # a slow tool gets a spoken filler after this long
    tick_s: float = 0.1


@dataclass(frozen=True, slots=True)
class Providers:
    stt: SpeechToText
    llm: LanguageModel
    tts: SpeechSynthesizer
    fallback_tts: SpeechSynthesizer | None = None  # speaks the apology when ``tts`` has failed


class CallControl(Protocol):
    async def hang_up(self) -> None: ...

    async def transfer(self) -> str:
        """Transfer the call; returns a sentence for the model about what happened."""
        ...

    async def send_dtmf(self, digits: str) -> str:
        """Play DTMF tones on the call; returns a sentence for the model."""
        ...


@dataclass(frozen=True, slots=True)
class TranscriptEntry:
    t: float
    speaker: str  # "caller" | "agent"
    text: str
    interrupted: bool = False


class ConversationObserver(Protocol):
    """Sees a call's transcript as it grows and the call's end (the simulator, call records)."""

    def on_transcript(self, conversation: Conversation, entry: TranscriptEntry) -> None: ...

    def on_end(self, conversation: Conversation) -> None:
        """Called once when the call has ended, however it ended."""
        ...


class Conversation:
    def __init__(
        self,
        *,
        config: ConversationConfig,
        providers: Providers,
        clock: Clock,
        control: CallControl,
        tools: ToolRegistry,
        call_id: str,
        persona: str,
        on_turn: Callable[[TurnStamps], None] | None = None,
        observer: ConversationObserver | None = None,
        data_dir: Path = Path("data"),
        caller_number: str = "",
    ) -> None:
        self.config = config
        self.providers = providers
        self.clock = clock
        self.control = control
        self.tools = tools
        self.call_id = call_id
        self.persona = persona
        policy = config.policy
        if not providers.stt.capabilities.interim_words:
            # words only when the caller stops (Whisper): a long sentence over the agent would
            # look like wordless noise and the agent would talk over it
            policy = dataclasses.replace(policy, max_pause_s=None)
        self.turns = tt.TurnTaker(policy)
        self.latency = LatencyLog()
        self.history: list[Message] = [Message("system", config.system_prompt)]
        self.transcript: list[TranscriptEntry] = []
        self.barge_ins = 0
        self.false_interruptions = 0
        self.provider_errors = 0
        self.dtmf_events = 0  # keypresses received (not acted on)
        self._on_turn = on_turn
        self._observer = observer
        self._data_dir, self._caller_number = data_dir, caller_number
        self._responders: dict[int, Responder] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._produced: set[int] = set()
        self._finished: set[int] = set()
        self._user_index: dict[int, int] = {}
        self._cuts: dict[int, Cut] = {}
        self._last_voiced = 0.0
        self._ended = False
        self._ending = False  # the call is over: write down what comes, answer nothing
        self._stt: STTStream | None = None
        self._pump: asyncio.Task[None] | None = None
        self._stt_reader: asyncio.Task[None] | None = None
        self._hanging_up: asyncio.Task[None] | None = None

    # ── the call ──

    async def run(self, call: CallIO) -> None:
        self.call = call
        fmt = call.outbound_format
        self.playout = Playout(
            clock=self.clock,
            send_frame=call.send_frame,
            send_checkpoint=call.checkpoint,
            send_clear=call.clear,
            on_started=self._on_audio_started,
            on_written=self._on_audio_written,
        )
        self.out_format = fmt
        # the call's one VAD: its verdicts go to the turn-taker and to the recogniser
        self.vad: VoiceActivityDetector = WebRtcVad(self.config.vad_aggressiveness, call.pipeline_rate)
        self.tool_ctx = ToolContext(
            call_id=self.call_id,
            persona=self.persona,
            end_call=self._end_call,
            transfer=self._transfer,
            send_dtmf=self.control.send_dtmf,
            data_dir=self._data_dir,
            caller_number=self._caller_number,
            clock=self.clock,
        )
        try:
            async with self.providers.stt.stream(self.config.stt) as stt, asyncio.TaskGroup() as tg:
                self._tg = tg
                tg.create_task(self.playout.run(), name=f"conv-{self.call_id}-playout")
                self._pump = tg.create_task(self._pump_audio(stt), name=f"conv-{self.call_id}-audio")
                self._stt_reader = tg.create_task(self._read_stt(stt), name=f"conv-{self.call_id}-stt")
                tg.create_task(self._read_control(), name=f"conv-{self.call_id}-control")
                tg.create_task(self._tick(), name=f"conv-{self.call_id}-tick")
                self._stt = stt
                self._apply(self.turns.start(self.clock.now(), self.config.greeting))
        finally:
            self._settle_replies()  # ended without ``finish`` (an error): keep what was heard
            if self._observer is not None:
                self._observer.on_end(self)

    async def finish(self) -> None:
        """The call is ending (see the module docstring). The session bounds it in time and
        then cancels ``run``; whatever was done by then is kept."""
        stt, pump, reader = self._stt, self._pump, self._stt_reader
        if stt is None or pump is None or reader is None or self._ending:
            return  # not started yet: nothing was said
        self._ending = True
        self._settle_replies()
        pump.cancel()
        await asyncio.wait({pump})
        audio_in = self.call.audio_in
        while not audio_in.empty():  # caller audio that arrived before the end, not yet heard
            pcm = audio_in.get_nowait()
            await stt.send(pcm, self.vad.is_voiced(pcm))
        await stt.end_input()  # the recogniser's last results arrive, then its events end
        await asyncio.wait({reader})
        self._apply(self.turns.handle(tt.CallOver(self.clock.now())))
        if self._hanging_up is not None:
            await asyncio.wait({self._hanging_up})  # the agent's REST hang-up, already under way

    def _settle_replies(self) -> None:
        """The call ended with replies unfinished: stop them (no tool runs on) and keep what the
        caller heard; a reply not fully heard is interrupted."""
        for turn in sorted(set(self._responders) - self._finished):
            heard_all = turn in self._produced and not self.playout.pending(turn)
            if heard_all and not self.playout.paused:
                self._finish(turn, interrupted=False)
            else:
                self._cancel(turn)

    async def _pump_audio(self, stt: STTStream) -> None:
        audio_in = self.call.audio_in
        vad = self.vad
        while True:
            pcm = await audio_in.get()
            now = self.clock.now()
            voiced = vad.is_voiced(pcm)
            if voiced:
                self._last_voiced = now
            self._apply(self.turns.handle(tt.Voice(now, voiced)))
            await stt.send(pcm, voiced)

    async def _read_stt(self, stt: STTStream) -> None:
        try:
            async for event in stt.events():
                now = self.clock.now()
                match event:
                    case Transcript(text=text, is_final=final, speech_final=speech_final):
                        self._apply(self.turns.handle(tt.Words(now, text, final, speech_final)))
                    case UtteranceEnd():
                        self._apply(self.turns.handle(tt.UtteranceEnded(now)))
                    case SpeechStarted():
                        pass
        except ProviderError as exc:
            self.provider_errors += 1
            log.error("speech recognition failed: %s", exc.provider, extra={"call_id": self.call_id})
            if self._ending:
                return  # the call is over: nothing to apologise to
            self._apply(self.turns.handle(tt.EndRequested(self.clock.now(), "speech recognition failed")))
            self._start_turn_reply(self.turns.turn + 1, fixed=self.config.apology + " " + self.config.goodbye)

    async def _read_control(self) -> None:
        while True:
            event = await self.call.events.get()
            match event:
                case ev.PlayedStreamEvent(name=name):
                    segment = self.playout.on_played(name)
                    if segment is not None:
                        self._check_done(segment.turn)
                case ev.ClearedAudioEvent():
                    self.playout.on_cleared()
                case ev.DtmfEvent():
                    self.dtmf_events += 1  # no menu acts on keys yet; never log the digit
                    log.debug("dtmf ignored", extra={"call_id": self.call_id, "count": self.dtmf_events})
                case _:
                    pass

    async def _tick(self) -> None:
        while True:
            await self.clock.sleep(self.config.tick_s)
            now = self.clock.now()
            first_loss = self.playout.acks_lost == 0
            for segment in self.playout.expire_acks(now):  # playedStream lost: played by now
                if first_loss:
                    first_loss = False
                    log.warning(
                        "checkpoint never acknowledged; taken as played", extra={"call_id": self.call_id}
                    )
                self._check_done(segment.turn)
            self._apply(self.turns.handle(tt.Tick(now)))

    # ── actions ──

    def _apply(self, actions: list[tt.TurnAction]) -> None:
        for action in actions:
            match action:
                case tt.Respond(turn=turn, text=text) if self._ending:
                    # the caller's last words, after the end: written down, never answered
                    self._user_index[turn] = len(self.history)
                    self.history.append(Message("user", text))
                    self._record(TranscriptEntry(self.clock.now(), "caller", text))
                case tt.Speak() | tt.HangUp() if self._ending:
                    pass  # nothing new is spoken after the end
                case tt.Respond(turn=turn, text=text, final_at=final_at):
                    now = self.clock.now()
                    stamps = self.latency.turn(turn)
                    stamps.stamp("speech_end", self._last_voiced + 0.02)
                    stamps.stamp("stt_final", final_at if final_at is not None else now)
                    stamps.stamp("turn_end", now)
                    self._user_index[turn] = len(self.history)
                    self.history.append(Message("user", text))
                    self._record(TranscriptEntry(now, "caller", text))
                    self._start_turn_reply(turn)
                case tt.Speak(turn=turn, text=text):
                    self._start_turn_reply(turn, fixed=text)
                case tt.Silence(turn=turn):
                    cut = self.playout.cut()
                    if cut is not None:
                        self._cuts[turn] = cut
                    self.barge_ins += 1
                case tt.Resume():
                    self.false_interruptions += 1
                    self.playout.resume()
                case tt.Cancel(turn=turn):
                    self._cancel(turn)
                case tt.HangUp(reason=reason):
                    self._hang_up(reason)

    def _start_turn_reply(self, turn: int, fixed: str | None = None) -> None:
        responder = Responder(
            turn=turn,
            playout=self.playout,
            tts=self.providers.tts,
            tts_options=self.config.tts,
            out_format=self.out_format,
            clock=self.clock,
            stamps=self.latency.turn(turn),
            apology=self.config.apology,
            fallback_tts=self.providers.fallback_tts,
        )
        self._responders[turn] = responder
        self._tasks[turn] = self._tg.create_task(
            self._run_reply(responder, fixed), name=f"conv-{self.call_id}-reply-{turn}"
        )

    async def _run_reply(self, responder: Responder, fixed: str | None) -> None:
        turn = responder.turn
        try:
            if fixed is not None:
                await responder.say(fixed)
            else:
                await responder.reply(
                    self.providers.llm,
                    list(self.history),
                    self.tools.specs(),
                    self.config.llm,
                    responder.tool_runner(self.tools, self.tool_ctx, self.config.tool_filler_after_s),
                )
                if self._ended and not responder.result.spoke:
                    await responder.say(self.config.goodbye)
        except ProviderError as exc:
            self.provider_errors += 1
            log.warning("could not speak: %s", exc.provider, extra={"call_id": self.call_id})
        if responder.result.failed:
            self.provider_errors += 1
        self._produced.add(turn)
        if not responder.result.spoke:
            self._finish(turn, interrupted=False)
            self._apply(self.turns.handle(tt.ReplyEmpty(self.clock.now(), turn)))
        else:
            self._check_done(turn)

    def _check_done(self, turn: int) -> None:
        if turn in self._produced and turn not in self._finished and not self.playout.pending(turn):
            if self.playout.paused:
                return  # cut and not yet decided
            self._finish(turn, interrupted=False)
            self._apply(self.turns.handle(tt.AudioDone(self.clock.now(), turn)))

    def _cancel(self, turn: int) -> None:
        task = self._tasks.get(turn)
        if task is not None and not task.done():
            task.cancel()
        cut = self._cuts.pop(turn, None)
        if cut is None and self.playout.pending(turn):
            cut = self.playout.cut()  # audible but not yet cut: silence it now
        self.playout.drop_turn(turn)
        heard = cut.heard if cut is not None else self.playout.heard_text(turn)
        self._finish(turn, interrupted=True, heard=heard)
        stamps = self.latency.turns.get(turn)
        if stamps is not None:
            stamps.interrupted = True

    def _finish(self, turn: int, *, interrupted: bool, heard: str | None = None) -> None:
        if turn in self._finished:
            return
        self._finished.add(turn)
        responder = self._responders.get(turn)
        text = heard if heard is not None else self.playout.heard_text(turn)
        rounds = responder.result.rounds if responder is not None else []
        if not text and interrupted and not rounds and turn in self._user_index:
            # nothing was heard, no tool ran, and the caller went on: their words join the next turn
            index = self._user_index.pop(turn)
            if index < len(self.history) and self.history[index].role == "user":
                del self.history[index]
            return
        # the history gets what the caller heard: tool calls and results where they happened
        spoken = responder.result.spoken if responder is not None else [(0, text)]
        self.history.extend(heard_history(text, spoken, rounds, interrupted=interrupted))
        if text:
            stamps = self.latency.turns.get(turn)
            started = stamps.first_play_audio if stamps is not None else None
            at = started if started is not None else self.clock.now()
            self._record(TranscriptEntry(at, "agent", text, interrupted))

    def _record(self, entry: TranscriptEntry) -> None:
        self.transcript.append(entry)
        if self._observer is not None:
            self._observer.on_transcript(self, entry)

    def _on_audio_started(self, turn: int) -> None:
        self._apply(self.turns.handle(tt.AudioStarted(self.clock.now(), turn)))

    def _on_audio_written(self, turn: int) -> None:
        """The socket writer took the turn's first frame (once per turn; no I/O here)."""
        stamps = self.latency.turn(turn)
        stamps.stamp("first_play_audio", self.clock.now())
        if self._on_turn is not None and stamps.speech_end is not None:
            self._on_turn(stamps)

    async def _transfer(self) -> str:
        """Transfer once what the caller has been told has played: Vobiz runs the new XML at
        once, so a "let me put you through" still queued would never be heard."""
        deadline = self.clock.now() + TRANSFER_DRAIN_S
        while not self.playout.settled() and self.clock.now() < deadline:
            await self.clock.sleep(FRAME_S)
        return await self.control.transfer()

    def _end_call(self, reason: str) -> None:
        self._ended = True
        self._apply(self.turns.handle(tt.EndRequested(self.clock.now(), reason)))

    def _hang_up(self, reason: str) -> None:
        log.info("agent hangs up", extra={"call_id": self.call_id, "reason": reason})
        self.call.stop()
        self._hanging_up = self._tg.create_task(self.control.hang_up(), name=f"conv-{self.call_id}-hangup")

"""``Conversation``: the agent of one call. VAD → STT → TurnTaker → Responder → Playout.

It wires the pieces and executes the ``TurnTaker``'s actions; it decides nothing about who
has the floor. Every task belongs to one ``TaskGroup`` that ends with the call.

One owner per question: the floor (speaking, paused, closing) is ``self.turns``'s; reply N's
progress is ``self.replies[N]`` (a ``Reply``); the call's end is ``self.call.ending``.

When the call ends, however it ends, the session awaits ``finish`` (bounded) before it cancels
``run``: the reply in flight is settled (what was heard, marked interrupted), the recogniser is
flushed (``STTStream.end_input``) and its last words are written down; nothing new is spoken and
no tool runs. A preemptive reply (``Respond(held=True)``) is prepared at once but plays nothing,
runs no tool and writes nothing down; ``Commit`` makes it the reply, ``Cancel`` discards it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
from collections.abc import Callable
from pathlib import Path

from agents.tools import ToolContext, ToolRegistry
from app.clock import Clock
from app.pipeline import turns as tt
from app.pipeline.assessor import TurnAssessor
from app.pipeline.call_keys import CallKeys
from app.pipeline.history import INTERRUPTED_MARK as INTERRUPTED_MARK
from app.pipeline.history import heard_history
from app.pipeline.keypad import Keypad
from app.pipeline.latency import LatencyLog, TurnStamps
from app.pipeline.parts import CallControl as CallControl
from app.pipeline.parts import ConversationConfig as ConversationConfig
from app.pipeline.parts import ConversationObserver as ConversationObserver
from app.pipeline.parts import Providers as Providers
from app.pipeline.parts import TranscriptEntry as TranscriptEntry
from app.pipeline.parts import VadFactory as VadFactory
from app.pipeline.parts import call_policy
from app.pipeline.playout import Playout
from app.pipeline.reply import Reply, ReplyState
from app.pipeline.responder import Responder
from app.pipeline.session import PCM, AudioWritten, CallIO
from app.pipeline.usage import CallUsage
from app.providers.base import Message, STTStream, Transcript, UtteranceEnd
from app.providers.errors import ProviderError
from app.providers.streaming import FailedStream
from app.providers.vad import VoiceActivityDetector, WebRtcVad
from app.telephony import events as ev

log = logging.getLogger("app.conversation")

TRANSFER_DRAIN_S = 10.0  # at most this long waiting for queued speech before a transfer


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
        self.config, self.providers, self.clock, self.control = config, providers, clock, control
        self.tools, self.call_id, self.persona = tools, call_id, persona
        self.turns = tt.TurnTaker(call_policy(config.policy, providers.stt.capabilities.interim_words))
        self._assessor: TurnAssessor | None = None
        self.latency = LatencyLog()
        self.history: list[Message] = [Message("system", config.system_prompt)]
        self.transcript: list[TranscriptEntry] = []
        self.barge_ins = self.false_interruptions = self.provider_errors = 0
        # preemptive replies: started, committed, and discarded after their LLM request began
        self.preemptive_started = self.preemptive_committed = self.preemptive_wasted = 0
        keypad = Keypad(config.keypad, config.keypad_gap_s)
        self.keys = CallKeys(keypad, clock, self.turns.handle, self._apply, call_id)
        self.usage = CallUsage(providers.stt.name, providers.stt.sample_rate)  # what it used, for its cost
        self._on_turn, self._observer = on_turn, observer
        self._data_dir, self._caller_number = data_dir, caller_number
        self.replies: dict[int, Reply] = {}  # by turn
        self._last_voiced = 0.0
        self._stt: STTStream | None = None
        self._stt_reader: asyncio.Task[None] | None = None
        self._hanging_up: asyncio.Task[None] | None = None

    # ── the call ──
    async def run(self, call: CallIO) -> None:
        self.call, self.out_format = call, call.outbound_format
        self.providers.failovers.enter(self.clock)  # the call's tasks write their failovers there
        self.playout = Playout(clock=self.clock, sink=call, turns=self.turns, chunk=call.chunk_frames)
        # the call's one VAD: its verdicts go to the turn-taker and to the recogniser
        make_vad = self.providers.vad
        self.vad: VoiceActivityDetector = (
            make_vad(call.pipeline_rate)
            if make_vad is not None
            else WebRtcVad(self.config.vad_aggressiveness, call.pipeline_rate)
        )
        model = self.providers.turn_model
        if model is not None and call.pipeline_rate == TurnAssessor.RATE:  # the model hears 16 kHz
            self._assessor = TurnAssessor(model, self.clock, self._on_assessed, self.call_id)
            self.turns.policy = dataclasses.replace(self.turns.policy, audio_model=True)
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
            async with contextlib.AsyncExitStack() as stack:
                try:
                    stt: STTStream = await stack.enter_async_context(
                        self.providers.stt.stream(self.config.stt)
                    )
                except ProviderError as exc:  # no recogniser: the caller hears the apology and goodbye
                    stt = FailedStream(exc)
                self._tg = tg = await stack.enter_async_context(asyncio.TaskGroup())
                tg.create_task(self.playout.run(), name=f"conv-{self.call_id}-playout")
                self._stt_reader = tg.create_task(self._read_stt(stt), name=f"conv-{self.call_id}-stt")
                tg.create_task(self._read_control(), name=f"conv-{self.call_id}-control")
                tg.create_task(self._tick(), name=f"conv-{self.call_id}-tick")
                self._stt = stt
                while not call.audio_in.empty():  # audio from before the start, in order, then the rest
                    await self._hear(stt, call.audio_in.get_nowait())
                call.take_audio(functools.partial(self._hear, stt))  # the reader calls it per frame
                greeting = "" if isinstance(stt, FailedStream) else self.config.greeting
                self._apply(self.turns.start(self.clock.now(), greeting))
        finally:
            call.take_audio(None)
            self._settle_replies()  # ended without ``finish`` (an error): keep what was heard
            if self._observer is not None:
                self._observer.on_end(self)

    async def finish(self) -> None:
        """The call is ending (see the module docstring); the session bounds it, then cancels ``run``."""
        stt, reader = self._stt, self._stt_reader
        if stt is None or reader is None:
            return  # not started yet: nothing was said
        if self.call.audio_handler is None:
            return  # finishing already
        self._settle_replies()
        self.call.take_audio(None)  # the caller's audio from now on is not heard
        audio_in = self.call.audio_in
        while not audio_in.empty():  # caller audio that arrived before the end, not yet heard
            pcm = audio_in.get_nowait()
            self.usage.stt_samples += len(pcm)
            await stt.send(pcm, self.vad.is_voiced(pcm))
        await stt.end_input()  # the recogniser's last results arrive, then its events end
        await asyncio.wait({reader})
        self._apply(self.turns.handle(tt.CallOver(self.clock.now())))
        if self._hanging_up is not None:
            await asyncio.wait({self._hanging_up})  # the agent's REST hang-up, already under way

    def _settle_replies(self) -> None:
        """The call ended with replies unfinished: stop them (no tool runs on) and keep what the
        caller heard; a reply not fully heard is interrupted."""
        paused = self.turns.floor is tt.Floor.PAUSED
        for turn, reply in sorted(self.replies.items()):
            if reply.done:
                continue
            if reply.held:
                self._cancel(turn)  # never committed: discarded
            elif reply.state is ReplyState.PRODUCED and not self.playout.pending(turn) and not paused:
                self._finish(reply, interrupted=False)  # heard in full
            else:
                self._cancel(turn)

    async def _hear(self, stt: STTStream, pcm: PCM) -> None:
        """One frame of the caller, in the socket's reader (``CallIO.take_audio``); never waits."""
        if self._assessor is not None:
            self._assessor.push(pcm)
        now = self.clock.now()
        voiced = self.vad.is_voiced(pcm)
        if voiced:
            self._last_voiced = now
        self._apply(self.turns.handle(tt.Voice(now, voiced)))
        self.usage.stt_samples += len(pcm)  # one integer add a frame: the recogniser's billed audio
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
        except ProviderError as exc:
            self.provider_errors += 1
            log.error("speech recognition failed: %s", exc.provider, extra={"call_id": self.call_id})
            if self.call.ending:
                return  # the call is over: nothing to apologise to
            reason = "speech recognition failed"
            self._apply(self.turns.handle(tt.EndRequested(self.clock.now(), reason)))
            turn = self.turns.turn + 1
            self._start_turn_reply(turn, fixed=self.config.apology + " " + self.config.goodbye)
            # nobody can answer the caller now: hang up once the apology and goodbye were heard
            task = self.replies[turn].task
            if task is not None:
                await asyncio.wait({task})
            await self.playout.drain(TRANSFER_DRAIN_S, stop=lambda: self.call.ending)
            if not self.call.ending:
                self._hang_up(reason)

    async def _read_control(self) -> None:
        while True:
            event = await self.call.events.get()
            match event:
                case ev.PlayedStreamEvent(name=name):
                    segment = self.playout.on_played(name)
                    if segment is not None:
                        self._check_done(segment.turn)
                case AudioWritten(mark=turn, t=t):
                    self._on_audio_written(turn, t)
                case ev.ClearedAudioEvent():
                    self.playout.on_cleared()
                case ev.DtmfEvent(digit=keys):
                    self.keys.press(keys)

    async def _tick(self) -> None:
        while True:
            await self.clock.sleep(self.config.tick_s)
            now = self.clock.now()
            first_loss = self.playout.acks_lost == 0
            lost = self.playout.expire_acks(now)  # playedStream lost: played by now
            if lost and first_loss:
                log.warning("checkpoint never acknowledged; taken as played", extra={"call_id": self.call_id})
            for segment in lost:
                self._check_done(segment.turn)
            self.keys.tick(now)
            self._apply(self.turns.handle(tt.Tick(now)))

    # ── actions ──

    def _apply(self, actions: list[tt.TurnAction]) -> None:
        for action in actions:
            match action:
                case tt.Respond(text=text) if self.call.ending:
                    # the caller's last words, after the end: written down, never answered
                    self.history.append(Message("user", text))
                    self._record(TranscriptEntry(self.clock.now(), "caller", text))
                case tt.Speak() | tt.HangUp() if self.call.ending:
                    pass  # nothing new is spoken after the end
                case tt.Respond(turn=turn, held=held):
                    if held:
                        self.preemptive_started += 1
                        self.playout.hold(turn)
                    self._start_turn_reply(turn, said=action)
                case tt.Commit(turn=turn, final_at=final_at):
                    self._commit(turn, final_at)
                case tt.Speak(turn=turn, text=text):
                    self._start_turn_reply(turn, fixed=text)
                case tt.Silence(turn=turn):
                    cut = self.playout.cut()
                    reply = self.replies.get(turn)
                    if cut is not None and reply is not None:
                        reply.cut = cut
                    self.barge_ins += 1
                case tt.Resume(turn=turn):
                    self.false_interruptions += 1
                    self.playout.resume()
                    self._check_done(turn)  # it may have been heard in full before the cut
                case tt.Cancel(turn=turn):
                    self._cancel(turn)
                case tt.HangUp(reason=reason):
                    self._hang_up(reason)
                case tt.Assess(seq=seq) if self._assessor is not None:
                    self._assessor.assess(seq, self._tg)

    def _on_assessed(self, answer: tt.Assessed) -> None:
        if not self.call.ending:
            self._apply(self.turns.handle(answer))

    def _caller_said(self, turn: int, said: tt.Respond, final_at: float | None = None) -> int:
        """The caller's turn ended with ``said`` (keys: at the last key): stamped, written down;
        its history index."""
        now, final_at = self.clock.now(), final_at if final_at is not None else said.final_at
        spoke = final_at if said.keyed and final_at is not None else self._last_voiced + 0.02
        self.latency.turn(turn).turn_ended(spoke, final_at, now)
        self.history.append(Message("user", said.text))
        self._record(TranscriptEntry(now, "caller", said.text))
        return len(self.history) - 1

    def _commit(self, turn: int, final_at: float | None = None) -> None:
        """The held reply ``turn`` becomes an ordinary reply: written down now, heard at once."""
        reply = self.replies.get(turn)
        if reply is None or not reply.held or reply.done or reply.answers is None:
            return
        final_at = final_at if final_at is not None else reply.answers.final_at
        reply.user_index = self._caller_said(turn, reply.answers, final_at)
        reply.commit()
        self.preemptive_committed += 1
        self.playout.release(turn)
        self._check_done(turn)  # it may have been produced in full while held

    def _start_turn_reply(self, turn: int, fixed: str | None = None, said: tt.Respond | None = None) -> None:
        """Reply ``turn``: a ``fixed`` line, or the answer to what the caller ``said`` (held or not)."""
        held = said is not None and said.held
        user_index = self._caller_said(turn, said) if said and not held else None
        p, c = self.providers, self.config
        responder = Responder(turn=turn, playout=self.playout, tts=p.tts, fallback_tts=p.fallback_tts,
                              lines=p.lines, tts_options=c.tts, out_format=self.out_format, clock=self.clock,
                              stamps=self.latency.turn(turn), apology=c.apology,
                              first_token_s=c.first_token_s, usage=self.usage)  # fmt: skip
        reply = self.replies[turn] = Reply(turn, responder, user_index, held=held, answers=said)
        name = f"conv-{self.call_id}-reply-{turn}"
        reply.task = self._tg.create_task(self._run_reply(reply, fixed), name=name)

    async def _run_reply(self, reply: Reply, fixed: str | None) -> None:
        turn, responder = reply.turn, reply.responder
        collect = functools.partial(self.keys.collect, responder)  # its prompt is said in this reply
        ctx = dataclasses.replace(self.tool_ctx, collect_digits=collect)
        try:
            if fixed is not None:
                await responder.say(fixed)
            else:
                await responder.reply(
                    self.providers.llm,
                    [*self.history, *reply.unwritten()],
                    self.tools.specs(),
                    self.config.llm,
                    responder.tool_runner(
                        self.tools, ctx, self.config.tool_filler_after_s, reply.until_committed
                    ),
                    menu=reply.answers.menu if reply.answers is not None else None,
                )
                if self.turns.closing and not responder.result.spoke:
                    await responder.say(self.config.goodbye)
        except ProviderError as exc:
            self.provider_errors += 1
            log.warning("could not speak: %s", exc.provider, extra={"call_id": self.call_id})
        if responder.result.failed:
            self.provider_errors += 1
        if reply.state is ReplyState.GENERATING:
            reply.state = ReplyState.PRODUCED
        self._check_done(turn)

    def _check_done(self, turn: int) -> None:
        """Reply ``turn`` is finished once produced and heard in full (with nothing to say: at
        once), unless cut and not yet decided, or held (then it is settled at its commit)."""
        reply = self.replies.get(turn)
        if reply is None or reply.held or reply.state is not ReplyState.PRODUCED:
            return
        if self.playout.pending(turn):
            return
        if not reply.responder.result.spoke:
            self._finish(reply, interrupted=False)
            self._apply(self.turns.handle(tt.ReplyEmpty(self.clock.now(), turn)))
            return
        if self.turns.floor is tt.Floor.PAUSED:
            return  # cut and not yet decided
        self._finish(reply, interrupted=False)
        self._apply(self.turns.handle(tt.AudioDone(self.clock.now(), turn)))

    def _cancel(self, turn: int) -> None:
        reply = self.replies.get(turn)
        if reply is not None and reply.held:
            if not reply.done:  # never committed: nothing heard or written down, no stamps kept
                self.preemptive_wasted += reply.discard()
                self.playout.drop_turn(turn)
                self.latency.turns.pop(turn, None)
            return
        cut = None
        if reply is not None:
            if reply.task is not None and not reply.task.done():
                reply.task.cancel()
            cut, reply.cut = reply.cut, None
        if cut is None and self.playout.pending(turn):
            cut = self.playout.cut()  # audible but not yet cut: silence it now
        self.playout.drop_turn(turn)
        if reply is not None:
            heard = cut.heard if cut is not None else self.playout.heard_text(turn)
            self._finish(reply, interrupted=True, heard=heard)
        stamps = self.latency.turns.get(turn)
        if stamps is not None:
            stamps.interrupted = True

    def _finish(self, reply: Reply, *, interrupted: bool, heard: str | None = None) -> None:
        """Reply done (``interrupted``: cancelled): the history and transcript get what was heard."""
        if reply.done:
            return
        reply.state = ReplyState.CANCELLED if interrupted else ReplyState.FINISHED
        turn, result = reply.turn, reply.responder.result
        text = reply.heard = heard if heard is not None else self.playout.heard_text(turn)
        if not text and interrupted and not result.rounds and reply.user_index is not None:
            # nothing was heard, no tool ran, and the caller went on: their words join the next turn
            index, reply.user_index = reply.user_index, None
            if index < len(self.history) and self.history[index].role == "user":
                del self.history[index]
            return
        # the history gets what the caller heard: tool calls and results where they happened
        self.history.extend(heard_history(text, result.spoken, result.rounds, interrupted=interrupted))
        if text:
            stamps = self.latency.turns.get(turn)
            started = stamps.first_play_audio if stamps is not None else None
            at = started if started is not None else self.clock.now()
            self._record(TranscriptEntry(at, "agent", text, interrupted))

    def _record(self, entry: TranscriptEntry) -> None:
        self.transcript.append(entry)
        if self._observer is not None:
            self._observer.on_transcript(self, entry)

    def _on_audio_written(self, turn: int, t: float) -> None:
        """The socket writer took a segment's first frame at ``t``: the reply is audible."""
        reply = self.replies.get(turn)
        if reply is None or reply.audible:
            return
        reply.audible = True
        self._apply(self.turns.handle(tt.AudioStarted(self.clock.now(), turn)))
        stamps = self.latency.turn(turn)
        stamps.stamp("first_play_audio", t)
        if self._on_turn is not None and stamps.speech_end is not None:
            self._on_turn(stamps)

    async def _transfer(self) -> str:
        """Transfer once what the caller has been told has played: Vobiz runs the new XML at
        once, so a "let me put you through" still queued would never be heard."""
        await self.playout.drain(TRANSFER_DRAIN_S)
        return await self.control.transfer()

    def shut_down(self) -> None:
        """The process is going away: cut what is in flight, say the shutdown line, hang up."""
        if self._stt is not None:  # not started yet: nothing to cut, and the session ends the call
            self._apply(self.turns.handle(tt.Shutdown(self.clock.now())))

    def _end_call(self, reason: str) -> None:
        self._apply(self.turns.handle(tt.EndRequested(self.clock.now(), reason)))

    def _hang_up(self, reason: str) -> None:
        log.info("agent hangs up", extra={"call_id": self.call_id, "reason": reason})
        self.call.stop()
        self._hanging_up = self._tg.create_task(self.control.hang_up(), name=f"conv-{self.call_id}-hangup")

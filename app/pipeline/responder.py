"""``Responder``: one agent reply, as one cancellable task.

LLM deltas → sentences → TTS → 20 ms frames → ``Playout``. The first sentence goes to TTS as
soon as it is complete; its first audio goes to the playout as soon as it exists. Tool calls
are executed between LLM rounds. A provider failure becomes a short spoken apology; when the
TTS itself failed, the apology (and any fixed line) is spoken by the ``fallback_tts`` if any.
Cancelling the task stops the LLM and TTS streams at their next await.

Retry rule: an LLM round or a sentence's synthesis that fails with a retryable ``ProviderError``
is tried once more, after ``RETRY_WAIT_S`` (or the service's ``Retry-After`` when that is at most
``RETRY_MAX_WAIT_S``), but only while nothing of it has been spoken: an LLM round none of whose
sentences was queued, a sentence none of whose audio was. A longer ``Retry-After`` is not waited
for on a call: the apology is said instead. The first event of each LLM round must come within
``first_token_s`` (a retryable failure, so the rule above applies).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from agents.tools import ToolContext, ToolRegistry
from app.audio.formats import AudioFormat
from app.clock import Clock, run_within
from app.pipeline.history import ToolRound
from app.pipeline.keypad import MenuChoice
from app.pipeline.latency import TurnStamps
from app.pipeline.playout import FRAME_S, Playout, SegmentAudio
from app.pipeline.sentences import SentenceSplitter, line_sentences
from app.pipeline.usage import CallUsage
from app.providers.base import (
    Finished,
    LanguageModel,
    LLMEvent,
    LLMOptions,
    LLMUsage,
    Message,
    SpeechSynthesizer,
    TextDelta,
    ToolCall,
    ToolCallRequest,
    ToolSpec,
    TTSOptions,
)
from app.providers.errors import ProviderError
from app.providers.line_cache import LineCache, render_frames

log = logging.getLogger("app.responder")

MAX_TOOL_ROUNDS = 4
FILLER_QUIET_S = 0.2  # a filler only fills silence: not while this much speech is still to play
FILLER_CHECK_S = 0.1  # how often a running tool's line is checked for silence
RETRY_WAIT_S = 0.3  # the one retry of a failed request waits this long (or its Retry-After) ...
RETRY_MAX_WAIT_S = 1.0  # ... unless the service asks for more: then there is no retry
FIRST_TOKEN_S = 4.0  # the first event of an LLM round must come within this long

ToolRunner = Callable[[ToolCall], Awaitable[str]]


def retry_wait(exc: ProviderError) -> float | None:
    """How long to wait before the one retry of the request that raised ``exc`` (None: no retry)."""
    if not exc.retryable:
        return None
    if exc.retry_after is None:
        return RETRY_WAIT_S
    return exc.retry_after if exc.retry_after <= RETRY_MAX_WAIT_S else None


@dataclass(slots=True)
class ReplyResult:
    text: str = ""  # everything the reply said (the heard part is the playout's business)
    spoke: bool = False  # at least one sentence was queued
    failed: bool = False
    tts_failed: bool = False  # the primary TTS raised ProviderError
    # each sentence that produced audio, in playout order, with the tool round it was said in
    spoken: list[tuple[int, str]] = field(default_factory=list)
    rounds: list[ToolRound] = field(default_factory=list)  # completed tool rounds, in order
    llm_requests: int = 0  # LLM requests started (a discarded preemptive reply's are wasted)


@dataclass(slots=True)
class Responder:
    turn: int
    playout: Playout
    tts: SpeechSynthesizer
    tts_options: TTSOptions
    out_format: AudioFormat
    clock: Clock
    stamps: TurnStamps
    apology: str = "Sorry, I had a problem there. Could you say that again?"
    fallback_tts: SpeechSynthesizer | None = None  # speaks when ``tts`` has failed
    max_ahead_s: float = 3.0  # synthesis waits while this much audio is still unheard
    first_token_s: float = FIRST_TOKEN_S  # the first event of an LLM round must come by then
    lines: LineCache | None = None  # fixed lines (``say``, the apology) rendered once, reused
    usage: CallUsage | None = None  # the call's counts: LLM tokens, characters synthesized
    _sentences: int = 0
    result: ReplyResult = field(default_factory=ReplyResult)

    async def say(self, text: str) -> None:
        """Speak ``text`` (a fixed line) sentence by sentence, each from ``lines`` when given;
        a sentence the primary TTS fails to voice is spoken by the fallback (when there is
        one), and so is the rest."""
        for sentence in line_sentences(text):
            voice = self._voice()
            try:
                await self._speak(sentence, voice, fixed=True)
            except ProviderError as exc:
                if voice is not self.tts or self.fallback_tts is None:
                    raise
                log.warning("speech failed, using the fallback voice: %s", exc.provider)
                await self._speak(sentence, self.fallback_tts, fixed=True)

    async def reply(
        self,
        llm: LanguageModel,
        history: Sequence[Message],
        tools: Sequence[ToolSpec],
        options: LLMOptions,
        run_tool: ToolRunner,
        menu: MenuChoice | None = None,
    ) -> None:
        """Answer the conversation in ``history`` (its last message is the caller's). ``menu``:
        the caller's keys map to a reply and a tool, the first round (the model's only after
        the tool's result is in)."""
        messages = list(history)
        try:
            for index in range(MAX_TOOL_ROUNDS):
                if index == 0 and menu is not None and (menu.reply or menu.tool):
                    calls, text = await self._menu_round(menu)
                else:
                    calls, text = await self._llm_round_once_more(llm, messages, tools, options)
                if not calls:
                    return
                messages.append(Message("assistant", text, tool_calls=tuple(calls)))
                results = [Message("tool", await run_tool(call), tool_call_id=call.id) for call in calls]
                messages.extend(results)
                # sentences spoken from here on (the next round's) come after these results
                self.result.rounds.append(ToolRound(tuple(calls), tuple(results)))
        except ProviderError as exc:
            self.result.failed = True
            log.warning("reply failed: %s", exc.provider, extra={"retryable": exc.retryable})
            await self._apologise()

    async def _menu_round(self, menu: MenuChoice) -> tuple[list[ToolCall], str]:
        """The round the persona's keypad map scripts: its reply, then its tool."""
        if menu.reply:
            await self.say(menu.reply)
        if menu.tool is None:
            return [], menu.reply
        return [ToolCall(f"key_{self.turn}", menu.tool, json.dumps(dict(menu.arguments)))], menu.reply

    def tool_runner(
        self,
        tools: ToolRegistry,
        ctx: ToolContext,
        filler_after_s: float,
        until: Callable[[], Awaitable[None]] | None = None,
    ) -> ToolRunner:
        """Runs the model's tool calls, each once ``until`` returns (a held reply's commit). A
        tool with a filler line that is still running after ``filler_after_s`` gets it said once
        the line has gone quiet (dead air); the tool keeps running meanwhile."""

        async def run(call: ToolCall) -> str:
            if until is not None:
                await until()
            async with asyncio.TaskGroup() as tg:
                work = tg.create_task(tools.run(ctx, call), name=f"tool-{call.name}")
                filler = tools.tools[call.name].filler if call.name in tools.tools else None
                started, said = self.clock.now(), False
                while filler and not said and not work.done():
                    waiter = tg.create_task(self.clock.sleep(FILLER_CHECK_S), name=f"tool-{call.name}-wait")
                    await asyncio.wait({work, waiter}, return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
                    slow = self.clock.now() - started >= filler_after_s
                    if slow and not work.done() and self.playout.backlog_s() < FILLER_QUIET_S:
                        said = True  # the line went quiet while the tool works: fill it once
                        await self.say(filler)
            return work.result()

        return run

    async def _llm_round_once_more(
        self, llm: LanguageModel, messages: list[Message], tools: Sequence[ToolSpec], options: LLMOptions
    ) -> tuple[list[ToolCall], str]:
        """An LLM round, tried once more if it failed retryably before any of it was spoken."""
        queued = self._sentences
        try:
            return await self._llm_round(llm, messages, tools, options)
        except ProviderError as exc:
            wait = retry_wait(exc)
            if wait is None or self._sentences != queued:
                raise
            log.info("retrying the reply once: %s", exc.provider, extra={"retryable": True})
        await self.clock.sleep(wait)
        return await self._llm_round(llm, messages, tools, options)

    async def _first_event(self, llm: LanguageModel, stream: AsyncIterator[LLMEvent]) -> LLMEvent | None:
        """The stream's first event (None: it ended), or a retryable ``ProviderError`` when it
        does not come within ``first_token_s`` of the clock."""
        got: list[LLMEvent | Exception | None] = []

        async def pull() -> None:
            try:
                got.append(await anext(stream, None))
            except Exception as exc:  # re-raised below, outside the task group
                got.append(exc)

        if not await run_within(self.clock, self.first_token_s, pull()):
            raise ProviderError(llm.name, f"no first token within {self.first_token_s:g} s", retryable=True)
        if isinstance(got[0], Exception):
            raise got[0]
        return got[0]

    async def _llm_round(
        self, llm: LanguageModel, messages: list[Message], tools: Sequence[ToolSpec], options: LLMOptions
    ) -> tuple[list[ToolCall], str]:
        splitter = SentenceSplitter()
        calls: list[ToolCall] = []
        said: list[str] = []
        self.result.llm_requests += 1
        if self.usage is not None:
            self.usage.llm_requests += 1
        async with contextlib.aclosing(llm.stream(messages, tools, options)) as stream:
            event = await self._first_event(llm, stream)
            while event is not None:
                match event:
                    case TextDelta(text=delta):
                        self.stamps.stamp("llm_first_token", self.clock.now())
                        for sentence in splitter.push(delta):
                            said.append(sentence)
                            await self._speak(sentence)
                    case ToolCallRequest(call=call):
                        self.stamps.stamp("llm_first_token", self.clock.now())
                        calls.append(call)
                    case LLMUsage(model=model, input_tokens=tokens_in, output_tokens=tokens_out):
                        if self.usage is not None:
                            self.usage.add_llm(model, tokens_in, tokens_out)
                    case Finished():
                        break
                event = await anext(stream, None)
        tail = splitter.flush()
        if tail:
            said.append(tail)
            await self._speak(tail)
        return calls, " ".join(said)

    def _voice(self) -> SpeechSynthesizer:
        """The primary TTS, or the fallback once the primary has failed in this reply."""
        if self.result.tts_failed and self.fallback_tts is not None:
            return self.fallback_tts
        return self.tts

    async def _apologise(self) -> None:
        try:
            await self._speak(self.apology, self._voice(), fixed=True)
        except ProviderError as exc:
            log.warning("apology failed too: %s", exc.provider)

    async def _speak(self, sentence: str, tts: SpeechSynthesizer | None = None, fixed: bool = False) -> None:
        # synthesise just ahead of the caller's ear, not the whole reply at once: a barge-in
        # then wastes little, and many calls' replies don't burst the CPU together
        while self._sentences and self.playout.backlog_s() > self.max_ahead_s:
            await self.clock.sleep(FRAME_S * 5)
        self._sentences += 1
        self.result.text = f"{self.result.text} {sentence}".strip()
        self.result.spoke = True
        tts = tts or self._voice()
        audio = self.playout.open_segment(self.turn, f"t{self.turn}-s{self._sentences}", sentence)
        retried = False
        try:
            while True:
                try:
                    await self._synthesize(sentence, tts, audio, fixed)
                    break
                except ProviderError as exc:
                    wait = retry_wait(exc)
                    if retried or audio.frames or wait is None:
                        raise
                    retried = True  # none of this sentence was heard yet: ask once more
                    log.info("retrying a sentence once: %s", exc.provider, extra={"retryable": True})
                    await self.clock.sleep(wait)
        except ProviderError:
            if tts is self.tts:
                self.result.tts_failed = True
            raise
        finally:
            self.playout.close_segment(audio)  # even when cancelled or failed: no half-open segment

    async def _synthesize(
        self, sentence: str, tts: SpeechSynthesizer, audio: SegmentAudio, fixed: bool
    ) -> None:
        """The sentence's frames into its segment as they come: a ``fixed`` line from ``lines``
        (cached, or rendered once for every call that needs it), anything else synthesized."""

        def add(frames: list[bytes]) -> None:
            self.stamps.stamp("tts_first_audio", self.clock.now())
            self._add_frames(audio, frames, sentence)

        def synthesizing(text: str) -> None:  # a request for this text goes to the voice now
            if self.usage is not None:
                self.usage.add_tts(tts.name, self.tts_options.voice, len(text))

        if fixed and self.lines is not None:
            await self.lines.frames(sentence, tts, self.tts_options, self.out_format, add, synthesizing)
        else:
            synthesizing(sentence)
            await render_frames(tts, sentence, self.tts_options, self.out_format, add)

    def _add_frames(self, audio: SegmentAudio, frames: list[bytes], sentence: str) -> None:
        if not frames:
            return
        if not audio.frames:  # the sentence becomes audible: it joins what the caller may hear
            self.result.spoken.append((len(self.result.rounds), sentence))
        self.playout.add_frames(audio, frames)

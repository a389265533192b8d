"""Scenario tests a business can write: ``scenarios/*.yaml``, run through the fake Vobiz.

A scenario names a persona, gives the caller's lines (the ``voice-agent simulate`` script
steps, one per item) and says what must be true afterwards::

    persona: clinic
    description: A caller books an appointment
    caller:
      - wait                                  # the greeting
      - say Hi, I'd like to book an appointment
      - wait
      - say Monday at 10 am, for John Smith
      - wait
      - hangup
    expect:
      - agent_says: Which day would suit you     # some reply contains it (any case)
      - agent_matches: 'booked .* Monday at 10 am'  # some reply matches (regular expression)
      - agent_never_says: emergency
      - tool_called: {name: book_appointment, arguments: {day: Monday}}  # these arguments at least
      - call_ended_by: agent                  # or: caller, transfer
      - no_false_interruptions: true
      - barge_ins: 1
      - max_latency: 1.5                      # seconds, every turn, caller stops → agent heard

Every call also must break no protocol rule. Calls run on the virtual clock with the embedded
engines (``PROVIDERS=offline``), each with an empty ``DATA_DIR``, so results repeat exactly.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
import yaml

from app.config import Settings
from app.simulator.caller import Say, ScriptError, Step, parse_step
from app.simulator.recording import CallRecording, TimelineEvent

SCENARIO_DIR = Path("scenarios")


class ScenarioError(ValueError):
    """A scenario file that cannot run; the message names the file, the field and a hint."""


class ToolExpectation(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    name: str
    arguments: dict[str, Any] = {}


def _regex(value: str) -> str:
    try:
        re.compile(value, re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression ({exc})") from None
    return value


Regex = Annotated[str, pydantic.AfterValidator(_regex)]


class Expectation(pydantic.BaseModel):
    """One line of ``expect:``: exactly one of these keys."""

    model_config = pydantic.ConfigDict(extra="forbid")
    agent_says: str | None = None
    agent_matches: Regex | None = None
    agent_never_says: str | None = None
    tool_called: ToolExpectation | None = None
    no_tool_called: bool | None = None
    call_ended_by: Literal["agent", "caller", "transfer"] | None = None
    no_false_interruptions: bool | None = None
    barge_ins: int | None = None
    max_latency: float | None = pydantic.Field(None, gt=0)

    @pydantic.model_validator(mode="after")
    def _one_key(self) -> Expectation:
        if len(self.model_fields_set) != 1:
            raise ValueError(f"one expectation per line, got {sorted(self.model_fields_set) or 'none'}")
        return self


class ScenarioFile(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    persona: str = "default"
    description: str = ""
    caller: list[str] = pydantic.Field(min_length=1)
    expect: list[Expectation] = []


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    path: Path
    persona: str
    description: str
    steps: list[Step]
    expect: list[Expectation]


@dataclass(slots=True)
class CallFacts:
    """What a scenario's expectations are checked against."""

    recording: CallRecording
    agent_lines: list[str] = field(default_factory=list)
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    false_interruptions: int = 0


@dataclass(slots=True)
class Outcome:
    scenario: Scenario
    failures: list[str]
    seconds: float  # wall time of the run
    call_seconds: float  # the call's own length (virtual time)
    facts: CallFacts | None = None

    @property
    def passed(self) -> bool:
        return not self.failures


def load_scenario(path: Path) -> Scenario:
    """Read and check one scenario file (raises :class:`ScenarioError`)."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ScenarioError(f"{path}: cannot be read as YAML ({exc})") from None
    try:
        parsed = ScenarioFile.model_validate(raw if raw is not None else {})
    except pydantic.ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "the file"
        raise ScenarioError(f"{path}: {where}: {first['msg']}") from None
    steps: list[Step] = []
    for index, line in enumerate(parsed.caller):
        try:
            step = parse_step(line)
        except ScriptError as exc:
            raise ScenarioError(f"{path}: caller.{index}: {exc}") from None
        if isinstance(step, Say) and step.wav is not None and not step.wav.is_absolute():
            step = Say(text=step.text, wav=path.parent / step.wav)  # next to the scenario file
        steps.append(step)
    return Scenario(path.stem, path, parsed.persona, parsed.description, steps, parsed.expect)


def find_scenarios(where: Path) -> list[Path]:
    """``where`` itself if it is a file, else its ``*.yaml``/``*.yml`` files in name order."""
    if where.is_file():
        return [where]
    if not where.is_dir():
        raise ScenarioError(f"{where}: no such scenario file or folder")
    return sorted([*where.glob("*.yaml"), *where.glob("*.yml")])


def check(expect: list[Expectation], facts: CallFacts) -> list[str]:
    """Every expectation that does not hold, as a sentence; protocol errors always fail."""
    rec = facts.recording
    said = [line.lower() for line in facts.agent_lines]
    failures = [f"protocol error {e.rule}: {e.detail}" for e in rec.protocol_errors]
    for e in expect:
        if e.agent_says is not None and not any(e.agent_says.lower() in line for line in said):
            failures.append(f"the agent never said {e.agent_says!r}")
        if e.agent_matches is not None:
            pattern = re.compile(e.agent_matches, re.IGNORECASE)
            if not any(pattern.search(line) for line in facts.agent_lines):
                failures.append(f"no reply matched {e.agent_matches!r}")
        if e.agent_never_says is not None and any(e.agent_never_says.lower() in line for line in said):
            failures.append(f"the agent said {e.agent_never_says!r}")
        if e.tool_called is not None and not any(_tool_matches(e.tool_called, c) for c in facts.tool_calls):
            wanted = f"{e.tool_called.name}({json.dumps(e.tool_called.arguments)})"
            failures.append(f"no call of {wanted}; calls: {_calls(facts)}")
        if e.no_tool_called and facts.tool_calls:
            failures.append(f"tools were called: {_calls(facts)}")
        if e.call_ended_by is not None:
            ended_by = (
                "agent"
                if rec.end_reason.startswith("app")
                else "transfer"
                if rec.end_reason.startswith("transferred")
                else "caller"
            )
            if ended_by != e.call_ended_by:
                failures.append(f"the call was ended by the {ended_by} ({rec.end_reason})")
        if e.no_false_interruptions and facts.false_interruptions:
            failures.append(f"{facts.false_interruptions} false interruption(s)")
        if e.barge_ins is not None:
            barge_ins = len(rec.events_of("barge_in"))
            if barge_ins != e.barge_ins:
                failures.append(f"{barge_ins} barge-in(s), expected {e.barge_ins}")
        if e.max_latency is not None:
            slow = [t for t in rec.turns if t.latency > e.max_latency]
            if slow:
                worst = max(slow, key=lambda t: t.latency)
                failures.append(f"turn {worst.turn} took {worst.latency:.2f} s (> {e.max_latency:g} s)")
    return failures


def _tool_matches(wanted: ToolExpectation, call: tuple[str, dict[str, Any]]) -> bool:
    name, arguments = call
    return name == wanted.name and all(
        str(arguments.get(k, "")).strip().lower() == str(v).strip().lower()
        for k, v in wanted.arguments.items()
    )


def _calls(facts: CallFacts) -> str:
    return ", ".join(f"{n}({json.dumps(a)})" for n, a in facts.tool_calls) or "none"


async def run_scenario(
    scenario: Scenario, settings: Settings, listener: Callable[[TimelineEvent], None] | None = None
) -> Outcome:
    """Run one scenario's call (virtual clock, embedded engines, a fresh ``DATA_DIR``)."""
    from app.simulator.simulate import AgentView, SimulateOptions, run_simulation, with_settings

    started = time.perf_counter()
    if not (settings.prompts_dir / f"{scenario.persona}.md").is_file():
        missing = f"no persona {scenario.persona!r} in {settings.prompts_dir}"
        return Outcome(scenario, [missing], time.perf_counter() - started, 0.0)
    view = AgentView(listener)
    with tempfile.TemporaryDirectory(prefix="scenario-") as data:
        local = with_settings(settings, providers="offline", data_dir=Path(data))
        options = SimulateOptions(virtual=True, persona=scenario.persona)
        rec = await run_simulation(
            options, local, listener or (lambda _: None), view=view, steps=scenario.steps
        )
    facts = CallFacts(rec, agent_lines=[line.text for line in rec.transcript if line.speaker == "agent"])
    for conversation in view.ended:
        facts.false_interruptions += conversation.false_interruptions
        for call in conversation.tool_ctx.calls:
            try:
                arguments = json.loads(call.arguments or "{}")
            except ValueError:
                arguments = {"_raw": call.arguments}
            facts.tool_calls.append((call.name, arguments if isinstance(arguments, dict) else {}))
    failures = check(scenario.expect, facts)
    if not view.ended:
        failures.insert(0, "the agent never answered the call")
    return Outcome(scenario, failures, time.perf_counter() - started, rec.duration, facts)

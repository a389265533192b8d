"""``EndOfTurn``: has the caller finished their turn? Pure: words in, a verdict and a wait out.

Silence alone is a poor judge: "What time do you open?" is over at once, "I'd like a table
for…" is not, however long the caller thinks. The verdict comes from the words first:

- **incomplete**: the words trail off on a connective or a filler ("for", "and", "the", "um",
  Hindi "aur", "ki", "toh", Telugu "kaani": per language, ``app.pipeline.language_words``),
  on "…", or in the middle of a number being dictated (3 to 9 digits so far);
- **complete**: a question mark (it wins over a trailing preposition: "what is it for?"), a full
  stop or an exclamation mark after the last word (the streaming recognisers punctuate; a full
  stop from Whisper, which ends every stretch of speech with one, counts for nothing), or a
  one-word answer ("yes", "no", "okay", "haan", Tamil "illai");
- **unsure**: anything else. An end-of-turn audio model, when there is one, decides these
  (``resolve``); else the recogniser's own end of speech or ``unsure_s`` of silence ends them.

Each verdict has its silence (``EndOfTurnPolicy``): complete ``complete_s``, unsure
``unsure_s``, incomplete ``incomplete_s`` (the longest the agent ever waits for more words);
unsure words the audio model hears as unfinished wait ``model_incomplete_s`` (measured: the
model often hears a finished sentence read by a flat voice as unfinished, which cost 2 s).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from app.pipeline.language_words import cues, language_codes
from app.pipeline.language_words import words as tokens


class Verdict(Enum):
    COMPLETE = "complete"
    UNSURE = "unsure"
    INCOMPLETE = "incomplete"


@dataclass(frozen=True, slots=True)
class EndOfTurnPolicy:
    """Seconds of the caller's silence (by VAD, since their last voiced frame)."""

    decide_after_s: float = 0.15  # judge the words (and prepare a reply) after this much silence
    complete_s: float = 0.25  # the turn is over after this much silence when the words are complete
    unsure_s: float = 0.7  # ... when nothing says either way (and the recogniser has not ended it)
    incomplete_s: float = 2.0  # ... when they trail off: then the agent answers anyway
    model_threshold: float = 0.5  # the audio model's probability from which a turn is complete
    reassess_s: float = 0.4  # the model said "not finished": asked again after this much more silence
    model_incomplete_s: float = 1.0  # the longest wait on the model's "not finished" alone
    preemptive: bool = True  # start the reply at ``decide_after_s`` (kept unheard until the end)
    languages: frozenset[str] = frozenset({"en"})  # the cue lists used ("en", "hi", "ta", ...)

    def wait(self, verdict: Verdict) -> float:
        if verdict is Verdict.COMPLETE:
            return self.complete_s
        if verdict is Verdict.INCOMPLETE:
            return self.incomplete_s
        return self.unsure_s


# fillers that start an answer: nothing said yet
_FILLERS = frozenset(("um", "uh", "er", "erm", "uhm", "umm", "hmm", "mm", "so", "well", "like"))
_DIGIT_WORDS = frozenset(
    ("zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "double", "triple")
)
_TRAILING_DIGITS = re.compile(r"(?:\d[\d\s().-]*)$")


def cue_languages(language: str) -> frozenset[str]:
    """The cue lists for a recogniser language ("en-US" → English; "hi", "en-IN", "multi" →
    English and Hindi; "ta-IN" → English, Hindi and Tamil, as Indian callers mix them): see
    ``app.pipeline.language_words``."""
    return language_codes(language)


def text_verdict(
    text: str, languages: frozenset[str] = frozenset({"en"}), *, full_stop: bool = True
) -> Verdict:
    """What the words alone say about the end of the turn. ``full_stop=False``: a final full stop
    says nothing (a recogniser that transcribes each stretch of speech alone, like Whisper, ends
    every stretch with one, even "Sorry, wait." before "make that four people")."""
    stripped = text.strip()
    if not stripped:
        return Verdict.UNSURE
    if stripped.endswith(("...", "…", ",", "-", "–", "—")):
        return Verdict.INCOMPLETE
    words = tokens(stripped)
    if not words:
        return Verdict.UNSURE
    if all(w in _FILLERS for w in words):
        return Verdict.INCOMPLETE  # "um…": the answer has not started
    last = words[-1]
    if stripped.endswith("?"):
        return Verdict.COMPLETE
    lists = cues(languages)
    if last in lists.trailing and not (len(words) == 1 and last in lists.answers):
        return Verdict.INCOMPLETE
    if _dictating(stripped.rstrip(".!"), words):
        return Verdict.INCOMPLETE
    if stripped.endswith(("!", "।")) or (full_stop and stripped.endswith(".")):
        return Verdict.COMPLETE
    if len(words) == 1 and last in lists.answers:
        return Verdict.COMPLETE
    return Verdict.UNSURE


def _dictating(text: str, words: list[str]) -> bool:
    """A number is being read out and is not whole yet: 3 to 9 digits at the end."""
    match = _TRAILING_DIGITS.search(text)
    digits = sum(c.isdigit() for c in match.group()) if match else 0
    if digits == 0:
        run = 0
        for w in reversed(words):
            if w not in _DIGIT_WORDS:
                break
            run += 1
        digits = run
    return 3 <= digits <= 9


def resolve(verdict: Verdict, probability: float | None, threshold: float) -> Verdict:
    """The audio model settles an unsure verdict; the words win when they are sure."""
    if verdict is not Verdict.UNSURE or probability is None:
        return verdict
    return Verdict.COMPLETE if probability >= threshold else Verdict.INCOMPLETE


def same_words(a: str, b: str) -> bool:
    """The same words, whatever the case and punctuation (an interim and its final)."""
    return tokens(a) == tokens(b)

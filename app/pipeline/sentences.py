"""Split a streamed LLM reply into sentences, so speech can start at the first one.

Pure and incremental: ``push`` takes each text delta and returns the sentences it completed.
A sentence ends at ``.``, ``!``, ``?`` (or ``।``, ``…``) followed by a space or newline, or at a
newline; abbreviations ("Dr.", "e.g.") and numbers ("3.5") do not end one. The first sentence
of a reply may be cut early (at a comma once it is long, or after ``first_max_words`` words)
to get the first audio out sooner.
"""

from __future__ import annotations

import re

ABBREVIATIONS = frozenset(
    (
        *("mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e"),
        *("a.m", "p.m", "no", "approx", "dept", "est", "inc", "ltd", "co"),
    )
)
_END = re.compile(r"([.!?।…]+[\"')\]]*)(\s+)|(\n+)")
FIRST_CLAUSE_CHARS = 60  # a first sentence longer than this may be cut at a comma
FIRST_MAX_WORDS = 12  # ... and one with no comma is cut after this many words


class SentenceSplitter:
    def __init__(
        self, first_clause_chars: int = FIRST_CLAUSE_CHARS, first_max_words: int = FIRST_MAX_WORDS
    ) -> None:
        self._buffer = ""
        self._emitted = 0
        self._first_clause_chars = first_clause_chars
        self._first_max_words = first_max_words

    def push(self, delta: str) -> list[str]:
        """Add streamed text; return the sentences now complete (stripped, non-empty)."""
        self._buffer += delta
        out: list[str] = []
        while True:
            cut = self._find_cut()
            if cut is None:
                break
            sentence, self._buffer = self._buffer[:cut].strip(), self._buffer[cut:].lstrip()
            if sentence:
                out.append(sentence)
                self._emitted += 1
        return out

    def flush(self) -> str | None:
        """The unfinished tail at the end of the reply (None if nothing is left)."""
        tail, self._buffer = self._buffer.strip(), ""
        if tail:
            self._emitted += 1
            return tail
        return None

    def _find_cut(self) -> int | None:
        for match in _END.finditer(self._buffer):
            if match.group(3):  # newline
                return match.end()
            before = self._buffer[: match.start()]
            word = before.rsplit(None, 1)[-1].lower() if before.split() else ""
            if match.group(1).startswith(".") and (word.rstrip(".") in ABBREVIATIONS or len(word) == 1):
                continue  # "Dr. Smith", "J. Doe"
            return match.end()
        if self._emitted == 0 and len(self._buffer) > self._first_clause_chars:
            comma = self._buffer.find(", ", self._first_clause_chars // 2)
            if comma != -1:
                return comma + 2
        if self._emitted == 0:
            # a long first sentence with no comma: speak its first words rather than wait
            spaces = [m.start() for m in re.finditer(r"\s", self._buffer)]
            if len(spaces) >= self._first_max_words:
                return spaces[self._first_max_words - 1] + 1
        return None


def line_sentences(text: str) -> list[str]:
    """A fixed line's sentences, cut as a reply's are (a line is spoken, and cached, by sentence)."""
    splitter = SentenceSplitter()
    sentences = splitter.push(text + " ")
    tail = splitter.flush()
    return [*sentences, tail] if tail else sentences

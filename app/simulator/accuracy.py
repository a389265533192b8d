"""Word accuracy of speech recognition: what the caller said against what the agent heard."""

from __future__ import annotations

from collections.abc import Iterable


def words(text: str) -> list[str]:
    """Lower-cased words; punctuation is ignored, apostrophes kept ("don't")."""
    return "".join(c if c.isalnum() or c == "'" else " " for c in text.lower()).split()


def word_errors(reference: str, hypothesis: str) -> int:
    """Word-level Levenshtein distance: substitutions + deletions + insertions."""
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def word_error_rate(pairs: Iterable[tuple[str, str]]) -> float:
    """Word errors over all ``(reference, hypothesis)`` pairs ÷ reference words (0 with none)."""
    pairs = list(pairs)
    total = sum(len(words(r)) for r, _ in pairs)
    return sum(word_errors(r, h) for r, h in pairs) / total if total else 0.0

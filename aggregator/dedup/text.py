"""Language-agnostic text folding for matching (never for display).

Case and accents are folded ("Corée" and "coree" match), French elisions are split off
and dropped ("l'Iran" -> "iran", "qu'un" -> "un") because the same sentence is written
with typographic or straight apostrophes and the article carries no meaning for matching.
"""

from __future__ import annotations

import re
import unicodedata

# l', d', qu', j', n', s', c', m', t', jusqu', lorsqu', puisqu' before a letter.
_ELISION = re.compile(r"\b(?:l|d|qu|j|n|s|c|m|t|jusqu|lorsqu|puisqu)['’ʼ](?=\w)", re.IGNORECASE)
_WORD = re.compile(r"\w+")


class _CombiningMarks(dict[int, int | None]):
    """A `str.translate` table that deletes combining marks, filled as characters are met.

    Testing `unicodedata.combining` character by character in Python was a sixth of an
    update's time; the table answers in C after the first sight of each character, and
    building it for all of Unicode up front would cost a quarter of a second at start-up."""

    def __missing__(self, code: int) -> int | None:
        value = None if unicodedata.combining(chr(code)) else code
        self[code] = value
        return value


_COMBINING_MARKS = _CombiningMarks()


def fold(text: str) -> str:
    """Lower-case, accents removed, elisions dropped; punctuation kept for the tokeniser."""
    if "'" in text or "’" in text or "ʼ" in text:  # the search itself is slow
        text = _ELISION.sub(" ", text)
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    if decomposed.isascii():  # nothing to remove: most English text
        return decomposed
    return decomposed.translate(_COMBINING_MARKS)


def tokens(text: str) -> list[str]:
    """The folded words of a text, in order."""
    return _WORD.findall(fold(text))

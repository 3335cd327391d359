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


def fold(text: str) -> str:
    """Lower-case, accents removed, elisions dropped; punctuation kept for the tokeniser."""
    text = _ELISION.sub(" ", text)
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def tokens(text: str) -> list[str]:
    """The folded words of a text, in order."""
    return _WORD.findall(fold(text))

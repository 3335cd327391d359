"""Language-agnostic text folding for matching (never for display).

Case and accents are folded ("Corée" and "coree" match), French elisions are split off
and dropped ("l'Iran" -> "iran", "qu'un" -> "un") because the same sentence is written
with typographic or straight apostrophes and the article carries no meaning for matching.

`_ELISION` is the definition of an elision. It is not searched for across the whole text:
its leading `\\b` and its case-insensitive alternation were tried at every position, about
three quarters of the folding time of an article. An elision ends with an apostrophe, so
only the few places before each apostrophe are tried (`_elide`), with the same pattern.
`tokens` gives the `\\w+` runs of `fold` with `str.translate` and `str.split` instead of
`re.findall`, which took three times as long as `split`."""

from __future__ import annotations

import re
import unicodedata

# l', d', qu', j', n', s', c', m', t', jusqu', lorsqu', puisqu' before a letter.
_ELISION = re.compile(r"\b(?:l|d|qu|j|n|s|c|m|t|jusqu|lorsqu|puisqu)['’ʼ](?=\w)", re.IGNORECASE)
_APOSTROPHES = ("'", "’", "ʼ")
# How far before its apostrophe an elision can start: the lengths of the elided words
# (case-insensitive matching is character by character, so lengths do not change).
_ELIDED_LENGTHS = (1, 2, 5, 6)
# A word: `tokens` gives the matches of this in `fold(text)` without running it.
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


def _word_table_value(code: int) -> int | None:
    """What tokenising turns a character into: combining marks are deleted (as `fold`
    does), characters that `\\w` matches are kept, every other one becomes a space. Then
    `str.split()` gives exactly the `\\w+` runs of the folded text: Unicode `\\w` is
    `str.isalnum()` or "_", and none of those is whitespace (both checked over all of
    Unicode)."""
    char = chr(code)
    if unicodedata.combining(char):
        return None
    return code if char.isalnum() or char == "_" else 0x20


_COMBINING_MARKS = _CombiningMarks()
# A plain dict, filled as characters are met (`str.translate` took one and a half times
# as long with a dict subclass like `_CombiningMarks`): characters it does not know pass
# through unchanged, which `tokens` notices. ASCII is filled up front, so an unknown
# character is never ASCII.
_WORD_TABLE: dict[int, int | None] = {code: _word_table_value(code) for code in range(128)}
# The same for text that is ASCII after elision (most English text), applied to its bytes
# in one pass together with case folding (for ASCII, casefold is lower and NFKD changes
# nothing).
_ASCII_WORD_TABLE = bytes(
    ord(chr(b).lower()) if chr(b).isalnum() or chr(b) == "_" else 0x20 for b in range(128)
) + bytes(range(128, 256))  # never met: the text is ASCII


def _elide(text: str) -> str:
    """`_ELISION.sub(" ", text)`, trying the pattern only just before apostrophes.

    Elisions never overlap (each holds one apostrophe, after letters only) and whether one
    matches depends on the text alone, not on earlier matches, so matching them one
    apostrophe at a time gives what `sub` gives."""
    starts: list[tuple[int, int]] = []
    for quote in _APOSTROPHES:
        k = text.find(quote)
        while k >= 0:
            for length in _ELIDED_LENGTHS:
                if length > k:
                    break
                found = _ELISION.match(text, k - length)  # `\b` still sees text[k - length - 1]
                if found is not None and found.end() == k + 1:
                    starts.append((k - length, k + 1))
                    break
            k = text.find(quote, k + 1)
    if not starts:
        return text
    starts.sort()
    parts = []
    done = 0
    for start, end in starts:
        parts.append(text[done:start])
        done = end
    parts.append(text[done:])
    return " ".join(parts)


def fold(text: str) -> str:
    """Lower-case, accents removed, elisions dropped; punctuation kept for the tokeniser."""
    decomposed = unicodedata.normalize("NFKD", _elide(text).casefold())
    if decomposed.isascii():  # nothing to remove: most English text
        return decomposed
    return decomposed.translate(_COMBINING_MARKS)


def tokens(text: str) -> list[str]:
    """The folded words of a text, in order: `\\w+` runs of `fold(text)`."""
    text = _elide(text)
    if text.isascii():
        return text.encode("ascii").translate(_ASCII_WORD_TABLE).decode("ascii").split()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    words = decomposed.translate(_WORD_TABLE)
    if not words.isascii():  # letters of other scripts, or characters not met yet
        unknown = set(map(ord, set(words))).difference(_WORD_TABLE)
        if unknown:
            _WORD_TABLE.update((code, _word_table_value(code)) for code in unknown)
            words = decomposed.translate(_WORD_TABLE)
    return words.split()


# Short titles ("Live updates", "Breaking news") repeat across unrelated stories.
MIN_TITLE_WORDS = 5


def distinctive_title(title_words: int) -> bool:
    """Whether a title of this many words says enough to match an item on it alone."""
    return title_words >= MIN_TITLE_WORDS


def distinctive_content(title: str, text: str) -> bool:
    """Whether an item's title and text say enough to match it on content: a text, or a
    distinctive title. An empty text under "Live updates" matches nothing."""
    return bool(text) or distinctive_title(len(tokens(title)))

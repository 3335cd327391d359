"""`fold` and `tokens` take shortcuts (elisions tried only before apostrophes, ASCII text
folded as bytes, cached translation tables, `split` instead of a regex); they must give
exactly what the plain definitions give, for any text."""

from __future__ import annotations

import re
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.dedup.text import _ELISION, _elide, fold, tokens


def plain_fold(text: str) -> str:
    """The definition: elisions dropped, case folded, NFKD, every combining mark removed."""
    text = _ELISION.sub(" ", text)
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def plain_tokens(text: str) -> list[str]:
    """The definition: the `\\w+` runs of the folded text."""
    return re.findall(r"\w+", plain_fold(text))


# Characters that take the shortcuts' corners: every apostrophe, the letters of the elided
# words in both cases and their case-insensitive look-alikes (long s, dotless and dotted
# i, Kelvin sign), accents precomposed and combining, compatibility characters that NFKD
# turns into ASCII capitals or several letters ("™", "ﬁ", "𝐀", "²"), "_" and digits (word
# characters that are not letters), Unicode spaces, punctuation, letters of other scripts.
TRICKY = (
    "lLdDqQuUjJsSnNcCmMtToOrRpPiI'’ʼ ſıİK éÉàçŒ\u0301\u0327ﬁ™𝐀²_09\u00a0\u3000\t\n-.,«»—ßΣςЖ日😀"
)


@settings(max_examples=500, derandomize=True)
@given(st.text())
def test_fold_equals_its_definition_on_any_text(text: str) -> None:
    assert fold(text) == plain_fold(text)


@settings(max_examples=300, derandomize=True)
@given(st.text(alphabet=st.sampled_from("lLdqujs'’ʼ éÉàçŒﬁ̈ ")))
def test_fold_equals_its_definition_on_elisions_and_accents(text: str) -> None:
    assert fold(text) == plain_fold(text)


@settings(max_examples=1000, derandomize=True)
@given(st.text(alphabet=st.sampled_from(TRICKY), max_size=40))
def test_elisions_and_tokens_equal_their_definitions_on_tricky_text(text: str) -> None:
    assert _elide(text) == _ELISION.sub(" ", text)
    assert fold(text) == plain_fold(text)
    assert tokens(text) == plain_tokens(text)


PIECES = ["l'", "L’", "qu'", "jusqu’", "Lorsqu'", "puisqu'", "s'", "x", "Été", " ", "'", "ʼ", "-"]


@settings(max_examples=300, derandomize=True)
@given(st.lists(st.sampled_from(PIECES), max_size=20))
def test_elisions_in_runs_equal_their_definition(parts: list[str]) -> None:
    """Elided words next to each other and to stray apostrophes ("l'l'x", "qu''a")."""
    text = "".join(parts)
    assert _elide(text) == _ELISION.sub(" ", text)
    assert tokens(text) == plain_tokens(text)


@settings(max_examples=500, derandomize=True)
@given(st.text())
def test_tokens_equal_their_definition_on_any_text(text: str) -> None:
    assert tokens(text) == plain_tokens(text)


def test_examples() -> None:
    assert fold("L’Été de l'Iran, qu'un Noël") == " ete de  iran,  un noel"
    assert tokens("L’Été de l'Iran, qu'un Noël") == ["ete", "de", "iran", "un", "noel"]
    # NFKD after case folding can give capitals back: the definition keeps them.
    assert tokens("Opteron™ ﬁn_2") == ["opteronTM", "fin_2"]
    assert tokens("jusqu'à lorsqu’il l'l'x it's") == ["a", "il", "x", "it", "s"]

"""`fold` takes shortcuts (ASCII text, no apostrophe, a cached table of combining marks);
it must give exactly what the plain definition gives, for any text."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.dedup.text import _ELISION, fold


def plain_fold(text: str) -> str:
    """The definition: elisions dropped, case folded, NFKD, every combining mark removed."""
    text = _ELISION.sub(" ", text)
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@settings(max_examples=500, derandomize=True)
@given(st.text())
def test_fold_equals_its_definition_on_any_text(text: str) -> None:
    assert fold(text) == plain_fold(text)


@settings(max_examples=300, derandomize=True)
@given(st.text(alphabet=st.sampled_from("lLdqujs'’ʼ éÉàçŒﬁ̈ ")))
def test_fold_equals_its_definition_on_elisions_and_accents(text: str) -> None:
    assert fold(text) == plain_fold(text)


def test_examples() -> None:
    assert fold("L’Été de l'Iran, qu'un Noël") == " ete de  iran,  un noel"

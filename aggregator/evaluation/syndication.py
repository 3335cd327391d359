"""A syndication test built from real article texts: copies against distinct articles.

Each article of ECB+ and RPM2 (long enough to be copied) gets one copy per kind of edit
a republisher makes: a changed headline, a boilerplate line added, the last paragraph cut,
a few words edited, and all of them at once. Every original and copy goes through the
near-duplicate level (the same index and verification as the daemon), one at a time:

- recall: copies whose best verified match is their own original (or another copy of it);
- precision: verified matches that are right, counting any match between two different
  articles as wrong (ECB+ topics hold many articles on one event, so this is the hard case).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from aggregator.dedup.grouping import best_match
from aggregator.dedup.index import Fingerprint, SimilarityIndex
from aggregator.dedup.signature import Signer
from aggregator.evaluation.datasets import LabeledItem
from aggregator.evaluation.metrics import Scores

SEED = 7
MIN_WORDS = 120  # shorter texts have no paragraph to cut and no room for edits
BOILERPLATE = "Suivez-nous sur les réseaux sociaux et abonnez-vous à notre newsletter."
EDITS = ("headline", "boilerplate", "cut_last_paragraph", "edit_words", "all")
WHEN = datetime(2026, 1, 5, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Document:
    id: str
    article: str  # the original's id: same article = a true match
    title: str
    text: str


def _edit_words(text: str, rng: random.Random, share: float = 0.03) -> str:
    words = text.split(" ")
    for position in rng.sample(range(len(words)), max(1, int(len(words) * share))):
        words[position] = words[position][::-1]  # a different word of the same length
    return " ".join(words)


def make_copy(item: LabeledItem, edit: str, rng: random.Random) -> Document:
    title, text = item.title, item.text
    paragraphs = [p for p in text.split("\n") if p.strip()]
    if edit in ("headline", "all"):
        title = "Exclusive: " + " ".join(reversed(title.split()[:6]))
    if edit in ("cut_last_paragraph", "all") and len(paragraphs) > 2:
        paragraphs = paragraphs[:-1]
    text = "\n".join(paragraphs)
    if edit in ("boilerplate", "all"):
        text = text + "\n" + BOILERPLATE
    if edit in ("edit_words", "all"):
        text = _edit_words(text, rng)
    return Document(id=f"{item.id}~{edit}", article=item.id, title=title, text=text)


def build(items: Sequence[LabeledItem]) -> list[Document]:
    """Originals and their copies, shuffled with a fixed seed."""
    rng = random.Random(SEED)
    documents: list[Document] = []
    for item in items:
        if len(item.text.split()) < MIN_WORDS:
            continue
        documents.append(Document(item.id, item.id, item.title, item.text))
        documents.extend(make_copy(item, edit, rng) for edit in EDITS)
    rng.shuffle(documents)
    return documents


@dataclass(frozen=True, slots=True)
class SyndicationResult:
    articles: int
    copies: int
    scores: Scores
    false_matches: int

    def report(self) -> str:
        return (
            f"syndication: {self.articles} articles, {self.copies} copies\n"
            f"  near-duplicate  {self.scores}  ({self.false_matches} wrong matches)"
        )


def evaluate(documents: Sequence[Document], signer: Signer | None = None) -> SyndicationResult:
    signer = signer or Signer()
    index = SimilarityIndex(signer)
    article_of: dict[int, str] = {}
    right = wrong = 0
    for number, document in enumerate(documents):
        signatures = signer.sign(document.title, document.text)
        match = best_match(signatures, index.candidates(signatures))
        event = number
        if match is not None:
            event = match.event_id
            if article_of[match.entry_id] == document.article:
                right += 1
            else:
                wrong += 1
        article_of[number] = document.article
        index.add(Fingerprint(number, 0, event, WHEN, None, signatures))
    articles = len({d.article for d in documents})
    # Every copy should find its article: the first to arrive of each article has nothing.
    expected = len(documents) - articles
    return SyndicationResult(
        articles=articles,
        copies=len(documents) - articles,
        scores=Scores(
            precision=right / (right + wrong) if right + wrong else 1.0,
            recall=right / expected if expected else 1.0,
        ),
        false_matches=wrong,
    )

"""Term vectors (pure): what the event level knows of an entry's words.

Two write-ups of one event share names, places and numbers, not sentences, so the
near-duplicate signatures miss them. Each entry gets a term vector: folded words cut to
their first `PREFIX_LENGTH` characters (a language-agnostic stemmer: "tapering"/"taper",
"munitions"/"munition"), the title counted `TITLE_WEIGHT` times, the first `LEAD_WORDS` words
of the text, the next ones up to `BODY_WORDS` at `BODY_WORD_WEIGHT` (the lead says what
happened; the rest adds the story's vocabulary, which long French articles need to find
each other), capitalised words and numbers of the lead counted `NAME_BOOST` more times
(names tell look-alike events apart: two rehab stories differ by who entered rehab), and
the words of the link's path (slugs often hold the full headline that the title truncated).

Terms are kept and stored as 64-bit hashes (`encode_vector`), and the ordinary-language
table headlines are weighed against (dedup/background.py) is keyed the same way.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt
from xxhash import xxh64_intdigest

from aggregator.dedup.text import tokens
from aggregator.models import WindowEntry

PREFIX_LENGTH = 6
TITLE_WEIGHT = 2.0
LEAD_WORDS = 300
# Words 300-600 at half weight: long write-ups join more often, while the whole text at
# full weight cost precision on look-alike events.
BODY_WORDS = 600
BODY_WORD_WEIGHT = 0.5
NAME_BOOST = 2.0
URL_WORD_WEIGHT = 1.0
MIN_TERM_LENGTH = 3  # shorter words are mostly function words; numbers are always kept

# Headline decisions also weigh a term by its rarity in ordinary language (dedup/background.py),
# as the share of headlines of this many words that would hold it.
HEADLINE_WORDS = 12

# Term vectors are stored with their entries (`encode_vector`), so that a restart reads them
# back instead of deriving them from the text again (about 1 ms per entry: 17 minutes for a
# window of a million). Vectors stored under another recipe are derived again: bump the
# version whenever `event_terms` changes what it returns.
TERM_VECTOR_RECIPE = (
    f"3 terms=xxh64 prefix={PREFIX_LENGTH} title={TITLE_WEIGHT} lead={LEAD_WORDS} "
    f"body={BODY_WORDS}x{BODY_WORD_WEIGHT} names={NAME_BOOST} url={URL_WORD_WEIGHT} "
    f"min={MIN_TERM_LENGTH}"
)

_SENTENCE_BREAK = re.compile(r"[.!?\n]+")
_RAW_WORD = re.compile(r"\w+")
_SLUG_SUFFIX = re.compile(r"\.(?:s?html?|php|aspx?|story|cms)$", re.IGNORECASE)
_SLUG_SEPARATOR = re.compile(r"[-_+]")

TermVector = dict[str, float]
IdArray = npt.NDArray[np.int32]  # term ids
HashArray = npt.NDArray[np.uint64]  # term hashes (`term_hash`)
CountArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def _stems(words: Iterable[str]) -> Counter[str]:
    """Occurrences of the kept words' stems (prefixes), in order of first occurrence."""
    return Counter([w[:PREFIX_LENGTH] for w in words if len(w) >= MIN_TERM_LENGTH or w.isdigit()])


def names_and_numbers(text: str) -> list[str]:
    """Folded words written with a capital or as digits inside a sentence (not its first
    word, which is capitalised anyway): names of people, places, organisations, and numbers."""
    found: list[str] = []
    for sentence in _SENTENCE_BREAK.split(text):
        words = _RAW_WORD.findall(sentence)
        found.extend(w for w in words[1:] if w[:1].isupper() or w.isdigit())
    return tokens(" ".join(found))


def url_words(url: str | None) -> list[str]:
    """Words of a link's path segments that look like slugs (three words or more)."""
    if not url:
        return []
    words: list[str] = []
    for segment in urlsplit(url).path.split("/"):
        parts = _SLUG_SEPARATOR.split(_SLUG_SUFFIX.sub("", segment))
        if len(parts) >= 3:
            words.extend(part for part in parts if part.isalpha())
    return tokens(" ".join(words))


def event_terms(title: str, text: str, url: str | None = None) -> TermVector:
    """The entry's unit-length term vector (sublinear term frequencies)."""
    # One count per stem and part, then weighted: the sums are the same floats as adding
    # the weights word by word (whole multiples of 0.5 are exact), in the same order.
    counts: defaultdict[str, float] = defaultdict(float)
    words = text.split()
    lead = " ".join(words[:LEAD_WORDS])
    parts = [
        (tokens(title), TITLE_WEIGHT),
        (tokens(lead), 1.0),
        (tokens(" ".join(words[LEAD_WORDS:BODY_WORDS])), BODY_WORD_WEIGHT),
        (names_and_numbers(lead), NAME_BOOST),
        (url_words(url), URL_WORD_WEIGHT),
    ]
    for part, weight in parts:
        for stem, occurrences in _stems(part).items():
            counts[stem] += occurrences * weight
    weights = {term: 1.0 + math.log(count) for term, count in counts.items()}
    norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
    return {term: w / norm for term, w in weights.items()}


# A background table: term hashes, ascending, and each term's IDF in ordinary language.
Background = tuple[HashArray, FloatArray]


def term_hash(term: str) -> int:
    """A term's 64-bit hash (xxh64 of its UTF-8): how stored vectors name their terms."""
    return xxh64_intdigest(term.encode())


def term_hashes(terms: Iterable[str], count: int) -> HashArray:
    return np.fromiter(map(term_hash, terms), np.uint64, count)


def hashes_of(vector: TermVector) -> list[int]:
    return [term_hash(term) for term in vector]


def encode_vector(vector: Mapping[str, float]) -> tuple[bytes, bytes]:
    """A term vector as stored: its terms' hashes (`term_hash`) as little-endian uint64 and
    their weights as little-endian float64, in the same order.

    Hashes, not the terms' text, because a restart reads every vector of the window and
    string lookups were over a third of it. Two terms of a window sharing a hash (about
    10^-10 for 100,000 terms) would count as one."""
    hashes = term_hashes(vector, len(vector)).astype("<u8", copy=False)
    weights = np.fromiter(vector.values(), dtype="<f8", count=len(vector))
    return hashes.tobytes(), weights.tobytes()


def decode_vector(terms: bytes, weights: bytes) -> tuple[HashArray, FloatArray]:
    """The term hashes and weights `encode_vector` stored, bit for bit (read-only)."""
    if len(terms) % 8 or len(weights) % 8:
        raise ValueError("a stored term vector is not a whole number of 8-byte values")
    hashes = np.frombuffer(terms, dtype="<u8").astype(np.uint64, copy=False)
    values = np.frombuffer(weights, dtype="<f8").astype(np.float64, copy=False)
    if len(hashes) != len(values):
        raise ValueError(f"a stored term vector has {len(hashes)} terms, {len(values)} weights")
    return hashes, values


def window_vector(stored: WindowEntry) -> tuple[HashArray, FloatArray]:
    """An entry's term vector as term hashes and weights: as stored, else derived from its
    text (entries stored before vectors were, or under another recipe)."""
    if stored.terms is not None and stored.weights is not None:
        return decode_vector(stored.terms, stored.weights)
    vector = event_terms(stored.title, stored.text, stored.url)
    return (
        term_hashes(vector, len(vector)),
        np.fromiter(vector.values(), dtype=np.float64, count=len(vector)),
    )

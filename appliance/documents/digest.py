"""Extractive digests: the sentences that carry a text, chosen without the model.

The model reads a prompt at about 74 tokens a second on two cores, so every character it does not
have to read is time saved before the first screen. Instead of asking the model to summarise each
section of a long document (four 1.5k-token prompts, ~140 s), the plan is made from a digest:
sentences picked from each section by term weight, in their original order. It is deterministic,
takes milliseconds, and every word in it is the document's own (nothing invented to ground on).

Scoring is SumBasic with tf-idf weights: a term weighs more the more often it occurs in its
section and the fewer sections it occurs in; a sentence scores the mean weight of its distinct
terms; once a sentence is picked, its terms' weights drop, so the next pick says something else
(documents repeat themselves page after page). Exact repeats (running headers, footers) count once.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from appliance.documents.service import STOPWORDS

# CJK full stop, exclamation and question marks (U+3002, U+FF01, U+FF1F) need no space after them
_SENTENCE = re.compile(r"(?<=[.!?])\s+|(?<=[\u3002\uff01\uff1f])|\n+")
_TERM = re.compile(r"[^\W\d_]{3,}", re.UNICODE)
PICKED_DECAY = 0.3  # a picked sentence's terms keep this share of their weight
MIN_SENTENCE = 20  # shorter pieces (page numbers, stray labels) are not sentences
MAX_SENTENCE = 400  # longer pieces are cut at a word boundary
MIN_TERMS = 3  # fewer content words: a label or running header ("Electricity - page 32"), not a point


def stem(word: str) -> str:
    """A light stemmer: enough for "ladders"/"ladder" and "inspected"/"inspecting" to meet."""
    for suffix in ("ing", "ed", "es", "s", "ly"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def terms(text: str) -> list[str]:
    return [stem(w) for w in _TERM.findall(text.lower()) if w not in STOPWORDS]


def sentences(text: str) -> list[str]:
    out = []
    for piece in _SENTENCE.split(text):
        piece = piece.strip()
        if len(piece) < MIN_SENTENCE:
            continue
        if len(piece) > MAX_SENTENCE:
            cut = piece.rfind(" ", 0, MAX_SENTENCE)
            piece = piece[: cut if cut > MAX_SENTENCE // 2 else MAX_SENTENCE] + " …"
        out.append(piece)
    return out


@dataclass
class _Sentence:
    position: int
    text: str
    terms: frozenset[str]


def _candidates(text: str, seen: set[str]) -> list[_Sentence]:
    out = []
    for position, sentence in enumerate(sentences(text)):
        key = " ".join(sentence.lower().split())
        if key in seen:  # a running header or footer, or a repeated boilerplate line
            continue
        seen.add(key)
        found = frozenset(terms(sentence))
        if len(found) >= MIN_TERMS:
            out.append(_Sentence(position, sentence, found))
    return out


def _pick(candidates: list[_Sentence], weights: dict[str, float], limit: int) -> str:
    """SumBasic: the best sentence by mean term weight, then decay its terms, until `limit`."""
    weights = dict(weights)
    chosen: list[_Sentence] = []
    left = list(candidates)
    size = 0
    while left:
        best = max(left, key=lambda s: (sum(weights.get(t, 0.0) for t in s.terms) / math.sqrt(len(s.terms)),
                                        -s.position))
        left.remove(best)
        if size + len(best.text) + 1 > limit:
            continue  # a shorter sentence may still fit
        chosen.append(best)
        size += len(best.text) + 1
        for t in best.terms:
            weights[t] = weights.get(t, 0.0) * PICKED_DECAY
    return " ".join(s.text for s in sorted(chosen, key=lambda s: s.position))


@dataclass
class Digest:
    title: str  # the section's heading, or its three heaviest terms
    text: str


def digest_sections(sections: list[tuple[str, str]], limit: int) -> list[Digest]:
    """One digest of at most `limit` characters per (heading, text) section."""
    seen: set[str] = set()
    candidates = [_candidates(text, seen) for _heading, text in sections]
    counts = [Counter(t for s in group for t in s.terms) for group in candidates]
    df = Counter(t for c in counts for t in c)
    n = len(sections)
    out = []
    for (heading, _text), group, tf in zip(sections, candidates, counts, strict=True):
        # 0.5 + idf: a term every section shares still counts (it may be the document's subject)
        weights = {t: (1 + math.log(c)) * (0.5 + math.log((n + 1) / df[t])) for t, c in tf.items()}
        title = heading.strip() or _key_terms(group, weights)
        out.append(Digest(title[:80], _pick(group, weights, limit)))
    return out


def _key_terms(group: list[_Sentence], weights: dict[str, float], count: int = 3) -> str:
    """The heaviest terms, spelled as the document spells them (the first full word per stem)."""
    spelled: dict[str, str] = {}
    for s in group:
        for word in _TERM.findall(s.text):
            spelled.setdefault(stem(word.lower()), word.lower())
    top = sorted(weights, key=lambda t: (-weights[t], t))[:count]
    return ", ".join(spelled.get(t, t) for t in top).capitalize()


def focused(texts: Iterable[str], query: str, limit: int) -> str:
    """The sentences of `texts` that best serve `query` (a screen's title and objective), at most
    `limit` characters, in their original order, so a screen prompt carries what it needs and
    not the opening of every matching chunk."""
    wanted = set(terms(query))
    seen: set[str] = set()
    candidates = [s for text in texts for s in _candidates(text, seen)]
    for index, s in enumerate(candidates):
        s.position = index
    tf = Counter(t for s in candidates for t in s.terms)
    # the query's terms dominate; the rest of the text's own weight breaks ties and adds context
    weights = {t: (3.0 if t in wanted else 0.0) + 0.2 * (1 + math.log(c)) for t, c in tf.items()}
    return _pick(candidates, weights, limit)

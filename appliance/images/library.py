"""The offline illustration library: the outline icons of @tabler/icons (MIT, tabler/LICENSE),
vendored at build time by build/vendor-illustrations.py into tabler/icons.json, indexed here by name
and tags. Ranking is deterministic: the same keywords always pick the same icons."""

from __future__ import annotations

import functools
import json
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

INDEX_FILE = Path(__file__).resolve().parent / "tabler" / "icons.json"
# a keyword that is the icon's whole name, a word of its name, one of its tags, a word of a tag, its category
NAME, NAME_WORD, TAG, TAG_WORD, CATEGORY = 12, 5, 4, 2, 1
STOP_WORDS = frozenset(
    "a an and are as at be by for from how in into is it its of on or the their this to what when where which "
    "who why with your you our we us can will not no yes do does more most about using use introduction "
    "overview basics key points summary step steps part course screen module lesson quiz check".split()
)
WORD = re.compile(r"[a-z0-9]+")
# never an illustration: trademarks, glyphs, bare shapes and signs
SKIPPED_CATEGORIES = frozenset({"Brand", "Letters", "Numbers", "Math", "Shapes", "Text", "Zodiac", "Logic", "Arrows"})
# interface controls and states: a close cross, a log-out arrow, an icon with a badge ("map-pin-pause",
# "navigation-x"); tagged "exit", "cancel" or "remove", they won "escape routes" from the door
CONTROL_STEMS = frozenset({"x", "check", "plus", "minus", "logout", "login", "menu", "dots", "circle", "square",
                           "zoom", "point", "access"})
STATE_SUFFIXES = ("-x", "-plus", "-minus", "-check", "-cancel", "-exclamation", "-question", "-pause", "-play",
                  "-up", "-down", "-left", "-right", "-cog", "-dollar", "-code", "-search", "-share", "-star",
                  "-pin", "-heart", "-bolt", "-edit", "-dot", "-spark", "-shield")
STATE_WEIGHT = 0.4  # what a badge variant keeps of its score: the plain drawing says the thing


@dataclass(frozen=True)
class Icon:
    name: str
    category: str
    tags: tuple[str, ...]
    drawing: str  # the SVG elements of a 24x24, stroke-drawn icon


@dataclass(frozen=True)
class Library:
    version: str
    icons: tuple[Icon, ...]
    # word -> {icon index: best weight of that word for that icon}
    words: dict[str, dict[int, int]]

    def icon(self, name: str) -> Icon | None:
        return next((i for i in self.icons if i.name == name), None)

    def rank(self, keywords: list[str], limit: int = 3) -> list[Icon]:
        """The best icons for the keywords, best first; earlier keywords weigh more. Ties go to the
        icon with the shorter name (a plainer drawing), then by name, so the result is stable. Brand
        logos, glyphs, shapes and interface controls are never chosen, and a badge variant of a drawing
        ("map-pin-pause") only when nothing plainer fits."""
        scores: dict[int, float] = defaultdict(float)
        for position, keyword in enumerate(keywords[:8]):
            weight = 1.0 / (1 + 0.25 * position)
            terms = terms_of(keyword)
            if not terms:
                continue
            phrase = "-".join(terms)
            for index in self.words.get("=" + phrase, {}):
                scores[index] += NAME * weight
            for term in terms:
                for index, value in self.words.get(term, {}).items():
                    scores[index] += value * weight / len(terms)
        for index in scores:
            if self.icons[index].name.endswith(STATE_SUFFIXES):
                scores[index] *= STATE_WEIGHT
        ranked = sorted(scores, key=lambda i: (-scores[i], len(self.icons[i].name), self.icons[i].name))
        chosen: list[Icon] = []
        for index in ranked:
            icon = self.icons[index]
            # variants of one drawing (lock, lock-x, lock-up) make a poor group: one of each stem
            if (icon.name.startswith("brand-") or icon.category in SKIPPED_CATEGORIES or stem(icon) in CONTROL_STEMS
                    or any(stem(icon) == stem(c) for c in chosen)):
                continue
            chosen.append(icon)
            if len(chosen) == limit:
                break
        return chosen


def stem(icon: Icon) -> str:
    return icon.name.split("-")[0]


def singular(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def terms_of(text: str) -> list[str]:
    """The index words of a keyword or title: lower case, singular, no stop words."""
    return [singular(w) for w in WORD.findall(text.lower()) if w not in STOP_WORDS and len(w) > 1]


@functools.cache
def load(path: Path = INDEX_FILE) -> Library:
    document = json.loads(path.read_text(encoding="utf-8"))
    icons = tuple(Icon(name, category, tuple(tags.split()), drawing)
                  for name, category, tags, drawing in document["icons"])
    words: dict[str, dict[int, int]] = defaultdict(dict)

    def add(word: str, index: int, weight: int) -> None:
        if weight > words[word].get(index, 0):
            words[word][index] = weight

    for index, icon in enumerate(icons):
        add("=" + icon.name, index, NAME)
        for word in icon.name.split("-"):
            add(singular(word), index, NAME_WORD)
        for tag in icon.tags:
            parts = [singular(w) for w in WORD.findall(tag)]
            if len(parts) == 1:
                add(parts[0], index, TAG)
            for part in parts:
                add(part, index, TAG_WORD)
        for word in WORD.findall(icon.category.lower()):
            add(singular(word), index, CATEGORY)
    return Library(str(document["version"]), icons, dict(words))

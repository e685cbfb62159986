"""One validator and one sanitiser for course content, used by every writer of content: the
builder, the AI (its output is validated exactly like a human edit) and imports.

Text fields are plain text; the only HTML is a text screen's `html`, which is reduced to a small
allow-list of tags with no attributes except a safe `href`.
"""

from __future__ import annotations

import html
from html.parser import HTMLParser
from typing import Annotated, Any

import msgspec

from appliance.errors import Invalid

Short = Annotated[str, msgspec.Meta(max_length=300)]
Long = Annotated[str, msgspec.Meta(max_length=5000)]
ALLOWED_TAGS = {"p", "br", "strong", "b", "em", "i", "u", "ul", "ol", "li", "h2", "h3", "h4", "blockquote", "a"}
VOID_TAGS = {"br"}
MAX_SCREENS = 200


class Item(msgspec.Struct):
    title: Short
    description: Long = ""


class Step(msgspec.Struct):
    title: Short
    description: Long = ""


class Card(msgspec.Struct):
    front: Short
    back: Long


class Answer(msgspec.Struct):
    id: int
    text: Short
    correct: bool = False


class Feedback(msgspec.Struct):
    correct: Long = ""
    incorrect: Long = ""


class Question(msgspec.Struct):
    id: int
    question: Long
    answers: Annotated[list[Answer], msgspec.Meta(min_length=2, max_length=8)]
    feedback: Feedback = msgspec.field(default_factory=Feedback)


CONTENT_TYPES: dict[str, type[msgspec.Struct]] = {}


class TextContent(msgspec.Struct):
    html: Annotated[str, msgspec.Meta(max_length=20000)] = ""


class ProcessContent(msgspec.Struct):
    steps: Annotated[list[Step], msgspec.Meta(max_length=20)] = msgspec.field(default_factory=list)


class ItemsContent(msgspec.Struct):
    items: Annotated[list[Item], msgspec.Meta(max_length=30)] = msgspec.field(default_factory=list)


class FlashcardsContent(msgspec.Struct):
    cards: Annotated[list[Card], msgspec.Meta(max_length=30)] = msgspec.field(default_factory=list)


class QuizContent(msgspec.Struct):
    questions: Annotated[list[Question], msgspec.Meta(max_length=30)] = msgspec.field(default_factory=list)


class MediaContent(msgspec.Struct):
    url: Annotated[str, msgspec.Meta(max_length=2000)] = ""
    alt: Short = ""
    caption: Short = ""


class Narration(msgspec.Struct, forbid_unknown_fields=True):
    """A screen's narration clip (appliance.ai.narration): an object in the encrypted store."""

    id: Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{32}$")]
    duration: Annotated[float, msgspec.Meta(ge=0, le=36000)]
    voice: Short = ""
    hash: Annotated[str, msgspec.Meta(max_length=64)] = ""
    chars: Annotated[int, msgspec.Meta(ge=0)] = 0


CONTENT_TYPES.update(
    text=TextContent, process=ProcessContent, checklist=ItemsContent, list=ItemsContent,
    flashcards=FlashcardsContent, quiz=QuizContent, media=MediaContent,
)


class _Sanitiser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            return
        if tag == "a":
            href = next((v for k, v in attrs if k == "href" and v), "")
            if not href.lower().startswith(("https://", "http://", "mailto:")):
                return
            self.out.append(f'<a href="{html.escape(href, quote=True)}" rel="noopener noreferrer" target="_blank">')
        else:
            self.out.append(f"<{tag}>")
        if tag not in VOID_TAGS:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.open:
            while self.open:
                last = self.open.pop()
                self.out.append(f"</{last}>")
                if last == tag:
                    break

    def handle_data(self, data: str) -> None:
        self.out.append(html.escape(data, quote=False))


def sanitise_html(markup: str) -> str:
    """Keep a small allow-list of formatting tags; drop scripts, styles, attributes and handlers."""
    parser = _Sanitiser()
    # the contents of these never reach the output, not even as text
    for dangerous in ("script", "style", "iframe", "object", "template"):
        markup = _strip_element(markup, dangerous)
    parser.feed(markup)
    parser.close()
    parser.out.extend(f"</{tag}>" for tag in reversed(parser.open))
    return "".join(parser.out)


def _strip_element(markup: str, tag: str) -> str:
    lower = markup.lower()
    while True:
        start = lower.find(f"<{tag}")
        if start < 0:
            return markup
        end = lower.find(f"</{tag}", start)
        close = lower.find(">", end) if end >= 0 else -1
        stop = close + 1 if close >= 0 else len(markup)
        markup, lower = markup[:start] + markup[stop:], lower[:start] + lower[stop:]


def paragraphs_to_html(paragraphs: list[str]) -> str:
    return "".join(f"<p>{html.escape(p.strip(), quote=False)}</p>" for p in paragraphs if p.strip())


def validate_screen(screen: Any) -> dict[str, Any]:
    if not isinstance(screen, dict):
        raise Invalid("a screen must be an object")
    kind = screen.get("type")
    if kind not in CONTENT_TYPES:
        raise Invalid(f"screen type must be one of {', '.join(CONTENT_TYPES)}")
    try:
        content = msgspec.convert(screen.get("content", {}), CONTENT_TYPES[kind])
    except msgspec.ValidationError as exc:
        raise Invalid(f"screen {screen.get('title', '')!r}: {exc}") from None
    clean = msgspec.to_builtins(content)
    # the alt text of the screen's image (its `asset`), any screen type (docs/embeds.md, docs/images.md)
    asset_alt = (screen.get("content") or {}).get("asset_alt") if isinstance(screen.get("content"), dict) else None
    if asset_alt is not None:
        if not isinstance(asset_alt, str) or len(asset_alt) > 300:
            raise Invalid("asset_alt is text of at most 300 characters")
        clean["asset_alt"] = asset_alt
    if kind == "text":
        clean["html"] = sanitise_html(clean["html"])
    if kind == "quiz":
        for q in clean["questions"]:
            if not any(a["correct"] for a in q["answers"]):
                raise Invalid(f"quiz question {q['question'][:40]!r} has no correct answer")
    title = screen.get("title", "")
    if not isinstance(title, str) or len(title) > 300:
        raise Invalid("a screen title is text of at most 300 characters")
    result = {"id": screen.get("id"), "type": kind, "title": title, "content": clean}
    for optional in ("description", "objective", "scored", "passing_grade", "asset", "object", "unsupported"):
        if optional in screen:
            result[optional] = screen[optional]
    if screen.get("narration") is not None:
        try:
            result["narration"] = msgspec.to_builtins(msgspec.convert(screen["narration"], Narration))
        except msgspec.ValidationError as exc:
            raise Invalid(f"screen {title!r} narration: {exc}") from None
    if kind == "quiz":
        result["scored"] = bool(screen.get("scored", True))
        grade = screen.get("passing_grade", 50)
        if not isinstance(grade, int | float) or not 0 <= grade <= 100:
            raise Invalid("passing_grade is a number from 0 to 100")
        result["passing_grade"] = grade
    return result


def validate_content(content: Any) -> dict[str, Any]:
    """Check a whole draft (`{start, finish, screens}`) and give every screen a unique id."""
    if not isinstance(content, dict) or not isinstance(content.get("screens", []), list):
        raise Invalid("content must be an object with a screens list")
    screens = [validate_screen(s) for s in content.get("screens", [])]
    if len(screens) > MAX_SCREENS:
        raise Invalid(f"a course has at most {MAX_SCREENS} screens")
    used: set[int] = set()
    for screen in screens:
        if not isinstance(screen["id"], int) or screen["id"] in used:
            screen["id"] = max(used, default=0) + 1
        used.add(screen["id"])
    return {**content, "screens": screens}

"""Deterministic repairs of model text before the quality gate reads it (docs/ai.md "Course generation").

Written apart, the screens and questions of one course say one fact in the same words (a definition
in every feedback, a rule in two screens). Writing such a screen again costs a whole request and
tends to repeat the same way; dropping the repeated sentence costs nothing. So a sentence said
before is dropped wherever its field still says something else; a field that would be left empty is
kept as it is, and the gate (appliance.ai.quality, rule ``repeated_sentence``) decides about it.
Sentences are compared as the gate compares them (:func:`appliance.ai.quality.sentences`).
"""

from __future__ import annotations

import html
import re
from typing import Any

from appliance.ai.quality import sentences

_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+")
# a tag in model text (its JSON strings are plain text: the player would show the tag literally): a
# line break a model copied from HTML, the prompt's <source> fence, a stray </p>; the gate's
# leaked_markup rule (appliance.ai.quality) would otherwise have the whole screen written again
_TAG = re.compile(r"</?\s*[a-z][\w:-]*(?:\s[^<>]{0,200})?/?>", re.IGNORECASE)
_PARAGRAPHS = re.compile(r"(?:<p>[^<]*</p>)+")
_PARAGRAPH = re.compile(r"<p>([^<]*)</p>")
# the plain-text fields a sentence may be dropped from, by screen type (titles never)
_FIELDS = {"list": ("items", "description"), "process": ("steps", "description"), "flashcards": ("cards", "back")}
MIN_LINES = 2  # a checklist keeps at least this many of its one-line items when repeated ones are dropped


def strip_tags(value: Any) -> Any:
    """``value`` (model JSON) with every tag removed from its strings, spaces tidied; numbers,
    booleans and keys are left alone."""
    if isinstance(value, str):
        return " ".join(_TAG.sub(" ", value).split()) if "<" in value else value
    if isinstance(value, list):
        return [strip_tags(item) for item in value]
    if isinstance(value, dict):
        return {key: strip_tags(item) for key, item in value.items()}
    return value


def drop_said(text: str, said: set[str], *, unescape: bool = False) -> str:
    """``text`` without its sentences in ``said``, unless nothing would be left; ``said`` gains the
    sentences of what is kept. ``unescape``: ``text`` is escaped HTML text (compare what is shown)."""
    parts = _SENTENCE_SPLIT.split(text.strip())
    kept = [p for p in parts if not set(sentences(html.unescape(p) if unescape else p)) & said]
    result = " ".join(kept) if kept and len(kept) < len(parts) else text
    said.update(sentences(html.unescape(result) if unescape else result))
    return result


def drop_repeated_sentences(screen: dict[str, Any], said: set[str]) -> dict[str, Any]:
    """A copy of ``screen`` without the sentences already in ``said`` (the finished screens') or
    said earlier in the screen, where their field says more."""
    said = set(said)
    content = dict(screen.get("content") or {})
    kind = screen.get("type")
    if kind == "text" and _PARAGRAPHS.fullmatch(str(content.get("html", ""))):
        content["html"] = _PARAGRAPH.sub(lambda m: f"<p>{drop_said(m.group(1), said, unescape=True)}</p>", content["html"])
    elif kind in _FIELDS:
        key, field = _FIELDS[kind]
        content[key] = [{**item, field: drop_said(str(item.get(field, "")), said)} if item.get(field) else item
                        for item in content.get(key) or []]
    elif kind == "checklist":  # a line is all its item says: a repeated line goes while enough remain
        items = list(content.get("items") or [])
        kept: list[Any] = []
        for at, item in enumerate(items):
            line = set(sentences(str(item.get("title", ""))))
            if line and line <= said and len(kept) + len(items) - at > MIN_LINES:
                continue
            said.update(line)
            kept.append(item)
        content["items"] = kept
    else:
        return screen
    return {**screen, "content": content}


def drop_repeated_feedback(questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Model questions (``question``, ``feedback_correct``, ``feedback_incorrect``) with every
    feedback sentence already said in the quiz (by a question or an earlier feedback) left out,
    unless it is all the feedback says."""
    said: set[str] = set()
    out = []
    for q in questions:
        said.update(sentences(q["question"]))
        q = dict(q)
        for key in ("feedback_correct", "feedback_incorrect"):
            q[key] = drop_said(q[key], said)
        out.append(q)
    return out

"""Deterministic repairs of model text before the quality gate reads it (docs/ai.md "Course generation").

Written apart, the screens and questions of one course say one fact in the same words (a definition
in every feedback, a rule in two screens). Writing such a screen again costs a whole request and
tends to repeat the same way; dropping the repeated sentence costs nothing. So a sentence said
before is dropped wherever its field still says something else; a field that would be left empty is
kept as it is, and the gate (appliance.ai.quality, rule ``repeated_sentence``) decides about it.
Sentences are compared as the gate compares them (:func:`appliance.ai.quality.sentences`).

The grammar holds every string to a length (appliance.ai.generation); a model that runs on is cut
there, mid-sentence or mid-word ("... credit card", a paragraph ending "to ext" and the next one
starting "end the victim's"). Writing the screen again costs a request and runs on the same way;
cutting the text back to its last whole sentence costs nothing. A text with no whole sentence is
left as it is for the gate (rule ``unfinished_text``).
"""

from __future__ import annotations

import html
import re
from typing import Any

from appliance.ai.quality import SENTENCE_END, ends_a_sentence, ends_on_a_dangling_word, sentences

_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+")
# a tag in model text (its JSON strings are plain text: the player would show the tag literally): a
# line break a model copied from HTML, the prompt's <source> fence, a stray </p>; the gate's
# leaked_markup rule (appliance.ai.quality) would otherwise have the whole screen written again
_TAG = re.compile(r"</?\s*[a-z][\w:-]*(?:\s[^<>]{0,200})?/?>", re.IGNORECASE)
_PARAGRAPHS = re.compile(r"(?:<p>[^<]*</p>)+")
_PARAGRAPH = re.compile(r"<p>([^<]*)</p>")
# the plain-text fields a sentence may be dropped from, by screen type (titles never)
_FIELDS = {"list": ("items", "description"), "process": ("steps", "description"), "flashcards": ("cards", "back")}
# a sentence end followed by more text (not an abbreviation's dot): where a cut text can be cut back to
_WHOLE_SENTENCE_END = re.compile(r"(?<!\be\.g)(?<!\bi\.e)(?<!\bvs)(?<!\bMr)(?<!\bMrs)(?<!\bDr)" + SENTENCE_END + r"(?=\s)")
# a last word after which a sentence rarely ends: such a text was cut, not ended without its full stop
_NEEDS_MORE = re.compile(r"\b(?:to|of|in|on|for|with|by|from|at|as|into|about|can|will|may|must|should|could|"
                         r"would|is|are|was|were|be|been|has|have|had|not|very|more|most|this|these|those|"
                         r"you|we|they|it|he|she|i|and|or|but|a|an|the)$", re.IGNORECASE)
MIN_LINES = 2  # a checklist keeps at least this many of its one-line items when repeated ones are dropped
# answers the model lettered or numbered itself ("A. A type of ...", "b) ..."): the player shows its own
_ANSWER_LABEL = re.compile(r"^\s*(?:[A-Da-d]|[1-4])[.)]\s+")
# the tail of an answer its length cap cut: marks and words that need more after them
_CUT_TAIL = re.compile(r"(?:\s*[,;:(\-\u2013]|\s+(?:to|of|in|on|for|with|by|from|at|as|into|about|than|and|or|but|"
                       r"a|an|the|that|which|who|your|their|its))+$", re.IGNORECASE)
NEAR_CAP = 12  # an answer within this many characters of its cap ran into it (a chosen end lies well before)


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


def cut_to_sentence(text: str, cap: int | None = None) -> str:
    """``text`` ending as a sentence: cut back to its last whole sentence when it stops
    mid-sentence. With ``cap`` (the grammar's length bound for the field), a text shorter than the
    cap was ended by the model, not cut: if it only lacks its full stop, it gets one. A text that
    ends as a sentence, or holds no whole sentence, comes back as it is."""
    stripped = text.strip()
    if not stripped or ends_a_sentence(stripped):
        return text
    if (cap is not None and len(text) < cap and text == text.rstrip() and stripped[-1].isalnum()
            and not _NEEDS_MORE.search(stripped) and not ends_on_a_dangling_word(stripped)):
        return stripped + "."
    ends = list(_WHOLE_SENTENCE_END.finditer(stripped))
    return stripped[:ends[-1].end()] if ends else text


def trim_dangling(text: str) -> str:
    """A heading or answer a length cap cut after a word that needs another ("Signs of phishing in
    emails and"): without those words, if something is left."""
    trimmed = text.strip()
    while ends_on_a_dangling_word(trimmed):
        trimmed = trimmed.rsplit(" ", 1)[0].rstrip(" ,;:-")
    return trimmed or text


def finish_answers(answers: list[str], cap: int | None = None) -> list[str]:
    """A question's answers without labels the model added itself (when every answer has one), and
    an answer the length cap cut ("... that lead to", "... into divulge,") without the marks and
    words at its end that need more. Only an answer that reached to within NEAR_CAP characters of
    ``cap`` is treated as cut; without ``cap``, trim_dangling alone."""
    labels = [_ANSWER_LABEL.match(answer) for answer in answers]
    if len(answers) > 1 and all(labels):
        answers = [answer[label.end():] for answer, label in zip(answers, labels, strict=True) if label]
    out = []
    for answer in answers:
        if cap is not None and len(answer) >= cap - NEAR_CAP:
            answer = _CUT_TAIL.sub("", answer.rstrip()) or answer
        out.append(trim_dangling(answer))
    return out


def finish_paragraphs(paragraphs: list[str], cap: int | None = None) -> list[str]:
    """Paragraphs cut back to whole sentences (``cap``: see cut_to_sentence); a paragraph that
    starts as the tail of a sentence (lower case: the cap split the sentence, or a word, across two
    paragraphs) loses that tail, and is dropped if nothing is left. If that would leave nothing,
    the paragraphs come back as they were."""
    out = []
    for at, paragraph in enumerate(paragraphs):
        if paragraph.strip()[:1].islower():
            first_end = _WHOLE_SENTENCE_END.search(paragraph.strip())
            paragraph = paragraph.strip()[first_end.end():] if first_end else ""
        continued = at + 1 < len(paragraphs) and paragraphs[at + 1].strip()[:1].islower()  # so it was cut
        paragraph = cut_to_sentence(paragraph, None if continued else cap).strip()
        if paragraph:
            out.append(paragraph)
    return out or paragraphs


def finish_cut_texts(kind: str, raw: dict[str, Any], caps: dict[str, int] | None = None) -> dict[str, Any]:
    """Model JSON of a screen of ``kind`` with every sentence field ending as a sentence
    (paragraphs; list, process and card texts; quiz feedback: cut_to_sentence, with the field's
    length bound from ``caps`` by JSON key), item titles and card fronts without a dangling last
    word (trim_dangling), and quiz answers as finish_answers leaves them."""
    caps = caps or {}
    raw = dict(raw)
    if kind == "text" and isinstance(raw.get("paragraphs"), list):
        raw["paragraphs"] = finish_paragraphs([str(p) for p in raw["paragraphs"]], caps.get("paragraphs"))
    elif kind in _FIELDS:
        key, field = _FIELDS[kind]
        heading = "front" if kind == "flashcards" else "title"
        raw[key] = [{**item, field: cut_to_sentence(str(item[field]), caps.get(field)),
                     heading: trim_dangling(str(item[heading]))}
                    if isinstance(item, dict) and field in item and heading in item else item
                    for item in raw.get(key) or []]
    elif kind == "checklist":
        raw["items"] = [{**item, "title": trim_dangling(str(item["title"]))} if isinstance(item, dict) and "title" in item
                        else item for item in raw.get("items") or []]
    elif kind == "quiz":
        raw["questions"] = [
            {**q, "answers": finish_answers([str(a) for a in q.get("answers") or []], caps.get("answers")),
             **{k: cut_to_sentence(str(q[k]), caps.get(k)) for k in ("feedback_correct", "feedback_incorrect") if k in q}}
            for q in raw.get("questions") or []]
    return raw

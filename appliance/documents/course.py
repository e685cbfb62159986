"""Courses from documents: section summaries (map-reduce), the plan, grounded screens, support checks.

Only extracted text reaches the model, always fenced in `<source>` as data (generation.SYSTEM tells
the model to ignore instructions found there, and a document cannot close the fence early). The
budget of every call comes from the engine's context size, so the small test model (n_ctx 2048)
and the default model both see whole prompts.

- Short documents go to the planner as they are.
- Long ones (`summary_min_pages` pages or more, or more text than one prompt holds) are cut into at
  most `max_summary_sections` consecutive sections covering every chunk; each is summarised by
  the model (map), the summaries are combined until they fit (reduce) and the course is planned
  from them. Section summaries are kept in `document_sections` and reused.
- Each screen is written from the chunks that best match its title and objective (FTS5 bm25), then
  checked against the document: the share of its content words found in the best-matching chunks.
  Below `support_threshold` the screen gets `"unsupported": true` for the author to review.
- Presentations: one screen per slide group (a section-header slide, or at most three slides).
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from appliance.ai.engine import CancelToken, Engine, Message
from appliance.ai.errors import Cancelled
from appliance.ai.generation import MAX_SCREENS, SYSTEM, generate_screen, outline_schema
from appliance.courses.model import empty_content
from appliance.courses.validate import validate_content
from appliance.documents import service
from appliance.security.audit import now_iso
from appliance.storage.database import fetch_all

Progress = Callable[[float, str, dict[str, Any] | None], None]
CHARS_PER_TOKEN = 3  # conservative: budgets must hold for any tokenizer and any language
PROMPT_OVERHEAD = 350  # system prompt, task text and chat template, in tokens
SUMMARY_TOKENS = 200
SCREEN_TOKENS = 700

_FENCE = re.compile(r"<\s*/?\s*source", re.IGNORECASE)
_TAGS = re.compile(r"<[^>]+>")
_WORD = re.compile(r"[^\W\d_]{4,}", re.UNICODE)


def fence_safe(text: str) -> str:
    """Document text as data: it cannot open or close the `<source>` fence."""
    return _FENCE.sub("[source", text)


def budget(engine: Engine, reserve_tokens: int) -> int:
    """How many characters of source fit in one prompt next to `reserve_tokens` of output."""
    n_ctx = int(getattr(engine, "n_ctx", 0) or 0) or 4096
    return max(600, min(6000, (n_ctx - reserve_tokens - PROMPT_OVERHEAD) * CHARS_PER_TOKEN))


def _check(cancel: CancelToken | None) -> None:
    if cancel is not None and cancel.cancelled:
        raise Cancelled("cancelled")


def _messages(task: str, source: str) -> list[Message]:
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"{task}\n<source>\n{fence_safe(source)}\n</source>"},
    ]


def _schema_text(max_length: int, min_length: int = 1) -> dict[str, Any]:
    return {"type": "string", "minLength": min_length, "maxLength": max_length}


SUMMARY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"title": _schema_text(80, 3), "summary": _schema_text(300, 20)},
    "required": ["title", "summary"],
    "additionalProperties": False,
}


def condense(texts: list[str], limit: int) -> str:
    """Fit several chunks into `limit` characters, giving each an equal share (its opening)."""
    joined = "\n\n".join(texts)
    if len(joined) <= limit:
        return joined
    share = max(80, limit // max(1, len(texts)) - 2)
    parts = []
    for text in texts:
        if len(text) <= share:
            parts.append(text)
            continue
        cut = text[:share]
        stop = max(cut.rfind(". "), cut.rfind("\n"))
        parts.append(cut[: stop + 1] if stop > share // 2 else cut)
    return "\n\n".join(parts)[:limit]


@dataclass
class Section:
    seq: int
    page_start: int
    page_end: int
    chunk_start: int
    chunk_end: int
    title: str
    summary: str


def plan_sections(chunks: list[dict[str, Any]], per_section: int, max_sections: int) -> list[list[dict[str, Any]]]:
    """Consecutive groups of chunks, every chunk in exactly one, at most `max_sections` groups,
    each about `per_section` characters (more when the cap forces it)."""
    total = sum(len(c["text"]) for c in chunks)
    count = max(1, min(max_sections, len(chunks), math.ceil(total / max(1, per_section))))
    target = total / count
    groups: list[list[dict[str, Any]]] = [[]]
    size = 0
    for index, chunk in enumerate(chunks):
        remaining_chunks = len(chunks) - index
        remaining_groups = count - len(groups)
        if groups[-1] and (size + len(chunk["text"]) / 2 > target or remaining_chunks <= remaining_groups) and (
            remaining_groups > 0
        ):
            groups.append([])
            size = 0
        groups[-1].append(chunk)
        size += len(chunk["text"])
    return groups


def summarise_sections(
    engine: Engine,
    db: Any,
    document: dict[str, Any],
    *,
    max_sections: int,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> list[Section]:
    """The map step: one model summary per section of the whole document (cached per document)."""
    document_id = int(document["id"])
    model = str(getattr(engine, "name", ""))
    cached = fetch_all(
        db.read(), "SELECT * FROM document_sections WHERE document_id = ? ORDER BY seq", [document_id]
    )
    if cached:
        return [
            Section(r["seq"], r["page_start"], r["page_end"], r["chunk_start"], r["chunk_end"], r["title"],
                    r["summary"])
            for r in cached
        ]
    chunks = service.chunks(db.read(), document_id)
    limit = budget(engine, SUMMARY_TOKENS)
    groups = plan_sections(chunks, limit, max_sections)
    sections: list[Section] = []
    for index, group in enumerate(groups):
        _check(cancel)
        first, last = group[0], group[-1]
        source = condense([f"{c['heading']}\n{c['text']}".strip() for c in group], limit)
        task = (
            f"Summarise part {index + 1} of {len(groups)} (pages {first['page_start']}-{last['page_end']}) "
            f"of the document \"{document['title'] or document['filename']}\": give the part a short "
            "title and a summary of its key points in two to four sentences."
        )
        raw = engine.generate_json(_messages(task, source), SUMMARY_SCHEMA, max_tokens=SUMMARY_TOKENS,
                                   cancel=cancel)
        sections.append(Section(index, first["page_start"], last["page_end"], first["seq"], last["seq"],
                                str(raw["title"]).strip(), str(raw["summary"]).strip()))
        if progress is not None:
            progress(0.5 * (index + 1) / len(groups), f"summarised section {index + 1} of {len(groups)}",
                     {"section": index + 1, "sections": len(groups),
                      "pages": [first["page_start"], last["page_end"]]})

    def save(w: sqlite_utils.Database) -> None:
        w.execute("DELETE FROM document_sections WHERE document_id = ?", [document_id])
        for s in sections:
            w.execute(
                "INSERT INTO document_sections (document_id, seq, page_start, page_end, chunk_start, chunk_end, "
                "title, summary, model, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [document_id, s.seq, s.page_start, s.page_end, s.chunk_start, s.chunk_end, s.title, s.summary,
                 model, now_iso()],
            )

    db.write(save)
    return sections


def _section_line(s: Section) -> str:
    return f"[pages {s.page_start}-{s.page_end}] {s.title}: {s.summary}"


def reduce_summaries(engine: Engine, sections: list[Section], limit: int, cancel: CancelToken | None) -> str:
    """The reduce step: combine section summaries (with the model) until they fit `limit`."""
    lines = [_section_line(s) for s in sections]
    per_call = budget(engine, SUMMARY_TOKENS)
    for _round in range(4):
        joined = "\n".join(lines)
        if len(joined) <= limit:
            return joined
        batches: list[list[str]] = [[]]
        for line in lines:
            if batches[-1] and sum(len(x) + 1 for x in batches[-1]) + len(line) > per_call:
                batches.append([])
            batches[-1].append(line)
        if len(batches) == len(lines):  # each alone fills a prompt: no progress is possible by merging
            break
        merged = []
        for batch in batches:
            _check(cancel)
            pages = re.findall(r"\[pages (\d+)-(\d+)\]", " ".join(batch))
            span = f"[pages {pages[0][0]}-{pages[-1][1]}] " if pages else ""
            raw = engine.generate_json(
                _messages("Combine these summaries of consecutive parts of a document into one short "
                          "title and summary that keeps every key point.", "\n".join(batch)),
                SUMMARY_SCHEMA, max_tokens=SUMMARY_TOKENS, cancel=cancel,
            )
            merged.append(f"{span}{raw['title']}: {raw['summary']}")
        lines = merged
    return condense(lines, limit)


# -- support checks -------------------------------------------------------------------------------
def screen_text(screen: dict[str, Any]) -> str:
    parts: list[str] = [str(screen.get("title", ""))]

    def walk(node: Any) -> None:
        if isinstance(node, str):
            parts.append(html.unescape(_TAGS.sub(" ", node)))
        elif isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            for key, value in node.items():
                if key not in ("id", "correct", "url"):
                    walk(value)

    walk(screen.get("content", {}))
    return " ".join(parts)


def _terms(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in service.STOPWORDS}


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s", "ly"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def support_score(db: sqlite_utils.Database, document_id: int, screen: dict[str, Any]) -> float:
    """Share of the screen's content words that occur in the document's best-matching chunks."""
    text = screen_text(screen)
    terms = {_stem(t) for t in _terms(text)}
    if not terms:
        return 0.0
    hits = service.search_db(db, document_id, text, limit=5)
    found: set[str] = set()
    for hit in hits:
        found |= {_stem(t) for t in _terms(f"{hit['heading']} {hit['text']}")}
    return len(terms & found) / len(terms)


def flag_unsupported(
    db: sqlite_utils.Database, document_id: int, screens: list[dict[str, Any]], threshold: float
) -> list[int]:
    flagged = []
    for screen in screens:
        if support_score(db, document_id, screen) < threshold:
            screen["unsupported"] = True
            flagged.append(int(screen["id"]))
        else:
            screen.pop("unsupported", None)
    return flagged


# -- the courses ----------------------------------------------------------------------------------
@dataclass
class Request:
    document_id: int
    prompt: str = ""
    audience: str = "employees"
    familiarity: str = "beginner"
    tone: str = "professional"
    screen_count: int | None = None

    @classmethod
    def from_params(cls, p: dict[str, Any]) -> Request:
        count = p.get("screenCount")
        return cls(
            document_id=int(p["documentId"]),
            prompt=str(p.get("prompt") or ""),
            audience=str(p.get("audience") or "employees"),
            familiarity=str(p.get("familiarity") or "beginner"),
            tone=str(p.get("tone") or "professional"),
            screen_count=max(1, min(MAX_SCREENS, int(count))) if count else None,
        )


def _topic(req: Request, document: dict[str, Any]) -> str:
    name = document["title"] or document["filename"]
    return req.prompt or f"the document \"{name}\""


def _outline(engine: Engine, req: Request, document: dict[str, Any], count: int, source: str,
             cancel: CancelToken | None, extra: str = "") -> dict[str, Any]:
    task = (
        f"Plan a {count}-screen course that teaches the content of the document in <source>. "
        f"Request: {_topic(req, document)}. Audience: {req.audience}. Their familiarity: {req.familiarity}. "
        f"Tone: {req.tone}. Start from 1 to 3 learning objectives; give every screen the number of the "
        f"objective it serves. Cover the whole document in its order.{extra}"
    )
    outline: dict[str, Any] = engine.generate_json(
        _messages(task, source), outline_schema(count), max_tokens=200 + 60 * count, cancel=cancel
    )
    return outline


def document_course(
    engine: Engine,
    db: Any,
    document: dict[str, Any],
    req: Request,
    settings: Any,
    progress: Progress,
    cancel: CancelToken | None = None,
) -> tuple[str, str, dict[str, Any], list[int], int]:
    """(title, description, content, unsupported screen ids, number of section summaries)."""
    document_id = int(document["id"])
    count = req.screen_count or 5
    chunks = service.chunks(db.read(), document_id)
    full = "\n\n".join(f"{c['heading']}\n{c['text']}".strip() for c in chunks)
    plan_budget = budget(engine, 200 + 60 * count)
    sections: list[Section] = []
    if document["pages"] >= settings.summary_min_pages or len(full) > plan_budget:
        sections = summarise_sections(engine, db, document, max_sections=settings.max_summary_sections,
                                      progress=progress, cancel=cancel)
        plan_source = reduce_summaries(engine, sections, plan_budget, cancel)
    else:
        plan_source = full
    _check(cancel)
    outline = _outline(engine, req, document, count, plan_source, cancel)
    objectives: list[str] = outline["objectives"]
    base = 0.55 if sections else 0.1
    progress(base, "outline", {"title": outline["title"], "objectives": objectives,
                               "sections": [_section_line(s) for s in sections]})
    screen_budget = budget(engine, SCREEN_TOKENS)
    context = f"{outline['title']}: {_topic(req, document)} (audience: {req.audience}, tone: {req.tone})"
    content = empty_content()
    reader = db.read()
    for index, planned in enumerate(outline["screens"]):
        _check(cancel)
        objective = objectives[min(int(planned["objective"]), len(objectives)) - 1]
        hits = service.search_db(reader, document_id, f"{planned['title']} {objective}", limit=4)
        if not hits:  # nothing matches its words: the part of the document at this point of the plan
            lo = index * len(chunks) // count
            hi = max(lo + 1, (index + 1) * len(chunks) // count)
            hits = chunks[lo:hi]
        source = condense([f"{h['heading']}\n{h['text']}".strip() for h in hits], screen_budget)
        screen = generate_screen(engine, planned["type"], planned["title"],
                                 f"{context}. This screen serves the objective: {objective}",
                                 source=fence_safe(source), cancel=cancel)
        screen["id"] = index + 1
        screen["objective"] = objective
        if support_score(reader, document_id, screen) < settings.support_threshold:
            screen["unsupported"] = True
        content["screens"].append(screen)
        progress(base + (1 - base) * (index + 1) / (count + 1), f"screen {index + 1} of {count}",
                 {"screen": screen, "index": index})
    content["objectives"] = objectives
    content["source"] = {"documentId": document_id}
    clean = validate_content(content)
    unsupported = [int(s["id"]) for s in clean["screens"] if s.get("unsupported")]
    return outline["title"], outline["description"], clean, unsupported, len(sections)


def slide_groups(slides: list[dict[str, Any]], screen_count: int | None) -> list[list[dict[str, Any]]]:
    """Consecutive slide groups: `screen_count` balanced groups when asked; otherwise a new group at
    each section-header slide (title, little text) or after three slides. At most 25 groups."""
    if not slides:
        return []
    if screen_count:
        count = min(screen_count, len(slides))
        return [slides[i * len(slides) // count:(i + 1) * len(slides) // count] for i in range(count)]
    groups: list[list[dict[str, Any]]] = []
    for slide in slides:
        header = len(slide["text"]) - len(slide["heading"]) < 40
        if not groups or len(groups[-1]) >= 3 or (header and groups[-1]):
            groups.append([])
        groups[-1].append(slide)
    if len(groups) > MAX_SCREENS:
        return slide_groups(slides, MAX_SCREENS)
    return groups


def presentation_course(
    engine: Engine,
    db: Any,
    document: dict[str, Any],
    req: Request,
    settings: Any,
    progress: Progress,
    cancel: CancelToken | None = None,
) -> tuple[str, str, dict[str, Any], list[int], int]:
    document_id = int(document["id"])
    slides = service.chunks(db.read(), document_id)  # one chunk per slide for presentations
    groups = slide_groups(slides, req.screen_count)
    count = len(groups)
    titles = [g[0]["heading"] or f"Slides {g[0]['page_start']}-{g[-1]['page_end']}" for g in groups]
    plan_budget = budget(engine, 200 + 60 * count)
    overview = condense(
        [f"Screen {i + 1}: {t}\n" + " ".join(s["text"] for s in g) for i, (t, g) in enumerate(zip(titles, groups,
                                                                                                 strict=True))],
        plan_budget,
    )
    outline = _outline(engine, req, document, count, overview, cancel,
                       extra=" Screen i covers the slides listed as 'Screen i'.")
    objectives: list[str] = outline["objectives"]
    progress(0.1, "outline", {"title": outline["title"], "objectives": objectives})
    screen_budget = budget(engine, SCREEN_TOKENS)
    context = f"{outline['title']}: {_topic(req, document)} (audience: {req.audience}, tone: {req.tone})"
    content = empty_content()
    reader = db.read()
    for index, (group, planned) in enumerate(zip(groups, outline["screens"], strict=True)):
        _check(cancel)
        objective = objectives[min(int(planned["objective"]), len(objectives)) - 1]
        title = titles[index][:80]
        source = condense([s["text"] for s in group], screen_budget)
        screen = generate_screen(engine, planned["type"], title,
                                 f"{context}. This screen serves the objective: {objective}",
                                 source=fence_safe(source), cancel=cancel)
        screen["id"] = index + 1
        screen["objective"] = objective
        screen["description"] = f"Slides {group[0]['page_start']}-{group[-1]['page_end']}"
        if support_score(reader, document_id, screen) < settings.support_threshold:
            screen["unsupported"] = True
        content["screens"].append(screen)
        progress(0.1 + 0.9 * (index + 1) / (count + 1), f"screen {index + 1} of {count}",
                 {"screen": screen, "index": index})
    content["objectives"] = objectives
    content["source"] = {"documentId": document_id}
    clean = validate_content(content)
    unsupported = [int(s["id"]) for s in clean["screens"] if s.get("unsupported")]
    return outline["title"], outline["description"], clean, unsupported, 0

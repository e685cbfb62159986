"""Courses from documents: section digests, the plan, grounded screens, support checks.

Only extracted text reaches the model, always fenced in `<source>` as data (generation.SYSTEM tells
the model to ignore instructions found there, and a document cannot close the fence early). The
budget of every call comes from the engine's context size, so the small test model (n_ctx 2048)
and the default model both see whole prompts; within it, the plan and each screen read on purpose
little text (prompt prefill is what the author waits for: ~74 tokens/s on two cores).

- Short documents go to the planner as they are.
- Long ones (`summary_min_pages` pages or more, or more text than the plan's budget) are cut into
  at most `max_summary_sections` consecutive sections covering every chunk; each gets an extractive
  digest (appliance.documents.digest: the document's own sentences, no model) and the course is
  planned from them. Digests are stored in `document_sections`.
- Each screen is written from the sentences of the chunks that best match its title and objective
  (FTS5 bm25, then sentence selection), then checked against the document: the share of its content
  words found in the best-matching chunks. Below `support_threshold` the screen gets
  `"unsupported": true` for the author to review.
- Documents are written by appliance.ai.course_writer like a course from a prompt (opening screen,
  streamed plan, knowledge check, key takeaways, the quality gate), the digest as the plan's source.
- Presentations: the first screen is written alone, the others together (at most SCREEN_WORKERS
  requests at once, which the engine decodes in one batch); each is reported as soon as it is done.
- Presentations: one screen per slide group (a section-header slide, or at most three slides).
"""

from __future__ import annotations

import html
import math
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from appliance.ai.course_writer import CourseBrief, draft_course
from appliance.ai.engine import CancelToken, Engine, Message
from appliance.ai.errors import Cancelled
from appliance.ai.generation import (
    MAX_SCREENS,
    SCREEN_RETRIES,
    SYSTEM,
    fence_safe,
    generate_screen,
    outline_schema,
)
from appliance.ai.quality import Flag
from appliance.courses.model import empty_content
from appliance.courses.validate import validate_content
from appliance.documents import service
from appliance.documents.digest import digest_sections, focused
from appliance.documents.digest import stem as _stem
from appliance.security.audit import now_iso

Progress = Callable[[float, str, dict[str, Any] | None], None]
CHARS_PER_TOKEN = 3  # conservative: budgets must hold for any tokenizer and any language
PROMPT_OVERHEAD = 350  # system prompt, task text and chat template, in tokens
SUMMARY_TOKENS = 200  # sizes the sections as the model summaries did (a section per prompt's worth)
SCREEN_TOKENS = 700
# What the model reads is what costs (prompt prefill ~74 tokens/s with the default model on two
# cores): the plan reads a digest of this many characters, each screen this much focused source.
PLAN_CHARS = 1500
PLAN_CHARS_PER_SCREEN = 150
SCREEN_SOURCE_CHARS = 2000
SCREEN_WORKERS = 4  # concurrent screen requests (the engine batches them; more only queue)
SECTION_LINE_OVERHEAD = 40  # "[pages a-b] title: " in front of each digest
DIGEST_MODEL = "extractive"  # document_sections.model: made by appliance.documents.digest

_TAGS = re.compile(r"<[^>]+>")
_WORD = re.compile(r"[^\W\d_]{4,}", re.UNICODE)


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
    plan_chars: int,
    progress: Progress | None = None,
) -> list[Section]:
    """The map step, without the model: an extractive digest of every section of the whole
    document (appliance.documents.digest), together at most `plan_chars` characters.

    Sections are cut as before (consecutive, every chunk in exactly one, at most `max_sections`);
    each gets an equal share of the plan's source. The digests are stored in `document_sections`
    (replacing older ones) for the builder to show."""
    document_id = int(document["id"])
    chunks = service.chunks(db.read(), document_id)
    groups = plan_sections(chunks, budget(engine, SUMMARY_TOKENS), max_sections)
    texts = [(next((c["heading"] for c in g if c["heading"]), ""), "\n\n".join(c["text"] for c in g))
             for g in groups]
    share = max(200, plan_chars // len(groups) - SECTION_LINE_OVERHEAD)
    digests = digest_sections(texts, share)
    sections: list[Section] = []
    for index, (group, found, (_heading, text)) in enumerate(zip(groups, digests, texts, strict=True)):
        first, last = group[0], group[-1]
        summary = found.text or condense([text], share)  # no sentence long enough: the section's opening
        sections.append(Section(index, first["page_start"], last["page_end"], first["seq"], last["seq"],
                                found.title or f"Pages {first['page_start']}-{last['page_end']}", summary))
        if progress is not None:
            progress(0.1 * (index + 1) / len(groups), f"summarised section {index + 1} of {len(groups)}",
                     {"section": index + 1, "sections": len(groups),
                      "pages": [first["page_start"], last["page_end"]]})

    def save(w: sqlite_utils.Database) -> None:
        w.execute("DELETE FROM document_sections WHERE document_id = ?", [document_id])
        w.conn.executemany(
            "INSERT INTO document_sections (document_id, seq, page_start, page_end, chunk_start, chunk_end, "
            "title, summary, model, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(document_id, s.seq, s.page_start, s.page_end, s.chunk_start, s.chunk_end, s.title, s.summary,
              DIGEST_MODEL, now_iso()) for s in sections],
        )

    db.write(save)
    return sections


def _section_line(s: Section) -> str:
    return f"[pages {s.page_start}-{s.page_end}] {s.title}: {s.summary}"


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
    retries: int = SCREEN_RETRIES  # fresh samples for a screen that fails the quality gate

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


def plan_chars(engine: Engine, count: int) -> int:
    """Source characters for the plan: enough digest for `count` screens, within one prompt."""
    return min(budget(engine, 200 + 60 * count), PLAN_CHARS + PLAN_CHARS_PER_SCREEN * count)


def document_course(
    engine: Engine,
    db: Any,
    document: dict[str, Any],
    req: Request,
    settings: Any,
    progress: Progress,
    cancel: CancelToken | None = None,
) -> tuple[str, str, dict[str, Any], list[int], int, list[Flag]]:
    """(title, description, content, unsupported screen ids, number of digested sections, the
    quality gate's leftover flags). The course writer writes it like a course from a prompt (opening
    screen, streamed plan, knowledge check, key takeaways, the gate) with the document's digest as
    the plan's source and each planned screen written from its own best-matching chunks."""
    document_id = int(document["id"])
    count = req.screen_count or 5
    chunks = service.chunks(db.read(), document_id)
    full = "\n\n".join(f"{c['heading']}\n{c['text']}".strip() for c in chunks)
    limit = plan_chars(engine, count)
    sections: list[Section] = []
    if document["pages"] >= settings.summary_min_pages or len(full) > limit:
        sections = summarise_sections(engine, db, document, max_sections=settings.max_summary_sections,
                                      plan_chars=limit, progress=progress)
        plan_source = condense([_section_line(s) for s in sections], limit)
    else:
        plan_source = full
    _check(cancel)
    base = 0.2 if sections else 0.1
    screen_chars = min(budget(engine, SCREEN_TOKENS), SCREEN_SOURCE_CHARS)

    def source_for(planned: dict[str, Any], objective: str, index: int, planned_count: int) -> str:
        query = f"{planned['title']} {objective}"
        hits = service.search_db(db.read(), document_id, query, limit=4)
        if not hits:  # nothing matches its words: the part of the document at this point of the plan
            lo = index * len(chunks) // planned_count
            hits = chunks[lo:max(lo + 1, (index + 1) * len(chunks) // planned_count)]
        texts = [f"{h['heading']}\n{h['text']}".strip() for h in hits]
        return focused(texts, query, screen_chars) or condense(texts, screen_chars)

    brief = CourseBrief(_topic(req, document), audience=req.audience, familiarity=req.familiarity, tone=req.tone,
                        screen_count=count, source=plan_source, retries=req.retries, screen_source=source_for,
                        plan_note="Teach the content of the document in <source>, in its order.")
    digests = [_section_line(s) for s in sections]

    def report(fraction: float, message: str, data: dict[str, Any] | None) -> None:
        if message == "outline" and data is not None:  # the plan says what it was made from
            data = {**data, "sections": digests}
        progress(base + (1 - base) * fraction, message, data)

    draft = draft_course(engine, brief, report, cancel=cancel)
    content = draft.content
    planned = [s for s in content["screens"] if s.get("objective")]  # the frame's screens carry none
    flag_unsupported(db.read(), document_id, planned, settings.support_threshold)
    content["source"] = {"documentId": document_id}
    clean = validate_content(content)
    unsupported = [int(s["id"]) for s in clean["screens"] if s.get("unsupported")]
    return draft.title, draft.description, clean, unsupported, len(sections), draft.flags


def _write_screens(
    write: Callable[[int], dict[str, Any]], count: int, cancel: CancelToken | None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Screen 0 alone (the first screen is what the author waits for, and a sequence decoded
    alone is the fastest one), then the others concurrently, at most SCREEN_WORKERS at a time
    (the engine decodes concurrent requests together in one batch); each is yielded as it is done.

    The calls share the job's cancel token, so the engine counts them as one owner (fairness).
    When one fails, the screens not yet started are skipped and the error is raised once the
    running ones have returned (each is bounded by its token cap and the job's deadline)."""
    yield 0, write(0)
    if count == 1:
        return
    failed = threading.Event()

    def guarded(index: int) -> dict[str, Any]:
        if failed.is_set():
            raise Cancelled("an earlier screen failed")
        try:
            return write(index)
        except BaseException:
            failed.set()
            raise

    with ThreadPoolExecutor(max_workers=min(SCREEN_WORKERS, count - 1), thread_name_prefix="screen") as pool:
        futures = {pool.submit(guarded, index): index for index in range(1, count)}
        error: BaseException | None = None
        for future in as_completed(futures):
            try:
                screen = future.result()
            except BaseException as exc:
                if error is None or isinstance(error, Cancelled):
                    error = exc  # the first real failure, not a skipped screen
                continue
            if error is None:
                yield futures[future], screen
        if error is not None:
            raise error


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
) -> tuple[str, str, dict[str, Any], list[int], int, list[Flag]]:
    """One screen per slide group, in order: the deck is the plan (no frame, no gate rewrites)."""
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

    def write(index: int) -> dict[str, Any]:
        _check(cancel)
        group, planned = groups[index], outline["screens"][index]
        objective = objectives[min(int(planned["objective"]), len(objectives)) - 1]
        source = condense([s["text"] for s in group], screen_budget)
        screen = generate_screen(engine, planned["type"], titles[index][:80],
                                 f"{context}. This screen serves the objective: {objective}",
                                 source=source, cancel=cancel)
        screen["id"] = index + 1
        screen["objective"] = objective
        screen["description"] = f"Slides {group[0]['page_start']}-{group[-1]['page_end']}"
        if support_score(db.read(), document_id, screen) < settings.support_threshold:
            screen["unsupported"] = True
        return screen

    return (*_assemble(outline, objectives, document_id, count, write, progress, 0.1, cancel, 0), [])


def _assemble(
    outline: dict[str, Any],
    objectives: list[str],
    document_id: int,
    count: int,
    write: Callable[[int], dict[str, Any]],
    progress: Progress,
    base: float,
    cancel: CancelToken | None,
    sections: int,
) -> tuple[str, str, dict[str, Any], list[int], int]:
    """Write every screen (progress as each is done), validate the course, list unsupported screens."""
    screens: list[dict[str, Any] | None] = [None] * count
    for done, (index, screen) in enumerate(_write_screens(write, count, cancel), start=1):
        screens[index] = screen
        progress(base + (1 - base) * done / (count + 1), f"screen {index + 1} of {count}",
                 {"screen": screen, "index": index})
    content = empty_content()
    content["screens"] = [s for s in screens if s is not None]
    content["objectives"] = objectives
    content["source"] = {"documentId": document_id}
    clean = validate_content(content)
    unsupported = [int(s["id"]) for s in clean["screens"] if s.get("unsupported")]
    return outline["title"], outline["description"], clean, unsupported, sections

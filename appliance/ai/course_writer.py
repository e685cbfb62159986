"""Whole courses from a brief: the plan streamed, screens written several at once, the frame
(opening screen, knowledge check, key takeaways) and the quality gate's rewrites (docs/ai.md "Course generation").

Contract:
- A course of 4+ screens opens with "Why this matters" (written from the brief alone, at priority
  -2 so it runs first and alone and reaches the author first; the plan follows at -1, decoded first
  in every step beside the others), has a planned middle,
  and ends with a knowledge check (unless the caller turns it off) and "Key takeaways"; 1-3
  screens are planned whole, description included.
- The outline streams; each middle screen starts the moment its line of the plan is complete, and
  the knowledge check (its questions written at once), the key takeaways and the description of a
  4+ screen course start as soon as the objectives exist. Documents hand each planned screen its
  own source (``CourseBrief.screen_source``). Up to
  ``parallel - 1`` requests of one course run at once; their prompts begin with the same course
  context, which the local engine reads once. One CancelToken makes the course one caller.
- Every screen passes the gate (appliance.ai.quality), and says nothing a finished screen already
  said, or is written again with a fresh seed, at most ``brief.retries`` times. What still fails is
  returned as flags, never silently kept.
- Every screen is handed to ``progress`` the moment it exists (``{"screen", "index"}``); progress
  never goes backwards. A full engine queue makes the course's own requests wait, not fail.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from appliance.ai.engine import DEFAULT_SAMPLING, CancelToken, Engine, SamplingParams
from appliance.ai.errors import QueueFull
from appliance.ai.generation import (
    DESCRIPTION_CHARS,
    DESCRIPTION_SCHEMA,
    INTRO_SCHEMA,
    MAX_SCREENS,
    SCREEN_RETRIES,
    SCREEN_TOKENS,
    Progress,
    check_cancel,
    fixable,
    for_scripts,
    fresh_sample,
    generate_quiz_at_once,
    generate_screen,
    outline_schema,
    prompt_messages,
    screen_content,
)
from appliance.ai.quality import Flag, counted_sentences, course_flags, screen_flags
from appliance.ai.repair import cut_to_sentence, drop_repeated_sentences, trim_dangling
from appliance.ai.schema import validate
from appliance.courses.model import empty_content
from appliance.courses.validate import validate_content, validate_screen

T = TypeVar("T")
OUTLINE_TOKENS = 260  # title, objectives and description; plus 40 per plan line

TYPE_GUIDE = (
    "Screen types: text = a short explanation; list = 3 key points; process = steps in order; "
    "checklist = actions the learner should take; flashcards = terms and their meaning."
)
# SamplingParams.priority: the opening screen first and alone (batching.ALONE_PRIORITY: it is what
# the author waits for), then the plan (it feeds every screen) first in every step, then the rest
OPENING_PRIORITY = -2
URGENT = -1


KNOWLEDGE_CHECK = "Check your understanding"
OPENING = "Why this matters"


@dataclass
class CourseBrief:
    prompt: str
    audience: str = "employees"
    familiarity: str = "beginner"
    tone: str = "professional"
    screen_count: int = 5
    source: str | None = None
    quiz: bool = True  # a knowledge check in every course of 4+ screens unless the caller says no
    retries: int = SCREEN_RETRIES  # fresh samples for a screen that fails the gate ([ai] quality_retries)
    # courses from documents: the source of one planned screen (its plan line, its objective, its
    # index among the planned screens, how many are planned) instead of `source`, which then only
    # feeds the plan, the opening screen and the knowledge check
    screen_source: Callable[[dict[str, Any], str, int, int], str] | None = None
    plan_note: str = ""  # added to the planning task (documents: teach the source in its order)


@dataclass
class CourseDraft:
    title: str
    description: str
    content: dict[str, Any]
    flags: list[Flag] = field(default_factory=list)  # what still fails the gate after the retries
    regenerated: int = 0  # screens written again because they failed the gate


# -- the plan, streamed ----------------------------------------------------------------------------

def _complete_items(text: str, key: str) -> list[Any]:
    """The complete elements of the array under ``"key"`` in a JSON text that may still be growing."""
    at = text.find(f'"{key}"')
    if at < 0:
        return []
    start = text.find("[", at)
    if start < 0:
        return []
    decoder = json.JSONDecoder()
    items: list[Any] = []
    i = start + 1
    while True:
        while i < len(text) and text[i] in " \t\r\n,":
            i += 1
        if i >= len(text) or text[i] == "]":
            return items
        try:
            value, i = decoder.raw_decode(text, i)
        except ValueError:
            return items  # the next element is not finished yet
        items.append(value)


def generate_intro(engine: Engine, brief: CourseBrief, *, cancel: CancelToken | None = None,
                   timeout: float | None = None, sampling: SamplingParams = DEFAULT_SAMPLING) -> dict[str, Any]:
    """The opening screen, from the brief alone, so it is written while the outline is planned."""
    task = (f"Write the opening screen of a course. Topic: {brief.prompt}. Audience: {brief.audience} "
            f"({brief.familiarity}). Tone: {brief.tone}. Tell the learner in one short paragraph why the "
            "topic matters in their daily work: the risk it avoids or the benefit it brings. Start with the topic "
            "itself, not with the course.")
    raw = engine.generate_json(prompt_messages(task, brief.source), INTRO_SCHEMA, max_tokens=SCREEN_TOKENS,
                               timeout=timeout, cancel=cancel, sampling=for_scripts(sampling, task, brief.source))
    return validate_screen({"type": "text", "title": OPENING, "content": screen_content("text", raw)})


# what the frame already has, or a title about the format: a planned screen titled like this would
# say something twice or talk about the course instead of the topic
_FRAME_TITLE = re.compile(
    r"\b(?:introduction|intro|welcome|overview|conclusions?|summary|recap|takeaways?|key points|next steps|"
    r"references|resources|quiz|knowledge check|test your|review|wrap[- ]?up|final thoughts|closing|purpose|"
    r"flashcards?|learning objectives?|assessment|faqs?|frequently asked|additional information|further reading)\b",
    re.IGNORECASE)
QUIZ_REWRITES = 1  # whole knowledge checks written again: its questions are asked again on their own first
PLAN_SPARE = 3  # extra plan lines asked for: frame-like or repeated titles are passed over, not reframed
# the plan's screens are "key points": asked for "screens" of a "course", Qwen2.5-1.5B plans an
# introduction first and a conclusion, next steps and references last (about half of its lines)
PLAN_KEY = "key_points"
PLAN_TITLE_MAX = 70  # characters of a plan line's title


# the angles a reframed screen takes on its objective, in turn, so two never share a title
ANGLES = (("In practice", "checklist"), ("Common mistakes", "list"), ("Examples", "flashcards"),
          ("Step by step", "process"))


def _reframe(planned: dict[str, Any], objectives: list[str], plan: list[dict[str, Any]]) -> dict[str, Any]:
    """A planned screen that repeats the frame (another introduction, a conclusion, a summary, a
    quiz) takes its objective from a practical angle instead (the next angle not yet used in
    ``plan``); small models plan those screens out of habit even when told not to."""
    if not _FRAME_TITLE.search(planned["title"]) or not objectives:
        return planned
    goal = objectives[min(int(planned["objective"]), len(objectives)) - 1].strip().rstrip(".")
    used = {p["title"].split(":")[0] for p in plan}
    angle, kind = next((a for a in ANGLES if a[0] not in used), ANGLES[len(plan) % len(ANGLES)])
    return {**planned, "title": trim_dangling(f"{angle}: {goal[:1].lower()}{_words(goal[1:], 60)}"), "type": kind}


def _words(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters at a word boundary."""
    if len(text) <= limit:
        return text
    cut = text[:limit + 1].rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:-")


def _vary(plan: list[dict[str, Any]], planned: dict[str, Any]) -> dict[str, Any]:
    """A third screen in a row of one type becomes a list of key points (or a text, after two
    lists): a shape that fits any title, so a course is never a wall of one kind of screen. The
    plan streams, so this is decided screen by screen, before the screen is written."""
    if len(plan) >= 2 and plan[-1]["type"] == plan[-2]["type"] == planned["type"]:
        planned = {**planned, "type": "list" if planned["type"] != "list" else "text"}
    plan.append(planned)
    return planned


Maker = Callable[[SamplingParams, str | None], dict[str, Any]]  # (sampling, sentences to avoid) -> screen


@dataclass
class _Course:
    """The state of one course being written (shared by the writer threads)."""

    engine: Engine
    brief: CourseBrief
    progress: Progress
    cancel: CancelToken
    timeout: float | None
    count: int
    structured: bool  # opening screen, plan, quiz (unless turned off), key takeaways
    lock: threading.Lock = field(default_factory=threading.Lock)
    screens: dict[int, dict[str, Any]] = field(default_factory=dict)
    makers: dict[int, Maker] = field(default_factory=dict)
    regenerated: int = 0
    reported: float = 0.0

    def report(self, fraction: float, message: str, data: dict[str, Any] | None) -> None:
        """Progress from any writer thread, in order, never going backwards."""
        with self.lock:
            self.reported = max(self.reported, fraction)
            self.progress(self.reported, message, data)

    def context(self, title: str, objectives: list[str]) -> str:
        b = self.brief
        goals = " ".join(f"({i + 1}) {o}" for i, o in enumerate(objectives))
        return (f"{title}. Topic: {b.prompt}. Audience: {b.audience} ({b.familiarity}). Tone: {b.tone}. "
                f"Objectives: {goals}")

    def patiently(self, call: Callable[[], T]) -> T:
        """One request of this course. A full engine queue means other callers are busy: the
        course's own requests wait for room (until cancel or the timeout) instead of failing the
        course; the queue bound is for callers arriving from outside, not for a job already running."""
        waited = 0.0
        while True:
            check_cancel(self.cancel)
            try:
                return call()
            except QueueFull as exc:
                if waited >= (self.timeout or float(getattr(self.engine, "default_timeout", 300.0))):
                    raise
                pause = min(1.0, max(0.1, float(exc.retry_after or 1)))
                time.sleep(pause)
                waited += pause

    def _call(self, make: Maker, sampling: SamplingParams, avoid: str | None) -> dict[str, Any]:
        return self.patiently(lambda: make(sampling, avoid))

    def write(self, index: int, make: Maker, priority: int = 0, retries: int | None = None) -> None:
        """Write screen ``index`` through the gate: up to ``brief.retries`` fresh samples. Besides
        the screen's own rules, a sentence already said by a finished screen counts as a failure
        (the rewrite is told which sentences to avoid; one rewrite for repetition, which the
        final flags report if it persists), so repetition is caught while the other screens are
        still being written, not in a pass at the end. A screen with a lower ``priority`` (the
        opening one) runs ahead of the others, rewrites included. ``retries`` lowers the bound for
        a screen that retries its own parts (the knowledge check asks a failing question again)."""
        self.makers[index] = make
        avoid: str | None = None
        retries = self.brief.retries if retries is None else min(retries, self.brief.retries)
        for attempt in range(1 + retries):
            sampling = replace(fresh_sample(DEFAULT_SAMPLING, attempt), priority=priority)
            screen = self._call(make, sampling, avoid)
            if screen["type"] != "quiz":  # a sentence said before goes where its field says more
                screen = drop_repeated_sentences(screen, self._said())
            said = self._already_said(screen) if avoid is None else []  # one rewrite for repetition
            if not fixable(screen_flags(screen, index)) and not said:
                break
            avoid = "; ".join(said)[:300] or avoid
            if attempt < retries:
                with self.lock:
                    self.regenerated += 1
        screen["id"] = index + 1
        with self.lock:
            self.screens[index] = screen
            done = len(self.screens)
        self.report(done / (self.count + 1), f"screen {done} of {self.count}", {"screen": screen, "index": index})

    def _said(self) -> set[str]:
        """The sentences of the finished screens as the gate counts them (headings are no sentences;
        a quiz may restate, so quizzes are left out)."""
        with self.lock:
            finished = [s for s in self.screens.values() if s["type"] != "quiz"]
        return {sentence for s in finished for sentence in counted_sentences(s)}

    def _already_said(self, screen: dict[str, Any]) -> list[str]:
        """Sentences of ``screen`` that a finished screen already has (a quiz may restate)."""
        if screen["type"] == "quiz":
            return []
        earlier = self._said()
        return [sentence for sentence in counted_sentences(screen) if sentence in earlier]


def _title_of(text: str) -> str:
    """The course title at the start of a growing outline (empty until it is complete)."""
    try:
        start = text.index(":", text.index('"title"')) + 1
        value, _end = json.JSONDecoder().raw_decode(text, start)
    except ValueError:
        return ""
    return str(value)


def _heading(title: str) -> str:
    """A plan line's title, plain; one the grammar cut at its length bound ends at a whole word,
    and not on a word that needs another ("..., identity theft, or")."""
    title = _plain(title)
    if len(title) >= PLAN_TITLE_MAX - 1 and " " in title:
        title = title.rsplit(" ", 1)[0].rstrip(" ,;:-")
    return trim_dangling(title)


class _PlanReader:
    """Picks the planned screens of a growing outline: with spare lines asked for (a framed course),
    a frame-like title or one already taken is passed over while spares remain; what was passed
    over fills the plan (to be reframed) only if the good lines run out."""

    def __init__(self, count: int, spare: int) -> None:
        self.count, self.spare = count, spare
        self.taken: list[dict[str, Any]] = []
        self.passed: list[dict[str, Any]] = []
        self.read = 0

    def take(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The newly accepted screens among ``items`` (the complete plan lines so far)."""
        new: list[dict[str, Any]] = []
        titles = {p["title"].strip().lower() for p in self.taken}
        for item in items[self.read:]:
            self.read += 1
            if len(self.taken) >= self.count:
                break
            item = {**item, "title": _heading(str(item.get("title", "")))}
            title = item["title"].lower()
            if self.spare and (_FRAME_TITLE.search(title) or title in titles):
                self.passed.append(item)
                continue
            self.taken.append(item)
            titles.add(title)
            new.append(item)
        return new

    @property
    def full(self) -> bool:
        return len(self.taken) >= self.count

    def numbered(self, new: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
        """``new`` (the last screens taken) with their indexes in the plan."""
        first = len(self.taken) - len(new)
        return list(enumerate(new, start=first))

    def fill(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Complete the plan from what was passed over, then from ``items`` (a fresh plan: titles
        not taken yet first)."""
        titles = {p["title"].strip().lower() for p in self.taken}
        items = [{**i, "title": _heading(str(i.get("title", "")))} for i in items]
        fresh = [i for i in items if i["title"].lower() not in titles]
        new = []
        for item in self.passed + fresh + [i for i in items if i not in fresh]:
            if len(self.taken) >= self.count:
                break
            self.taken.append(item)
            new.append(item)
        self.passed = []
        return new


_TAG = re.compile(r"<[^>]*(?:>|$)")  # a tag, or one cut off by a length bound ("...app.</")


def _plain(text: str) -> str:
    """Plan text as a heading: no tag-like markup (a model may echo the prompt's fence), single spaces."""
    return " ".join(_TAG.sub(" ", text).split())


def _objectives(text: str) -> list[str]:
    return [_plain(str(o)) for o in _complete_items(text, "objectives")]


def _stream_plan(course: _Course, count: int, on_goals: Callable[[str, list[str]], None],
                 on_screen: Callable[[int, dict[str, Any], str, list[str]], None]) -> dict[str, Any]:
    """Stream the outline; call ``on_goals`` once the title and objectives are complete, and
    ``on_screen`` for each planned screen the moment its line is done. A framed course asks for
    ``PLAN_SPARE`` lines more than it needs and stops the outline once it has ``count`` good ones."""
    b = course.brief
    spare = PLAN_SPARE if course.structured else 0
    frame = ("No introduction, overview, conclusion, summary, next steps, references or quiz: the course has "
             "them already. " if course.structured else "")
    task = (
        f"Topic: {b.prompt}. Audience: {b.audience}. Their familiarity: {b.familiarity}. Tone: {b.tone}. First write "
        f"1 to 3 learning objectives: what the learner will be able to do, each starting with an action verb. Then list "
        f"the {count + spare} most important things the learner must know or do about the topic, each a different point "
        f"with a short, specific title, the type of screen that fits it and the number of the objective it serves. "
        f"{frame}{TYPE_GUIDE} Use at least two types.{' ' + b.plan_note if b.plan_note else ''}"
    )
    # a framed course has its description written beside the screens; a short one plans it last
    schema = outline_schema(count + spare, description=not course.structured, key=PLAN_KEY, title_max=PLAN_TITLE_MAX)
    messages = prompt_messages(task, b.source)
    sampling = for_scripts(replace(DEFAULT_SAMPLING, priority=URGENT), task, b.source)  # the plan feeds every screen
    max_tokens = OUTLINE_TOKENS + 40 * (count + spare)
    reader = _PlanReader(count, spare)
    text = ""
    goals = False
    own = course.cancel.child()  # stopping the outline early stops only the outline
    chunks = course.patiently(lambda: course.engine.stream(
        messages, schema=schema, max_tokens=max_tokens, timeout=course.timeout, cancel=own, sampling=sampling))
    try:
        for chunk in chunks:
            text += chunk
            if not goals and f'"{PLAN_KEY}"' in text:  # the objectives array is closed
                goals = True
                on_goals(_plain(_title_of(text)), _objectives(text))
            items = _complete_items(text, PLAN_KEY)
            if items and reader.read == 0:
                course.report(0.5 / (course.count + 1), "outline",
                              {"title": _plain(_title_of(text)), "objectives": _objectives(text)})
            for index, item in reader.numbered(reader.take(items)):
                on_screen(index, item, _plain(_title_of(text)), _objectives(text))
            if spare and reader.full:
                break  # the spare lines are not needed: the rest of the outline is never decoded
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    check_cancel(course.cancel)
    title, objectives = _plain(_title_of(text)), _objectives(text)
    if not reader.full:
        for index, item in reader.numbered(reader.fill([])):
            on_screen(index, item, title, objectives)
    if not (title and objectives and reader.full):  # the plan itself is unusable: plan again
        fresh = course.patiently(lambda: course.engine.generate_json(
            messages, schema, max_tokens=max_tokens, timeout=course.timeout, cancel=course.cancel, sampling=sampling))
        title, objectives = title or fresh["title"], objectives or fresh["objectives"]
        if not goals:
            on_goals(title, objectives)
        for index, item in reader.numbered(reader.fill(fresh[PLAN_KEY])):
            on_screen(index, item, title, objectives)
    description = f"{b.prompt[:200]} (for {b.audience[:80]})"  # said plainly when the plan has none
    if not course.structured:
        try:
            outline: dict[str, Any] = json.loads(text)
            validate(outline, schema)
            description = outline["description"]
        except ValueError:  # InvalidOutput is a ValueError too: cut short, or a rule the grammar cannot hold
            pass
    return {"title": title, "objectives": objectives, "screens": reader.taken, "description": description}


def draft_course(
    engine: Engine, brief: CourseBrief, progress: Progress, *, cancel: CancelToken | None = None,
    timeout: float | None = None,
) -> CourseDraft:
    """The course of ``brief`` as described in the module docstring: the opening screen and the
    streamed outline first, the knowledge check and key takeaways once the objectives exist, each
    middle screen once its plan line exists, several at once. Every screen is delivered to
    ``progress`` the moment it is complete (``{"screen", "index"}``)."""
    count = max(1, min(MAX_SCREENS, brief.screen_count))
    structured = count >= 4  # an opening screen first; a quiz (unless turned off) and a summary last
    head = 1 if structured else 0
    tail = (2 if brief.quiz else 1) if structured else 0
    planned_count = count - head - tail
    cancel = cancel or CancelToken()  # one token: the engine treats the course as one caller
    course = _Course(engine, brief, progress, cancel, timeout, count, structured)
    workers = max(2, int(getattr(engine, "parallel", 3)) - 1)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ai-screen")
    futures: list[Future[None]] = []
    plan: list[dict[str, Any]] = []
    if structured:
        futures.append(pool.submit(course.write, 0, lambda sampling, _avoid: generate_intro(
            engine, brief, cancel=cancel, timeout=timeout, sampling=sampling), priority=OPENING_PRIORITY))

    def start_screen(index: int, planned: dict[str, Any], title: str, objectives: list[str]) -> None:
        index += head
        planned = _vary(plan, _reframe(planned, objectives, plan) if structured else planned)
        course.report(0.5 / (count + 1), f"planned screen {index + 1}",
                      {"plan": {"index": index, "title": planned["title"], "type": planned["type"]}})
        context = course.context(title, objectives)
        number = min(int(planned["objective"]), len(objectives))
        objective = objectives[number - 1] if objectives else ""
        # the objectives are numbered in the course context every prompt starts with: naming the
        # number reads fewer prompt tokens than repeating the words, and copied words would repeat
        focus = f"It serves objective ({number}): teach one concrete point of it, in your own words." \
            if objective else None
        source = brief.screen_source(planned, objective, index - head, planned_count) if brief.screen_source \
            else brief.source

        def make(sampling: SamplingParams, avoid: str | None) -> dict[str, Any]:
            screen = generate_screen(engine, planned["type"], planned["title"], context, source=source,
                                     cancel=cancel, timeout=timeout, focus=focus, sampling=sampling, avoid=avoid)
            screen["objective"] = objective
            return screen

        futures.append(pool.submit(course.write, index, make))

    described: list[Future[str]] = []

    def describe(context: str) -> str:
        """The course description, written beside the screens (it is no part of the plan's critical path)."""
        task = "Write the course description: one or two sentences on what the learner will be able to do."
        sampling = for_scripts(DEFAULT_SAMPLING, task, brief.source, context)
        try:
            raw = course.patiently(lambda: engine.generate_json(
                prompt_messages(task, brief.source, context), DESCRIPTION_SCHEMA, max_tokens=100, timeout=timeout,
                cancel=cancel, sampling=sampling))
        except ValueError:  # InvalidOutput: the plan stands, the description is said plainly
            return f"{brief.prompt[:200]} (for {brief.audience[:80]})"
        return cut_to_sentence(str(raw["description"]), DESCRIPTION_CHARS)

    def start_closing(title: str, objectives: list[str]) -> None:
        """The knowledge check and the key takeaways need only the objectives: they start before the
        rest of the plan, so the longest screens are not the last to begin."""
        context = course.context(title, objectives)
        if structured:
            described.append(pool.submit(describe, context))
        if not structured:
            return
        if brief.quiz:
            # a situation to act in, not a definition: asked for "this objective", every question
            # asked what the topic is, in the same words (the gate's repeated_sentence, identical answers)
            focuses = [f"Ask about this objective: {o.rstrip('.')}. Describe a short work situation and ask what the learner "
                       "should do; do not ask for a definition." for o in objectives]
            if len(focuses) == 1:  # two questions on one objective: one on what to know, one on what to do
                focuses = [f"Ask about this objective: {objectives[0].rstrip('.')} (a fact to know).", focuses[0]]
            futures.append(pool.submit(course.write, head + planned_count, lambda sampling, _avoid: generate_quiz_at_once(
                engine, context, focuses, KNOWLEDGE_CHECK, source=brief.source, cancel=cancel, timeout=timeout,
                sampling=sampling), 0, QUIZ_REWRITES))
        summary_focus = ("Sum up what the learner now knows and does: one point per objective, in new words "
                         "(do not copy the objectives).")
        futures.append(pool.submit(course.write, count - 1, lambda sampling, avoid: generate_screen(
            engine, "list", "Key takeaways", context, cancel=cancel, timeout=timeout, focus=summary_focus,
            sampling=sampling, avoid=avoid)))

    try:
        outline = _stream_plan(course, planned_count, start_closing, start_screen)
        objectives: list[str] = outline["objectives"]
        course.report(1 / (count + 1), "plan complete", {"title": outline["title"], "objectives": objectives,
                                                         "screens": [p["title"] for p in plan]})
        for future in list(futures):
            future.result()
        description = described[0].result() if described else str(outline.get("description") or "")
        content = empty_content()
        content["screens"] = [course.screens[i] for i in range(count)]
        content["objectives"] = objectives
        content = validate_content(content)
    except BaseException:
        cancel.cancel()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    flags = course_flags(content, require_quiz=brief.quiz)
    return CourseDraft(outline["title"], description, content, flags, course.regenerated)


def generate_course(
    engine: Engine, brief: CourseBrief, progress: Progress, *, cancel: CancelToken | None = None,
    timeout: float | None = None,
) -> tuple[str, str, dict[str, Any]]:
    """:func:`draft_course` as (title, description, content), for callers that do not read flags."""
    draft = draft_course(engine, brief, progress, cancel=cancel, timeout=timeout)
    return draft.title, draft.description, draft.content


"""The quality gate for AI-written course content (docs/ai.md "Quality gate"): deterministic checks
over the course content model (appliance.courses.model), no model calls.

Every check returns `Flag`s; an empty list means the content passed. The generator regenerates a
flagged screen (bounded retries) and reports what still fails in the job result. Rules:

    leaked_markup      prompt fences, tags, JSON fragments, chat-template tokens, markdown the
                       player would show literally
    meta_talk          text about the screen/course/format/prompt instead of the topic
    repeated_sentence  a sentence of 5+ words already used in this screen or an earlier one (screen
                       titles and the titles of list items with their own text are headings, not
                       sentences: a later screen may say one in full, a summary may repeat one)
    empty_field        a blank title or text, or a screen without content
    overlong_field     a field longer than a learner should read in one piece (LIMITS)
    type_mix           a course of 6+ screens using fewer than 3 screen types
    no_quiz            a course of 4+ screens without a quiz screen (when a quiz is required)
    quiz_malformed     a question without 2+ distinct non-empty answers, exactly one correct, and
                       both feedback texts
    no_summary         a course of 4+ screens whose last screen is not a summary (by its title)
    untranslated       a translation that kept a source string or changed the structure
    unchanged          a refine (other than fix_grammar) that returned its input
    changed            fix_grammar that rewrote more than small edits
    unfinished_text    a sentence field (paragraph, item text, question, feedback) that ends or
                       starts mid-sentence, or a heading that ends on "the", "and", "your", ...
"""

from __future__ import annotations

import difflib
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

RULES = ("leaked_markup", "meta_talk", "repeated_sentence", "empty_field", "overlong_field",
         "type_mix", "no_quiz", "quiz_malformed", "no_summary", "untranslated", "unchanged", "changed",
         "mixed_script", "unfinished_text")

# Generated text is held to a length by the grammar (generation.py), and a model that runs on is cut
# there: "... such as passwords or credit card", or a paragraph split in a word ("to ext" / "end
# the victim's"), or a process step whose title is half a sentence the description finishes. Text
# of sentences must end as a sentence ends and must not start as the tail of one; a heading must
# not end on a word that needs another after it ("Signs of a", "Report the incident and").
SENTENCE_FIELDS = ("description", "paragraph", "text", "question", "feedback")
# a sentence's end: . ! ? and the ellipsis, the ideographic, fullwidth, Devanagari and Arabic marks,
# then any closing quote or bracket
SENTENCE_END_MARKS = ".!?\u2026\u3002\uff01\uff1f\u0964\u061f"  # also the grammar's (grammar.SENTENCE_AFTER)
SENTENCE_END = "[" + SENTENCE_END_MARKS + "]" + r"['\"\u201d\u2019)\]]*"
_FINISHED = re.compile(SENTENCE_END + "$")
_DANGLING = re.compile(r"\b(?:a|an|the|and|or|but|nor|that|which|whose|where|your|their|our|its|such|than|because|if)$",
                       re.IGNORECASE)

# Qwen2.5-Coder, trained on much Chinese text, sometimes finishes an English word in Chinese
# ("customer personal数据"). Han, kana and hangul inside text that is otherwise Latin is such a slip;
# a text written in one of those scripts has few Latin letters and is not flagged.
_CJK = re.compile(r"[぀-ヿ㐀-䶿一-鿿가-힯豈-﫿]")
_LATIN = re.compile(r"[A-Za-zÀ-ɏ]")
MIXED_SCRIPT_LATIN = 12  # Latin letters that make a text "Latin" for this rule


def has_cjk(text: str | None) -> bool:
    """Does ``text`` hold Han, kana or hangul (the scripts of the mixed_script rule)?"""
    return bool(text and _CJK.search(text))


@dataclass(frozen=True)
class Flag:
    rule: str            # one of RULES
    screen: int | None   # 0-based screen index, None for a course-level flag
    detail: str          # short, in our words; quotes at most 60 characters of the offending text

    def to_wire(self) -> dict[str, Any]:
        """For job results: what still fails after the retries (screen: 0-based index)."""
        return {"rule": self.rule, "screen": self.screen, "detail": self.detail}


# Limits per field kind, in visible characters. The generator's schemas ask for less (titles 80,
# descriptions 240, paragraphs 400); these leave headroom for human edits and translations (which
# run longer than English) while catching runaway generations. The validator's own caps (300/5000)
# are storage limits, not readable lengths.
LIMITS = {"title": 120, "description": 300, "item": 120, "text": 300, "paragraph": 800, "question": 300,
          "answer": 200, "feedback": 400, "media": 300}
_FIELD_NAMES = {"title": "screen title", "description": "screen description", "item": "item title",
                "text": "item text", "paragraph": "paragraph", "question": "question", "answer": "answer",
                "feedback": "feedback", "media": "image text"}

# Leaked markup, matched on what the learner sees (entities already unescaped in HTML fields).
# Each alternative is something small models really emit when the prompt or the JSON format bleeds
# through: the <source> fence of our prompts, any tag (the player escapes plain text, so a tag is
# shown literally), an entity left over from double escaping, JSON punctuation, chat-template
# tokens, markdown (the player does not render it), and our prompt's own labels. A quoted word
# before a colon ('the acronym "STOP": stop, think') is prose; a JSON key is followed by a value.
_MARKUP = re.compile(
    r"</?\s*source\b|&lt;|&gt;|&amp;|&quot;|&#x?[0-9a-f]+;"            # fence, double-escaped text
    r"|</?[a-z][\w:-]*(?:\s[^<>]{0,200})?/?>"                           # any HTML/XML tag
    r"|\{\s*\"|\"\s*:\s*[\"\[{]|^\s*\"\w+\"\s*:|\\\"|\[\s*\"|\"\s*[\]}]"     # JSON fragments
    r"|(?-i:\\n(?:[A-Z\s\"\\]|$))"                                     # an escaped newline
    r"|<\|[^|<>]{1,30}\|>|\bassistant\s*:|\[/?inst\]|<<\s*/?sys\s*>>|^#{2,}\s|\#\#\#\s*(?:instruction|response)"
    r"|```|\*\*[^*\s][^*]{0,80}\*\*"                                   # markdown fence and bold
    r"|^\s*(?:title|description|paragraphs?|front|back|feedback(?:_correct|_incorrect)?|objective|screen\s*\d+)\s*:"
    r"|\(\s*audience\s*:|\bfamiliarity\s*:|\baudience\s*:[^.]{0,60}\btone\s*:"  # our prompt's labels
    r"|\b(?:feedback_correct|feedback_incorrect|key_points)\b",  # our schemas' keys, never prose
    re.IGNORECASE | re.MULTILINE,
)

# Meta-talk: the text describes the course, its format or the model instead of teaching the topic.
# Chosen from small-model output ("Welcome to the 'Identifying Potential Risks' screen", "In this
# course you will learn", "Sure, here is the JSON", "According to the text"); ordinary teaching voice
# ("Phishing emails often ...", "Here are three warning signs", "Of course, ...") and first-person
# checklist items ("I will report suspicious emails", "I lock my screen") are not.
# These patterns are matched against lower-cased text, and _hits checks that a match starts a word:
# a leading \b on every branch would defeat the regex engine's first-character prefilter (8x slower).
_META = re.compile(
    r"welcome to\b[^.!?]{0,60}?\b(?:screen|slide|course|module|lesson|section|training|tutorial)s?\b"
    r"|this (?:course|module|lesson|slide|unit|chapter|tutorial|e-?learning|presentation)\b"
    r"|(?:the )?(?:following|next|previous|last|first) (?:slide|module|lesson)s?\b"
    r"|(?:text|process|checklist|flashcards?|list|quiz) screens?\b|\d+-screen\b"  # "4-Screen Safe Handling..."
    r"|you(?:'ll| will) (?:learn|discover|explore|be learning)\b"
    r"|we(?:'ll| will) (?:learn|explore|discuss|cover|look at|dive|delve|go over|examine)\b"
    r"|let's (?:dive|delve|explore|get started)\b"
    r"|learning objectives?\b|(?:serves|supports|meets|addresses) (?:the|this|our) objective\b"
    r"|(?:the following|this|valid|requested) (?:json|schema)\b|json (?:object|format|schema|output)\b"
    r"|as an ai\b|language model\b|i(?:'m| am) an ai\b"
    r"|(?:provided|given|above|original) (?:text|source|material|content|input)\b|source (?:text|tags?)\b"
    r"|according to (?:the|this) (?:text|screen|passage|course|source|lesson|module|material)\b"
    r"|here(?: is|'s| are) (?:the |a |an |your |my )?(?:json|content|screen|text|course|outline|quiz|"
    r"translation|translated|revised|rewritten|shortened|expanded|simplified|corrected|updated|version|"
    r"response|output)\b"
    r"|i(?:'ll| will| am going to| shall) (?:now )?(?:write|generate|translate|rewrite|revise|shorten|"
    r"expand|simplify|outline|provide|present|explain|cover|summari[sz]e|describe)\b"
    r"|i(?:'ve| have) (?:now )?(?:written|generated|translated|rewritten|revised|corrected|shortened|"
    r"expanded|simplified|fixed|provided|outlined|summari[sz]ed)\b"
    r"|let me (?:explain|show|know|walk|start|begin|help)\b|hope this helps\b|feel free to (?:ask|let)\b",
)
_OPENER = re.compile(r"^\s*(?:sure|certainly|okay)\b\s*[,!.]", re.MULTILINE)  # "Sure, here you go"
# "this screen", "the next page", "screen 2", "the prompt" are also user-interface words in a
# software course ("On this screen, click Save", "Follow the prompt to sign in"); they count as
# meta-talk only when their sentence has no interface word.
_META_UI = re.compile(
    r"(?:this|the following|the next|the previous|the first|the last) (?:screen|section|page)s?\b"
    r"|screen (?:\d+|one|two|three|four|five)\b"
    r"|(?:the|this|your|my) (?:given |provided |above |original |user's )?prompt\b",
)
_UI_WORDS = re.compile(
    r"\b(?:click|tap|press|select|button|menu|tab|window|dashboard|app|settings|toolbar|icon|field|"
    r"form|enter|log ?in|sign in|scroll|drop-?down|dialog|pop-?up|browser|device|display|monitor|"
    r"appears|follow|password|computer|laptop|phone|software|website|portal|application|interface|"
    r"wizard|keyboard|mouse|cursor|login)\b",
    re.IGNORECASE,
)

# The last screen of a course of 4+ screens must read as a summary; judged by its title.
_SUMMARY_TITLE = re.compile(
    r"\b(?:summary|summari[sz]\w*|summing up|recap\w*|takeaways?|key points|key lessons|key messages|"
    r"wrap[- ]?up|wrapping up|conclusions?|concluding|review|lessons learned|what you(?:'ve| have) learned|"
    r"final thoughts|putting it (?:all )?together|remember)\b",
    re.IGNORECASE,
)

_BLOCK_TAG = re.compile(r"</?(?:p|li|ul|ol|h[1-6]|blockquote|br|div)\b[^>]*>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_NON_WORD = re.compile(r"[^\w\s]")
_LETTER = re.compile(r"[^\W\d_]")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})


def _field_texts(screen: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(kind, visible text) for every learner-visible field, in screen order; kind picks the limit."""
    yield "title", _str(screen.get("title"))
    if _str(screen.get("description")).strip():
        yield "description", _str(screen["description"])
    content = _dict(screen.get("content"))
    kind = screen.get("type")
    if kind == "text":
        for block in _html_blocks(_str(content.get("html"))):
            yield "paragraph", block
    elif kind == "process":
        for step in _dicts(content.get("steps")):
            yield "item", _str(step.get("title"))
            yield "text", _str(step.get("description"))
    elif kind in ("checklist", "list"):
        for item in _dicts(content.get("items")):
            yield "item", _str(item.get("title"))
            if _str(item.get("description")).strip():  # optional in the content model
                yield "text", _str(item["description"])
    elif kind == "flashcards":
        for card in _dicts(content.get("cards")):
            yield "item", _str(card.get("front"))
            yield "text", _str(card.get("back"))
    elif kind == "quiz":
        for q in _dicts(content.get("questions")):
            yield "question", _str(q.get("question"))
            for answer in _dicts(q.get("answers")):
                yield "answer", _str(answer.get("text"))
            feedback = _dict(q.get("feedback"))
            yield "feedback", _str(feedback.get("correct"))
            yield "feedback", _str(feedback.get("incorrect"))
    elif kind == "media":
        for key in ("alt", "caption"):
            if _str(content.get(key)).strip():
                yield "media", _str(content[key])  # often no sentence: not held to unfinished_text


def ends_a_sentence(text: str) -> bool:
    """Does ``text`` end as a sentence ends (a full stop, question or exclamation mark, in any script)?"""
    return bool(_FINISHED.search(text.rstrip()))


def ends_on_a_dangling_word(text: str) -> bool:
    """Does a heading or answer of 2+ words end on a word that needs another ("... and", "... the")?"""
    text = text.strip()
    return " " in text and bool(_DANGLING.search(text))


def _unfinished(fields: list[tuple[str, str]], index: int | None) -> list[Flag]:
    """unfinished_text: at most one flag per screen (one cut usually shows twice)."""
    for field, text in fields:
        text = text.strip()
        if not text:
            continue
        if field in SENTENCE_FIELDS and (not ends_a_sentence(text) or text[0].islower()):
            where = "ends mid-sentence" if not ends_a_sentence(text) else "starts mid-sentence"
            return [Flag("unfinished_text", index, f"{_FIELD_NAMES[field]} {where}: "
                         + _quote(text, max(0, len(text) - 45) if where[0] == "e" else 0, len(text)))]
        if field in ("title", "item", "answer") and ends_on_a_dangling_word(text):
            return [Flag("unfinished_text", index, f"{_FIELD_NAMES[field]} ends on a word that needs another: "
                         + _quote(text, max(0, len(text) - 45), len(text)))]
    return []


def counted_sentences(screen: dict[str, Any]) -> list[str]:
    """The sentences of a screen that the repetition rule counts, in screen order. Headings are
    left out (a later screen may say one in full, a summary may repeat one): the screen title and
    item titles with their own text; so are quiz answers (an answer may restate a point taught
    earlier; quiz_malformed checks that answers are distinct)."""
    headings = _item_headings(screen)
    return [sentence for field, text in _field_texts(screen)
            if field not in ("answer", "title") and not (field == "item" and text in headings)
            for sentence in sentences(text)]


def _item_headings(screen: dict[str, Any]) -> dict[str, int]:
    """Titles of list and process items that have their own text, with how often each occurs: such
    a title is a heading ("Purpose of the app"), which a summary may rightly repeat; a checklist
    line or an item without text is the content itself and counts as a sentence."""
    if screen.get("type") not in ("list", "process"):
        return {}
    key = "steps" if screen.get("type") == "process" else "items"
    counts: dict[str, int] = {}
    for item in _dicts(_dict(screen.get("content")).get(key)):
        if _str(item.get("description")).strip():
            title = _str(item.get("title"))
            counts[title] = counts.get(title, 0) + 1
    return counts


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _html_blocks(markup: str) -> list[str]:
    """What the learner reads of sanitised HTML: one string per block, tags removed, entities decoded."""
    blocks = (html.unescape(_TAG.sub("", part)) for part in _BLOCK_TAG.split(markup))
    return [b for b in (_SPACE.sub(" ", b).strip() for b in blocks) if b]


def visible_texts(screen: dict[str, Any]) -> list[str]:
    """Every learner-visible string of a screen (title, description, content; never correct flags or
    ids) exactly as the player shows it: HTML fields become one string per block with tags stripped
    and entities unescaped; plain-text fields are shown literally, so they are returned as they are."""
    return [text for _kind, text in _field_texts(screen)]


def _norm_sentence(text: str) -> str:
    return _SPACE.sub(" ", _NON_WORD.sub(" ", text.translate(_APOSTROPHES).replace("'", "").lower())).strip()


def sentences(text: str) -> list[str]:
    """Normalised sentences of 5+ words (lower case, punctuation dropped, spaces collapsed): the unit
    of the repetition check."""
    out = []
    for part in _SENTENCE_END.split(text):
        norm = _norm_sentence(part)
        if norm.count(" ") >= 4:
            out.append(norm)
    return out


def _quote(text: str, start: int, end: int) -> str:
    """The match with some context, at most 60 characters."""
    start, end = max(0, start - 15), min(len(text), max(end, start + 15) + 15)
    snippet = _SPACE.sub(" ", text[start:end]).strip()
    return repr(snippet[:57] + "..." if len(snippet) > 60 else snippet)


def _hits(text: str) -> Iterator[tuple[str, str, str]]:
    """(rule, matched phrase lower-cased, quote) for leaked markup and meta-talk in one text."""
    text = text.translate(_APOSTROPHES)
    for m in _MARKUP.finditer(text):
        yield "leaked_markup", m.group().lower(), _quote(text, m.start(), m.end())
    low = text.lower()
    shown = text if len(low) == len(text) else low  # lower() may change the length of rare letters
    for m in _OPENER.finditer(low):
        yield "meta_talk", m.group().strip(), _quote(shown, m.start(), m.end())
    for m in _META.finditer(low):
        if m.start() == 0 or not low[m.start() - 1].isalnum():
            yield "meta_talk", m.group(), _quote(shown, m.start(), m.end())
    for m in _META_UI.finditer(low):
        if m.start() and low[m.start() - 1].isalnum():
            continue
        sentence_start = max(low.rfind(c, 0, m.start()) for c in ".!?\n") + 1
        stops = [i for i in (low.find(c, m.end()) for c in ".!?\n") if i >= 0]
        if not _UI_WORDS.search(low, sentence_start, min(stops, default=len(low))):
            yield "meta_talk", m.group(), _quote(shown, m.start(), m.end())


_WHAT = {"leaked_markup": "markup or prompt text shown to the learner", "meta_talk": "talks about the format, not the topic"}


def _markup_meta(texts: list[str], index: int | None, exempt: set[tuple[str, str]] | None = None) -> list[Flag]:
    """At most one flag per rule and text (one leak often matches twice, e.g. `&lt;source&gt;`)."""
    flags: list[Flag] = []
    for text in texts:
        found: set[str] = set()
        for rule, phrase, quote in _hits(text):
            if rule not in found and (exempt is None or (rule, phrase) not in exempt):
                found.add(rule)
                flags.append(Flag(rule, index, f"{_WHAT[rule]}: {quote}"))
    return flags


def screen_flags(screen: dict[str, Any], index: int | None = None, *, seen: set[str] | None = None) -> list[Flag]:
    """All screen-level rules. `seen` holds the sentences of the screens before this one; this
    screen's sentences are added to it (quiz answers are left out: an answer may rightly restate a
    point taught earlier, and answers are checked for distinctness by quiz_malformed)."""
    fields = list(_field_texts(screen))
    flags = _markup_meta([text for _kind, text in fields], index)
    for _field, text in fields:
        cjk = _CJK.search(text)
        if cjk and len(_LATIN.findall(text)) >= MIXED_SCRIPT_LATIN:
            flags.append(Flag("mixed_script", index, "another script inside Latin text: "
                              + _quote(text, max(0, cjk.start() - 20), cjk.end() + 10)))
            break
    kind = screen.get("type")
    if kind != "quiz" and not any(text.strip() for k, text in fields if k not in ("title", "description")):
        flags.append(Flag("empty_field", index, f"the {kind or 'untyped'} screen has no content"))
    for field, text in fields:
        name = _FIELD_NAMES[field]
        if not text.strip():
            if field not in ("question", "answer", "feedback"):  # quiz_malformed reports these
                flags.append(Flag("empty_field", index, f"blank {name}"))
        elif len(text) > LIMITS[field]:
            flags.append(Flag("overlong_field", index, f"{name} of {len(text)} characters (limit "
                              f"{LIMITS[field]}): {_quote(text, 0, 40)}"))
    flags += _unfinished(fields, index)
    for heading, count in _item_headings(screen).items():
        if count > 1:
            flags.append(Flag("repeated_sentence", index, f"item title repeated in this screen: {_quote(heading, 0, 60)}"))
    here: set[str] = set()
    for sentence in counted_sentences(screen):
        if sentence in here or (seen is not None and sentence in seen):
            where = "in this screen" if sentence in here else "from an earlier screen"
            flags.append(Flag("repeated_sentence", index, f"sentence repeated {where}: {_quote(sentence, 0, 60)}"))
        here.add(sentence)
    if seen is not None:
        seen |= here
    if kind == "quiz":
        flags += _quiz_flags(screen, index)
    return flags


def _quiz_flags(screen: dict[str, Any], index: int | None) -> list[Flag]:
    content = _dict(screen.get("content"))
    questions = _dicts(content.get("questions"))
    if not questions:
        return [Flag("quiz_malformed", index, "the quiz has no questions")]
    flags = []
    for n, q in enumerate(questions, 1):
        answers = _dicts(q.get("answers"))
        texts = [_norm_sentence(_str(a.get("text"))) for a in answers]
        correct = sum(1 for a in answers if a.get("correct") is True)
        feedback = _dict(q.get("feedback"))
        problems = [
            (not _str(q.get("question")).strip(), "has no question text"),
            (len(answers) < 2, f"has {len(answers)} answer(s), needs at least 2"),
            (correct != 1, f"has {correct} correct answers, needs exactly 1"),
            (not all(texts), "has a blank answer"),
            (len(set(texts)) < len(texts), "has two identical answers"),
            (not _str(feedback.get("correct")).strip(), "has no feedback for a correct answer"),
            (not _str(feedback.get("incorrect")).strip(), "has no feedback for a wrong answer"),
        ]
        flags += [Flag("quiz_malformed", index, f"question {n} {what}") for bad, what in problems if bad]
    return flags


def course_flags(content: dict[str, Any], *, require_quiz: bool = True) -> list[Flag]:
    """Every screen's flags (repetition checked across screens) plus the course-level rules."""
    screens = _dicts(content.get("screens"))
    seen: set[str] = set()
    flags = [flag for i, screen in enumerate(screens) for flag in screen_flags(screen, i, seen=seen)]
    types = {s.get("type") for s in screens}
    if len(screens) >= 6 and len(types) < 3:
        flags.append(Flag("type_mix", None, f"{len(screens)} screens use only {len(types)} screen type(s): "
                          + ", ".join(sorted(str(t) for t in types))))
    if require_quiz and len(screens) >= 4 and "quiz" not in types:
        flags.append(Flag("no_quiz", None, f"{len(screens)} screens and no quiz screen"))
    if len(screens) >= 4 and not _SUMMARY_TITLE.search(_str(screens[-1].get("title"))):
        flags.append(Flag("no_summary", None, "the last screen is not a summary: "
                          + _quote(_str(screens[-1].get("title")), 0, 60)))
    return flags


def _norm_text(text: str) -> str:
    return _SPACE.sub(" ", text.translate(_APOSTROPHES)).strip().casefold()


def refine_flags(before: str, after: str, operation: str) -> list[Flag]:
    """Checks on one refine result. Markup and meta-talk already present in `before` (the author's
    own text) are not the model's doing and are not flagged."""
    flags: list[Flag] = []
    if not after.strip():
        return [Flag("empty_field", None, f"{operation} returned no text")]
    a, b = _norm_text(before), _norm_text(after)
    if operation != "fix_grammar" and a == b:
        flags.append(Flag("unchanged", None, f"{operation} returned the text unchanged"))
    if operation == "fix_grammar" and a != b:
        # words first (cheap); three typos in a 13-word sentence already bring words to 0.77, so a
        # rewrite must also move the characters (typo fixes keep >= 0.9, rewrites measured <= 0.78)
        words = difflib.SequenceMatcher(None, a.split(), b.split(), autojunk=False).ratio()
        if words < 0.8:
            chars = difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()
            if chars < 0.85:
                flags.append(Flag("changed", None, f"fix_grammar rewrote the text (similarity: words {words:.2f}, "
                                  f"characters {chars:.2f})"))
    exempt = {(rule, phrase) for rule, phrase, _quote in _hits(before)}
    return flags + _markup_meta([after], None, exempt)


def _shape(screen: dict[str, Any]) -> tuple[Any, ...]:
    """The structure a translation must keep: type, counts of parts, correct flags."""
    content = _dict(screen.get("content"))
    parts: list[Any] = [screen.get("type")]
    for key in ("steps", "items", "cards"):
        parts.append(len(_dicts(content.get(key))))
    parts.append(tuple(tuple(a.get("correct") is True for a in _dicts(q.get("answers")))
                       for q in _dicts(content.get("questions"))))
    if screen.get("type") == "text":
        parts.append(len(_html_blocks(_str(content.get("html")))))
    return tuple(parts)


def translation_flags(source: dict[str, Any], variant: dict[str, Any], index: int | None = None) -> list[Flag]:
    """Checks on one translated screen against its source screen."""
    if _shape(source) != _shape(variant):
        return [Flag("untranslated", index, "the translation changed the screen's structure (type, number of "
                     "items, questions, answers or paragraphs, or which answer is correct)")]
    flags: list[Flag] = []
    src, out = visible_texts(source), visible_texts(variant)
    # a single word may rightly stay as it is (product names, "Outlook", "GDPR")
    kept = [t for s, t in zip(src, out, strict=False)
            if len(s.strip()) >= 5 and " " in s.strip() and _LETTER.search(s) and _norm_text(s) == _norm_text(t)]
    if kept:
        flags.append(Flag("untranslated", index, f"{len(kept)} of {len(src)} texts left in the source language, "
                          f"e.g. {_quote(kept[0], 0, 60)}"))
    exempt = {(rule, phrase) for text in src for rule, phrase, _quote in _hits(text)}
    return flags + _markup_meta(out, index, exempt)

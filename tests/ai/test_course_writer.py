"""The course writer's orchestration (appliance.ai.course_writer): the gate's rewrite loop, the
plan read from a growing outline, type variety and the cross-screen repetition pass. The screens
here are written by plain functions handed to the writer (it takes any screen maker), so every
branch runs deterministically; the model-driven paths are tested through the engine fixture and
the API."""

from __future__ import annotations

from typing import Any

from appliance.ai.course_writer import CourseBrief, _complete_items, _Course, _vary
from appliance.ai.engine import CancelToken, SamplingParams
from appliance.ai.generation import refine_text
from appliance.ai.local import LocalEngine
from appliance.ai.quality import refine_flags

from .conftest import requires_model


def text_screen(html: str, title: str = "Spotting a fake sender") -> dict[str, Any]:
    return {"type": "text", "title": title, "content": {"html": html}}


def writer(retries: int = 2) -> tuple[_Course, list[tuple[str, dict[str, Any] | None]]]:
    events: list[tuple[str, dict[str, Any] | None]] = []
    course = _Course(engine=None, brief=CourseBrief("Phishing", retries=retries),  # type: ignore[arg-type]
                     progress=lambda f, m, d: events.append((m, d)), cancel=CancelToken(), timeout=5.0,
                     count=3, structured=False)
    return course, events


BAD = "<p>Welcome to the 'Spotting a fake sender' screen. In this course you will learn about email.</p>"
GOOD = "<p>Check the sender's address before you click anything in an unexpected email.</p>"


def test_a_screen_that_fails_the_gate_is_written_again_with_a_fresh_seed() -> None:
    course, events = writer()
    seeds: list[int | None] = []

    def make(sampling: SamplingParams, avoid: str | None) -> dict[str, Any]:
        seeds.append(sampling.seed)
        return text_screen(BAD if len(seeds) == 1 else GOOD)

    course.write(0, make)
    assert len(seeds) == 2 and course.regenerated == 1
    assert course.screens[0]["content"]["html"] == GOOD
    assert [m for m, _d in events] == ["screen 1 of 3"]  # delivered once, when it passed


def test_retries_are_bounded_and_what_still_fails_is_kept_to_be_flagged() -> None:
    course, _events = writer(retries=2)
    calls = []

    def make(sampling: SamplingParams, avoid: str | None) -> dict[str, Any]:
        calls.append(1)
        return text_screen(BAD)

    course.write(1, make)
    assert len(calls) == 3  # the first answer and two rewrites
    assert course.screens[1]["content"]["html"] == BAD
    none, _ = writer(retries=0)
    none.write(0, make)
    assert len(calls) == 4  # quality_retries = 0: the first answer only


def test_the_plan_is_read_line_by_line_from_a_growing_outline() -> None:
    outline = ('{"title":"Phishing","objectives":["Spot a fake sender"],"screens":[{"title":"Signs","type":"list",'
               '"objective":1},{"title":"Report it","type":"process","objective":1}],"description":"How to"}')
    seen = [len(_complete_items(outline[:n], "screens")) for n in range(len(outline) + 1)]
    first = outline.index('},{') + 1
    assert seen[first - 1] == 0 and seen[first] == 1  # a line counts the moment its object closes
    assert seen[-1] == 2 and sorted(seen) == seen
    assert _complete_items(outline[:40], "objectives") == []  # the array is not complete yet
    assert _complete_items(outline, "objectives") == ["Spot a fake sender"]


def test_a_third_screen_in_a_row_of_one_type_changes_type() -> None:
    plan: list[dict[str, Any]] = []
    kinds = [_vary(plan, {"title": str(i), "type": "text", "objective": 1})["type"] for i in range(6)]
    assert kinds == ["text", "text", "list", "text", "text", "list"]
    lists: list[dict[str, Any]] = []
    assert [_vary(lists, {"title": "x", "type": "list", "objective": 1})["type"] for _ in range(3)] == \
        ["list", "list", "text"]


def test_a_sentence_a_finished_screen_already_said_makes_the_screen_be_written_again() -> None:
    course, _events = writer()
    said = "Check the sender's address before you click anything in an unexpected email."
    course.write(0, lambda sampling, avoid: text_screen(f"<p>{said}</p>"))
    asked_to_avoid: list[str | None] = []

    def make(sampling: SamplingParams, avoid: str | None) -> dict[str, Any]:
        asked_to_avoid.append(avoid)
        first = len(asked_to_avoid) == 1
        return text_screen(f"<p>{said}</p>" if first else "<p>Report a suspicious message to the service desk.</p>",
                           "Reporting")

    course.write(1, make)
    assert asked_to_avoid[0] is None and asked_to_avoid[1] is not None
    assert said.lower().rstrip(".").replace("'", "") in asked_to_avoid[1].replace("'", "")
    assert "Report a suspicious" in course.screens[1]["content"]["html"]
    quiz = {"type": "quiz", "title": "Check", "content": {"questions": []}}
    assert course._already_said(quiz) == []  # a quiz may restate what was taught


def test_a_repeated_sentence_is_dropped_without_a_rewrite_where_the_paragraph_says_more() -> None:
    course, _events = writer()
    said = "Check the sender's address before you click anything in an unexpected email."
    course.write(0, lambda sampling, avoid: text_screen(f"<p>{said}</p>"))
    calls: list[str | None] = []

    def make(sampling: SamplingParams, avoid: str | None) -> dict[str, Any]:
        calls.append(avoid)
        return text_screen(f"<p>Fake links hide their target. {said}</p>", "Links")

    course.write(1, make)
    assert calls == [None] and course.regenerated == 0
    assert course.screens[1]["content"]["html"] == "<p>Fake links hide their target.</p>"


def test_headings_said_again_cost_no_rewrite() -> None:
    """The writer counts repetition as the gate does: an earlier screen title said in full, or a
    summary's item heading restating an earlier sentence, is no repeated sentence."""
    course, _events = writer()
    course.write(0, lambda sampling, avoid: text_screen("<p>Urgency is the oldest trick in phishing emails.</p>",
                                                        "Learn how to report a phishing email"))
    calls: list[str | None] = []

    def make(sampling: SamplingParams, avoid: str | None) -> dict[str, Any]:
        calls.append(avoid)
        return {"type": "list", "title": "Key takeaways", "content": {"items": [
            {"title": "Urgency is the oldest trick in phishing emails", "description": "Slow down when rushed."},
            {"title": "Reporting", "description": "Learn how to report a phishing email."}]}}

    course.write(1, make)
    assert calls == [None] and course.regenerated == 0


@requires_model
def test_fix_grammar_on_clean_text_returns_it_unchanged(engine: LocalEngine) -> None:
    clean = "Lock your screen whenever you leave your desk."
    result = refine_text(engine, clean, "fix_grammar", timeout=120)
    assert result == clean or not refine_flags(clean, result, "fix_grammar")
    long = ("Always lock your computer screen whenever you step away from your desk, even for a short moment, "
            "because anyone passing by could read or change your work.")
    shorter = refine_text(engine, long, "shorten", timeout=120)
    assert shorter.strip() and shorter.strip() != long  # refined, not the input back


def test_a_planned_screen_that_repeats_the_frame_takes_its_objective_as_subject() -> None:
    from appliance.ai.course_writer import _reframe

    goals = ["recognise a phishing email.", "Report it the right way"]
    plan: list[dict[str, Any]] = []
    for title in ("Introduction", "Conclusion", "Key Takeaways", "Quiz: phishing", "Next steps"):
        plan.append(_reframe({"title": title, "type": "text", "objective": 2}, goals, plan))
    titles = [p["title"] for p in plan]
    assert titles[:4] == ["In practice: report it the right way", "Common mistakes: report it the right way",
                          "Examples: report it the right way", "Step by step: report it the right way"]
    assert [p["type"] for p in plan[:4]] == ["checklist", "list", "flashcards", "process"]
    assert len(set(titles[:4])) == 4  # never the same title twice while angles are left
    assert _reframe({"title": "Introduction", "type": "text", "objective": 1}, goals, [])["title"] == \
        "In practice: recognise a phishing email"
    kept = {"title": "Spotting a fake sender", "type": "list", "objective": 1}
    assert _reframe(kept, goals, plan) is kept
    # the goal cut to 60 characters at a word ends on a word that needs another: that word goes
    # (written by Qwen2.5-1.5B, bench breakdown 2026-12-03)
    verify = ["Verify the sender's identity before clicking on any link or attachment in an email"]
    assert _reframe({"title": "Conclusion", "type": "text", "objective": 1}, verify, [])["title"] == \
        "In practice: verify the sender's identity before clicking on any link"


def test_a_screen_is_written_at_the_priority_it_is_given_rewrites_included() -> None:
    from appliance.ai.course_writer import OPENING_PRIORITY, URGENT

    assert OPENING_PRIORITY < URGENT < 0  # the opening screen ahead of the plan, the plan ahead of the rest
    course, _events = writer()
    priorities: list[int] = []

    def make(sampling: SamplingParams, avoid: str | None) -> dict[str, Any]:
        priorities.append(sampling.priority)
        return text_screen(BAD if len(priorities) == 1 else GOOD)

    course.write(0, make, priority=OPENING_PRIORITY)
    other = "<p>Report a suspicious message to the service desk.</p>"
    course.write(1, lambda sampling, avoid: priorities.append(sampling.priority) or text_screen(other, "Reporting"))
    assert priorities == [OPENING_PRIORITY, OPENING_PRIORITY, 0]


@requires_model
def test_the_knowledge_check_writes_its_questions_at_once(engine: LocalEngine) -> None:
    """One request per objective, decoded together (steps of two sequences), one quiz screen."""
    from collections import Counter

    from appliance.ai.generation import generate_quiz_at_once

    decoder = engine._decoder
    assert decoder is not None
    before = Counter(decoder.widths)
    quiz = generate_quiz_at_once(engine, "Phishing awareness. Objectives: (1) Spot a fake sender (2) Report it",
                                 ["Ask about this objective: Spot a fake sender",
                                  "Ask about this objective: Report it"], "Check your understanding",
                                 timeout=300, sampling=SamplingParams(seed=11))
    together = sum(n - before[k] for k, n in decoder.widths.items() if k >= 2)
    assert together > 10, dict(decoder.widths)
    assert quiz["type"] == "quiz" and quiz["title"] == "Check your understanding"
    questions = quiz["content"]["questions"]
    # one question per objective; one that still fails the gate after its retries is left out
    # (good_questions), which the small test model can make happen
    assert 1 <= len(questions) <= 2 and [q["id"] for q in questions] == list(range(1, len(questions) + 1))
    assert all(sum(a["correct"] for a in q["answers"]) == 1 for q in questions)



def test_a_question_that_fails_the_gate_on_its_own_is_found() -> None:
    """generate_quiz_at_once asks such a question again on its own, not the whole quiz (written by
    Qwen2.5-1.5B in bench/course.py, 2026-12-03: an answer and a feedback cut by their length caps)."""
    from appliance.ai.generation import FEEDBACK_CHARS, failing_questions

    def q(answers: list[str], feedback: str = "Yes: a mismatched address is the clearest sign.") -> dict[str, Any]:
        return {"question": "Which sign shows that a sender is fake?", "answers": answers, "correct": 0,
                "feedback_correct": feedback, "feedback_incorrect": "No: check the address, not the name."}

    good = q(["A mismatched address", "A long email", "A polite greeting"])
    cut_answer = q(["A message that looks like it's from a trusted source but", "A long email", "A greeting"])
    one_long_sentence = ("Phishing is the practice of sending emails or messages that appear to come from a "
                         "trusted sender, such as your bank, your manager or the service desk, in order to "
                         "trick you into revealing your password, your card number, the codes your bank sends "
                         "you or any other sensitive data that lets them act in your name")
    assert len(one_long_sentence) > FEEDBACK_CHARS
    cut_feedback = q(["A mismatched address", "A long email", "A polite greeting"], one_long_sentence[:FEEDBACK_CHARS])
    twice = q(["A mismatched address", "A mismatched address", "A polite greeting"])
    # the answer cut after "but" loses the word; the feedback has no whole sentence to keep
    assert failing_questions([good, cut_answer, good, cut_feedback, twice]) == [3, 4]


def test_a_question_that_repeats_an_earlier_one_is_found() -> None:
    """generate_quiz_at_once asks such a question again, told which sentences to avoid."""
    from appliance.ai.generation import repeated_in_question

    first = {"question": "Which sign shows that a sender is fake?", "answers": ["a", "b", "c"], "correct": 0,
             "feedback_correct": "Right: a mismatched address is the clearest sign.",
             "feedback_incorrect": "A mismatched address is the clearest sign of a fake sender."}
    second = {"question": "What do you do with a suspicious email?", "answers": ["a", "b", "c"], "correct": 1,
              "feedback_correct": "Yes, report it to the security team at once.",
              "feedback_incorrect": "A mismatched address is the clearest sign of a fake sender."}
    assert repeated_in_question([first], second) == ["a mismatched address is the clearest sign of a fake sender"]
    second["feedback_incorrect"] = "Report it: the security team can warn everyone else."
    assert repeated_in_question([first], second) == []


def test_questions_still_failing_after_their_retries_are_left_out_while_one_remains() -> None:
    """Written by Qwen2.5-1.5B in bench/course.py, 2026-12-03: after every retry two questions still
    had identical answers and one asked again what an earlier one asked."""
    from appliance.ai.generation import good_questions

    def q(question: str, answers: list[str]) -> dict[str, Any]:
        return {"question": question, "answers": answers, "correct": 0,
                "feedback_correct": f"Yes: {answers[0].lower()} is the safe choice.",
                "feedback_incorrect": f"No: the answer is {answers[0].lower()}."}

    good = q("A caller asks for your password to fix your account. What do you do?",
             ["Refuse and report the call", "Give it to them", "Ask them to email"])
    twice = q("Which sign shows that a sender is fake?", ["A mismatched address", "A mismatched address", "A logo"])
    again = q("A caller asks for your password to fix your account. What do you do?",
              ["Hang up and report it", "Tell them", "Call back later"])
    assert good_questions([good, twice, again]) == [good]
    assert good_questions([twice, twice]) == [twice, twice]  # none good: kept, and the gate flags them


def test_the_plan_passes_over_frame_like_and_repeated_titles_while_it_has_spares() -> None:
    from appliance.ai.course_writer import _PlanReader

    lines = [{"title": "Introduction to phishing", "type": "text", "objective": 1},
             {"title": "Spotting a fake sender", "type": "list", "objective": 1},
             {"title": "Spotting a fake sender", "type": "process", "objective": 1},
             {"title": "Flashcards on phishing terms", "type": "flashcards", "objective": 2},
             {"title": "Reporting a suspicious email", "type": "process", "objective": 2}]
    reader = _PlanReader(count=2, spare=3)
    assert reader.take(lines[:2]) == [lines[1]]
    assert not reader.full
    assert reader.take(lines) == [lines[4]]  # lines 2 and 3 passed over, line 4 taken
    assert reader.full and reader.taken == [lines[1], lines[4]]
    several = _PlanReader(count=3, spare=0)
    assert several.numbered(several.take(lines[:3])) == [(0, lines[0]), (1, lines[1]), (2, lines[2])]


def test_what_was_passed_over_fills_a_plan_that_ran_short() -> None:
    from appliance.ai.course_writer import _PlanReader

    lines = [{"title": "Overview", "type": "text", "objective": 1},
             {"title": "Spotting a fake sender", "type": "list", "objective": 1}]
    reader = _PlanReader(count=3, spare=3)
    assert reader.take(lines) == [lines[1]]
    fresh = [{"title": "Spotting a fake sender", "type": "list", "objective": 1},
             {"title": "Reporting it", "type": "process", "objective": 2}]
    assert reader.fill(fresh) == [lines[0], fresh[1]]  # the passed-over line (reframed later), a new title
    assert reader.full


def test_without_spares_every_line_is_taken_as_planned() -> None:
    from appliance.ai.course_writer import _PlanReader

    lines = [{"title": "Overview", "type": "text", "objective": 1},
             {"title": "Overview", "type": "list", "objective": 1}]
    reader = _PlanReader(count=2, spare=0)
    assert reader.take(lines) == lines


def test_a_child_token_is_cancelled_with_its_parent_but_not_the_other_way() -> None:
    parent = CancelToken()
    child = parent.child()
    child.cancel()
    assert child.cancelled and not parent.cancelled
    other = parent.child()
    parent.cancel()
    assert other.cancelled


def test_plan_titles_are_plain_headings_that_end_at_a_whole_word() -> None:
    from appliance.ai.course_writer import PLAN_TITLE_MAX, _PlanReader

    long = "Understand the importance of listening actively when receiving and giving feedback to your team"
    cut = long[:PLAN_TITLE_MAX]  # what the grammar's length bound leaves: a word cut in two
    reader = _PlanReader(count=3, spare=0)
    taken = reader.take([{"title": "In practice: <source>in place.</source> Now </", "type": "text", "objective": 1},
                         {"title": cut, "type": "list", "objective": 1},
                         {"title": "Phishing attacks can be used for financial gain, identity theft, or",
                          "type": "text", "objective": 1}])
    assert taken[0]["title"] == "In practice: in place. Now"
    assert taken[2]["title"] == "Phishing attacks can be used for financial gain, identity theft"
    heading = taken[1]["title"]
    assert long.startswith(heading) and long[len(heading)] == " " and len(heading) < len(cut)


def test_failing_and_repeating_questions_are_asked_again_in_one_round() -> None:
    """Asked again in separate rounds, one after another, they ended some courses."""
    from appliance.ai.generation import questions_to_ask_again

    def q(question: str, answers: list[str], feedback: str) -> dict[str, Any]:
        return {"question": question, "answers": answers, "correct": 0, "feedback_correct": feedback,
                "feedback_incorrect": f"No: the answer is {answers[0].lower()}."}

    first = q("A caller asks for your password. What do you do?", ["Refuse and report it", "Give it", "Email it"],
              "Refusing protects your account from the caller.")
    twice = q("Which sign shows that a sender is fake?", ["A mismatched address", "A mismatched address", "A logo"],
              "A mismatched address gives the sender away.")
    repeating = q("What do you do when someone calls for your login?", ["Refuse it", "Share it", "Wait"],
                  "Refusing protects your account from the caller.")
    assert questions_to_ask_again([first, twice, repeating]) == {
        1: None, 2: ["refusing protects your account from the caller"]}
    assert questions_to_ask_again([first]) == {}
    assert questions_to_ask_again([first, twice, repeating], repeats=False) == {1: None}  # later rounds

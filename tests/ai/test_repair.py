"""Deterministic repairs before the gate (appliance.ai.repair): a sentence said before is dropped
where its field says more, and kept where it is all the field says."""

from __future__ import annotations

from appliance.ai.generation import ANSWER_CHARS, ITEM_TEXT_CHARS, _quiz_screen, screen_content
from appliance.ai.quality import screen_flags
from appliance.ai.repair import (
    NEAR_CAP,
    cut_to_sentence,
    drop_repeated_feedback,
    drop_repeated_sentences,
    finish_answers,
    strip_tags,
)
from appliance.courses.validate import paragraphs_to_html

RULE = "Check the sender's address before you open any link in an email."


def test_a_feedback_sentence_said_before_in_the_quiz_is_dropped_where_the_feedback_says_more() -> None:
    definition = "Phishing is a type of attack where someone pretends to be a trusted sender."
    first = {"question": "What is phishing?", "answers": ["a", "b", "c"], "correct": 0,
             "feedback_correct": f"Right. {definition}",
             "feedback_incorrect": f"The answer is a. {definition}"}
    second = {"question": "What do you do with a suspicious email?", "answers": ["a", "b", "c"], "correct": 1,
              "feedback_correct": definition,  # all it says: kept (the gate reports it)
              "feedback_incorrect": f"Report it to the security team. {definition}"}
    fixed = drop_repeated_feedback([first, second])
    assert fixed[0]["feedback_correct"] == f"Right. {definition}"
    assert fixed[0]["feedback_incorrect"] == "The answer is a."
    assert fixed[1]["feedback_correct"] == definition
    assert fixed[1]["feedback_incorrect"] == "Report it to the security team."
    assert first["feedback_incorrect"].endswith(definition)  # the input is left as it was
    quiz = {"type": "quiz", "title": "Check", "content": {"questions": [
        {"id": i + 1, "question": q["question"], "answers": [{"id": 1, "text": "a", "correct": True},
                                                             {"id": 2, "text": "b", "correct": False}],
         "feedback": {"correct": q["feedback_correct"], "incorrect": q["feedback_incorrect"]}}
        for i, q in enumerate(fixed[:1])]}}
    assert screen_flags(quiz) == []


def test_a_text_screen_loses_a_sentence_an_earlier_screen_said_and_keeps_the_rest() -> None:
    earlier = {"type": "text", "title": "Spotting fakes", "content": {"html": paragraphs_to_html([RULE])}}
    seen: set[str] = set()
    assert screen_flags(earlier, 0, seen=seen) == []
    screen = {"type": "text", "title": "Links", "content": {"html": paragraphs_to_html(
        [f"Links can hide a fake address & more. {RULE}", RULE])}}
    fixed = drop_repeated_sentences(screen, seen)
    # the first paragraph keeps what is new; the second is only the rule, so it stays for the gate
    assert fixed["content"]["html"] == f"<p>Links can hide a fake address &amp; more.</p><p>{RULE}</p>"
    assert screen["content"]["html"].count(RULE) == 2  # the input is left as it was


def test_list_descriptions_lose_repeats_but_a_one_sentence_field_is_kept() -> None:
    seen: set[str] = set()
    screen_flags({"type": "text", "title": "A", "content": {"html": paragraphs_to_html([RULE])}}, 0, seen=seen)
    screen = {"type": "list", "title": "Signs", "content": {"items": [
        {"title": "Sender", "description": f"Fakes copy real names. {RULE}"},
        {"title": "Again", "description": RULE},
    ]}}
    fixed = drop_repeated_sentences(screen, seen)
    assert [i["description"] for i in fixed["content"]["items"]] == ["Fakes copy real names.", RULE]


def test_a_checklist_line_said_before_goes_while_two_lines_remain() -> None:
    seen: set[str] = set()
    screen_flags({"type": "text", "title": "A", "content": {"html": paragraphs_to_html([RULE])}}, 0, seen=seen)
    lines = ["Report a suspicious email to the security team.", RULE, "Delete the email after you report it."]
    checklist = {"type": "checklist", "title": "Do", "content": {"items": [{"title": t} for t in lines]}}
    fixed = drop_repeated_sentences(checklist, seen)
    assert [i["title"] for i in fixed["content"]["items"]] == [lines[0], lines[2]]
    assert screen_flags(fixed, 1, seen=set(seen)) == []
    short = {"type": "checklist", "title": "Do", "content": {"items": [{"title": t} for t in lines[:2]]}}
    assert [i["title"] for i in drop_repeated_sentences(short, seen)["content"]["items"]] == lines[:2]
    twice = {"type": "checklist", "title": "Do", "content": {"items": [{"title": t} for t in [*lines, lines[0]]]}}
    assert [i["title"] for i in drop_repeated_sentences(twice, set())["content"]["items"]] == lines


def test_tags_a_model_copied_into_its_text_are_removed_before_the_gate() -> None:
    # what Qwen2.5-1.5B wrote into a text screen of the quality benchmark (bench/results-quality.json)
    raw = {"paragraphs": ["<source>Identify the type of load before you lift it safely.</p>",
                          "Follow these steps:<br><br>1. Inspect the load. If a < b, ask for help."]}
    content = screen_content("text", raw)
    assert content["html"] == ("<p>Identify the type of load before you lift it safely.</p>"
                               "<p>Follow these steps: 1. Inspect the load. If a &lt; b, ask for help.</p>")
    assert screen_flags({"type": "text", "title": "Loads", "content": content}) == []
    assert strip_tags({"items": [{"title": "Sender <b>name</b>", "n": 3}]}) == {"items": [{"title": "Sender name", "n": 3}]}
    assert raw["paragraphs"][0].startswith("<source>")  # the input is left as it was


def test_text_a_length_cap_cut_is_cut_back_to_whole_sentences() -> None:
    # what Qwen2.5-1.5B wrote into a 10-screen course (bench/course.py, 2026-12-03): the grammar's
    # length caps cut a description, and a paragraph in the middle of a word
    raw = {"paragraphs": ["Phishing tricks you into sharing passwords. These attempts can be used to ext",
                          "end the victim's computer system. Be cautious with unknown senders."]}
    content = screen_content("text", raw)
    assert content["html"] == "<p>Phishing tricks you into sharing passwords.</p><p>Be cautious with unknown senders.</p>"
    assert screen_flags({"type": "text", "title": "Phishing", "content": content}) == []
    at_cap = ("Callers use fraudulent numbers that look like your bank's, your manager's or the service desk's, and "
              "they press you to act at once, to trick you into giving away your personal data, your card number, "
              "your one-time codes or the answers to your security questions")[:ITEM_TEXT_CHARS]
    assert len(at_cap) == ITEM_TEXT_CHARS
    listed = screen_content("list", {"items": [
        {"title": "Emails", "description": "Fakes look real. They contain malicious links or attachments that can "},
        {"title": "Calls", "description": at_cap},
        {"title": "Signs of phishing in emails and", "description": "Urgency is the commonest sign"}]})
    assert [i["description"] for i in listed["items"]] == [
        "Fakes look real.", at_cap, "Urgency is the commonest sign."]  # the model ended it: its full stop added
    assert listed["items"][2]["title"] == "Signs of phishing in emails"
    assert [f.rule for f in screen_flags({"type": "list", "title": "Kinds", "content": listed})] == ["unfinished_text"]
    assert cut_to_sentence("Use a vault, e.g. a password manager and") == "Use a vault, e.g. a password manager and"
    assert cut_to_sentence("Lock your screen. Always.") == "Lock your screen. Always."
    assert raw["paragraphs"][0].endswith("to ext")  # the input is left as it was


def test_quiz_answers_lose_their_own_labels_and_the_tail_the_cap_cut() -> None:
    # what Qwen2.5-1.5B wrote into knowledge checks (bench quiz runs, 2026-12-03): answers lettered
    # "A." to "C." (the player shows its own letters), and answers cut by ANSWER_CHARS
    lettered = ["A. A type of computer attack where attackers trick users into divulge,",
                "B. A form of social engineering", "C. A method of gaining access"]
    assert finish_answers(lettered, ANSWER_CHARS) == [
        "A type of computer attack where attackers trick users into divulge",
        "A form of social engineering", "A method of gaining access"]
    cut = ["Phishing involves sending emails or websites with deceptive content to",
           "Phishing emails often contain links or attachments that lead to", "Report it to IT"]
    assert all(len(a) >= ANSWER_CHARS - NEAR_CAP for a in cut[:2])
    assert finish_answers(cut, ANSWER_CHARS) == [
        "Phishing involves sending emails or websites with deceptive content",
        "Phishing emails often contain links or attachments that lead", "Report it to IT"]
    # a short answer was ended by the model: only a dangling word goes; one label alone is content
    assert finish_answers(["Plan 2. Report it to", "Delete it and", "Forward it"], ANSWER_CHARS) == [
        "Plan 2. Report it to", "Delete it", "Forward it"]
    assert finish_answers(["A. Report it", "Delete it", "Forward it"], ANSWER_CHARS)[0] == "A. Report it"
    quiz = _quiz_screen([{"question": "What is phishing?", "answers": lettered, "correct": 0,
                          "feedback_correct": "Right.", "feedback_incorrect": "It is A."}], "Check")
    assert [a["text"] for a in quiz["content"]["questions"][0]["answers"]][1] == "A form of social engineering"

"""The quality gate (appliance.ai.quality): every rule with inputs that must fail and inputs that must
pass, shaped like the content model and taken from real small-model failures. No model needed."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest

from appliance.ai.quality import (
    LIMITS,
    RULES,
    Flag,
    course_flags,
    refine_flags,
    screen_flags,
    sentences,
    translation_flags,
    visible_texts,
)
from appliance.courses.validate import paragraphs_to_html, validate_content


def text(title: str, *paragraphs: str) -> dict[str, Any]:
    return {"type": "text", "title": title, "content": {"html": paragraphs_to_html(list(paragraphs))}}


def items(kind: str, title: str, *entries: tuple[str, str] | str) -> dict[str, Any]:
    if kind == "checklist":
        return {"type": kind, "title": title, "content": {"items": [{"title": e} for e in entries]}}
    key, fields = {"list": ("items", ("title", "description")), "process": ("steps", ("title", "description")),
                   "flashcards": ("cards", ("front", "back"))}[kind]
    return {"type": kind, "title": title, "content": {key: [dict(zip(fields, e, strict=True)) for e in entries]}}


def question(q: str, answers: list[str], correct: int, good: str = "Yes, that keeps the data safe.",
             bad: str = "Not quite: think about who could be listening.") -> dict[str, Any]:
    return {"id": 1, "question": q, "answers": [{"id": i + 1, "text": a, "correct": i == correct}
                                                for i, a in enumerate(answers)],
            "feedback": {"correct": good, "incorrect": bad}}


def quiz(*questions: dict[str, Any], title: str = "Check your understanding") -> dict[str, Any]:
    return {"type": "quiz", "title": title, "scored": True, "passing_grade": 50,
            "content": {"questions": list(questions)}}


GOOD_QUIZ = quiz(
    question("A caller asks for a customer's address but cannot answer the security questions. What do you do?",
             ["Politely refuse and explain the process", "Give the address if they sound genuine",
              "Ask a colleague to decide"], 0),
    question("Where should you write down a customer's card number?",
             ["On a sticky note", "Nowhere: enter it only in the payment system", "In an email to yourself"], 1,
             good="Right: card numbers go only into the payment system.",
             bad="Card numbers must never be written down or emailed."),
)


def good_course() -> dict[str, Any]:
    """Ten screens a learning designer would keep: five types, a quiz, a summary at the end."""
    screens = [
        text("Why personal data matters",
             "Every call you take involves information that belongs to a real person.",
             "Names, addresses and account numbers can be used for fraud if they reach the wrong hands."),
        items("list", "Kinds of personal data",
              ("Contact details", "Name, address, phone number and email address."),
              ("Financial details", "Card numbers, bank accounts and payment history."),
              ("Special categories", "Health, religion or ethnicity need extra care.")),
        items("process", "Verifying a caller",
              ("Ask for the account number", "Match it against the customer record before going further."),
              ("Ask two security questions", "Use the questions stored on the account, never ones you invent."),
              ("Record the check", "Note in the call log that the identity was confirmed.")),
        items("checklist", "Before you share any details",
              "The caller passed both security questions",
              "The request fits the reason for the call",
              "Nobody nearby can overhear the conversation"),
        items("flashcards", "Key terms",
              ("Data subject", "The person the information is about."),
              ("Data breach", "Any loss, theft or unauthorised sharing of personal data."),
              ("Social engineering", "Tricking staff into handing over information or access.")),
        text("Spotting social engineering",
             "Fraudsters often sound urgent, friendly or senior to rush you past the usual checks.",
             "If a caller pushes you to skip a step, slow down and follow the process anyway."),
        items("list", "Keeping your desk clear",
              ("Lock your computer", "Press Windows+L whenever you leave your seat."),
              ("No paper notes", "Shred anything with customer details at the end of each shift."),
              ("Headset volume", "Keep it low so neighbouring agents cannot hear the caller.")),
        items("process", "Reporting a breach",
              ("Stop and contain", "End the disclosure as soon as you notice it."),
              ("Tell your team leader", "Report within the hour, even if you are unsure."),
              ("Write it down", "Describe what was shared, with whom, and when.")),
        GOOD_QUIZ,
        items("checklist", "Key takeaways",
              "Confirm identity before discussing any account",
              "Share only what the call requires",
              "Report a suspected breach straight away"),
    ]
    return validate_content({"screens": screens})


def rules(flags: list[Flag]) -> list[str]:
    return [f.rule for f in flags]


# ---------------------------------------------------------------- the whole course

def test_a_good_course_passes_with_no_flags() -> None:
    assert course_flags(good_course()) == []


def test_flags_use_known_rules_and_short_details() -> None:
    course = good_course()
    course["screens"][0]["content"]["html"] = paragraphs_to_html(["<source>" + "Customer personal data " * 20])
    course["screens"][1]["title"] = "x" * 500
    flags = course_flags(course)
    assert flags and all(f.rule in RULES for f in flags)
    assert all(len(f.detail) < 160 for f in flags), flags
    assert all(f.screen in (0, 1) for f in flags)


# ---------------------------------------------------------------- leaked_markup

LEAKS = [
    "&lt;source&gt;Customer personal data must be kept safe.",         # escaped prompt fence (seen in issue 10)
    "<source>Customer personal data must be kept safe.",
    "Customer data must be kept safe.</source>",
    '{"paragraphs": ["Customer data must be kept safe.',                 # the JSON format bleeding through
    'Keep customer data safe.", "title": "Next',
    'Keep customer data \\"safe\\" at all times.',
    "Keep customer data safe.\\nLock your screen.",
    "<p>Keep customer data safe.</p>",
    "<|im_start|>assistant Keep customer data safe.",
    "assistant: Keep customer data safe.",
    "```json Keep customer data safe.",
    "**Important:** keep customer data safe.",
    "Title: Keeping customer data safe",
    "Keep data safe (audience: call-centre staff, tone: professional).",
    "Keep customer data safe &amp;amp; secure.",
    # a knowledge-check answer that ran on into the next keys (Qwen2.5-1.5B, 2026-12-03)
    "feedback_correct':'Phishing is an attempt to steal personal information",
]

CLEAN = [
    "Phishing emails often pretend to come from your bank.",
    'Remember the acronym "STOP": stop, think, observe, proceed.',
    "Never share more than 3 < 4 details; the limit is > 2 for a reason.",
    "Save files under C:\\new projects only.",
    "Know your audience: adapt your message to the person in front of you.",
    "Use the Q&A channel for questions.",
    "Give feedback that is correct and kind; incorrect feedback confuses.",
]


@pytest.mark.parametrize("leak", LEAKS)
def test_leaked_markup_fails_in_text_and_plain_fields(leak: str) -> None:
    assert "leaked_markup" in rules(screen_flags(text("Protecting data", leak), 3))
    checklist = items("checklist", "Protecting data", leak, "Lock your computer")
    assert Flag("leaked_markup", 3, "") in [Flag(f.rule, f.screen, "") for f in screen_flags(checklist, 3)]


@pytest.mark.parametrize("clean", CLEAN)
def test_leaked_markup_passes_clean_text(clean: str) -> None:
    assert "leaked_markup" not in rules(screen_flags(text("Protecting data", clean)))
    assert "leaked_markup" not in rules(screen_flags(items("checklist", "Protecting data", clean, "Lock up")))


def test_leaked_markup_in_quiz_answer_and_feedback() -> None:
    bad = quiz(question("Where do card numbers go?", ["<source>The payment system", "A sticky note"], 0))
    assert "leaked_markup" in rules(screen_flags(bad))
    bad = quiz(question("Where do card numbers go?", ["The payment system", "A sticky note"], 0,
                        good='{"feedback_correct": "Right"}'))
    assert "leaked_markup" in rules(screen_flags(bad))
    assert "leaked_markup" not in rules(screen_flags(GOOD_QUIZ))


def test_one_leak_gives_one_flag_per_field() -> None:
    flags = screen_flags(text("Protecting data", "&lt;source&gt;Customer personal data&lt;/source&gt; matters."))
    assert rules(flags) == ["leaked_markup"]


# ---------------------------------------------------------------- meta_talk

META = [
    "Welcome to the 'Identifying Potential Risks' screen. Risks are everywhere.",   # issue 10, real output
    "Welcome to the Identifying Potential Risks screen!",
    "In this course you will learn how to handle personal data.",
    "This screen explains why passwords matter.",
    "In this screen, we will discuss the warning signs of phishing.",
    "By the end of this module, you can spot a phishing email.",
    "In this section we look at reporting.",
    "Sure, here is the content for the screen.",
    "Here is the JSON for the checklist.",
    "As an AI, I cannot judge which emails are safe.",
    "I will now write three paragraphs about phishing.",
    "I have corrected the grammar of the text.",
    "According to the text, phishing is common.",
    "This screen serves the objective of spotting phishing.",
    "The learning objective is to report incidents.",
    "The prompt asks for a course about phishing.",
    "In the next slide we look at passwords.",
    "Let's dive into the world of phishing.",
    "We will explore the main types of phishing.",
    "The following JSON lists the steps.",
    "This quiz screen tests what you know.",
    "A 10-screen course on handling personal data.",                  # the outline prompt in a title
    "Sure! Phishing is a common threat.",
    "Certainly. Phishing emails often look urgent.",
]

TOPIC = [
    "Phishing emails often pretend to come from your bank.",
    "Here are three warning signs to watch for.",
    "I will report suspicious emails to the service desk.",          # a first-person checklist item
    "I lock my screen whenever I leave my desk.",
    "Of course, never share your password with anyone.",
    "On this screen, click Save to keep your changes.",             # a software course's user interface
    "Follow the prompt to reset your password.",
    "The next page of the form asks for your manager's name.",
    "Over the course of a shift, take regular breaks.",
    "Welcome new starters to the team on their first day.",
    "Keep every resource text in the shared folder.",                 # "source text" inside a word
    "Make sure, before you click, that the sender is genuine.",
]


@pytest.mark.parametrize("sentence", META)
def test_meta_talk_fails(sentence: str) -> None:
    assert "meta_talk" in rules(screen_flags(text("Phishing", sentence)))
    assert "meta_talk" in rules(screen_flags(items("list", "Phishing", ("Warning signs", sentence))))


@pytest.mark.parametrize("sentence", TOPIC)
def test_meta_talk_passes_topic_text(sentence: str) -> None:
    assert "meta_talk" not in rules(screen_flags(text("Phishing", sentence)))
    assert "meta_talk" not in rules(screen_flags(items("checklist", "Phishing", sentence, "Lock up")))


def test_meta_talk_in_a_quiz_question_and_a_title() -> None:
    bad = quiz(question("What did you learn in this module about card numbers?", ["They are secret", "Nothing"], 0))
    assert "meta_talk" in rules(screen_flags(bad))
    assert "meta_talk" in rules(screen_flags(text("Welcome to the Course Screen", "Data is valuable.")))


# ---------------------------------------------------------------- unfinished_text

@pytest.mark.parametrize("screen", [
    text("Phishing", "Attackers want your passwords or credit card"),           # cut by a length cap
    text("Phishing", "Attackers want your passwords.", "end the victim's computer."),  # the tail of a cut
    items("list", "Kinds", ("Emails", "Fakes contain links that can ")),
    items("process", "How it works", ("Phishing is a type of attack where attackers", "send fake emails.")),
    items("checklist", "Before you click", "Check the sender and", "Hover over the link."),
    quiz(question("What do you do first?", ["Report it", "Delete it"], 0, good="Yes, report it so the")),
])
def test_unfinished_text_fails(screen: dict[str, Any]) -> None:
    assert rules(screen_flags(screen)) == ["unfinished_text"]


def test_unfinished_text_passes_whole_sentences_and_headings() -> None:
    assert screen_flags(text("What to watch out for", "Attackers want your passwords!", "Ask: is it real?")) == []
    assert screen_flags(items("process", "Report it", ("Forward the email", "Send it to the service desk (ext. 2222)."))) == []
    assert screen_flags(text("Datenschutz", "Schützen Sie Kundendaten.")) == []
    assert screen_flags(text("报告", "在 Outlook 中报告可疑邮件。")) == []
    photo = {"type": "media", "title": "Lifting", "content": {"alt": "A worker lifting a box with a straight back"}}
    assert screen_flags(photo) == []  # an image's text is often no sentence


# ---------------------------------------------------------------- repeated_sentence

def test_repeated_sentence_across_screens_fails() -> None:
    course = good_course()
    course["screens"][5]["content"]["html"] = paragraphs_to_html(
        ["Every call you take involves information that belongs to a real person."])
    flags = course_flags(course)
    assert [(f.rule, f.screen) for f in flags] == [("repeated_sentence", 5)]
    assert "earlier screen" in flags[0].detail


def test_repeated_sentence_ignores_case_spacing_and_punctuation() -> None:
    seen: set[str] = set()
    assert screen_flags(text("A", "Always lock your computer before you leave."), 0, seen=seen) == []
    flags = screen_flags(text("B", "Always  LOCK your computer before you leave!"), 1, seen=seen)
    assert rules(flags) == ["repeated_sentence"]


def test_repeated_sentence_inside_one_screen_fails() -> None:
    screen = items("list", "Signs", ("Urgency", "Fraudsters want you to act before you think."),
                   ("Pressure", "Fraudsters want you to act before you think."))
    assert rules(screen_flags(screen)) == ["repeated_sentence"]
    flags = screen_flags(text("Signs", "Check the sender address first. Then open the link. Check the sender address first."))
    assert rules(flags) == ["repeated_sentence"]


def test_a_screen_title_said_in_full_by_a_later_screen_is_no_repetition() -> None:
    seen: set[str] = set()
    assert screen_flags(text("Examples: learn how to submit a claim", "Claims go through the portal."), 0, seen=seen) == []
    assert screen_flags(text("Steps", "Learn how to submit a claim. Start in the portal."), 1, seen=seen) == []


def test_a_list_item_heading_may_repeat_an_earlier_phrase_but_a_checklist_line_may_not() -> None:
    seen: set[str] = set()
    assert screen_flags(text("Why", "Speed is the purpose of the expense claims app."), 0, seen=seen) == []
    summary = items("list", "Key takeaways", ("Speed is the purpose of the expense claims app", "Claims reach finance in a day."))
    assert screen_flags(summary, 1, seen=seen) == []
    checklist = items("checklist", "Before you submit", "Speed is the purpose of the expense claims app")
    assert rules(screen_flags(checklist, 2, seen=seen)) == ["repeated_sentence"]
    bare = {"type": "list", "title": "Points", "content": {"items": [{"title": "Speed is the purpose of the expense claims app"}]}}
    assert rules(screen_flags(bare, 3, seen=seen)) == ["repeated_sentence"]


def test_the_same_item_heading_twice_in_one_list_fails() -> None:
    twice = items("process", "Submit a claim", ("Attach every receipt you have", "Photograph each one."),
                  ("Attach every receipt you have", "Check the totals match."))
    flags = screen_flags(twice)
    assert [(f.rule, "item title" in f.detail) for f in flags] == [("repeated_sentence", True)]


def test_repeated_sentence_passes_distinct_and_short_sentences() -> None:
    seen: set[str] = set()
    assert screen_flags(text("A", "Lock your screen.", "Check the sender before you click."), 0, seen=seen) == []
    assert screen_flags(text("B", "Lock your screen.", "Check the link before you click."), 1, seen=seen) == []
    assert "check the sender before you click" in seen and "check the link before you click" in seen


def test_a_quiz_answer_may_restate_an_earlier_point() -> None:
    seen: set[str] = set()
    screen_flags(items("checklist", "Rules", "Confirm identity before discussing any account"), 0, seen=seen)
    restating = quiz(question("What comes first on every call?",
                              ["Confirm identity before discussing any account", "Offer a discount"], 0))
    assert screen_flags(restating, 1, seen=seen) == []


def test_sentences_are_normalised_and_short_ones_dropped() -> None:
    assert sentences("  Lock  YOUR screen when you leave!  Be safe. Why? ") == ["lock your screen when you leave"]
    assert sentences("Don\u2019t share your password with anyone.") == ["dont share your password with anyone"]


# ---------------------------------------------------------------- empty_field

@pytest.mark.parametrize("screen", [
    text("", "Data is valuable to fraudsters."),
    text("Why data matters"),
    text("Why data matters", "   "),
    items("checklist", "Before you share", "Caller verified", "  "),
    items("process", "Reporting", ("Tell your team leader", "")),
    items("process", "Reporting", ("", "Tell your team leader.")),
    items("flashcards", "Terms", ("Data breach", "")),
    {"type": "process", "title": "Reporting", "content": {"steps": []}},
    {"type": "list", "title": "Kinds of data", "content": {}},
], ids=lambda s: f"{s['type']}-{s['title'] or 'untitled'}")
def test_empty_field_fails(screen: dict[str, Any]) -> None:
    assert "empty_field" in rules(screen_flags(screen))


def test_empty_field_passes_filled_screens_and_optional_fields() -> None:
    for screen in good_course()["screens"]:
        assert "empty_field" not in rules(screen_flags(screen))
    # list and checklist items have no description unless the author gave one
    assert screen_flags(items("checklist", "Before you share", "Caller verified")) == []
    assert screen_flags(items("list", "Kinds of data", ("Contact details", ""))) == []


# ---------------------------------------------------------------- overlong_field

def test_overlong_field_fails() -> None:
    assert "overlong_field" in rules(screen_flags(text("Data " * 30, "Data is valuable.")))
    assert "overlong_field" in rules(screen_flags(text("Data", "Customer data is valuable to fraudsters " * 25)))
    long_item = items("list", "Kinds of data", ("Contact details", "Name and address, " * 20))
    assert "overlong_field" in rules(screen_flags(long_item))
    long_answer = quiz(question("Where do card numbers go?", ["The payment system " * 12, "A sticky note"], 0))
    assert "overlong_field" in rules(screen_flags(long_answer))


def test_overlong_field_passes_at_the_limits() -> None:
    assert screen_flags(text("T" * LIMITS["title"], "D" * (LIMITS["paragraph"] - 1) + ".")) == []
    assert screen_flags(items("list", "Kinds", ("I" * LIMITS["item"], "X" * (LIMITS["text"] - 1) + "."))) == []


# ---------------------------------------------------------------- type_mix

def test_type_mix_fails_with_two_types_in_six_screens() -> None:
    screens = [text(f"Part {i}", f"Point number {i} about handling customer data.") for i in range(4)]
    screens += [GOOD_QUIZ, text("Key takeaways", "Verify every caller and share little.")]
    flags = course_flags({"screens": screens})
    assert [(f.rule, f.screen) for f in flags] == [("type_mix", None)]
    # issue 10's failing course: five text screens, no knowledge check
    five_text = {"screens": [text(f"Part {i}", f"Point number {i} about data.") for i in range(6)]}
    assert "type_mix" in rules(course_flags(five_text))


def test_type_mix_passes_with_three_types_or_fewer_than_six_screens() -> None:
    screens = [text(f"Part {i}", f"Point number {i} about handling customer data.") for i in range(3)]
    screens += [items("list", "Kinds", ("Contact", "Name and phone.")), GOOD_QUIZ,
                items("checklist", "Key takeaways", "Verify callers")]
    assert course_flags({"screens": screens}) == []
    short = [text(f"Part {i}", f"Point number {i} about handling customer data.") for i in range(3)]
    assert course_flags({"screens": [*short, GOOD_QUIZ, text("Summary", "Verify every caller.")]}) == []


# ---------------------------------------------------------------- no_quiz

def test_no_quiz_fails_without_a_quiz_screen() -> None:
    course = good_course()
    del course["screens"][8]
    assert rules(course_flags(course)) == ["no_quiz"]


def test_no_quiz_passes_when_not_required_or_short() -> None:
    course = good_course()
    del course["screens"][8]
    assert course_flags(course, require_quiz=False) == []
    short = {"screens": [text("Why", "Data matters."), items("list", "Kinds", ("Contact", "Name.")),
                         text("Summary", "Verify callers.")]}
    assert course_flags(short) == []


# ---------------------------------------------------------------- quiz_malformed

def _broken(change: str) -> dict[str, Any]:
    screen = copy.deepcopy(GOOD_QUIZ)
    q = screen["content"]["questions"][1]
    if change == "one answer":
        q["answers"] = q["answers"][1:2]  # the correct one
    elif change == "no correct":
        q["answers"][1]["correct"] = False
    elif change == "two correct":
        q["answers"][0]["correct"] = True
    elif change == "blank answer":
        q["answers"][2]["text"] = " "
    elif change == "same answers":
        q["answers"][2]["text"] = "on a Sticky note."
    elif change == "no correct feedback":
        q["feedback"]["correct"] = ""
    elif change == "no incorrect feedback":
        del q["feedback"]["incorrect"]
    elif change == "no questions":
        screen["content"]["questions"] = []
    elif change == "blank question":
        q["question"] = ""
    return screen


@pytest.mark.parametrize("change", ["one answer", "no correct", "two correct", "blank answer", "same answers",
                                    "no correct feedback", "no incorrect feedback", "no questions",
                                    "blank question"])
def test_quiz_malformed_fails(change: str) -> None:
    flags = screen_flags(_broken(change), 8)
    assert rules(flags) == ["quiz_malformed"], flags
    assert flags[0].screen == 8


def test_quiz_malformed_passes_a_good_quiz() -> None:
    assert screen_flags(GOOD_QUIZ, 8) == []
    two_answers = quiz(question("Is a caller's voice proof of identity?", ["Yes", "No"], 1))
    assert screen_flags(two_answers) == []


# ---------------------------------------------------------------- no_summary

@pytest.mark.parametrize("last", ["Reporting a breach", "Check your understanding", "Phishing examples"])
def test_no_summary_fails(last: str) -> None:
    course = good_course()
    course["screens"][-1]["title"] = last
    assert rules(course_flags(course)) == ["no_summary"]


@pytest.mark.parametrize("last", ["Key takeaways", "Summary", "Recap: handling data safely", "Wrapping up",
                                  "What you've learned", "Key points to remember"])
def test_no_summary_passes(last: str) -> None:
    course = good_course()
    course["screens"][-1]["title"] = last
    assert course_flags(course) == []
    three = {"screens": good_course()["screens"][:3]}
    assert course_flags(three) == []


# ---------------------------------------------------------------- untranslated

SOURCE = items("list", "Kinds of personal data",
               ("Contact details", "Name, address, phone number and email address."),
               ("Outlook", "Customer emails stay in the shared mailbox."))
FRENCH = items("list", "Types de données personnelles",
               ("Coordonnées", "Nom, adresse, numéro de téléphone et adresse e-mail."),
               ("Outlook", "Les e-mails des clients restent dans la boîte partagée."))


def test_untranslated_fails_when_a_string_is_kept() -> None:
    variant = copy.deepcopy(FRENCH)
    variant["content"]["items"][1]["description"] = "Customer emails stay in the shared mailbox."
    flags = translation_flags(SOURCE, variant, 2)
    assert [(f.rule, f.screen) for f in flags] == [("untranslated", 2)]
    assert rules(translation_flags(SOURCE, SOURCE)) == ["untranslated"]


def _in_french(node: Any) -> Any:
    """Every string changed (a stand-in for a translation), everything else kept."""
    if isinstance(node, str):
        return f"(fr) {node}"
    if isinstance(node, list):
        return [_in_french(n) for n in node]
    if isinstance(node, dict):
        return {k: v if k == "type" else _in_french(v) for k, v in node.items()}
    return node


@pytest.mark.parametrize("change", ["drop an item", "other type", "move the correct answer", "merge paragraphs"])
def test_untranslated_fails_when_the_structure_changes(change: str) -> None:
    source, variant = copy.deepcopy(SOURCE), copy.deepcopy(FRENCH)
    if change == "drop an item":
        variant["content"]["items"].pop()
    elif change == "other type":
        variant["type"] = "checklist"
    elif change == "move the correct answer":
        source, variant = GOOD_QUIZ, _in_french(GOOD_QUIZ)
        assert translation_flags(source, variant) == []
        for q in variant["content"]["questions"]:
            q["answers"][0]["correct"], q["answers"][1]["correct"] = q["answers"][1]["correct"], q["answers"][0]["correct"]
    else:
        source = text("Pourquoi", "First paragraph here.", "Second paragraph here.")
        variant = text("Pourquoi", "Premier paragraphe ici. Second paragraphe ici.")
    assert rules(translation_flags(source, variant)) == ["untranslated"]


def test_untranslated_passes_a_full_translation() -> None:
    # "Outlook" (one word, a product name) may stay as it is
    assert translation_flags(SOURCE, FRENCH, 2) == []
    source = text("Why data matters", "Every call involves personal data.")
    variant = text("Warum Daten zählen", "Jeder Anruf betrifft personenbezogene Daten.")
    assert translation_flags(source, variant) == []


def test_translation_leaks_and_meta_talk_are_flagged() -> None:
    source = text("Why data matters", "Every call involves personal data.")
    leaked = text("Pourquoi", "<source>Chaque appel concerne des données personnelles.")
    assert rules(translation_flags(source, leaked)) == ["leaked_markup"]
    meta = text("Pourquoi", "Here is the translation: chaque appel concerne des données.")
    assert rules(translation_flags(source, meta)) == ["meta_talk"]


# ---------------------------------------------------------------- unchanged / changed (refine)

BEFORE = "Always check who is calling before you share any account details with them."


@pytest.mark.parametrize("operation", ["shorten", "expand", "simplify", "change_tone"])
def test_unchanged_fails_when_a_refine_returns_its_input(operation: str) -> None:
    assert rules(refine_flags(BEFORE, BEFORE, operation)) == ["unchanged"]
    assert rules(refine_flags(BEFORE, "  always check who is calling before you share any account details "
                                      "with them. ", operation)) == ["unchanged"]


def test_unchanged_passes_a_real_refine() -> None:
    assert refine_flags(BEFORE, "Check the caller before sharing account details.", "shorten") == []
    assert refine_flags(BEFORE, BEFORE, "fix_grammar") == []


def test_changed_fails_when_fix_grammar_rewrites() -> None:
    flags = refine_flags("Allways check who are calling before you shares details.",
                         "Verify the caller's identity first; only then may account information be disclosed.",
                         "fix_grammar")
    assert rules(flags) == ["changed"]
    reordered = refine_flags(BEFORE, "Before you share any account details with them, always check who is calling.",
                             "fix_grammar")
    assert rules(reordered) == ["changed"]


def test_changed_passes_small_grammar_fixes() -> None:
    assert refine_flags("Allways check who are calling before you shares any account details with them.",
                        BEFORE, "fix_grammar") == []
    assert refine_flags("Their going too the meeting tomorow and there bringing they're laptops.",
                        "They're going to the meeting tomorrow and they're bringing their laptops.",
                        "fix_grammar") == []


def test_refine_flags_new_markup_and_meta_talk_only() -> None:
    assert rules(refine_flags(BEFORE, "Sure, here is the shortened text: check the caller first.", "shorten")) \
        == ["meta_talk"]
    assert rules(refine_flags(BEFORE, '{"text": "Check the caller first."}', "shorten")) == ["leaked_markup"]
    assert rules(refine_flags(BEFORE, "", "shorten")) == ["empty_field"]
    # the author's own words are not the model's meta-talk
    own = "In this course you will learn to check callers before sharing any details."
    assert refine_flags(own, "In this course you will learn to check callers first.", "shorten") == []


# ---------------------------------------------------------------- visible_texts, speed

def test_visible_texts_is_what_the_learner_sees() -> None:
    screen = {"type": "text", "title": "Data", "description": "Why it matters",
              "content": {"html": "<p>One <strong>bold</strong> point &amp; more.</p><ul><li>Two</li></ul>"
                                  "<p>&lt;source&gt;leak</p>"}}
    assert visible_texts(screen) == ["Data", "Why it matters", "One bold point & more.", "Two", "<source>leak"]
    assert visible_texts(GOOD_QUIZ)[:5] == [
        "Check your understanding",
        "A caller asks for a customer's address but cannot answer the security questions. What do you do?",
        "Politely refuse and explain the process", "Give the address if they sound genuine",
        "Ask a colleague to decide"]
    assert "True" not in visible_texts(GOOD_QUIZ) and all(isinstance(t, str) for t in visible_texts(GOOD_QUIZ))
    card = items("flashcards", "Terms", ("Data breach", "Loss of personal data."))
    assert visible_texts(card) == ["Terms", "Data breach", "Loss of personal data."]


def test_a_25_screen_course_is_checked_in_well_under_10_ms() -> None:
    base = good_course()["screens"]
    screens = []
    for i in range(25):
        screen = copy.deepcopy(base[i % len(base)])
        screen["title"] = f"{screen['title']} {i}"
        screens.append(screen)
    content = {"screens": screens}
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        course_flags(content)
        best = min(best, time.perf_counter() - started)
    assert best < 0.010, f"{best * 1000:.1f} ms"


def test_mixed_script_fails_when_another_script_slips_into_latin_text() -> None:
    slip = text("Handling customer data", "Protect customer personal数据 at every step of the call.")
    flags = screen_flags(slip, 2)
    assert [(f.rule, f.screen) for f in flags] == [("mixed_script", 2)]
    assert "数据" in flags[0].detail


@pytest.mark.parametrize("clean", [
    "Protect customer personal data at every step of the call.",
    "顧客の個人情報は通話のすべての段階で保護してください。",  # a Japanese course is not mixed
    "在 Outlook 中报告可疑邮件。",  # a product name inside Chinese text
])
def test_mixed_script_passes_text_in_one_script(clean: str) -> None:
    assert [f.rule for f in screen_flags(text("Data", clean))] == []

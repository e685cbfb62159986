"""Jump-forward (appliance.ai.forced): the continuation a schema decides, followed character by
character. Pure: no model."""

from __future__ import annotations

import json
from typing import Any

from appliance.ai.forced import ForcedText
from appliance.ai.generation import SCREEN_SCHEMAS, outline_schema, quiz_schema


def follow(schema: dict[str, Any], *pieces: str) -> ForcedText:
    f = ForcedText(schema)
    for piece in pieces:
        f.feed(piece)
    return f


def test_keys_and_punctuation_are_forced_strings_are_not() -> None:
    schema = SCREEN_SCHEMAS["list"]
    assert follow(schema).forced() == '{"items":[{"title":"'
    f = follow(schema, '{"items":[{"title":"Lock your screen')
    assert f.forced() == ""  # the model is writing the title
    f.feed('"')
    assert f.forced() == ',"description":"'


def test_arrays_close_at_max_items_and_continue_below_min_items() -> None:
    schema = SCREEN_SCHEMAS["text"]  # paragraphs: 1 to 2
    f = follow(schema, '{"paragraphs":["One paragraph here."')
    assert f.forced() == ""  # a second paragraph or the end: the model's choice
    f.feed(',"Two."')
    assert f.forced() == "]}"  # maxItems reached: only the end is legal
    f.feed("]}")
    assert f.done
    steps = SCREEN_SCHEMAS["process"]  # steps: 3 to 5
    g = follow(steps, '{"steps":[{"title":"A","description":"B"}')
    assert g.forced() == ',{"title":"'  # below minItems: the next step must come


def test_enum_values_complete_once_unambiguous() -> None:
    schema = outline_schema(2)
    f = follow(schema, '{"title":"Phishing","objectives":["Spot a phishing email"],"screens":[{"title":"Signs",')
    assert f.forced() == '"type":"'
    f.feed('"type":"fl')
    assert f.forced() == 'ashcards","objective":'
    f.feed('ashcards","objective":3')
    # 3 is the only value starting with 3: the object ends, and two screens are required
    assert f.forced() == '},{"title":"'


def test_integer_enum_with_one_value_is_forced_whole() -> None:
    schema = {"type": "object", "properties": {"n": {"enum": [7]}}, "required": ["n"], "additionalProperties": False}
    assert follow(schema).forced() == '{"n":7}'


def test_whitespace_from_the_model_is_followed() -> None:
    schema = quiz_schema(1)
    f = follow(schema, '{\n  "title": "Check",\n  "questions": [\n    {\n      "question": "Why?"')
    assert f.forced() == ',"answers":["'


def test_unmodelled_schemas_force_nothing() -> None:
    optional = {"type": "object", "properties": {"a": {"type": "string"}}, "required": [],
                "additionalProperties": False}
    assert follow(optional).forced() == ""  # which keys come is the model's choice
    assert follow(optional, "{").lost
    any_of = {"anyOf": [{"type": "string"}, {"type": "integer"}]}
    f = follow(any_of)
    assert f.forced() == ""
    f.feed('"x"')
    assert f.lost and f.forced() == ""


def test_forced_text_keeps_the_value_valid_json() -> None:
    """Feeding only forced text plus minimal model choices yields a document json accepts."""
    schema = SCREEN_SCHEMAS["checklist"]  # items 3 to 5, each {title}
    f = ForcedText(schema)
    text = ""
    for choice in ("Lock it", "Log out", "Report it"):
        step = f.forced()
        text += step
        f.feed(step)
        text += choice + '"'
        f.feed(choice + '"')
    end = "]}"  # the model chooses to stop at 3
    step = f.forced()
    assert step == "}"
    f.feed(step + end)
    text += step + end
    assert f.done
    assert json.loads(text) == {"items": [{"title": "Lock it"}, {"title": "Log out"}, {"title": "Report it"}]}


def test_past_x_sentence_after_a_sentence_end_forces_the_closing_quote() -> None:
    schema = {"type": "object", "properties": {"text": {"type": "string", "maxLength": 40, "x-sentence-after": 12}},
              "required": ["text"], "additionalProperties": False}
    assert follow(schema, '{"text":"Lock it.').forced() == ""  # 8 characters: another sentence may follow
    assert follow(schema, '{"text":"Lock it. Now').forced() == ""
    assert follow(schema, '{"text":"Lock your screen.').forced() == '"}'
    assert follow(schema, '{"text":"Say \\"stop\\" now!').forced() == '"}'  # escapes count as one character
    assert follow(schema, '{"text":"Say \\"st.').forced() == ""  # 11 characters as the grammar counts them

from __future__ import annotations

import pytest

from appliance.ai.errors import InvalidOutput
from appliance.ai.schema import is_valid, validate

from .conftest import COURSE_SCHEMA


def test_course_schema_accepts_valid() -> None:
    validate({"title": "T", "screens": [{"type": "intro", "title": "a", "body": "b"}] * 2}, COURSE_SCHEMA)


@pytest.mark.parametrize(
    "value",
    [
        {"title": "T"},
        {"title": "T", "screens": [{"type": "intro", "title": "a", "body": "b"}]},  # minItems
        {"title": "T", "screens": [{"type": "bogus", "title": "a", "body": "b"}] * 2},  # enum
        {"title": "T", "screens": [{"type": "intro", "title": "a", "body": "b", "x": 1}] * 2},  # extra
        {"title": 3, "screens": []},
        {"title": "x" * 61, "screens": [{"type": "intro", "title": "a", "body": "b"}] * 2},  # maxLength
    ],
)
def test_course_schema_rejects_invalid(value: object) -> None:
    assert not is_valid(value, COURSE_SCHEMA)
    with pytest.raises(InvalidOutput):
        validate(value, COURSE_SCHEMA)


def test_numbers_refs_and_combinators() -> None:
    schema = {
        "$defs": {"n": {"type": "integer", "minimum": 1, "maximum": 5}},
        "type": "object",
        "properties": {"n": {"$ref": "#/$defs/n"}, "v": {"anyOf": [{"type": "null"}, {"type": "boolean"}]}},
        "required": ["n"],
    }
    assert is_valid({"n": 3, "v": None}, schema)
    assert is_valid({"n": 5, "v": True}, schema)
    assert not is_valid({"n": 0}, schema)
    assert not is_valid({"n": 2.5}, schema)
    assert not is_valid({"n": True}, schema)  # bool is not an integer
    assert not is_valid({"n": 2, "v": "x"}, schema)

"""The one rule for language tags (appliance.courses.languages) and the places that use it."""

from __future__ import annotations

import pytest

from appliance.courses import languages
from appliance.errors import ApiError
from appliance.headless.embeds import parse_options


@pytest.mark.parametrize(
    ("value", "tag", "known"),
    [
        ("fr", "fr", True),
        ("pt-BR", "pt-BR", True),
        ("pt_BR", "pt-BR", False),  # the POSIX spelling is read, but a translation target is BCP 47
        ("zh-Hant-TW", "zh-Hant-TW", True),
        ("fil", "fil", False),  # a three-letter language is a tag, not an ISO 639-1 language
        ("xx", "xx", False),
        ("e", None, False),
        ("en-", None, False),
        ("en-US-", None, False),
        ("english", None, False),
        ("en-toolongsubtag", None, False),
    ],
)
def test_language_tags(value: str, tag: str | None, known: bool) -> None:
    assert languages.canonical(value) == tag
    assert languages.known_language(value) is known
    assert bool(languages.SPELLINGS.match(value)) is (tag is not None)


@pytest.mark.parametrize("value", ["fr", "fr-CA", "pt_BR", "fil"])
def test_the_embed_language_option_follows_the_rule(value: str) -> None:
    assert parse_options({"options": {"language": value}})["language"] == value


@pytest.mark.parametrize("value", ["f", "en-", "english", "en US", 5])
def test_the_embed_language_option_refuses_what_is_not_a_tag(value: object) -> None:
    with pytest.raises(ApiError, match=r"options\.language"):
        parse_options({"options": {"language": value}})

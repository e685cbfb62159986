"""Single-screen and quiz jobs go through the gate (appliance.ai.generation.through_the_gate): the
screens here come from plain functions, so the retry loop runs deterministically."""

from __future__ import annotations

from typing import Any

from appliance.ai.engine import SamplingParams
from appliance.ai.generation import through_the_gate
from appliance.courses.validate import paragraphs_to_html


def text(*paragraphs: str) -> dict[str, Any]:
    return {"type": "text", "title": "Spotting a fake sender", "content": {"html": paragraphs_to_html(list(paragraphs))}}


CLEAN = text("Check the sender's address before you click anything in an unexpected email.")
META = text("Welcome to the 'Spotting a fake sender' screen. In this course you will learn about email.")


def test_a_failing_screen_is_written_again_until_it_passes() -> None:
    calls: list[SamplingParams] = []

    def make(sampling: SamplingParams) -> dict[str, Any]:
        calls.append(sampling)
        return META if len(calls) == 1 else CLEAN

    screen, flags = through_the_gate(make, retries=2)
    assert screen is CLEAN and flags == [] and len(calls) == 2


def test_what_still_fails_after_the_retries_is_returned_as_flags() -> None:
    calls: list[SamplingParams] = []

    def make(sampling: SamplingParams) -> dict[str, Any]:
        calls.append(sampling)
        return text("Attackers want your passwords or credit card")  # cut by a length cap, every time

    _screen, flags = through_the_gate(make, retries=1)
    assert len(calls) == 2 and [f.rule for f in flags] == ["unfinished_text"]
    assert through_the_gate(lambda sampling: CLEAN, retries=1) == (CLEAN, [])

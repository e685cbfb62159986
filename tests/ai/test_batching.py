"""Continuous batching on the real engine (SmolLM2-135M): requests decoded together, prefixes
reused, forced text appended without sampling, per-request cancel, fairness and priority."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import pytest

from appliance.ai import Cancelled, CancelToken, QueueFull, SamplingParams
from appliance.ai.batching import ALONE_PRIORITY
from appliance.ai.local import LocalEngine
from appliance.ai.schema import validate

from .conftest import COURSE_MESSAGES, COURSE_SCHEMA, requires_model
from .test_local import LONG_MESSAGES, QUIZ_MESSAGES, QUIZ_SCHEMA, _engine

pytestmark = requires_model
LONG = SamplingParams(repeat_penalty=1.3, seed=5)


def test_a_short_request_does_not_wait_behind_a_long_one(engine: LocalEngine) -> None:
    long_done: list[float] = []

    def long_call() -> None:
        engine.generate_text(LONG_MESSAGES, max_tokens=400, sampling=LONG)
        long_done.append(time.monotonic())

    worker = threading.Thread(target=long_call)
    worker.start()
    time.sleep(0.3)  # the long request is decoding
    value = engine.generate_json(QUIZ_MESSAGES, QUIZ_SCHEMA, max_tokens=300, sampling=SamplingParams(seed=3))
    short_done = time.monotonic()
    validate(value, QUIZ_SCHEMA)
    worker.join(120)
    assert long_done and short_done < long_done[0]  # decoded alongside, not after


def test_two_schemas_at_once_both_valid_and_cancelling_one_spares_the_other(engine: LocalEngine) -> None:
    token = CancelToken()
    results: dict[str, Any] = {}

    def doomed() -> None:
        try:
            engine.generate_text(LONG_MESSAGES, max_tokens=600, cancel=token, sampling=LONG)
        except Cancelled as exc:
            results["doomed"] = exc

    def course() -> None:
        results["course"] = engine.generate_json(COURSE_MESSAGES, COURSE_SCHEMA, max_tokens=400,
                                                 sampling=SamplingParams(seed=11))

    def quiz() -> None:
        results["quiz"] = engine.generate_json(QUIZ_MESSAGES, QUIZ_SCHEMA, max_tokens=300,
                                               sampling=SamplingParams(seed=12))

    threads = [threading.Thread(target=f) for f in (doomed, course, quiz)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    token.cancel()
    for t in threads:
        t.join(180)
    assert isinstance(results["doomed"], Cancelled)
    validate(results["course"], COURSE_SCHEMA)
    validate(results["quiz"], QUIZ_SCHEMA)


def test_a_shared_prefix_is_evaluated_once_and_gives_the_same_answer(engine: LocalEngine) -> None:
    greedy = SamplingParams(temperature=0.0)
    first = engine.complete(COURSE_MESSAGES, schema=COURSE_SCHEMA, max_tokens=400, sampling=greedy)
    again = engine.complete(COURSE_MESSAGES, schema=COURSE_SCHEMA, max_tokens=400, sampling=greedy)
    assert again.stats.cached_tokens >= again.stats.prompt_tokens - 1  # all but the last prompt token
    assert again.text == first.text  # reused KV cells hold what a fresh prefill would


def test_requests_admitted_together_read_their_shared_prompt_once() -> None:
    """Three requests wait behind an urgent one (as a course's knowledge check, summary and
    description wait behind its plan), then start in the same step: one reads the shared prompt,
    the others copy its cells."""
    eng = _engine(parallel=4)
    try:
        shared = f"Reference {uuid.uuid4().hex}. " + " ".join(f"Rule {i}: check the sender of every message." for i in range(25))
        asks = [[{"role": "system", "content": shared}, {"role": "user", "content": f"Name colour number {i}."}]
                for i in range(3)]
        urgent = eng.stream(LONG_MESSAGES, max_tokens=40, sampling=SamplingParams(seed=2, priority=ALONE_PRIORITY))
        next(urgent)
        results: list[Any] = [None] * 3

        def ask(i: int) -> None:
            try:
                results[i] = eng.complete(asks[i], schema=QUIZ_SCHEMA, max_tokens=300, sampling=SamplingParams(seed=i))
            except Exception as exc:  # reported by the assertion below
                results[i] = exc

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        list(urgent)
        for t in threads:
            t.join(180)
        for r in results:
            assert not isinstance(r, Exception), r
            validate(json.loads(r.text), QUIZ_SCHEMA)
        prompt = results[0].stats.prompt_tokens
        read = sum(r.stats.prompt_tokens - r.stats.cached_tokens for r in results)
        assert prompt > 200
        assert read < 1.4 * prompt, (read, prompt)  # not three times
    finally:
        eng.close()


def test_forced_text_is_appended_without_sampling(engine: LocalEngine) -> None:
    done = engine.complete(COURSE_MESSAGES, schema=COURSE_SCHEMA, max_tokens=400, sampling=SamplingParams(seed=4))
    validate(json.loads(done.text), COURSE_SCHEMA)
    # every key of every screen, its punctuation, the enum tails: {"title":", ","screens":[{"type":" ...
    assert done.stats.forced_tokens >= 10
    assert done.stats.stop_reason == "eog"


def test_one_owner_leaves_a_sequence_for_another_caller() -> None:
    eng = _engine(parallel=2, queue_size=4)
    try:
        course = CancelToken()  # two requests of one owner (one course job)
        first = eng.stream(LONG_MESSAGES, max_tokens=300, cancel=course, sampling=LONG)
        next(first)
        second = eng.stream(LONG_MESSAGES, max_tokens=300, cancel=course, sampling=LONG)
        t0 = time.monotonic()
        assert eng.generate_text([{"role": "user", "content": "Say hi."}], max_tokens=5, timeout=30)
        assert time.monotonic() - t0 < 10  # not behind both long requests
        assert eng.info()["running"] <= 2
        course.cancel()
        for it in (first, second):
            with pytest.raises(Cancelled):
                list(it)
    finally:
        eng.close()


def _beside_background(priority: int) -> tuple[list[float], float, float, int]:
    """A long background request and, once it decodes, a request at ``priority``: the background's
    chunk times, when the other request began and ended decoding, and its completion tokens."""
    eng = _engine(parallel=4)
    try:
        stamps: list[float] = []
        background = eng.stream(LONG_MESSAGES, max_tokens=250, sampling=LONG)
        next(background)
        stamps.append(time.monotonic())

        def follow() -> None:
            for _chunk in background:
                stamps.append(time.monotonic())

        reader = threading.Thread(target=follow)
        reader.start()
        time.sleep(0.3)
        urgent = eng.complete(QUIZ_MESSAGES, schema=QUIZ_SCHEMA, max_tokens=300,
                              sampling=SamplingParams(seed=9, priority=priority))
        ended = time.monotonic()
        reader.join(120)
        return stamps, ended - urgent.stats.gen_seconds, ended, urgent.stats.completion_tokens
    finally:
        eng.close()


def test_a_request_at_alone_priority_runs_alone_until_it_ends() -> None:
    stamps, began, ended, tokens = _beside_background(ALONE_PRIORITY)
    during = [t for t in stamps if began + 0.2 < t < ended - 0.2]
    assert tokens > 10
    assert not during, f"{len(during)} background chunks while the urgent request ran"
    assert stamps[-1] > ended  # the background request resumed afterwards


def test_a_less_urgent_request_decodes_beside_the_others() -> None:
    """A course's plan (-1) goes first in every step but does not stop the others."""
    stamps, began, ended, tokens = _beside_background(ALONE_PRIORITY + 1)
    during = [t for t in stamps if began + 0.2 < t < ended - 0.2]
    assert tokens > 10
    assert len(during) >= 5, f"only {len(during)} background chunks while the other request ran"


def test_a_full_queue_is_still_queue_full() -> None:
    eng = _engine(parallel=2, queue_size=1)
    try:
        running = []
        for _ in range(2):  # each is running (out of the queue) before the next arrives
            running.append(eng.stream(LONG_MESSAGES, max_tokens=400, sampling=LONG))
            next(running[-1])
        waiting = eng.stream(LONG_MESSAGES, max_tokens=10)
        with pytest.raises(QueueFull):
            eng.stream(LONG_MESSAGES, max_tokens=10)
        for it in running:
            it.close()
        assert "".join(waiting)
    finally:
        eng.close()

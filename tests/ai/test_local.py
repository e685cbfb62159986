"""The real llama.cpp engine on SmolLM2-135M: constrained output, queue, cancel, timeout, threads."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from appliance.ai import (
    Cancelled,
    CancelToken,
    EngineStatus,
    EngineUnavailable,
    GenerationTimeout,
    InvalidOutput,
    ModelUnavailable,
    PromptTooLong,
    QueueFull,
    SamplingParams,
)
from appliance.ai.cpu_build import AVX512_FLAGS, avx512_library, cpu_flags, import_llama
from appliance.ai.local import LocalEngine
from appliance.ai.models import REPO_MODELS_DIR
from appliance.ai.schema import validate
from tests.helpers import run_async

from .conftest import COURSE_MESSAGES, COURSE_SCHEMA, TEST_MODEL, THREADS, model_path, requires_model

pytestmark = requires_model

LONG_MESSAGES = [{"role": "user", "content": "Write a very long story about a dragon. Never stop."}]

QUIZ_SCHEMA = {
    "type": "object",
    "properties": {
        "question": {"type": "string", "maxLength": 80},
        "choices": {
            "type": "array",
            "items": {"type": "string", "maxLength": 30},
            "minItems": 3,
            "maxItems": 3,
        },
        "answer": {"type": "integer", "minimum": 0, "maximum": 2},
        "hard": {"type": "boolean"},
    },
    "required": ["question", "choices", "answer", "hard"],
}
QUIZ_MESSAGES = [
    {
        "role": "user",
        "content": "Write one multiple-choice quiz question about passwords as JSON with "
        "question, 3 choices, the index of the right answer (0-2) and whether it is hard.",
    },
]


def _engine(**kw: Any) -> LocalEngine:
    eng = LocalEngine(TEST_MODEL, models_dir=REPO_MODELS_DIR, n_threads=THREADS, n_ctx=2048, **kw)
    assert eng.wait_ready(60) == EngineStatus.READY, eng.info()
    return eng


@pytest.mark.parametrize(
    ("schema", "messages", "seed"),
    [
        (COURSE_SCHEMA, COURSE_MESSAGES, 1),
        (COURSE_SCHEMA, COURSE_MESSAGES, 2),
        (QUIZ_SCHEMA, QUIZ_MESSAGES, 3),
    ],
)
def test_raw_constrained_output_validates(
    engine: LocalEngine, schema: dict[str, Any], messages: Any, seed: int
) -> None:
    """The raw grammar output (no validation retries) is strict JSON that satisfies the schema."""
    c = engine.complete(messages, schema=schema, max_tokens=700, sampling=SamplingParams(seed=seed))
    assert c.stats.stop_reason == "eog", c.text  # the grammar allowed EOG: the JSON is complete
    value = json.loads(c.text)  # strict: no raw control characters
    validate(value, schema)


def test_info_names_the_cpu_build_the_engine_runs(engine: LocalEngine) -> None:
    """The engine took the libraries appliance.ai.cpu_build chose ("auto"), as llama.cpp reports them."""
    expected = "avx512" if AVX512_FLAGS <= cpu_flags() and avx512_library() is not None else "portable"
    assert engine.info()["cpu_build"] == expected


def test_generate_json_public_api(engine: LocalEngine) -> None:
    value = engine.generate_json(QUIZ_MESSAGES, QUIZ_SCHEMA, max_tokens=400, sampling=SamplingParams(seed=4))
    validate(value, QUIZ_SCHEMA)
    assert 0 <= value["answer"] <= 2  # a range the stock converter ignores: enforced via enum rewrite


def test_lazy_grammar_matches_stock_greedy() -> None:
    """Greedy output of the lazy path must equal llama-cpp-python's stock grammar sampler. A fresh
    engine: the shared one may hold this prompt's prefix from an earlier test, and a reused prefix
    evaluates the last prompt token in another batch than stock does (float ties can then flip)."""
    llama_cpp = import_llama()  # the libraries the engine loads (appliance.ai.cpu_build)

    from appliance.ai.grammar import schema_to_gbnf

    greedy = SamplingParams(temperature=0.0, repeat_penalty=1.1)
    fresh = _engine(parallel=1)
    try:
        ours = fresh.complete(QUIZ_MESSAGES, schema=QUIZ_SCHEMA, max_tokens=300, sampling=greedy).text
    finally:
        fresh.close()
    llm = llama_cpp.Llama(model_path=str(model_path()), n_ctx=2048, n_threads=THREADS, verbose=False)
    try:
        grammar = llama_cpp.LlamaGrammar.from_string(schema_to_gbnf(QUIZ_SCHEMA), verbose=False)
        r = llm.create_chat_completion(
            messages=QUIZ_MESSAGES, grammar=grammar, temperature=0.0, repeat_penalty=1.1, max_tokens=300
        )
        stock = r["choices"][0]["message"]["content"]
    finally:
        llm.close()
    assert ours == stock


def test_free_stream_yields_chunks(engine: LocalEngine) -> None:
    chunks = list(engine.stream([{"role": "user", "content": "Say hello."}], max_tokens=30))
    assert len(chunks) >= 2
    assert "".join(chunks).strip()


def test_truncated_json_is_invalid_output(engine: LocalEngine) -> None:
    with pytest.raises(InvalidOutput, match="truncated"):
        engine.generate_json(COURSE_MESSAGES, COURSE_SCHEMA, max_tokens=5)


def test_cancel_stops_generation(engine: LocalEngine) -> None:
    token = CancelToken()
    it = engine.stream(
        LONG_MESSAGES, max_tokens=1500, cancel=token, sampling=SamplingParams(repeat_penalty=1.3, seed=7)
    )
    got = [next(it) for _ in range(5)]
    t0 = time.monotonic()
    token.cancel()
    with pytest.raises(Cancelled):
        for _ in it:
            pass
    assert time.monotonic() - t0 < 1.0
    assert len(got) == 5
    # the engine is free again at once
    t1 = time.monotonic()
    assert engine.generate_text([{"role": "user", "content": "Hi"}], max_tokens=3)
    assert time.monotonic() - t1 < 5


def test_closing_the_iterator_cancels(engine: LocalEngine) -> None:
    it = engine.stream(LONG_MESSAGES, max_tokens=1500, sampling=SamplingParams(repeat_penalty=1.3))
    next(it)
    it.close()  # e.g. the HTTP client went away
    t0 = time.monotonic()
    engine.generate_text([{"role": "user", "content": "Hi"}], max_tokens=3)
    assert time.monotonic() - t0 < 3  # not blocked behind 1500 tokens


def test_timeout(engine: LocalEngine) -> None:
    t0 = time.monotonic()
    with pytest.raises(GenerationTimeout):
        engine.generate_text(
            LONG_MESSAGES, max_tokens=1900, timeout=0.5, sampling=SamplingParams(repeat_penalty=1.3)
        )
    assert time.monotonic() - t0 < 3.0


def test_queue_full_and_queued_timeout() -> None:
    eng = _engine(queue_size=1, parallel=1)  # one sequence: the second request waits in the queue
    try:
        running = eng.stream(LONG_MESSAGES, max_tokens=1500, sampling=SamplingParams(repeat_penalty=1.3))
        next(running)  # the worker has dequeued it: the queue is empty, the worker busy
        queued = eng.stream(LONG_MESSAGES, max_tokens=10, timeout=0.5)
        with pytest.raises(QueueFull) as ei:
            eng.stream(LONG_MESSAGES, max_tokens=10)
        assert ei.value.retry_after >= 1
        with pytest.raises(GenerationTimeout):  # waited in the queue past its deadline
            list(queued)
        running.close()
        assert eng.generate_text([{"role": "user", "content": "Hi"}], max_tokens=3, timeout=10)
    finally:
        eng.close()


def test_concurrent_callers_do_not_crash(engine: LocalEngine) -> None:
    results: list[Any] = []
    errors: list[BaseException] = []

    def call(i: int) -> None:
        try:
            if i % 2:
                results.append(
                    engine.generate_json(
                        QUIZ_MESSAGES,
                        QUIZ_SCHEMA,
                        max_tokens=300,
                        timeout=120,
                        sampling=SamplingParams(seed=i),
                    )
                )
            else:
                results.append(
                    engine.generate_text(
                        [{"role": "user", "content": f"Count to {i}."}], max_tokens=20, timeout=120
                    )
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert not errors, errors
    assert len(results) == 6
    for r in results:
        if isinstance(r, dict):
            validate(r, QUIZ_SCHEMA)


def test_async_api(engine: LocalEngine) -> None:
    async def main() -> tuple[Any, list[str]]:
        v = await engine.agenerate_json(QUIZ_MESSAGES, QUIZ_SCHEMA, max_tokens=300)
        chunks = [c async for c in engine.astream([{"role": "user", "content": "Say hi."}], max_tokens=10)]
        return v, chunks

    v, chunks = run_async(main())
    validate(v, QUIZ_SCHEMA)
    assert chunks


def test_prompt_too_long() -> None:
    eng = LocalEngine(TEST_MODEL, models_dir=REPO_MODELS_DIR, n_threads=THREADS, n_ctx=256)
    try:
        assert eng.wait_ready(60) == EngineStatus.READY
        with pytest.raises(PromptTooLong):
            eng.generate_text([{"role": "user", "content": "word " * 400}], max_tokens=10)
    finally:
        eng.close()


def test_close_cancels_running_and_queued() -> None:
    eng = _engine(queue_size=4, parallel=1)
    running = eng.stream(LONG_MESSAGES, max_tokens=1500, sampling=SamplingParams(repeat_penalty=1.3))
    next(running)
    queued = eng.stream(LONG_MESSAGES, max_tokens=10)
    t0 = time.monotonic()
    eng.close()
    assert time.monotonic() - t0 < 5
    with pytest.raises(EngineUnavailable):
        list(queued)
    with pytest.raises(Cancelled):
        list(running)
    assert eng.status() == EngineStatus.CLOSED
    with pytest.raises(EngineUnavailable):
        eng.generate_text([{"role": "user", "content": "Hi"}])


def _models_dir_with(tmp_path: Path, data: bytes | None) -> Path:
    d = tmp_path / "models"
    d.mkdir()
    shutil.copy(REPO_MODELS_DIR / "manifest.json", d / "manifest.json")
    if data is not None:
        (d / "smollm2-135m-instruct-q4_1.gguf").write_bytes(data)
    return d


def test_corrupt_model_is_unavailable_not_a_crash(tmp_path: Path) -> None:
    data = bytearray(model_path().read_bytes())
    data[len(data) // 2 : len(data) // 2 + 8] = b"\xde\xad\xbe\xef" * 2
    eng = LocalEngine(TEST_MODEL, models_dir=_models_dir_with(tmp_path, bytes(data)), n_threads=THREADS)
    try:
        assert eng.wait_ready(60) == EngineStatus.UNAVAILABLE
        assert "sha256 mismatch" in (eng.info()["error"] or "")
        with pytest.raises(ModelUnavailable, match="sha256 mismatch"):
            eng.generate_json(QUIZ_MESSAGES, QUIZ_SCHEMA)
    finally:
        eng.close()


def test_missing_model_is_unavailable(tmp_path: Path) -> None:
    eng = LocalEngine(TEST_MODEL, models_dir=_models_dir_with(tmp_path, None))
    try:
        assert eng.wait_ready(10) == EngineStatus.UNAVAILABLE
        with pytest.raises(ModelUnavailable, match="missing"):
            eng.generate_text([{"role": "user", "content": "Hi"}])
    finally:
        eng.close()


def test_truncated_gguf_with_matching_hash_fails_to_load_cleanly(tmp_path: Path) -> None:
    # A file whose hash is registered but whose content is broken (e.g. added by hand): llama.cpp
    # refuses it and the engine reports ModelUnavailable instead of crashing.
    import hashlib

    bad = tmp_path / "broken.gguf"
    bad.write_bytes(model_path().read_bytes()[:5_000_000])
    digest = hashlib.sha256(bad.read_bytes()).hexdigest()
    eng = LocalEngine(model_path=bad, sha256=digest, n_threads=THREADS)
    try:
        assert eng.wait_ready(60) == EngineStatus.UNAVAILABLE
        with pytest.raises(ModelUnavailable, match="cannot load"):
            eng.generate_text([{"role": "user", "content": "Hi"}])
    finally:
        eng.close()

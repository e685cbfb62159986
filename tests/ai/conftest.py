"""Fixtures for the AI tests: the real SmolLM2-135M model and the real llama.cpp engine.

Install the model first:  .venv/bin/python models/install.py smollm2-135m-instruct
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.ai.models import REPO_MODELS_DIR, get_spec
from tests.helpers import MODEL_THREADS

TEST_MODEL = "smollm2-135m-instruct"
# 2 threads serially; a share of the cores under pytest-xdist (tests/helpers.py MODEL_THREADS)
THREADS = int(os.environ.get("APPLIANCE_AI_TEST_THREADS", str(min(2, MODEL_THREADS))))

COURSE_SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 60},
        "screens": {
            "type": "array",
            "minItems": 2,
            "maxItems": 3,
            "items": {
                "type": "object",
                "properties": {
                    "type": {"type": "string", "enum": ["intro", "content", "quiz", "summary"]},
                    "title": {"type": "string", "maxLength": 40},
                    "body": {"type": "string", "maxLength": 120},
                },
                "required": ["type", "title", "body"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["title", "screens"],
    "additionalProperties": False,
}

COURSE_MESSAGES = [
    {"role": "system", "content": "You are an instructional designer. Answer with JSON only."},
    {
        "role": "user",
        "content": "Create a short course on phishing awareness: 2 or 3 screens, each with a type "
        "(intro, content, quiz or summary), a title and one sentence of body text. "
        "Answer as JSON with keys title and screens.",
    },
]


def model_path() -> Path:
    return get_spec(TEST_MODEL, REPO_MODELS_DIR).path(REPO_MODELS_DIR)


requires_model = pytest.mark.skipif(
    not model_path().is_file(),
    reason=f"test model missing: run `.venv/bin/python models/install.py {TEST_MODEL}`",
)


@pytest.fixture(scope="session")
def engine() -> Iterator[object]:
    if not model_path().is_file():
        pytest.skip(f"test model missing: run `.venv/bin/python models/install.py {TEST_MODEL}`")
    from appliance.ai.local import LocalEngine

    eng = LocalEngine(
        TEST_MODEL, models_dir=REPO_MODELS_DIR, n_threads=THREADS, n_ctx=2048, queue_size=8, timeout=300
    )
    assert eng.wait_ready(60).value == "ready", eng.info()
    yield eng
    eng.close()


QUIZ_SCHEMA_SMALL = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 60},
        "keyword": {"type": "string", "maxLength": 30},
    },
    "required": ["title", "keyword"],
}

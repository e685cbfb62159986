"""A bounded schemathesis run against the real server with the small model: seeded, with few
examples per operation, it fails on any 5xx, any status, header, content type or body the OpenAPI
document does not describe, any operation that answers without the key, any request the document
allows that the server refuses (`positive_data_acceptance`), any request it forbids that the server
carries out (`negative_data_rejection`), and an OPTIONS or 405 whose `Allow` lists other methods.

The AI operations are in the run with the small model (tests/helpers.py TEST_ENV). The routes that
run a job are called with `Prefer: respond-async` (202 and the job, documented): one course from
the small model takes minutes on a shared 2-core machine, so the run checks what they accept and
answer, and the jobs run on in the background; `generate/refine` answers from the model while the
request waits (few examples). The course-scoped AI routes target a real (draft) course. (A value
pinned in a body would drop the case's generation data and with it the positive/negative checks,
so bodies are left to the generator; the documented example of each AI body is the first case.)

The few exceptions are listed in CONFIG with the reason each one is not a lie of the document."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Install, Server, init_data_dir, start_server

JOB_ROUTES = "^/v1/headless/(generate/course|course/generate|translation/(translate|sync)/)"
CONFIG = """
[checks]
enabled = true

# The embed, origin and deletion routes read JSON, a form or the query string alike and take
# numbers and text loosely, as the cloud does (an identifier sent as a number is its digits; an
# unknown `translations` value is ignored): the document says what to send, the server also takes
# a little more, so a request outside the document is not always refused.
[[operations]]
include-path-regex = "^/v1/headless/(embed/|course/url|course/view|course/edit|tracking$|user/\\\\{{identifier\\\\}}$)"
checks.negative_data_rejection.enabled = false

# Valid by the document, refused by facts a schema cannot state: a webhook receiver must be on the
# operator's allowlist, a collection's courses and theme must exist (422, the cloud's status), and
# an upload's type is decided by the file's content (415).
[[operations]]
include-name-regex = "^POST /v1/headless/(webhooks|collection|documents)$"
checks.positive_data_acceptance.enabled = false

# AI routes that run a job: answer with the job at once, on a real course
[[operations]]
include-path-regex = "^/v1/headless/(generate/course|course/generate|translation/(translate|sync)/)"
generation.max-examples = 3
phases.coverage.enabled = false
parameters = {{ Prefer = "respond-async", course_id = {course} }}

[[operations]]
include-path-regex = "/narrate$"
generation.max-examples = 3
phases.coverage.enabled = false
parameters = {{ course_id = {course} }}

# the one AI route answered from the model while the request waits: few examples
[[operations]]
include-path-regex = "^/v1/headless/generate/refine$"
generation.max-examples = 3
phases.coverage.enabled = false

# a job's event stream stays open until the job ends: the first event is enough
[[operations]]
include-path-regex = "/events$"
max-stream-events = 1
"""


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Install]]:
    install = init_data_dir(tmp_path_factory.mktemp("schemathesis") / "data")
    server = start_server(install.data_dir)
    yield server, install
    server.stop()


def _draft_course(server: Server, install: Install) -> int:
    """A real course for the course-scoped AI routes: an edit embed without a course creates one."""
    client = server.client(install.test_key)
    minted = client.post("/v1/headless/embed/course", json={"action": "edit"})
    assert minted.status_code == 200, minted.text
    return int(max(c["id"] for c in client.get("/v1/headless/courses").json()))


def _run(server: Server, install: Install, config: Path, *selection: str) -> tuple[int, str]:
    command = [
        str(Path(sys.executable).parent / "schemathesis"), "--config-file", str(config), "--no-color",
        "run", f"{server.url}/api/docs/json",
        "--header", f"Authorization: {install.test_key}",
        "--max-examples", "5",
        "--seed", "7",
        "--phases", "examples,coverage,fuzzing",
        "--request-timeout", "60",
        *selection,
    ]
    # run in the test's directory: schemathesis keeps its example database in the working directory
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=400, check=False, cwd=config.parent
    )
    report = result.stdout[-8000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    selected = re.search(r"Operations:\s+(\d+) selected", result.stdout)
    assert selected is not None, report
    return int(selected.group(1)), report


def test_schemathesis_finds_no_5xx_no_schema_violation_and_no_missing_auth(fuzzed: tuple[Server, Install]) -> None:
    server, install = fuzzed
    config = install.data_dir.parent / "schemathesis.toml"
    config.write_text(CONFIG.format(course=_draft_course(server, install)))
    # the job routes last: the jobs they start keep the model busy after their 202
    first, _ = _run(server, install, config, "--exclude-path-regex", JOB_ROUTES)
    last, _ = _run(server, install, config, "--include-path-regex", JOB_ROUTES)
    assert first + last >= 75  # every documented operation, the AI ones included
    assert "unhandled error" not in server.log()

"""A bounded schemathesis run against the real server (decisions D11, issue 11): seeded and
time-boxed, it fails on any 5xx, any status, content type or body the OpenAPI document does not
describe, and any operation that answers without the key.

Not yet covered: the AI operations (generate, translate, sync, narrate: one call to the small model
takes seconds on a shared 2-core machine, and a run over them did not finish in 400 s), and the
`positive_data_acceptance` family of checks (the loose-body routes' required fields are not
described in the document yet). Both are open in issue 11."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Install, Server, init_data_dir, start_server

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,ignored_auth"
AI_OPERATIONS = "generate|translation/translate|translation/sync|narrate"


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Install]]:
    install = init_data_dir(tmp_path_factory.mktemp("schemathesis") / "data")
    server = start_server(install.data_dir)
    yield server, install
    server.stop()


def test_schemathesis_finds_no_5xx_no_schema_violation_and_no_missing_auth(fuzzed: tuple[Server, Install]) -> None:
    server, install = fuzzed
    command = [
        str(Path(sys.executable).parent / "schemathesis"), "run", f"{server.url}/api/docs/json",
        "--header", f"Authorization: {install.test_key}",
        "--checks", CHECKS,
        "--max-examples", "10",
        "--seed", "7",
        "--phases", "examples,coverage,fuzzing",
        "--exclude-path-regex", AI_OPERATIONS,
        "--request-timeout", "30",
        "--no-color",
    ]
    # run from the test's directory: schemathesis keeps its example database in the working directory
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=400, check=False, cwd=install.data_dir.parent
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "unhandled error" not in server.log()

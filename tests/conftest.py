from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import CHROMIUM, CHROMIUM_ARGS, Install, Server, init_data_dir, start_server


@pytest.fixture(scope="session")
def install(tmp_path_factory: pytest.TempPathFactory) -> Install:
    """One initialised data directory shared by the read-mostly server tests."""
    return init_data_dir(tmp_path_factory.mktemp("shared") / "data")


@pytest.fixture(scope="session")
def server(install: Install) -> Iterator[Server]:
    srv = start_server(install.data_dir)
    yield srv
    srv.stop()


@pytest.fixture()
def fresh_install(tmp_path: Path) -> Install:
    return init_data_dir(tmp_path / "data")


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[object]:
    """One sync Playwright for the whole run: two at once refuse to start (they share an event loop)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_instance):  # type: ignore[no-untyped-def]
    browser = playwright_instance.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


# The longest test files, longest first: each file's `--durations=0` times summed, from a run on 2
# xdist workers (2026-12-02: 158 s for test_binary.py down to 28 s). `make test` runs the files on
# pytest-xdist workers (`--dist loadfile`: a file's tests, and so its module-scoped server, stay on one
# worker) in collection order, so these go first and the last file to finish is a short one.
# Order only: every file runs, in any order, serially or not.
LONGEST_FIRST = (
    "tests/test_binary.py",
    "tests/ai/test_generation_api.py",
    "tests/documents/test_documents.py",
    "tests/server/test_workers.py",
    "tests/release/test_upgrade.py",
    "tests/server/test_schemathesis.py",
    "tests/embeds/test_builder.py",
    "tests/embeds/test_builder_ai.py",
    "tests/embeds/test_browser.py",
    "tests/admin/test_console_http.py",
    "tests/storage/test_rotation.py",
    "tests/security/test_audit.py",
    "tests/ai/test_narration.py",
    "tests/ai/test_batching.py",
    "tests/storage/test_durability.py",
    "tests/server/test_sse.py",
    "tests/ai/test_local.py",
    "tests/storage/test_disk_full.py",
    "tests/test_airgap.py",
    "tests/ai/test_model_process.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))  # stable: files stay whole


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # type: ignore[no-untyped-def]
    """Skipped tests are listed by name and reason at the end of every run, loudly: a test that
    skips (no root for the disk-full namespaces, no systemd-analyze, no model) has guarded nothing,
    and `-q` alone would only count it."""
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    terminalreporter.section(f"{len(skipped)} TESTS DID NOT RUN", sep="!", red=True, bold=True)
    for report in skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        terminalreporter.write_line(f"SKIPPED {report.nodeid}: {reason.removeprefix('Skipped: ')}", red=True)

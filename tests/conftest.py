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

"""A real encrypted environment database (made by `appliance init`, demo course id 1) for the
learners services, which run inside writer jobs exactly as the routes, the player and SCORM call them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlite_utils

from appliance import config
from appliance.runtime import Runtime, open_runtime
from appliance.security.audit import now_iso
from appliance.storage.database import Database
from tests.helpers import Install, init_data_dir

Job = Callable[[sqlite_utils.Database], Any]


@pytest.fixture(scope="module")
def install(tmp_path_factory: pytest.TempPathFactory) -> Install:
    return init_data_dir(tmp_path_factory.mktemp("learners") / "data")


@pytest.fixture()
def runtime(install: Install) -> Iterator[Runtime]:
    runtime = open_runtime(config.load(install.data_dir))
    yield runtime
    runtime.close()


@pytest.fixture()
def db(runtime: Runtime, install: Install) -> Database:
    return runtime.environment(install.workspace_id, "test")


@pytest.fixture()
def write(db: Database) -> Callable[[Job], Any]:
    """Run one job in a writer transaction (what a route's `db.awrite` does)."""
    return db.write


def subscribe(w: sqlite_utils.Database, events: list[str]) -> None:
    """A webhook endpoint, so emitted events land in the outbox."""
    now = now_iso()
    w.execute(
        "INSERT INTO webhook_endpoints (url, events, secret, created, updated) VALUES (?, ?, ?, ?, ?)",
        ["https://hooks.example.test/in", json.dumps(events), "s" * 32, now, now],
    )

"""A workspace with learners, trackings and a collection, made through the real storage layer
before the server starts (the player that records trackings over HTTP comes with the embeds)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from appliance import config
from appliance.learners.identities import ensure_identity
from appliance.learners.trackings import record_progress
from appliance.runtime import open_runtime
from tests.helpers import Install, Server, create_key, init_data_dir, start_server


def populate(install: Install) -> None:
    runtime = open_runtime(config.load(install.data_dir))
    try:
        db = runtime.environment(install.workspace_id, "test")

        def job(w):  # type: ignore[no-untyped-def]
            for ident, client in (("ann", "acme"), ("bob", "acme"), ("cat", "globex")):
                ensure_identity(w, ident, client, name=ident.title(), email=f"{ident}@example.test")
            record_progress(w, 1, "ann", client_identifier="acme", progress_percent=50, seconds=60)
            record_progress(w, 1, "ann", client_identifier="acme", progress_percent=20, seconds=30)  # never decreases
            record_progress(w, 1, "bob", client_identifier="acme", completed=True, score=80, passed=True, seconds=300,
                            attempt={"screen": 4, "score": 80})
            record_progress(w, 1, "cat", client_identifier="globex", progress_percent=10, seconds=5)
            w.execute("UPDATE courses SET identifier = 'ann', client_identifier = 'acme' WHERE id = 1")

        db.write(job)
    finally:
        runtime.close()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Install]]:
    install = init_data_dir(tmp_path_factory.mktemp("headless") / "data")
    populate(install)
    server = start_server(install.data_dir)
    server.extra["production_key"] = create_key(install.data_dir, install.workspace_id, "production")
    yield server, install
    server.stop()

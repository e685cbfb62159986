"""Deleting a user through the API is hard deletion: nothing of theirs is left in any file, even
decrypted with the appliance's own keys, and a restore to before the deletion does not bring them back."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from appliance import config
from appliance.learners.identities import ensure_identity
from appliance.learners.trackings import record_progress
from appliance.runtime import open_runtime
from tests.backup.test_erasure import find_marker
from tests.helpers import cli, init_data_dir, start_server

MARKER = "zelda.erasure.marker@example.test"


def test_user_delete_erases_everywhere_and_stays_erased(tmp_path) -> None:  # type: ignore[no-untyped-def]
    install = init_data_dir(tmp_path / "data")
    runtime = open_runtime(config.load(install.data_dir))
    try:
        def job(w):  # type: ignore[no-untyped-def]
            ensure_identity(w, "zelda", "hyrule", name="Zelda", email=MARKER)
            ensure_identity(w, "link", "hyrule", name="Link", email="link@example.test")
            record_progress(w, 1, "zelda", client_identifier="hyrule", progress_percent=40, email=MARKER)
            record_progress(w, 1, "link", client_identifier="hyrule", progress_percent=10)

        runtime.environment(install.workspace_id, "test").write(job)
    finally:
        runtime.close()
    backups = tmp_path / "backups"
    env = {"APPLIANCE_BACKUP_PATH": str(backups), "APPLIANCE_BACKUP_SHIP_INTERVAL_SECONDS": "0.2"}
    server = start_server(install.data_dir, env=env)
    try:
        c = server.client(install.test_key)
        assert c.get("/v1/headless/user/zelda").json()["email"] == MARKER
        cli("backup", "now", data_dir=install.data_dir, env=env)
        time.sleep(1.0)  # shipped log segments now hold the user's rows too
        before_delete = datetime.now(UTC).isoformat()
        time.sleep(0.5)
        response = c.delete("/v1/headless/user/zelda", params={"action": "delete"})
        assert response.status_code == 200, response.text
        assert c.get("/v1/headless/user/zelda").status_code == 404
        assert c.get("/v1/headless/user/link").status_code == 200  # only the subject goes
        time.sleep(0.5)
    finally:
        server.stop()
    runtime = open_runtime(config.load(install.data_dir, environ=env))
    try:
        assert find_marker(runtime, [install.data_dir, backups], MARKER.encode()) == []
    finally:
        runtime.close()
    target = tmp_path / "restored"
    cli("restore", "--to", before_delete, "--target", str(target), data_dir=install.data_dir, env=env)
    restored = start_server(target, env={"APPLIANCE_BACKUP_PATH": str(tmp_path / "backups2")})
    try:
        c = restored.client(install.test_key)
        assert c.get("/v1/headless/user/zelda").status_code == 404  # the erasure ledger is re-applied
        assert c.get("/v1/headless/user/link").status_code == 200
        assert all(r["identifier"] != "zelda" for r in c.get("/v1/headless/trackings", params={"id": 1}).json())
    finally:
        restored.stop()

"""Nothing under the data directory is readable without the keys."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import Install, start_server

PLAIN_OPEN = (
    "import sqlite3,sys\n"
    "bad=[]\n"
    "for p in sys.argv[1:]:\n"
    "  try:\n"
    "    sqlite3.connect(p).execute('select count(*) from sqlite_master').fetchone(); bad.append(p)\n"
    "  except sqlite3.DatabaseError: pass\n"
    "print('\\n'.join(bad)); sys.exit(1 if bad else 0)\n"
)


def test_no_plaintext_anywhere(fresh_install: Install) -> None:
    canary_title = "Canary theme 7f3a9c"  # written through the API
    secret = fresh_install.test_key.split(":")[2]
    srv = start_server(fresh_install.data_dir)
    try:
        c = srv.client(fresh_install.test_key)
        assert c.post("/v1/headless/themes", json={"name": canary_title}).status_code == 200
        assert c.get("/v1/headless/courses").status_code == 200
        files = [p for p in fresh_install.data_dir.rglob("*") if p.is_file()]
        wal = [p for p in files if p.name.endswith("-wal")]
        assert wal, "the live WAL files are part of the check"
        _assert_clean(files, [canary_title, secret, "New starter induction"])
        db_files = [str(p) for p in files if p.name.endswith(".db")]  # WAL bytes are scanned above
        check = subprocess.run([sys.executable, "-c", PLAIN_OPEN, *db_files], capture_output=True, text=True)
        assert check.returncode == 0, f"opened without a key: {check.stdout}"
    finally:
        srv.stop()
    files = [p for p in fresh_install.data_dir.rglob("*") if p.is_file()]
    _assert_clean(files, [canary_title, secret, "New starter induction"])


def _assert_clean(files: list, needles: list[str]) -> None:  # type: ignore[type-arg]
    for path in files:
        data = path.read_bytes()
        for needle in needles:
            for encoding in ("utf-8", "utf-16-le"):
                assert needle.encode(encoding) not in data, f"{needle!r} in plaintext in {path.name}"

from __future__ import annotations

import json
import re
from pathlib import Path

from appliance import config
from appliance.runtime import open_runtime
from tests.helpers import Install, cli


def _tamper(data_dir: Path, *statements: str) -> None:
    runtime = open_runtime(config.load(data_dir))
    try:

        def job(db):  # type: ignore[no-untyped-def]
            for sql in statements:
                db.execute(sql)

        runtime.audit.database.write(job)
    finally:
        runtime.close()


def _fill(data_dir: Path, n: int) -> None:
    for _ in range(n):
        cli("metrics", "token", data_dir=data_dir)


def _entries(data_dir: Path) -> int:
    found = re.search(r"OK: (\d+) entries", cli("audit", "verify", data_dir=data_dir).stdout)
    assert found is not None
    return int(found.group(1))


def test_verify_passes_on_an_untouched_log(fresh_install: Install) -> None:
    before = _entries(fresh_install.data_dir)  # init's own entries (the install, the setup link)
    assert before >= 1
    _fill(fresh_install.data_dir, 3)
    assert _entries(fresh_install.data_dir) == before + 3


def test_changed_entry_is_detected(fresh_install: Install) -> None:
    _fill(fresh_install.data_dir, 3)
    _tamper(fresh_install.data_dir, "UPDATE audit SET actor = 'someone-else' WHERE seq = 2")
    result = cli("audit", "verify", data_dir=fresh_install.data_dir, check=False)
    assert result.returncode == 1
    assert "entry 2: content was changed" in result.stdout


def test_removed_entry_is_detected(fresh_install: Install) -> None:
    _fill(fresh_install.data_dir, 3)
    _tamper(fresh_install.data_dir, "DELETE FROM audit WHERE seq = 2")
    result = cli("audit", "verify", data_dir=fresh_install.data_dir, check=False)
    assert result.returncode == 1
    assert "entry 2 is missing" in result.stdout


def test_reordered_entries_are_detected(fresh_install: Install) -> None:
    _fill(fresh_install.data_dir, 3)
    _tamper(
        fresh_install.data_dir,
        "UPDATE audit SET seq = -2 WHERE seq = 2",
        "UPDATE audit SET seq = 2 WHERE seq = 3",
        "UPDATE audit SET seq = 3 WHERE seq = -2",
    )
    result = cli("audit", "verify", data_dir=fresh_install.data_dir, check=False)
    assert result.returncode == 1
    assert "chain broken" in result.stdout


def test_truncated_tail_is_detected(fresh_install: Install) -> None:
    _fill(fresh_install.data_dir, 3)
    _tamper(fresh_install.data_dir, "DELETE FROM audit WHERE seq >= 3")
    result = cli("audit", "verify", data_dir=fresh_install.data_dir, check=False)
    assert result.returncode == 1
    assert "were removed" in result.stdout


def test_export_is_json_lines(fresh_install: Install, tmp_path: Path) -> None:
    before = _entries(fresh_install.data_dir)
    _fill(fresh_install.data_dir, 2)
    out = tmp_path / "audit.jsonl"
    cli("audit", "export", "--output", str(out), data_dir=fresh_install.data_dir)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["seq"] for r in rows] == list(range(1, before + 3))
    assert rows[0]["route"] == "init" and rows[0]["actor"] == "admin:cli"
    assert all(len(r["hash"]) == 64 for r in rows)

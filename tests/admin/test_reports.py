"""The console's queries: usage anomalies, the binary search by time, paging, last use of a key."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from appliance.admin import reports
from appliance.runtime import Runtime, initialise
from appliance.security.audit import AuditEvent
from appliance.workspaces import service


@pytest.fixture()
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    opened, _ = initialise(tmp_path / "data")
    opened.create_workspace("w")
    yield opened
    opened.close()


def _calls(runtime: Runtime, actor: str, day: datetime, n: int) -> None:
    for i in range(n):
        moment = (day + timedelta(seconds=i)).isoformat(timespec="microseconds").replace("+00:00", "Z")
        runtime.audit.record_sync(AuditEvent(actor=actor, method="GET", route="/v1/headless/courses", status=200,
                                             request_id=f"{i:016x}", workspace_id=1, environment="test", time=moment))


def test_a_key_making_ten_times_its_usual_calls_is_flagged(runtime: Runtime) -> None:
    now = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    for days_ago in range(7, 0, -1):
        _calls(runtime, "apikey:key_steady", now - timedelta(days=days_ago), 10)
        _calls(runtime, "apikey:key_burst", now - timedelta(days=days_ago), 6)
    _calls(runtime, "apikey:key_steady", now, 60)  # busy (over the floor) but only 6x its usual
    _calls(runtime, "apikey:key_burst", now, 60)
    found = {u.actor: u for u in reports.usage(runtime.audit.database, now + timedelta(hours=1))}
    assert found["apikey:key_burst"].usual == 6 and found["apikey:key_burst"].today == 60
    assert found["apikey:key_burst"].anomalous
    assert not found["apikey:key_steady"].anomalous
    assert reports.first_seq_since(runtime.audit.database, (now - timedelta(days=3)).date().isoformat()) == 4 * 16 + 1  # four earlier days of 6 + 10 calls


def test_pages_and_last_use(runtime: Runtime) -> None:
    ids = [service.create_api_key(runtime.control, runtime.pepper, 1, "test")[0] for _ in range(reports.PAGE + 3)]
    _calls(runtime, f"apikey:{ids[-1]}", datetime.now(UTC), 2)
    first = reports.key_page(runtime.control, runtime.audit.database, 1)
    assert first.total == len(ids) and first.pages == 2 and len(first.rows) == reports.PAGE
    assert first.rows[0]["key_id"] == ids[-1] and first.rows[0]["last_used"] is not None
    assert first.rows[1]["last_used"] is None
    second = reports.key_page(runtime.control, runtime.audit.database, 2)
    assert [r["key_id"] for r in second.rows] == list(reversed(ids[:3]))
    _calls(runtime, f"apikey:{ids[0]}", datetime.now(UTC), 3)  # another key's calls: the filter leaves them out
    audit = reports.audit_page(runtime.audit.database, reports.AuditFilter(actor=f"apikey:{ids[-1]}"), 1)
    assert audit.total == 2 and all(r["actor"] == f"apikey:{ids[-1]}" for r in audit.rows)
    assert reports.audit_page(runtime.audit.database, reports.AuditFilter(route="nothing-like-this"), 1).total == 0

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from appliance.courses import retention, service
from appliance.courses.demo import demo_content
from appliance.runtime import initialise
from appliance.storage.database import fetch_all


def test_soft_deleted_courses_are_erased_after_the_retention_period(tmp_path: Path) -> None:
    runtime, _ = initialise(tmp_path / "data")
    try:
        ws = runtime.create_workspace("retention")
        db = runtime.environment(ws, "test")
        old = db.write(lambda w: service.create(w, title="Old and deleted", content=demo_content()))
        recent = db.write(lambda w: service.create(w, title="Recently deleted", content=demo_content()))
        kept = db.write(lambda w: service.create(w, title="Still live", content=demo_content()))
        long_ago = (datetime.now(UTC) - timedelta(days=40)).isoformat()
        db.write(lambda w: w.execute("UPDATE courses SET deleted = ? WHERE id = ?", [long_ago, old]))
        db.write(lambda w: service.soft_delete(w, recent))
        assert retention.purge_expired(runtime, 0) == 0  # 0 means never
        assert retention.purge_expired(runtime, 30) == 1
        ids = {r["id"] for r in fetch_all(db.read(), "SELECT id FROM courses")}
        assert old not in ids and {recent, kept} <= ids
        assert retention.purge_expired(runtime, 30) == 0
    finally:
        runtime.close()

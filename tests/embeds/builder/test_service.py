"""The builder's draft operations on a real encrypted database: made screens (generated, or from a
document) appended with unique titles, or replacing the draft's screens."""

from __future__ import annotations

import json
from typing import Any

from appliance import config
from appliance.courses import service as courses
from appliance.embeds.builder import service
from appliance.runtime import open_runtime
from tests.helpers import Install


def _text(title: str) -> dict[str, Any]:
    return {"type": "text", "title": title, "content": {"html": "<p>x</p>"}}


def test_appended_screens_never_repeat_a_title_and_replace_drops_the_old_ones(fresh_install: Install) -> None:
    runtime = open_runtime(config.load(fresh_install.data_dir))
    try:
        db = runtime.environment(fresh_install.workspace_id, "test")
        start = {"screens": [{"id": 1, **_text("Hand washing")}, {"id": 2, **_text("Drying")}]}
        course = db.write(lambda w: courses.create(w, title="Hygiene", content=start))

        def titles() -> list[str]:
            return [s["title"] for s in json.loads(courses.get_row(db.read(), course)["draft"])["screens"]]

        made = [_text("hand washing "), _text("Gloves"), _text("Gloves"), _text("Hand washing")]
        db.write(lambda w: service.merge_screens(w, course, made, "Made", "Made"))
        assert titles() == ["Hand washing", "Drying", "hand washing (2)", "Gloves", "Gloves (2)", "Hand washing (3)"]
        assert courses.get_row(db.read(), course)["title"] == "Hygiene"  # a titled course keeps its title

        db.write(lambda w: service.merge_screens(w, course, [_text("Drying"), _text("Masks")], "M", "M", replace=True))
        assert titles() == ["Drying", "Masks"]  # in place of the old screens: nothing to number
    finally:
        runtime.close()

"""The support check behind a document course's `unsupported` flags (appliance.documents.course): the
share of a screen's content words found in the document's best-matching chunks, on a document
ingested through the real pipeline (sandboxed reader, chunking, FTS5 index) into a real encrypted
database. The courses the model writes are checked in test_documents.py; here the verdicts are known
in advance, so a flag that is due must be raised and one that is not must not."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance import config
from appliance.documents import service
from appliance.documents.course import flag_unsupported, support_score
from appliance.runtime import Runtime, open_runtime
from tests.helpers import init_data_dir

SOURCE = (
    "# Forklift checks\n\nOperators inspect the forks, chains and hydraulic hoses before every shift. "
    "A damaged chain takes the truck out of service.\n\n"
    "# Ladders\n\nKeep three points of contact on a ladder and never stand on the top rung."
)


def _screen(screen_id: int, title: str, *items: str) -> dict[str, Any]:
    return {"id": screen_id, "type": "list", "title": title, "content": {"items": [{"title": t} for t in items]}}


SUPPORTED = _screen(1, "Forklift checks", "Inspect the forks and chains", "Hydraulic hoses before each shift")
HALF = _screen(2, "Ladders and scaffolding", "Three points of contact", "Scaffold towers need guardrails")
ELSEWHERE = _screen(3, "Baking sourdough", "Feed the starter with flour", "Proof the dough overnight")


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Runtime, Any, int]]:
    install = init_data_dir(Path(tmp_path_factory.mktemp("support")) / "data")
    runtime = open_runtime(config.load(install.data_dir))
    try:
        record = service.ingest(runtime, install.workspace_id, "test", "checks.md", SOURCE.encode())
        yield runtime, runtime.environment(install.workspace_id, "test").read(), int(record["id"])
    finally:
        runtime.close()


def test_support_score_of_supported_half_supported_and_unrelated_screens(document: tuple[Runtime, Any, int]) -> None:
    _runtime, db, document_id = document
    scores = [support_score(db, document_id, s) for s in (SUPPORTED, HALF, ELSEWHERE)]
    assert scores[0] == 1.0 and 0.2 < scores[1] < 0.8 and scores[2] == 0.0, scores
    assert support_score(db, document_id, _screen(4, "", "")) == 0.0  # no words: nothing supports it


def test_flags_are_raised_where_due_and_cleared_where_not(document: tuple[Runtime, Any, int]) -> None:
    runtime, db, document_id = document
    threshold = runtime.settings.documents.support_threshold
    screens = [dict(SUPPORTED), {**ELSEWHERE, "unsupported": False}, {**SUPPORTED, "id": 5, "unsupported": True}]
    assert flag_unsupported(db, document_id, screens, threshold) == [3]  # exactly the one that is due
    assert [s.get("unsupported") for s in screens] == [None, True, None]  # a stale flag is cleared
    # the threshold decides: at 0 nothing is flagged, above 1 everything is
    assert flag_unsupported(db, document_id, [dict(HALF)], 0.0) == []
    assert flag_unsupported(db, document_id, [dict(SUPPORTED), dict(HALF)], 1.01) == [1, 2]

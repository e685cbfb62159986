"""A real data directory with one workspace, for the backup tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.runtime import Runtime, initialise


@pytest.fixture()
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt, _ = initialise(tmp_path / "data")
    rt.create_workspace("pitr")
    yield rt
    rt.close()

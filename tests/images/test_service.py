"""illustrate() end to end on a real appliance (encrypted databases and object store made by `appliance
init`), the real small model (SmolLM2-135M) for keywords, the real image engine stand-in over HTTP;
then what uses it: the cover of a generated course, a generated screen's image, the usage count and
the SCORM package that carries the images."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest

from appliance import config
from appliance.ai.engine import CancelToken
from appliance.ai.errors import Cancelled
from appliance.ai.models import REPO_MODELS_DIR
from appliance.config import ImageSettings, RemoteEngine
from appliance.courses import service as courses
from appliance.courses.model import empty_content
from appliance.embeds.sessions import signer_of
from appliance.errors import BadGateway, Unavailable
from appliance.headless.usage import IMAGES, allowance_rows, current_period, usage
from appliance.images import generated
from appliance.images.library import load
from appliance.images.service import illustrate, stored_file
from appliance.runtime import Runtime, open_runtime
from appliance.scorm.cmi5 import build_cmi5_package
from appliance.scorm.package import build_package
from tests.ai.conftest import TEST_MODEL, model_path
from tests.helpers import Install, init_data_dir
from tests.images.engine_server import EngineServer, engine_server, url

ENV = "test"


@pytest.fixture(scope="module")
def install(tmp_path_factory: pytest.TempPathFactory) -> Install:
    return init_data_dir(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="module")
def runtime(install: Install) -> Iterator[Runtime]:
    opened = open_runtime(config.load(install.data_dir))
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def model() -> Iterator[Any]:
    assert model_path().is_file(), f"run .venv/bin/python models/install.py {TEST_MODEL}"
    from appliance.ai.local import LocalEngine

    engine = LocalEngine(TEST_MODEL, models_dir=REPO_MODELS_DIR, n_threads=2, n_ctx=2048, queue_size=8, timeout=120)
    assert engine.wait_ready(60).value == "ready", engine.info()
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def server() -> Iterator[EngineServer]:
    with engine_server() as running:
        yield running


@pytest.fixture()
def engines(runtime: Runtime) -> Iterator[ImageSettings]:
    """The runtime's [images] settings, restored after the test."""
    before = runtime.settings.images
    runtime.settings.images = ImageSettings()
    yield runtime.settings.images
    runtime.settings.images = before


def _make(runtime: Runtime, install: Install, *, client: str = "acme", **kw: Any) -> Any:
    args: dict[str, Any] = {"workspace_id": install.workspace_id, "environment": ENV, "subject": ("client", client),
                            "title": "Fire safety at work", "text": "Know where the extinguishers are.",
                            "theme": None, "purpose": "screen", "client_identifier": client, **kw}
    return illustrate(runtime, **args)


def _stored(runtime: Runtime, install: Install) -> tuple[int, int]:
    """(encrypted object files, image_generations rows): what a failure must leave as it was."""
    files = len([p for p in (install.data_dir / "objects").rglob("*") if p.is_file()])
    rows = runtime.environment(install.workspace_id, ENV).read().execute(
        "SELECT count(*) FROM image_generations").fetchone()[0]
    return files, int(rows)


def _count(runtime: Runtime, install: Install, client: str | None) -> int:
    return usage(runtime.environment(install.workspace_id, ENV).read(), ENV, IMAGES, client, current_period())


def test_the_model_keywords_choose_icons_and_the_image_is_stored_encrypted_and_counted(
    runtime: Runtime, install: Install, model: Any, engines: ImageSettings
) -> None:
    before = _count(runtime, install, "acme")
    image = _make(runtime, install, engine=model)
    # the model's 2 to 5 keywords chose the icons (the title's words alone are ["fire", "safety", "work"])
    assert 2 <= len(image.keywords) <= 5 and image.keywords != ("fire", "safety", "work")
    assert load().rank(list(image.keywords), 1)[0].name.replace("-", " ") in image.alt
    assert (image.extension, image.media_type, image.source) == ("svg", "image/svg+xml", "library")
    plain = stored_file(runtime, install.workspace_id, ENV, image.object_id)
    assert plain.startswith(b"<svg") and len(plain) == image.bytes and f"<title>{image.alt}</title>".encode() in plain
    on_disk = (install.data_dir / "objects" / str(install.workspace_id) / ENV / image.object_id).read_bytes()
    assert b"<svg" not in on_disk and b"<title>" not in on_disk  # encrypted at rest
    assert _count(runtime, install, "acme") == before + 1
    assert _count(runtime, install, "someone-else") == 0
    rows = {r["metric"]: r for r in allowance_rows(runtime.environment(install.workspace_id, ENV).read(), ENV, "acme")}
    assert rows[IMAGES]["currentUsage"] == before + 1


def test_without_a_model_the_title_chooses_and_the_same_input_gives_the_same_picture(
    runtime: Runtime, install: Install, engines: ImageSettings
) -> None:
    first, second = _make(runtime, install), _make(runtime, install)
    assert first.object_id != second.object_id
    read = lambda i: stored_file(runtime, install.workspace_id, ENV, i.object_id)  # noqa: E731
    assert read(first) == read(second)
    assert "fire" in first.alt.lower() and first.alt.endswith("for “Fire safety at work”")


def test_a_cancelled_call_stores_nothing(runtime: Runtime, install: Install, engines: ImageSettings) -> None:
    token = CancelToken()
    token.cancel()
    before = _stored(runtime, install)
    with pytest.raises(Cancelled):
        _make(runtime, install, cancel=token)
    assert _stored(runtime, install) == before


def test_a_configured_engine_draws_instead_of_the_library(
    runtime: Runtime, install: Install, server: EngineServer, engines: ImageSettings
) -> None:
    engines.engines.append(RemoteEngine(url=url(server, "ok"), name="gpu"))
    image = _make(runtime, install, purpose="cover")
    assert (image.extension, image.source) == ("png", "engine:gpu")
    assert stored_file(runtime, install.workspace_id, ENV, image.object_id).startswith(b"\x89PNG")
    assert image.alt == "Illustration for “Fire safety at work”"  # no model: derived from the title
    prompt = server.requests[-1]["body"]["prompt"]
    assert "Fire safety at work" in prompt and "fire, safety, work" in prompt and "No text" in prompt


@pytest.mark.parametrize(("modes", "error"), [(["html", "giant"], BadGateway), (["busy"], Unavailable)])
def test_an_engine_failure_stores_and_counts_nothing(
    runtime: Runtime, install: Install, server: EngineServer, engines: ImageSettings, modes: list[str], error: type
) -> None:
    engines.engines.extend(RemoteEngine(url=url(server, m), name=m) for m in modes)
    before = _stored(runtime, install)
    with pytest.raises(error):
        _make(runtime, install)
    assert _stored(runtime, install) == before


def _course(runtime: Runtime, install: Install, client: str | None) -> int:
    content = empty_content()
    content["screens"] = [{"id": 1, "type": "text", "title": "Raise the alarm", "content": {"html": "<p>Shout.</p>"}}]
    return int(runtime.environment(install.workspace_id, ENV).write(
        lambda w: courses.create(w, title="Fire safety", description="Stay safe at work", content=content,
                                 client_identifier=client)))


def test_a_generated_course_gets_a_cover_that_its_scorm_package_carries(
    runtime: Runtime, install: Install, engines: ImageSettings
) -> None:
    course_id = _course(runtime, install, None)
    base = "https://appliance.example"
    assert generated.cover(runtime, None, install.workspace_id, ENV, course_id, base, None) == {"images": 1}
    database = runtime.environment(install.workspace_id, ENV)
    row = courses.get_row(database.read(), course_id)
    assert row["image"] == row["thumbnail"] and row["image"].startswith(f"{base}/embed/media/{install.workspace_id}/test/")
    alt = json.loads(row["draft"])["start"]["image_alt"]
    assert alt.startswith("Illustration of ")
    # a screen image, and a URL of another workspace that the package must not read
    screen: dict[str, Any] = {"type": "list", "title": "Exits", "content": {"items": [{"title": "Doors"}]}}
    assert generated.screen_image(runtime, None, install.workspace_id, ENV, course_id, screen, base, None) == {"images": 1}
    # the same object id under another workspace's path: a reader that ignored the path would find it
    foreign = screen["asset"].replace(f"/media/{install.workspace_id}/", f"/media/{install.workspace_id + 1}/")

    def finish(w: Any) -> None:
        content = json.loads(courses.get_row(w, course_id)["draft"])
        content["screens"][0]["asset"] = screen["asset"]
        content["screens"].append({"id": 2, "type": "text", "title": "Elsewhere", "asset": foreign,
                                   "content": {"html": "<p>x</p>"}})
        courses.save_draft(w, course_id, content)
        courses.publish(w, course_id)

    database.write(finish)
    read = lambda object_id, _ext: stored_file(runtime, install.workspace_id, ENV, object_id)  # noqa: E731
    archive, _name = build_package(database.read(), signer_of(runtime), workspace_id=install.workspace_id,
                                   environment=ENV, course_id=course_id, kind="static", version="1.2",
                                   base_url=base, media=read)
    with zipfile.ZipFile(io.BytesIO(archive)) as package:
        config_js = package.read("package.js").decode()
        course = json.loads(config_js[config_js.index("{"): config_js.rindex("}") + 1])["course"]
        assert course["image"].startswith("assets/") and package.read(course["image"]).startswith(b"<svg")
        assert course["screens"][0]["asset"].startswith("assets/")
        assert package.read(course["screens"][0]["asset"]) == read(screen["asset"].rsplit("/", 1)[1][:32], "svg")
        assert course["screens"][1]["asset"] == foreign  # another workspace's file is never read
        assert base not in json.dumps(course)[: json.dumps(course).index(foreign)]
    # a cmi5 package carries them the same way
    archive, _name = build_cmi5_package(database.read(), workspace_id=install.workspace_id, environment=ENV,
                                        course_id=course_id, base_url=base, media=read)
    with zipfile.ZipFile(io.BytesIO(archive)) as package:
        config_js = package.read("package.js").decode()
        course = json.loads(config_js[config_js.index("{"): config_js.rindex("}") + 1])["course"]
        assert package.read(course["image"]).startswith(b"<svg")
        assert package.read(course["screens"][0]["asset"]) == read(screen["asset"].rsplit("/", 1)[1][:32], "svg")
        assert course["screens"][1]["asset"] == foreign



def test_generated_steps_are_registered() -> None:
    from appliance.ai import tasks

    assert generated._course_step in tasks.COURSE_STEPS and generated._screen_step in tasks.SCREEN_STEPS

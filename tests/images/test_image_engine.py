"""Operator image engines (appliance.images.engine) against a real local HTTP server that answers
with generated PNGs, or with each kind of bad answer."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from appliance.config import ImageSettings, RemoteEngine
from appliance.errors import BadGateway, Unavailable
from appliance.images.engine import dimensions, generate
from tests.images.engine_server import EngineServer, engine_server, png, url


@pytest.fixture(scope="module")
def server() -> Iterator[EngineServer]:
    with engine_server() as running:
        yield running


def settings(server: EngineServer, *modes: str, **kw: object) -> ImageSettings:
    engines = [RemoteEngine(url=url(server, m), name=m, model="flux-test") for m in modes]
    return ImageSettings(engines=engines, **{"timeout_seconds": 5.0, "max_bytes": 100_000, **kw})  # type: ignore[arg-type]


def test_an_engine_image_is_asked_as_b64_json_and_checked(server: EngineServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPLIANCE_AI_REMOTE_API_KEY_OK", "sk-test-123")
    image = generate(settings(server, "ok"), "a fire extinguisher")
    assert image.data.startswith(b"\x89PNG") and image.extension == "png" and image.engine == "ok"
    assert dimensions(image.data, "png") == (64, 36)
    request = server.requests[-1]
    assert request["path"] == "/ok/v1/images/generations"
    assert request["body"] == {"model": "flux-test", "prompt": "a fire extinguisher", "n": 1, "size": "1024x1024",
                               "response_format": "b64_json"}
    assert request["auth"] == "Bearer sk-test-123"


def test_failover_to_the_next_engine(server: EngineServer) -> None:
    closed = RemoteEngine(url="http://127.0.0.1:9", name="nothing-listens")
    chosen = settings(server, "busy", "ok")
    chosen.engines.insert(0, closed)
    assert generate(chosen, "x").engine == "ok"
    assert generate(settings(server, "html", "ok"), "x").engine == "ok"  # a bad answer fails over too


@pytest.mark.parametrize(("mode", "reason"), [
    ("html", "not JSON"),
    ("refuse", "refused the image (400)"),
    ("declared", "larger than the image limit"),
    ("endless", "larger than the image limit"),
    ("url", "no b64_json image"),
    ("text", "no PNG, JPEG or WebP"),
    ("giant", "more than 16777216 pixels"),
])
def test_bad_answers_are_a_bad_gateway(server: EngineServer, mode: str, reason: str) -> None:
    with pytest.raises(BadGateway) as caught:
        generate(settings(server, mode), "x")
    assert reason in caught.value.message


def test_no_answer_is_unavailable(server: EngineServer) -> None:
    with pytest.raises(Unavailable) as caught:
        generate(settings(server, "busy", "slow", timeout_seconds=0.5), "x")
    assert "busy: the engine answered 503" in caught.value.message and "slow: timed out" in caught.value.message
    with pytest.raises(Unavailable):
        generate(ImageSettings(), "x")


def test_the_image_size_limit_applies_to_the_decoded_image(server: EngineServer) -> None:
    # a 64 x 36 PNG is about 100 bytes compressed: under a 50-byte limit it is refused
    with pytest.raises(BadGateway, match="larger than 50 bytes"):
        generate(settings(server, "ok", max_bytes=50), "x")
    assert len(base64.b64encode(png(64, 36))) > 50

"""Real processes for the embed tests: the appliance served on `localhost:P`, a partner host page
(the sandbox) on `127.0.0.1:Q` (a different site), and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from appliance.embeds.sandbox import Sandbox
from appliance.server.tls import make_self_signed
from tests.helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    Install,
    Server,
    free_port,
    init_data_dir,
    start_server,
)

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
SESSION_SECONDS = 10  # short, so the page refreshes its session several times during the run

ALL_TYPES = {
    "start": {"button_label": "Start", "display_description": True, "display_duration": True},
    "finish": {"title": "All done", "description": "Thanks.", "display_feedback": True},
    "screens": [
        {
            "id": 1,
            "type": "text",
            "title": "Text",
            "content": {"html": "<p>Hello <strong>world</strong></p>"},
        },
        {
            "id": 2,
            "type": "process",
            "title": "Process",
            "content": {
                "steps": [
                    {"title": "Plan", "description": "Think first"},
                    {"title": "Do", "description": "Then act"},
                ]
            },
        },
        {
            "id": 3,
            "type": "checklist",
            "title": "Checklist",
            "content": {"items": [{"title": "One"}, {"title": "Two"}]},
        },
        {
            "id": 4,
            "type": "flashcards",
            "title": "Flashcards",
            "content": {"cards": [{"front": "CPU", "back": "Processor"}, {"front": "RAM", "back": "Memory"}]},
        },
        {
            "id": 5,
            "type": "list",
            "title": "List",
            "content": {"items": [{"title": "Alpha"}, {"title": "Beta"}]},
        },
        {
            "id": 6,
            "type": "media",
            "title": "Media",
            "content": {
                "url": "data:image/svg+xml,%3Csvg xmlns=%22http://www.w3.org/2000/svg%22 width=%22320%22 height=%22120%22%3E%3Crect width=%22320%22 height=%22120%22 fill=%22%233b2db0%22/%3E%3C/svg%3E",
                "alt": "A diagram",
                "caption": "Figure 1",
            },
        },
        {
            "id": 7,
            "type": "quiz",
            "title": "Quiz",
            "scored": True,
            "passing_grade": 100,
            "content": {
                "questions": [
                    {
                        "id": 1,
                        "question": "2 + 2?",
                        "answers": [
                            {"id": 1, "text": "4", "correct": True},
                            {"id": 2, "text": "5", "correct": False},
                        ],
                        "feedback": {"correct": "Yes, four.", "incorrect": "It is four."},
                    },
                    {
                        "id": 2,
                        "question": "Pick the even numbers",
                        "answers": [
                            {"id": 1, "text": "2", "correct": True},
                            {"id": 2, "text": "3", "correct": False},
                            {"id": 3, "text": "6", "correct": True},
                        ],
                        "feedback": {"correct": "Right.", "incorrect": "2 and 6."},
                    },
                ]
            },
        },
    ],
}


@dataclass
class Appliance:
    install: Install
    server: Server
    all_types_course: int = 0
    bilingual_course: int = 0  # published in English with a published French variant

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    @property
    def origin(self) -> str:
        return self.url

    def api(self, key: str | None = None) -> httpx.Client:
        return self.server.client(key or self.install.test_key)

    def log(self) -> str:
        return self.server.log()


def _quiz_course(title: str, question: str, answers: tuple[str, str]) -> dict:  # type: ignore[type-arg]
    return {
        "screens": [
            {"id": 1, "type": "text", "title": title, "content": {"body": f"<p>{title}</p>"}},
            {
                "id": 2,
                "type": "quiz",
                "title": question,
                "scored": True,
                "passing_grade": 100,
                "content": {
                    "questions": [
                        {
                            "id": 1,
                            "question": question,
                            "answers": [
                                {"id": 1, "text": answers[0], "correct": True},
                                {"id": 2, "text": answers[1], "correct": False},
                            ],
                            "feedback": {"correct": f"{answers[0]}!", "incorrect": f"{answers[1]}?"},
                        }
                    ]
                },
            },
        ]
    }


def _seed(install: Install) -> tuple[int, int]:
    """(the every-screen-type course, a bilingual course), published in the test environment."""
    from appliance import config
    from appliance.courses import service as courses
    from appliance.runtime import open_runtime

    runtime = open_runtime(config.load(install.data_dir))
    try:
        db = runtime.environment(install.workspace_id, "test")

        def job(w):  # type: ignore[no-untyped-def]
            course_id = courses.create(
                w, title="Every screen type", content=ALL_TYPES, description="One of each."
            )
            courses.publish(w, course_id)
            english = courses.create(
                w, title="Fire safety", content=_quiz_course("Fire safety", "Which exit?", ("Green", "Red"))
            )
            courses.publish(w, english)
            french = courses.create(
                w, title="Sécurité incendie", language="fr", translation_of=english,
                content=_quiz_course("Sécurité incendie", "Quelle sortie ?", ("Verte", "Rouge")),
            )
            w.execute("UPDATE courses SET default_language = 0 WHERE id = ?", [french])
            courses.publish(w, french)
            return course_id, english

        return db.write(job)  # type: ignore[no-any-return]
    finally:
        runtime.close()


@pytest.fixture(scope="session")
def receiver_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A certificate for a local HTTPS webhook receiver that only this appliance trusts."""
    return make_self_signed(tmp_path_factory.mktemp("embed-receiver"))


@pytest.fixture(scope="session")
def appliance(tmp_path_factory: pytest.TempPathFactory, receiver_cert: tuple[Path, Path]) -> Iterator[Appliance]:
    install = init_data_dir(tmp_path_factory.mktemp("embeds") / "data")
    course_id, bilingual = _seed(install)
    port = free_port()
    env = {
        "APPLIANCE_WEBHOOKS_ALLOW_HOSTS": "127.0.0.1",
        "APPLIANCE_WEBHOOKS_CA_FILE": str(receiver_cert[0]),
        "APPLIANCE_WEBHOOKS_POLL_SECONDS": "0.1",
        "APPLIANCE_SERVER_PUBLIC_URL": f"http://localhost:{port}",
        "APPLIANCE_EMBEDS_SESSION_SECONDS": str(SESSION_SECONDS),
    }
    server = start_server(install.data_dir, port=port, env=env)
    yield Appliance(install, server, course_id, bilingual)
    server.stop()


@pytest.fixture(scope="session")
def host(appliance: Appliance) -> Iterator[Sandbox]:
    """The partner's page on 127.0.0.1 (the appliance is on localhost: another site)."""
    sandbox = Sandbox(f"http://127.0.0.1:{appliance.port}", appliance.install.test_key, host="127.0.0.1")
    sandbox.start()
    yield sandbox
    sandbox.close()


@pytest.fixture()
def page(browser):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture()
def blocked_3pc_context(playwright_instance, tmp_path):  # type: ignore[no-untyped-def]
    """A regular profile with 'Block third-party cookies' set explicitly."""
    (tmp_path / "Default").mkdir()
    (tmp_path / "Default" / "Preferences").write_text(json.dumps({"profile": {"cookie_controls_mode": 1}}))
    ctx = playwright_instance.chromium.launch_persistent_context(
        str(tmp_path), executable_path=CHROMIUM, args=CHROMIUM_ARGS
    )
    yield ctx
    ctx.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


# -- the builder tests (tests/embeds/test_builder*.py): a server of each module's own -------------
@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Install]]:
    install = init_data_dir(tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1]) / "data")
    srv = start_server(install.data_dir)  # the test model; the appliance is on 127.0.0.1
    yield srv, install
    srv.stop()


@pytest.fixture(scope="module")
def sandbox(server: tuple[Server, Install]) -> Iterator[Sandbox]:
    srv, install = server
    box = Sandbox(srv.url, install.test_key, host="localhost")  # another site than 127.0.0.1
    box.start()
    yield box
    box.close()

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.server.tls import make_self_signed
from tests.helpers import Install, Server, init_data_dir, start_server
from tests.webhooks.receiver import Receiver

# short retries so the suite stays fast: waits of ~0.2 s, ~0.4 s, then give up after 3 attempts
FAST = {
    "APPLIANCE_WEBHOOKS_ALLOW_HOSTS": "127.0.0.1",
    "APPLIANCE_WEBHOOKS_BACKOFF_BASE_SECONDS": "0.2",
    "APPLIANCE_WEBHOOKS_MAX_ATTEMPTS": "3",
    "APPLIANCE_WEBHOOKS_POLL_SECONDS": "0.1",
    "APPLIANCE_WEBHOOKS_TIMEOUT_SECONDS": "5",
}


@pytest.fixture(scope="session")
def receiver_tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that only the appliance's `webhooks.ca_file` makes trusted."""
    return make_self_signed(tmp_path_factory.mktemp("receiver"))


@pytest.fixture(scope="module")
def receiver(receiver_tls: tuple[Path, Path]) -> Iterator[Receiver]:
    rec = Receiver(*receiver_tls).start()
    yield rec
    rec.stop()


def hook_env(receiver_tls: tuple[Path, Path], **overrides: str) -> dict[str, str]:
    return {**FAST, "APPLIANCE_WEBHOOKS_CA_FILE": str(receiver_tls[0]), **overrides}


@pytest.fixture(scope="module")
def hook_install(tmp_path_factory: pytest.TempPathFactory) -> Install:
    return init_data_dir(tmp_path_factory.mktemp("hooks") / "data")


@pytest.fixture(scope="module")
def hook_server(hook_install: Install, receiver_tls: tuple[Path, Path]) -> Iterator[Server]:
    srv = start_server(hook_install.data_dir, env=hook_env(receiver_tls))
    yield srv
    srv.stop()

"""The LRS delivery worker: sends due xAPI statements, retries with backoff, logs every attempt.

One thread, started once per data directory with the other background services
(appliance.server.serve.start_background: under `serve --workers N` the supervisor runs it, not
the workers). Each statement is sent with `PUT <lrs>/statements?statementId=<id>`: the id is
stable, so a retry after a crash mid-attempt is idempotent at the LRS.

Connections reuse the webhooks' guarded transport (appliance.webhooks.worker): allowlist checked
on every connection and the checked address connected to, no redirects, no proxies from the
environment, TLS against the system store plus `webhooks.ca_file`. OAuth2 tokens (client
credentials) are fetched through the same client and kept in memory until shortly before they expire.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import sqlite_utils

from appliance import __version__, logs
from appliance.storage.database import Database
from appliance.webhooks.allow import AllowList, check_url
from appliance.webhooks.worker import Attempt, describe, guarded_client
from appliance.xapi import outbox

if TYPE_CHECKING:
    from appliance.config import WebhookSettings
    from appliance.runtime import Runtime

XAPI_VERSION = "1.0.3"
USER_AGENT = f"Coassemble-Appliance-xAPI/{__version__}"
BATCH = 20
PRUNE_SECONDS = 3600.0
RESCAN_SECONDS = 30.0


class LrsClient:
    """Sends one statement to one endpoint row. Secrets go in headers only, never in a log line."""

    def __init__(self, settings: WebhookSettings) -> None:
        self.settings = settings
        self.allow = AllowList.parse(settings.allow_hosts)
        self.client = guarded_client(settings, self.allow, 2)
        self._tokens: dict[tuple[str, int], tuple[str, float]] = {}

    def _basic(self, user: str, secret: str) -> str:
        return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()

    def _bearer(self, key: tuple[str, int], endpoint: dict[str, Any]) -> str:
        cached = self._tokens.get(key)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        token_url = str(endpoint["token_url"])
        check_url(token_url, self.allow, allow_http=self.settings.allow_http)
        form = {"grant_type": "client_credentials"}
        if endpoint.get("scope"):
            form["scope"] = str(endpoint["scope"])
        response = self.client.post(
            token_url,
            data=form,
            headers={"Authorization": self._basic(endpoint["username"], endpoint["secret"]), "User-Agent": USER_AGENT},
        )
        if response.status_code != 200:
            raise PermissionError(f"token endpoint answered HTTP {response.status_code}")
        answer = response.json()
        token = str(answer["access_token"])
        lifetime = float(answer.get("expires_in") or 300)
        self._tokens[key] = (token, time.monotonic() + max(0.0, lifetime - 30))
        return token

    def send(self, database: str, endpoint: dict[str, Any], statement_id: str, body: str) -> Attempt:
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        key = (database, int(endpoint["id"]))
        try:
            url = f"{endpoint['url']}/statements"
            check_url(url, self.allow, allow_http=self.settings.allow_http)
            if endpoint["auth"] == "oauth2":
                authorization = "Bearer " + self._bearer(key, endpoint)
            else:
                authorization = self._basic(endpoint["username"], endpoint["secret"])
            response = self.client.put(
                url,
                params={"statementId": statement_id},
                content=body.encode(),
                headers={
                    "Content-Type": "application/json",
                    "Authorization": authorization,
                    "X-Experience-API-Version": XAPI_VERSION,
                    "User-Agent": USER_AGENT,
                },
            )
            status = response.status_code
            if status == 401 and endpoint["auth"] == "oauth2":
                self._tokens.pop(key, None)  # expired early: the next attempt fetches a new one
                error = "HTTP 401: the access token was refused; a new one is fetched on retry"
                status = None
            elif 300 <= status < 400:
                error = f"HTTP {status}: redirects are not followed"
        except PermissionError as exc:
            error = f"OAuth2: {exc}"
        except Exception as exc:
            error = describe(exc, self.settings.timeout_seconds)
        return Attempt(status, error, (time.perf_counter() - started) * 1000)

    def close(self) -> None:
        self.client.close()


class LrsWorker:
    """Started by the server next to the webhook worker; `stop()` lets the attempt in flight finish."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings.webhooks
        self.client = LrsClient(self.settings)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="xapi", daemon=True)
        self._prune_at = 0.0
        self._rescan_at = 0.0
        self._broken: set[tuple[int, str]] = set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        outbox.wake()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self.client.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                sent = self.poll_once()
            except Exception as exc:
                logs.event("xapi poll failed", level=logging.ERROR, error=type(exc).__name__)
                sent = 0
            if self._stop.is_set():
                break
            if not sent:
                outbox.wait_for_work(self.settings.poll_seconds)

    def _open_all(self) -> None:
        """Open every environment database, so pending rows are found after a restart (and in the
        supervisor of `serve --workers N`, which serves no request that would open them)."""
        for ws, env in self.runtime.environment_ids():
            try:
                self.runtime.environment(ws, env)
            except Exception as exc:
                if (ws, env) not in self._broken:  # say it once, not every scan
                    self._broken.add((ws, env))
                    logs.event("xapi: cannot open environment", level=logging.ERROR, workspace=ws,
                               environment=env, error=type(exc).__name__)

    def poll_once(self) -> int:
        """Send every due row (up to BATCH per environment); returns how many attempts were made."""
        if not self.runtime.disk.writable():
            return 0  # an attempt's outcome could not be recorded, so none is made
        prune = time.monotonic() >= self._prune_at
        if prune:
            self._prune_at = time.monotonic() + PRUNE_SECONDS
        if time.monotonic() >= self._rescan_at:
            self._open_all()
            self._rescan_at = time.monotonic() + RESCAN_SECONDS
        made = 0
        for database in self.runtime.open_environments():
            if self._stop.is_set():
                break
            if prune:
                database.submit(lambda w: outbox.prune(w, self.settings.retention_days))
            reader = database.read()
            endpoints: dict[int, dict[str, Any]] = {}
            for row in outbox.due_rows(reader, BATCH):
                if self._stop.is_set():
                    break
                endpoint = endpoints.get(row["endpoint_id"])
                if endpoint is None:
                    endpoint = endpoints[row["endpoint_id"]] = outbox.get_endpoint(reader, row["endpoint_id"])
                self._deliver(database, endpoint, row)
                made += 1
        return made

    def _deliver(self, database: Database, endpoint: dict[str, Any], row: dict[str, Any]) -> None:
        attempt = self.client.send(database.name, endpoint, row["statement_id"], row["body"])
        settings = self.settings

        def job(w: sqlite_utils.Database) -> str | None:
            return outbox.record_attempt(
                w,
                row["id"],
                status_code=attempt.status_code,
                error=attempt.error,
                duration_ms=attempt.duration_ms,
                settings=settings,
            )

        status = database.write(job)
        logs.event(
            "xapi attempt",
            level=logging.INFO if status == outbox.DELIVERED else logging.WARNING,
            database=database.name,
            endpoint=endpoint["id"],
            statement=row["statement_id"],
            status_code=attempt.status_code,
            error=attempt.error,
            outcome=status,
            ms=round(attempt.duration_ms, 1),
        )

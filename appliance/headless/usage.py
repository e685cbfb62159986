"""Usage and allowances (docs/api-differences.md, "Usage").

Usage is computed from trackings, never stored twice. A learner counts once per calendar month
(UTC) as an identified recipient, or as an anonymous one when the player had no identifier
(identifiers starting with `anonymous:`). Test learners never count: every learner in the test
environment, and users marked `testMode` in production. `narration_tokens` are the characters
finished narration jobs read out (their job records), in both environments; `image_generations` the
images made for screens and covers (library or engine, table image_generations), in both too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
import sqlite_utils
from litestar import Controller, Request, get, put

from appliance.errors import ApiError
from appliance.headless.common import page_window
from appliance.headless.deps import provide_principal, set_target
from appliance.security.audit import now_iso
from appliance.storage.database import Database, fetch_all, fetch_one

IDENTIFIED = "identified_recipients"
ANONYMOUS = "anonymous_recipients"
NARRATION = "narration_tokens"
IMAGES = "image_generations"
METRICS = (IDENTIFIED, ANONYMOUS, NARRATION, IMAGES)
ANONYMOUS_PREFIX = "anonymous:"


class AllowanceInput(msgspec.Struct):
    metric: str
    limit: Annotated[int, msgspec.Meta(ge=0)] | None = None
    topUp: Annotated[int, msgspec.Meta(ge=0)] = 0


def current_period(now: datetime | None = None) -> tuple[str, str]:
    now = now or datetime.now(UTC)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start.isoformat().replace("+00:00", "Z"), end.isoformat().replace("+00:00", "Z")


def narration_usage(db: sqlite_utils.Database, client: str | None, period: tuple[str, str]) -> int:
    """Characters read out by finished narration jobs (appliance.ai.narration), in every environment
    (only test *learners* are free)."""
    sql = """SELECT coalesce(sum(json_extract(result, '$.narrationTokens')), 0) FROM jobs
             WHERE kind = 'narrate_course' AND status = 'succeeded' AND finished >= ? AND finished < ?"""
    params: list[Any] = [period[0], period[1]]
    if client is not None:
        sql += " AND json_extract(input, '$.clientIdentifier') = ?"
        params.append(client)
    return int(db.execute(sql, params).fetchone()[0])


def image_usage(db: sqlite_utils.Database, client: str | None, period: tuple[str, str]) -> int:
    """Images made (appliance.images.service records each, library or engine), in every environment."""
    sql = "SELECT count(*) FROM image_generations WHERE created >= ? AND created < ?"
    params: list[Any] = [period[0], period[1]]
    if client is not None:
        sql += " AND client_identifier = ?"
        params.append(client)
    return int(db.execute(sql, params).fetchone()[0])


def usage(
    db: sqlite_utils.Database, environment: str, metric: str, client: str | None, period: tuple[str, str]
) -> int:
    if metric == NARRATION:
        return narration_usage(db, client, period)
    if metric == IMAGES:
        return image_usage(db, client, period)
    if environment == "test":
        return 0  # test learners never count
    anonymous = "LIKE" if metric == ANONYMOUS else "NOT LIKE"
    sql = f"""SELECT count(DISTINCT t.identifier) FROM trackings t LEFT JOIN users u ON u.identifier = t.identifier
              WHERE t.commenced >= ? AND t.commenced < ? AND t.identifier {anonymous} ?
              AND coalesce(u.test_mode, 0) = 0"""
    params: list[Any] = [period[0], period[1], ANONYMOUS_PREFIX + "%"]
    if client is not None:
        sql += " AND t.client_identifier = ?"
        params.append(client)
    return int(db.execute(sql, params).fetchone()[0])


def allowance_rows(db: sqlite_utils.Database, environment: str, client: str | None) -> list[dict[str, Any]]:
    period = current_period()
    rows = []
    for metric in METRICS:
        limit = fetch_one(
            db,
            "SELECT limit_value, top_up FROM allowances WHERE client_identifier IS ? AND metric = ?",
            [client, metric],
        )
        rows.append(
            {
                "metric": metric,
                "limit": limit["limit_value"] if limit else None,
                "topUp": limit["top_up"] if limit else 0,
                "currentUsage": usage(db, environment, metric, client, period),
                "periodStart": period[0],
                "periodEnd": period[1],
            }
        )
    return rows


def _period_arg(start: str | None, end: str | None) -> tuple[str, str]:
    default = current_period()
    try:
        since = datetime.fromisoformat(start.replace("Z", "+00:00")).isoformat() if start else default[0]
        until = datetime.fromisoformat(end.replace("Z", "+00:00")).isoformat() if end else default[1]
    except ValueError:
        raise ApiError(422, "start and end must be ISO 8601 dates") from None
    return since, until


class UsageController(Controller):
    tags = ["Usage"]

    @get("/usage/allowances", summary="Workspace allowances and usage", sync_to_thread=False)
    def allowances(self, request: Request[Any, Any, Any], db: Database) -> list[dict[str, Any]]:
        return allowance_rows(db.read(), provide_principal(request).environment, None)

    @get("/usage/clients", summary="Usage per client", sync_to_thread=False)
    def clients(
        self,
        request: Request[Any, Any, Any],
        db: Database,
        start: str | None = None,
        end: str | None = None,
        page: int = 0,
        length: int = 50,
    ) -> dict[str, Any]:
        """One row per client and metric (every metric the product reports); `page`/`length` count
        those rows as returned, so a short page is the last, as with every other list."""
        limit, offset = page_window(page, length)
        period = _period_arg(start, end)
        environment = provide_principal(request).environment
        reader = db.read()
        first_client, skip = divmod(offset, len(METRICS))
        needed = -(-(skip + limit) // len(METRICS))  # the clients whose rows fall in this page
        clients = fetch_all(
            reader, "SELECT client_identifier FROM clients ORDER BY id LIMIT ? OFFSET ?", [needed, first_client]
        )
        data = [
            {
                "clientIdentifier": c["client_identifier"],
                "metric": metric,
                "currentUsage": usage(reader, environment, metric, c["client_identifier"], period),
                "periodStart": period[0],
                "periodEnd": period[1],
            }
            for c in clients
            for metric in METRICS
        ]
        return {"data": data[skip : skip + limit]}

    @get("/usage/client/{client_identifier:str}", summary="One client's allowances", sync_to_thread=False)
    def client(
        self, request: Request[Any, Any, Any], db: Database, client_identifier: str
    ) -> list[dict[str, Any]]:
        set_target(request, "client")
        return allowance_rows(db.read(), provide_principal(request).environment, client_identifier)

    @put("/usage/client/{client_identifier:str}", summary="Set one client's allowances")
    async def set_client(
        self,
        request: Request[Any, Any, Any],
        db: Database,
        client_identifier: str,
        data: AllowanceInput | list[AllowanceInput],
    ) -> list[dict[str, Any]]:
        set_target(request, "client")
        items = data if isinstance(data, list) else [data]
        for item in items:
            if item.metric not in METRICS:
                raise ApiError(422, f"metric must be one of {', '.join(METRICS)}")
        environment = provide_principal(request).environment

        def job(w: sqlite_utils.Database) -> list[dict[str, Any]]:
            now = now_iso()
            w.execute(
                "INSERT INTO clients (client_identifier, created, updated) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                [client_identifier, now, now],
            )
            for item in items:
                w.execute(
                    """INSERT INTO allowances (client_identifier, metric, limit_value, top_up, created, updated)
                       VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(client_identifier, metric) DO UPDATE SET
                       limit_value = excluded.limit_value, top_up = excluded.top_up, updated = excluded.updated""",
                    [client_identifier, item.metric, item.limit, item.topUp, now, now],
                )
            return allowance_rows(w, environment, client_identifier)

        return await db.awrite(job)

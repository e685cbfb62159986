"""What the console shows, as queries on the appliance's own databases (no HTTP here): a page of
API keys with their last use, a filtered page of the audit log, and calls per workspace and key per
day with an anomaly flag. Lists are paged in SQL: the console never loads a whole table.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from appliance.security.audit import FIELDS
from appliance.storage.database import Database, fetch_all

PAGE = 50
# a key is flagged when it makes this many times its usual daily calls (and at least ANOMALY_FLOOR)
ANOMALY_FACTOR = 10
ANOMALY_FLOOR = 50
USAGE_DAYS = 7


@dataclass
class Page:
    rows: list[dict[str, Any]]
    total: int
    page: int  # 1-based

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // PAGE))


def clamp_page(page: int) -> int:
    return max(1, min(page, 10**9))


def key_page(control: Database, audit: Database, page: int, workspace_id: int | None = None) -> Page:
    where, params = ("WHERE workspace_id = ?", [workspace_id]) if workspace_id is not None else ("", [])
    total = control.read().execute(f"SELECT count(*) FROM api_keys {where}", params).fetchone()[0]
    rows = fetch_all(
        control.read(),
        f"SELECT key_id, workspace_id, mode, hint, created, revoked FROM api_keys {where} "
        "ORDER BY id DESC LIMIT ? OFFSET ?",
        [*params, PAGE, (clamp_page(page) - 1) * PAGE],
    )
    reader = audit.read()
    for row in rows:  # the index audit_actor (actor, seq) makes each a single seek
        last = reader.execute(
            "SELECT time FROM audit WHERE actor = ? ORDER BY seq DESC LIMIT 1", [f"apikey:{row['key_id']}"]
        ).fetchone()
        row["last_used"] = last[0] if last else None
    return Page(rows, total, clamp_page(page))


@dataclass
class AuditFilter:
    actor: str = ""
    route: str = ""  # substring
    status: int | None = None
    workspace_id: int | None = None
    since: str = ""  # ISO time, inclusive
    until: str = ""  # ISO time, exclusive

    def sql(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if self.actor:
            clauses.append("actor = ?")
            params.append(self.actor)
        if self.route:
            clauses.append("instr(route, ?) > 0")
            params.append(self.route)
        if self.status is not None:
            clauses.append("status = ?")
            params.append(self.status)
        if self.workspace_id is not None:
            clauses.append("workspace_id = ?")
            params.append(self.workspace_id)
        if self.since:
            clauses.append("time >= ?")
            params.append(self.since)
        if self.until:
            clauses.append("time < ?")
            params.append(self.until)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def audit_page(audit: Database, where: AuditFilter, page: int) -> Page:
    sql, params = where.sql()
    reader = audit.read()
    total = reader.execute(f"SELECT count(*) FROM audit{sql}", params).fetchone()[0]
    rows = fetch_all(
        reader,
        f"SELECT seq, {', '.join(FIELDS)} FROM audit{sql} ORDER BY seq DESC LIMIT ? OFFSET ?",
        [*params, PAGE, (clamp_page(page) - 1) * PAGE],
    )
    return Page(rows, total, clamp_page(page))


def audit_rows(audit: Database, where: AuditFilter) -> Any:
    """Every matching entry, oldest first, as a cursor (exports stream it)."""
    sql, params = where.sql()
    cursor = audit.read().execute(
        f"SELECT seq, {', '.join(FIELDS)}, prev, hash FROM audit{sql} ORDER BY seq", params
    )
    names = [d[0] for d in cursor.description]
    return names, cursor


def first_seq_since(audit: Database, moment: str) -> int:
    """The first audit entry at or after `moment`: entries are written in time order, so a binary
    search on seq needs about 20 point reads even for a million entries."""
    reader = audit.read()
    low, high = reader.execute("SELECT coalesce(min(seq), 1), coalesce(max(seq), 0) + 1 FROM audit").fetchone()
    while low < high:
        middle = (low + high) // 2
        row = reader.execute("SELECT time FROM audit WHERE seq >= ? ORDER BY seq LIMIT 1", [middle]).fetchone()
        if row is None or row[0] >= moment:
            high = middle
        else:
            low = middle + 1
    return int(low)


@dataclass
class Usage:
    workspace_id: int
    actor: str
    today: int
    usual: float  # median calls per day over the previous days (0 when it made none)
    days: dict[str, int] = field(default_factory=dict)

    @property
    def anomalous(self) -> bool:
        return self.today >= ANOMALY_FLOOR and self.today >= ANOMALY_FACTOR * max(self.usual, 1.0)


def usage(audit: Database, now: datetime | None = None) -> list[Usage]:
    """Calls per workspace and API key per day over the last USAGE_DAYS days and today."""
    now = now or datetime.now(UTC)
    today = now.date().isoformat()
    start = (now - timedelta(days=USAGE_DAYS)).date().isoformat()
    first = first_seq_since(audit, start)
    counts: dict[tuple[int, str], dict[str, int]] = defaultdict(dict)
    for workspace_id, actor, day, n in audit.read().execute(
        "SELECT workspace_id, actor, substr(time, 1, 10), count(*) FROM audit "
        "WHERE seq >= ? AND actor LIKE 'apikey:%' AND workspace_id IS NOT NULL GROUP BY 1, 2, 3",
        [first],
    ):
        counts[(workspace_id, actor)][day] = n
    out = []
    previous = [(now - timedelta(days=d)).date().isoformat() for d in range(1, USAGE_DAYS + 1)]
    for (workspace_id, actor), days in sorted(counts.items()):
        usual = statistics.median([days.get(d, 0) for d in previous])
        out.append(Usage(workspace_id, actor, days.get(today, 0), usual, days))
    return out

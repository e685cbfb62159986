"""Prometheus metrics in the text exposition format, served at /metrics behind a bearer token.

The counters live in a `shared.Segment`: this process's own anonymous memory when it serves
alone, or its file in the run directory as one of `serve --workers N`, where `/metrics` on any
worker renders the sum of every worker's file (server.shared).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from appliance.server.shared import Segment, summed

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SUM, _COUNT = "duration_sum", "duration_count"


class Metrics:
    def __init__(self, directory: Path | None = None, worker: int = 0) -> None:
        """`directory`: the shared directory of `serve --workers N` (this worker writes its own
        file there and renders the sum of all); None for a process serving alone."""
        self._lock = threading.Lock()
        self._directory = directory
        self._segment = Segment(directory / f"metrics-{worker}.bin" if directory is not None else None)
        self._values = self._segment.values
        self._sum, self._count = self._segment.slot(_SUM), self._segment.slot(_COUNT)
        # one slot per bucket, not cumulative: a request adds to one; render() accumulates
        self._buckets = [self._segment.slot(f"bucket|{i}") for i in range(len(BUCKETS))]
        self._requests: dict[tuple[str, int], int] = {}
        self.started = time.time()

    def observe(self, method: str, status: int, seconds: float) -> None:
        with self._lock:
            slot = self._requests.get((method, status))
            if slot is None:
                slot = self._requests[(method, status)] = self._segment.slot(f"requests|{method}|{status}")
            values = self._values
            if slot >= 0:
                values[slot] += 1
            values[self._sum] += seconds
            values[self._count] += 1
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    values[self._buckets[i]] += 1
                    break

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            slot = self._segment.slot(f"counter|{name}")
            if slot >= 0:
                self._values[slot] += n

    def totals(self) -> dict[str, float]:
        """This process's counters, or every worker's added up."""
        if self._directory is not None:
            return summed(self._directory)
        with self._lock:
            return self._segment.totals()

    def render(self) -> str:
        totals = self.totals()
        lines = [
            "# HELP appliance_requests_total HTTP requests by method and status.",
            "# TYPE appliance_requests_total counter",
        ]
        requests = sorted(
            (name.split("|")[1], int(name.split("|")[2]), int(n)) for name, n in totals.items()
            if name.startswith("requests|")
        )
        for method, status, n in requests:
            lines.append(f'appliance_requests_total{{method="{method}",status="{status}"}} {n}')
        lines += [
            "# HELP appliance_request_duration_seconds Time to the end of each response.",
            "# TYPE appliance_request_duration_seconds histogram",
        ]
        below = 0
        for i, bound in enumerate(BUCKETS):
            below += int(totals.get(f"bucket|{i}", 0))
            lines.append(f'appliance_request_duration_seconds_bucket{{le="{bound}"}} {below}')
        count = int(totals.get(_COUNT, 0))
        lines.append(f'appliance_request_duration_seconds_bucket{{le="+Inf"}} {count}')
        lines.append(f"appliance_request_duration_seconds_sum {totals.get(_SUM, 0.0):.6f}")
        lines.append(f"appliance_request_duration_seconds_count {count}")
        for name, value in sorted(totals.items()):
            if name.startswith("counter|"):
                counter = name.split("|", 1)[1]
                lines += [f"# TYPE appliance_{counter}_total counter", f"appliance_{counter}_total {int(value)}"]
        lines += [
            "# TYPE appliance_start_time_seconds gauge",
            f"appliance_start_time_seconds {self.started:.0f}",
        ]
        return "\n".join(lines) + "\n"

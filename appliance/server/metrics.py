"""Prometheus metrics in the text exposition format, served at /metrics behind a bearer token."""

from __future__ import annotations

import threading
import time
from collections import defaultdict

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, int], int] = defaultdict(int)
        self.buckets = [0] * len(BUCKETS)
        self.duration_sum = 0.0
        self.duration_count = 0
        self.counters: dict[str, int] = defaultdict(int)
        self.started = time.time()

    def observe(self, method: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, status)] += 1
            self.duration_sum += seconds
            self.duration_count += 1
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    self.buckets[i] += 1

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counters[name] += n

    def render(self) -> str:
        lines = [
            "# HELP appliance_requests_total HTTP requests by method and status.",
            "# TYPE appliance_requests_total counter",
        ]
        with self._lock:
            for (method, status), n in sorted(self.requests.items()):
                lines.append(f'appliance_requests_total{{method="{method}",status="{status}"}} {n}')
            lines += [
                "# HELP appliance_request_duration_seconds Time to the end of each response.",
                "# TYPE appliance_request_duration_seconds histogram",
            ]
            for bound, n in zip(BUCKETS, self.buckets, strict=True):
                lines.append(f'appliance_request_duration_seconds_bucket{{le="{bound}"}} {n}')
            lines.append(f'appliance_request_duration_seconds_bucket{{le="+Inf"}} {self.duration_count}')
            lines.append(f"appliance_request_duration_seconds_sum {self.duration_sum:.6f}")
            lines.append(f"appliance_request_duration_seconds_count {self.duration_count}")
            for name, n in sorted(self.counters.items()):
                lines += [f"# TYPE appliance_{name}_total counter", f"appliance_{name}_total {n}"]
        lines += [
            "# TYPE appliance_start_time_seconds gauge",
            f"appliance_start_time_seconds {self.started:.0f}",
        ]
        return "\n".join(lines) + "\n"

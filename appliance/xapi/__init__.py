"""xAPI 1.0.3 statements to the operator's learning record stores (docs/xapi.md).

- `statements`: a learner event (appliance.learners.events) as a statement with a stable id.
- `outbox`: the learner-event subscriber that queues statements per LRS endpoint, in the learner's
  write transaction; the endpoints (allowlist checked when added); attempt outcomes.
- `worker`: the delivery worker (run once per data directory, like the webhooks').

`install(base_url)` subscribes the outbox to learner events; every server process calls it once
(appliance.server.serve), since any worker process may record a learner's progress.
"""

from __future__ import annotations

from appliance.learners import events
from appliance.xapi.outbox import Publisher

_installed: list[Publisher] = []


def install(base_url: str) -> None:
    """Subscribe (again, replacing an earlier subscription) with the appliance's public URL."""
    for publisher in _installed:
        events.unsubscribe(publisher)
    _installed.clear()
    publisher = Publisher(base_url.rstrip("/"))
    events.subscribe(publisher)
    _installed.append(publisher)

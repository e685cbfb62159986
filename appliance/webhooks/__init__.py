"""Webhooks (docs/webhooks.md): signed event deliveries to operator-allowed receivers.

- `outbox`: `emit(w, event, data)` queues an event inside the caller's writer transaction.
- `signer`: the `sha256=` HMAC over `<timestamp>.<raw body>`.
- `allow`: the operator's allowlist (`webhooks.allow_hosts`), checked at registration and on
  every connection.
- `worker`: the delivery worker the server runs (retries, backoff, attempt log).
"""

from appliance.webhooks.outbox import EVENTS, course_summary, emit, tracking_summary

__all__ = ["EVENTS", "course_summary", "emit", "tracking_summary"]

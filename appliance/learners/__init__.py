"""Learners: the people partners name (clients and users), their course trackings and their progress
through collections. Services run inside one writer job (a `sqlite_utils.Database` in a
transaction) or on a reader, raise appliance.errors domain errors and know nothing of HTTP; the
headless routes (appliance.headless.identities, appliance.headless.trackings), the embedded player
and the SCORM runtime call them.

- `identities`: clients and users; `ensure_identity` creates the rows a partner's identifiers imply.
- `trackings`: `record_progress`, the one writer of tracking rows, and the tracking queries.
- `progress`: a learner's progress through a collection.
- `events`: learner events (launched, progressed, answered, completed, passed/failed) the player's
  tracking writes publish to subscribers (xAPI statements, LTI grade passback).
"""

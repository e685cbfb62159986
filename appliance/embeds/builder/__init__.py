"""The builder's session API (`action: edit` course embeds; docs/embeds.md "Builder").

One module per concern; the routes parse (typed bodies: `bodies`), check access (`access`), call one
service and shape the answer:

* `draft`: `GET /embed/api/builder` (the draft, its etag `revision`, themes, variants,
  capabilities), `PUT` (save with optimistic concurrency: `If-Match` or `revision`; a stale save gets
  409 and nothing is overwritten), `GET preview`, `POST preview/grade`, `POST publish` / `revert`
  (`options.publishing: true` and the workspace's `api_authoring` entitlement). Its operations are
  `service`'s.
* `media`: `POST media` (an image, video or audio file, raw body) into the encrypted object store,
  served back at `GET /embed/media/<ws>/<env>/<object>.<ext>`.
* `ai`: `POST ai/course` (job `builder_generate_course`, `tasks`), `ai/screen`, `ai/quiz`,
  `ai/refine`, `ai/translate`, `ai/narrate`, `GET narration/{screen id}`.
* `documents`: `POST documents` (raw body, `X-Filename`), `POST documents/course`.
* `images`: `POST images/screen` (an image for one screen, answered at once), `POST images/screens`
  (job `builder_illustrate_screens`: every screen without an image).
* `jobs`: `GET jobs/{id}`, `GET jobs/{id}/events` (server-sent events, appliance.server.sse),
  `POST jobs/{id}/cancel`, `POST jobs/{id}/apply`.
"""

from __future__ import annotations

from typing import Any

from appliance.embeds.builder import tasks as _job_kinds  # noqa: F401 - registers builder_generate_course
from appliance.embeds.builder.ai import AiApi
from appliance.embeds.builder.documents import DocumentsApi
from appliance.embeds.builder.draft import DraftApi
from appliance.embeds.builder.images import ImagesApi
from appliance.embeds.builder.jobs import JobsApi
from appliance.embeds.builder.media import MediaApi, media

BUILDER_HANDLERS: list[Any] = [DraftApi, MediaApi, AiApi, ImagesApi, DocumentsApi, JobsApi, media]

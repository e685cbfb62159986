"""The one entry point for an image of a screen or a course cover (docs/images.md): called by the AI
jobs (generated courses and screens) and by the builder's "Illustrate" (appliance.embeds.builder).

    illustrate(runtime, workspace_id=..., environment=..., subject=("client", "acme"), title=...,
               text=..., theme=..., purpose="screen", client_identifier="acme", engine=ai.engine)

The on-box model (``engine``, optional) proposes keywords and writes the alt text; with `[images]
engines` configured the operator's image engine draws the picture from them, otherwise the offline
library's icons are composed into an SVG in the theme's colours. Either way the image passes the
upload rule (appliance.images.uploads.clean_image), is stored encrypted under ``subject`` like
builder media, and one `image_generations` row is recorded for the client. A failure at any step
stores nothing (an object already written is deleted again)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import sqlite_utils

from appliance.ai.engine import CancelToken, Engine
from appliance.ai.errors import AIError, Cancelled
from appliance.errors import BadGateway, DomainError, Unavailable, not_found
from appliance.images import engine as image_engines
from appliance.images.compose import compose
from appliance.images.keywords import choose, derived_alt, propose_or_none, usable_alt
from appliance.images.library import load, terms_of
from appliance.images.uploads import clean_image
from appliance.runtime import Runtime
from appliance.security.audit import now_iso
from appliance.storage.objects import ObjectError, ObjectStore

Purpose = Literal["screen", "cover"]


@dataclass(frozen=True)
class Illustration:
    object_id: str  # the encrypted object's id in storage.objects.ObjectStore
    extension: str  # "svg" | "png" | "jpg" | "webp"
    media_type: str  # "image/svg+xml", "image/png", ...
    alt: str  # alt text (editable by the author afterwards): the model's for an engine's image, the icons' for the library's
    source: str  # "library" or "engine:<name>"
    bytes: int
    seconds: float = 0.0  # the whole call (bench/images.py)
    engine_seconds: float = 0.0  # the image engine's own time (0 for the library)
    keywords: tuple[str, ...] = ()  # what chose the icons or was asked of the engine

    def url(self, base: str, workspace_id: int, environment: str) -> str:
        """Where the builder's media route serves it (appliance.embeds.builder.media)."""
        return f"{base}/embed/media/{workspace_id}/{environment}/{self.object_id}.{self.extension}"


def stored_file(runtime: Runtime, workspace_id: int, environment: str, object_id: str) -> bytes:
    """A stored image or media file of this workspace and environment, decrypted (a SCORM package
    carries it); NotFound when it is not there or its subject was erased."""
    try:
        return ObjectStore(runtime).get(workspace_id, environment, object_id)
    except ObjectError:
        raise not_found("Media file") from None


def engine_prompt(title: str, keywords: list[str], purpose: Purpose) -> str:
    """What the image engine is asked for: a flat illustration of the keywords, no lettering (a
    model's text in an image is neither translatable nor accessible)."""
    subject = ", ".join(keywords) if keywords else title
    what = "the cover of a course" if purpose == "cover" else "an e-learning screen"
    return (f"A clean flat vector illustration for {what} titled \"{title[:120]}\", showing: {subject[:300]}. "
            "No text, no letters, no logos.")


def make_image(runtime: Runtime, *, title: str, text: str, theme: dict[str, Any] | None, purpose: Purpose,
               engine: Engine | None, cancel: CancelToken | None) -> tuple[bytes, str, str, float, list[str]]:
    """The image's bytes (not yet checked), its alt text, its source, the engine's own time and the
    keywords it was made from."""
    settings = runtime.settings.images
    try:
        keywords, alt = propose_or_none(engine, title, text, purpose, with_alt=bool(settings.engines), cancel=cancel)
    except Cancelled:
        raise
    except AIError as exc:
        raise Unavailable("The on-box model cannot choose an image right now; try again later") from exc
    if settings.engines:
        words = keywords or terms_of(title)[:5]
        drawn = image_engines.generate(settings, engine_prompt(title, words, purpose), keyring=runtime.keyring,
                                       cancel=cancel)
        chosen_alt = alt if alt is not None and usable_alt(alt) else derived_alt(title)
        return drawn.data, chosen_alt, f"engine:{drawn.engine}", drawn.seconds, words
    choice = choose(load(), title, text, keywords)
    svg = compose(choice.icons, alt=choice.alt, title=title, theme=theme, purpose=purpose)
    return svg, choice.alt, "library", 0.0, choice.keywords


def illustrate(runtime: Runtime, *, workspace_id: int, environment: str, subject: tuple[str, str],
               title: str, text: str, theme: dict[str, Any] | None, purpose: Purpose,
               client_identifier: str | None, cancel: CancelToken | None = None,
               engine: Engine | None = None) -> Illustration:
    """Make, check, store and count one image (see the module's docstring). ``engine`` is the text
    model (the AI service's engine); without it the title's words choose the icons (and an engine's
    image gets an alt text derived from the title). Raises Unavailable (no model or image engine answers), BadGateway (an
    image engine's answer is unusable, 502), Cancelled."""
    start = time.perf_counter()
    if cancel is not None and cancel.cancelled:
        raise Cancelled("cancelled")
    data, alt, source, engine_seconds, words = make_image(runtime, title=title, text=text, theme=theme, purpose=purpose,
                                                   engine=engine, cancel=cancel)
    try:
        clean = clean_image(data)  # the rule every stored image passes (an author's upload too)
    except DomainError as exc:
        if source == "library":
            raise  # a composed SVG that fails the rule is a bug here, not a bad answer
        raise BadGateway(f"The image engine's image was refused: {exc.message}") from exc
    if cancel is not None and cancel.cancelled:
        raise Cancelled("cancelled")
    store = ObjectStore(runtime)
    object_id = store.put(workspace_id, environment, subject[0], subject[1], clean.data)

    def count(w: sqlite_utils.Database) -> None:
        w.execute("INSERT INTO image_generations (client_identifier, source, object_id, created) VALUES (?, ?, ?, ?)",
                  [client_identifier, source, object_id, now_iso()])

    try:
        runtime.environment(workspace_id, environment).write(count)
    except BaseException:
        store.delete(workspace_id, environment, object_id)
        raise
    return Illustration(object_id, clean.extension, clean.media_type, alt, source, len(clean.data),
                        time.perf_counter() - start, engine_seconds, tuple(words))

"""Embed endpoints (docs/embeds.md, "Mint endpoints"): each answers a signed URL as `text/plain`.

`POST embed/course`, `embed/collection`, `embed/analytics/{course,collection,user}`, and the
deprecated `POST course/url` (also GET) and `GET course/{view|edit}?id=`. The URL is
`<public base>/embed/<kind>/<token>` with an Ed25519-signed token (appliance/embeds/tokens.py).
Entitlements: view -> `api` (checked by the middleware), edit -> `api_authoring`, analytics ->
`analytics`. An edit mint without a course creates a draft course, as the cloud does.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

import sqlite_utils
from litestar import Controller, MediaType, Request, Response, get, post, put

from appliance.courses import languages
from appliance.courses import service as courses
from appliance.courses.model import empty_content
from appliance.embeds import origins
from appliance.embeds.sessions import signer_of
from appliance.embeds.tokens import URL_TYP
from appliance.errors import ApiError, not_found
from appliance.headless.common import as_int, as_str, loose_body
from appliance.headless.deps import provide_runtime, require_entitlement, set_target
from appliance.learners.identities import ensure_identity
from appliance.server import public
from appliance.server.inputs import InputRefused, check_json
from appliance.storage.database import Database, fetch_one
from appliance.workspaces.service import Principal

COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")
LANGUAGE = languages.SPELLINGS  # the embed option takes pt_BR as well as pt-BR
BOOLEAN_OPTIONS = (
    "legacy",
    "ai",
    "googleDrive",
    "oneDrive",
    "loom",
    "feedback",
    "narrations",
    "translations",
    "brandVoice",
    "publishing",
    "stats",
    "chart",
    "table",
)
MAX_OPTIONS_BYTES = 4096


def parse_options(values: dict[str, Any]) -> dict[str, Any]:
    """`options` must be a JSON object (an array is a 422, like the cloud); form bodies may send it
    as JSON text. Known options are type-checked, unknown ones are kept (forward compatible)."""
    raw = values.get("options")
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        try:
            check_json(raw.encode())  # a form field holding JSON text: the same rules as a JSON body
            raw = json.loads(raw)
        except (InputRefused, ValueError):
            raise ApiError(422, "options must be an object") from None
    if not isinstance(raw, dict):
        raise ApiError(422, "options must be an object")
    if len(json.dumps(raw)) > MAX_OPTIONS_BYTES:
        raise ApiError(422, f"options must be at most {MAX_OPTIONS_BYTES} bytes of JSON")
    for name in BOOLEAN_OPTIONS:
        if name in raw and not isinstance(raw[name], bool):
            raise ApiError(422, f"options.{name} must be a boolean")
    if "back" in raw and raw["back"] not in ("event", "hidden"):
        raise ApiError(422, "options.back must be event or hidden")
    if "color" in raw and not (isinstance(raw["color"], str) and COLOR.match(raw["color"])):
        raise ApiError(422, "options.color must be a hex colour such as #C4BCFC")
    if "language" in raw and not (isinstance(raw["language"], str) and languages.canonical(raw["language"])):
        raise ApiError(422, "options.language must be a language code such as en or fr-CA")
    if "flow" in raw and not isinstance(raw["flow"], str):
        raise ApiError(422, "options.flow must be a string")
    return dict(raw)


def _short(values: dict[str, Any], name: str, limit: int = 2000) -> str | None:
    value = as_str(values, name, required=False)
    if value is not None and len(value) > limit:
        raise ApiError(422, f"{name} must be at most {limit} characters")
    return value


class Mint:
    """Everything one embed endpoint needs to turn a request into a signed URL."""

    def __init__(self, request: Request[Any, Any, Any], principal: Principal, db: Database) -> None:
        self.request = request
        self.principal = principal
        self.db = db
        self.runtime = provide_runtime(request)

    def url(self, kind: str, claims: dict[str, Any]) -> Response[str]:
        full = {
            "workspace": self.principal.workspace_id,
            "environment": self.principal.environment,
            "kind": kind,
            **claims,
        }
        token, _ = signer_of(self.runtime).sign(URL_TYP, full, self.runtime.settings.embeds.url_seconds)
        url = f"{public.base_url(self.request)}/embed/{kind}/{token}"
        return Response(url, media_type=MediaType.TEXT)

    async def identities(self, identifier: str | None, client: str | None, **profile: Any) -> None:
        if identifier or client:
            await self.db.awrite(lambda w: ensure_identity(w, identifier, client, **profile))


def _learner(values: dict[str, Any]) -> tuple[str | None, str | None]:
    identifier = _short(values, "identifier", 255)
    client = _short(values, "clientIdentifier", 255)
    return identifier, client


async def mint_course(
    request: Request[Any, Any, Any], principal: Principal, db: Database, values: dict[str, Any]
) -> Response[str]:
    action = as_str(values, "action", required=False) or "view"
    if action not in ("view", "edit"):
        raise ApiError(422, "action must be view or edit")
    options = parse_options(values)
    course_id = as_int(values, "courseId", required=False)
    if course_id is None:
        course_id = as_int(values, "id", required=False)  # the deprecated forms call it `id`
    theme_id = as_int(values, "themeId", required=False)
    identifier, client = _learner(values)
    name, avatar = _short(values, "name", 200), _short(values, "avatar")
    mint = Mint(request, principal, db)
    if action == "edit":
        require_entitlement(request, "api_authoring")
    # before a draft is created with it: an unknown theme is a 404, not a foreign-key failure
    if (
        theme_id is not None
        and fetch_one(db.read(), "SELECT id FROM themes WHERE id = ?", [theme_id]) is None
    ):
        raise not_found("Theme")
    if course_id is None:
        if action == "view":
            raise ApiError(422, "courseId is required when action is view")

        def create(w: sqlite_utils.Database) -> int:
            ensure_identity(w, identifier, client, name=name, avatar=avatar)
            return courses.create(
                w,
                title="Untitled course",
                content=empty_content(),
                identifier=identifier,
                client_identifier=client,
                theme_id=theme_id,
            )

        course_id = await db.awrite(create)
    else:
        row = fetch_one(
            db.read(), "SELECT id, deleted, published_content FROM courses WHERE id = ?", [course_id]
        )
        if row is None or row["deleted"] is not None:
            raise not_found("Course")
        if action == "view" and row["published_content"] is None:
            raise ApiError(409, "This course has not been published yet; learners see published content only")
        await mint.identities(identifier, client, name=name, avatar=avatar)
    set_target(request, f"course:{course_id}")
    if action == "view" and not identifier:
        identifier = f"anonymous-{secrets.token_hex(8)}"  # an anonymous recipient still gets a tracking
    return mint.url(
        "course",
        {
            "action": action,
            "course": course_id,
            "identifier": identifier,
            "clientIdentifier": client,
            "name": name,
            "options": options,
            "themeId": theme_id,
        },
    )


async def mint_collection(
    request: Request[Any, Any, Any], principal: Principal, db: Database, values: dict[str, Any]
) -> Response[str]:
    action = as_str(values, "action", required=False) or "view"
    if action not in ("view", "edit"):
        raise ApiError(422, "action must be view or edit")
    if action == "edit":
        require_entitlement(request, "api_authoring")
    options = parse_options(values)
    collection_id = as_int(values, "collectionId", required=False) or as_int(values, "id", required=False)
    if collection_id is None:
        raise ApiError(422, "collectionId is required")
    row = fetch_one(db.read(), "SELECT id, deleted FROM collections WHERE id = ?", [collection_id])
    if row is None or row["deleted"] is not None:
        raise not_found("Collection")
    identifier, client = _learner(values)
    name = _short(values, "name", 200)
    mint = Mint(request, principal, db)
    await mint.identities(identifier, client, name=name)
    set_target(request, f"collection:{collection_id}")
    if action == "view" and not identifier:
        identifier = f"anonymous-{secrets.token_hex(8)}"
    return mint.url(
        "collection",
        {
            "action": action,
            "collection": collection_id,
            "identifier": identifier,
            "clientIdentifier": client,
            "name": name,
            "options": options,
            "themeId": as_int(values, "themeId", required=False),
        },
    )


async def mint_analytics(
    request: Request[Any, Any, Any], principal: Principal, db: Database, values: dict[str, Any], what: str
) -> Response[str]:
    require_entitlement(request, "analytics")
    options = parse_options(values)
    identifier, client = _learner(values)
    claims: dict[str, Any] = {
        "action": "view",
        "identifier": identifier,
        "clientIdentifier": client,
        "name": _short(values, "name", 200),
        "options": options,
    }
    reader = db.read()
    if what == "course":
        course_id = as_int(values, "courseId", required=False) or as_int(values, "id")
        row = fetch_one(reader, "SELECT id, deleted FROM courses WHERE id = ?", [course_id])
        if row is None or row["deleted"] is not None:
            raise not_found("Course")
        claims["course"] = course_id
        set_target(request, f"course:{course_id}")
    elif what == "collection":
        collection_id = as_int(values, "collectionId", required=False) or as_int(values, "id")
        row = fetch_one(reader, "SELECT id, deleted FROM collections WHERE id = ?", [collection_id])
        if row is None or row["deleted"] is not None:
            raise not_found("Collection")
        claims["collection"] = collection_id
        set_target(request, f"collection:{collection_id}")
    else:
        if not identifier:
            raise ApiError(422, "identifier (the learner to report on) is required")
        set_target(request, "user")
    return Mint(request, principal, db).url(f"analytics/{what}", claims)


class EmbedsController(Controller):
    tags = ["Embeds"]

    @post(
        "/embed/course", summary="Signed URL for the course player (view) or builder (edit)", status_code=200
    )
    async def embed_course(
        self, request: Request[Any, Any, Any], principal: Principal, db: Database
    ) -> Response[str]:
        return await mint_course(request, principal, db, await loose_body(request))

    @post("/embed/collection", summary="Signed URL for a collection", status_code=200)
    async def embed_collection(
        self, request: Request[Any, Any, Any], principal: Principal, db: Database
    ) -> Response[str]:
        return await mint_collection(request, principal, db, await loose_body(request))

    @post("/embed/analytics/course", summary="Signed URL for a course's analytics", status_code=200)
    async def embed_analytics_course(
        self, request: Request[Any, Any, Any], principal: Principal, db: Database
    ) -> Response[str]:
        return await mint_analytics(request, principal, db, await loose_body(request), "course")

    @post("/embed/analytics/collection", summary="Signed URL for a collection's analytics", status_code=200)
    async def embed_analytics_collection(
        self, request: Request[Any, Any, Any], principal: Principal, db: Database
    ) -> Response[str]:
        return await mint_analytics(request, principal, db, await loose_body(request), "collection")

    @post("/embed/analytics/user", summary="Signed URL for one learner's analytics", status_code=200)
    async def embed_analytics_user(
        self, request: Request[Any, Any, Any], principal: Principal, db: Database
    ) -> Response[str]:
        return await mint_analytics(request, principal, db, await loose_body(request), "user")

    @post("/course/url", summary="Signed URL (deprecated form of embed/course)", status_code=200)
    async def course_url(
        self, request: Request[Any, Any, Any], principal: Principal, db: Database
    ) -> Response[str]:
        return await mint_course(request, principal, db, await loose_body(request))

    @get("/course/url", summary="Signed URL (deprecated GET form, query parameters)", include_in_schema=False)
    async def course_url_get(
        self, request: Request[Any, Any, Any], principal: Principal, db: Database
    ) -> Response[str]:
        return await mint_course(request, principal, db, await loose_body(request))

    @get("/course/view", summary="Signed player URL (oldest, deprecated): ?id=")
    async def course_view(
        self, request: Request[Any, Any, Any], principal: Principal, db: Database
    ) -> Response[str]:
        return await mint_course(request, principal, db, _legacy_query(request, "view"))

    @get("/course/edit", summary="Signed builder URL (oldest, deprecated): ?id=")
    async def course_edit(
        self, request: Request[Any, Any, Any], principal: Principal, db: Database
    ) -> Response[str]:
        return await mint_course(request, principal, db, _legacy_query(request, "edit"))


def _legacy_query(request: Request[Any, Any, Any], action: str) -> dict[str, Any]:
    """The oldest GET form: `?id=&identifier=&clientIdentifier=&flow=&colorPrimary=&translations=`."""
    q = dict(request.query_params.items())
    options: dict[str, Any] = {}
    if q.get("flow"):
        options["flow"] = q["flow"]
    if q.get("colorPrimary"):
        options["color"] = q["colorPrimary"]
    if q.get("language"):
        options["language"] = q["language"]
    if q.get("translations") in ("true", "1", "false", "0"):
        options["translations"] = q["translations"] in ("true", "1")
    return {**q, "action": action, "options": options}


class OriginsController(Controller):
    """Appliance extension: the host origins allowed to frame embeds of the key's environment."""

    tags = ["Embeds"]

    @get("/embed/origins", summary="Allowed host origins (appliance extension)", sync_to_thread=False)
    def get_origins(self, request: Request[Any, Any, Any], principal: Principal) -> dict[str, Any]:
        control = provide_runtime(request).control
        set_target(request, "embed-origins")
        return {
            "environment": principal.environment,
            "origins": origins.allowed_origins(control, principal.workspace_id, principal.environment),
        }

    @put("/embed/origins", summary="Replace the allowed host origins (appliance extension)")
    async def put_origins(self, request: Request[Any, Any, Any], principal: Principal) -> dict[str, Any]:
        values = await loose_body(request)
        wanted = values.get("origins")
        if not isinstance(wanted, list) or not all(isinstance(o, str) for o in wanted):
            raise ApiError(422, "origins must be an array of origins such as https://partner.example")
        control = provide_runtime(request).control
        set_target(request, "embed-origins")
        try:
            result = origins.set_origins(
                control, principal.workspace_id, principal.environment, wanted, [], replace=True
            )
        except origins.OriginError as exc:
            raise ApiError(422, str(exc)) from None
        return {"environment": principal.environment, "origins": result}

"""LTI login, launch and deep linking as services (no HTTP here; appliance.lti.routes calls them).

- `login`: OIDC third-party login initiation -> the platform's authorisation URL (the library
  validates the issuer and client id, issues the state cookie and a nonce kept server side).
- `launch`: the id_token POST. The library validates state, nonce, registration, signature,
  deployment and message; then a resource-link launch becomes a normal signed embed URL for the
  course player (appliance.embeds.tokens through `signer_of`, the same signer the headless mint
  endpoints use), the learner `lti:<issuer>:<sub>` and the LMS context `lti:<issuer>:<context id>`
  as identifier and clientIdentifier; a deep-linking request becomes the course picker.
- `deep_link_response`: the picked course as a signed `LtiDeepLinkingResponse` (the library signs
  it with the tool's current key) and the form that posts it back to the platform.

Every refusal is an `LtiRefused` with a short reason code (the audit entry's target) and a message
that names no token, nonce or learner.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import sqlite_utils
from pylti1p3.deep_link_resource import DeepLinkResource
from pylti1p3.exception import LtiException, OIDCException
from pylti1p3.lineitem import LineItem

from appliance.embeds.sessions import signer_of
from appliance.embeds.tokens import URL_TYP
from appliance.learners.identities import ensure_identity
from appliance.lti import grades, store
from appliance.lti.tool import Cookies, Launch, Login, LtiRequest, Sessions, ToolConf, launch_options
from appliance.runtime import Runtime
from appliance.storage.database import StorageError, fetch_all, fetch_one

MAX_ID_TOKEN = 16 * 1024  # bytes; platforms' id_tokens are a few kilobytes
MAX_PARAM = 4096
MAX_IDENTIFIER = 255
CUSTOM = "https://purl.imsglobal.org/spec/lti/claim/custom"
CONTEXT = "https://purl.imsglobal.org/spec/lti/claim/context"
TARGET = "https://purl.imsglobal.org/spec/lti/claim/target_link_uri"
AGS = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
SCORE_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"


class LtiRefused(Exception):
    def __init__(self, reason: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status


@dataclass
class Outcome:
    """What a route answers: a redirect, or a page to render, plus cookies to set."""

    redirect: str | None = None
    picker: dict[str, Any] | None = None
    form: dict[str, str] | None = None
    cookies: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    platform_id: int | None = None
    workspace_id: int | None = None
    environment: str | None = None
    target: str | None = None


def make_request(params: dict[str, str], cookies: dict[str, str], secure: bool) -> LtiRequest:
    for name, value in params.items():
        limit = MAX_ID_TOKEN if name in ("id_token", "JWT") else MAX_PARAM
        if len(value) > limit:
            raise LtiRefused("oversized", f"The {name[:40]} parameter is larger than {limit} bytes", 413)
    return LtiRequest(params, cookies, secure)


def _classify(exc: Exception) -> LtiRefused:
    text = str(exc)
    lowered = text.lower()
    reason = "invalid"
    for needle, code in (
        ("nonce", "nonce"),
        ("state", "state"),
        ("registration", "unknown-platform"),
        ("client id", "unknown-platform"),
        ("deployment", "unknown-deployment"),
        ("expired", "expired"),
        ("algorithm", "weak-algorithm"),
        ("signature", "bad-signature"),
        ("public key", "unknown-key"),
        ("format", "malformed"),
        ("3 parts", "malformed"),
    ):
        if needle in lowered:
            reason = code
            break
    # the library's messages name fields, never token contents; cut them anyway
    return LtiRefused(reason, f"The LTI launch was refused: {text[:200]}", 400 if reason != "unknown-platform" else 403)


def login(runtime: Runtime, request: LtiRequest, base_url: str) -> Outcome:
    target = urlsplit(request.get_param("target_link_uri")).path
    redirect_uri = f"{base_url}/lti/deep-link" if target == "/lti/deep-link" else f"{base_url}/lti/launch"
    cookies = Cookies(request)
    storage = store.DbLaunchStorage(runtime.control)
    oidc = Login(
        request,
        ToolConf(runtime.control, runtime.keyring),
        session_service=Sessions(request, storage),
        cookie_service=cookies,
        launch_data_storage=storage,
    )
    try:
        # state params make the library keep the state server side, where the launch consumes it
        url = oidc.pass_params_to_launch({"login": True}).redirect(redirect_uri)
    except (OIDCException, LtiException) as exc:
        raise LtiRefused("unknown-platform", f"The LTI login was refused: {str(exc)[:200]}", 403) from None
    platform = oidc.registration().platform
    return Outcome(redirect=url, cookies=cookies.to_set, platform_id=platform["id"],
                   workspace_id=platform["workspace_id"], environment=platform["environment"])


def _validated(runtime: Runtime, request: LtiRequest) -> Launch:
    if not request.get_param("id_token"):
        raise LtiRefused("malformed", "The LTI launch carries no id_token")
    storage = store.DbLaunchStorage(runtime.control)
    message = Launch(
        request,
        ToolConf(runtime.control, runtime.keyring),
        session_service=Sessions(request, storage),
        cookie_service=Cookies(request),
        launch_data_storage=storage,
    )
    message.set_jwt_verify_options(launch_options())  # type: ignore[arg-type]
    try:
        message.validate()
    except (LtiException, OIDCException, ValueError, TypeError, KeyError, AttributeError) as exc:
        # ValueError & co.: a malformed token the library's own checks did not word
        raise _classify(exc) from None
    return message


def _course_id(claims: dict[str, Any]) -> int | None:
    custom = claims.get(CUSTOM) or {}
    value = custom.get("course_id") if isinstance(custom, dict) else None
    if value is None:
        found = parse_qs(urlsplit(str(claims.get(TARGET, ""))).query).get("course")
        value = found[0] if found else None
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def launch(runtime: Runtime, request: LtiRequest, base_url: str) -> Outcome:
    message = _validated(runtime, request)
    platform = message.registration().platform
    outcome = Outcome(platform_id=platform["id"], workspace_id=platform["workspace_id"],
                      environment=platform["environment"])
    if message.is_deep_link_launch():
        return _picker(runtime, message, outcome)
    if not message.is_resource_launch():
        raise LtiRefused("unsupported", "This LTI message type is not supported by this tool")
    claims: dict[str, Any] = dict(message.get_launch_data())
    course_id = _course_id(claims)
    if course_id is None:
        raise LtiRefused("no-course", "This LTI link names no course (custom parameter course_id)", 404)
    try:
        db = runtime.environment(platform["workspace_id"], platform["environment"])
    except StorageError:
        raise LtiRefused("no-course", "The workspace of this platform has no such environment", 404) from None
    issuer = platform["issuer"]
    identifier = f"lti:{issuer}:{claims['sub']}"
    context = claims.get(CONTEXT) or {}
    client = f"lti:{issuer}:{context['id']}" if isinstance(context, dict) and context.get("id") else None
    if len(identifier) > MAX_IDENTIFIER or (client and len(client) > MAX_IDENTIFIER):
        raise LtiRefused("invalid", "The platform's issuer and user id are too long for a learner identifier")
    name = claims.get("name") if isinstance(claims.get("name"), str) else None
    endpoint = claims.get(AGS)

    def job(w: sqlite_utils.Database) -> bool:
        row = fetch_one(w, "SELECT id, deleted, published_content FROM courses WHERE id = ?", [course_id])
        if row is None or row["deleted"] is not None or row["published_content"] is None:
            return False
        ensure_identity(w, identifier, client, name=(name or "")[:200] or None)
        if isinstance(endpoint, dict) and SCORE_SCOPE in (endpoint.get("scope") or []):
            grades.remember_link(w, course_id, identifier, platform["id"], str(claims["sub"]), endpoint)
        return True

    if not db.write(job):
        raise LtiRefused("no-course", "This course does not exist or is not published", 404)
    token, _ = signer_of(runtime).sign(
        URL_TYP,
        {
            "workspace": platform["workspace_id"],
            "environment": platform["environment"],
            "kind": "course",
            "action": "view",
            "course": course_id,
            "identifier": identifier,
            "clientIdentifier": client,
            "name": (name or "")[:200] or None,
            "options": {},
            "themeId": None,
        },
        runtime.settings.embeds.url_seconds,
    )
    outcome.redirect = f"{base_url}/embed/course/{token}"
    outcome.target = f"course:{course_id}"
    return outcome


def _picker(runtime: Runtime, message: Launch, outcome: Outcome) -> Outcome:
    platform = message.registration().platform
    db = runtime.environment(platform["workspace_id"], platform["environment"])
    courses = fetch_all(
        db.read(),
        "SELECT id, title FROM courses WHERE deleted IS NULL AND published_content IS NOT NULL ORDER BY title, id LIMIT 500",
    )
    # the picker's form is bound to this launch: its id (in the server-side store) and a one-time token
    ticket = secrets.token_urlsafe(24)
    store.DbLaunchStorage(runtime.control).set_value(f"picker-{ticket}", {"launch": message.get_launch_id()})
    outcome.picker = {"ticket": ticket, "courses": courses}
    return outcome


def deep_link_response(runtime: Runtime, request: LtiRequest, base_url: str) -> Outcome:
    ticket = request.get_param("ticket")
    storage = store.DbLaunchStorage(runtime.control)
    held = storage.consume(f"picker-{ticket}") if ticket else None
    if not held:
        raise LtiRefused("state", "This course picker has expired or was already used; open it again from the LMS")
    try:
        message = Launch.from_cache(
            held["launch"],
            request,
            ToolConf(runtime.control, runtime.keyring),
            session_service=Sessions(request, storage),
            cookie_service=Cookies(request),
            launch_data_storage=storage,
        )
    except LtiException:
        raise LtiRefused("state", "This deep-linking launch has expired; open it again from the LMS") from None
    assert isinstance(message, Launch)
    storage.consume(held["launch"])  # its claims were read once; they are not kept longer
    platform = message.registration().platform
    try:
        course_id = int(request.get_param("course"))
    except ValueError:
        raise LtiRefused("invalid", "Pick a course") from None
    db = runtime.environment(platform["workspace_id"], platform["environment"])
    row = fetch_one(
        db.read(),
        "SELECT id, title FROM courses WHERE id = ? AND deleted IS NULL AND published_content IS NOT NULL",
        [course_id],
    )
    if row is None:
        raise LtiRefused("no-course", "This course does not exist or is not published", 404)
    resource = (
        DeepLinkResource()
        .set_url(f"{base_url}/lti/launch")
        .set_title(str(row["title"] or f"Course {course_id}")[:200])
        .set_custom_params({"course_id": str(course_id)})
        .set_lineitem(LineItem().set_score_maximum(100).set_label(str(row["title"] or "Course")[:200]))
    )
    deep_link = message.get_deep_link()
    jwt_value = deep_link.get_response_jwt([resource])
    settings = message.get_launch_data().get("https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings") or {}
    return Outcome(
        form={"action": str(settings.get("deep_link_return_url", "")), "JWT": jwt_value},
        platform_id=platform["id"],
        workspace_id=platform["workspace_id"],
        environment=platform["environment"],
        target=f"course:{course_id}",
    )


def courses_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps([{"id": r["id"], "title": r["title"]} for r in rows])

"""The LMS side of the LTI tests: a small LTI 1.3 platform built on PyJWT (the maintained JWT
library is the third party here) and served over HTTP on loopback, and one appliance server with
that platform registered for workspace 1's test environment.

The platform serves: `/start` (a page that initiates the OIDC login at the tool, as an LMS's link
does), `/auth` (the OIDC authorisation endpoint: answers the tool's login redirect with a form that
posts a signed id_token to the tool's redirect URI), `/token` (OAuth2 client credentials: checks the
tool's client assertion against the tool's `/lti/jwks`) and `/lineitems/1/scores` (AGS: records the
score it receives with a token it issued).
"""

from __future__ import annotations

import html
import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.helpers import Install, Server, cli, free_port, init_data_dir, start_server

CLIENT_ID = "appliance-tool"
DEPLOYMENT = "deployment-1"
KID = "platform-key-1"
LTI = "https://purl.imsglobal.org/spec/lti/claim/"
SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"

COURSE = {
    "start": {"button_label": "Start", "display_description": True, "display_duration": True},
    "finish": {"title": "All done", "description": "Thanks.", "display_feedback": False},
    "screens": [{"id": 1, "type": "text", "title": "Only screen", "content": {"html": "<p>Hello</p>"}}],
}


def new_rsa(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def public_jwk(key: rsa.RSAPrivateKey, kid: str, alg: str = "RS256") -> dict[str, Any]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": kid, "alg": alg, "use": "sig"}


@dataclass
class Platform:
    url: str
    tool_url: str
    key: rsa.RSAPrivateKey
    scores: list[dict[str, Any]] = field(default_factory=list)
    score_auth: list[str] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    score_arrived: threading.Event = field(default_factory=threading.Event)
    score_status: int = 200
    course_id: int = 0

    @property
    def issuer(self) -> str:
        return self.url

    def claims(self, nonce: str, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "sub": "learner-1",
            "iat": now,
            "exp": now + 300,
            "nonce": nonce,
            "name": "Ada Learner",
            LTI + "message_type": "LtiResourceLinkRequest",
            LTI + "version": "1.3.0",
            LTI + "deployment_id": DEPLOYMENT,
            LTI + "target_link_uri": f"{self.tool_url}/lti/launch",
            LTI + "resource_link": {"id": "link-1"},
            LTI + "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
            LTI + "context": {"id": "course-section-7", "title": "Safety 101"},
            LTI + "custom": {"course_id": str(self.course_id)},
            "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint": {
                "scope": [SCORE],
                "lineitem": f"{self.url}/lineitems/1",
            },
        }
        body.update(overrides)
        return {k: v for k, v in body.items() if v is not None}

    def sign(self, claims: dict[str, Any], key: Any = None, kid: str = KID, alg: str = "RS256") -> str:
        return jwt.encode(claims, key if key is not None else self.key, algorithm=alg, headers={"kid": kid})

    def login_params(self, target: str = "/lti/launch") -> dict[str, str]:
        return {
            "iss": self.issuer,
            "login_hint": "learner-1",
            "target_link_uri": f"{self.tool_url}{target}",
            "client_id": CLIENT_ID,
            "lti_deployment_id": DEPLOYMENT,
        }


def _handler(platform: Platform) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: str, kind: str = "text/html") -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _form(self, action: str, fields: dict[str, str]) -> str:
            inputs = "".join(
                f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in fields.items()
            )
            return (
                f'<!doctype html><form id="f" method="post" action="{html.escape(action)}">{inputs}</form>'
                '<script>document.getElementById("f").submit()</script>'
            )

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if parts.path == "/start":
                self._send(200, self._form(f"{platform.tool_url}/lti/login", platform.login_params()))
            elif parts.path == "/auth":
                # the OIDC authorisation endpoint: the tool's redirect carries state, nonce, redirect_uri
                assert query["client_id"] == CLIENT_ID and query["response_mode"] == "form_post"
                token = platform.sign(platform.claims(query["nonce"]))
                self._send(200, self._form(query["redirect_uri"], {"id_token": token, "state": query["state"]}))
            else:
                self._send(404, "no")

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            raw = self.rfile.read(length).decode()
            if self.path == "/token":
                form = {k: v[0] for k, v in parse_qs(raw).items()}
                tool_keys = httpx.get(f"{platform.tool_url}/lti/jwks", timeout=10).json()["keys"]
                header = jwt.get_unverified_header(form["client_assertion"])
                match = [k for k in tool_keys if k["kid"] == header["kid"]]
                if not match:
                    self._send(401, '{"error":"invalid_client"}', "application/json")
                    return
                claims = jwt.decode(
                    form["client_assertion"],
                    jwt.PyJWK(match[0]).key,
                    algorithms=["RS256"],
                    audience=f"{platform.url}/token",
                )
                assert claims["iss"] == CLIENT_ID and claims["sub"] == CLIENT_ID
                access = secrets.token_urlsafe(16)
                platform.tokens.add(access)
                body = {"access_token": access, "token_type": "Bearer", "expires_in": 3600, "scope": form["scope"]}
                self._send(200, json.dumps(body), "application/json")
            elif self.path == "/lineitems/1/scores":
                auth = self.headers.get("authorization", "")
                platform.score_auth.append(auth)
                if auth.removeprefix("Bearer ") not in platform.tokens:
                    self._send(401, "{}", "application/json")
                    return
                if platform.score_status != 200:
                    self._send(platform.score_status, "{}", "application/json")
                    return
                platform.scores.append({"type": self.headers.get("content-type"), **json.loads(raw)})
                platform.score_arrived.set()
                self._send(200, "{}", "application/json")
            else:
                self._send(404, "no")

    return Handler


@dataclass
class LtiSetup:
    install: Install
    server: Server
    platform: Platform
    course_id: int
    platform_id: int


def seed_course(install: Install, workspace_id: int | None = None) -> int:
    """A published one-screen course in the test environment of ``workspace_id`` (default: the install's)."""
    from appliance import config
    from appliance.courses import service as courses
    from appliance.runtime import open_runtime

    runtime = open_runtime(config.load(install.data_dir))
    try:
        db = runtime.environment(workspace_id or install.workspace_id, "test")

        def job(w: Any) -> int:
            course_id = courses.create(w, title="LTI course", content=COURSE, description="One screen.")
            courses.publish(w, course_id)
            return course_id

        return int(db.write(job))
    finally:
        runtime.close()


@pytest.fixture(scope="package")
def lti(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LtiSetup]:
    base = tmp_path_factory.mktemp("lti")
    install = init_data_dir(base / "data")
    course_id = seed_course(install)
    port = free_port()
    platform = Platform(url=f"http://127.0.0.1:{port}", tool_url="", key=new_rsa(), course_id=course_id)
    keyset = base / "platform-jwks.json"
    keyset.write_text(json.dumps({"keys": [public_jwk(platform.key, KID)]}))
    added = cli(
        "lti", "add", "--data-dir", str(install.data_dir), "--workspace", str(install.workspace_id), "--env", "test",
        "--issuer", platform.issuer, "--client-id", CLIENT_ID, "--deployment-id", DEPLOYMENT,
        "--auth-login-url", f"{platform.url}/auth", "--auth-token-url", f"{platform.url}/token",
        "--keyset-file", str(keyset),
    )
    assert added.returncode == 0, added.stderr
    httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(platform))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    server = start_server(install.data_dir)
    platform.tool_url = server.url
    try:
        yield LtiSetup(install, server, platform, course_id, int(added.stdout.strip()))
    finally:
        server.stop()
        httpd.shutdown()


def audit_targets(install: Install) -> list[str]:
    out = cli("audit", "export", "--data-dir", str(install.data_dir))
    assert out.returncode == 0, out.stderr
    return [json.loads(line).get("target") or "" for line in out.stdout.splitlines() if line.strip()]


def unique() -> str:
    return uuid.uuid4().hex


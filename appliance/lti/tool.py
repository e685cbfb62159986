"""pylti1p3's adapters for Litestar: request, cookies, session service, tool configuration.

The library does the OIDC and JWT work (state, nonce, issuer/client lookup, signature, deployment,
message validation); these classes only give it what it reads and writes:

- `LtiRequest`: the form or query parameters of one request (already read by the route).
- `Cookies`: the short-lived state cookie the library sets at login and reads at launch.
- `Sessions`: the library's session service on `store.DbLaunchStorage`; a nonce is consumed once.
- `ToolConf`: registrations and deployments from `appliance.lti.platforms`.
- `Login` / `Launch`: the library's OIDC login and message launch, with the appliance's checks on
  top: the state is consumed server side (one launch per login), the id_token's algorithm must be
  one a registered key allows (no HS*, no `none`), `exp` and `iat` are required.
"""

from __future__ import annotations

import json
from typing import Any

from pylti1p3.cookie import CookieService
from pylti1p3.deployment import Deployment
from pylti1p3.exception import LtiException
from pylti1p3.message_launch import MessageLaunch
from pylti1p3.oidc_login import OIDCLogin
from pylti1p3.redirect import Redirect
from pylti1p3.registration import Registration
from pylti1p3.request import Request
from pylti1p3.service_connector import ServiceConnector
from pylti1p3.session import SessionService
from pylti1p3.tool_config.abstract import ToolConfAbstract

from appliance.lti import keys, platforms, store
from appliance.lti.platforms import EC_ALGS, RSA_ALGS
from appliance.storage.database import Database
from appliance.storage.keyring import Keyring

COOKIE_PREFIX = "lti1p3"


class LtiRequest(Request):
    def __init__(self, params: dict[str, str], cookies: dict[str, str], secure: bool) -> None:
        self.params = params
        self.cookies = cookies
        self.secure = secure

    @property
    def session(self) -> dict[str, Any]:
        return {}  # never used: the launch data storage replaces the library's session storage

    def is_secure(self) -> bool:
        return self.secure

    def get_param(self, key: str) -> str:
        return self.params.get(key, "")


class Cookies(CookieService):
    """Cookies the library reads from the request and the ones to set on the response."""

    def __init__(self, request: LtiRequest) -> None:
        self.request = request
        self.to_set: dict[str, tuple[str, int | None]] = {}

    def _name(self, name: str) -> str:
        return f"{COOKIE_PREFIX}-{name}"

    def get_cookie(self, name: str) -> str | None:
        return self.request.cookies.get(self._name(name))

    def set_cookie(self, name: str, value: str | int, exp: int | None = 3600) -> None:
        self.to_set[self._name(name)] = (str(value), exp)


class Sessions(SessionService):
    def __init__(self, request: LtiRequest, storage: store.DbLaunchStorage) -> None:
        super().__init__(request)
        self.storage = storage
        self.set_data_storage(storage)
        self.set_launch_data_lifetime(store.LIFETIME)

    def check_nonce(self, nonce: str) -> bool:
        # one launch per nonce: the library only looks it up; here it is consumed
        return self.storage.consume(self._get_key("nonce", nonce)) is not None

    def consume_state(self, state: str) -> bool:
        return self.storage.consume(self._get_key(state)) is not None


class PlatformRegistration(Registration):
    def __init__(self, row: dict[str, Any], tool_key: keys.ToolKey) -> None:
        self.platform = row
        self.tool_key = tool_key
        self.set_issuer(row["issuer"]).set_client_id(row["client_id"])
        self.set_auth_login_url(row["auth_login_url"]).set_auth_token_url(row["auth_token_url"])
        if row.get("auth_audience"):
            self.set_auth_audience(row["auth_audience"])
        self.set_key_set(json.loads(row["keyset"]) if row.get("keyset") else None)
        self.set_key_set_url(row.get("keyset_url"))
        self.set_tool_private_key(tool_key.private_pem)

    def get_kid(self) -> str | None:
        return self.tool_key.kid

    def get_jwks(self) -> list[Any]:
        return [self.tool_key.public_jwk]


class ToolConf(ToolConfAbstract[LtiRequest]):
    def __init__(self, control: Database, keyring: Keyring) -> None:
        self.control = control
        self.keyring = keyring

    def check_iss_has_one_client(self, iss: str) -> bool:
        return False  # an issuer may register this tool more than once (one client id each)

    def check_iss_has_many_clients(self, iss: str) -> bool:
        return True

    def _row(self, iss: str, client_id: str | None) -> dict[str, Any] | None:
        row = platforms.find(self.control, iss, client_id)
        if row is None and not client_id:
            # a login initiation without client_id: unambiguous only if the issuer registered once
            rows = [r for r in platforms.list_platforms(self.control) if r["issuer"] == iss]
            row = rows[0] if len(rows) == 1 else None
        return row

    def find_registration_by_issuer(self, iss: str, *args: Any, **kwargs: Any) -> Registration:
        raise LtiException("registrations are looked up by issuer and client id")

    def find_registration_by_params(self, iss: str, client_id: str, *args: Any, **kwargs: Any) -> Registration:
        row = self._row(iss, client_id)
        return PlatformRegistration(row, keys.current(self.keyring)) if row else None  # type: ignore[return-value]

    def find_deployment(self, iss: str, deployment_id: str) -> Deployment | None:
        return None

    def find_deployment_by_params(
        self, iss: str, deployment_id: str, client_id: str, *args: Any, **kwargs: Any
    ) -> Deployment | None:
        row = self._row(iss, client_id)
        if row is None or deployment_id not in json.loads(row["deployment_ids"]):
            return None
        return Deployment().set_deployment_id(deployment_id)


class UrlRedirect(Redirect[str]):
    def __init__(self, url: str) -> None:
        self.url = url

    def do_redirect(self) -> str:
        return self.url

    def do_js_redirect(self) -> str:
        return self.url

    def set_redirect_url(self, location: str) -> None:
        self.url = location

    def get_redirect_url(self) -> str:
        return self.url


class Login(OIDCLogin[LtiRequest, ToolConf, Sessions, Cookies, str]):
    def get_redirect(self, url: str) -> Redirect[str]:
        return UrlRedirect(url)

    def registration(self) -> PlatformRegistration:
        registration = self._registration
        assert isinstance(registration, PlatformRegistration)
        return registration


class Launch(MessageLaunch[LtiRequest, ToolConf, Sessions, Cookies]):
    def _get_request_param(self, key: str) -> str:
        return self._request.get_param(key)

    def validate_state(self) -> Launch:
        super().validate_state()
        # the library trusts the state cookie alone; here the state must also be one this appliance
        # issued and not yet used (a replayed launch POST finds it consumed)
        if not self._session_service.consume_state(self._get_request_param("state")):
            raise LtiException("State not found or already used")
        return self

    def save_launch_data(self) -> Launch:
        # only a deep-linking launch is read back (by the course picker's form); a resource-link
        # launch's claims (the learner's name, email) are not kept in the control database
        if self.is_deep_link_launch():
            super().save_launch_data()
        return self

    def get_public_key(self) -> tuple[str, str]:
        alg = self._jwt.get("header", {}).get("alg")
        if alg not in RSA_ALGS + EC_ALGS:
            raise LtiException(f"id_token algorithm {str(alg)[:20]!r} is not allowed")
        return super().get_public_key()

    def registration(self) -> PlatformRegistration:
        registration = self._registration
        assert isinstance(registration, PlatformRegistration)
        return registration


class CachedTokenConnector(ServiceConnector):
    """The library's AGS connector with the access token kept for its lifetime (per process)."""

    _tokens: dict[str, tuple[str, float]] = {}

    def _get_cached_access_token(self, scope_key: str) -> str | None:
        import time

        token = self._tokens.get(scope_key)
        return token[0] if token and token[1] > time.time() else None

    def _cache_access_token(self, scope_key: str, access_token: str, expires_in: float) -> None:
        import time

        self._tokens[scope_key] = (access_token, time.time() + max(0.0, float(expires_in) - 30))


def launch_options() -> dict[str, Any]:
    """PyJWT options for the id_token: audience is the library's client-id check; exp and iat required."""
    return {"verify_aud": False, "require": ["exp", "iat"]}

"""The OpenAPI document tells the truth about auth and errors: the
COASSEMBLE scheme on every headless operation, the D1 error body for every error response, and an
operation called without a key answers a documented 401 in that body."""

from __future__ import annotations

import re
from typing import Any

from tests.helpers import Install, Server

METHODS = ("get", "put", "post", "delete", "patch")


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, m, item[m]) for path, item in doc["paths"].items() for m in METHODS if m in item]


def test_security_scheme_and_error_body_on_every_operation(server: Server) -> None:
    for url in ("/api/docs/json", "/api/docs/openapi.json"):  # ours, and the one the browsable UI reads
        doc = server.client().get(url).json()
        scheme = doc["components"]["securitySchemes"]["COASSEMBLE"]
        assert scheme == {**scheme, "type": "apiKey", "in": "header", "name": "Authorization"}
        error = doc["components"]["schemas"]["Error"]
        assert set(error["required"]) == set(error["properties"]) == {"statusCode", "code", "error", "message"}
        operations = _operations(doc)
        assert len(operations) > 60
        for path, method, operation in operations:
            where = f"{method.upper()} {path}"
            assert operation.get("security") == [{"COASSEMBLE": []}], where
            codes = {int(c) for c in operation["responses"] if c.isdigit()}
            assert {401, 403, 422, 429, 500} <= codes, where
            if "{" in path:
                assert 404 in codes, where
            for code, response in operation["responses"].items():
                if code.isdigit() and int(code) >= 400:
                    assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}, where
        for path, method, operation in operations:
            for parameter in operation.get("parameters", []):
                options = parameter["schema"].get("oneOf", [parameter["schema"]])
                for schema in (s for s in options if s.get("type") == "integer"):
                    assert schema["format"] == "int64" and schema["maximum"] <= 2**63 - 1, (path, parameter)
                    if parameter["name"] in ("page", "length"):
                        assert schema["minimum"] == 0, (path, parameter)
                    else:
                        assert schema["minimum"] >= -(2**63), (path, parameter)
        assert "status_code" not in str(doc) and "'detail'" not in str(doc)  # Litestar's own error shape is gone
        assert "/api/v1/headless" in doc["info"]["description"]


def test_every_operation_without_a_key_is_a_documented_401(server: Server, install: Install) -> None:
    doc = server.client().get("/api/docs/json").json()
    with server.client() as anonymous:
        for path, method, operation in _operations(doc):
            url = re.sub(r"\{[^}]+\}", "1", path)
            for prefix in ("", "/api"):
                answer = anonymous.request(method.upper(), prefix + url, json={})
                assert answer.status_code == 401, f"{method.upper()} {prefix}{url}: {answer.status_code}"
                assert str(answer.status_code) in operation["responses"]
                assert set(answer.json()) == set(doc["components"]["schemas"]["Error"]["required"])
    # and a real error with a key matches the documented body too
    keyed = server.client(install.test_key)
    body = keyed.get("/v1/headless/courses/424242").json()
    assert set(body) == set(doc["components"]["schemas"]["Error"]["required"]) and body["statusCode"] == 404
    # the documented bounds of `page` are the server's, on every list
    for path, _, operation in _operations(doc):
        page = next((p for p in operation.get("parameters", []) if p["name"] == "page"), None)
        if page is None or "{" in path:
            continue
        highest = page["schema"]["maximum"]
        params = {"id": 1, "identifier": "x"} if "trackings" in path else {}
        assert keyed.get(path, params={**params, "page": highest, "length": 100}).status_code < 500, path
        refused = keyed.get(path, params={**params, "page": highest + 1, "length": 1})
        assert refused.status_code == 422 and "page" in refused.json()["message"], (path, refused.text)


def test_options_and_405_allow_the_documented_methods(server: Server, install: Install) -> None:
    """RFC 9110: OPTIONS and 405 carry `Allow`, and it lists every method the resource has (Litestar's
    own OPTIONS answer listed one handler group's, e.g. only POST on /themes)."""
    doc = server.client().get("/api/docs/json").json()
    keyed = server.client(install.test_key)
    for path, item in doc["paths"].items():
        documented = {m.upper() for m in METHODS if m in item} | {"OPTIONS"}
        url = re.sub(r"\{[^}]+\}", "1", path)
        for prefix in ("", "/api"):
            answer = keyed.options(prefix + url)
            allowed = {m.strip() for m in answer.headers.get("allow", "").split(",") if m.strip()}
            assert answer.status_code == 204 and allowed == documented, (prefix + url, answer.headers.get("allow"))
        unused = next(m for m in ("PATCH", "PUT", "DELETE", "POST") if m not in documented)
        refused = keyed.request(unused, url)
        assert refused.status_code == 405 and {m.strip() for m in refused.headers["allow"].split(",")} == documented, url

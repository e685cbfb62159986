"""The console's LTI page: register a platform with pasted keys, a weak key refused on the page,
removal; every change needs the session's CSRF token and is audited."""

from __future__ import annotations

import json
import re

from tests.admin.console import Visitor, setup_link
from tests.lti.conftest import LtiSetup, audit_targets, new_rsa, public_jwk


def test_console_registers_refuses_and_removes_platforms(lti: LtiSetup) -> None:
    visitor = Visitor(lti.server)
    try:
        assert visitor.set_up(setup_link(lti.server)).status_code == 303
        listing = visitor.get("/admin/lti")
        assert listing.status_code == 200
        assert f"{lti.server.url}/lti/login" in listing.text and lti.platform.issuer in listing.text
        fields = {
            "target": f"{lti.install.workspace_id}:production",
            "issuer": "https://canvas.example.lan",
            "client_id": "10000000000001",
            "deployment_ids": "7:abc, 8:def",
            "auth_login_url": "https://canvas.example.lan/api/lti/authorize_redirect",
            "auth_token_url": "https://canvas.example.lan/login/oauth2/token",
        }
        weak = json.dumps({"keys": [public_jwk(new_rsa(1024), "short")]})
        refused = visitor.form("/admin/lti", "/admin/lti/add", {**fields, "keyset": weak})
        assert refused.status_code == 422 and "at least 2048" in refused.text
        assert 'value="10000000000001"' in refused.text  # the form keeps what was typed
        no_csrf = visitor.http.post("/admin/lti/add", data={**fields, "keyset": weak})
        assert no_csrf.status_code == 403
        keyset = json.dumps({"keys": [public_jwk(new_rsa(), "canvas-1")]})
        added = visitor.form("/admin/lti", "/admin/lti/add", {**fields, "keyset": keyset})
        assert added.status_code == 303, added.text
        page = visitor.get("/admin/lti?done=added").text
        assert "https://canvas.example.lan" in page and "7:abc, 8:def" in page and "canvas-1" in page
        platform_id = int(re.findall(r'name="platform" value="(\d+)"', page)[-1])  # the newest row
        removed = visitor.form("/admin/lti", "/admin/lti/remove", {"platform": str(platform_id)})
        assert removed.status_code == 303
        assert "https://canvas.example.lan" not in visitor.get("/admin/lti").text
        targets = audit_targets(lti.install)
        assert f"lti-platform:{platform_id}" in targets and "lti-platform:new" in targets
    finally:
        visitor.close()

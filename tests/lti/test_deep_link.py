"""Deep linking: an instructor's deep-linking launch shows the published courses; the pick goes
back to the LMS as an `LtiDeepLinkingResponse` signed with the key `/lti/jwks` publishes."""

from __future__ import annotations

import re
from typing import Any

import httpx
import jwt
import pytest

from tests.lti.conftest import DEPLOYMENT, LTI, LtiSetup
from tests.lti.test_launch import _launch, _login

DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"


@pytest.fixture()
def client(lti: LtiSetup) -> Any:
    with httpx.Client(base_url=lti.server.url, timeout=30) as c:
        yield c


def test_instructor_picks_a_course_and_the_signed_link_goes_back(client: httpx.Client, lti: LtiSetup) -> None:
    platform = lti.platform
    auth = _login(client, lti, "/lti/deep-link")
    assert auth["redirect_uri"] == f"{lti.server.url}/lti/deep-link"
    claims = platform.claims(
        auth["nonce"],
        **{
            LTI + "message_type": "LtiDeepLinkingRequest",
            LTI + "resource_link": None,
            LTI + "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"],
            DL + "deep_linking_settings": {
                "deep_link_return_url": f"{platform.url}/deep-link-return",
                "accept_types": ["ltiResourceLink"],
                "accept_presentation_document_targets": ["iframe", "window"],
                "data": "opaque-platform-data",
            },
        },
    )
    picker = _launch(client, platform.sign(claims), auth["state"], "/lti/deep-link")
    assert picker.status_code == 200, picker.text
    assert "Choose a course" in picker.text and "LTI course" in picker.text
    assert f'<label for="c{lti.course_id}">' in picker.text  # every option has its label
    ticket = re.search(r'name="ticket" value="([^"]+)"', picker.text).group(1)  # type: ignore[union-attr]
    back = client.post("/lti/deep-link", data={"ticket": ticket, "course": str(lti.course_id)})
    assert back.status_code == 200, back.text
    assert f'action="{platform.url}/deep-link-return"' in back.text
    response_jwt = re.search(r'name="JWT" value="([^"]+)"', back.text).group(1)  # type: ignore[union-attr]
    keys = client.get("/lti/jwks").json()["keys"]
    header = jwt.get_unverified_header(response_jwt)
    key = next(k for k in keys if k["kid"] == header["kid"])
    message = jwt.decode(response_jwt, jwt.PyJWK(key).key, algorithms=["RS256"], audience=platform.issuer)
    assert message[LTI + "message_type"] == "LtiDeepLinkingResponse"
    assert message[LTI + "deployment_id"] == DEPLOYMENT
    assert message[DL + "data"] == "opaque-platform-data"
    (item,) = message[DL + "content_items"]
    assert item["type"] == "ltiResourceLink" and item["url"] == f"{lti.server.url}/lti/launch"
    assert item["custom"] == {"course_id": str(lti.course_id)} and item["lineItem"]["scoreMaximum"] == 100
    again = client.post("/lti/deep-link", data={"ticket": ticket, "course": str(lti.course_id)})
    assert again.status_code == 400 and "already used" in again.text  # the picker's ticket is one-time

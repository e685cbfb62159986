"""The console in Debian's Chromium (Playwright): setup through the printed link, a key created and
revoked, an origin added and tested, backups verified, a form without its CSRF token refused, and
the pages' accessibility basics (one h1, a main landmark, every field labelled, keyboard reachable)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.admin.console import PASSPHRASE, setup_link
from tests.helpers import Install, Server, init_data_dir, start_server

PAGES = ["/admin/", "/admin/workspaces", "/admin/keys", "/admin/origins", "/admin/webhooks", "/admin/ai",
         "/admin/audit", "/admin/backups", "/admin/usage"]


@pytest.fixture(scope="module")
def browser_install(tmp_path_factory: pytest.TempPathFactory) -> Install:
    return init_data_dir(tmp_path_factory.mktemp("console-browser") / "data")


@pytest.fixture(scope="module")
def browser_server(browser_install: Install) -> Iterator[Server]:
    srv = start_server(browser_install.data_dir)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def signed_in(browser: Any, browser_server: Server) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    page.goto(setup_link(browser_server))
    page.get_by_label("Administrator name").fill("ops")
    page.get_by_label("Passphrase", exact=True).fill(PASSPHRASE)
    page.get_by_label("Passphrase again").fill(PASSPHRASE)
    page.get_by_role("button", name="Create administrator").click()
    page.wait_for_url(re.compile(r"/admin/\?done=setup$"))
    assert page.locator("h1").inner_text() == "Overview"
    yield page
    context.close()


def test_a_key_created_in_the_browser_works_until_revoked(signed_in: Any, browser_server: Server, browser_install: Install) -> None:
    page = signed_in
    page.goto(f"{browser_server.url}/admin/keys")
    page.get_by_label("Workspace").select_option(str(browser_install.workspace_id))
    page.get_by_label("Mode").select_option("test")
    page.get_by_role("button", name="Create key").click()
    header = page.get_by_label("Authorization value").inner_text().strip()
    assert re.fullmatch(r"COASSEMBLE:\d+:[0-9a-f]{64}", header)
    api = browser_server.client(header)
    assert api.get("/v1/headless/courses").status_code == 200
    key_id = re.search(r"Key (key_[0-9a-f]+)", page.locator("main p").first.inner_text()).group(1)  # type: ignore[union-attr]
    page.get_by_role("button", name=f"Revoke {key_id}").click()
    page.wait_for_url(re.compile(r"done=revoked"))
    assert "Key revoked" in page.get_by_role("status").inner_text()
    assert header not in page.content()  # shown once
    assert api.get("/v1/headless/courses").status_code == 401


def test_an_origin_added_in_the_browser_frames_production_embeds(signed_in: Any, browser_server: Server, browser_install: Install) -> None:
    page = signed_in
    page.goto(f"{browser_server.url}/admin/origins")
    section = page.locator("form.row", has=page.locator('input[name="env"][value="production"]')).first
    section.get_by_label("Add an origin").fill("https://lms.example.com")
    section.get_by_role("button", name="Add origin").click()
    page.wait_for_url(re.compile(r"done=origin-added"))
    assert page.get_by_role("button", name="Remove https://lms.example.com").count() == 1

    def verdict(origin: str) -> str:
        page.get_by_label("Environment").select_option(f"{browser_install.workspace_id}:production")
        page.get_by_label("Origin", exact=True).fill(origin)
        page.get_by_role("button", name="Test this origin").click()
        return str(page.locator("#origin-verdict").inner_text())

    assert "would be allowed" in verdict("https://lms.example.com")
    assert "would be refused" in verdict("https://evil.example.net")


def test_backups_verified_in_the_browser(signed_in: Any, browser_server: Server) -> None:
    page = signed_in
    page.goto(f"{browser_server.url}/admin/backups")
    assert page.locator("table tbody tr").count() >= 3  # control, ws1-test, ws1-production
    page.get_by_role("button", name="Verify backups").click()
    result = page.locator("#verify-result")
    result.wait_for(timeout=120_000)
    assert "Backups verified" in result.inner_text()
    assert re.search(r"^ok +control: ", result.inner_text(), re.M)


def test_a_form_without_its_csrf_token_is_refused_in_the_browser(browser: Any, signed_in: Any, browser_server: Server) -> None:
    page = signed_in
    page.goto(f"{browser_server.url}/admin/keys")
    before = page.locator("table tbody tr").count()
    page.evaluate("document.querySelectorAll('input[name=csrf]').forEach(e => e.value = 'forged')")
    page.get_by_role("button", name="Create key").click()
    assert page.locator("h1").inner_text() == "Form refused"
    assert "COASSEMBLE:" not in page.content()
    page.goto(f"{browser_server.url}/admin/keys")
    assert page.locator("table tbody tr").count() == before


def test_every_page_has_the_accessibility_basics(signed_in: Any, browser_server: Server) -> None:
    page = signed_in
    for path in PAGES:
        response = page.goto(f"{browser_server.url}{path}")
        assert response.status == 200, path
        assert page.locator("h1").count() == 1, path
        assert page.locator("main").count() == 1, path
        assert page.locator("html").get_attribute("lang") == "en"
        unlabelled = page.evaluate(
            "[...document.querySelectorAll('input:not([type=hidden]), select')]"
            ".filter(e => !e.closest('label') && !e.labels?.length).map(e => e.name)"
        )
        assert unlabelled == [], (path, unlabelled)
        unnamed = page.evaluate("[...document.querySelectorAll('button')].filter(b => !b.innerText.trim()).length")
        assert unnamed == 0, path
    page.goto(f"{browser_server.url}/admin/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.getAttribute('href')") == "/admin/"


def test_the_console_sends_no_script_and_refuses_framing(browser_server: Server) -> None:
    response = httpx.get(f"{browser_server.url}/admin/login")
    assert "<script" not in response.text
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"

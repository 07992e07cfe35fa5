"""What a trainee whose browser runs no JavaScript reads on the hub's pages: JupyterHub's "requires JavaScript"
notice, in the room's language. Checked from outside the template, in headless Chromium with JavaScript off:
the page's visible text, as the trainee sees it."""

from __future__ import annotations

import pytest

from techday.hub import pages
from tests.hub.test_browser import headless_chromium
from tests.unit.test_hub_pages import render

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Every page a Korean room renders itself, and what it needs to render (tests/unit/test_hub_pages.py).
PAGES = {
    "login.html": {"user": None, "login_url": "/hub/login", "authenticator_login_url": "/hub/login",
                   "authenticator": {"request_otp": False}},
    "home.html": {"default_server": {"active": False}, "url": "/user/trainee-001/"},
    "stop_pending.html": {},
    "logout.html": {"user": None},
    "not_running.html": {"server_name": "", "spawn_url": "/x", "implicit_spawn_seconds": 0},
    "spawn.html": {"for_user": None, "url": "/hub/spawn/trainee-001", "spawner_options_form": "<select></select>"},
    "token.html": {"token_expires_in_options_html": "", "api_tokens": [], "oauth_clients": []},
}


@pytest.fixture(scope="module")
def no_js_page():
    with headless_chromium() as browser:
        context = browser.new_context(java_script_enabled=False)
        context.route("**/*", lambda route: route.abort())  # the rendered page only: nothing fetched
        page = context.new_page()
        page.set_default_timeout(30_000)
        yield page


@pytest.mark.parametrize("name", sorted(PAGES))
def test_without_javascript_a_korean_room_says_so_in_korean(no_js_page, name):
    """Wrong answer caught: JupyterHub's own notice ("JupyterHub requires JavaScript. Please enable it to proceed.",
    in no template block, so no override replaced it) shown in English on every page of a Korean room; and a
    Korean notice shown beside the English one, or to a browser that runs JavaScript (``<noscript>``)."""
    html = render(name, **PAGES[name])
    no_js_page.set_content(html, wait_until="domcontentloaded")
    seen = " ".join(no_js_page.inner_text("body").split())
    korean = pages.page_texts("ko")
    assert "requires JavaScript" not in seen, f"{name}: the English notice is shown: {seen[:300]}"
    assert korean["noscript"] in seen, f"{name}: no Korean notice without JavaScript: {seen[:300]}"
    assert seen.count(korean["noscript"]) == 1, f"{name}: the notice shown {seen.count(korean['noscript'])} times"


def test_with_javascript_no_notice_is_shown(no_js_page):
    """The same page in a browser that runs JavaScript shows neither notice (they are ``<noscript>`` only)."""
    context = no_js_page.context.browser.new_context(java_script_enabled=True)
    try:
        context.route("**/*", lambda route: route.abort())
        page = context.new_page()
        page.set_content(render("login.html", **PAGES["login.html"]), wait_until="domcontentloaded")
        seen = " ".join(page.inner_text("body").split())
        assert "requires JavaScript" not in seen and pages.page_texts("ko")["noscript"] not in seen, seen[:300]
    finally:
        context.close()


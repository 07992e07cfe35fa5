"""The trainee's view in a real browser: headless Chromium (Debian's) driven by Playwright, on 127.0.0.1.

Sign in on the hub's page, land in JupyterLab, open the released lab, run its first cells, read the
tier banner, press nbgrader's Validate, and keep screenshots: build/hub/browser/ok-lab-banner.png, ok-lab-validate.png
(failure.png when a step fails).
"""

import contextlib
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.hub.conftest import COURSE, LAB, Person

pytestmark = [pytest.mark.hub, pytest.mark.browser, pytest.mark.slow]

SHOTS = ROOT / "build" / "hub" / "browser"


def chromium() -> tuple[str | None, str]:
    """Debian's Chromium (the binary, not the /usr/bin wrapper script, when both are there)."""
    for path in ("/usr/lib/chromium/chromium", shutil.which("chromium") or "", shutil.which("chromium-browser") or ""):
        if path and Path(path).is_file():
            return path, ""
    return None, "Chromium not found (apt-get install chromium, as .ci/run does when it runs as root)"


@contextlib.contextmanager
def headless_chromium():
    """This machine's Chromium, headless, driven by Playwright, closed on the way out; the test is skipped, saying
    why, where either is missing."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip('Playwright is not installed (python -m pip install -e ".[hub]")')
    path, why = chromium()
    if not path:
        pytest.skip(why)
    with sync_playwright() as pw:
        # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
        b = pw.chromium.launch(executable_path=path, headless=True, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def browser():
    with headless_chromium() as b:
        yield b


def test_trainee_in_jupyterlab_runs_the_lab_and_validates(hub_factory, browser):
    hub = hub_factory(trainees=1, gpus=["0"])
    name = "trainee-001"
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(120_000)
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "failure.png").unlink(missing_ok=True)
    try:
        page.goto(f"{hub.url}/hub/login")
        assert "Tech Day card" in page.content()
        page.fill("#username_input", name)
        page.fill("#password_input", hub.passwords[name])
        page.click("#login_submit")
        page.wait_for_url(f"**/user/{name}/lab**", timeout=240_000)
        page.wait_for_selector(".jp-LabShell")

        # The released lab, fetched as the Assignments tab does, then opened in JupyterLab.
        fetched = Person(hub, name).rest("POST", "/assignments/fetch", data={"course_id": COURSE, "assignment_id": LAB})
        assert fetched.json()["success"], fetched.text
        page.goto(f"{hub.url}/user/{name}/lab/tree/{LAB}/{LAB}.ipynb")
        page.wait_for_selector(".jp-Notebook .jp-Cell")
        # JupyterLab may ask which kernel to start (the notebook names python3): take the one it offers.
        try:
            page.locator(".jp-Dialog", has_text="Select Kernel").wait_for(timeout=10_000)
            page.locator(".jp-Dialog").get_by_role("button", name="Select", exact=True).click()
        except Exception:  # noqa: BLE001 (no dialog: the kernel started on its own)
            pass
        page.locator(".jp-StatusBar-TextItem", has_text="| Idle").first.wait_for(timeout=120_000)
        news = page.get_by_role("button", name="No", exact=True)
        if news.count():
            news.first.click()  # JupyterLab's "official Jupyter news?" toast: out of the screenshot

        # Run the first cells, as a trainee does: Shift+Enter on the parameters cell, then on the setup
        # cell (the tier banner), each once the one before has run.
        code = page.locator(".jp-Notebook .jp-CodeCell")
        code.nth(0).locator(".jp-InputArea-editor").click()
        page.keyboard.press("Shift+Enter")
        code.nth(0).locator(".jp-InputPrompt", has_text="[1]").wait_for(timeout=120_000)
        code.nth(1).locator(".jp-InputArea-editor").click()
        page.keyboard.press("Shift+Enter")
        banner = page.locator(".jp-OutputArea-output", has_text="TIER:").first
        banner.wait_for(timeout=180_000)
        text = banner.inner_text()
        assert "Tech Day GPU Lab" in text and "TIER: CPU" in text, text
        page.screenshot(path=str(SHOTS / f"{LAB}-banner.png"), full_page=True)

        # nbgrader's Validate button on the notebook toolbar: the untouched exercise does not pass. Found by its class:
        # its label follows JupyterLab's language where the image rewrote nbgrader's bundle (검증 in Korean).
        page.locator(".jp-ToolbarButtonComponent.validate-button").first.click()
        dialog = page.locator(".jp-Dialog").first
        dialog.wait_for(timeout=180_000)
        page.get_by_text("NotImplementedError").first.wait_for(timeout=180_000)
        report = dialog.inner_text()
        page.screenshot(path=str(SHOTS / f"{LAB}-validate.png"), full_page=True)
        print(f"\nscreenshot: {SHOTS / f'{LAB}-validate.png'}")
        assert "Validation Results" in report or "failed" in report.lower(), report
        assert "NotImplementedError" in report, report
    except Exception:
        page.screenshot(path=str(SHOTS / "failure.png"), full_page=True)
        raise
    finally:
        page.close()

"""A real browser through the demo: Debian's headless Chromium, driven by its chromedriver
(``tests/webdriver.py``), on ``scripts/demo``'s uvicorn. It opens ``/legacy/``, follows the
``url_for`` links, signs the guestbook (the form posts, the redirect is followed, the flash shows
through the session cookie), uploads a file, downloads the handbook (``send_file``) and the
streamed CSV, checking each page and the downloaded bytes, and saves a screenshot of each step;
with ``BRIDGE_UPDATE_SCREENSHOT=1`` the signed page is also copied to
``docs/screenshots/demo-legacy.png`` for the README (otherwise a run leaves the tree clean).

The browser is installed by ``scripts/install-browser`` (apt, as root) when missing; where it
cannot be, the test skips with the reason. Every step has a timeout."""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from demo_flask.app import HANDBOOK
from tests.servers import ROOT, serve
from tests.webdriver import Browser, chromium

pytestmark = [pytest.mark.server]
DOCS_SCREENSHOT = ROOT / "docs" / "screenshots" / "demo-legacy.png"


@pytest.fixture(scope="module")
def browser_installed() -> None:
    if shutil.which("chromium") and shutil.which("chromedriver"):
        return
    try:
        subprocess.run(
            [ROOT / "scripts" / "install-browser"],
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
    except subprocess.TimeoutExpired:
        pytest.skip("installing chromium chromium-driver took over 600 s")
    except subprocess.CalledProcessError as error:
        pytest.skip(f"cannot install the browser: {error.stderr.strip()[-500:]}")
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("chromium or chromedriver still missing after scripts/install-browser")


def downloaded(browser: Browser, folder: Path, name: str) -> bytes:
    path = folder / name
    partial = folder / f"{name}.crdownload"
    browser.wait(lambda: path.exists() and not partial.exists(), f"the download of {name}")
    return path.read_bytes()


@pytest.mark.timeout(720)  # most of it for a first apt install; each step has its own timeout
def test_a_browser_walks_the_legacy_app(browser_installed: None, tmp_path: Path) -> None:
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    shots = tmp_path / "screenshots"
    shots.mkdir()
    upload = tmp_path / "notes.bin"
    upload.write_bytes(os.urandom(150_000))
    env = {"PORT": "{port}", "BRIDGE_VENV": sys.prefix}
    with (
        serve([str(ROOT / "scripts" / "demo")], env=env, timeout=60) as demo,
        chromium(downloads) as browser,
    ):
        legacy = f"{demo.url}/legacy"
        browser.open(f"{legacy}/")
        assert browser.title == "Home · bridge demo"
        assert browser.text("h1") == "Welcome"
        assert browser.text("#visits") == "1"
        assert "Ada: The legacy app still works" in browser.text("#entries")
        browser.screenshot(shots / "1-home.png")

        browser.click('header a[href="/legacy/guestbook/sign"]')  # a url_for link
        browser.wait(lambda: browser.url == f"{legacy}/guestbook/sign", "the sign page")
        assert browser.text("h1") == "Sign the guestbook"
        browser.type("#name", "Browser")
        browser.type("#message", "Signed in headless Chromium")
        browser.screenshot(shots / "2-sign.png")
        browser.click("#submit")  # POST, then the 302 back home
        browser.wait(lambda: browser.url == f"{legacy}/", "the redirect home")
        assert browser.text(".flash.success") == "Thanks for signing, Browser!"
        assert browser.text("h1") == "Welcome back, Browser"
        assert browser.text("#visits") == "2"
        assert "Browser: Signed in headless Chromium" in browser.text("#entries")
        signed = browser.screenshot(shots / "3-signed.png")

        browser.click('header a[href="/legacy/upload"]')
        browser.wait(lambda: browser.url == f"{legacy}/upload", "the upload page")
        assert browser.text("h1") == "Upload a file"
        browser.type("#file", str(upload))
        browser.click("#submit")
        browser.wait(lambda: "Received" in browser.text("main"), "the upload report")
        assert browser.text("#report-name") == "notes.bin"
        assert browser.text("#report-size") == "150000"
        assert browser.text("#report-sha256") == hashlib.sha256(upload.read_bytes()).hexdigest()
        browser.screenshot(shots / "4-uploaded.png")

        browser.click('header a[href="/legacy/handbook"]')  # send_file, as an attachment
        assert downloaded(browser, downloads, "handbook.txt") == HANDBOOK.read_bytes()
        browser.click('header a[href="/legacy/guestbook.csv"]')  # the generator's CSV
        rows = list(
            csv.reader(downloaded(browser, downloads, "guestbook.csv").decode().splitlines())
        )
        assert rows[0] == ["name", "message", "at"]
        assert ["Browser", "Signed in headless Chromium"] in [row[:2] for row in rows]
        assert browser.url == f"{legacy}/upload"  # downloads leave the page where it was

    assert sorted(path.name for path in shots.iterdir()) == [
        "1-home.png",
        "2-sign.png",
        "3-signed.png",
        "4-uploaded.png",
    ]
    assert signed.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    if os.environ.get("BRIDGE_UPDATE_SCREENSHOT"):  # the README's picture, refreshed on request
        DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(signed, DOCS_SCREENSHOT)

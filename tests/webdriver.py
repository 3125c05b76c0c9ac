"""A small W3C WebDriver client over httpx, for Debian's ``chromedriver`` driving its
``chromium`` headless. It needs no browser-automation package (Selenium Manager, Playwright's
installer) that could fetch a browser build of its own; every call has a timeout."""

from __future__ import annotations

import base64
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.servers import free_port


class WebDriverError(RuntimeError):
    pass


class Browser:
    def __init__(self, client: httpx.Client, session: str) -> None:
        self.client = client
        self.session = session

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.client.request(method, f"/session/{self.session}{path}", json=body)
        value = response.json()["value"]
        if response.status_code != 200:
            raise WebDriverError(f"{method} {path}: {value.get('error')}: {value.get('message')}")
        return value

    def open(self, url: str) -> None:
        self.call("POST", "/url", {"url": url})

    @property
    def url(self) -> str:
        return str(self.call("GET", "/url"))

    @property
    def title(self) -> str:
        return str(self.call("GET", "/title"))

    def find(self, css: str) -> str:
        """The element reference of the first match of ``css``."""
        found = self.call("POST", "/element", {"using": "css selector", "value": css})
        (reference,) = found.values()  # {"element-6066-...": id}, W3C's one key
        return str(reference)

    def text(self, css: str) -> str:
        return str(self.call("GET", f"/element/{self.find(css)}/text"))

    def click(self, css: str) -> None:
        self.call("POST", f"/element/{self.find(css)}/click", {})

    def type(self, css: str, text: str) -> None:
        self.call("POST", f"/element/{self.find(css)}/value", {"text": text})

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(base64.b64decode(self.call("GET", "/screenshot")))
        return path

    def wait(self, condition: Callable[[], bool], what: str, timeout: float = 15) -> None:
        """Poll ``condition`` until it holds. While a page is replaced an element found on the
        old one goes stale, and the new one may not be there yet: such errors mean "not yet"."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if condition():
                    return
                error = None
            except WebDriverError as raised:
                error = raised
            if time.monotonic() > deadline:
                raise WebDriverError(f"timed out after {timeout} s waiting for {what}") from error
            time.sleep(0.05)


@contextmanager
def chromium(
    downloads: Path, *, driver: str = "chromedriver", binary: str = "chromium"
) -> Iterator[Browser]:
    """Headless Chromium through ``chromedriver`` on a free port, files downloaded to
    ``downloads``; the browser and the driver are stopped on leaving."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bridge-chromium-") as profile:
        args = [driver, f"--port={port}"]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
                _wait_ready(client, proc)
                path = shutil.which(binary) or binary  # chromedriver wants a path
                yield from _session(client, _capabilities(path, profile, downloads))
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _capabilities(binary: str, profile: str, downloads: Path) -> dict[str, Any]:
    args = ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]
    args += ["--window-size=1100,900", f"--user-data-dir={profile}"]  # --no-sandbox: as root
    prefs = {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    return {
        "browserName": "chrome",
        "goog:chromeOptions": {"binary": binary, "args": args, "prefs": prefs},
        "timeouts": {"pageLoad": 20_000, "script": 10_000, "implicit": 5_000},
    }


def _session(client: httpx.Client, capabilities: dict[str, Any]) -> Iterator[Browser]:
    reply = client.post("/session", json={"capabilities": {"alwaysMatch": capabilities}})
    if reply.status_code != 200:
        raise WebDriverError(f"no browser session: {reply.json()['value']}")
    browser = Browser(client, reply.json()["value"]["sessionId"])
    try:
        yield browser
    finally:
        client.delete(f"/session/{browser.session}")


def _wait_ready(client: httpx.Client, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise WebDriverError(f"chromedriver exited with {proc.returncode}")
        try:
            if client.get("/status", timeout=2).json()["value"]["ready"]:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise WebDriverError(f"chromedriver not ready within {timeout} s")

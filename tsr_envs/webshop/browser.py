"""The WebShop site driven by Selenium and headless Chromium, through real UI interactions.

``search[q]`` types ``q`` into ``#search_input`` and clicks ``#search_button``; ``click[x]`` clicks the
element whose ``data-clickable`` is ``x`` (links, option buttons, the Buy Now form button).  Once the page
the interaction opened has loaded, the state and the observation are read from the server's JSON view of
the session (``GET /api/s/<sid>``): the record the page left and the engine's text rendering of it.  The
pages themselves carry nothing for the transport (no hidden observation, no session id in their text).

One Chromium serves an env and all its clones (a browser per clone would cost a process and ~100 MB each):
every session remembers whether it is the one on screen, and navigates to its record's URL before acting
when it is not.  The browser is closed when its last user closes.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from tsr_envs.webshop.catalogs import Shop
from tsr_envs.webshop.transports import DEFAULT_TIMEOUT, HttpTransport, StepResult, Transport
from webshop_server.engine import EngineStep, SessionRecord, parse_action
from webshop_server.urls import record_url

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
_FIND_CLICKABLE = (
    "return Array.from(document.querySelectorAll('[data-clickable]'))"
    ".find(e => e.getAttribute('data-clickable') === arguments[0]) || null;"
)


def browser_missing_reason() -> str | None:
    """Why the browser transport cannot run here (None when Selenium, Chromium and chromedriver exist)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install 'tsr-suite[browser]')"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not Path(path).is_file():
            return f"{path} not found (Debian: apt-get install {package})"
    return None


class _Browser:
    """One headless Chromium with a fresh profile, shared by reference count between clones."""

    def __init__(self, timeout: float) -> None:
        reason = browser_missing_reason()
        if reason is not None:
            raise RuntimeError(f"The browser transport needs headless Chromium: {reason}.")
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.profile = tempfile.mkdtemp(prefix="tsr-webshop-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={self.profile}"):
            options.add_argument(flag)
        try:
            self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        except Exception as exc:
            shutil.rmtree(self.profile, ignore_errors=True)
            raise RuntimeError(f"Could not start headless Chromium: {exc}") from exc
        self.driver.set_page_load_timeout(timeout)
        self.driver.set_script_timeout(timeout)
        self.timeout = timeout
        self.users = 1
        self.on_screen: object = None

    def release(self) -> None:
        self.users -= 1
        if self.users == 0:
            self.driver.quit()
            shutil.rmtree(self.profile, ignore_errors=True)


class BrowserTransport(Transport):
    """A server session (kept through the JSON API for restore) browsed by a shared headless Chromium."""

    def __init__(
        self,
        shop: Shop,
        base_url: str | None,
        record: SessionRecord,
        timeout: float = DEFAULT_TIMEOUT,
        browser: _Browser | None = None,
    ) -> None:
        self.http = HttpTransport(shop, base_url, record, timeout)
        try:
            self.browser = browser or _Browser(timeout)
        except BaseException:
            self.http.close()
            raise
        if browser is not None:
            browser.users += 1
        self.record = record
        self._closed = False

    @property
    def driver(self) -> Any:
        return self.browser.driver

    # -- Transport ---------------------------------------------------------------------------------------
    def step(self, record: SessionRecord, action: str, known: EngineStep | None = None) -> StepResult:
        from selenium.webdriver.common.by import By

        self._show()
        verb, argument = parse_action(action)  # type: ignore[misc]  # the env only sends legal actions
        if verb == "search":
            box = self.driver.find_element(By.ID, "search_input")
            box.clear()
            box.send_keys(argument)
            self._load_after(self.driver.find_element(By.ID, "search_button").click)
        else:
            element = self.driver.execute_script(_FIND_CLICKABLE, argument)
            if element is None:
                raise RuntimeError(f"the page at {self.driver.current_url} has no clickable {argument!r}")
            self._load_after(element.click)
        view = self.http.client.request("GET", f"/api/s/{self.http.client.session_id}")
        self.record = SessionRecord.from_dict(view["record"])
        reward = self.record.reward if self.record.done and not record.done else 0.0
        return StepResult(self.record, reward, self.record.done, view["observation"])

    def restore(self, record: SessionRecord) -> str | None:
        observation = self.http.restore(record)
        self.record = record
        self.browser.on_screen = None
        self._show()
        return observation

    def fork(self, record: SessionRecord) -> Transport:
        return BrowserTransport(
            self.http.shop,
            None if self.http.private else self.http.base_url,
            record,
            self.http.timeout,
            self.browser,
        )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.browser.release()
        self.http.close()

    # -- page handling -----------------------------------------------------------------------------------
    def _show(self) -> None:
        """Navigate to this session's record unless its page is already on screen."""
        if self.browser.on_screen is self:
            return
        path = record_url(self.http.client.session_id, self.record)
        self._load_after(lambda: self.driver.get(self.http.base_url + path))
        self.browser.on_screen = self

    def _load_after(self, interaction: Any) -> None:
        load_after(self.driver, self.browser.timeout, interaction)


_NEW_PAGE_LOADED = "return window.__tsrOldPage === undefined && document.readyState === 'complete';"


def load_after(driver: Any, timeout: float, interaction: Any) -> None:
    """Run ``interaction`` (a click, a navigation) and wait until the page it opens has loaded.

    The old page is marked with a script variable; a new document does not have it.  (Waiting for the old
    ``<html>`` element to go stale is racy: Chromium can answer the staleness probe with an inspector error
    while it swaps documents.)
    """
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    driver.execute_script("window.__tsrOldPage = true;")
    interaction()
    wait = WebDriverWait(driver, timeout, poll_frequency=0.01, ignored_exceptions=(WebDriverException,))
    wait.until(lambda current: current.execute_script(_NEW_PAGE_LOADED))

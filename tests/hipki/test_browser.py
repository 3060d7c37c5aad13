"""The relying-party example in Debian's real Chromium (headless, chromium-driver) against
``eidemu hipki serve --card pcsc:...`` with emulated MOICA cards behind a private pcscd + vpcd.

The sites are named ``rp.test`` (trusted) and ``evil.test`` (not trusted), both mapped to the
loopback by Chromium's host resolver rules. Each test inserts a fresh card into the vpcd
slot; the service, started once, follows the cards live.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from eidemu.emulator.profile import load_profile
from tests.pcsc.conftest import READER0, wait_for_card

ROOT = Path(__file__).resolve().parents[2]
IDENTITIES = ROOT / "fixtures" / "pki" / "identities"
pytestmark = [pytest.mark.browser, pytest.mark.pcsc, pytest.mark.slow]


def identity(slug: str) -> dict:
    return json.loads((IDENTITIES / slug / "identity.json").read_text("utf-8"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, process: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{url}: the process ended: {process.stderr.read() if process.stderr else ''}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    pytest.fail(f"{url} did not answer in {timeout} s")


@pytest.fixture(scope="module")
def servers(stack, tmp_path_factory):
    """(service URL, relying-party port): eidemu hipki serve over the vpcd reader, and the example."""
    tmp = tmp_path_factory.mktemp("hipki")
    hipki_port, rp_port = free_port(), free_port()
    env = dict(os.environ)
    service = subprocess.Popen(
        [sys.executable, "-m", "eidemu.cli", "hipki", "serve", "--card", f"pcsc:{READER0}", "--port", str(hipki_port),
         "--trust", "rp.test", "--trust-file", str(tmp / "trusted.json"), "--test-control"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    hipki = f"http://localhost:{hipki_port}"
    rp = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "hipki-relying-party" / "server.py"), "--port", str(rp_port),
         "--hipki", hipki],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_http(hipki + "/selfTest.htm", service)
        wait_http(f"http://127.0.0.1:{rp_port}/", rp)
        yield hipki, rp_port
    finally:
        for process in (service, rp):
            process.terminate()
            process.wait(10)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not binary or not driver:
        pytest.fail("Debian's chromium and chromium-driver are not installed (run scripts/setup.sh)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in (
        "--headless=new",
        "--no-sandbox",  # tests run as root in CI containers
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-popup-blocking",  # the page opens the service popup after asynchronous steps
        "--host-resolver-rules=MAP rp.test 127.0.0.1, MAP evil.test 127.0.0.1, MAP newsite.test 127.0.0.1",
    ):
        options.add_argument(argument)
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    chrome.set_page_load_timeout(30)
    yield chrome
    chrome.quit()


@pytest.fixture
def card(slots, tmp_path):
    """Insert a fresh card of a profile into the vpcd reader; returns its identity."""

    def insert(slug: str = "g2-valid-1") -> dict:
        slots.insert(0, load_profile(f"moica-{slug}").build(tmp_path / f"{slug}.json"))
        wait_for_card(READER0)
        return identity(slug)

    return insert


class Page:
    def __init__(self, browser, url: str) -> None:
        self.browser = browser
        browser.get(url)

    def text(self, element: str) -> str:
        return self.browser.find_element("id", element).text

    def wait_text(self, element: str, prefixes: tuple[str, ...], timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.text(element)
            if value.startswith(prefixes):
                return value
            time.sleep(0.1)
        pytest.fail(f"#{element} is {self.text(element)!r}, expected it to start with {prefixes}")

    def read_card(self) -> str:
        self.browser.find_element("id", "read").click()
        return self.wait_text("cert", ("certificate",))

    def log_in(self, national_id: str, pin: str) -> str:
        self.browser.find_element("id", "result").get_attribute("id")
        self.browser.execute_script("document.getElementById('result').textContent = ''")
        for element, value in (("national-id", national_id), ("pin", pin)):
            field = self.browser.find_element("id", element)
            field.clear()
            field.send_keys(value)
        self.browser.find_element("id", "login").click()
        return self.wait_text("result", ("logged in", "rejected", "error"))


def test_login_and_signature(servers, browser, card):
    _, port = servers
    who = card()
    page = Page(browser, f"http://rp.test:{port}/")
    assert page.read_card() == f"certificate {who['certificates']['sign']['serial_number']}, ID ending 9048"
    assert "card TP46375051237517" in page.text("service")
    assert page.log_in(who["national_id"], who["initial_pin"]) == "logged in: 2.5.4.5=5536213595905826,CN=鍾柏子,C=TW"


def test_wrong_national_id_is_rejected(servers, browser, card):
    _, port = servers
    who = card()
    page = Page(browser, f"http://rp.test:{port}/")
    page.read_card()
    assert (
        page.log_in("A123456789", who["initial_pin"]) == "rejected: the certificate does not belong to this national ID"
    )


def test_wrong_pin_twice_then_right(servers, browser, card):
    _, port = servers
    who = card()
    page = Page(browser, f"http://rp.test:{port}/")
    page.read_card()
    first = page.log_in(who["national_id"], "111111")
    assert first == "error: sign failed 0x76100006 last_error 0x80000002: wrong PIN, 2 tries left"
    second = page.log_in(who["national_id"], "111111")
    assert second == "error: sign failed 0x76100006 last_error 0x80000001: wrong PIN, 1 tries left"
    assert page.log_in(who["national_id"], who["initial_pin"]).startswith("logged in: ")


def test_pin_locked(servers, browser, card):
    _, port = servers
    who = card()
    page = Page(browser, f"http://rp.test:{port}/")
    page.read_card()
    for _ in range(3):
        page.log_in(who["national_id"], "222222")
    assert page.log_in(who["national_id"], who["initial_pin"]) == (
        "error: sign failed 0x76100006 last_error 0xA4: the PIN is locked"
    )


def test_card_removed_between_probe_and_sign(servers, browser, card, slots):
    _, port = servers
    who = card()
    page = Page(browser, f"http://rp.test:{port}/")
    page.read_card()
    slots.remove(0)
    wait_for_card(READER0, present=False)
    assert page.log_in(who["national_id"], who["initial_pin"]).startswith("error: sign failed 0x76000006")


@pytest.mark.parametrize(("slug", "reason"), [("g2-expired", "expired"), ("g2-revoked", "revoked")])
def test_expired_and_revoked_identities_rejected_by_the_server(servers, browser, card, slug, reason):
    _, port = servers
    who = card(slug)
    page = Page(browser, f"http://rp.test:{port}/")
    page.read_card()
    verdict = page.log_in(who["national_id"], who["initial_pin"])
    assert verdict.startswith("rejected: certificate not accepted: ")
    assert reason in verdict.lower()


def test_untrusted_site(servers, browser, card):
    hipki, port = servers
    card()
    page = Page(browser, f"http://evil.test:{port}/")
    page.browser.find_element("id", "read").click()
    assert page.wait_text("result", ("error",)) == (
        f"error: untrusted site 0x76000031: open {hipki}/addDomain?domain=evil.test"
    )


def switch_to_popup(browser, main: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        others = [h for h in browser.window_handles if h != main]
        if others:
            browser.switch_to.window(others[-1])
            return
        time.sleep(0.05)
    pytest.fail("the service popup did not open")


def test_pin_typed_in_the_service_popup(servers, browser, card):
    _, port = servers
    who = card()
    page = Page(browser, f"http://rp.test:{port}/")
    page.read_card()
    main = browser.current_window_handle
    browser.find_element("id", "national-id").send_keys(who["national_id"])
    browser.find_element("id", "login").click()  # no PIN on the page: the popup asks
    switch_to_popup(browser, main)
    try:
        deadline = time.monotonic() + 15
        while not browser.find_element("id", "pin-form").is_displayed():
            assert time.monotonic() < deadline, "the popup did not ask for the PIN"
            time.sleep(0.05)
        browser.find_element("id", "pin").send_keys(who["initial_pin"])
        browser.find_element("id", "pin-ok").click()
    finally:
        browser.switch_to.window(main)
    assert page.wait_text("result", ("logged in", "rejected", "error")).startswith("logged in: ")


def test_untrusted_site_trusted_through_add_domain(servers, browser, card, tmp_path_factory):
    _, port = servers
    card()
    page = Page(browser, f"http://newsite.test:{port}/")
    main = browser.current_window_handle
    browser.find_element("id", "read").click()
    assert page.wait_text("result", ("error",)).startswith("error: untrusted site 0x76000031")
    browser.find_element("id", "trust").click()
    switch_to_popup(browser, main)
    try:
        assert "newsite.test" in browser.find_element("tag name", "body").text
        browser.find_element("id", "approve").click()
    finally:
        browser.switch_to.window(main)
    assert page.wait_text("service", ("site trusted", "not trusted")) == "site trusted"
    browser.execute_script("document.getElementById('result').textContent = ''")
    assert page.read_card().startswith("certificate ")

"""The HiPKI-compatible service for the tests: in a background thread on a free port.

PC/SC tests here use the private pcscd + vpcd of tests/pcsc/conftest.py (its run directory,
reader names and ``slots`` fixture). Its ``stack`` fixture is session-scoped and defined
there; a second definition of it here would start a second pcscd in the same directory, so
``stack`` here shares the running one when tests/pcsc started it first, else starts it for
this module and stops it afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from eidemu.emulator.transport import pcscd
from eidemu.hipki.server import BackgroundService, ServiceConfig
from tests.pcsc import conftest as pcsc_stack
from tests.pcsc.conftest import PYSCARD_MISSING, slots  # noqa: F401 - fixture, uses ``stack`` below

if PYSCARD_MISSING is not None:
    # The PC/SC and browser modules import pyscard helpers at the top: without pyscard each
    # module here is one test that skips (or fails under EIDEMU_REQUIRE_PCSC), as in tests/pcsc.
    from tests.pcsc.conftest import pytest_pycollect_makemodule  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
IDENTITY = json.loads((ROOT / "fixtures" / "pki" / "identities" / "g2-valid-1" / "identity.json").read_text("utf-8"))
PIN = IDENTITY["initial_pin"]


class Client:
    """requests against one running service; ``sign``/``decrypt`` post a tbsPackage."""

    def __init__(self, running: BackgroundService) -> None:
        self.running = running
        self.url = running.url
        self.service = running.service
        self.trust = running.trust
        self.http = running.http

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.url + path, timeout=30, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return requests.post(self.url + path, timeout=30, **kwargs)

    def call(self, path: str, package: dict | str, headers: dict | None = None) -> dict:
        text = package if isinstance(package, str) else json.dumps(package)
        response = self.post(path, data={"tbsPackage": text}, headers=headers or {})
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("application/json")
        return response.json()

    def control(self, body: dict) -> dict:
        response = self.post("/eidemu/control", json=body, headers={"X-Eidemu-Control": "1"})
        assert response.status_code == 200, response.text
        return response.json()


def start(card: str, tmp_path: Path, **options) -> BackgroundService:
    options.setdefault("test_control", True)
    return BackgroundService(ServiceConfig(card, port=0, trust_file=tmp_path / "trusted.json", **options))


@pytest.fixture
def hipki(tmp_path) -> Iterator[Client]:
    """A service over a fresh emulated g2-valid-1 card (state in tmp_path), trusting rp.test."""
    running = start(f"emulator:moica-g2-valid-1?state={tmp_path / 'card.json'}", tmp_path, trusted=("rp.test",))
    try:
        yield Client(running)
    finally:
        running.close()


@pytest.fixture
def make_service(tmp_path) -> Iterator:
    """Start services with chosen cards and options; all closed afterwards."""
    started: list[BackgroundService] = []

    def make(card: str, **options) -> Client:
        running = start(card, tmp_path, **options)
        started.append(running)
        return Client(running)

    yield make
    for running in started:
        running.close()


@pytest.fixture(scope="module")
def stack():
    """The private pcscd of tests/pcsc/conftest.py: shared when running, else started here."""
    running = pcscd.PcscdInstance.load(pcsc_stack.RUN_DIR)
    if running is not None and running.alive():
        yield pcsc_stack.Stack(running)
        return
    missing = pcscd.missing_requirements()
    if missing:
        pytest.fail("the PC/SC stack is not installed: " + "; ".join(missing) + " (run scripts/setup.sh)")
    hint = pcscd.pyscard_hint()
    if hint:
        pytest.fail(hint)
    try:
        instance = pcscd.start(pcsc_stack.RUN_DIR)
    except pcscd.PcscdError as exc:
        pytest.fail(f"cannot start the private pcscd: {exc}")
    started = pcsc_stack.Stack(instance)
    yield started
    pcscd.stop(started.instance.run_dir)

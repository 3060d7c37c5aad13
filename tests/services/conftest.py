"""The mobile certificate and ICS doubles for the tests: the shipped TEST PKI, services in threads."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from eidemu.emulator.pki.store import TestPki
from eidemu.fixtures import fixture_path
from eidemu.services.fido import DEFAULT_SP_ID, DEFAULT_SP_KEY, FidoConfig, FidoService, sp_request
from eidemu.services.server import running

PKI_DIR = fixture_path("pki")


@pytest.fixture(scope="session")
def pki() -> TestPki:
    return TestPki.load(PKI_DIR)


def holder_id(pki: TestPki, slug: str) -> str:
    return pki.identities[slug].identity.national_id


class Clock:
    """A settable clock for ticket lifetimes."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Fido:
    """A running service and an SP client for it."""

    def __init__(self, service: FidoService, base_url: str) -> None:
        self.service = service
        self.base_url = base_url

    def post(
        self, call: str, *, sp_id: str = DEFAULT_SP_ID, key: bytes = DEFAULT_SP_KEY, **fields: Any
    ) -> dict[str, Any]:
        fields.setdefault("transaction_id", "txn-0001")
        return self.raw(call, sp_request(sp_id, key, call, **fields))

    def raw(self, call: str, message: dict[str, Any] | bytes) -> dict[str, Any]:
        body = message if isinstance(message, bytes) else json.dumps(message).encode()
        request = urllib.request.Request(
            f"{self.base_url}moise/sp/{call}", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "application/json"
            return json.loads(response.read())


def start_fido(pki: TestPki, config: FidoConfig | None = None, clock: Clock | None = None) -> Any:
    service = FidoService(pki, config, clock or Clock())
    return service, running(service.handle, name="test-fido")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fido(pki: TestPki, clock: Clock) -> Iterator[Fido]:
    service = FidoService(pki, None, clock)
    with running(service.handle, name="test-fido") as http:
        yield Fido(service, http.base_url)

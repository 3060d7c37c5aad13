"""Fixtures: the committed default PKI, and a freshly generated one served over real loopback HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from eidemu.emulator.pki.generate import generate_pki
from eidemu.emulator.pki.services import PkiHttpServer
from eidemu.emulator.pki.store import TestPki

COMMITTED_PKI = Path(__file__).resolve().parents[2] / "fixtures" / "pki"


@pytest.fixture(scope="session")
def committed_pki() -> TestPki:
    return TestPki.load(COMMITTED_PKI)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PkiHttpServer]:
    """A server on a free loopback port, serving a PKI generated to point at that very port.

    The server binds first (port 0), so the generated CRLDP/AIA URLs are right without any race.
    """
    server = PkiHttpServer(None, "127.0.0.1", 0)
    pki_dir = tmp_path_factory.mktemp("pki")
    generate_pki(pki_dir, base_url=server.base_url, seed=7)
    server.load(pki_dir)
    thread = server.start_in_thread()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="session")
def live_pki(live_server: PkiHttpServer) -> TestPki:
    return live_server.authority.pki

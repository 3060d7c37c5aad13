"""The real stack for these tests: a private pcscd with Debian's vpcd driver, and pyscard.

The stack is started once per session by :mod:`eidemu.emulator.transport.pcscd`. It must run in
CI (root, Debian packages from scripts/setup.sh): if it cannot start, the tests fail with
the reason instead of being skipped.

libpcsclite reads ``PCSCLITE_CSOCK_NAME`` once per process, so the socket path is fixed
and exported when this file is imported, before any test can touch PC/SC.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from eidemu.emulator.profile import load_profile
from eidemu.emulator.transport import pcscd
from eidemu.emulator.transport.vpcd import CardSlots

RUN_DIR = Path(tempfile.mkdtemp(prefix="eidemu-pcsc-"))
os.environ["PCSCLITE_CSOCK_NAME"] = str(RUN_DIR / "sock" / "pcscd.comm")

ROOT = Path(__file__).resolve().parents[2]
READER0 = "Virtual PCD 00 00"
READER1 = "Virtual PCD 00 01"
POLL = 0.4  # pcscd polls each reader every 400 ms


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.pcsc)


@dataclass
class Stack:
    """The running private pcscd (replaced when a test restarts it)."""

    instance: pcscd.PcscdInstance

    @property
    def port(self) -> int:
        return self.instance.port

    def restart(self) -> None:
        self.instance = pcscd.restart(self.instance)


@pytest.fixture(scope="session")
def stack():
    missing = pcscd.missing_requirements()
    if missing:
        pytest.fail("the PC/SC stack is not installed: " + "; ".join(missing) + " (run scripts/setup.sh)")
    hint = pcscd.pyscard_hint()
    if hint:
        pytest.fail(hint)
    try:
        instance = pcscd.start(RUN_DIR)
    except pcscd.PcscdError as exc:
        pytest.fail(f"cannot start the private pcscd: {exc}")
    running = Stack(instance)
    yield running
    pcscd.stop(running.instance.run_dir)
    shutil.rmtree(RUN_DIR, ignore_errors=True)


def reader_state(reader: str) -> tuple[int, bytes] | None:
    from eidemu.conformance.pcsc import PcscContext

    context = PcscContext()
    try:
        return context.reader_states().get(reader)
    finally:
        context.close()


def wait_for_card(reader: str, present: bool = True, timeout: float = 3.0) -> float:
    """Seconds until the reader shows a card (or shows empty); fails the test on timeout."""
    from smartcard import scard

    started = time.monotonic()
    while True:
        state = reader_state(reader)
        if state is not None:
            bits = state[0]
            if present and bits & scard.SCARD_STATE_PRESENT:
                return time.monotonic() - started
            if not present and bits & scard.SCARD_STATE_EMPTY:
                return time.monotonic() - started
        if time.monotonic() - started > timeout:
            pytest.fail(f"reader {reader!r} not {'holding a card' if present else 'empty'} after {timeout} s")
        time.sleep(0.005)


@pytest.fixture
def slots(stack):
    """Cards served into the private pcscd's vpcd reader; all removed afterwards."""
    with CardSlots("localhost", stack.port, backoff=(0.01, 0.2)) as card_slots:
        yield card_slots
        inserted = list(card_slots.endpoints)
    for slot in inserted:
        wait_for_card(READER0 if slot == 0 else READER1, present=False)


@pytest.fixture
def demo_card(slots):
    """A fresh iso-demo card, present in slot 0."""
    card = load_profile("iso-demo").build()
    slots.insert(0, card)
    wait_for_card(READER0)
    return card


def start_cli(stack, *args: str) -> subprocess.Popen[str]:  # type: ignore[no-untyped-def]
    """``eidemu ARGS`` as its own process, pointed at this stack's vpcd, text pipes for
    standard output and error, as a user runs it."""
    env = dict(os.environ, EIDEMU_VPCD=f"localhost:{stack.port}", PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "eidemu.cli", *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

"""The real stack for these tests: a private pcscd with Debian's vpcd driver, and pyscard.

The stack is started once per session by :mod:`eidemu.emulator.transport.pcscd`. Without
pyscard, pcscd or the vpcd driver these tests are skipped with the reason; with
``EIDEMU_REQUIRE_PCSC=1`` (CI sets it, see ``.ci/run``) their absence, or a stack that
cannot start, is a failure instead.

libpcsclite reads ``PCSCLITE_CSOCK_NAME`` once per process, so the socket path is fixed
and exported when this file is imported, before any test can touch PC/SC.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from eidemu.cards import insert_card
from eidemu.emulator.profile import load_profile
from eidemu.emulator.transport import pcscd
from eidemu.emulator.transport.vpcd import CardSlots

REQUIRE_PCSC = os.environ.get("EIDEMU_REQUIRE_PCSC", "") not in ("", "0")
PYSCARD_MISSING = pcscd.pyscard_hint()  # None when pyscard imports


def unavailable(reason: str) -> None:
    """Skip (or, with EIDEMU_REQUIRE_PCSC set, fail) because the PC/SC stack is not there."""
    if REQUIRE_PCSC:
        pytest.fail(f"{reason} (EIDEMU_REQUIRE_PCSC is set: the PC/SC tests must run)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)  # also called from the session fixture


if PYSCARD_MISSING is None:
    from eidemu.conformance.pcsc import PcscContext, wait_for_card
else:
    # The test modules import pyscard at the top: without it, each module becomes one test
    # that skips (or fails) with the reason, instead of an import error at collection.

    class PyscardMissing(pytest.Item):
        def runtest(self) -> None:
            unavailable(str(PYSCARD_MISSING))

        def reportinfo(self):  # type: ignore[no-untyped-def]
            return self.path, None, f"{self.path.name}: pyscard missing"

    class UnimportableModule(pytest.File):
        def collect(self):  # type: ignore[no-untyped-def]
            yield PyscardMissing.from_parent(self, name="pyscard")

    def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.Collector:
        return UnimportableModule.from_parent(parent, path=module_path)


RUN_DIR = Path(tempfile.mkdtemp(prefix="eidemu-pcsc-"))
os.environ["PCSCLITE_CSOCK_NAME"] = str(RUN_DIR / "sock" / "pcscd.comm")


def pcsc_tools_env(**extra: str) -> dict[str, str]:
    """The environment for pcsc-tools (pcsc_scan): a HOME of the test run's own. pcsc_scan
    looks an unknown ATR up online and, offline, leaves an empty ~/.cache/smartcard_list.txt
    that hides the system list from every later run; this keeps the user's HOME clean and
    gives the run a fresh copy of the system list, so no download is attempted."""
    home = RUN_DIR / "home"
    cached = home / ".cache" / "smartcard_list.txt"
    if not cached.exists():
        # A fresh copy of Debian's list: fresh, so ATR_analysis does not try to download one.
        cached.parent.mkdir(parents=True, exist_ok=True)
        system_list = Path("/usr/share/pcsc/smartcard_list.txt")
        cached.write_bytes(system_list.read_bytes() if system_list.exists() else b"")
    return dict(os.environ, HOME=str(home), **extra)


ROOT = Path(__file__).resolve().parents[2]
READER0 = pcscd.reader_name(0)
READER1 = pcscd.reader_name(1)
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
        unavailable("the PC/SC stack is not installed: " + "; ".join(missing) + " (run scripts/setup.sh)")
    try:
        instance = pcscd.start(RUN_DIR)
    except pcscd.PcscdError as exc:
        unavailable(f"cannot start the private pcscd: {exc}")
    running = Stack(instance)
    yield running
    pcscd.stop(running.instance.run_dir)
    shutil.rmtree(RUN_DIR, ignore_errors=True)


def reader_state(reader: str) -> tuple[int, bytes] | None:
    context = PcscContext()
    try:
        return context.reader_states().get(reader)
    finally:
        context.close()


@pytest.fixture
def slots(stack):
    """Cards served into the private pcscd's vpcd reader; all removed afterwards."""
    with CardSlots("localhost", stack.port, backoff=(0.01, 0.2)) as card_slots:
        yield card_slots
        inserted = list(card_slots.endpoints)
    for slot in inserted:
        wait_for_card(pcscd.reader_name(slot), present=False)


@pytest.fixture
def demo_card(slots):
    """A fresh iso-demo card, present in slot 0."""
    card = load_profile("iso-demo").build()
    insert_card(slots, 0, card)
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

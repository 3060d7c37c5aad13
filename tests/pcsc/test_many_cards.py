"""Many cards at once: ``eidemu pcscd start --readers N`` (N vpcd readers of two slots),
``eidemu serve`` filling them in order from one process, and pytest-xdist workers each on a
``served:`` card of their own slot.

Each test starts a private pcscd of its own (``readers=2``: four slots) and talks to it from
subprocesses: libpcsclite fixes its socket once per process, and this process's belongs to
the session's stack (conftest.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from eidemu.emulator.transport import pcscd

from .conftest import ROOT, unavailable

ISO_DEMO_ATR = "3B88800145494445 4D553031 3A".replace(" ", "")
MOICA_ATR = "3BB813008131FA524348544D4F494341A5"
READERS = ["Virtual PCD 00 00", "Virtual PCD 00 01", "Virtual PCD 1 00 00", "Virtual PCD 1 00 01"]

# Waits until every named reader holds a card and prints reader -> ATR as JSON.
LIST_ATRS = """
import json, sys, time
from eidemu.conformance.pcsc import PcscContext
wanted = sys.argv[1:]
deadline = time.monotonic() + 20
while True:
    context = PcscContext()
    try:
        states = context.reader_states()
    finally:
        context.close()
    atrs = {name: state[1].hex().upper() for name, state in states.items() if state[1]}
    if all(name in atrs for name in wanted) or time.monotonic() > deadline:
        print(json.dumps({name: atrs.get(name, "") for name in wanted}))
        break
    time.sleep(0.1)
"""


@pytest.fixture
def four_slots(stack, tmp_path):
    """A private pcscd of two vpcd readers (its own run directory); its client environment."""
    run_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"eidemu-many-{os.getpid()}"
    try:
        instance = pcscd.start(run_dir, readers=2)
    except pcscd.PcscdError as exc:
        unavailable(f"cannot start a second private pcscd: {exc}")
    try:
        assert [instance.reader_name(s) for s in range(instance.slots)] == READERS
        yield dict(os.environ, PYTHONPATH=str(ROOT), **instance.environment)
    finally:
        pcscd.stop(run_dir)


def test_reader_config_has_one_entry_per_reader_with_its_own_port_and_name():
    text = pcscd.reader_config(30000, ["/drv/libifdvpcd.so", "/run/drivers/libifdvpcd-1.so"])
    assert text == (
        'FRIENDLYNAME "Virtual PCD"\nDEVICENAME   /dev/null:30000\nLIBPATH      /drv/libifdvpcd.so\n'
        "CHANNELID    30000\n\n"
        'FRIENDLYNAME "Virtual PCD 1"\nDEVICENAME   /dev/null:30002\nLIBPATH      /run/drivers/libifdvpcd-1.so\n'
        "CHANNELID    30002\n"
    )
    assert [pcscd.reader_name(s) for s in (0, 1, 2, 3, 15)] == [*READERS, "Virtual PCD 7 00 01"]


def test_serve_fills_the_readers_in_order_from_one_process(four_slots):
    # Not a repeating pattern: readers sharing one driver's slots would show the same pair twice.
    profiles = ["iso-demo", "moica-g2-valid-1", "moica-g2-valid-1", "iso-demo"]
    argv = [sys.executable, "-m", "eidemu.cli", "serve", *(a for p in profiles for a in ("--profile", p))]
    server = subprocess.Popen(
        argv, env=four_slots, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        listed = subprocess.run(
            [sys.executable, "-c", LIST_ATRS, *READERS], env=four_slots, capture_output=True, text=True, timeout=60
        )
        assert json.loads(listed.stdout) == dict(
            zip(READERS, [ISO_DEMO_ATR, MOICA_ATR, MOICA_ATR, ISO_DEMO_ATR], strict=True)
        )
    finally:
        server.communicate("quit\n", timeout=20)
    assert server.returncode == 0


def test_xdist_workers_each_serve_their_own_card(four_slots, tmp_path):
    junit = tmp_path / "results.xml"
    argv = [
        sys.executable, "-m", "pytest", "-n", "2", "-p", "no:cacheprovider", "-q", "-k", "ISO_SELECT",
        "--card", "served:iso-demo", f"--junitxml={junit}", f"--rootdir={tmp_path}",
    ]  # fmt: skip
    run = subprocess.run(argv, cwd=tmp_path, env=four_slots, capture_output=True, text=True, timeout=300)
    assert "12 passed" in run.stdout, run.stdout + run.stderr
    cards = {prop.get("value") for prop in ET.parse(junit).iter("property") if prop.get("name") == "card"}
    assert cards == {"served:iso-demo in pcsc:Virtual PCD 00 00", "served:iso-demo in pcsc:Virtual PCD 00 01"}

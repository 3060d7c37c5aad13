"""Tearing: SIGKILL the card process at random moments during VERIFY and UPDATE BINARY.

Models cutting the power of a real card mid-command (issue 2). A fork server
(``tearing_child.py``) runs card processes on one state file; each loops over wrong and
right VERIFYs and UPDATE BINARY with recognisable content, announcing every operation on
a pipe. The parent kills each at a random moment (``EIDEMU_TEARING_KILLS`` times, 200 by
default) and then checks that

* the state file loads, with :class:`~eidemu.emulator.state.StateStore` and as a card;
* the retry counters (PIN 01 and its PUK) are exactly what the completed operations
  left, or, for the interrupted one, the value before it or after it: never higher than
  before, except that a correct VERIFY may restore the maximum and a RESET RETRY COUNTER
  with the PUK may unblock the PIN; once the card has compared a PIN, the decrement must
  already be on disk (catches a counter persisted after the comparison);
* every file holds the content the completed updates left, and the file being updated
  when the kill came holds either the old or the new content.

While a card process runs, the parent keeps reading the state file; every read must load,
which catches a non-atomic write (a file truncated and rewritten in place) long before a
kill happens to land inside one.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from eidemu.emulator.cardos.fs import TransparentEF
from eidemu.emulator.profile import load_profile
from eidemu.emulator.state import StateStore

CHILD = Path(__file__).with_name("tearing_child.py")
sys.path.insert(0, str(CHILD.parent))
from tearing_child import NOTES_SIZE, PRIVATE_SIZE, content  # noqa: E402

PROFILE_NAME = "iso-demo"
NOTES, PRIVATE = "3F00/5000/5003", "3F00/5000/5002"
KILLS = int(os.environ.get("EIDEMU_TEARING_KILLS", "200"))
MAX_DELAY = 0.030  # seconds a card process runs before the kill, at most


@dataclass
class CardModel:
    """What the state file must say: the counters of PIN 01 and PUK 02, the two updated files."""

    remaining: dict[int, int]
    files: dict[str, bytes]


@dataclass
class Round:
    """One card process's life as reported on the pipe."""

    started_remaining: dict[int, int] = field(default_factory=dict)
    ops: list[tuple[int, str]] = field(default_factory=list)
    ends: dict[int, str] = field(default_factory=dict)
    compared: set[int] = field(default_factory=set)
    status: int | None = None
    failure: str = ""


class ForkServer:
    """The child fork server and the line protocol described in ``tearing_child.py``."""

    def __init__(self, state_file: Path) -> None:
        env = dict(os.environ)
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), PROFILE_NAME, str(state_file)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin, self.stdout = self.proc.stdin, self.proc.stdout
        assert self.readline() == "Z"

    def readline(self) -> str:
        line = self.stdout.readline()
        if not line:
            raise AssertionError(f"fork server ended (exit status {self.proc.poll()})")
        return line.decode().rstrip("\n")

    def start(self, first_seq: int, seed: int, life: Round) -> int:
        self.stdin.write(f"go {first_seq} {seed}\n".encode())
        self.stdin.flush()
        line = self.readline()
        if not line.startswith("R "):
            raise AssertionError(f"card process failed to start: {line}")
        _, pid, pin_tries, puk_tries = line.split()
        life.started_remaining = {0x01: int(pin_tries), 0x02: int(puk_tries)}
        return int(pid)

    def finish(self, pid: int, life: Round) -> None:
        """Read the dead process's reports up to the server's ``X`` line."""
        while True:
            line = self.readline()
            kind, _, rest = line.partition(" ")
            if kind == "B":
                seq, op = rest.split()
                life.ops.append((int(seq), op))
            elif kind == "E":
                seq, sw = rest.split()
                life.ends[int(seq)] = sw
            elif kind == "C":
                life.compared.add(int(rest))
            elif kind == "F":
                life.failure = rest
            elif kind == "X":
                dead, status = rest.split()
                assert int(dead) == pid
                life.status = int(status)
                return

    def close(self) -> None:
        try:
            self.stdin.close()
            self.proc.wait(timeout=10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


def load_state(state_file: Path, store: StateStore) -> CardModel:
    """The state file as the card sees it; fails the test when it does not load."""
    doc = store.read()
    if doc is None:
        raise AssertionError("state file missing")
    card = load_profile(PROFILE_NAME).build(state_file)  # must restore cleanly as well
    card.store.release()  # the next card process takes the state file
    files = {}
    for path in (NOTES, PRIVATE):
        ef = card.mf.find_path(path)
        assert isinstance(ef, TransparentEF)
        files[path] = bytes(ef.data)
    remaining = {ref: card.pins[ref].remaining for ref in (0x01, 0x02)}
    assert {int(ref, 16): saved["remaining"] for ref, saved in doc["pins"].items()} == remaining
    return CardModel(remaining, files)


def watch_state(state_file: Path, store: StateStore, until: float) -> int:
    """Read the state file until ``until``; every read must be a whole document.

    Most reads only check that the bytes form a complete JSON object (cheap, so the reads
    come fast enough to fall inside an in-place rewrite); every 32nd is a full load.
    Returns the number of reads.
    """
    reads = 0
    while time.monotonic() < until:
        try:
            raw = state_file.read_bytes()
        except FileNotFoundError:
            continue
        reads += 1
        if reads % 32 and raw.startswith(b"{") and raw.endswith(b"}"):
            continue
        try:
            store.read()  # without the lock: the card process holds it
        except Exception as exc:
            raise AssertionError(f"state file unreadable while the card runs: {exc}") from None
        if not raw.endswith(b"}"):
            raise AssertionError(f"state file read while incomplete: {raw[-40:]!r}")
    return reads


def apply_completed(model: CardModel, life: Round, max_tries: dict[int, int]) -> tuple[int, str] | None:
    """Apply every confirmed operation to the model; return the interrupted one, if any."""
    for seq, op in life.ops:
        sw = life.ends.get(seq)
        if sw is None:
            return seq, op
        if op in "WVU":
            assert seq in life.compared, "the card never reported a PIN comparison (hook lost?)"
        if op == "W":
            model.remaining[0x01] -= 1
            assert sw == f"63C{model.remaining[0x01]:X}", f"wrong VERIFY answered {sw}, counter {model.remaining}"
        elif op in "VU":
            assert sw == "9000", f"{'VERIFY' if op == 'V' else 'RESET RETRY COUNTER'} answered {sw}"
            model.remaining[0x01] = max_tries[0x01]
            if op == "U":
                model.remaining[0x02] = max_tries[0x02]
        else:
            assert sw == "9000", f"UPDATE BINARY answered {sw}"
            path, size = (NOTES, NOTES_SIZE) if op == "N" else (PRIVATE, PRIVATE_SIZE)
            model.files[path] = content(op, seq, size)
    return None


def allowed_counters(model: CardModel, torn: tuple[int, str] | None, life: Round, max_tries: dict[int, int]):
    """Counter values the state file may hold after a kill during ``torn``."""
    allowed = {ref: {value} for ref, value in model.remaining.items()}
    if torn is None or torn[1] not in "WVU":
        return allowed
    seq, op = torn
    # The counter of the PIN being compared is decremented and persisted before the
    # comparison: once the card has compared, the old value must be gone from the disk.
    checked = 0x02 if op == "U" else 0x01
    before = model.remaining[checked]
    allowed[checked] = {before - 1} if seq in life.compared else {before, before - 1}
    if op in "VU":
        allowed[checked].add(max_tries[checked])  # right PIN or PUK: back to the maximum
    if op == "U":
        allowed[0x01].add(max_tries[0x01])  # unblocked
    return allowed


def check_after_kill(
    model: CardModel, actual: CardModel, torn: tuple[int, str] | None, life: Round, max_tries: dict[int, int]
) -> None:
    """The state on disk is the model, or for the torn operation its old or new state."""
    allowed = allowed_counters(model, torn, life, max_tries)
    files_allowed = {path: {data} for path, data in model.files.items()}
    if torn is not None and torn[1] in "NP":
        seq, op = torn
        path, size = (NOTES, NOTES_SIZE) if op == "N" else (PRIVATE, PRIVATE_SIZE)
        files_allowed[path].add(content(op, seq, size))
    compared = torn is not None and torn[0] in life.compared
    for ref, options in allowed.items():
        assert actual.remaining[ref] in options, (
            f"PIN {ref:02X} counter {actual.remaining[ref]} after a kill during {torn}; allowed {sorted(options)} "
            f"(before: {model.remaining[ref]}, compared: {compared})"
        )
    for path, options in files_allowed.items():
        assert actual.files[path] in options, f"{path} holds {actual.files[path]!r}, neither old nor new content"


@pytest.mark.slow
def test_kill_during_verify_and_update_never_corrupts_state(tmp_path: Path) -> None:
    state_file = tmp_path / "card-state.json"
    profile = load_profile(PROFILE_NAME)
    store = StateStore(state_file, profile.profile_id)
    fresh = profile.build()
    max_tries = {ref: fresh.pins[ref].max_tries for ref in (0x01, 0x02)}
    model = CardModel(
        dict(max_tries),
        {path: bytes(fresh.mf.find_path(path).data) for path in (NOTES, PRIVATE)},  # type: ignore[attr-defined]
    )
    rng = random.Random(int(os.environ.get("EIDEMU_TEARING_SEED", "0")) or None)
    server = ForkServer(state_file)
    seq, reads = 1, 0
    torn_ops: dict[str, int] = {}
    outcomes = {"old": 0, "new": 0}
    try:
        for _ in range(KILLS):
            life = Round()
            pid = server.start(seq, rng.randrange(1 << 30), life)
            assert life.started_remaining == model.remaining, "the card did not restart from the state file"
            reads += watch_state(state_file, store, time.monotonic() + rng.uniform(0, MAX_DELAY))
            os.kill(pid, signal.SIGKILL)
            server.finish(pid, life)
            assert not life.failure, f"card process failed: {life.failure}"
            assert os.WIFSIGNALED(life.status or 0) and os.WTERMSIG(life.status or 0) == signal.SIGKILL

            torn = apply_completed(model, life, max_tries)
            actual = load_state(state_file, store) if state_file.exists() else model
            check_after_kill(model, actual, torn, life, max_tries)
            if torn is not None:
                torn_ops[torn[1]] = torn_ops.get(torn[1], 0) + 1
                changed = actual.remaining != model.remaining or actual.files != model.files
                outcomes["new" if changed else "old"] += 1
            model = actual
            seq = max([seq, *(s + 1 for s, _ in life.ops)])
    finally:
        server.close()
    # The kills must really land inside operations, or this test could not fail.
    print(f"{KILLS} kills; interrupted operations {torn_ops}; torn outcomes {outcomes}; {reads} state reads")
    assert sum(torn_ops.values()) >= KILLS // 2
    if KILLS >= 100:
        assert all(torn_ops.get(op, 0) > 0 for op in "WVNP"), torn_ops  # U is rare: only after a blocking
        assert outcomes["old"] > 0 and outcomes["new"] > 0, outcomes
    assert reads > KILLS

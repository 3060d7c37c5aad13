"""Persistent state: PIN counters and written files survive restarts; writes are atomic."""

import json
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eidemu.emulator import state as state_module
from eidemu.emulator.state import StateError, StateStore

from .conftest import PIN_BAD, PIN_OK, Terminal


def test_counter_and_files_survive_a_rebuild(demo_profile, tmp_path):
    state = tmp_path / "card.state"
    send = Terminal(demo_profile.build(state))
    assert send.sw(PIN_BAD) == 0x63C2
    send("00A4040C07A0000002471001")
    assert send.sw("00D6830003 58595A".replace(" ", "")) == 0x9000
    doc = json.loads(state.read_text())
    assert doc["pins"]["01"]["remaining"] == 2
    assert doc["files"] == {"3F00/5000/5003": "58595A".lower() + "00" * 61}

    send = Terminal(demo_profile.build(state))
    assert send.sw("00200001") == 0x63C2
    send("00A4040C07A0000002471001")
    assert send("00B0830003") == (b"XYZ", 0x9000)
    assert send.sw(PIN_OK) == 0x9000
    assert json.loads(state.read_text())["pins"]["01"]["remaining"] == 3


def test_counter_is_persisted_before_the_comparison(demo_profile, tmp_path):
    """The save with the decremented counter happens before the PIN is compared."""
    state = tmp_path / "card.state"
    card = demo_profile.build(state)
    seen = []
    original = card.store.save

    def spy(snapshot):
        seen.append(snapshot["pins"]["01"]["remaining"])
        original(snapshot)

    card.store.save = spy
    assert Terminal(card).sw(PIN_OK) == 0x9000
    assert seen == [2, 3]  # first the decrement, then the restore after a match


def test_changed_pin_survives(demo_profile, tmp_path):
    state = tmp_path / "card.state"
    send = Terminal(demo_profile.build(state))
    assert send.sw("0024000110 313233343536FFFF 3939393939393939".replace(" ", "")) == 0x9000
    send = Terminal(demo_profile.build(state))
    assert send.sw(PIN_OK) == 0x63C2
    assert send.sw("0020000108 3939393939393939".replace(" ", "")) == 0x9000


def test_state_of_another_profile_is_refused(demo_profile, tmp_path):
    state = tmp_path / "card.state"
    StateStore(state, "other#123").save({"pins": {}, "files": {}})
    with pytest.raises(StateError, match="belongs to profile 'other#123'"):
        demo_profile.build(state)


@pytest.mark.parametrize("content", [b"{not json", b"[]", b'{"eidemu_state": 9}'])
def test_corrupt_state_is_a_clear_error(demo_profile, tmp_path, content):
    state = tmp_path / "card.state"
    state.write_bytes(content)
    with pytest.raises(StateError, match=str(state)):
        demo_profile.build(state)


def test_state_naming_unknown_objects_is_refused(demo_profile, tmp_path):
    state = tmp_path / "card.state"
    StateStore(state, demo_profile.profile_id).save({"pins": {"7F": {"remaining": 1, "value": "00"}}, "files": {}})
    with pytest.raises(StateError, match="PIN 7F"):
        demo_profile.build(state)


def test_save_leaves_no_temporary_files(tmp_path):
    store = StateStore(tmp_path / "s.json", "p")
    for i in range(5):
        store.save({"pins": {}, "files": {}, "n": i})
    assert sorted(os.listdir(tmp_path)) == [".s.json.lock", "s.json"]  # the lock file stays
    assert store.load()["n"] == 4


def test_stale_temporaries_of_a_killed_writer_are_removed_on_load(tmp_path):
    store = StateStore(tmp_path / "s.json", "p")
    store.save({"pins": {}, "files": {}})
    stale = tmp_path / ".s.json.abc123.tmp"
    fresh = tmp_path / ".s.json.def456.tmp"
    stale.write_text("{")
    fresh.write_text("{")
    os.utime(stale, (0, 0))
    assert store.load() is not None
    assert not stale.exists() and fresh.exists()  # a write in flight is left alone


# -- one card at a time (issue 10) -----------------------------------------------------------

HOLDER = """
import sys
from eidemu.emulator.profile import load_profile
card = load_profile("iso-demo").build(sys.argv[1])
rsp = card.transmit(bytes.fromhex("0020000108393939393939FFFF"))
print(rsp.hex().upper(), flush=True)
sys.stdin.readline()
"""


def _eidemu(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eidemu.cli", *argv], capture_output=True, text=True, timeout=60, check=False
    )


def test_a_second_process_on_the_same_state_file_is_refused(tmp_path):
    """Two real processes: the second is refused (exit 2, one line) and gets no try."""
    state = tmp_path / "card.state"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(state)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "63C2"
        for _ in range(3):  # alternating processes would double the tries; here each is refused
            proc = _eidemu("apdu", "--profile", "iso-demo", "--state", str(state), "0020000108393939393939FFFF")
            assert proc.returncode == 2
            assert proc.stdout == ""
            assert proc.stderr.startswith(f"eidemu: error: {state}: state file is in use by another card (process ")
            assert proc.stderr.endswith("one state file serves one card at a time\n")
            assert len(proc.stderr.splitlines()) == 1
        assert json.loads(state.read_text())["pins"]["01"]["remaining"] == 2
    finally:
        holder.communicate("\n", timeout=30)
    proc = _eidemu("apdu", "--profile", "iso-demo", "--state", str(state), "--allow-errors", "00200001")
    assert proc.returncode == 0 and "63 C2" in proc.stdout  # the holder's try counted, nothing more


def test_a_blocked_pin_cannot_be_revived_by_an_older_card_in_the_same_process(demo_profile, tmp_path):
    """An older card of this process is retired when a new one takes the state file over:
    whatever it had in memory, a VERIFY fails closed (6581) before any comparison."""
    state = tmp_path / "card.state"
    old = Terminal(demo_profile.build(state))
    new = Terminal(demo_profile.build(state))
    for expected in (0x63C2, 0x63C1, 0x6983):
        assert new.sw(PIN_BAD) == expected
    assert old.sw(PIN_OK) == 0x6581  # the old card still believes 3 tries are left
    assert json.loads(state.read_text())["pins"]["01"]["remaining"] == 0
    assert Terminal(demo_profile.build(state)).sw(PIN_OK) == 0x6983


def test_release_lets_another_process_take_the_state_file(demo_profile, tmp_path):
    state = tmp_path / "card.state"
    card = demo_profile.build(state)
    card.store.release()
    proc = _eidemu("apdu", "--profile", "iso-demo", "--state", str(state), "--allow-errors", "00200001")
    assert proc.returncode == 0, proc.stderr


# -- complete and well-typed, or refused -----------------------------------------------------


def _valid_state(demo_profile, tmp_path):
    state = tmp_path / "card.state"
    send = Terminal(demo_profile.build(state))
    send("00A4040C07A0000002471001")
    assert send.sw("00D6830003 58595A".replace(" ", "")) == 0x9000  # EF.NOTES, transparent
    assert send.sw("00E2002003 AABBCC".replace(" ", "")) in (0x9000, 0x6982)
    doc = json.loads(state.read_text())
    return state, doc


def _drop(doc, *keys):
    target = doc
    for key in keys[:-1]:
        target = target[key]
    del target[keys[-1]]


def _put(value, *keys):
    def change(doc):
        target = doc
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return change


BROKEN_STATES = {
    "no pins": (lambda d: _drop(d, "pins"), "top level: missing 'pins'"),
    "no files": (lambda d: _drop(d, "files"), "top level: missing 'files'"),
    "empty pins": (_put({}, "pins"), "pins: PIN 01 is missing"),
    "PIN 02 missing": (lambda d: _drop(d, "pins", "02"), "pins: PIN 02 is missing"),
    "pins a list": (_put([], "pins"), "pins: expected an object, found a list"),
    "pins null": (_put(None, "pins"), "pins: expected an object, found null"),
    "files a list": (_put([], "files"), "files: expected an object, found a list"),
    "PIN a list": (_put([3, "313233343536"], "pins", "01"), "pins.01: expected an object, found a list"),
    "remaining missing": (lambda d: _drop(d, "pins", "01", "remaining"), "pins.01: missing 'remaining'"),
    "value missing": (lambda d: _drop(d, "pins", "01", "value"), "pins.01: missing 'value'"),
    "remaining null": (_put(None, "pins", "01", "remaining"), "pins.01.remaining: expected an integer, found null"),
    "remaining string": (_put("3", "pins", "01", "remaining"), "expected an integer, found a string"),
    "remaining float": (_put(3.0, "pins", "01", "remaining"), "expected an integer, found a number with a fraction"),
    "remaining boolean": (_put(True, "pins", "01", "remaining"), "expected an integer, found a boolean"),
    "remaining list": (_put([3], "pins", "01", "remaining"), "expected an integer, found a list"),
    "remaining negative": (_put(-1, "pins", "01", "remaining"), "pins.01.remaining: must be between 0 and 3"),
    "remaining above tries": (_put(4, "pins", "01", "remaining"), "pins.01.remaining: must be between 0 and 3"),
    "PUK above tries": (_put(11, "pins", "02", "remaining"), "pins.02.remaining: must be between 0 and 10"),
    "remaining huge": (_put(10**30, "pins", "01", "remaining"), "must be between 0 and 3"),
    "value null": (_put(None, "pins", "01", "value"), "pins.01.value: expected a hex string, found null"),
    "value number": (_put(313233343536, "pins", "01", "value"), "expected a hex string, found an integer"),
    "value not hex": (_put("31323334353G", "pins", "01", "value"), "pins.01.value: not a hex string"),
    "value odd": (_put("3132333435363", "pins", "01", "value"), "pins.01.value: not a hex string"),
    "value too short": (_put("313233", "pins", "01", "value"), "pins.01.value: length must be within 6..8"),
    "unknown PIN key": (_put(1, "pins", "01", "extra"), "pins.01: unknown key 'extra'"),
    "unknown top key": (_put(1, "extra"), "top level: unknown key 'extra'"),
    "file too short": (_put("00", "files", "3F00/5000/5003"), "files.3F00/5000/5003: 1 bytes for a file of 64"),
    "file a list": (_put(["00"], "files", "3F00/5000/5003"), "expected a hex string, found a list"),
    "file unknown": (_put("00", "files", "3F00/7777"), "state names file 3F00/7777"),
    "file is a DF": (_put("00", "files", "3F00/5000"), "which is not an EF"),
    "records not a list": (_put("010203", "files", "3F00/5000/5004"), "expected a list of records, found a string"),
    "record null": (_put([None], "files", "3F00/5000/5004"), "files.3F00/5000/5004[0]: expected a hex string"),
    "too many records": (_put(["01"] * 6, "files", "3F00/5000/5004"), "6 records for a file of at most 5"),
}


@pytest.mark.parametrize("case", sorted(BROKEN_STATES))
def test_incomplete_or_wrongly_typed_state_is_refused(demo_profile, tmp_path, case):
    """Nothing is coerced or defaulted: a blocked PIN must not come back through a state
    file that lacks or garbles its counter."""
    mutate, message = BROKEN_STATES[case]
    state, doc = _valid_state(demo_profile, tmp_path)
    mutate(doc)
    state.write_text(json.dumps(doc))
    with pytest.raises(StateError) as info:
        demo_profile.build(state)
    assert str(info.value).startswith(f"{state}: ")
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert StateStore(state, "x")._lock_key() not in state_module._HELD  # refused: not kept locked


@pytest.mark.parametrize("version", ["true", "1.0", '"1"', "null"])
def test_state_version_must_be_the_integer_1(demo_profile, tmp_path, version):
    state = tmp_path / "card.state"
    state.write_text(
        f'{{"eidemu_state": {version}, "profile": "{demo_profile.profile_id}", "pins": {{}}, "files": {{}}}}'
    )
    with pytest.raises(StateError, match="not an eidemu state file"):
        demo_profile.build(state)


def test_valid_state_with_blocked_pin_stays_blocked(demo_profile, tmp_path):
    state, doc = _valid_state(demo_profile, tmp_path)
    doc["pins"]["01"]["remaining"] = 0
    state.write_text(json.dumps(doc))
    assert Terminal(demo_profile.build(state)).sw(PIN_OK) == 0x6983


# -- the state cannot be written: fail closed, one line -----------------------------------------


def test_full_disk_fails_closed_with_one_log_line(demo_profile, tmp_path, monkeypatch, caplog):
    """A double for the full disk (the suite runs as root, so no directory is read-only to it)."""
    import errno
    import tempfile

    state = tmp_path / "card.state"
    send = Terminal(demo_profile.build(state))
    assert send.sw(PIN_BAD) == 0x63C2

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(tempfile, "mkstemp", full)
    with caplog.at_level("ERROR"):
        assert send.sw(PIN_OK) == 0x6581  # refused before the comparison
        assert send.sw(PIN_OK) == 0x6581
    assert json.loads(state.read_text())["pins"]["01"]["remaining"] == 2
    assert all(r.exc_info is None for r in caplog.records)  # one line each, no traceback
    assert caplog.records[0].getMessage() == (
        f"{state}: cannot write state file: No space left on device; the card refuses the command (6581)"
    )
    monkeypatch.undo()
    send = Terminal(demo_profile.build(state))
    assert send.sw("00200001") == 0x63C2  # no try was gained or lost on disk


def test_unusable_state_location_is_one_line_from_a_real_process(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    proc = _eidemu("apdu", "--profile", "iso-demo", "--state", str(blocker / "s.json"), "00200001")
    assert proc.returncode == 2
    assert proc.stderr == f"eidemu: error: {blocker / 's.json'}: cannot use state file: Not a directory\n"


# -- generated state documents ------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(1 << 70), 1 << 70) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
PLACES = (
    ("pins",),
    ("pins", "01"),
    ("pins", "02"),
    ("pins", "01", "remaining"),
    ("pins", "01", "value"),
    ("pins", "02", "remaining"),
    ("files",),
    ("files", "3F00/5000/5003"),
    ("files", "3F00/5000/5004"),
    (),
)


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_generated_state_documents_are_applied_exactly_or_refused(demo_profile, tmp_path_factory, data):
    """Any JSON at any place of a state file: the card either takes the counters exactly as
    written (each within 0..tries) or refuses the file with StateError; nothing else."""
    folder = tmp_path_factory.mktemp("gen")
    state, doc = _valid_state(demo_profile, folder)
    for _ in range(data.draw(st.integers(1, 3))):
        place = data.draw(st.sampled_from(PLACES))
        target = doc
        for key in place[:-1]:
            target = target.get(key) if isinstance(target, dict) else None
        if isinstance(target, dict) and place:
            target[place[-1]] = data.draw(JSON_VALUES)
        elif not place:
            doc[data.draw(st.sampled_from(("pins", "files", "extra")))] = data.draw(JSON_VALUES)
    state.write_text(json.dumps(doc))
    try:
        card = demo_profile.build(state)
    except StateError as exc:
        assert str(exc).startswith(f"{state}: ") and "\n" not in str(exc)
        return
    for ref, pin in card.pins.items():
        assert pin.remaining == doc["pins"][f"{ref:02X}"]["remaining"]
        assert type(doc["pins"][f"{ref:02X}"]["remaining"]) is int and 0 <= pin.remaining <= pin.max_tries

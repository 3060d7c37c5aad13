"""Persistent state: PIN counters and written files survive restarts; writes are atomic."""

import json
import os

import pytest

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

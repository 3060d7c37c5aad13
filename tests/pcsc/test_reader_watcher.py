"""The reader watcher (:class:`eidemu.conformance.pcsc.ReaderWatcher`) on the real stack: it
learns the vpcd readers, a card inserted and removed, and a pcscd restart, woken by pcscd."""

from __future__ import annotations

import time

import pytest
from smartcard import scard

from eidemu.cards import insert_card
from eidemu.conformance.pcsc import ReaderWatcher
from eidemu.emulator.profile import load_profile

from .conftest import READER0, READER1, reader_state, wait_for_card

pytestmark = pytest.mark.pcsc


def until(condition, timeout: float = 3.0) -> float:
    """Seconds until ``condition()`` holds; fails after ``timeout``."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "the watcher did not see it in time"
        time.sleep(0.002)
    return time.monotonic() - started


def present(states, reader: str) -> bool:
    return states is not None and bool(states.get(reader, (0, b""))[0] & scard.SCARD_STATE_PRESENT)


@pytest.fixture
def watcher(stack):
    running = ReaderWatcher()
    yield running
    running.close()


def test_the_watcher_follows_a_card_in_and_out_as_pcscd_reports_it(watcher, slots):
    until(lambda: watcher.states() is not None)
    states = watcher.states()
    assert {READER0, READER1} <= set(states)
    assert not present(states, READER0)

    card = load_profile("moica-g2-valid-1").build()
    insert_card(slots, 0, card)
    wait_for_card(READER0)  # another PC/SC client sees it: the watcher follows at once
    assert until(lambda: present(watcher.states(), READER0), timeout=0.5) < 0.5
    assert watcher.states()[READER0] == reader_state(READER0)
    assert watcher.states()[READER0][1] == card.atr

    slots.remove(0)
    wait_for_card(READER0, present=False)
    until(lambda: not present(watcher.states(), READER0), timeout=0.5)
    assert watcher.states()[READER0][0] & scard.SCARD_STATE_EMPTY


def test_close_ends_the_wait_at_once(stack):
    running = ReaderWatcher()
    until(lambda: running.states() is not None)
    started = time.monotonic()
    running.close()
    assert time.monotonic() - started < 1.0
    assert not running._thread.is_alive()
    assert running.states() is None


def test_after_a_pcscd_restart_the_watcher_has_a_view_again(watcher, stack):
    until(lambda: watcher.states() is not None)
    stack.restart()
    until(lambda: watcher.states() is not None and READER0 in watcher.states(), timeout=10.0)
    assert READER0 in watcher.states()

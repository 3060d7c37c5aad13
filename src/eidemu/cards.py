"""Card URI schemes that need the emulator: ``emulator:`` and ``served:``, and the virtual reader.

The tester (:mod:`eidemu.conformance`) never imports the card it judges; these openers join
its scheme registry as entry points of the group ``eidemu.card_schemes`` (see
``pyproject.toml``), so :func:`eidemu.conformance.connection.open_card` opens
``emulator:iso-demo`` like any other card.

- ``emulator:PROFILE[?state=FILE]``: the card built from a profile, in this process. Without
  a state file the connection is :class:`~eidemu.conformance.connection.Rebuildable`: the
  runner builds the card afresh before every test. With one, the card keeps its state in
  the file and is tested like a real card (reset between tests, destructive tests only
  with ``--allow-destructive``).
- ``served:PROFILE[?vpcd=HOST:PORT&slot=N&reader=NAME&timeout=S]``: the card built from a
  profile, inserted into pcscd's vpcd reader slot N (default 0) with the card side of
  :mod:`eidemu.emulator.transport.vpcd` (as ``eidemu serve`` does), and used through pyscard
  (:mod:`eidemu.conformance.pcsc`), so every APDU crosses the whole real stack: PC/SC client
  library, pcscd, the vpcd driver, the vpcd socket. ``vpcd`` defaults to ``$EIDEMU_VPCD``,
  else ``localhost:35963``; ``reader`` to the name pcscd gives slot N
  (:func:`eidemu.emulator.transport.pcscd.reader_name`). :meth:`ServedConnection.rebuild`
  swaps a freshly built card in behind the vpcd connection and resets it through PC/SC
  (``SCardReconnect`` with ``SCARD_RESET_CARD``, which pcscd turns into vpcd's reset): no
  removal and re-insertion, so no pcscd poll (400 ms) is waited for between tests.

:class:`VirtualReader` is the one "start a private pcscd, insert the card, wait for the
reader" sequence, used by ``eidemu demo`` and the benchmarks.
"""

from __future__ import annotations

import os
import tempfile
import threading
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from eidemu.conformance.connection import (
    CardConnectionError,
    ConnectionWrapper,
    InProcessConnection,
    parse_address,
    split_target,
)
from eidemu.emulator.faults import FaultyCard
from eidemu.emulator.formats.vpcd_wire import VPCD_PORT
from eidemu.emulator.profile import Profile, load_profile
from eidemu.emulator.transport import pcscd
from eidemu.emulator.transport.vpcd import CardSlots, PoweredCard
from eidemu.faults import FaultArming

DEFAULT_TIMEOUT = 5.0


# -- emulator: --------------------------------------------------------------------------------


class EmulatorConnection(FaultArming, InProcessConnection):
    """An emulated card built from a profile, in this process; rebuilt on request (a fresh
    card, so without the faults armed on the old one). Takes fault plans."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        card = profile.build()
        self._initial_state = _persistent_state(card)
        super().__init__(card, f"emulator:{profile.name}")

    def rebuild(self) -> bytes:
        """The card in its initial state, powered up; its ATR (:class:`Rebuildable`).

        Building a card from its profile is most of a short test's time, so a card whose
        persistent state (what a state file keeps: PIN counters and values, written files,
        data objects) is still the initial one is power-cycled and used again: power-up
        clears all volatile state (ISO/IEC 7816-3:2006 §6.2), so the card is then
        indistinguishable from a new one. A card behind the fault layer is always replaced.
        """
        self.card.power_off()
        if isinstance(self.card, FaultyCard) or _persistent_state(self.card) != self._initial_state:
            self.card = self.profile.build()
            self._initial_state = _persistent_state(self.card)
        self._atr = self.card.power_on()
        return self._atr


def _persistent_state(card: Any) -> tuple[dict[str, Any], dict[int, bytes]]:
    """What of an emulated card outlives a power cycle (see ``Card.snapshot``)."""
    return card.snapshot(), dict(card.data_objects)


def open_emulator(target: str) -> InProcessConnection:
    """Opener for ``emulator:PROFILE[?state=FILE]``."""
    name, options = split_target("emulator", target, ("state",))
    profile = load_profile(name)
    state = options.get("state") or None
    if state is None:
        return EmulatorConnection(profile)
    return StatefulEmulatorConnection(profile.build(state), f"emulator:{profile.name}?state={state}")


class StatefulEmulatorConnection(FaultArming, InProcessConnection):
    """An emulated card keeping its state in a file: tested like a real card, takes fault plans."""


# -- served: ------------------------------------------------------------------------------------


class SwappableCard:
    """A card for the vpcd transport whose real card can be replaced between tests."""

    def __init__(self, card: PoweredCard) -> None:
        self._card = card
        self._lock = threading.Lock()

    def replace(self, card: PoweredCard) -> None:
        """Put ``card`` behind the vpcd connection; the next reset powers it up."""
        with self._lock:
            self._card = card

    # -- the card interface of eidemu.emulator.transport.vpcd (PoweredCard) ---------------------

    @property
    def atr(self) -> bytes:
        return bytes(self._card.atr)

    @atr.setter
    def atr(self, value: bytes) -> None:  # PoweredCard declares a plain attribute
        self._card.atr = value

    def transmit(self, raw: bytes) -> bytes:
        with self._lock:
            return bytes(self._card.transmit(raw))

    def power_on(self) -> bytes:
        with self._lock:
            return bytes(self._card.power_on())

    def power_off(self) -> None:
        with self._lock:
            self._card.power_off()

    def reset(self) -> bytes:
        with self._lock:
            return bytes(self._card.reset())


def insert_card(
    slots: CardSlots,
    slot: int,
    card: PoweredCard,
    *,
    reader: str | None = None,
    name: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> str:
    """Insert ``card`` into vpcd slot ``slot`` and wait until pcscd shows it in ``reader``
    (default: the name pcscd gives the slot); the reader's name.

    A CardConnectionError says whether vpcd was not listening or pcscd did not show the card."""
    from eidemu.conformance.pcsc import wait_for_card

    endpoint = slots.insert(slot, card, name=name)
    if not endpoint.wait_connected(timeout):
        raise CardConnectionError(
            f"vpcd is not listening on {slots.host}:{slots.port(slot)}; start pcscd with the vpcd reader "
            "(eidemu pcscd start) and pass its EIDEMU_VPCD as ?vpcd=HOST:PORT"
        )
    reader = reader or pcscd.reader_name(slot)
    wait_for_card(reader, present=True, timeout=timeout)
    return reader


class ServedConnection(ConnectionWrapper):
    """The card connection of a ``served:`` URI: PC/SC to a card this process serves into vpcd
    (``inner``, the PC/SC connection, carries every command)."""

    def __init__(
        self, profile: str, host: str, port: int, slot: int = 0, reader: str | None = None, timeout: float = 5.0
    ) -> None:
        from eidemu.conformance.pcsc import PcscConnection

        self.profile = load_profile(profile)
        self.slot = slot
        self._card = SwappableCard(self.profile.build())
        self._slots = CardSlots(host, port, backoff=(0.01, 0.2))
        try:
            self.reader = insert_card(
                self._slots, slot, self._card, reader=reader, name=f"served-{self.profile.name}", timeout=timeout
            )
            super().__init__(PcscConnection(self.reader))
        except BaseException:
            self._slots.close()
            raise
        self.description = f"served:{self.profile.name} in pcsc:{self.reader}"

    def rebuild(self) -> bytes:
        """Swap in a card freshly built from the profile and reset it through PC/SC; the ATR."""
        self._card.replace(self.profile.build())
        return self.inner.reset()

    def close(self) -> None:
        from eidemu.conformance.pcsc import wait_for_card

        self.inner.close()
        self._slots.close()
        try:
            wait_for_card(self.reader, present=False, timeout=2.0)
        except CardConnectionError:
            pass  # pcscd gone or slow: the slot is released on our side in any case


def open_served(target: str) -> ServedConnection:
    """Opener for ``served:PROFILE[?vpcd=HOST:PORT&slot=N&reader=NAME&timeout=S]``."""
    profile, options = split_target("served", target, ("vpcd", "slot", "reader", "timeout"))
    if not profile:
        raise CardConnectionError("served: needs a profile: served:iso-demo?vpcd=localhost:35963")
    try:
        host, port = parse_address(options.get("vpcd") or os.environ.get("EIDEMU_VPCD") or f"localhost:{VPCD_PORT}")
    except ValueError as exc:
        raise CardConnectionError(f"served: vpcd option: {exc}") from None
    try:
        slot = int(options.get("slot") or 0)
        timeout = float(options.get("timeout") or DEFAULT_TIMEOUT)
    except ValueError:
        raise CardConnectionError("served: slot is a number, timeout a number of seconds") from None
    return ServedConnection(profile, host, port, slot, options.get("reader") or None, timeout)


# -- the virtual reader -------------------------------------------------------------------------


class VirtualReader:
    """A private pcscd with the vpcd reader (:mod:`eidemu.emulator.transport.pcscd`) and cards
    inserted into its slots; everything stopped on :meth:`close`.

    The PC/SC client library reads ``PCSCLITE_CSOCK_NAME`` once per process, so this must
    start before anything in the process talks to PC/SC; the variables are exported here.
    Raises :class:`~eidemu.emulator.transport.pcscd.PcscdError` when the stack cannot start.
    """

    def __init__(self, run_dir: str | os.PathLike[str] | None = None) -> None:
        self._stack = ExitStack()
        try:
            if run_dir is None:
                run_dir = self._stack.enter_context(tempfile.TemporaryDirectory(prefix="eidemu-reader-"))
            self.run_dir = Path(run_dir)
            self.instance = pcscd.start(self.run_dir)
            self._stack.callback(pcscd.stop, self.run_dir)
            os.environ.update(self.instance.environment)
            self.slots = self._stack.enter_context(CardSlots("localhost", self.instance.port, backoff=(0.01, 0.2)))
        except BaseException:
            self._stack.close()
            raise

    def insert(self, card: PoweredCard, slot: int = 0, timeout: float = 10.0) -> str:
        """Insert ``card`` and wait until pcscd shows it; the reader's name."""
        return insert_card(self.slots, slot, card, timeout=timeout)

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> VirtualReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

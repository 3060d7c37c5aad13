"""An emulated card that the harness itself serves into pcscd's vpcd reader and tests over PC/SC.

URI scheme ``served:``: ``served:PROFILE[?vpcd=HOST:PORT&slot=N&reader=NAME&timeout=S]``.
The harness builds the card from the profile, inserts it into vpcd slot N (default 0) with
the card side of :mod:`eidemu.emulator.transport.vpcd` (as ``eidemu serve`` does), waits until
pcscd shows it, and talks to it through pyscard (:mod:`eidemu.conformance.pcsc`), so every APDU
crosses the whole real stack: PC/SC client library, pcscd, the vpcd driver, the vpcd socket.

Unlike a plain ``pcsc:`` card, the harness owns this card, so it can put it back in its
initial state: :meth:`ServedConnection.rebuild` swaps a freshly built card in behind the
vpcd connection and resets it through PC/SC (``SCardReconnect`` with ``SCARD_RESET_CARD``,
which pcscd turns into vpcd's reset). No removal and re-insertion is needed, so no pcscd
poll (400 ms) is waited for between tests. The runner rebuilds such cards before every
test (:class:`eidemu.conformance.runner.CardUnderTest`), so destructive tests run without
``--allow-destructive``, as on ``emulator:`` cards.

``vpcd`` defaults to ``$EIDEMU_VPCD``, else ``localhost:35963``; ``reader`` to the name
pcscd gives slot N with the usual reader.conf (``Virtual PCD 00 0N``). The pcscd is the one
libpcsclite finds (``PCSCLITE_CSOCK_NAME`` for a private one, see ``eidemu pcscd start``).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from .connection import CardConnectionError, register_scheme, split_target

DEFAULT_TIMEOUT = 5.0


class SwappableCard:
    """A card stand-in for the vpcd transport whose real card can be replaced between tests."""

    def __init__(self, card: Any) -> None:
        self._card = card
        self._lock = threading.Lock()

    @property
    def card(self) -> Any:
        return self._card

    def replace(self, card: Any) -> None:
        """Put ``card`` behind the vpcd connection; the next reset powers it up."""
        with self._lock:
            self._card = card

    # -- the card interface of eidemu.emulator.transport.vpcd -------------------------------------

    @property
    def atr(self) -> bytes:
        return bytes(self._card.atr)

    @atr.setter
    def atr(self, value: bytes) -> None:  # the transport's protocol declares a plain attribute
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


class ServedConnection:
    """The card connection of a ``served:`` URI: PC/SC to a card this process serves into vpcd."""

    def __init__(
        self, profile: str, host: str, port: int, slot: int = 0, reader: str | None = None, timeout: float = 5.0
    ) -> None:
        from eidemu.emulator.profile import load_profile
        from eidemu.emulator.transport.vpcd import CardSlots

        from .pcsc import PcscConnection

        self.profile = load_profile(profile)
        self.slot = slot
        self.reader = reader or f"Virtual PCD 00 {slot:02X}"
        self._card = SwappableCard(self.profile.build())
        self._slots = CardSlots(host, port, backoff=(0.01, 0.2))
        endpoint = self._slots.insert(slot, self._card, name=f"served-{self.profile.name}")
        try:
            if not endpoint.wait_connected(timeout):
                raise CardConnectionError(
                    f"vpcd is not listening on {host}:{port + slot}; start pcscd with the vpcd reader "
                    "(eidemu pcscd start) and pass its EIDEMU_VPCD as ?vpcd=HOST:PORT"
                )
            self._wait_for_reader(present=True, timeout=timeout)
            self.pcsc = PcscConnection(self.reader)
        except BaseException:
            self._slots.close()
            raise
        self.description = f"served:{self.profile.name} in pcsc:{self.reader}"

    def _wait_for_reader(self, present: bool, timeout: float) -> None:
        from smartcard import scard

        from .pcsc import PcscContext

        context = PcscContext()
        try:
            deadline = time.monotonic() + timeout
            while True:
                state = context.reader_states().get(self.reader)
                wanted = scard.SCARD_STATE_PRESENT if present else scard.SCARD_STATE_EMPTY
                if state is not None and state[0] & wanted:
                    return
                if time.monotonic() > deadline:
                    readers = ", ".join(repr(r) for r in context.readers()) or "none"
                    raise CardConnectionError(
                        f"reader {self.reader!r} did not show the card {'inserted' if present else 'removed'} "
                        f"within {timeout:g} s (readers: {readers}); pass ?reader=NAME if pcscd names it otherwise"
                    )
                time.sleep(0.01)
        finally:
            context.close()

    # -- the CardConnection interface ---------------------------------------------------

    @property
    def atr(self) -> bytes:
        return self.pcsc.atr

    def transmit(self, command: bytes) -> bytes:
        return self.pcsc.transmit(command)

    def reset(self) -> bytes:
        return self.pcsc.reset()

    def power_cycle(self) -> bytes:
        return self.pcsc.reconnect("unpower")

    def rebuild(self) -> bytes:
        """Swap in a card freshly built from the profile and reset it through PC/SC; the ATR."""
        self._card.replace(self.profile.build())
        return self.pcsc.reset()

    def close(self) -> None:
        self.pcsc.close()
        self._slots.close()
        try:
            self._wait_for_reader(present=False, timeout=2.0)
        except CardConnectionError:
            pass  # pcscd gone or slow: the slot is released on our side in any case


def open_served(target: str) -> ServedConnection:
    """Opener for ``served:PROFILE[?vpcd=HOST:PORT&slot=N&reader=NAME&timeout=S]``."""
    from eidemu.emulator.formats.vpcd_wire import VPCD_PORT

    from .vpcd import parse_address

    profile, options = split_target("served", target, ("vpcd", "slot", "reader", "timeout"))
    if not profile:
        raise CardConnectionError("served: needs a profile: served:iso-demo?vpcd=localhost:35963")
    host, port = parse_address(options.get("vpcd") or os.environ.get("EIDEMU_VPCD") or f"localhost:{VPCD_PORT}")
    try:
        slot = int(options.get("slot") or 0)
        timeout = float(options.get("timeout") or DEFAULT_TIMEOUT)
    except ValueError:
        raise CardConnectionError("served: slot is a number, timeout a number of seconds") from None
    return ServedConnection(profile, host, port, slot, options.get("reader") or None, timeout)


register_scheme("served", open_served)

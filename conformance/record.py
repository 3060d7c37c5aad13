"""Record an application's session with a real card: a relay between vpcd and a PC/SC reader.

``eidemu record --reader R --out trace.jsonl`` inserts a :class:`RelayCard` into a vpcd slot
(the card side of :mod:`eidemu.emulator.transport.vpcd`, exactly as ``eidemu serve`` inserts an
emulated card). An application using the virtual reader talks to the relay; the relay
forwards every command APDU to the card in reader R and returns the card's response
unchanged, and writes both to a JSON-lines trace (:mod:`eidemu.emulator.iso7816.trace`, PIN data of
VERIFY / CHANGE REFERENCE DATA / RESET RETRY COUNTER masked). The trace is what
``eidemu conformance import --from trace`` and ``eidemu replay`` read.

Power events from vpcd map onto the real card (PC/SC part 5, ``SCardReconnect``): a reset
is a warm reset (``SCARD_RESET_CARD``), a power-on after a power-off a cold reset
(``SCARD_UNPOWER_CARD``); both are recorded as trace events, which the importer turns into
``reset`` / ``power-cycle`` steps.

The relay is a card as far as the transport is concerned (``atr``, ``transmit``,
``power_on``, ``power_off``, ``reset``); the transport never looks inside the APDUs, and
this module never touches sockets.
"""

from __future__ import annotations

import logging
import threading
import time

from eidemu.emulator.iso7816.trace import JsonLinesTracer

from .connection import CardConnection, CardConnectionError

log = logging.getLogger("eidemu.record")

TRANSMIT_FAILED = b"\x6f\x00"
"""What the application sees when the real reader fails mid-session: 'no precise diagnosis'
(ISO/IEC 7816-4:2005 §5.1.3, Table 6), as a card whose link broke would answer."""


class RelayCard:
    """A card whose answers come from another card, every exchange recorded.

    ``backend`` is any :class:`~eidemu.conformance.connection.CardConnection` (a real reader through
    pyscard in practice); ``tracer`` receives each exchange and power event.
    """

    def __init__(self, backend: CardConnection, tracer: JsonLinesTracer | None = None) -> None:
        self.backend = backend
        self.tracer = tracer
        self.atr = backend.atr  # what vpcd reports; follows the real card's ATR after each reset
        self.exchanges = 0
        self.failures = 0
        self._powered = True  # the backend connection starts with the card powered
        self._lock = threading.Lock()  # one exchange at a time, as on a real card

    # -- the card interface of eidemu.emulator.transport.vpcd ---------------------------------------

    def transmit(self, raw: bytes) -> bytes:
        with self._lock:
            if not self._powered:
                self._power_up("power-on", cold=True)
            started = time.time()
            try:
                response = self.backend.transmit(raw)
            except (CardConnectionError, OSError) as exc:
                self.failures += 1
                log.warning("relay: the real card did not answer: %s", exc)
                if self.tracer is not None:
                    self.tracer.event("error", message=str(exc))
                response = TRANSMIT_FAILED
            self.exchanges += 1
            if self.tracer is not None:
                self.tracer(raw, response, started)
            return response

    def power_on(self) -> bytes:
        with self._lock:
            if not self._powered:
                self._power_up("power-on", cold=True)
            return self.atr

    def power_off(self) -> None:
        # The real card stays connected (releasing it would let another application take
        # it); the next power-on or command power-cycles it, so no state survives.
        with self._lock:
            if self._powered and self.tracer is not None:
                self.tracer.event("power-off")
            self._powered = False

    def reset(self) -> bytes:
        with self._lock:
            self._power_up("reset", cold=not self._powered)
            return self.atr

    def _power_up(self, event: str, *, cold: bool) -> None:
        try:
            atr = self.backend.reset(cold=cold)
        except (CardConnectionError, OSError) as exc:
            self.failures += 1
            log.warning("relay: cannot %s the real card: %s", event, exc)
            if self.tracer is not None:
                self.tracer.event("error", message=str(exc))
            return
        self._powered = True
        self.atr = atr
        if self.tracer is not None:
            # The importer reads "reset" as a warm reset and "power-on" as a power cycle.
            self.tracer.event("power-on" if cold else "reset", atr=atr.hex().upper())

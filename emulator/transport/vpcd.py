"""The card side of vsmartcard's vpcd protocol: an emulated card in a virtual PC/SC reader.

vpcd is an IFD handler loaded by pcscd (package ``vsmartcard-vpcd``). It talks to a card
over TCP; every message in either direction is a 2-byte big-endian length followed by that
many bytes. Only vpcd starts an exchange:

====================  ==================================================
payload               meaning
====================  ==================================================
``00``                power off (no reply)
``01``                power on (no reply)
``02``                reset (no reply)
``04``                get ATR (reply: the ATR)
anything else         a command APDU (reply: the response APDU)
====================  ==================================================

Each vpcd reader has several slots; slot *N* uses TCP port *base + N*. In normal mode vpcd
listens and the card connects (:class:`VpcdClient`); in reverse mode (``DEVICENAME
host:port`` in reader.conf) the card listens and vpcd connects (:class:`VpcdListener`).
pcscd polls each slot for the ATR every 400 ms, so a card that goes away shows as an empty
reader within one poll.

Latency: Debian's vpcd 0.8 writes the length and the payload with two ``send`` calls. With
Nagle's algorithm on vpcd's side and delayed ACKs on ours, each exchange would stall about
40 ms; ``TCP_NODELAY`` and ``TCP_QUICKACK`` re-armed before each receive avoid that (Linux
resets QUICKACK after use, tcp(7)).

This module moves bytes and power events only; it never looks inside a command APDU.
"""

from __future__ import annotations

import errno
import logging
import select
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from ..formats.vpcd_wire import (
    CTRL_ATR,
    CTRL_POWER_OFF,
    CTRL_POWER_ON,
    CTRL_RESET,
    FRAME_TIMEOUT,
    MAX_FRAME,
    VPCD_PORT,
    FrameSocket,
    FrameTooLong,
    FramingError,
    tune_socket,
)

log = logging.getLogger("eidemu.vpcd")

CONTROL_CODES = frozenset((CTRL_POWER_OFF, CTRL_POWER_ON, CTRL_RESET, CTRL_ATR))

HELLO_TIMEOUT = 2.0
"""Reverse mode: seconds a new connection has to send its first message, which must be a
control message. vpcd sends one at once: pcscd's presence poll connects and asks for the ATR
(``04``) in the same call, every 400 ms."""

IDLE_TAKEOVER = 2.0
"""Reverse mode: a connection silent this long gives way to a new one. vpcd polls every
400 ms, so a live vpcd is never silent that long; a dead or stuck peer is."""

_TICK = 0.5
"""Seconds between checks of stop requests, deadlines and waiting connections."""


class _Displaced(Exception):
    """A new connection takes the card over from the one being served."""

    def __init__(self, sock: socket.socket, peer: str, reason: str) -> None:
        super().__init__(reason)
        self.sock, self.peer, self.reason = sock, peer, reason


class PoweredCard(Protocol):
    """What this transport needs from a card (:class:`eidemu.emulator.cardos.card.Card`)."""

    atr: bytes

    def transmit(self, raw: bytes) -> bytes: ...

    def power_on(self) -> bytes: ...

    def power_off(self) -> None: ...

    def reset(self) -> bytes: ...


class CardWithdrawn(Exception):
    """Raised by a card's ``transmit``: the card leaves the reader now, unanswered.

    The transport closes the connection (vpcd then reports an empty slot, and PC/SC
    applications get "card removed") and keeps the slot empty until ``reinsert_after``
    seconds have passed, or until :meth:`CardEndpoint.reinsert` when it is ``None``.
    Used by the fault layer (:mod:`eidemu.emulator.faults`). A ``ConnectionError``, so
    in-process callers that handle a lost card link handle this too."""

    def __init__(self, reinsert_after: float | None = None) -> None:
        back = "" if reinsert_after is None else f"; back in {reinsert_after:g} s"
        super().__init__(f"card removed from the reader{back}")
        self.reinsert_after = reinsert_after


class CardMute(Exception):
    """Raised by a card's ``transmit``: the card never answers this command.

    The transport sends nothing for ``timeout`` seconds, then gives up as a reader does
    when the block waiting time expires (ISO/IEC 7816-3 §11.4.3): the connection is
    dropped, so vpcd reports a communication error and the slot empty; the card is then
    powered down and comes back at once (the same card, volatile state lost)."""

    def __init__(self, timeout: float) -> None:
        super().__init__(f"card mute: no answer within {timeout:g} s")
        self.timeout = timeout


EventCallback = Callable[[str, str], None]


class CardEndpoint:
    """A card attached to one vpcd slot, served by a background thread.

    Subclasses decide how connections are made (connect out, or listen). Each connection
    is served until the peer goes away; the card is then powered off (volatile state
    cleared, persistent state kept) and the endpoint waits for the next connection.
    ``on_event(kind, message)`` reports ``connected``, ``disconnected``, ``waiting``,
    ``peer-error``, ``displaced``, ``refused`` and ``stopped``.

    ``hello_timeout`` (reverse mode): a connection must send a complete first message, one
    of the four control messages, within that many seconds of being accepted, or it is
    dropped; until it has, it is *unproven*.
    """

    kind = "endpoint"

    def __init__(
        self,
        card: PoweredCard,
        *,
        name: str = "card",
        on_event: EventCallback | None = None,
        max_frame: int = MAX_FRAME,
        frame_timeout: float = FRAME_TIMEOUT,
        hello_timeout: float | None = None,
    ) -> None:
        self.card = card
        self.hello_timeout = hello_timeout
        self.name = name
        self.on_event = on_event
        self.max_frame = max_frame
        self.frame_timeout = frame_timeout
        self.status = "starting"
        self.connections = 0
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._lock = threading.Lock()
        self._active: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._present = threading.Event()  # cleared while a CardWithdrawn holds the slot empty
        self._present.set()
        self._reinsert_timer: threading.Timer | None = None

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> CardEndpoint:
        self._thread = threading.Thread(target=self._run_guarded, name=f"vpcd-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 3.0) -> None:
        """Remove the card: close the connection (vpcd sees an empty slot) and end the thread."""
        self._stop.set()
        self.reinsert()
        self._interrupt()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    # -- signals from the card (CardWithdrawn, CardMute) ------------------------------

    @property
    def withdrawn(self) -> bool:
        return not self._present.is_set()

    def reinsert(self) -> None:
        """End a CardWithdrawn absence now: the card comes back at the next attempt."""
        with self._lock:
            timer, self._reinsert_timer = self._reinsert_timer, None
        if timer is not None:
            timer.cancel()
        self._present.set()

    def _withdraw(self, reinsert_after: float | None) -> None:
        self._present.clear()
        if reinsert_after is not None:
            timer = threading.Timer(reinsert_after, self.reinsert)
            timer.daemon = True
            with self._lock:
                self._reinsert_timer = timer
            timer.start()

    def _wait_present(self) -> None:
        while not self._stop.is_set() and not self._present.wait(0.05):
            pass

    def _interrupt(self) -> None:
        with self._lock:
            active = self._active
        if active is not None:
            _shutdown(active)

    def _event(self, kind: str, message: str) -> None:
        log.info("%s: %s", self.name, message)
        if self.on_event is not None:
            try:
                self.on_event(kind, message)
            except Exception:
                log.exception("event callback failed")

    def _run_guarded(self) -> None:
        try:
            self._run()
        except Exception:  # a transport bug must not go unnoticed, nor hang callers
            log.exception("%s: transport thread failed", self.name)
        finally:
            self.status = "stopped"
            self._connected.clear()
            self._power_off()
            self._event("stopped", "card removed")

    def _run(self) -> None:
        raise NotImplementedError

    # -- one connection -------------------------------------------------------------

    def serve_connection(self, sock: socket.socket, peer: str) -> tuple[socket.socket, str] | None:
        """Serve one vpcd connection until it ends; never raises for peer misbehaviour.

        Returns the connection that displaced this one (reverse mode), to be served next."""
        tune_socket(sock, min(self.frame_timeout, _TICK))
        framed = FrameSocket(sock, max_frame=self.max_frame, frame_timeout=self.frame_timeout)
        with self._lock:
            self._active = sock
        self.connections += 1
        self.status = "connected"
        self._connected.set()
        self._event("connected", f"connected to vpcd at {peer}")
        reason = "vpcd closed the connection"
        kind = "disconnected"
        successor: tuple[socket.socket, str] | None = None
        try:
            if self._stop.is_set():
                return None
            self._exchange_loop(framed)
        except FramingError as exc:
            kind, reason = "peer-error", f"dropped the connection: {exc}"
        except CardWithdrawn as gone:
            self._withdraw(gone.reinsert_after)
            back = "" if gone.reinsert_after is None else f", back in {gone.reinsert_after:g} s"
            kind, reason = "withdrawn", f"card withdrawn by a fault{back}"
        except CardMute as mute:
            self._stop.wait(mute.timeout)
            kind, reason = "mute", f"card mute for {mute.timeout:g} s; the reader gave up"
        except _Displaced as displaced:
            kind, reason = "displaced", f"{displaced.reason}; new connection from {displaced.peer}"
            successor = displaced.sock, displaced.peer
        except OSError as exc:
            reason = f"connection lost: {exc.strerror or exc}"
        finally:
            with self._lock:
                self._active = None
            self._connected.clear()
            sock.close()
            self._power_off()
            if self._stop.is_set():
                reason = "card removed"
                if successor is not None:
                    successor[0].close()
                    successor = None
            self.status = "withdrawn" if self.withdrawn else "disconnected"
            self._event(kind, reason)
        return successor

    def _exchange_loop(self, framed: FrameSocket) -> None:
        card = self.card
        accepted = time.monotonic()
        hello_deadline = None if self.hello_timeout is None else accepted + self.hello_timeout
        last_message = accepted
        while not self._stop.is_set():
            message: bytes | None
            if not framed.buffered and not self._wait_for_message(framed.sock, hello_deadline is None, last_message):
                message = b""
            elif hello_deadline is None:
                message = framed.read_frame()
            else:
                try:  # a control message is one byte: a longer first frame is not from vpcd
                    message = framed.read_frame(hello_deadline, max_length=1)
                except FrameTooLong:
                    raise FramingError("the first message is not a vpcd control message") from None
            if message is None:
                return
            if not message:
                if hello_deadline is not None and time.monotonic() >= hello_deadline:
                    raise FramingError(f"no vpcd control message within {self.hello_timeout:g} s")
                continue
            last_message = time.monotonic()
            is_control = len(message) == 1 and message[0] in CONTROL_CODES
            if hello_deadline is not None:
                if not is_control:
                    raise FramingError("the first message is not a vpcd control message")
                hello_deadline = None  # proven: this peer speaks vpcd
            if is_control:
                code = message[0]
                if code == CTRL_ATR:
                    framed.write_frame(card.atr)
                elif code == CTRL_POWER_ON:
                    card.power_on()
                elif code == CTRL_POWER_OFF:
                    card.power_off()
                else:
                    card.reset()
                continue
            response = card.transmit(message)
            if len(response) > MAX_FRAME:
                # The framing cannot carry it; answer as a card whose buffer overflowed.
                log.warning("%s: response of %d bytes does not fit a vpcd frame", self.name, len(response))
                response = b"\x6f\x00"
            framed.write_frame(response)

    def _wait_for_message(self, sock: socket.socket, proven: bool, last_message: float) -> bool:
        """Before each read of a new frame: False when nothing arrived within one tick.

        The base class lets the read itself wait (the socket's receive timeout)."""
        return True

    def _power_off(self) -> None:
        try:
            self.card.power_off()
        except Exception:
            log.exception("%s: power off failed", self.name)


class VpcdClient(CardEndpoint):
    """Normal mode: the card connects to vpcd and reconnects with backoff when it goes away.

    ``wait_first`` false makes the first failed attempt final (the CLI reports it and
    exits); afterwards the card keeps trying, so it survives pcscd restarts.
    """

    kind = "vpcd"

    def __init__(
        self,
        card: PoweredCard,
        host: str = "localhost",
        port: int = VPCD_PORT,
        *,
        backoff: tuple[float, float] = (0.02, 1.0),
        connected: socket.socket | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(card, **kwargs)
        self.host = host
        self.port = port
        self.backoff = backoff
        self.last_error: str | None = None
        # A socket from connect_once made before the card was built: vpcd's next poll
        # then finds the card while its profile still loads (see eidemu serve).
        self._preconnected = connected

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def connect_once(self, timeout: float = 2.0) -> socket.socket:
        """One connection attempt; OSError when vpcd is not listening."""
        return connect_to_vpcd(self.host, self.port, timeout)

    def _run(self) -> None:
        delay = self.backoff[0]
        reported = False
        while not self._stop.is_set():
            self._wait_present()
            try:
                sock, self._preconnected = self._preconnected or self.connect_once(), None
            except OSError as exc:
                self.last_error = exc.strerror or str(exc)
                self.status = "waiting for vpcd"
                if not reported:
                    self._event("waiting", f"vpcd at {self.address} not reachable ({self.last_error}); retrying")
                    reported = True
                self._stop.wait(delay)
                delay = min(delay * 2, self.backoff[1])
                continue
            delay, reported = self.backoff[0], False
            self.serve_connection(sock, self.address)
            # vpcd closed on us: pcscd stopping, or a card already in this slot. Do not spin.
            self._stop.wait(self.backoff[0])


def connect_to_vpcd(host: str, port: int, timeout: float = 2.0) -> socket.socket:
    """Connect to vpcd's slot port; OSError (ConnectionRefusedError) when nothing listens."""
    sock = socket.create_connection((host, port), timeout=timeout)
    # Connecting to a local port with no listener can, rarely, connect the socket to
    # itself (TCP simultaneous open, when the ephemeral port equals the target port).
    if sock.getsockname() == sock.getpeername():
        sock.close()
        raise ConnectionRefusedError(errno.ECONNREFUSED, "self-connected; vpcd not listening")
    sock.settimeout(None)
    return sock


class VpcdListener(CardEndpoint):
    """Reverse mode: the card listens (loopback by default) and vpcd connects to it.

    One connection holds the card at a time, and only a peer that speaks vpcd can keep it:

    - a new connection must send a control message (vpcd's first is the ATR request of
      pcscd's presence poll) within ``hello_timeout`` seconds, else it is dropped;
    - a connection that arrives while the card is held *displaces* the holder if the holder
      has not proven itself yet or has been silent for ``idle_takeover`` seconds (a live vpcd
      polls every 400 ms); otherwise it is closed at once, so a second vpcd sees an empty
      slot instead of hanging on a connection nobody reads.

    The listening socket is bound in the constructor, so ``port=0`` picks a free port that
    :attr:`port` then tells.
    """

    kind = "listen"

    def __init__(
        self,
        card: PoweredCard,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        hello_timeout: float = HELLO_TIMEOUT,
        idle_takeover: float = IDLE_TAKEOVER,
        **kwargs: Any,
    ) -> None:
        super().__init__(card, hello_timeout=hello_timeout, **kwargs)
        self.idle_takeover = idle_takeover
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._server = socket.socket(family, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._server.bind((host, port))
            self._server.listen(8)
            self._server.setblocking(False)  # accept only after select says a connection waits
        except OSError:
            self._server.close()
            raise
        self.host = host
        self.port = self._server.getsockname()[1]
        self.status = "listening"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _interrupt(self) -> None:
        if self._stop.is_set():
            _shutdown(self._server)  # wakes select() on Linux
        super()._interrupt()

    def _accept(self) -> tuple[socket.socket, str] | None:
        try:
            sock, peer = self._server.accept()
        except OSError:  # gone before we took it, or the listener was shut down
            return None
        sock.setblocking(True)
        return sock, f"{peer[0]}:{peer[1]}"

    def _run(self) -> None:
        self._event("waiting", f"listening for vpcd on {self.address}")
        try:
            while not self._stop.is_set():
                readable, _, _ = select.select([self._server], [], [], _TICK)
                accepted = self._accept() if readable and not self._stop.is_set() else None
                while accepted is not None and not self._stop.is_set():
                    accepted = self.serve_connection(*accepted)
                self._wait_present()  # a card withdrawn by a fault is back first
                if not self._stop.is_set():
                    self.status = "listening"
        finally:
            self._server.close()

    def _wait_for_message(self, sock: socket.socket, proven: bool, last_message: float) -> bool:
        """Wait one tick for the holder's next message while watching for new connections."""
        readable, _, _ = select.select([sock, self._server], [], [], _TICK)
        if sock in readable:  # the holder first: it may be closing, making room for the newcomer
            return True
        if self._server in readable and not self._stop.is_set():
            newcomer = self._accept()
            if newcomer is not None:
                idle = time.monotonic() - last_message
                if not proven:
                    raise _Displaced(*newcomer, "the connection had sent no vpcd message yet")
                if idle >= self.idle_takeover:
                    raise _Displaced(*newcomer, f"the connection was silent for {idle:.1f} s")
                newcomer[0].close()
                self._event("refused", f"refused a second connection from {newcomer[1]}: the card is in use")
        return False


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class CardSlots:
    """Several cards served from one process, one per slot of a vpcd reader.

    Slot *N* is TCP port *base_port + N*, as vpcd assigns them. In normal mode each card
    connects to vpcd at ``host``; with ``listen=True`` each card listens there (reverse
    mode). Cards can be inserted and removed while the others keep running.
    """

    def __init__(
        self,
        host: str = "localhost",
        base_port: int = VPCD_PORT,
        *,
        listen: bool = False,
        on_event: Callable[[int, str, str], None] | None = None,
        **endpoint_options: Any,
    ) -> None:
        self.host = host
        self.base_port = base_port
        self.listen = listen
        self.on_event = on_event
        self.endpoint_options = endpoint_options
        self.endpoints: dict[int, CardEndpoint] = {}
        self._lock = threading.Lock()

    def port(self, slot: int) -> int:
        return 0 if self.listen and self.base_port == 0 else self.base_port + slot

    def insert(
        self, slot: int, card: PoweredCard, name: str | None = None, connected: socket.socket | None = None
    ) -> CardEndpoint:
        """Put a card in a slot (its endpoint starts connecting or listening at once).

        ``connected``: in normal mode, a socket already connected to this slot's port."""
        with self._lock:
            if slot in self.endpoints and not self.endpoints[slot].stopped:
                raise ValueError(f"slot {slot} already holds a card; remove it first")

            def report(kind: str, message: str) -> None:
                if self.on_event is not None:
                    self.on_event(slot, kind, message)

            options = {"name": name or f"slot{slot}", "on_event": report, **self.endpoint_options}
            endpoint: CardEndpoint
            if self.listen:
                endpoint = VpcdListener(card, self.host, self.port(slot), **options)
            else:
                endpoint = VpcdClient(card, self.host, self.port(slot), connected=connected, **options)
            self.endpoints[slot] = endpoint
        return endpoint.start()

    def reinsert(self, slot: int) -> None:
        """Bring back a card a fault withdrew (see :class:`CardWithdrawn`)."""
        endpoint = self.endpoints.get(slot)
        if endpoint is None:
            raise ValueError(f"slot {slot} is empty")
        endpoint.reinsert()

    def remove(self, slot: int) -> PoweredCard:
        """Take the card out: vpcd sees an empty slot at its next poll (within 0.4 s)."""
        with self._lock:
            endpoint = self.endpoints.pop(slot, None)
        if endpoint is None:
            raise ValueError(f"slot {slot} is empty")
        endpoint.stop()
        return endpoint.card

    def close(self) -> None:
        for slot in list(self.endpoints):
            self.remove(slot)

    def __enter__(self) -> CardSlots:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

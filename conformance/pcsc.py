"""A card in a PC/SC reader, through pyscard (PC/SC Workgroup specification part 5).

URI scheme ``pcsc:``: ``pcsc:READER[?share=shared|exclusive&protocol=T0|T1|any]`` where
READER is a reader's exact name, a prefix of one, or its index in the reader list; empty
means the first reader. It works the same for a physical reader and for pcscd's virtual
vpcd reader holding an emulated card; a private pcscd is found through
``PCSCLITE_CSOCK_NAME`` (see :mod:`eidemu.emulator.transport.pcscd`).

pyscard's low-level ``smartcard.scard`` module is used directly: it is the thinnest layer
over libpcsclite, so the round trip measured here is that of pcscd, not of Python wrappers.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from smartcard import scard

from .connection import CardConnectionError, split_target

SHARE_MODES = {"shared": scard.SCARD_SHARE_SHARED, "exclusive": scard.SCARD_SHARE_EXCLUSIVE}
PROTOCOLS = {
    "any": scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
    "t0": scard.SCARD_PROTOCOL_T0,
    "t1": scard.SCARD_PROTOCOL_T1,
}
DISPOSITIONS = {
    "leave": scard.SCARD_LEAVE_CARD,
    "reset": scard.SCARD_RESET_CARD,
    "unpower": scard.SCARD_UNPOWER_CARD,
}


def _check(hresult: int, what: str) -> None:
    if hresult != scard.SCARD_S_SUCCESS:
        message = scard.SCardGetErrorMessage(hresult).strip()
        raise CardConnectionError(f"{what}: {message} ({hresult & 0xFFFFFFFF:#010x})")


class PcscContext:
    """An SCard context (``SCardEstablishContext``), released on close."""

    def __init__(self) -> None:
        hresult, self.handle = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if hresult != scard.SCARD_S_SUCCESS:
            message = scard.SCardGetErrorMessage(hresult).strip()
            raise CardConnectionError(
                f"cannot reach pcscd: {message}; start it (eidemu pcscd start, or the system's pcscd) "
                "and check PCSCLITE_CSOCK_NAME"
            )

    def readers(self) -> list[str]:
        hresult, names = scard.SCardListReaders(self.handle, [])
        if hresult == scard.SCARD_E_NO_READERS_AVAILABLE:
            return []
        _check(hresult, "listing readers")
        return list(names)

    def reader_states(self) -> dict[str, tuple[int, bytes]]:
        """Reader name -> (event state bits, ATR) without waiting (``SCardGetStatusChange``)."""
        names = self.readers()
        if not names:
            return {}
        hresult, states = scard.SCardGetStatusChange(self.handle, 0, [(n, scard.SCARD_STATE_UNAWARE) for n in names])
        if hresult not in (scard.SCARD_S_SUCCESS, scard.SCARD_E_TIMEOUT):
            _check(hresult, "reading reader states")
        return {name: (state, bytes(atr)) for name, state, atr in states}

    def close(self) -> None:
        if self.handle is not None:
            scard.SCardReleaseContext(self.handle)
            self.handle = None


PNP_NOTIFICATION = "\\\\?PnP?\\Notification"
"""pcsc-lite's pseudo-reader whose state changes when a reader is added or removed; the high
16 bits of the state a caller passes are the number of readers it knows."""

ReaderStates = dict[str, tuple[int, bytes]]


class ReaderWatcher:
    """pcscd's readers and their states, kept current by a thread that waits in
    ``SCardGetStatusChange`` on every reader and on :data:`PNP_NOTIFICATION` (PC/SC part 5
    §3.1.4), so a caller learns them without a round trip to pcscd.

    :meth:`states` answers from memory: what pcscd last reported, which lags an event by the
    time the thread needs to wake (well under a millisecond on an idle machine). It answers
    ``None`` while the watcher has no current view (pcscd not reachable yet, or restarted);
    callers then ask pcscd themselves. :meth:`close` ends the wait with ``SCardCancel``.
    """

    RETRY_SECONDS = 0.2

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: ReaderStates | None = None
        self._context: PcscContext | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="eidemu-pcsc-watch", daemon=True)
        self._thread.start()

    def states(self) -> ReaderStates | None:
        with self._lock:
            return None if self._states is None else dict(self._states)

    def close(self) -> None:
        self._stopping.set()
        with self._lock:
            if self._context is not None and self._context.handle is not None:
                scard.SCardCancel(self._context.handle)
        self._thread.join(2)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                context = PcscContext()
            except CardConnectionError:
                self._stopping.wait(self.RETRY_SECONDS)
                continue
            with self._lock:
                self._context = context
            try:
                self._follow(context)
            except CardConnectionError:
                self._stopping.wait(self.RETRY_SECONDS)  # pcscd gone: a new context
            finally:
                with self._lock:
                    self._states, self._context = None, None
                context.close()

    def _follow(self, context: PcscContext) -> None:
        """Publish the states, then wait for the next change; a reader added or removed lists
        the readers again."""
        known: dict[str, int] | None = None  # the states last published, by reader
        while not self._stopping.is_set():
            names = context.readers()
            if known is None or set(known) != set(names):  # new readers: publish at once
                known, timeout = dict.fromkeys(names, scard.SCARD_STATE_UNAWARE), 0
            else:
                timeout = scard.INFINITE
            query = [(n, known[n]) for n in names]
            query.append((PNP_NOTIFICATION, len(names) << 16))
            hresult, found = scard.SCardGetStatusChange(context.handle, timeout, query)
            if hresult == scard.SCARD_E_CANCELLED:
                return
            if hresult == scard.SCARD_E_UNKNOWN_READER:
                known = None
                continue  # a reader left between the listing and the wait
            if hresult not in (scard.SCARD_S_SUCCESS, scard.SCARD_E_TIMEOUT):
                _check(hresult, "watching the readers")
            states = {name: (state, bytes(atr)) for name, state, atr in found if name != PNP_NOTIFICATION}
            with self._lock:
                self._states = states
            known = {name: state & ~scard.SCARD_STATE_CHANGED for name, (state, _atr) in states.items()}


def resolve_reader(spec: str | int, readers: list[str]) -> str:
    """The reader named by an exact name, a unique-enough prefix (first match) or an index."""
    if not readers:
        raise CardConnectionError("no PC/SC readers present")
    listing = ", ".join(repr(r) for r in readers)
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
        index = int(spec)
        if index >= len(readers):
            raise CardConnectionError(f"no reader with index {index}; readers present: {listing}")
        return readers[index]
    if spec == "":
        return readers[0]
    if spec in readers:
        return spec
    matches = [r for r in readers if r.startswith(spec)]
    if not matches:
        raise CardConnectionError(f"no reader named {spec!r}; readers present: {listing}")
    return matches[0]


class PcscConnection:
    """A card connection through PC/SC (``SCardConnect``/``SCardTransmit``/``SCardReconnect``)."""

    def __init__(self, reader: str | int = "", *, share: str = "shared", protocol: str = "any") -> None:
        if share not in SHARE_MODES:
            raise CardConnectionError(f"share mode must be one of {', '.join(SHARE_MODES)}, not {share!r}")
        key = protocol.lower().replace("=", "")
        if key not in PROTOCOLS:
            raise CardConnectionError(f"protocol must be T0, T1 or any, not {protocol!r}")
        self.share = SHARE_MODES[share]
        self.preferred = PROTOCOLS[key]
        self.context = PcscContext()
        try:
            readers = self.context.readers()
            self.reader = resolve_reader(reader, readers)
            hresult, self.card, self.protocol = scard.SCardConnect(
                self.context.handle, self.reader, self.share, self.preferred
            )
            if hresult == scard.SCARD_E_NO_SMARTCARD or hresult == scard.SCARD_W_REMOVED_CARD:
                raise CardConnectionError(
                    f"no card in reader {self.reader!r}; readers present: {', '.join(repr(r) for r in readers)}"
                )
            _check(hresult, f"connecting to the card in {self.reader!r}")
        except BaseException:
            self.context.close()
            raise
        self.description = f"pcsc:{self.reader}"
        self._pci = scard.SCARD_PCI_T0 if self.protocol == scard.SCARD_PROTOCOL_T0 else scard.SCARD_PCI_T1
        self._atr = self._status_atr()

    @property
    def protocol_name(self) -> str:
        return "T=0" if self.protocol == scard.SCARD_PROTOCOL_T0 else "T=1"

    def _status_atr(self) -> bytes:
        hresult, _reader, _state, _protocol, atr = scard.SCardStatus(self.card)
        _check(hresult, f"reading the ATR in {self.reader!r}")
        return bytes(atr)

    # -- the CardConnection interface ---------------------------------------------------

    @property
    def atr(self) -> bytes:
        return self._atr

    def transmit(self, command: bytes) -> bytes:
        hresult, response = scard.SCardTransmit(self.card, self._pci, list(command))
        _check(hresult, f"transmitting to {self.reader!r}")
        if len(response) < 2:
            # No status word: the reader lost the card mid-command (pcscd answers "success"
            # with no bytes when a vpcd card goes away); not a response a caller can judge.
            raise CardConnectionError(f"transmitting to {self.reader!r}: the card returned no valid response")
        return bytes(response)

    def reset(self, cold: bool = False) -> bytes:
        """Warm reset (``SCardReconnect`` with ``SCARD_RESET_CARD``) or, ``cold``, a power cycle
        (``SCARD_UNPOWER_CARD``: pcscd powers the card down and up again); returns the ATR."""
        return self.reconnect("unpower" if cold else "reset")

    def reconnect(self, disposition: str = "reset") -> bytes:
        """``SCardReconnect`` with ``leave``, ``reset`` or ``unpower`` (cold reset); the ATR."""
        hresult, self.protocol = scard.SCardReconnect(self.card, self.share, self.preferred, DISPOSITIONS[disposition])
        _check(hresult, f"reconnecting to {self.reader!r}")
        self._atr = self._status_atr()
        return self._atr

    def close(self, disposition: str = "leave") -> None:
        if self.context.handle is None:
            return
        scard.SCardDisconnect(self.card, DISPOSITIONS[disposition])
        self.context.close()

    def __enter__(self) -> PcscConnection:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def list_readers() -> list[str]:
    """The readers pcscd offers now."""
    context = PcscContext()
    try:
        return context.readers()
    finally:
        context.close()


def wait_for_card(reader: str, *, present: bool = True, timeout: float = 5.0) -> float:
    """Wait until ``reader`` shows a card (or, not ``present``, shows none); the seconds waited.

    pcscd polls a vpcd reader every 400 ms, so a card inserted into vpcd appears in PC/SC
    up to that much later. A CardConnectionError names the reader and the readers present
    when the time is up."""
    wanted = scard.SCARD_STATE_PRESENT if present else scard.SCARD_STATE_EMPTY
    started = time.monotonic()
    context = PcscContext()
    try:
        while True:
            state = context.reader_states().get(reader)
            if state is not None and state[0] & wanted:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                readers = ", ".join(repr(r) for r in context.readers()) or "none"
                raise CardConnectionError(
                    f"reader {reader!r} did not show the card {'inserted' if present else 'removed'} "
                    f"within {timeout:g} s (readers: {readers})"
                )
            time.sleep(0.005)
    finally:
        context.close()


def open_pcsc(target: str) -> PcscConnection:
    """Opener for ``pcsc:READER[?share=...&protocol=...]``."""
    reader, options = split_target("pcsc", target, ("share", "protocol"))
    return PcscConnection(reader, share=options.get("share", "shared"), protocol=options.get("protocol", "any"))

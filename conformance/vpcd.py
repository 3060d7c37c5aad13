"""A card over vsmartcard's vpcd protocol, without pcscd: this side plays vpcd.

Two ways to meet the card (URI scheme ``vpcd:``):

- ``vpcd:HOST:PORT`` connects to a card that listens (``eidemu serve --listen HOST:PORT``,
  vpcd's reverse mode);
- ``vpcd:HOST:PORT?listen`` listens, as vpcd does in normal mode, and waits for the card to
  connect (``eidemu serve --vpcd HOST:PORT``); ``&timeout=SECONDS`` bounds the wait
  (default 10).

The framing (2-byte big-endian length, control bytes ``00`` power off, ``01`` power on,
``02`` reset, ``04`` ATR) is described in :mod:`eidemu.emulator.transport.vpcd`, which this module
shares.
"""

from __future__ import annotations

import socket

from eidemu.emulator.formats.vpcd_wire import (
    CTRL_ATR,
    CTRL_POWER_OFF,
    CTRL_POWER_ON,
    CTRL_RESET,
    FrameSocket,
    FramingError,
    tune_socket,
)

from .connection import CardConnectionError, parse_address, split_target

DEFAULT_TIMEOUT = 10.0


class VpcdConnection:
    """A card connection that speaks vpcd's side of the protocol over one TCP socket."""

    def __init__(self, sock: socket.socket, description: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.description = description
        self._timeout = timeout
        tune_socket(sock, timeout)
        self._framed = FrameSocket(sock, frame_timeout=timeout)
        self._atr = b""
        try:
            self._send(bytes((CTRL_POWER_ON,)))
            self._atr = self._request(bytes((CTRL_ATR,)))
        except CardConnectionError:
            sock.close()
            raise

    @classmethod
    def connect(cls, host: str, port: int, *, timeout: float = DEFAULT_TIMEOUT) -> VpcdConnection:
        """Connect to a card listening in reverse mode."""
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise CardConnectionError(
                f"no card listening on {host}:{port} ({exc.strerror or exc}); start one with "
                f"'eidemu serve --listen {host}:{port} --profile ...'"
            ) from None
        sock.settimeout(None)
        return cls(sock, f"vpcd:{host}:{port}", timeout=timeout)

    @classmethod
    def listen(cls, host: str, port: int, *, timeout: float = DEFAULT_TIMEOUT) -> VpcdConnection:
        """Listen like vpcd and take the first card that connects."""
        server = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind((host, port))
            server.listen(1)
            server.settimeout(timeout)
            try:
                sock, _ = server.accept()
            except TimeoutError:
                raise CardConnectionError(
                    f"no card connected to {host}:{port} within {timeout:g} s; start one with "
                    f"'eidemu serve --vpcd {host}:{port} --profile ...'"
                ) from None
        except OSError as exc:
            raise CardConnectionError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        finally:
            server.close()
        sock.settimeout(None)
        return cls(sock, f"vpcd:{host}:{port}?listen", timeout=timeout)

    # -- the CardConnection interface ---------------------------------------------------

    @property
    def atr(self) -> bytes:
        return self._atr

    def transmit(self, command: bytes) -> bytes:
        if len(command) < 4:
            # A 1-byte payload would be read as a control message by the card.
            raise CardConnectionError(f"a command APDU has at least 4 bytes, not {len(command)}")
        return self._request(command)

    def reset(self, cold: bool = False) -> bytes:
        """Warm reset (control ``02``) or, ``cold``, power off and on (controls ``00``, ``01``);
        then the ATR again (control ``04``)."""
        if cold:
            self._send(bytes((CTRL_POWER_OFF,)))
            self._send(bytes((CTRL_POWER_ON,)))
        else:
            self._send(bytes((CTRL_RESET,)))
        self._atr = self._request(bytes((CTRL_ATR,)))
        return self._atr

    def close(self) -> None:
        sock = self._framed.sock
        if sock.fileno() < 0:
            return
        try:
            self._framed.write_frame(bytes((CTRL_POWER_OFF,)))
        except OSError:
            pass
        sock.close()

    def __enter__(self) -> VpcdConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- framing ------------------------------------------------------------------------

    def _send(self, payload: bytes) -> None:
        try:
            self._framed.write_frame(payload)
        except OSError as exc:
            raise CardConnectionError(f"{self.description}: card connection lost ({exc.strerror or exc})") from None

    def _request(self, payload: bytes) -> bytes:
        self._send(payload)
        try:
            while True:
                reply = self._framed.read_frame()
                if reply is None:
                    raise CardConnectionError(f"{self.description}: the card closed the connection")
                if reply:
                    return reply
                # b"": the receive timeout passed with nothing at all
                raise CardConnectionError(f"{self.description}: no answer within {self._timeout:g} s")
        except FramingError as exc:
            raise CardConnectionError(f"{self.description}: {exc}") from None
        except OSError as exc:
            raise CardConnectionError(f"{self.description}: card connection lost ({exc.strerror or exc})") from None


def open_vpcd(target: str) -> VpcdConnection:
    """Opener for ``vpcd:HOST:PORT`` and ``vpcd:HOST:PORT?listen[&timeout=S]``."""
    address, options = split_target("vpcd", target, ("listen", "timeout"))
    try:
        timeout = float(options.get("timeout") or DEFAULT_TIMEOUT)
    except ValueError:
        raise CardConnectionError(f"vpcd: timeout must be a number of seconds, not {options['timeout']!r}") from None
    try:
        host, port = parse_address(address, "vpcd:")
    except ValueError as exc:
        raise CardConnectionError(str(exc)) from None
    if "listen" in options:
        return VpcdConnection.listen(host, port, timeout=timeout)
    return VpcdConnection.connect(host, port, timeout=timeout)

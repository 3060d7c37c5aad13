"""vsmartcard's vpcd wire format: 2-byte big-endian length-prefixed messages, control bytes.

Shared by the card side (:mod:`eidemu.emulator.transport.vpcd`) and the tester's ``vpcd:``
connection, which plays vpcd's part. Message meanings are listed in the transport module.
"""

from __future__ import annotations

import socket
import struct
import time

VPCD_PORT = 35963
"""vpcd's default port for slot 0 (``CHANNELID 0x8C7B`` in Debian's reader.conf)."""

CTRL_POWER_OFF = 0x00
CTRL_POWER_ON = 0x01
CTRL_RESET = 0x02
CTRL_ATR = 0x04

MAX_FRAME = 0xFFFF
"""The longest payload a 2-byte length can announce."""

FRAME_TIMEOUT = 5.0
"""Seconds a whole frame may take to arrive once its first byte has: a stalled or trickling
peer is dropped."""

_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


class FramingError(Exception):
    """The peer broke the vpcd framing (length 0, oversized, truncated or stalled frame)."""


class FrameTooLong(FramingError):
    """A frame announced more bytes than the reader accepts."""


def tune_socket(sock: socket.socket, receive_timeout: float | None = FRAME_TIMEOUT) -> None:
    """Low-latency options for a vpcd connection: no Nagle, quick ACKs, a receive timeout.

    The timeout is SO_RCVTIMEO on a blocking socket (no ``poll`` per receive, unlike
    ``settimeout``); :class:`FrameSocket` treats it as idle between frames and as a stalled
    peer inside one.
    """
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if _QUICKACK is not None:
        sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
    if receive_timeout is not None:
        seconds = int(receive_timeout)
        micros = int((receive_timeout - seconds) * 1_000_000)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", seconds, micros))


class FrameSocket:
    """Length-prefixed messages over a connected stream socket (the vpcd framing).

    Reads loop until the announced length has arrived: a large APDU may come in several
    TCP segments, and vpcd sends its length and payload separately.
    """

    def __init__(self, sock: socket.socket, *, max_frame: int = MAX_FRAME, frame_timeout: float = FRAME_TIMEOUT):
        self.sock = sock
        self.max_frame = max_frame
        self.frame_timeout = frame_timeout
        self._buf = bytearray()
        self._quickack = _QUICKACK is not None and sock.family in (socket.AF_INET, socket.AF_INET6)

    def _receive(self) -> bytes:
        if self._quickack:
            self.sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)  # type: ignore[arg-type]
        return self.sock.recv(MAX_FRAME + 2)

    @property
    def buffered(self) -> int:
        """Bytes of an unfinished frame already received (read without waiting on the socket)."""
        return len(self._buf)

    def read_frame(self, deadline: float | None = None, max_length: int | None = None) -> bytes | None:
        """The next payload; ``None`` when the peer closed between frames; ``b""`` when
        nothing arrived within the socket's receive timeout (a real payload is never empty:
        a length of 0 is a framing error). Raises FramingError.

        A frame must be complete within :attr:`frame_timeout` of its first byte, however the
        bytes trickle in (a peer sending one byte every 0.45 s is dropped like a silent one).
        ``deadline`` (a :func:`time.monotonic` value) can end that time earlier, and
        ``max_length`` lower the size limit for this frame (FrameTooLong). The check runs
        whenever a chunk arrives and whenever the receive timeout passes, so a silent peer is
        noticed within one receive timeout after the deadline."""
        buf = self._buf
        # Bytes left over from the previous call belong to a frame that started then.
        started = time.monotonic() if buf else None
        limit_bytes = self.max_frame if max_length is None else min(max_length, self.max_frame)
        while True:
            if len(buf) >= 2:
                length = (buf[0] << 8) | buf[1]
                if length == 0:
                    raise FramingError("frame of length 0")
                if length > limit_bytes:
                    raise FrameTooLong(f"frame of {length} bytes exceeds the limit of {limit_bytes}")
                if len(buf) >= 2 + length:
                    payload = bytes(buf[2 : 2 + length])
                    del buf[: 2 + length]
                    return payload
            if started is not None:
                limit = started + self.frame_timeout
                if deadline is not None:
                    limit = min(limit, deadline)
                if time.monotonic() >= limit:
                    expected = f" of {2 + ((buf[0] << 8) | buf[1])}" if len(buf) >= 2 else ""
                    raise FramingError(f"frame incomplete at its deadline: {len(buf)}{expected} bytes received")
            try:
                chunk = self._receive()
            except (BlockingIOError, TimeoutError):
                if not buf:
                    return b""
                continue
            except ConnectionResetError:
                if buf:
                    raise FramingError(f"connection reset after {len(buf)} bytes of a frame") from None
                return None
            if not chunk:
                if buf:
                    raise FramingError(f"connection closed after {len(buf)} bytes of a frame")
                return None
            if started is None:
                started = time.monotonic()
            buf += chunk

    def write_frame(self, payload: bytes) -> None:
        """Send one message: length and payload in a single ``send`` (no Nagle stall)."""
        if not 0 < len(payload) <= MAX_FRAME:
            raise FramingError(f"cannot frame a message of {len(payload)} bytes")
        self.sock.sendall(len(payload).to_bytes(2, "big") + payload)

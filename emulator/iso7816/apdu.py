"""Command and response APDUs and the class byte (ISO/IEC 7816-4:2020 §5.1, §5.2, §5.4.1).

Parsed objects are immutable and round-trip: ``CommandAPDU.parse(b).encode() == b`` for
every well-formed ``b``. The APDUs are ``NamedTuple`` subclasses (immutable, named fields,
and cheap to build on the per-APDU path); code reads them by field name only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from .sw import SW, CardError


class ApduFormatError(CardError):
    """A byte string that is no valid command APDU; answered 6700."""

    def __init__(self, message: str) -> None:
        super().__init__(SW.WRONG_LENGTH, message)


class CommandAPDU(NamedTuple):
    """A command APDU: header, command data and Ne (ISO/IEC 7816-4:2020 §5.2).

    ``ne`` is ``None`` when the APDU has no Le field (cases 1 and 3); otherwise the
    maximum number of response bytes expected (1..256 short, 1..65536 extended; an Le of
    zero bytes means the maximum).
    """

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    ne: int | None = None
    extended: bool = False

    @property
    def case(self) -> int:
        """The ISO/IEC 7816-3:2006 §12.1 case: 1 no data/no Le, 2 Le only, 3 data only, 4 both."""
        if self.data:
            return 4 if self.ne is not None else 3
        return 2 if self.ne is not None else 1

    @property
    def p1p2(self) -> int:
        return (self.p1 << 8) | self.p2

    @classmethod
    def parse(cls, raw: bytes) -> CommandAPDU:
        """Parse with strict length checks; any inconsistency raises ApduFormatError (6700)."""
        n = len(raw)
        if n < 4:
            raise ApduFormatError(f"APDU of {n} bytes is shorter than a header")
        cla, ins, p1, p2 = raw[0], raw[1], raw[2], raw[3]
        if n == 4:
            return cls(cla, ins, p1, p2)
        b4 = raw[4]
        if n == 5:
            return cls(cla, ins, p1, p2, b"", b4 or 256)
        if b4:
            if n == 5 + b4:
                return cls(cla, ins, p1, p2, bytes(raw[5:]))
            if n == 6 + b4:
                return cls(cla, ins, p1, p2, bytes(raw[5:-1]), raw[-1] or 256)
            raise ApduFormatError(f"Lc={b4} does not match an APDU body of {n - 5} bytes")
        # b4 == 0 and more bytes follow: extended length (ISO/IEC 7816-4:2020 §5.2).
        if n == 6:
            raise ApduFormatError("truncated extended length field")
        ext = (raw[5] << 8) | raw[6]
        if n == 7:
            return cls(cla, ins, p1, p2, b"", ext or 65536, True)
        if ext == 0:
            raise ApduFormatError("extended Lc of zero")
        if n == 7 + ext:
            return cls(cla, ins, p1, p2, bytes(raw[7:]), None, True)
        if n == 9 + ext:
            le = (raw[-2] << 8) | raw[-1]
            return cls(cla, ins, p1, p2, bytes(raw[7:-2]), le or 65536, True)
        raise ApduFormatError(f"extended Lc={ext} does not match an APDU body of {n - 7} bytes")

    def encode(self) -> bytes:
        """Serialise, using extended length where the data or Ne needs it."""
        header = bytes((self.cla, self.ins, self.p1, self.p2))
        nc = len(self.data)
        ne = self.ne
        if nc > 65535 or (ne is not None and not 0 < ne <= 65536):
            raise ValueError("APDU data or Ne out of range")
        ext = self.extended or nc > 255 or (ne is not None and ne > 256)
        if not ext:
            body = bytes((nc,)) + self.data if nc else b""
            if ne is not None:
                body += bytes((ne & 0xFF,))
            return header + body
        if nc:
            body = b"\x00" + nc.to_bytes(2, "big") + self.data
            if ne is not None:
                body += (ne & 0xFFFF).to_bytes(2, "big")
        elif ne is not None:
            body = b"\x00" + (ne & 0xFFFF).to_bytes(2, "big")
        else:
            body = b""
        return header + body

    def __bytes__(self) -> bytes:
        return self.encode()


class ResponseAPDU(NamedTuple):
    """A response APDU: data field and the status word (ISO/IEC 7816-4:2020 §5.2, §5.6)."""

    data: bytes
    sw: int

    @classmethod
    def parse(cls, raw: bytes) -> ResponseAPDU:
        if len(raw) < 2:
            raise ValueError(f"response of {len(raw)} bytes has no status word")
        return cls(bytes(raw[:-2]), (raw[-2] << 8) | raw[-1])

    def encode(self) -> bytes:
        return self.data + self.sw.to_bytes(2, "big")

    def __bytes__(self) -> bytes:
        return self.encode()

    @property
    def sw1(self) -> int:
        return self.sw >> 8

    @property
    def sw2(self) -> int:
        return self.sw & 0xFF


@dataclass(frozen=True, slots=True)
class ClassByte:
    """What a class byte says (ISO/IEC 7816-4:2020 §5.4.1).

    Interindustry classes (b8 = 0) carry a logical channel, a secure-messaging indication
    and the command-chaining bit: the first interindustry values (``0x``-``3x``) channel 0-3
    in b2-b1 and SM in b4-b3; the further interindustry values (``4x``-``7x``) channel 4-19
    in b4-b1 and SM in b6. Proprietary classes (b8 = 1) are opaque to the card OS: basic
    channel, no SM, no chaining, handed to the application unchanged. ``FF`` is invalid
    (ISO/IEC 7816-3:2006 reserves it for PPS).
    """

    value: int
    channel: int
    secure_messaging: bool
    chained: bool
    application_class: int
    """The class byte an application sees once the OS has consumed channel, SM and
    chaining: ``00`` for every interindustry class, proprietary ones unchanged."""

    @property
    def interindustry(self) -> bool:
        return self.value < 0x80

    @classmethod
    def decode(cls, cla: int) -> ClassByte:
        """The decoded class byte; CardError 6E00 for ``FF``."""
        decoded = _CLASS_BYTES[cla]
        if decoded is None:
            raise CardError(SW.CLA_NOT_SUPPORTED, "class byte FF is invalid")
        return decoded

    @classmethod
    def _compute(cls, cla: int) -> ClassByte | None:
        if cla == 0xFF:
            return None
        if cla & 0x80:
            return cls(cla, 0, False, False, cla)
        if cla & 0x40:
            return cls(cla, 4 + (cla & 0x0F), bool(cla & 0x20), bool(cla & 0x10), 0x00)
        return cls(cla, cla & 0x03, bool(cla & 0x0C), bool(cla & 0x10), 0x00)


# All 256 decodings, made once: decoding is a table look-up on the per-APDU path.
_CLASS_BYTES: tuple[ClassByte | None, ...] = tuple(ClassByte._compute(cla) for cla in range(0x100))


def parse_hex(text: str) -> bytes:
    """Hex with optional spaces, colons or underscores between bytes."""
    cleaned = "".join(text.replace(":", " ").replace("_", " ").split())
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        # The text is not echoed: it may hold a PIN (a VERIFY written by hand).
        bad = next((i for i, c in enumerate(cleaned) if c not in "0123456789abcdefABCDEF"), None)
        detail = f"unexpected character at digit {bad + 1}" if bad is not None else "odd number of digits"
        raise ValueError(f"not a hex string ({detail})") from None

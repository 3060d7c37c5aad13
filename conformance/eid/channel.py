"""Commands to the chip, plain or under secure messaging, and reading files.

:class:`ChipChannel` sits on a :class:`~eidemu.conformance.connection.CardConnection`
and adds what an inspection system needs between its protocols and the wire: GET RESPONSE
for ``61xx`` (ISO/IEC 7816-4:2020 §5.3.4), secure messaging with the terminal's side of
the shared SM core (ICAO 9303-11 §9.8), and reading a whole elementary file by its short
file identifier in chunks: READ BINARY ``B0`` up to offset 32 767, ``B1`` with the offset
in DO ``54`` and the data in DO ``53`` beyond it (ISO/IEC 7816-4:2020 §11.2),
extended length where the chip accepts it (§5.1).
"""

from __future__ import annotations

from eidemu.emulator.iso7816.apdu import CommandAPDU, ResponseAPDU
from eidemu.emulator.iso7816.sm import TerminalSession
from eidemu.emulator.iso7816.sw import SW
from eidemu.emulator.iso7816.tlv import TLV, TLVError

from ..connection import CardConnection

#: Largest offset READ BINARY B0 can address in P1-P2 (bit 8 of P1 clear): 2^15 - 1
MAX_EVEN_OFFSET = 0x7FFF
#: Chunk for short-length reads: the SM response (DO 87 + 99 + 8E) of 223 bytes fits in 256
SHORT_CHUNK = 0xDF
#: Default chunk with extended length (ISO/IEC 7816-4:2020 §5.1 allows up to 65 536)
EXTENDED_CHUNK = 0x1000


class ChipError(Exception):
    """The chip answered an error status word, or a response that does not verify.

    ``sw`` is the status word (``None`` for a secure-messaging failure on our side);
    the message is one line naming the command.
    """

    def __init__(self, message: str, sw: int | None = None) -> None:
        super().__init__(message)
        self.sw = sw


class ChipChannel:
    """APDUs to one chip: plain until :meth:`start_secure_messaging`, then protected."""

    def __init__(self, connection: CardConnection, *, chunk: int = EXTENDED_CHUNK) -> None:
        self.connection = connection
        self.session: TerminalSession | None = None
        self.chunk = chunk
        self.exchanges = 0  # APDUs on the wire, GET RESPONSE included

    def start_secure_messaging(self, session: TerminalSession) -> None:
        """Protect every following command (after BAC, PACE, or Chip Authentication)."""
        self.session = session

    def end_secure_messaging(self) -> None:
        self.session = None

    def _wire(self, raw: bytes) -> ResponseAPDU:
        self.exchanges += 1
        response = ResponseAPDU.parse(self.connection.transmit(raw))
        data = response.data
        while response.sw1 == 0x61:  # more data waiting (ISO/IEC 7816-4:2020 §5.3.4)
            self.exchanges += 1
            response = ResponseAPDU.parse(self.connection.transmit(bytes((raw[0] & 0x03, 0xC0, 0, 0, response.sw2))))
            data += response.data
        return ResponseAPDU(data, response.sw)

    def send(self, command: CommandAPDU, what: str, *, accept: tuple[int, ...] = (SW.NO_ERROR,)) -> ResponseAPDU:
        """Send ``command`` (protected when a session is on) and return the plain answer;
        :class:`ChipError` naming ``what`` unless the status word is in ``accept``.

        A secure-messaging failure (no DO 8E, a wrong MAC, a ``6987``/``6988`` answer) ends
        the session on our side too, as the chip ends it (ICAO 9303-11 §9.8).
        """
        if self.session is None:
            response = self._wire(command.encode())
        else:
            wrapped = self.session.wrap(command)
            raw = self._wire(wrapped.encode())
            if raw.sw in (SW.EXPECTED_SM_DATA_OBJECTS_MISSING, SW.INCORRECT_SM_DATA_OBJECTS) and not raw.data:
                self.session = None
                raise ChipError(f"{what}: the chip ended secure messaging ({raw.sw:04X})", raw.sw)
            if not raw.data and raw.sw != SW.NO_ERROR:
                # an error status the chip sent without protection: passed on as it is
                response = raw
            else:
                try:
                    response = self.session.unwrap(raw)
                except ValueError as exc:
                    self.session = None
                    raise ChipError(f"{what}: {exc}") from None
        if response.sw not in accept:
            raise ChipError(f"{what}: the chip answered {response.sw:04X}", response.sw)
        return response

    # --- files -------------------------------------------------------------------------

    def select_master_file(self) -> None:
        """SELECT the MF by its file identifier 3F00, no response data (ISO/IEC 7816-4:2020
        §11.1.1): where EF.CardAccess lives (ICAO Doc 9303-10 §3.11)."""
        self.send(CommandAPDU(0x00, 0xA4, 0x00, 0x0C, b"\x3f\x00"), "SELECT MF")

    def select_application(self, aid: bytes) -> None:
        """SELECT by DF name, no response data (P2 0C; ISO/IEC 7816-4:2020 §11.1)."""
        self.send(CommandAPDU(0x00, 0xA4, 0x04, 0x0C, aid), f"SELECT {aid.hex().upper()}")

    def _read(self, sfi: int | None, offset: int, length: int, what: str) -> tuple[bytes, int]:
        ok = (SW.NO_ERROR, SW.END_OF_FILE_REACHED)
        if offset <= MAX_EVEN_OFFSET:
            if sfi is not None:
                p1, p2 = 0x80 | sfi, offset
                if offset > 0xFF:
                    raise ValueError("an SFI read addresses offsets up to 255")
            else:
                p1, p2 = offset >> 8, offset & 0xFF
            rsp = self.send(CommandAPDU(0x00, 0xB0, p1, p2, b"", length, length > 256), what, accept=ok)
            return rsp.data, rsp.sw
        # odd INS: offset in DO 54, data in DO 53 (the current EF: P1-P2 0000)
        data = TLV(0x54, offset.to_bytes(3 if offset > 0xFFFF else 2, "big")).encode()
        rsp = self.send(CommandAPDU(0x00, 0xB1, 0x00, 0x00, data, length + 4, True), what, accept=ok)
        try:
            found = TLV.parse(rsp.data) if rsp.data else TLV(0x53, b"")
        except TLVError as exc:
            raise ChipError(f"{what}: READ BINARY B1 answer is not a DO 53: {exc}") from None
        if found.tag != 0x53:
            raise ChipError(f"{what}: READ BINARY B1 answered DO {found.tag:X}, expected 53")
        return found.value, rsp.sw

    def read_file(self, sfi: int, what: str) -> bytes:
        """The whole content of the EF with short identifier ``sfi`` in the current DF.

        The first READ BINARY selects it by SFI (ISO/IEC 7816-4:2020 §11.2, P1 bit 8);
        the BER-TLV length of its first object says how much follows (every LDS file is
        one TLV, 9303-10 §4.6). If the chip refuses extended length (``6700``), reading
        continues with short chunks.
        """
        try:
            head, sw = self._read(sfi, 0, self.chunk, what)
        except ChipError as exc:
            if exc.sw != SW.WRONG_LENGTH:
                raise
            self.chunk = SHORT_CHUNK
            head, sw = self._read(sfi, 0, SHORT_CHUNK, what)
        total = _tlv_total_length(head, what) if head else 0
        data = head
        while len(data) < total:
            if sw == SW.END_OF_FILE_REACHED:
                raise ChipError(f"{what}: end of file at {len(data)} bytes, the TLV announces {total}")
            n = min(self.chunk, total - len(data))
            try:
                chunk, sw = self._read(None, len(data), n, what)
            except ChipError as exc:
                if exc.sw != SW.WRONG_LENGTH or self.chunk <= SHORT_CHUNK:
                    raise
                self.chunk = SHORT_CHUNK
                continue
            if not chunk:
                raise ChipError(f"{what}: READ BINARY at offset {len(data)} returned no data")
            data += chunk
        return data[:total] if total else data


def _tlv_total_length(head: bytes, what: str) -> int:
    """Tag, length field and value length of the TLV starting ``head`` (ISO/IEC 7816-4:2020 §6.3)."""
    i = 1
    if head[0] & 0x1F == 0x1F:
        while i < len(head) and head[i] & 0x80:
            i += 1
        i += 1
    if i >= len(head):
        raise ChipError(f"{what}: file too short for a TLV header")
    first = head[i]
    if first < 0x80:
        return i + 1 + first
    count = first & 0x7F
    if count == 0 or count > 3 or i + 1 + count > len(head):
        raise ChipError(f"{what}: unsupported TLV length field {head[i : i + 1 + count].hex().upper()}")
    return i + 1 + count + int.from_bytes(head[i + 1 : i + 1 + count], "big")

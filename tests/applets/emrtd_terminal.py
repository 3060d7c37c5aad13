"""A minimal inspection system for the eMRTD applet tests, built on the ICAO codec's TERMINAL
roles (BacTerminal, PaceTerminal, CaTerminal) and the shared secure-messaging core's
TerminalSession. It speaks raw APDU bytes to anything with ``transmit(bytes) -> bytes``
(an in-process Card or a pyscard connection), so the same flows run both ways.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from eidemu.emulator.applets.emrtd import EMRTD_AID
from eidemu.emulator.icao.bac import BacKeys, BacTerminal
from eidemu.emulator.icao.kdf import PacePassword
from eidemu.emulator.icao.mse import MseSetAt
from eidemu.emulator.icao.pace import DynamicAuthenticationData, PaceResult, PaceTerminal
from eidemu.emulator.icao.session import SecureMessagingKeys
from eidemu.emulator.iso7816.apdu import CommandAPDU, ResponseAPDU
from eidemu.emulator.iso7816.sm import TerminalSession

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
PROFILES = FIXTURES / "profiles"


def chip_dir(chip: str) -> Path:
    return FIXTURES / "pki" / "eid" / "chips" / chip


def chip_file(chip: str, name: str) -> bytes:
    return (chip_dir(chip) / name).read_bytes()


def chip_ca_public_key(chip: str) -> bytes:
    """The chip's static CA / PACE-CAM key as an uncompressed point (what DG14 and
    EF.CardSecurity publish)."""
    key = serialization.load_pem_private_key((chip_dir(chip) / "chip-ca.key.pem").read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def mrz_fields(mrz_information: str) -> tuple[str, str, str]:
    return mrz_information[:-15], mrz_information[-14:-8], mrz_information[-7:-1]


class Terminal:
    """APDUs to a chip, wrapped in secure messaging once a session is up."""

    def __init__(self, transmit: Callable[[bytes], bytes]) -> None:
        self._transmit = transmit
        self.session: TerminalSession | None = None

    def raw(self, apdu: bytes) -> ResponseAPDU:
        return ResponseAPDU.parse(self._transmit(apdu))

    def send(self, cmd: CommandAPDU) -> ResponseAPDU:
        """Plain without a session; wrapped and unwrapped with one."""
        if self.session is None:
            return self.raw(cmd.encode())
        wrapped = self.session.wrap(cmd)
        response = self.raw(wrapped.encode())
        return self.session.unwrap(response)

    def start(self, keys: SecureMessagingKeys) -> None:
        self.session = keys.terminal_session()

    # -- files

    def select_application(self) -> int:
        return self.send(CommandAPDU(0x00, 0xA4, 0x04, 0x0C, EMRTD_AID)).sw

    def select_ef(self, fid: int) -> int:
        return self.send(CommandAPDU(0x00, 0xA4, 0x02, 0x0C, fid.to_bytes(2, "big"))).sw

    def read_binary(self, offset: int, ne: int) -> ResponseAPDU:
        return self.send(CommandAPDU(0x00, 0xB0, offset >> 8, offset & 0xFF, b"", ne))

    def read_file(self, fid: int, chunk: int = 0xDF) -> bytes:
        """SELECT by FID then READ BINARY: the first 4 bytes for the length, then chunks."""
        assert self.select_ef(fid) == 0x9000
        head = self.read_binary(0, 4)
        assert head.sw == 0x9000, f"{head.sw:04X}"
        total = _tlv_size(head.data)
        data = head.data
        while len(data) < total:
            part = self.read_binary(len(data), min(chunk, total - len(data)))
            assert part.sw == 0x9000, f"{part.sw:04X}"
            data += part.data
        return data

    # -- protocols

    def bac(self, mrz_information: str) -> SecureMessagingKeys:
        terminal = BacTerminal(BacKeys.from_mrz(*mrz_fields(mrz_information)))
        challenge = self.send(CommandAPDU(0x00, 0x84, 0x00, 0x00, b"", 8))
        assert challenge.sw == 0x9000
        answer = self.send(CommandAPDU(0x00, 0x82, 0x00, 0x00, terminal.external_authenticate_data(challenge.data), 40))
        assert answer.sw == 0x9000, f"{answer.sw:04X}"
        keys = terminal.finish(answer.data)
        self.start(keys)
        return keys

    def mse_set_at_pace(self, oid: str, password: PacePassword, parameter_id: int | None) -> int:
        data = MseSetAt(oid, password.kind, key_reference=parameter_id).encode()
        return self.send(CommandAPDU(0x00, 0x22, 0xC1, 0xA4, data)).sw

    def general_authenticate(self, data: DynamicAuthenticationData, last: bool) -> ResponseAPDU:
        encoded = data.encode()
        long = len(encoded) > 255
        cmd = CommandAPDU(0x00 if last else 0x10, 0x86, 0x00, 0x00, encoded, 65536 if long else 256, long)
        return self.send(cmd)

    def pace(self, oid: str, parameter_id: int, password: PacePassword, send_parameter_id: bool = True) -> PaceResult:
        """MSE:Set AT and the four GENERAL AUTHENTICATE steps; SM starts on success."""
        assert self.mse_set_at_pace(oid, password, parameter_id if send_parameter_id else None) == 0x9000
        terminal = PaceTerminal(oid, parameter_id, password)
        command = terminal.start()
        for step in (terminal.map_nonce, terminal.key_agreement, terminal.mutual_authentication):
            response = self.general_authenticate(command, last=False)
            assert response.sw == 0x9000, f"{response.sw:04X}"
            command = step(DynamicAuthenticationData.parse(response.data))
        response = self.general_authenticate(command, last=True)
        assert response.sw == 0x9000, f"{response.sw:04X}"
        result = terminal.finish(DynamicAuthenticationData.parse(response.data))
        self.start(result.keys)
        return result


def _tlv_size(head: bytes) -> int:
    """Size of a BER-TLV from its first bytes (one-byte tag or two-byte 5F/7F tag)."""
    i = 2 if head[0] & 0x1F == 0x1F else 1
    first = head[i]
    if first < 0x80:
        return i + 1 + first
    n = first & 0x7F
    return i + 1 + n + int.from_bytes(head[i + 1 : i + 1 + n], "big")

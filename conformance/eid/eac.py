"""The terminal's side of Extended Access Control on the eID chip (BSI TR-03110-2 §3.3-§3.4).

:class:`EacTerminal` runs, on a :class:`~eidemu.conformance.eid.channel.ChipChannel` that
PACE has secured: Terminal Authentication v2 with a terminal of the TEST EAC PKI
(:func:`eidemu.emulator.pki.eac.load_terminal`), Chip Authentication v2 with the chip key of
DG14, the holder PIN (VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER under secure
messaging) and the zone reads. Commands follow TR-03110-3 §B.11; each step raises
:class:`~eidemu.conformance.eid.channel.ChipError` with the status word of a refusal.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from eidemu.emulator.icao import ca as ca_codec
from eidemu.emulator.icao import ta
from eidemu.emulator.icao.ca import CaTerminal
from eidemu.emulator.icao.cvc import CvCertificate, CvcTag
from eidemu.emulator.icao.ec import RandomSource
from eidemu.emulator.icao.pace import DynamicAuthenticationData, PaceResult
from eidemu.emulator.iso7816.apdu import CommandAPDU
from eidemu.emulator.iso7816.tlv import TLV
from eidemu.emulator.pki.eac import Terminal

from .channel import ChipChannel

HOLDER_PIN_REF = 0x03
HOLDER_PUK_REF = 0x04

#: The zones of the eID chip profile (docs/eid.md): data group numbers and SFIs.
PRIVATE_ZONE = (3, 4, 5, 6, 7, 8, 9)
HOUSEHOLD_ZONE = (13,)


def pso_verify_certificate(cert: CvCertificate) -> CommandAPDU:
    """PSO:Verify Certificate ``00 2A 00 BE {7F4E body, 5F37 signature}`` (TR-03110-3 §B.11.2)."""
    return CommandAPDU(0x00, 0x2A, 0x00, 0xBE, cert.body + TLV(CvcTag.SIGNATURE, cert.signature).encode())


def mse_set_dst(reference: str) -> CommandAPDU:
    """MSE:Set DST ``00 22 81 B6 {83 CAR}`` (TR-03110-3 §B.11.1)."""
    return CommandAPDU(0x00, 0x22, 0x81, 0xB6, ta.MseSetDst(reference).encode())


@dataclass
class EacTerminal:
    """One terminal of the TEST EAC PKI talking to one chip after PACE."""

    channel: ChipChannel
    terminal: Terminal
    ca: CaTerminal
    """The ephemeral key pair for Chip Authentication (its Comp() is sent in TA)."""
    rng: RandomSource = os.urandom

    def send_chain(self, chain: tuple[CvCertificate, ...] | None = None) -> None:
        """MSE:Set DST + PSO:Verify Certificate for each certificate (link, DV, terminal)."""
        for cert in chain if chain is not None else self.terminal.chain:
            self.channel.send(mse_set_dst(cert.car), f"MSE:Set DST {cert.car}")
            self.channel.send(pso_verify_certificate(cert), f"PSO:Verify Certificate {cert.chr}")

    def terminal_authentication(self, pace: PaceResult, auxiliary_data: bytes = b"") -> None:
        """The chain, then MSE:Set AT ``81 A4``, GET CHALLENGE and EXTERNAL AUTHENTICATE."""
        self.send_chain()
        compressed = self.ca.compressed_ephemeral_public_key()
        mse = ta.MseSetAtTa(self.terminal.algorithm, self.terminal.certificate.chr, compressed, auxiliary_data)
        self.channel.send(CommandAPDU(0x00, 0x22, 0x81, 0xA4, mse.encode()), "MSE:Set AT (TA)")
        challenge = self.channel.send(CommandAPDU(0x00, 0x84, 0x00, 0x00, b"", ta.CHALLENGE_LENGTH), "GET CHALLENGE")
        signature = ta.terminal_sign(
            self.terminal.key, self.terminal.algorithm, pace.id_ic, challenge.data, compressed, auxiliary_data
        )
        self.channel.send(CommandAPDU(0x00, 0x82, 0x00, 0x00, signature), "EXTERNAL AUTHENTICATE (TA)")

    def chip_authentication(self) -> None:
        """CA v2: MSE:Set AT ``41 A4``, GENERAL AUTHENTICATE ``7C {80 PK_PCD}`` -> ``7C {81 r, 82 T}``;
        the token checked, secure messaging restarts with the new keys."""
        self.channel.send(CommandAPDU(0x00, 0x22, 0x41, 0xA4, self.ca.mse_set_at_data()), "MSE:Set AT (CA)")
        response = self.channel.send(
            CommandAPDU(0x00, 0x86, 0x00, 0x00, self.ca.general_authenticate_data().encode(), 256),
            "GENERAL AUTHENTICATE (CA)",
        )
        answer = DynamicAuthenticationData.parse(response.data)
        keys = ca_codec.ca2_terminal(self.ca, answer.require(0x81, "nonce"), answer.require(0x82, "token"))
        self.channel.start_secure_messaging(keys.terminal_session())

    def verify_pin(self, pin: str, reference: int = HOLDER_PIN_REF) -> None:
        """VERIFY under secure messaging (ISO/IEC 7816-4:2020 §11.5.6)."""
        self.channel.send(CommandAPDU(0x00, 0x20, 0x00, reference, pin.encode("ascii")), "VERIFY")

    def read_zone(self, numbers: tuple[int, ...]) -> dict[int, bytes]:
        """READ BINARY of each data group by SFI."""
        return {n: self.channel.read_file(n, f"DG{n}") for n in numbers}


__all__ = [
    "HOLDER_PIN_REF",
    "HOLDER_PUK_REF",
    "HOUSEHOLD_ZONE",
    "PRIVATE_ZONE",
    "EacTerminal",
    "mse_set_dst",
    "pso_verify_certificate",
]

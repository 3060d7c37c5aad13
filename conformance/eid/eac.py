"""The terminal's side of Extended Access Control on the eID chip (BSI TR-03110-2 §3.3-§3.4).

:class:`EacTerminal` runs, on a :class:`~eidemu.conformance.eid.channel.ChipChannel` that
PACE has secured: Terminal Authentication v2 with a terminal of the TEST EAC PKI
(:func:`eidemu.emulator.pki.eac.load_terminal`), Chip Authentication v2 with the chip key of
DG14, the holder PIN (VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER under secure
messaging) and the zone reads, checked against EF.SOD's hashes (:func:`.passive.zone_hashes`).
Commands follow TR-03110-3 §B.11; each step raises
:class:`~eidemu.conformance.eid.channel.ChipError` with the status word of a refusal.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from eidemu.emulator.icao import asn1 as icao_asn1
from eidemu.emulator.icao import ca as ca_codec
from eidemu.emulator.icao import lds, ta
from eidemu.emulator.icao.ca import CaTerminal
from eidemu.emulator.icao.cvc import CvCertificate, CvcTag, sign
from eidemu.emulator.icao.dh import GROUPS as DH_GROUPS
from eidemu.emulator.icao.dh import DHGroup
from eidemu.emulator.icao.ec import Curve, RandomSource
from eidemu.emulator.icao.ec import curve as ec_curve
from eidemu.emulator.icao.errors import IcaoError
from eidemu.emulator.icao.pace import DynamicAuthenticationData, PaceResult
from eidemu.emulator.iso7816.apdu import CommandAPDU
from eidemu.emulator.iso7816.tlv import TLV, TLVError
from eidemu.emulator.pki.eac import Terminal

from .channel import ChipChannel, ChipError
from .passive import zone_hashes
from .report import Check

if TYPE_CHECKING:
    from .reader import InspectionSystem

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


def send_chain(channel: ChipChannel, chain: tuple[CvCertificate, ...]) -> None:
    """MSE:Set DST + PSO:Verify Certificate for each certificate (link, DV, terminal)."""
    for cert in chain:
        channel.send(mse_set_dst(cert.car), f"MSE:Set DST {cert.car}")
        channel.send(pso_verify_certificate(cert), f"PSO:Verify Certificate {cert.chr}")


def request_ta_challenge(
    channel: ChipChannel, chain: tuple[CvCertificate, ...], ca: CaTerminal, id_picc: bytes, auxiliary_data: bytes = b""
) -> bytes:
    """The first half of Terminal Authentication v2: the chain, MSE:Set AT ``81 A4`` (the
    terminal's CHR, Comp() of ``ca``'s ephemeral key) and GET CHALLENGE. Returns the message
    the terminal signs, ID_PICC || r_PICC || Comp(PK_PCD) || aux (:func:`ta.ta_message`), for
    a terminal whose key is elsewhere (a relying party's server)."""
    send_chain(channel, chain)
    terminal = chain[-1]
    compressed = ca.compressed_ephemeral_public_key()
    mse = ta.MseSetAtTa(terminal.public_key.oid, terminal.chr, compressed, auxiliary_data)
    channel.send(CommandAPDU(0x00, 0x22, 0x81, 0xA4, mse.encode()), "MSE:Set AT (TA)")
    challenge = channel.send(CommandAPDU(0x00, 0x84, 0x00, 0x00, b"", ta.CHALLENGE_LENGTH), "GET CHALLENGE")
    return ta.ta_message(id_picc, challenge.data, compressed, auxiliary_data)


def external_authenticate(channel: ChipChannel, signature: bytes) -> None:
    """The second half: EXTERNAL AUTHENTICATE ``00 82 00 00 {signature}`` (TR-03110-3 §B.11.6)."""
    channel.send(CommandAPDU(0x00, 0x82, 0x00, 0x00, signature), "EXTERNAL AUTHENTICATE (TA)")


def chip_authentication(channel: ChipChannel, ca: CaTerminal) -> None:
    """CA v2 after TA: MSE:Set AT ``41 A4``, GENERAL AUTHENTICATE ``7C {80 PK_PCD}`` ->
    ``7C {81 r, 82 T}``; the token checked, secure messaging restarts with the new keys."""
    channel.send(CommandAPDU(0x00, 0x22, 0x41, 0xA4, ca.mse_set_at_data()), "MSE:Set AT (CA)")
    response = channel.send(
        CommandAPDU(0x00, 0x86, 0x00, 0x00, ca.general_authenticate_data().encode(), 256),
        "GENERAL AUTHENTICATE (CA)",
    )
    answer = DynamicAuthenticationData.parse(response.data)
    keys = ca_codec.ca2_terminal(ca, answer.require(0x81, "nonce"), answer.require(0x82, "token"))
    channel.start_secure_messaging(keys.terminal_session())


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
        send_chain(self.channel, chain if chain is not None else self.terminal.chain)

    def terminal_authentication(self, pace: PaceResult, auxiliary_data: bytes = b"") -> None:
        """The chain, then MSE:Set AT ``81 A4``, GET CHALLENGE and EXTERNAL AUTHENTICATE, the
        message signed here with the terminal's key."""
        message = request_ta_challenge(self.channel, self.terminal.chain, self.ca, pace.id_ic, auxiliary_data)
        external_authenticate(self.channel, sign(self.terminal.key, self.terminal.algorithm, message))

    def chip_authentication(self) -> None:
        """CA v2 with the ephemeral key TA announced (:func:`chip_authentication`)."""
        chip_authentication(self.channel, self.ca)

    def verify_pin(self, pin: str, reference: int = HOLDER_PIN_REF) -> None:
        """VERIFY under secure messaging (ISO/IEC 7816-4:2020 §11.5.6)."""
        self.channel.send(CommandAPDU(0x00, 0x20, 0x00, reference, pin.encode("ascii")), "VERIFY")

    def read_zone(self, numbers: tuple[int, ...]) -> dict[int, bytes]:
        """READ BINARY of each data group by SFI."""
        return {n: self.channel.read_file(n, f"DG{n}") for n in numbers}


def ca_terminal_from_dg14(dg14: bytes, rng: RandomSource = os.urandom) -> tuple[CaTerminal, int | None] | str:
    """The Chip Authentication terminal for DG14's key (9303-11 §9.2.5-§9.2.6) and its keyId,
    or a one-line reason why DG14 offers none; :class:`lds.LdsError`, ``ValueError`` or
    ``KeyError`` for a malformed DG14."""
    infos = lds.SecurityInfoSet.parse(dg14, lds.DG_TAGS[14])
    ca_infos = infos.of_type(icao_asn1.ChipAuthenticationInfo)
    key_infos = infos.of_type(icao_asn1.ChipAuthenticationPublicKeyInfo)
    if not ca_infos or not key_infos:
        return "DG14 has no ChipAuthenticationInfo and public key"
    ca_info = ca_infos[0]
    key_id = ca_info["key_id"].native
    key_info = next((k for k in key_infos if k["key_id"].native == key_id), key_infos[0])
    spki = key_info["chip_authentication_public_key"]
    domain: Curve | DHGroup
    if spki["algorithm"]["algorithm"].native == "dh":
        # dhpublicnumber (X9.42) on a standardized group; y as FE2OS of the modulus size
        p = spki["algorithm"]["parameters"]["p"].native
        group = next((g for g in DH_GROUPS.values() if g.p == p), None)
        if group is None:
            return "DG14: the DH key is not on a standardized group (9303-11 §9.5.1)"
        domain, public = group, group.encode(spki["public_key"].parsed.native)
    else:
        public_key = serialization.load_der_public_key(spki.dump())
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            return "DG14: the chip authentication key is neither EC nor DH"
        domain = ec_curve(public_key.curve.name)
        public = public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return CaTerminal(ca_info["protocol"].dotted, domain, public, rng=rng), key_id


def _zone_text(number: int, data: bytes) -> str:
    """The UTF-8 values of a zone data group (``<tag> {80 .., 81 ..}``, docs/eid.md), DG8's
    face record (``68 {80 record}``) as its image format and size, or the data group's size."""
    try:
        children = TLV.parse(data).children
        if number == 8:
            face = lds.FaceImage.parse(next(c.value for c in children if c.tag == 0x80))
            kind = "JPEG" if face.data_type == lds.ImageDataType.JPEG else "JPEG 2000"
            return f"face record, {kind} {face.width}x{face.height}, {len(data)} bytes"
        return " / ".join(c.value.decode("utf-8") for c in children if 0x80 <= c.tag <= 0x8F)
    except (TLVError, UnicodeDecodeError, StopIteration, lds.LdsError):
        return f"{len(data)} bytes"


def run_eac(
    reader: InspectionSystem,
    pace: PaceResult,
    dg14: bytes | None,
    files: dict[str, bytes],
    zones: list[tuple[str, str]],
) -> list[Check]:
    """TA v2 with ``reader.terminal``, CA v2 with DG14's key, the PIN if given, then the
    household and private zones: one check per step, the zone rows appended to ``zones``."""
    assert reader.terminal is not None
    checks: list[Check] = []
    if dg14 is None:
        return [Check.failed("terminal-authentication", "no DG14: no chip key for CA v2")]
    try:
        found = ca_terminal_from_dg14(dg14, reader.rng)
    except (lds.LdsError, ValueError, KeyError) as exc:
        return [Check.failed("terminal-authentication", f"DG14: {exc}")]
    if isinstance(found, str):
        return [Check.failed("terminal-authentication", found)]
    eac = EacTerminal(reader.channel, reader.terminal, found[0], reader.rng)
    chain = " -> ".join(c.chr for c in reader.terminal.chain)
    try:
        eac.terminal_authentication(pace)
    except ChipError as exc:
        return [Check.failed("terminal-authentication", f"{chain}: {exc}")]
    checks.append(Check.passed("terminal-authentication", f"TA v2 {chain}"))
    try:
        eac.chip_authentication()
    except (ChipError, IcaoError) as exc:
        return [*checks, Check.failed("chip-authentication", f"CA v2: {exc}")]
    checks.append(Check.passed("chip-authentication", "CA v2 after TA, secure messaging restarted"))
    if reader.pin is not None:
        try:
            eac.verify_pin(reader.pin)
            checks.append(Check.passed("pin", "holder PIN verified"))
        except ChipError as exc:
            checks.append(Check.failed("pin", str(exc)))
    zone_data: dict[int, bytes] = {}
    for zone, numbers, label in (
        ("household-zone", HOUSEHOLD_ZONE, "household"),
        ("private-zone", PRIVATE_ZONE, "private"),
    ):
        read: list[int] = []
        refused: list[str] = []
        for number in numbers:
            try:
                data = eac.read_zone((number,))[number]
            except ChipError as exc:
                refused.append(f"DG{number} {exc.sw:04X}" if exc.sw is not None else f"DG{number}")
                continue
            files[f"DG{number}"] = zone_data[number] = data
            read.append(number)
            zones.append((f"{label} DG{number}", _zone_text(number, data)))
        if read and not refused:
            checks.append(Check.passed(zone, ", ".join(f"DG{n}" for n in read)))
        elif read:
            checks.append(
                Check.skipped(zone, f"read {', '.join(f'DG{n}' for n in read)}; refused {', '.join(refused)}")
            )
        else:
            checks.append(Check.skipped(zone, f"access denied: {', '.join(refused)}"))
    if "EF.SOD" in files:
        checks.append(zone_hashes(files["EF.SOD"], zone_data))
    return checks


__all__ = [
    "HOLDER_PIN_REF",
    "HOLDER_PUK_REF",
    "HOUSEHOLD_ZONE",
    "PRIVATE_ZONE",
    "EacTerminal",
    "chip_authentication",
    "external_authenticate",
    "mse_set_dst",
    "pso_verify_certificate",
    "request_ta_challenge",
    "send_chain",
]

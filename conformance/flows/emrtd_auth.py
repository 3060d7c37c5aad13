"""eMRTD chip authentication v1 and active authentication (units CA and AA).

``EMRTD_CA_*``: Chip Authentication with DG14's key (ICAO Doc 9303-11 §6.2): secure
messaging restarts with the new keys and the old ones stop working. ``EMRTD_AA_*``: INTERNAL
AUTHENTICATE with DG15's key (§6.1): ISO/IEC 9796-2 scheme 1 for RSA, plain ECDSA with
DG14's ActiveAuthenticationInfo.
"""

from __future__ import annotations

import os

from cryptography.hazmat.primitives.asymmetric import rsa

from eidemu.emulator.icao import aa, lds
from eidemu.emulator.icao import asn1 as icao_asn1
from eidemu.emulator.icao.errors import IcaoError
from eidemu.emulator.iso7816.apdu import CommandAPDU, ResponseAPDU

from ..eid.report import Verdict
from ..pythontests import FlowContext
from .emrtd_common import Session, emrtd_test, hexs, open_bac, open_session, read_lds

_READ_COM = CommandAPDU(0x00, 0xB0, 0x80 | lds.LdsFile.COM.sfi, 0x00, b"", 4)


def _chip_authentication(session: Session) -> None:
    dg14 = session.read(14, "DG14")
    check = session.system.chip_authentication(dg14)
    FlowContext.check(check.verdict is Verdict.PASSED, check.reason, "PASSED", check.verdict.name)


@emrtd_test(
    "EMRTD_CA_A_1",
    "Chip Authentication restarts secure messaging with new keys",
    spec="ICAO Doc 9303-11 §6.2.3-§6.2.4 (MSE:Set AT / KAT, GENERAL AUTHENTICATE; new keys, SSC 0)",
    purpose="Chip Authentication with DG14's key after PACE: the chip answers under the old keys, then EF.COM "
    "reads under the keys derived from the ECDH/DH shared secret.",
    tokens=("CA",),
)
def ca_new_keys(context: FlowContext) -> None:
    session = open_session(context)
    _chip_authentication(session)
    com = session.read(lds.LdsFile.COM.sfi, "EF.COM after CA")
    FlowContext.check(com[:1] == b"\x60", "EF.COM under the CA keys", "60", hexs(com[:1]))


@emrtd_test(
    "EMRTD_CA_A_2",
    "after Chip Authentication the old session keys are refused",
    spec="ICAO Doc 9303-11 §6.2.4 (the chip replaces the session keys), §9.8.6",
    purpose="A command protected with the access-control session keys after Chip Authentication answers 69 88 / "
    "69 87 without data.",
    tokens=("CA",),
)
def ca_old_keys(context: FlowContext) -> None:
    session = open_session(context)
    old = session.sm
    _chip_authentication(session)
    raw = ResponseAPDU.parse(session.channel.connection.transmit(old.wrap(_READ_COM).encode()))
    FlowContext.check(
        raw.sw in (0x6987, 0x6988) and not raw.data, "a command under the old keys", "69 88", f"{raw.sw:04X}"
    )


@emrtd_test(
    "EMRTD_CA_A_3",
    "Chip Authentication after BAC",
    spec="ICAO Doc 9303-11 §6.2 (after BAC or PACE), §6.2.4",
    purpose="Chip Authentication runs in a BAC session too, and EF.COM reads under the new keys.",
    tokens=("CA", "BAC"),
)
def ca_after_bac(context: FlowContext) -> None:
    session = open_bac(context)
    _chip_authentication(session)
    session.read(lds.LdsFile.COM.sfi, "EF.COM after CA")


@emrtd_test(
    "EMRTD_CA_A_4",
    "MSE:Set AT for Chip Authentication with an unknown key reference",
    spec="ICAO Doc 9303-11 §6.2.4.2 (DO 84 key reference); ISO/IEC 7816-4:2020 §5.6 (6A88 referenced data not found)",
    purpose="MSE:Set AT (41 A4) with id-CA-ECDH-AES-CBC-CMAC-128 and key reference 7F, which DG14 does not name, "
    "answers 6A 88 or 6A 80 under secure messaging.",
    tokens=("CA",),
)
def ca_unknown_key(context: FlowContext) -> None:
    session = open_session(context)
    mse = bytes.fromhex("800A04007F00070202030202") + bytes.fromhex("84017F")
    answer = session.channel.send(
        CommandAPDU(0x00, 0x22, 0x41, 0xA4, mse), "MSE:Set AT (CA)", accept=(0x6A88, 0x6A80, 0x9000)
    )
    FlowContext.check(answer.sw in (0x6A88, 0x6A80), "MSE:Set AT with key reference 7F", "6A 88", f"{answer.sw:04X}")


def _aa(context: FlowContext) -> tuple[Session, bytes]:
    session = open_session(context)
    files = read_lds(session)
    check = session.system.active_authentication(files.data_groups.get(15), files.data_groups.get(14))
    FlowContext.check(check.verdict is Verdict.PASSED, check.reason, "PASSED", check.verdict.name)
    return session, files.dg(15)


@emrtd_test(
    "EMRTD_AA_A_1",
    "Active Authentication with RSA (ISO/IEC 9796-2 scheme 1)",
    spec="ICAO Doc 9303-11 §6.1 (INTERNAL AUTHENTICATE with RND.IFD); ISO/IEC 9796-2:2010 §8 "
    "(scheme 1, trailer BC / CC)",
    purpose="INTERNAL AUTHENTICATE with an 8-byte random challenge: the signature opens with DG15's RSA key to a "
    "message representative 6A..BC (or ..CC) whose hash covers M1 || RND.IFD.",
    tokens=("AA-RSA",),
)
def aa_rsa(context: FlowContext) -> None:
    _aa(context)


@emrtd_test(
    "EMRTD_AA_A_2",
    "Active Authentication with ECDSA",
    spec="ICAO Doc 9303-11 §6.1, §9.2.10 (ActiveAuthenticationInfo); BSI TR-03111 §5.2.1 (plain signature r || s)",
    purpose="INTERNAL AUTHENTICATE with an 8-byte challenge: the plain ECDSA signature verifies with DG15's key "
    "and the hash of DG14's ActiveAuthenticationInfo.",
    tokens=("AA-ECDSA",),
)
def aa_ecdsa(context: FlowContext) -> None:
    _aa(context)


@emrtd_test(
    "EMRTD_AA_A_3",
    "Active Authentication signs each challenge anew",
    spec="ICAO Doc 9303-11 §6.1 (challenge-response: the signature covers RND.IFD)",
    purpose="Two INTERNAL AUTHENTICATE with different challenges give different signatures, each verifying "
    "with DG15's key for its own challenge and not for the other.",
    tokens=("AA",),
)
def aa_fresh(context: FlowContext) -> None:
    session, dg15 = _aa(context)
    dg14 = read_lds(session).data_groups.get(14)
    challenges = (bytes(8), b"\x01" * 8)
    signatures = [
        session.send(CommandAPDU(0x00, 0x88, 0, 0, c, 65536, True), f"INTERNAL AUTHENTICATE {hexs(c)}")
        for c in challenges
    ]
    FlowContext.check(signatures[0] != signatures[1], "signatures of two challenges differ", "different", "equal")
    for i, (challenge, signature) in enumerate(zip(challenges, signatures, strict=True)):
        FlowContext.check(
            _verifies(dg15, dg14, challenge, signature), f"signature {i + 1} verifies", "valid", "invalid"
        )
        other = challenges[1 - i]
        FlowContext.check(
            not _verifies(dg15, dg14, other, signature),
            f"signature {i + 1} fails for the other challenge",
            "invalid",
            "valid",
        )


def _verifies(dg15: bytes, dg14: bytes | None, challenge: bytes, signature: bytes) -> bool:
    """The terminal's own check of an AA signature (9303-11 §6.1): 9796-2 for RSA, plain ECDSA otherwise."""
    key = lds.Dg15.parse(dg15).public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            aa.rsa_verify(key, challenge, signature)
        else:
            infos = lds.SecurityInfoSet.parse(dg14 or b"", lds.DG_TAGS[14]).of_type(icao_asn1.ActiveAuthenticationInfo)
            FlowContext.check(infos, "DG14 names the ECDSA algorithm", "ActiveAuthenticationInfo", "absent")
            aa.ecdsa_verify(key, challenge, signature, infos[0]["signature_algorithm"].dotted)
    except (IcaoError, ValueError):
        return False
    return True


@emrtd_test(
    "EMRTD_AA_A_4",
    "INTERNAL AUTHENTICATE with a wrong challenge length",
    spec="ICAO Doc 9303-11 §6.1 (RND.IFD is 8 bytes); ISO/IEC 7816-4:2020 §5.6 (6700)",
    purpose="INTERNAL AUTHENTICATE with a 7-byte challenge under secure messaging answers 67 00 (or 6A 80).",
    tokens=("AA",),
)
def aa_wrong_length(context: FlowContext) -> None:
    session = open_session(context)
    answer = session.channel.send(
        CommandAPDU(0x00, 0x88, 0, 0, os.urandom(7), 256), "INTERNAL AUTHENTICATE", accept=(0x6700, 0x6A80, 0x9000)
    )
    FlowContext.check(answer.sw in (0x6700, 0x6A80), "a 7-byte challenge", "67 00", f"{answer.sw:04X}")


@emrtd_test(
    "EMRTD_AA_A_5",
    "Active Authentication after Chip Authentication",
    spec="ICAO Doc 9303-11 §6.1, §6.2 (the protocols may run in either order under secure messaging)",
    purpose="After Chip Authentication, INTERNAL AUTHENTICATE under the new keys answers a signature that verifies.",
    tokens=("AA", "CA"),
)
def aa_after_ca(context: FlowContext) -> None:
    session = open_session(context)
    files = read_lds(session)
    _chip_authentication(session)
    check = session.system.active_authentication(files.data_groups.get(15), files.data_groups.get(14))
    FlowContext.check(check.verdict is Verdict.PASSED, check.reason, "PASSED", check.verdict.name)

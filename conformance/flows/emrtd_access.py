"""eMRTD access control with session keys: BAC (units BAC) and PACE with each password and parameter set (units PACE).

IDs after the ICAO RF Protocol and Application Test Standard for eMRTD, Part 3, and BSI
TR-03105-5.1: ``EMRTD_BAC_B_*`` BAC runs; ``EMRTD_PACE_B_*`` PACE with the CAN and
``EMRTD_PACE_C_*`` with the MRZ, one test per standardized parameter set (token
``PACE-<mapping>-<cipher>-<parameter ID>``, declared per PACEInfo of EF.CardAccess);
``EMRTD_PACE_D_*`` every PACEInfo the chip's EF.CardAccess holds, whatever its parameter
set; ``EMRTD_PACE_E_*`` refusals and PACE-CAM. A run counts only when the chip then answers
a READ BINARY of EF.COM under the new keys.
"""

from __future__ import annotations

from eidemu.emulator.icao import lds
from eidemu.emulator.icao.bac import BacKeys, BacTerminal
from eidemu.emulator.icao.kdf import PacePassword
from eidemu.emulator.icao.mse import MseSetAt
from eidemu.emulator.icao.oids import ID_PACE
from eidemu.emulator.icao.pace import DynamicAuthenticationData, PaceTerminal
from eidemu.emulator.iso7816.apdu import CommandAPDU

from ..eid.channel import ChipError
from ..eid.reader import AccessDenied, AccessKey, PaceChoice, pace_choices
from ..pythontests import FlowContext
from .emrtd_common import (
    EMRTD_AID,
    Session,
    card_access,
    emrtd_test,
    hexs,
    mrz_key,
    open_bac,
    open_pace,
    pace_choice,
    read_lds,
    system_for,
)


def _proves_keys(session: Session) -> None:
    """READ BINARY of EF.COM under the session: a verified answer starting with tag 60."""
    com = session.read(lds.LdsFile.COM.sfi, "EF.COM")
    FlowContext.check(com[:1] == b"\x60", "EF.COM read under secure messaging starts with tag 60", "60", hexs(com[:1]))


# --- BAC (ICAO Doc 9303-11 §4.3) -------------------------------------------------------------


@emrtd_test(
    "EMRTD_BAC_B_1",
    "BAC with the MRZ opens 3DES secure messaging",
    spec="ICAO Doc 9303-11 §4.3.3-§4.3.4, §9.7.1 (key derivation), §9.8 (secure messaging)",
    purpose="GET CHALLENGE, EXTERNAL AUTHENTICATE with K_Enc/K_MAC from the MRZ information; the chip's "
    "E_IC || M_IC verifies, RND.IFD comes back, and EF.COM reads under the 3DES session keys.",
    tokens=("BAC",),
)
def bac_opens_session(context: FlowContext) -> None:
    _proves_keys(open_bac(context))


@emrtd_test(
    "EMRTD_BAC_B_2",
    "BAC with a wrong MRZ is refused",
    spec="ICAO Doc 9303-11 §4.3.4.2 (the chip checks M_IFD; 6300 on failure)",
    purpose="EXTERNAL AUTHENTICATE computed from another document number answers 63 00, and the data groups "
    "stay closed (READ BINARY of DG1 in plain: 69 82).",
    tokens=("BAC",),
)
def bac_wrong_mrz(context: FlowContext) -> None:
    right = mrz_key(context)
    assert right.document_number and right.date_of_birth and right.date_of_expiry
    other = "X" + right.document_number[1:] if right.document_number[0] != "X" else "Y" + right.document_number[1:]
    system = system_for(context, bac=True)
    system.channel.select_application(EMRTD_AID)
    terminal = BacTerminal(BacKeys.from_mrz(other, right.date_of_birth, right.date_of_expiry))
    challenge = system.channel.send(CommandAPDU(0x00, 0x84, 0x00, 0x00, b"", 8), "GET CHALLENGE").data
    data = terminal.external_authenticate_data(challenge)
    answer = system.channel.send(
        CommandAPDU(0x00, 0x82, 0x00, 0x00, data, 40), "EXTERNAL AUTHENTICATE", accept=(0x6300, 0x9000)
    )
    FlowContext.check(answer.sw == 0x6300, "EXTERNAL AUTHENTICATE with a wrong MRZ", "63 00", f"{answer.sw:04X}")
    FlowContext.check(not answer.data, "no cryptogram comes back", "no data", hexs(answer.data))
    closed = system.channel.send(CommandAPDU(0x00, 0xB0, 0x81, 0, b"", 256), "READ BINARY DG1", accept=(0x6982,))
    FlowContext.check(closed.sw == 0x6982, "DG1 stays closed", "69 82", f"{closed.sw:04X}")


@emrtd_test(
    "EMRTD_BAC_B_3",
    "every data group reads under BAC",
    spec="ICAO Doc 9303-11 §4.3, §9.8; ICAO Doc 9303-10 §4.6 (EF.COM), §4.7",
    purpose="After BAC, EF.COM and every data group its tag list names read completely under 3DES secure messaging "
    "(those behind Extended Access Control answer 69 82 and are left unread).",
    tokens=("BAC",),
)
def bac_reads_everything(context: FlowContext) -> None:
    files = read_lds(open_bac(context))
    FlowContext.check(files.data_groups, "data groups read", ">= 1", 0)
    for number, data in files.data_groups.items():
        tag = lds.DG_TAGS[number]
        FlowContext.check(data[:1] == bytes((tag,)), f"DG{number} starts with its tag", f"{tag:02X}", hexs(data[:1]))


# --- PACE with each parameter set and password (ICAO Doc 9303-11 §4.4) -------------------------

# (number, description, protocol OID arcs after id-PACE, parameter ID, token)
PACE_SETS: tuple[tuple[int, str, str, int, str], ...] = (
    (1, "ECDH-GM AES-128 brainpoolP256r1", "2.2", 13, "PACE-ECDH-GM-AES128-13"),
    (2, "ECDH-GM AES-128 NIST P-256", "2.2", 12, "PACE-ECDH-GM-AES128-12"),
    (3, "ECDH-GM AES-192 brainpoolP384r1", "2.3", 16, "PACE-ECDH-GM-AES192-16"),
    (4, "ECDH-GM AES-256 brainpoolP384r1", "2.4", 16, "PACE-ECDH-GM-AES256-16"),
    (5, "ECDH-GM 3DES brainpoolP256r1", "2.1", 13, "PACE-ECDH-GM-3DES-13"),
    (6, "DH-GM AES-128 1024-bit MODP group", "1.2", 0, "PACE-DH-GM-AES128-0"),
    (7, "DH-GM AES-128 2048-bit MODP group", "1.2", 2, "PACE-DH-GM-AES128-2"),
    (8, "ECDH-CAM AES-128 brainpoolP256r1", "6.2", 13, "PACE-CAM-AES128-13"),
)


def _register_pace(unit: str, password: str) -> None:
    for number, name, arcs, parameter_id, token in PACE_SETS:

        def run(context: FlowContext, arcs: str = arcs, parameter_id: int = parameter_id) -> None:
            choice = pace_choice(f"{ID_PACE}.{arcs}", parameter_id)
            _proves_keys(open_pace(context, password, choice))

        run.__name__ = run.__qualname__ = f"pace_{unit.lower()}_{number}"
        emrtd_test(
            f"EMRTD_PACE_{unit}_{number}",
            f"PACE {name} with the {password}",
            spec="ICAO Doc 9303-11 §4.4.3-§4.4.4 (MSE:Set AT, four GENERAL AUTHENTICATE steps), §9.2.1 (PACEInfo), "
            "§9.5.1 (standardized domain parameters)",
            purpose=f"MSE:Set AT and GENERAL AUTHENTICATE {name} with the {password} password: the chip's "
            "authentication token verifies, and EF.COM reads under the new session keys.",
            tokens=(f"PACE-{password}", token),
        )(run)


_register_pace("B", "CAN")
_register_pace("C", "MRZ")


def _every_pace_info(context: FlowContext, password: str) -> None:
    system = system_for(context)
    choices = pace_choices(card_access(system))
    FlowContext.check(choices, "EF.CardAccess holds a PACEInfo v2 with standardized parameters", "PACEInfo", "none")
    failures = []
    for choice in choices:
        system.connection.reset()
        try:
            session = open_pace(context, password, choice)
            _proves_keys(session)
        except (AccessDenied, ChipError, lds.LdsError) as exc:
            failures.append(f"{choice.describe()}: {exc}")
    FlowContext.check(
        not failures, f"PACE with the {password} on every PACEInfo", "all established", "; ".join(failures)
    )


@emrtd_test(
    "EMRTD_PACE_D_1",
    "PACE with the CAN on every PACEInfo of EF.CardAccess",
    spec="ICAO Doc 9303-11 §4.4, §9.2.1 (every PACEInfo is a parameter set the chip supports)",
    purpose="For each PACEInfo (version 2, standardized domain parameters) EF.CardAccess holds, PACE with the CAN "
    "succeeds and EF.COM reads under the session (the chip reset between runs).",
    tokens=("PACE-CAN",),
)
def pace_can_every_info(context: FlowContext) -> None:
    _every_pace_info(context, "CAN")


@emrtd_test(
    "EMRTD_PACE_D_2",
    "PACE with the MRZ on every PACEInfo of EF.CardAccess",
    spec="ICAO Doc 9303-11 §4.4, §9.2.1, §9.7.3 (the MRZ password: SHA-1 of the MRZ information)",
    purpose="For each PACEInfo EF.CardAccess holds, PACE with the MRZ succeeds and EF.COM reads under the session.",
    tokens=("PACE-MRZ",),
)
def pace_mrz_every_info(context: FlowContext) -> None:
    _every_pace_info(context, "MRZ")


# --- refusals and PACE-CAM -----------------------------------------------------------------


def _pace_wrong(context: FlowContext, password: PacePassword, what: str) -> None:
    system = system_for(context)
    choice = pace_choice(f"{ID_PACE}.2.2", 13)
    terminal = PaceTerminal(choice.protocol.oid, choice.parameter_id, password)
    mse = MseSetAt(choice.protocol.oid, password.kind, choice.parameter_id).encode()
    system.channel.send(CommandAPDU(0x00, 0x22, 0xC1, 0xA4, mse), "MSE:Set AT (PACE)")
    data = terminal.start()
    for number, step in enumerate((terminal.map_nonce, terminal.key_agreement, terminal.mutual_authentication)):
        answer = system.channel.send(
            CommandAPDU(0x10, 0x86, 0, 0, data.encode(), 256), f"GENERAL AUTHENTICATE {number + 1}"
        )
        data = step(DynamicAuthenticationData.parse(answer.data))
    last = system.channel.send(
        CommandAPDU(0x00, 0x86, 0, 0, data.encode(), 256), "GENERAL AUTHENTICATE 4", accept=(0x9000, 0x6300)
    )
    FlowContext.check(
        last.sw == 0x6300 or last.sw & 0xFFF0 == 0x63C0,
        f"step 4 (mutual authentication) with {what}",
        "63 00 or 63 Cx",
        f"{last.sw:04X}",
    )
    closed = system.channel.send(CommandAPDU(0x00, 0xB0, 0x9D, 0, b"", 256), "READ BINARY", accept=(0x6982,))
    FlowContext.check(closed.sw == 0x6982, "no session: EF.CardSecurity stays closed", "69 82", f"{closed.sw:04X}")


def _wrong_can(context: FlowContext) -> PacePassword:
    can = AccessKey(can=context.variable("CAN").decode("latin-1")).can or ""
    wrong = "".join(str((int(c) + 1) % 10) for c in can)
    return PacePassword.can(wrong)


@emrtd_test(
    "EMRTD_PACE_E_1",
    "PACE with a wrong CAN fails at mutual authentication",
    spec="ICAO Doc 9303-11 §4.4.4.2 (step 4: the chip checks T_PCD; 6300 or 63CX on failure)",
    purpose="PACE ECDH-GM AES-128 brainpoolP256r1 with a wrong CAN: the first three steps pass (nothing reveals the "
    "password), step 4 answers 63 00 / 63 Cx, and no session opens.",
    tokens=("PACE-CAN", "PACE-ECDH-GM-AES128-13"),
)
def pace_wrong_can(context: FlowContext) -> None:
    _pace_wrong(context, _wrong_can(context), "a wrong CAN")


@emrtd_test(
    "EMRTD_PACE_E_2",
    "PACE with a wrong MRZ fails at mutual authentication",
    spec="ICAO Doc 9303-11 §4.4.4.2, §9.7.3",
    purpose="PACE ECDH-GM AES-128 brainpoolP256r1 with the MRZ password of another document: step 4 answers "
    "63 00 / 63 Cx and no session opens.",
    tokens=("PACE-MRZ", "PACE-ECDH-GM-AES128-13"),
)
def pace_wrong_mrz(context: FlowContext) -> None:
    key = mrz_key(context)
    assert key.document_number and key.date_of_birth and key.date_of_expiry
    other = ("X" if key.document_number[0] != "X" else "Y") + key.document_number[1:]
    _pace_wrong(context, PacePassword.mrz(other, key.date_of_birth, key.date_of_expiry), "a wrong MRZ")


@emrtd_test(
    "EMRTD_PACE_E_3",
    "PACE with a corrupted terminal token is refused",
    spec="ICAO Doc 9303-11 §4.4.4.2 (step 4: 7C { 85 T_PCD }; the chip verifies it), §4.4.3.4",
    purpose="With the right CAN but the terminal's authentication token T_PCD changed in every bit, step 4 "
    "answers 63 00 / 63 Cx and no session opens.",
    tokens=("PACE-CAN", "PACE-ECDH-GM-AES128-13"),
)
def pace_bad_token(context: FlowContext) -> None:
    system = system_for(context)
    choice = pace_choice(f"{ID_PACE}.2.2", 13)
    password = PacePassword.can(context.variable("CAN").decode("latin-1"))
    terminal = PaceTerminal(choice.protocol.oid, choice.parameter_id, password)
    mse = MseSetAt(choice.protocol.oid, password.kind, choice.parameter_id).encode()
    system.channel.send(CommandAPDU(0x00, 0x22, 0xC1, 0xA4, mse), "MSE:Set AT (PACE)")
    data = terminal.start()
    for number, step in enumerate((terminal.map_nonce, terminal.key_agreement, terminal.mutual_authentication)):
        answer = system.channel.send(
            CommandAPDU(0x10, 0x86, 0, 0, data.encode(), 256), f"GENERAL AUTHENTICATE {number + 1}"
        )
        data = step(DynamicAuthenticationData.parse(answer.data))
    token = data.get(0x85) or b""
    bad = DynamicAuthenticationData.of((0x85, bytes(b ^ 0xFF for b in token)))
    last = system.channel.send(
        CommandAPDU(0x00, 0x86, 0, 0, bad.encode(), 256), "GENERAL AUTHENTICATE 4", accept=(0x9000, 0x6300)
    )
    FlowContext.check(
        last.sw == 0x6300 or last.sw & 0xFFF0 == 0x63C0, "step 4 with a corrupted T_PCD", "63 00", f"{last.sw:04X}"
    )


@emrtd_test(
    "EMRTD_PACE_E_4",
    "PACE-CAM: the chip authentication data matches EF.CardSecurity",
    spec="ICAO Doc 9303-11 §4.4.3.5 (chip authentication mapping: A_IC in DO 8A), §4.4.3.5.2 (the terminal's check)",
    purpose="After PACE-CAM with the CAN, EF.CardSecurity reads under the session, is signed by a trusted "
    "Document Signer, and CA_IC * PK_IC equals the chip's mapping key (PK_map,IC).",
    tokens=("PACE-CAN", "PACE-CAM-AES128-13"),
)
def pace_cam(context: FlowContext) -> None:
    session = open_pace(context, "CAN", pace_choice(f"{ID_PACE}.6.2", 13), select=False)
    assert session.pace is not None
    FlowContext.check(session.pace.ca_ic is not None, "step 4 carries A_IC (DO 8A)", "DO 8A", "absent")
    security = session.read(0x1D, "EF.CardSecurity")
    check = session.system.check_pace_cam(session.pace, security)
    FlowContext.check(check.verdict.name == "PASSED", check.reason, "A_IC verifies", check.reason)


@emrtd_test(
    "EMRTD_PACE_E_5",
    "PACE before SELECT: the session survives the SELECT of the application",
    spec="ICAO Doc 9303-11 §4.2 (PACE in the MF, then SELECT of the eMRTD application), §9.8",
    purpose="PACE runs in the MF; the SELECT of the eMRTD application under secure messaging answers a "
    "verified 90 00 and DG1 then reads under the same session.",
    tokens=("PACE-CAN",),
)
def pace_then_select(context: FlowContext) -> None:
    session = open_pace(context, "CAN")
    dg1 = session.read(1, "DG1")
    FlowContext.check(dg1[:1] == b"\x61", "DG1 reads after SELECT", "61", hexs(dg1[:1]))


__all__ = ["PACE_SETS", "PaceChoice"]

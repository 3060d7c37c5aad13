"""Extended Access Control and the zones of the eID chip, organised like BSI TR-03105-5
(test cases for the eID card's protocols: certificate validation, Terminal Authentication,
Chip Authentication, the PIN and the access rights).

Test IDs ``EAC_<unit>_<n>``: ``CVC`` the chip's validation of CV certificate chains
(TR-03110-3 §2.5), ``TA`` Terminal Authentication v2 (§B.11.4-§B.11.6), ``CA`` Chip
Authentication v2, ``PIN`` the holder PIN, ``ZONE`` the access rights of the zones
(docs/eid.md, "Extended access control and the zones"). Each test resets the card, runs PACE
with the CAN (variable ``CAN``) and uses the terminals of the TEST EAC PKI (fixtures/pki/eac).
Variables: ``CAN``, ``EID_PIN``, ``EID_PUK`` (ASCII; not ``PIN``, which on the whole chip
names the citizen-certificate zone's PIN). Tokens: ``EID-EAC``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from eidemu.emulator.icao import lds, ta
from eidemu.emulator.icao.errors import IcaoError
from eidemu.emulator.icao.lds import EMRTD_AID
from eidemu.emulator.icao.pace import PaceResult
from eidemu.emulator.iso7816.apdu import CommandAPDU
from eidemu.emulator.pki.eac import load_terminal
from eidemu.fixtures import fixture_path

from ..eid.channel import ChipError
from ..eid.eac import (
    HOUSEHOLD_ZONE,
    PRIVATE_ZONE,
    EacTerminal,
    ca_terminal_from_dg14,
    mse_set_dst,
    pso_verify_certificate,
)
from ..eid.passive import zone_hashes
from ..eid.reader import AccessKey, InspectionSystem, choose_pace, pace_choices
from ..eid.report import Verdict
from ..pythontests import CheckFailed, FlowContext, TestFunction, conformance_test

EAC_TOKENS = ("EID-EAC",)
SPEC_CVC = "BSI TR-03110-3 §2.5; TR-03105-5 (certificate validation)"
SPEC_TA = "BSI TR-03110-3 §B.11.4-§B.11.6"
SPEC_CA = "BSI TR-03110-2 §3.4"
SPEC_PIN = "ISO/IEC 7816-4:2020 §11.5; docs/eid.md"
SPEC_ZONE = "BSI TR-03110-3 §C.4; docs/eid.md"
EAC_DIR = fixture_path("pki", "eac")


def eac_test(
    test_id: str, title: str, *, spec: str, purpose: str, destructive: bool = False
) -> Callable[[TestFunction], TestFunction]:
    return conformance_test(
        test_id, title, spec=spec, purpose=purpose, tokens=EAC_TOKENS, category="eac", destructive=destructive
    )


@dataclasses.dataclass
class Opened:
    system: InspectionSystem
    eac: EacTerminal
    pace: PaceResult

    def sw(self, command: CommandAPDU) -> int:
        return sw_of(lambda: self.system.channel.send(command, "test"))


def sw_of(action: Callable[[], object]) -> int:
    try:
        action()
    except ChipError as exc:
        return exc.sw if exc.sw is not None else -1
    return 0x9000


def open_chip(context: FlowContext, terminal: str) -> Opened:
    """Reset, PACE with the CAN, SELECT the eMRTD application, DG14 for the CA key."""
    context.connection.reset()
    system = InspectionSystem(context.connection)
    card_access = system.read_card_access()
    context.check(card_access is not None, "EF.CardAccess readable in the clear")
    assert card_access is not None
    choice = choose_pace(pace_choices(card_access))
    context.check(choice is not None, "a PACE parameter set offered")
    assert choice is not None
    pace = system.run_pace(choice, AccessKey(can=context.variable("CAN").decode("ascii")))
    system.channel.select_application(EMRTD_AID)
    found = ca_terminal_from_dg14(system.channel.read_file(14, "DG14"))
    if isinstance(found, str):
        raise CheckFailed(found)
    return Opened(system, EacTerminal(system.channel, load_terminal(EAC_DIR, terminal), found[0]), pace)


def read_sw(opened: Opened, number: int) -> int:
    """The status word of READ BINARY of data group ``number`` (9000 when read)."""
    return sw_of(lambda: opened.eac.read_zone((number,)))


def expect(context: FlowContext, what: str, expected: int, received: int) -> None:
    context.check(received == expected, what, f"{expected:04X}", f"{received:04X}")


def full(context: FlowContext, terminal: str = "at-private", pin: bool = True) -> Opened:
    opened = open_chip(context, terminal)
    opened.eac.terminal_authentication(opened.pace)
    opened.eac.chip_authentication()
    if pin:
        opened.eac.verify_pin(context.variable("EID_PIN").decode("ascii"))
    return opened


# -- certificate validation ----------------------------------------------------------------


@eac_test(
    "EAC_CVC_1", "Valid DV and terminal certificates", spec=SPEC_CVC, purpose="A valid chain is imported: 9000 twice."
)
def cvc_valid(context: FlowContext) -> None:
    opened = open_chip(context, "at-private")
    for cert in opened.eac.terminal.chain:
        expect(context, f"MSE:Set DST {cert.car}", 0x9000, opened.sw(mse_set_dst(cert.car)))
        expect(context, f"PSO:Verify Certificate {cert.chr}", 0x9000, opened.sw(pso_verify_certificate(cert)))


@eac_test(
    "EAC_CVC_2", "Expired terminal certificate", spec=SPEC_CVC, purpose="An expired certificate is refused: 6300."
)
def cvc_expired(context: FlowContext) -> None:
    opened = open_chip(context, "at-expired")
    dv, at = opened.eac.terminal.chain
    opened.eac.send_chain((dv,))
    opened.sw(mse_set_dst(at.car))
    expect(context, "PSO:Verify Certificate of an expired terminal", 0x6300, opened.sw(pso_verify_certificate(at)))


@eac_test("EAC_CVC_3", "Wrong signature", spec=SPEC_CVC, purpose="A certificate whose signature does not verify: 6300.")
def cvc_wrong_signature(context: FlowContext) -> None:
    opened = open_chip(context, "at-private")
    dv, at = opened.eac.terminal.chain
    opened.eac.send_chain((dv,))
    opened.sw(mse_set_dst(at.car))
    bad = dataclasses.replace(at, signature=bytes(len(at.signature)))
    expect(context, "PSO:Verify Certificate with a zero signature", 0x6300, opened.sw(pso_verify_certificate(bad)))


@eac_test(
    "EAC_CVC_4",
    "Unknown CVCA",
    spec=SPEC_CVC,
    purpose="MSE:Set DST naming an untrusted CVCA (TWCVCA00003): 6A88.",
)
def cvc_unknown_cvca(context: FlowContext) -> None:
    opened = open_chip(context, "at-private")
    # TWCVCA00002 becomes trusted for good once its link certificate is imported (EAC_CVC_6),
    # so the unknown CVCA is one no link certificate of the TEST PKI introduces.
    expect(context, "MSE:Set DST TWCVCA00003", 0x6A88, opened.sw(mse_set_dst("TWCVCA00003")))


@eac_test(
    "EAC_CVC_5", "Wrong role order", spec=SPEC_CVC, purpose="A terminal certificate straight under the CVCA: 6300."
)
def cvc_wrong_role(context: FlowContext) -> None:
    opened = open_chip(context, "at-private")
    at = dataclasses.replace(opened.eac.terminal.certificate, car="TWCVCA00001")
    opened.sw(mse_set_dst("TWCVCA00001"))
    expect(
        context, "PSO:Verify Certificate of a terminal under the CVCA", 0x6300, opened.sw(pso_verify_certificate(at))
    )


@eac_test(
    "EAC_CVC_6", "Link certificate", spec=SPEC_CVC, purpose="A link certificate makes the new CVCA a trust point."
)
def cvc_link(context: FlowContext) -> None:
    opened = open_chip(context, "at-private-2")
    opened.eac.terminal_authentication(opened.pace)


@eac_test(
    "EAC_CVC_7", "PSO without MSE:Set DST", spec=SPEC_CVC, purpose="PSO:Verify Certificate out of sequence: 6985."
)
def cvc_no_dst(context: FlowContext) -> None:
    opened = open_chip(context, "at-private")
    dv = opened.eac.terminal.chain[0]
    expect(context, "PSO:Verify Certificate without MSE:Set DST", 0x6985, opened.sw(pso_verify_certificate(dv)))


# -- Terminal Authentication -------------------------------------------------------------------


@eac_test("EAC_TA_1", "Terminal Authentication v2", spec=SPEC_TA, purpose="TA with at-private succeeds.")
def ta_valid(context: FlowContext) -> None:
    opened = open_chip(context, "at-private")
    opened.eac.terminal_authentication(opened.pace)


@eac_test("EAC_TA_2", "Wrong TA signature", spec=SPEC_TA, purpose="A signature over another ID_PICC: 6300.")
def ta_wrong_signature(context: FlowContext) -> None:
    opened = open_chip(context, "at-private")
    eac = opened.eac
    eac.send_chain()
    compressed = eac.ca.compressed_ephemeral_public_key()
    mse = ta.MseSetAtTa(eac.terminal.algorithm, eac.terminal.certificate.chr, compressed)
    opened.sw(CommandAPDU(0x00, 0x22, 0x81, 0xA4, mse.encode()))
    challenge = opened.system.channel.send(CommandAPDU(0x00, 0x84, 0x00, 0x00, b"", 8), "GET CHALLENGE").data
    signature = ta.terminal_sign(eac.terminal.key, eac.terminal.algorithm, bytes(32), challenge, compressed)
    expect(context, "EXTERNAL AUTHENTICATE", 0x6300, opened.sw(CommandAPDU(0x00, 0x82, 0x00, 0x00, signature)))


@eac_test("EAC_TA_3", "Unknown terminal key", spec=SPEC_TA, purpose="MSE:Set AT naming a key not imported: 6A88.")
def ta_unknown_key(context: FlowContext) -> None:
    opened = open_chip(context, "at-private")
    mse = ta.MseSetAtTa(opened.eac.terminal.algorithm, "TWATPRIV0001", opened.eac.ca.compressed_ephemeral_public_key())
    expect(context, "MSE:Set AT before the chain", 0x6A88, opened.sw(CommandAPDU(0x00, 0x22, 0x81, 0xA4, mse.encode())))


@eac_test("EAC_TA_4", "RSA chain", spec=SPEC_TA, purpose="TA with id-TA-RSA-v1-5-SHA-256 succeeds.")
def ta_rsa(context: FlowContext) -> None:
    opened = open_chip(context, "at-rsa")
    opened.eac.terminal_authentication(opened.pace)


# -- Chip Authentication v2 ---------------------------------------------------------------------


@eac_test("EAC_CA_1", "TA then CA v2", spec=SPEC_CA, purpose="CA v2 after TA; secure messaging restarts.")
def ca_after_ta(context: FlowContext) -> None:
    opened = full(context, pin=False)
    opened.system.channel.read_file(1, "DG1")


# -- the PIN -------------------------------------------------------------------------------------


@eac_test("EAC_PIN_1", "PIN retry counter", spec=SPEC_PIN, purpose="A wrong PIN: 63C2, the status shows 2 tries left.")
def pin_counter(context: FlowContext) -> None:
    opened = full(context, pin=False)
    pin = context.variable("EID_PIN").decode("ascii")
    wrong = "000000" if pin != "000000" else "111111"
    expect(context, "VERIFY wrong PIN", 0x63C2, sw_of(lambda: opened.eac.verify_pin(wrong)))
    expect(context, "VERIFY status", 0x63C2, opened.sw(CommandAPDU(0x00, 0x20, 0x00, 0x03)))
    opened.eac.verify_pin(pin)  # restores the counter


@eac_test("EAC_PIN_2", "PIN outside secure messaging", spec=SPEC_PIN, purpose="VERIFY in plain: 6982.")
def pin_plain(context: FlowContext) -> None:
    context.connection.reset()
    response = context.connection.transmit(bytes.fromhex("0020000306") + b"123456")
    expect(context, "plain VERIFY", 0x6982, int.from_bytes(response[-2:], "big"))


# -- the zones ------------------------------------------------------------------------------------


@eac_test("EAC_ZONE_1", "Private zone", spec=SPEC_ZONE, purpose="TA (at-private), CA v2 and the PIN open DG3-DG9.")
def zone_private(context: FlowContext) -> None:
    opened = full(context)
    data = opened.eac.read_zone((3, 4, 5, 6, 7, 9))
    context.check(data[3][:1] == b"\x63", "DG3 starts with tag 63", "63", data[3][:1].hex())


@eac_test("EAC_ZONE_2", "Private zone without the PIN", spec=SPEC_ZONE, purpose="TA without the PIN: DG3 6982.")
def zone_no_pin(context: FlowContext) -> None:
    opened = full(context, pin=False)
    expect(context, "READ DG3", 0x6982, sw_of(lambda: opened.eac.read_zone((3,))))


@eac_test("EAC_ZONE_3", "Household zone", spec=SPEC_ZONE, purpose="at-household reads DG13 but not DG3.")
def zone_household(context: FlowContext) -> None:
    opened = full(context, "at-household")
    opened.eac.read_zone((13,))
    expect(context, "READ DG3", 0x6982, sw_of(lambda: opened.eac.read_zone((3,))))


@eac_test("EAC_ZONE_4", "Rights intersected", spec=SPEC_ZONE, purpose="at-public under a public DV: DG13 6982.")
def zone_intersection(context: FlowContext) -> None:
    opened = full(context, "at-public")
    expect(context, "READ DG13", 0x6982, sw_of(lambda: opened.eac.read_zone((13,))))


@eac_test("EAC_ZONE_5", "No TA", spec=SPEC_ZONE, purpose="PACE alone: DG13 6982, DG1 readable.")
def zone_no_ta(context: FlowContext) -> None:
    opened = open_chip(context, "at-private")
    opened.system.channel.read_file(1, "DG1")
    expect(context, "READ DG13", 0x6982, sw_of(lambda: opened.system.channel.read_file(13, "DG13")))


# -- more certificate validation ---------------------------------------------------------------


@eac_test(
    "EAC_CVC_8", "Wrong DV signature", spec=SPEC_CVC, purpose="A DV certificate whose signature does not verify: 6300."
)
def cvc_wrong_dv_signature(context: FlowContext) -> None:
    opened = open_chip(context, "at-private")
    dv = opened.eac.terminal.chain[0]
    opened.sw(mse_set_dst(dv.car))
    bad = dataclasses.replace(dv, signature=bytes(len(dv.signature)))
    expect(
        context, "PSO:Verify Certificate of a DV with a zero signature", 0x6300, opened.sw(pso_verify_certificate(bad))
    )


@eac_test("EAC_CVC_9", "Unknown CAR", spec=SPEC_CVC, purpose="MSE:Set DST naming a key nobody issued: 6A88.")
def cvc_unknown_car(context: FlowContext) -> None:
    opened = open_chip(context, "at-private")
    expect(context, "MSE:Set DST TWXXXX00001", 0x6A88, opened.sw(mse_set_dst("TWXXXX00001")))


@eac_test(
    "EAC_CVC_10", "Terminal before its DV", spec=SPEC_CVC, purpose="MSE:Set DST naming a DV not yet imported: 6A88."
)
def cvc_terminal_before_dv(context: FlowContext) -> None:
    opened = open_chip(context, "at-private")
    at = opened.eac.terminal.certificate
    expect(context, f"MSE:Set DST {at.car} before the DV", 0x6A88, opened.sw(mse_set_dst(at.car)))


@eac_test(
    "EAC_CVC_11",
    "Link certificate step by step",
    spec=SPEC_CVC,
    purpose="The link certificate, then the DV and terminal under the new CVCA: 9000 each.",
)
def cvc_link_steps(context: FlowContext) -> None:
    opened = open_chip(context, "at-private-2")
    for cert in opened.eac.terminal.chain:
        expect(context, f"MSE:Set DST {cert.car}", 0x9000, opened.sw(mse_set_dst(cert.car)))
        expect(context, f"PSO:Verify Certificate {cert.chr}", 0x9000, opened.sw(pso_verify_certificate(cert)))


@eac_test(
    "EAC_CVC_12",
    "Expired terminal refused after a valid chain",
    spec=SPEC_CVC,
    purpose="The chip's date, moved forward by a valid chain, still refuses an expired terminal: 6300.",
)
def cvc_date_kept(context: FlowContext) -> None:
    opened = open_chip(context, "at-private")
    opened.eac.send_chain()
    expired = load_terminal(EAC_DIR, "at-expired")
    dv, at = expired.chain
    opened.eac.send_chain((dv,))
    opened.sw(mse_set_dst(at.car))
    expect(context, "PSO:Verify Certificate of an expired terminal", 0x6300, opened.sw(pso_verify_certificate(at)))


@eac_test(
    "EAC_CVC_13",
    "Truncated certificate",
    spec=SPEC_CVC,
    purpose="PSO:Verify Certificate without the 5F37 signature: 6A80.",
)
def cvc_truncated(context: FlowContext) -> None:
    opened = open_chip(context, "at-private")
    dv = opened.eac.terminal.chain[0]
    opened.sw(mse_set_dst(dv.car))
    expect(
        context, "PSO:Verify Certificate, body only", 0x6A80, opened.sw(CommandAPDU(0x00, 0x2A, 0x00, 0xBE, dv.body))
    )


# -- more Terminal Authentication ----------------------------------------------------------------


@eac_test("EAC_TA_5", "TA without PACE", spec=SPEC_TA, purpose="MSE:Set DST in plain, without PACE: 6982.")
def ta_without_pace(context: FlowContext) -> None:
    context.connection.reset()
    dv = load_terminal(EAC_DIR, "at-private").chain[0]
    select = CommandAPDU(0x00, 0xA4, 0x04, 0x0C, EMRTD_AID).encode()
    context.connection.transmit(select)
    response = context.connection.transmit(mse_set_dst(dv.car).encode())
    expect(context, "plain MSE:Set DST", 0x6982, int.from_bytes(response[-2:], "big"))


@eac_test(
    "EAC_TA_6",
    "EXTERNAL AUTHENTICATE without a challenge",
    spec=SPEC_TA,
    purpose="MSE:Set AT, then EXTERNAL AUTHENTICATE without GET CHALLENGE: 6985.",
)
def ta_no_challenge(context: FlowContext) -> None:
    opened = open_chip(context, "at-private")
    eac = opened.eac
    eac.send_chain()
    compressed = eac.ca.compressed_ephemeral_public_key()
    mse = ta.MseSetAtTa(eac.terminal.algorithm, eac.terminal.certificate.chr, compressed)
    opened.sw(CommandAPDU(0x00, 0x22, 0x81, 0xA4, mse.encode()))
    signature = ta.terminal_sign(eac.terminal.key, eac.terminal.algorithm, opened.pace.id_ic, bytes(8), compressed)
    expect(context, "EXTERNAL AUTHENTICATE", 0x6985, opened.sw(CommandAPDU(0x00, 0x82, 0x00, 0x00, signature)))


@eac_test(
    "EAC_TA_7",
    "Signature by another terminal's key",
    spec=SPEC_TA,
    purpose="at-private's chain, at-household's key signing the challenge: 6300, no rights.",
)
def ta_other_key(context: FlowContext) -> None:
    opened = open_chip(context, "at-private")
    eac = opened.eac
    eac.send_chain()
    compressed = eac.ca.compressed_ephemeral_public_key()
    mse = ta.MseSetAtTa(eac.terminal.algorithm, eac.terminal.certificate.chr, compressed)
    opened.sw(CommandAPDU(0x00, 0x22, 0x81, 0xA4, mse.encode()))
    challenge = opened.system.channel.send(CommandAPDU(0x00, 0x84, 0x00, 0x00, b"", 8), "GET CHALLENGE").data
    other = load_terminal(EAC_DIR, "at-household")
    signature = ta.terminal_sign(other.key, eac.terminal.algorithm, opened.pace.id_ic, challenge, compressed)
    expect(context, "EXTERNAL AUTHENTICATE", 0x6300, opened.sw(CommandAPDU(0x00, 0x82, 0x00, 0x00, signature)))
    expect(context, "READ DG13", 0x6982, sw_of(lambda: opened.system.channel.read_file(13, "DG13")))


# -- more Chip Authentication ---------------------------------------------------------------------


@eac_test(
    "EAC_CA_2",
    "CA v2 then the private zone needs TA",
    spec=SPEC_CA,
    purpose="Chip Authentication without Terminal Authentication grants no zone: DG3 and DG13 6982.",
)
def ca_without_ta(context: FlowContext) -> None:
    opened = open_chip(context, "at-private")
    try:
        opened.eac.chip_authentication()
    except (ChipError, IcaoError):
        opened = open_chip(context, "at-private")  # refused: a new session, still without TA
    for number in (3, 13):
        expect(context, f"READ DG{number}", 0x6982, read_sw(opened, number))


# -- more zones -----------------------------------------------------------------------------------


@eac_test(
    "EAC_ZONE_6",
    "Private zone refused to household rights",
    spec=SPEC_ZONE,
    purpose="at-household with the PIN: every private data group DG3-DG9 6982.",
)
def zone_household_private(context: FlowContext) -> None:
    opened = full(context, "at-household")
    for number in PRIVATE_ZONE:
        expect(context, f"READ DG{number}", 0x6982, read_sw(opened, number))


@eac_test(
    "EAC_ZONE_7",
    "Every private data group",
    spec=SPEC_ZONE,
    purpose="at-private with CA v2 and the PIN reads DG3-DG9 and DG13.",
)
def zone_private_all(context: FlowContext) -> None:
    opened = full(context)
    data = opened.eac.read_zone((*PRIVATE_ZONE, *HOUSEHOLD_ZONE))
    context.check(all(data.values()), "every zone data group non-empty")


@eac_test(
    "EAC_ZONE_8",
    "Rights end with the session",
    spec=SPEC_ZONE,
    purpose="After a reset and a new PACE without TA, DG3 and DG13 are refused again: 6982.",
)
def zone_rights_reset(context: FlowContext) -> None:
    full(context)
    opened = open_chip(context, "at-private")
    for number in (3, 13):
        expect(context, f"READ DG{number}", 0x6982, read_sw(opened, number))


@eac_test(
    "EAC_ZONE_9",
    "The zones are hashed in EF.SOD",
    spec="ICAO Doc 9303-10 §4.6.2 (a hash for each data group present); ICAO Doc 9303-11 §5.1; " + SPEC_ZONE,
    purpose="at-private with CA v2 and the PIN reads DG3-DG9 and DG13; EF.SOD's signature verifies and each zone "
    "data group hashes to its DataGroupHash (a zone altered after signing fails).",
)
def zone_hashes_in_sod(context: FlowContext) -> None:
    opened = full(context)
    data = opened.eac.read_zone((*PRIVATE_ZONE, *HOUSEHOLD_ZONE))
    sod = opened.system.channel.read_file(lds.LdsFile.SOD.sfi, "EF.SOD")
    check = zone_hashes(sod, data)
    context.check(check.verdict is Verdict.PASSED, "zone data groups against EF.SOD", "PASSED", check.reason)


# -- more PIN -------------------------------------------------------------------------------------


def wrong_pin(pin: str) -> str:
    return "000000" if pin != "000000" else "111111"


@eac_test(
    "EAC_PIN_3",
    "Counter restored by the right PIN",
    spec=SPEC_PIN,
    purpose="Two wrong PINs (63C2, 63C1), then the right one: 9000 and the status 9000.",
)
def pin_restored(context: FlowContext) -> None:
    opened = full(context, pin=False)
    pin = context.variable("EID_PIN").decode("ascii")
    expect(context, "VERIFY wrong PIN", 0x63C2, sw_of(lambda: opened.eac.verify_pin(wrong_pin(pin))))
    expect(context, "VERIFY wrong PIN again", 0x63C1, sw_of(lambda: opened.eac.verify_pin(wrong_pin(pin))))
    expect(context, "VERIFY right PIN", 0x9000, sw_of(lambda: opened.eac.verify_pin(pin)))
    expect(context, "VERIFY status", 0x9000, opened.sw(CommandAPDU(0x00, 0x20, 0x00, 0x03)))


@eac_test(
    "EAC_PIN_4",
    "PIN blocked, PUK unblocks",
    spec=SPEC_PIN,
    purpose="Wrong PINs: 63C2, 63C1, 6983 (blocked), the right one 6983; RESET RETRY COUNTER with the PUK: 9000.",
    destructive=True,
)
def pin_block_unblock(context: FlowContext) -> None:
    opened = full(context, pin=False)
    pin = context.variable("EID_PIN").decode("ascii")
    puk = context.variable("EID_PUK")
    for expected in (0x63C2, 0x63C1, 0x6983):
        expect(context, "VERIFY wrong PIN", expected, sw_of(lambda: opened.eac.verify_pin(wrong_pin(pin))))
    expect(context, "VERIFY right PIN while blocked", 0x6983, sw_of(lambda: opened.eac.verify_pin(pin)))
    expect(context, "RESET RETRY COUNTER with the PUK", 0x9000, opened.sw(CommandAPDU(0x00, 0x2C, 0x01, 0x03, puk)))
    expect(context, "VERIFY right PIN after unblock", 0x9000, sw_of(lambda: opened.eac.verify_pin(pin)))


@eac_test(
    "EAC_PIN_5",
    "Wrong PUK",
    spec=SPEC_PIN,
    purpose="RESET RETRY COUNTER with a wrong PUK: 63C9 (ten tries).",
)
def pin_wrong_puk(context: FlowContext) -> None:
    opened = full(context, pin=False)
    puk = context.variable("EID_PUK")
    wrong = b"87654321" if puk != b"87654321" else b"12345678"
    expect(context, "RESET RETRY COUNTER wrong PUK", 0x63C9, opened.sw(CommandAPDU(0x00, 0x2C, 0x01, 0x03, wrong)))
    expect(context, "RESET RETRY COUNTER right PUK", 0x9000, opened.sw(CommandAPDU(0x00, 0x2C, 0x01, 0x03, puk)))


@eac_test(
    "EAC_PIN_6",
    "CHANGE REFERENCE DATA",
    spec=SPEC_PIN,
    purpose="After VERIFY, a new PIN (P1 01): the old one refused (63C2), the new one 9000; changed back.",
)
def pin_change(context: FlowContext) -> None:
    opened = full(context)
    pin = context.variable("EID_PIN").decode("ascii")
    new = "24681357" if pin != "24681357" else "13572468"
    change = opened.sw(CommandAPDU(0x00, 0x24, 0x01, 0x03, new.encode("ascii")))
    expect(context, "CHANGE REFERENCE DATA", 0x9000, change)
    try:
        expect(context, "VERIFY old PIN", 0x63C2, sw_of(lambda: opened.eac.verify_pin(pin)))
        expect(context, "VERIFY new PIN", 0x9000, sw_of(lambda: opened.eac.verify_pin(new)))
    finally:
        opened.sw(CommandAPDU(0x00, 0x24, 0x01, 0x03, pin.encode("ascii")))
    expect(context, "VERIFY the PIN changed back", 0x9000, sw_of(lambda: opened.eac.verify_pin(pin)))


@eac_test(
    "EAC_PIN_7",
    "PIN management outside secure messaging",
    spec=SPEC_PIN,
    purpose="CHANGE REFERENCE DATA and RESET RETRY COUNTER in plain: 6982 each.",
)
def pin_management_plain(context: FlowContext) -> None:
    context.connection.reset()
    context.connection.transmit(CommandAPDU(0x00, 0xA4, 0x04, 0x0C, EMRTD_AID).encode())
    for name, command in (
        ("CHANGE REFERENCE DATA", CommandAPDU(0x00, 0x24, 0x01, 0x03, b"24681357")),
        ("RESET RETRY COUNTER", CommandAPDU(0x00, 0x2C, 0x01, 0x03, context.variable("EID_PUK"))),
    ):
        response = context.connection.transmit(command.encode())
        expect(context, f"plain {name}", 0x6982, int.from_bytes(response[-2:], "big"))


@eac_test(
    "EAC_PIN_8",
    "PIN before TA",
    spec=SPEC_PIN,
    purpose="VERIFY after PACE alone: the PIN is accepted but DG3 stays closed without TA (6982).",
)
def pin_without_ta(context: FlowContext) -> None:
    opened = open_chip(context, "at-private")
    pin = context.variable("EID_PIN").decode("ascii")
    sw_of(lambda: opened.eac.verify_pin(pin))
    expect(context, "READ DG3", 0x6982, sw_of(lambda: opened.eac.read_zone((3,))))


# -- PIN management by an authorized terminal (TR-03110-3 Table C.4, bit 5) ------------------------

SPEC_PIN_MANAGEMENT = "BSI TR-03110-3 Table C.4 (PIN management, bit 5); ISO/IEC 7816-4:2020 §11.5.7, §11.5.10"
PIN_STATUS = CommandAPDU(0x00, 0x20, 0x00, 0x03)
UNBLOCK = CommandAPDU(0x00, 0x2C, 0x03, 0x03)  # RESET RETRY COUNTER, no data: the counter alone


def other_pin(pin: str) -> str:
    return "24681357" if pin != "24681357" else "13572468"


def reset_pin(pin: str) -> CommandAPDU:
    """RESET RETRY COUNTER P1 02: a new PIN without the PUK (needs the PIN-management right)."""
    return CommandAPDU(0x00, 0x2C, 0x02, 0x03, pin.encode("ascii"))


def change_pin(pin: str) -> CommandAPDU:
    """CHANGE REFERENCE DATA P1 01: the new PIN alone (after VERIFY, or with the right)."""
    return CommandAPDU(0x00, 0x24, 0x01, 0x03, pin.encode("ascii"))


def restore(context: FlowContext, opened: Opened) -> None:
    """The holder's way back, whatever happened: RESET RETRY COUNTER P1 00 with PUK || PIN."""
    pin = context.variable("EID_PIN")
    opened.sw(CommandAPDU(0x00, 0x2C, 0x00, 0x03, context.variable("EID_PUK") + pin))


@eac_test(
    "EAC_PIN_9",
    "Unblock without the PUK needs the PIN-management right",
    spec=SPEC_PIN_MANAGEMENT,
    purpose="at-household (no PIN-management right), after a wrong PIN (63C2): RESET RETRY COUNTER P1 03 "
    "answers 6982 and the counter stays at 2 (VERIFY status 63C2).",
)
def pin_unblock_without_right(context: FlowContext) -> None:
    opened = full(context, "at-household", pin=False)
    pin = context.variable("EID_PIN").decode("ascii")
    try:
        expect(context, "VERIFY wrong PIN", 0x63C2, sw_of(lambda: opened.eac.verify_pin(wrong_pin(pin))))
        expect(context, "RESET RETRY COUNTER P1 03", 0x6982, opened.sw(UNBLOCK))
        expect(context, "VERIFY status", 0x63C2, opened.sw(PIN_STATUS))
    finally:
        restore(context, opened)
    expect(context, "VERIFY right PIN", 0x9000, sw_of(lambda: opened.eac.verify_pin(pin)))


@eac_test(
    "EAC_PIN_10",
    "Unblock without the PUK with the PIN-management right",
    spec=SPEC_PIN_MANAGEMENT,
    purpose="at-private (PIN-management right): the PIN blocked by three wrong tries (63C2, 63C1, 6983), "
    "RESET RETRY COUNTER P1 03 without data answers 9000, the counter is back at 3 (VERIFY status 63C3) and the "
    "PIN verifies.",
    destructive=True,
)
def pin_unblock_with_right(context: FlowContext) -> None:
    opened = full(context, pin=False)
    pin = context.variable("EID_PIN").decode("ascii")
    try:
        for expected in (0x63C2, 0x63C1, 0x6983):
            expect(context, "VERIFY wrong PIN", expected, sw_of(lambda: opened.eac.verify_pin(wrong_pin(pin))))
        expect(context, "RESET RETRY COUNTER P1 03", 0x9000, opened.sw(UNBLOCK))
        expect(context, "VERIFY status", 0x63C3, opened.sw(PIN_STATUS))
        expect(context, "VERIFY right PIN", 0x9000, sw_of(lambda: opened.eac.verify_pin(pin)))
    finally:
        restore(context, opened)


def new_pin_refused_without_right(context: FlowContext, what: str, command: Callable[[str], CommandAPDU]) -> None:
    """at-household, no VERIFY: ``command(new PIN)`` answers 6982, the new PIN is refused
    (63C2), the old one still verifies."""
    opened = full(context, "at-household", pin=False)
    pin = context.variable("EID_PIN").decode("ascii")
    new = other_pin(pin)
    try:
        expect(context, what, 0x6982, opened.sw(command(new)))
        expect(context, "VERIFY the new PIN", 0x63C2, sw_of(lambda: opened.eac.verify_pin(new)))
        expect(context, "VERIFY the old PIN", 0x9000, sw_of(lambda: opened.eac.verify_pin(pin)))
    finally:
        restore(context, opened)


def new_pin_set_with_right(context: FlowContext, what: str, command: Callable[[str], CommandAPDU]) -> None:
    """at-private, no VERIFY: ``command(new PIN)`` answers 9000, the old PIN is refused (63C2),
    the new one verifies; set back the same way."""
    opened = full(context, pin=False)
    pin = context.variable("EID_PIN").decode("ascii")
    new = other_pin(pin)
    try:
        expect(context, what, 0x9000, opened.sw(command(new)))
        expect(context, "VERIFY the old PIN", 0x63C2, sw_of(lambda: opened.eac.verify_pin(pin)))
        expect(context, "VERIFY the new PIN", 0x9000, sw_of(lambda: opened.eac.verify_pin(new)))
        expect(context, f"{what} back", 0x9000, opened.sw(command(pin)))
        expect(context, "VERIFY the PIN set back", 0x9000, sw_of(lambda: opened.eac.verify_pin(pin)))
    finally:
        restore(context, opened)


@eac_test(
    "EAC_PIN_11",
    "A new PIN without the PUK needs the PIN-management right",
    spec=SPEC_PIN_MANAGEMENT,
    purpose="at-household: RESET RETRY COUNTER P1 02 with a new PIN answers 6982; the new PIN is refused (63C2), "
    "the old one still verifies.",
)
def pin_reset_without_right(context: FlowContext) -> None:
    new_pin_refused_without_right(context, "RESET RETRY COUNTER P1 02", reset_pin)


@eac_test(
    "EAC_PIN_12",
    "A new PIN without the PUK with the PIN-management right",
    spec=SPEC_PIN_MANAGEMENT,
    purpose="at-private: RESET RETRY COUNTER P1 02 with a new PIN answers 9000; the old PIN is refused (63C2), the "
    "new one verifies; set back the same way.",
)
def pin_reset_with_right(context: FlowContext) -> None:
    new_pin_set_with_right(context, "RESET RETRY COUNTER P1 02", reset_pin)


@eac_test(
    "EAC_PIN_13",
    "CHANGE REFERENCE DATA without VERIFY needs the PIN-management right",
    spec=SPEC_PIN_MANAGEMENT,
    purpose="at-household, no VERIFY: CHANGE REFERENCE DATA P1 01 with a new PIN answers 6982; the new PIN is "
    "refused (63C2), the old one still verifies.",
)
def pin_change_without_right(context: FlowContext) -> None:
    new_pin_refused_without_right(context, "CHANGE REFERENCE DATA P1 01", change_pin)


@eac_test(
    "EAC_PIN_14",
    "CHANGE REFERENCE DATA without VERIFY with the PIN-management right",
    spec=SPEC_PIN_MANAGEMENT,
    purpose="at-private, no VERIFY: CHANGE REFERENCE DATA P1 01 with a new PIN answers 9000; the old PIN is "
    "refused (63C2), the new one verifies; changed back.",
)
def pin_change_with_right(context: FlowContext) -> None:
    new_pin_set_with_right(context, "CHANGE REFERENCE DATA P1 01", change_pin)

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

from eidemu.emulator.icao import ta
from eidemu.emulator.icao.lds import EMRTD_AID
from eidemu.emulator.icao.pace import PaceResult
from eidemu.emulator.iso7816.apdu import CommandAPDU
from eidemu.emulator.pki.eac import load_certificate, load_terminal
from eidemu.fixtures import fixture_path

from ..eid.channel import ChipError
from ..eid.eac import EacTerminal, ca_terminal_from_dg14, mse_set_dst, pso_verify_certificate
from ..eid.reader import AccessKey, InspectionSystem, choose_pace, pace_choices
from ..pythontests import CheckFailed, FlowContext, TestFunction, conformance_test

EAC_TOKENS = ("EID-EAC",)
SPEC_CVC = "BSI TR-03110-3 §2.5; TR-03105-5 (certificate validation)"
SPEC_TA = "BSI TR-03110-3 §B.11.4-§B.11.6"
SPEC_CA = "BSI TR-03110-2 §3.4"
SPEC_PIN = "ISO/IEC 7816-4:2020 §11.5; docs/eid.md"
SPEC_ZONE = "BSI TR-03110-3 §C.4; docs/eid.md"
EAC_DIR = fixture_path("pki", "eac")


def eac_test(test_id: str, title: str, *, spec: str, purpose: str) -> Callable[[TestFunction], TestFunction]:
    return conformance_test(test_id, title, spec=spec, purpose=purpose, tokens=EAC_TOKENS, category="eac")


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
    "EAC_CVC_4", "Unknown CVCA", spec=SPEC_CVC, purpose="MSE:Set DST naming a CVCA the chip does not trust: 6A88."
)
def cvc_unknown_cvca(context: FlowContext) -> None:
    opened = open_chip(context, "at-private")
    dv2 = load_certificate(EAC_DIR, "dv-domestic-2")
    expect(context, "MSE:Set DST TWCVCA00002 before the link certificate", 0x6A88, opened.sw(mse_set_dst(dv2.car)))


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

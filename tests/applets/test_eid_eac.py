"""The eID application's Extended Access Control in-process: TA v2, CA v2, the holder PIN and
the zones (BSI TR-03110-3 §B.11; docs/eid.md "Extended access control and the zones")."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os

import pytest

from eidemu.conformance.connection import InProcessConnection
from eidemu.conformance.eid.channel import ChipError
from eidemu.conformance.eid.eac import EacTerminal, ca_terminal_from_dg14, mse_set_dst, pso_verify_certificate
from eidemu.conformance.eid.reader import AccessKey, InspectionSystem, choose_pace, pace_choices
from eidemu.emulator.applets.eid import EidApplication
from eidemu.emulator.cardos.card import Card
from eidemu.emulator.icao import ta
from eidemu.emulator.icao.ca import CaTerminal
from eidemu.emulator.icao.cvc import CvCertificate
from eidemu.emulator.icao.pace import PaceResult
from eidemu.emulator.iso7816.apdu import CommandAPDU
from eidemu.emulator.iso7816.tlv import TLV
from eidemu.emulator.pki.eac import load_certificate, load_terminal
from eidemu.emulator.pki.eac_zones import encode_zone, holder_pin, holder_puk, zone_texts
from eidemu.emulator.profile import PROFILE_DIR, load_profile
from eidemu.fixtures import fixture_path

CHIP = "g3-valid-1"
EAC = fixture_path("pki", "eac")
IDENTITY = __import__("json").loads(fixture_path("pki", "identities", CHIP, "identity.json").read_text("utf-8"))
PIN = holder_pin(IDENTITY["national_id"])
PUK = holder_puk(IDENTITY["national_id"])


@dataclasses.dataclass
class Session:
    card: Card
    reader: InspectionSystem
    pace: PaceResult
    dg14: bytes

    def send(self, cmd: CommandAPDU) -> int:
        try:
            return self.reader.channel.send(cmd, "test").sw
        except ChipError as exc:
            assert exc.sw is not None
            return exc.sw

    def eac(self, name: str) -> EacTerminal:
        found = ca_terminal_from_dg14(self.dg14, os.urandom)
        assert not isinstance(found, str)
        return EacTerminal(self.reader.channel, load_terminal(EAC, name), found[0])

    def app(self) -> EidApplication:
        app = next(a for a in self.card.applications.values() if isinstance(a, EidApplication))
        return app


@pytest.fixture
def session() -> Session:
    card = load_profile(PROFILE_DIR / f"eid-{CHIP}.yaml").build()
    reader = InspectionSystem(InProcessConnection(card))
    card_access = reader.read_card_access()
    assert card_access is not None
    choice = choose_pace(pace_choices(card_access))
    assert choice is not None
    can = load_profile(PROFILE_DIR / f"eid-{CHIP}.yaml")
    del can
    pace = reader.run_pace(choice, AccessKey(can=IDENTITY["card_number"][-6:]))
    reader.channel.select_application(bytes.fromhex("A0000002471001"))
    dg14 = reader.channel.read_file(0x0E, "DG14")
    return Session(card, reader, pace, dg14)


def _sw(call) -> int:  # type: ignore[no-untyped-def]
    try:
        call()
    except ChipError as exc:
        assert exc.sw is not None
        return exc.sw
    return 0x9000


def test_zone_data_is_deterministic_utf8() -> None:
    texts = zone_texts(IDENTITY)
    assert texts[7] == ("男",) if IDENTITY["sex"] == "M" else ("女",)
    assert encode_zone(7, 0x67, ("男",)) == bytes.fromhex("67058003E794B7")
    assert len(PIN) == 6 and PIN.isdigit() and len(PUK) == 8


def test_full_flow_ta_ca_pin_private_and_household(session: Session) -> None:
    eac = session.eac("at-private")
    eac.terminal_authentication(session.pace)
    eac.chip_authentication()
    household = eac.read_zone((13,))[13]
    assert household == encode_zone(13, 0x6D, zone_texts(IDENTITY)[13])
    assert _sw(lambda: eac.read_zone((3,))) == 0x6982  # PIN not yet verified
    eac.verify_pin(PIN)
    private = eac.read_zone((3, 4, 5, 6, 7, 9))
    assert private[3] == encode_zone(3, 0x63, zone_texts(IDENTITY)[3])
    assert private[7] == encode_zone(7, 0x67, ("男" if IDENTITY["sex"] == "M" else "女",))


def test_public_zone_with_the_can_alone(session: Session) -> None:
    assert session.reader.channel.read_file(0x01, "DG1")[:2] == b"\x61\x5d"
    assert session.send(CommandAPDU(0x00, 0xB0, 0x8D, 0x00, b"", 1)) == 0x6982  # DG13 needs TA
    assert session.send(CommandAPDU(0x00, 0xB0, 0x83, 0x00, b"", 1)) == 0x6982  # DG3 needs TA + PIN


def test_household_terminal_cannot_read_private(session: Session) -> None:
    eac = session.eac("at-household")
    eac.terminal_authentication(session.pace)
    eac.chip_authentication()
    eac.verify_pin(PIN)
    assert eac.read_zone((13,))[13][:1] == b"\x6d"
    assert _sw(lambda: eac.read_zone((3,))) == 0x6982


def test_rights_are_the_intersection_public_dv(session: Session) -> None:
    """at-public asks for the private zone but its DV grants only the public zone."""
    eac = session.eac("at-public")
    eac.terminal_authentication(session.pace)
    eac.chip_authentication()
    eac.verify_pin(PIN)
    assert _sw(lambda: eac.read_zone((13,))) == 0x6982
    assert _sw(lambda: eac.read_zone((3,))) == 0x6982


def test_expired_terminal_is_6300(session: Session) -> None:
    eac = session.eac("at-expired")
    dv, at = eac.terminal.chain
    eac.send_chain((dv,))
    assert session.send(mse_set_dst(at.car)) == 0x9000
    assert session.send(pso_verify_certificate(at)) == 0x6300


def test_wrong_signature_is_6300(session: Session) -> None:
    eac = session.eac("at-private")
    dv, at = eac.terminal.chain
    eac.send_chain((dv,))
    bad = dataclasses.replace(at, signature=bytes(len(at.signature)))
    session.send(mse_set_dst(at.car))
    assert session.send(pso_verify_certificate(bad)) == 0x6300


def test_unknown_cvca_is_6a88(session: Session) -> None:
    dv2 = load_certificate(EAC, "dv-domestic-2")  # under CVCA 2, not yet trusted
    assert session.send(mse_set_dst(dv2.car)) == 0x6A88
    assert session.send(pso_verify_certificate(dv2)) == 0x6985  # no MSE:Set DST in force


def test_wrong_role_order_is_6300(session: Session) -> None:
    at = load_certificate(EAC, "at-private")
    session.send(mse_set_dst("TWCVCA00001"))
    resigned = dataclasses.replace(at, car="TWCVCA00001")  # a terminal straight under the CVCA
    assert session.send(pso_verify_certificate(resigned)) == 0x6300


def test_date_update_from_domestic_dv(session: Session) -> None:
    app = session.app()
    before = app.current_date
    dv = load_certificate(EAC, "dv-domestic")
    session.send(mse_set_dst(dv.car))
    assert session.send(pso_verify_certificate(dv)) == 0x9000
    assert before < app.current_date == dv.effective
    at = load_certificate(EAC, "at-household")
    session.send(mse_set_dst(at.car))
    assert session.send(pso_verify_certificate(at)) == 0x9000
    assert app.current_date == at.effective


def test_foreign_dv_does_not_update_the_date(session: Session) -> None:
    app = session.app()
    before = app.current_date
    eac = session.eac("at-public")
    eac.send_chain()
    assert app.current_date == before


def test_link_certificate_then_new_chain(session: Session) -> None:
    app = session.app()
    assert [p.chr for p in app.trust_points][:1] == ["TWCVCA00001"]
    eac = session.eac("at-private-2")
    assert [c.chr for c in eac.terminal.chain] == ["TWCVCA00002", "TWDVDOM00002", "TWATPRIV0002"]
    eac.terminal_authentication(session.pace)
    assert "TWCVCA00002" in [p.chr for p in app.trust_points]
    eac.chip_authentication()
    eac.verify_pin(PIN)
    assert eac.read_zone((4,))[4][:1] == b"\x76"


def test_rsa_chain(session: Session) -> None:
    eac = session.eac("at-rsa")
    eac.terminal_authentication(session.pace)
    eac.chip_authentication()
    eac.verify_pin(PIN)
    assert eac.read_zone((5,))[5][:1] == b"\x65"


def test_inspection_system_gets_no_private_zone_beyond_dg3_dg4(session: Session) -> None:
    eac = session.eac("is-1")
    eac.terminal_authentication(session.pace)
    eac.chip_authentication()
    eac.verify_pin(PIN)
    assert eac.read_zone((3,))[3][:1] == b"\x63"
    assert _sw(lambda: eac.read_zone((5,))) == 0x6982


def test_ta_signature_over_the_wrong_id_picc_is_6300(session: Session) -> None:
    eac = session.eac("at-private")
    eac.send_chain()
    compressed = eac.ca.compressed_ephemeral_public_key()
    mse = ta.MseSetAtTa(eac.terminal.algorithm, eac.terminal.certificate.chr, compressed)
    assert session.send(CommandAPDU(0x00, 0x22, 0x81, 0xA4, mse.encode())) == 0x9000
    assert session.send(CommandAPDU(0x00, 0x82, 0x00, 0x00, bytes(64))) == 0x6985  # no challenge yet
    assert session.send(CommandAPDU(0x00, 0x22, 0x81, 0xA4, mse.encode())) == 0x9000
    challenge = session.reader.channel.send(CommandAPDU(0x00, 0x84, 0x00, 0x00, b"", 8), "GET CHALLENGE").data
    sig = ta.terminal_sign(eac.terminal.key, eac.terminal.algorithm, bytes(32), challenge, compressed)
    assert session.send(CommandAPDU(0x00, 0x82, 0x00, 0x00, sig)) == 0x6300
    assert session.send(CommandAPDU(0x00, 0x22, 0x81, 0xA4, TLV(0x80, b"\x00").encode())) == 0x6A80
    unknown = ta.MseSetAtTa(eac.terminal.algorithm, "TWNOBODY0001", compressed)
    assert session.send(CommandAPDU(0x00, 0x22, 0x81, 0xA4, unknown.encode())) == 0x6A88


def test_ca_v2_needs_the_key_ta_announced(session: Session) -> None:
    eac = session.eac("at-private")
    eac.terminal_authentication(session.pace)
    other = CaTerminal(eac.ca.protocol.oid, 13, b"\x04" + bytes(64))
    session.send(CommandAPDU(0x00, 0x22, 0x41, 0xA4, eac.ca.mse_set_at_data()))
    data = other.general_authenticate_data().encode()
    assert session.send(CommandAPDU(0x00, 0x86, 0x00, 0x00, data, 256)) == 0x6A80


def test_pin_needs_secure_messaging() -> None:
    card = load_profile(PROFILE_DIR / f"eid-{CHIP}.yaml").build()
    assert card.transmit(bytes.fromhex("0020000306") + PIN.encode()) == b"\x69\x82"


def test_pin_counter_block_and_unblock(session: Session) -> None:
    eac = session.eac("at-private")
    eac.terminal_authentication(session.pace)
    eac.chip_authentication()
    wrong = "000000" if PIN != "000000" else "111111"
    assert _sw(lambda: eac.verify_pin(wrong)) == 0x63C2
    assert session.send(CommandAPDU(0x00, 0x20, 0x00, 0x03)) == 0x63C2  # status, no try used
    assert _sw(lambda: eac.verify_pin(wrong)) == 0x63C1
    assert _sw(lambda: eac.verify_pin(wrong)) == 0x6983
    assert _sw(lambda: eac.verify_pin(PIN)) == 0x6983  # blocked: even the right PIN
    assert _sw(lambda: eac.read_zone((3,))) == 0x6982
    # RESET RETRY COUNTER P1 00: PUK || new PIN (ISO/IEC 7816-4:2020 §11.5.10)
    assert session.send(CommandAPDU(0x00, 0x2C, 0x00, 0x03, PUK.encode() + b"2468135")) == 0x9000
    assert _sw(lambda: eac.verify_pin(PIN)) == 0x63C2
    eac.verify_pin("2468135")
    assert eac.read_zone((3,))[3][:1] == b"\x63"


def test_pin_counter_persisted_before_comparison(session: Session) -> None:
    pin = session.card.pins[0x03]
    seen: list[int] = []
    original = session.card.persist
    session.card.persist = lambda: (seen.append(pin.remaining), original())[1]  # type: ignore[method-assign]
    eac = session.eac("at-private")
    assert _sw(lambda: eac.verify_pin("999999" if PIN != "999999" else "888888")) == 0x63C2
    assert seen[0] == 2


def test_change_reference_data(session: Session) -> None:
    eac = session.eac("at-private")
    eac.terminal_authentication(session.pace)
    eac.chip_authentication()
    assert session.send(CommandAPDU(0x00, 0x24, 0x00, 0x03, PIN.encode() + b"13572468")) == 0x9000
    assert _sw(lambda: eac.verify_pin(PIN)) == 0x63C2
    eac.verify_pin("13572468")
    assert session.send(CommandAPDU(0x00, 0x24, 0x00, 0x03, b"13572468" + b"12")) == 0x6A80  # too short


def _ta_ca(session: Session, terminal: str) -> EacTerminal:
    eac = session.eac(terminal)
    eac.terminal_authentication(session.pace)
    eac.chip_authentication()
    return eac


def test_pin_management_right_sets_a_new_pin_without_the_old_one(session: Session) -> None:
    """CHANGE REFERENCE DATA P1 01 without VERIFY: at-private has the PIN-management right
    (TR-03110-3 Table C.4, bit 5); the wrong try before it still counts."""
    eac = _ta_ca(session, "at-private")
    wrong = "000000" if PIN != "000000" else "111111"
    assert _sw(lambda: eac.verify_pin(wrong)) == 0x63C2
    assert session.send(CommandAPDU(0x00, 0x24, 0x01, 0x03, b"13572468")) == 0x9000
    assert session.card.pins[0x03].remaining == 2
    assert session.send(CommandAPDU(0x00, 0x24, 0x01, 0x03, b"12345")) == 0x6A80  # 5 digits: too short
    assert _sw(lambda: eac.verify_pin(PIN)) == 0x63C1
    eac.verify_pin("13572468")
    assert eac.read_zone((3,))[3][:1] == b"\x63"


def test_pin_management_right_resets_and_unblocks_without_the_puk(session: Session) -> None:
    """RESET RETRY COUNTER P1 03 (no data) and P1 02 (new PIN) with the right; P1 01 with the
    PUK stays the holder's way (ISO/IEC 7816-4:2020 §11.5.10)."""
    eac = _ta_ca(session, "at-private")
    wrong = "000000" if PIN != "000000" else "111111"
    for expected in (0x63C2, 0x63C1, 0x6983):
        assert _sw(lambda: eac.verify_pin(wrong)) == expected
    assert session.send(CommandAPDU(0x00, 0x2C, 0x03, 0x03, b"1")) == 0x6700  # P1 03 takes no data
    assert session.send(CommandAPDU(0x00, 0x2C, 0x03, 0x03)) == 0x9000
    assert session.send(CommandAPDU(0x00, 0x20, 0x00, 0x03)) == 0x63C3
    assert session.send(CommandAPDU(0x00, 0x2C, 0x02, 0x03, b"2468135")) == 0x9000
    assert _sw(lambda: eac.verify_pin(PIN)) == 0x63C2
    eac.verify_pin("2468135")
    assert session.card.pins[0x03].remaining == 3


@pytest.mark.parametrize("terminal", ["at-household", "at-public"])
def test_without_the_pin_management_right_6982(session: Session, terminal: str) -> None:
    """Neither at-household nor at-public (nor its DV) has the PIN-management right."""
    _ta_ca(session, terminal)
    for command in (
        CommandAPDU(0x00, 0x24, 0x01, 0x03, b"13572468"),
        CommandAPDU(0x00, 0x2C, 0x02, 0x03, b"13572468"),
        CommandAPDU(0x00, 0x2C, 0x03, 0x03),
    ):
        assert session.send(command) == 0x6982, command
    pin = session.card.pins[0x03]
    assert pin.value == PIN.encode() and pin.remaining == 3
    # the holder's ways stay open: the old PIN (P1 00) and the PUK (RESET RETRY COUNTER P1 01)
    assert session.send(CommandAPDU(0x00, 0x2C, 0x01, 0x03, PUK.encode())) == 0x9000
    assert session.send(CommandAPDU(0x00, 0x24, 0x00, 0x03, PIN.encode() + b"13572468")) == 0x9000
    assert pin.value == b"13572468"


def test_pin_management_right_without_pace_session_is_6982(session: Session) -> None:
    """The right lives as long as the session: after a plain command, PIN management is refused."""
    _ta_ca(session, "at-private")
    card = session.card
    assert card.transmit(bytes.fromhex("00A4040C07A0000002471001")) == b"\x90\x00"  # plain: the session ends
    assert card.transmit(bytes.fromhex("002C0303")) == b"\x69\x82"
    assert card.transmit(bytes.fromhex("0024010308") + b"13572468") == b"\x69\x82"


def test_without_pace_ta_is_6982() -> None:
    card = load_profile(PROFILE_DIR / f"eid-{CHIP}.yaml").build()
    assert card.transmit(mse_set_dst("TWCVCA00001").encode()) == b"\x69\x82"


def test_options_refuse_a_non_cvca_trust_point(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from eidemu.emulator.applets.eid import EacOptions

    with pytest.raises(Exception, match="ISO 8601"):
        EacOptions((EAC / "cvca-tw-1.cvcert",), "not a date")
    assert isinstance(CvCertificate.parse((EAC / "cvca-tw-1.cvcert").read_bytes()), CvCertificate)
    assert dt.date.fromisoformat(EacOptions((EAC / "cvca-tw-1.cvcert",), "2026-01-01").current_date)

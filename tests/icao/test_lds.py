"""The LDS codec (emulator/icao/lds.py, asn1.py): exact encodings, round trips and refusals.

Fixture-level checks with independent decoders (openssl) are in tests/pki/test_eid_pki.py.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable

import pytest
from asn1crypto import core
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from eidemu.emulator.icao import asn1, lds

# ICAO 9303-5 Appendix A, the TD1 specimen (Anna Maria Eriksson, Utopia).
SPECIMEN_TD1 = (
    "I<UTOD231458907<<<<<<<<<<<<<<<",
    "7408122F1204159UTO<<<<<<<<<<<6",
    "ERIKSSON<<ANNA<MARIA<<<<<<<<<<",
)


def specimen() -> lds.Td1Mrz:
    return lds.Td1Mrz("I", "UTO", "D23145890", "740812", "F", "120415", "UTO", "ERIKSSON", "ANNA MARIA")


def test_td1_specimen_byte_for_byte() -> None:
    assert specimen().lines() == SPECIMEN_TD1
    assert lds.Td1Mrz.parse("".join(SPECIMEN_TD1)) == specimen()
    assert specimen().mrz_information == "D23145890774081221204159"


@pytest.mark.parametrize(
    ("field", "digit"),
    [("D23145890", "7"), ("740812", "2"), ("120415", "9"), ("L898902C<", "3"), ("<<<<<<<<<", "0")],
)
def test_check_digit(field: str, digit: str) -> None:
    assert lds.mrz_check_digit(field) == digit


def test_long_document_number_goes_into_optional_data() -> None:
    """9303-5 §4.2, note j: 9 characters, ``<`` as check digit, then the rest, its check digit and a filler."""
    mrz = lds.Td1Mrz(
        "ID", "TWN", "TP46375051237517", "890123", "M", "360101", "TWN", "CHEN", "CHIH MING", "", "A123456789"
    )
    assert mrz.lines() == (
        "IDTWNTP4637505<12375170<<<<<<<",
        "8901239M3601017TWNA123456789<9",
        "CHEN<<CHIH<MING<<<<<<<<<<<<<<<",
    )
    assert lds.Td1Mrz.parse(mrz.text()) == mrz
    assert mrz.mrz_information == "TP46375051237517089012393601017"


@pytest.mark.parametrize(("position", "what"), [(14, "document number"), (36, "date of birth"), (59, "composite")])
def test_wrong_check_digit_refused(position: int, what: str) -> None:
    text = list(specimen().text())
    text[position] = "0" if text[position] != "0" else "1"
    with pytest.raises(lds.LdsError, match=what):
        lds.Td1Mrz.parse("".join(text))


def test_mrz_refuses_non_mrz_characters() -> None:
    with pytest.raises(lds.LdsError, match="not allowed"):
        lds.Td1Mrz("ID", "TWN", "AB12", "890123", "M", "360101", "TWN", "陳", "").lines()


def test_ef_com_exact_bytes() -> None:
    com = lds.EfCom((0x61, 0x75, 0x6B, 0x6C, 0x6E, 0x6F))
    expected = bytes.fromhex("60 18 5F01 04 30313037 5F36 06 303430303030 5C 06 61756B6C6E6F")
    assert com.encode() == expected
    assert lds.EfCom.parse(expected) == com


def test_dg1_exact_bytes() -> None:
    encoded = lds.Dg1(specimen()).encode()
    assert encoded[:5] == bytes.fromhex("61 5D 5F1F 5A")
    assert encoded[5:] == "".join(SPECIMEN_TD1).encode("ascii")
    assert lds.Dg1.parse(encoded).mrz == specimen()


def test_dg11_dg12_utf8_round_trip() -> None:
    dg11 = lds.Dg11("陳志明", "A123456789", "臺北市", "19890123")
    encoded = dg11.encode()
    assert encoded.startswith(bytes.fromhex("6B 3A 5C 08 5F0E 5F10 5F11 5F2B 5F0E 09") + "陳志明".encode())
    assert lds.Dg11.parse(encoded) == dg11
    dg12 = lds.Dg12("內政部 TEST", "20260101")
    assert (
        dg12.encode()
        == bytes.fromhex("6C 22 5C 04 5F19 5F26 5F19 0E")
        + "內政部 TEST".encode()
        + bytes.fromhex("5F26 08")
        + b"20260101"
    )
    assert lds.Dg12.parse(dg12.encode()) == dg12


def test_dg2_structure_and_round_trip() -> None:
    face = lds.FaceImage(b"\xff\xd8fake-jpeg\xff\xd9", 240, 320, gender=2)
    encoded = lds.Dg2((face,)).encode()
    assert encoded[:1] == b"\x75"
    header = bytes.fromhex("A1 0F 80 02 0101 81 01 02 87 02 0101 88 02 0008")
    assert header in encoded
    record = face.encode()
    assert record[:14] == b"FAC\x00010\x00" + (14 + 20 + 12 + 13).to_bytes(4, "big") + b"\x00\x01"
    assert record[14:18] == (20 + 12 + 13).to_bytes(4, "big")
    assert record[20] == 2  # gender female
    assert record[34:46] == bytes.fromhex("01 00 00F0 0140 01 00 0000 0000")
    assert lds.Dg2.parse(encoded) == lds.Dg2((face,))


def test_dg2_count_mismatch_refused() -> None:
    encoded = bytearray(lds.Dg2((lds.FaceImage(b"x", 1, 1),)).encode())
    position = encoded.index(bytes.fromhex("02 01 01"))
    encoded[position + 2] = 2
    with pytest.raises(lds.LdsError, match="announces 2 instances"):
        lds.Dg2.parse(bytes(encoded))


def test_wrong_template_tag_refused() -> None:
    with pytest.raises(lds.LdsError, match="template tag 61, expected 6B"):
        lds.Dg11.parse(lds.Dg1(specimen()).encode())
    with pytest.raises(lds.LdsError, match="DG1"):
        lds.Dg1.parse(b"\x61\x05\x5f")


def test_pace_info_exact_der() -> None:
    """id-PACE-ECDH-GM-AES-CBC-CMAC-128 = 0.4.0.127.0.7.2.2.4.2.2, version 2, parameter 13 (9303-11 §9.2)."""
    info = lds.pace_info("ECDH-GM", "AES-128", 13)
    assert info.dump() == bytes.fromhex("3012060A04007F00070202040202020102020 10D".replace(" ", ""))
    card_access = lds.SecurityInfoSet((info,))
    assert card_access.encode() == bytes.fromhex("3114") + info.dump()
    parsed = lds.SecurityInfoSet.parse(card_access.encode())
    assert isinstance(parsed.infos[0], asn1.PACEInfo)
    assert parsed.infos[0]["parameter_id"].native == 13


def test_security_infos_typed_and_sorted() -> None:
    key = ec.generate_private_key(ec.BrainpoolP256R1())
    infos = (
        lds.pace_info("ECDH-CAM", "AES-128", 13),
        lds.chip_authentication_info("ECDH", "AES-128"),
        lds.chip_authentication_public_key_info(key.public_key()),
        lds.active_authentication_info(),
        asn1.TerminalAuthenticationInfo({"protocol": asn1.ID_TA, "version": 1}),
        asn1.PACEDomainParameterInfo(
            {"protocol": asn1.ID_PACE_ECDH_GM, "domain_parameter": {"algorithm": "1.2.3"}, "parameter_id": 1}
        ),
    )
    dg14 = lds.SecurityInfoSet(infos, 0x6E).encode()
    assert dg14[:1] == b"\x6e"
    parsed = lds.SecurityInfoSet.parse(dg14, 0x6E)
    kinds = {type(i) for i in parsed.infos}
    assert kinds == {type(i) for i in infos}
    der = asn1.encode_security_infos(infos)
    children = [bytes(c.dump()) for c in asn1.SecurityInfos.load(der)]
    assert children == sorted(children)
    pk = parsed.of_type(asn1.ChipAuthenticationPublicKeyInfo)[0]
    point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    assert pk["chip_authentication_public_key"]["public_key"].native == point


def test_unknown_security_info_kept_generic() -> None:
    unknown = asn1.SecurityInfo({"protocol": "1.2.3.4", "required_data": core.Integer(5)})
    parsed = lds.SecurityInfoSet.parse(asn1.encode_security_infos([unknown]))
    assert type(parsed.infos[0]) is asn1.SecurityInfo


def test_malformed_security_infos_refused() -> None:
    with pytest.raises(lds.LdsError, match="SecurityInfos"):
        lds.SecurityInfoSet.parse(bytes.fromhex("3105300306012a"))


def _self_signed(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lds unit test TEST")])
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1234)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_sod_round_trip_and_signature(kind: str) -> None:
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = (
        ec.generate_private_key(ec.BrainpoolP256R1()) if kind == "ec" else rsa.generate_private_key(65537, 2048)
    )
    cert = _self_signed(key)
    groups = {1: lds.Dg1(specimen()).encode(), 11: lds.Dg11("陳志明").encode()}
    sod = lds.Sod.sign(groups, cert, key)
    encoded = sod.encode()
    assert encoded[:1] == b"\x77"
    view = lds.Sod.parse(encoded).view()
    assert view.content_type == asn1.ID_LDS_SECURITY_OBJECT
    assert view.signer_serial == 1234
    assert view.certificates == (cert.public_bytes(serialization.Encoding.DER),)
    assert view.message_digest == hashlib.sha256(view.content).digest()
    assert view.signature_algorithm == ("sha256_ecdsa" if kind == "ec" else "sha256_rsa")
    security_object = lds.Sod.parse(encoded).security_object()
    assert security_object.hashes == {n: hashlib.sha256(d).digest() for n, d in groups.items()}
    assert lds.LdsSecurityObject.parse(security_object.encode()) == security_object
    public = cert.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        public.verify(view.signature, view.signed_attributes, ec.ECDSA(hashes.SHA256()))
    else:
        assert isinstance(public, rsa.RSAPublicKey)
        public.verify(view.signature, view.signed_attributes, padding.PKCS1v15(), hashes.SHA256())


def test_lds_security_object_exact_der() -> None:
    """version 0, sha256 (with NULL parameters), one DataGroupHash (9303-10 §4.6.2)."""
    obj = lds.LdsSecurityObject("sha256", {1: bytes(32)})
    assert obj.encode() == bytes.fromhex(
        "303b 020100 300d 0609608648016503040201 0500 3027 3025 020101 0420".replace(" ", "")
    ) + bytes(32)


def test_master_list_round_trip() -> None:
    key = ec.generate_private_key(ec.BrainpoolP256R1())
    cert = _self_signed(key)
    der = lds.build_master_list([cert], cert, key)
    assert lds.parse_master_list(der) == [cert.public_bytes(serialization.Encoding.DER)]
    with pytest.raises(lds.LdsError, match="master list eContentType"):
        lds.parse_master_list(lds.build_card_security([lds.pace_info("ECDH-GM", "AES-128", 13)], cert, key))


def test_signed_data_garbage_refused() -> None:
    with pytest.raises(lds.LdsError, match="CMS SignedData"):
        lds.SignedDataView.parse(b"\x30\x03\x02\x01\x00")


def test_lds_files_and_sfis() -> None:
    assert lds.LdsFile.COM == 0x011E and lds.LdsFile.COM.sfi == 0x1E
    assert lds.dg_file(14) == lds.LdsFile.DG14 == 0x010E
    assert lds.LdsFile.SOD.sfi == 0x1D and lds.CARD_SECURITY_FID == 0x011D
    assert lds.EMRTD_AID == bytes.fromhex("A0 00 00 02 47 10 01")


PARSERS = [
    lds.EfCom.parse,
    lds.Dg1.parse,
    lds.Dg2.parse,
    lds.Dg11.parse,
    lds.Dg12.parse,
    lds.Dg15.parse,
    lambda data: lds.SecurityInfoSet.parse(data, 0x6E),
    lds.SecurityInfoSet.parse,
    lambda data: lds.Sod.parse(data).security_object(),
    lds.parse_master_list,
    lds.FaceImage.parse,
]


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=80), parser=st.sampled_from(PARSERS))
def test_parsers_answer_garbage_with_lds_error(data: bytes, parser: Callable[[bytes], object]) -> None:
    """Bad input gets an LdsError with a message, never another exception."""
    try:
        parser(data)
    except lds.LdsError as exc:
        assert str(exc)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), parser=st.sampled_from(list(range(6))))
def test_parsers_answer_corrupted_files_with_lds_error(data: st.DataObject, parser: int) -> None:
    """A valid file with one byte changed or cut short decodes or fails as LdsError."""
    valid = [
        lds.EfCom((0x61, 0x75)).encode(),
        lds.Dg1(specimen()).encode(),
        lds.Dg2((lds.FaceImage(b"\xff\xd8jpeg\xff\xd9", 2, 2),)).encode(),
        lds.Dg11("陳志明", "A123456789", "臺北市", "19890123").encode(),
        lds.Dg12("內政部 TEST", "20260101").encode(),
        lds.SecurityInfoSet((lds.pace_info("ECDH-GM", "AES-128", 13),), 0x6E).encode(),
    ][parser]
    decode = [lds.EfCom.parse, lds.Dg1.parse, lds.Dg2.parse, lds.Dg11.parse, lds.Dg12.parse, PARSERS[6]][parser]
    position = data.draw(st.integers(0, len(valid) - 1))
    if data.draw(st.booleans()):
        corrupted = valid[:position]
    else:
        corrupted = valid[:position] + bytes((data.draw(st.integers(0, 255)),)) + valid[position + 1 :]
    try:
        decode(corrupted)
    except lds.LdsError as exc:
        assert str(exc)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_corrupted_sod_is_lds_error(data: st.DataObject) -> None:
    """One byte of an EF.SOD changed, or the file cut short: the security object decodes or fails as LdsError."""
    valid = _SIGNED_SOD
    position = data.draw(st.integers(0, len(valid) - 1))
    if data.draw(st.booleans()):
        corrupted = valid[:position]
    else:
        corrupted = valid[:position] + bytes((data.draw(st.integers(0, 255)),)) + valid[position + 1 :]
    try:
        lds.Sod.parse(corrupted).security_object()
    except lds.LdsError as exc:
        assert str(exc)


_SOD_KEY = ec.generate_private_key(ec.BrainpoolP256R1())
_SIGNED_SOD = lds.Sod.sign({1: lds.Dg1(specimen()).encode()}, _self_signed(_SOD_KEY), _SOD_KEY).encode()

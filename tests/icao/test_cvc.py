"""CV certificates (BSI TR-03110-3 Appendix C): encoding, round trips, chain validation, CHATs."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from eidemu.emulator.icao import cvc
from eidemu.emulator.icao.cvc import (
    ID_AT,
    ID_IS,
    ID_TA_ECDSA_SHA_256,
    ID_TA_RSA_V1_5_SHA_256,
    AtRight,
    ChainError,
    ChainFailure,
    Chat,
    CvcError,
    CvCertificate,
    CvPublicKey,
    Role,
    TrustPoint,
)

D = dt.date


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.BrainpoolP256R1())


def _chain() -> dict[str, object]:
    k_cvca, k_dv, k_at = _key(), _key(), _key()
    all_rights = (1 << 38) - 1
    cvca = CvCertificate.issue(
        k_cvca, ID_TA_ECDSA_SHA_256, car="TWCVCA00001", chr="TWCVCA00001",
        public_key=CvPublicKey.from_key(ID_TA_ECDSA_SHA_256, k_cvca.public_key(), domain_parameters=True),
        chat=Chat.of(ID_AT, Role.CVCA, all_rights), effective=D(2026, 1, 1), expiration=D(2029, 1, 1),
    )  # fmt: skip
    dv = CvCertificate.issue(
        k_cvca, ID_TA_ECDSA_SHA_256, car="TWCVCA00001", chr="TWDVDOM00001",
        public_key=CvPublicKey.from_key(ID_TA_ECDSA_SHA_256, k_dv.public_key(), domain_parameters=False),
        chat=Chat.of(ID_AT, Role.DV_DOMESTIC, [cvc.read_dg(3), cvc.read_dg(4), AtRight.PIN_MANAGEMENT]),
        effective=D(2026, 7, 1), expiration=D(2027, 7, 1),
    )  # fmt: skip
    at = CvCertificate.issue(
        k_dv, ID_TA_ECDSA_SHA_256, car="TWDVDOM00001", chr="TWAT0000001",
        public_key=CvPublicKey.from_key(ID_TA_ECDSA_SHA_256, k_at.public_key(), domain_parameters=False),
        chat=Chat.of(ID_AT, Role.TERMINAL, [cvc.read_dg(3), cvc.read_dg(13), AtRight.AGE_VERIFICATION]),
        effective=D(2026, 8, 1), expiration=D(2026, 9, 1),
    )  # fmt: skip
    return {"cvca": cvca, "dv": dv, "at": at, "k_at": k_at, "k_dv": k_dv, "k_cvca": k_cvca}


def test_date_is_unpacked_bcd() -> None:
    assert cvc.encode_date(D(2026, 12, 1)) == bytes.fromhex("020601020001")
    assert cvc.decode_date(bytes.fromhex("020601020001")) == D(2026, 12, 1)
    with pytest.raises(CvcError, match="six unpacked BCD digits"):
        cvc.decode_date(bytes.fromhex("02060102000A"))


def test_chat_encoding_and_rights() -> None:
    # TR-03110-3 Table C.4: read DG3 = bit 10, PIN management = bit 5, terminal role 00.
    chat = Chat.of(ID_AT, Role.TERMINAL, [cvc.read_dg(3), AtRight.PIN_MANAGEMENT])
    assert chat.encode() == bytes.fromhex("7F4C12060904007F000703010202530500000004 20".replace(" ", ""))
    assert Chat.parse(chat.encode()) == chat
    cvca = Chat.of(ID_AT, Role.CVCA, (1 << 38) - 1)
    assert cvca.encode()[-5:] == bytes.fromhex("FFFFFFFFFF")
    assert Chat.of(ID_IS, Role.TERMINAL, 3).encode()[-1:] == b"\x03"
    assert cvc.read_dg(21) == 28 and cvc.write_dg(17) == 37 and cvc.write_dg(21) == 33


def test_chat_intersection() -> None:
    a = Chat.of(ID_AT, Role.TERMINAL, [cvc.read_dg(3), cvc.read_dg(13), AtRight.PIN_MANAGEMENT])
    b = Chat.of(ID_AT, Role.DV_DOMESTIC, [cvc.read_dg(3), AtRight.PIN_MANAGEMENT, AtRight.AGE_VERIFICATION])
    both = a.restrict(b)
    assert both.role is Role.TERMINAL
    assert both.rights == (1 << 10) | (1 << 5)
    with pytest.raises(CvcError, match="does not match"):
        a.restrict(Chat.of(ID_IS, Role.TERMINAL, 3))


def test_certificate_round_trip_and_layout() -> None:
    c = _chain()
    for name in ("cvca", "dv", "at"):
        cert = c[name]
        assert isinstance(cert, CvCertificate)
        data = cert.encode()
        assert data[:2] == b"\x7f\x21"
        assert CvCertificate.parse(data) == cert
        assert CvCertificate.parse(data).encode() == data
    at = c["at"]
    assert isinstance(at, CvCertificate)
    body = at.body
    assert body.startswith(b"\x7f\x4e") and b"\x5f\x29\x01\x00\x42\x0cTWDVDOM00001" in body
    assert len(at.signature) == 64


def test_parse_rejects_malformed() -> None:
    with pytest.raises(CvcError, match="expected CV certificate 7F21"):
        CvCertificate.parse(bytes.fromhex("7F4E00"))
    with pytest.raises(CvcError, match="out of order"):
        CvCertificate.parse(bytes.fromhex("7F21097F4E035F2900 5F3700".replace(" ", "")))


def test_chain_verifies_intersects_and_updates_date() -> None:
    c = _chain()
    cvca, dv, at = c["cvca"], c["dv"], c["at"]
    assert isinstance(cvca, CvCertificate) and isinstance(dv, CvCertificate) and isinstance(at, CvCertificate)
    key, date, _ = cvc.verify_chain([dv, at], [TrustPoint.of(cvca)], D(2026, 6, 1))
    assert key.chr == "TWAT0000001"
    assert key.chat.rights == 1 << 10  # DG3 only: DG13 and age verification not in the DV
    assert date == D(2026, 8, 1)  # the terminal of a domestic DV is accurate


def test_chain_failures() -> None:
    c = _chain()
    cvca, dv, at = c["cvca"], c["dv"], c["at"]
    assert isinstance(cvca, CvCertificate) and isinstance(dv, CvCertificate) and isinstance(at, CvCertificate)
    tp = [TrustPoint.of(cvca)]
    with pytest.raises(ChainError) as exc:
        cvc.verify_chain([dv, at], tp, D(2026, 9, 2))
    assert exc.value.failure is ChainFailure.EXPIRED
    bad = CvCertificate(at.car, at.public_key, at.chr, at.chat, at.effective, at.expiration, bytes(64))
    with pytest.raises(ChainError) as exc:
        cvc.verify_chain([dv, bad], tp, D(2026, 6, 1))
    assert exc.value.failure is ChainFailure.BAD_SIGNATURE
    with pytest.raises(ChainError) as exc:
        cvc.verify_chain([at], tp, D(2026, 6, 1))
    assert exc.value.failure is ChainFailure.UNKNOWN_CAR
    with pytest.raises(ChainError) as exc:
        cvc.verify_chain([dv], tp, D(2026, 6, 1))
    assert exc.value.failure is ChainFailure.WRONG_ROLE


def test_link_certificate_updates_trust_point() -> None:
    c = _chain()
    cvca = c["cvca"]
    k_cvca = c["k_cvca"]
    assert isinstance(cvca, CvCertificate) and isinstance(k_cvca, ec.EllipticCurvePrivateKey)
    k2 = _key()
    link = CvCertificate.issue(
        k_cvca, ID_TA_ECDSA_SHA_256, car="TWCVCA00001", chr="TWCVCA00002",
        public_key=CvPublicKey.from_key(ID_TA_ECDSA_SHA_256, k2.public_key(), domain_parameters=True),
        chat=cvca.chat, effective=D(2027, 1, 1), expiration=D(2030, 1, 1),
    )  # fmt: skip
    assert link.is_link
    k_dv = _key()
    dv2 = CvCertificate.issue(
        k2, ID_TA_ECDSA_SHA_256, car="TWCVCA00002", chr="TWDVDOM00002",
        public_key=CvPublicKey.from_key(ID_TA_ECDSA_SHA_256, k_dv.public_key(), domain_parameters=False),
        chat=Chat.of(ID_AT, Role.DV_DOMESTIC, 1 << 10), effective=D(2027, 1, 1), expiration=D(2028, 1, 1),
    )  # fmt: skip
    k_at = _key()
    at2 = CvCertificate.issue(
        k_dv, ID_TA_ECDSA_SHA_256, car="TWDVDOM00002", chr="TWAT0000002",
        public_key=CvPublicKey.from_key(ID_TA_ECDSA_SHA_256, k_at.public_key(), domain_parameters=False),
        chat=Chat.of(ID_AT, Role.TERMINAL, 1 << 10), effective=D(2027, 1, 1), expiration=D(2027, 3, 1),
    )  # fmt: skip
    key, date, points = cvc.verify_chain([link, dv2, at2], [TrustPoint.of(cvca)], D(2026, 6, 1))
    assert [p.chr for p in points] == ["TWCVCA00001", "TWCVCA00002"]
    assert date == D(2027, 1, 1) and key.chr == "TWAT0000002"


def test_rsa_chain_v1_5_and_pss() -> None:
    k1 = rsa.generate_private_key(65537, 2048)
    for oid in (ID_TA_RSA_V1_5_SHA_256, cvc.ID_TA_RSA_PSS_SHA_256):
        cvca = CvCertificate.issue(
            k1, oid, car="TWCVCARSA01", chr="TWCVCARSA01",
            public_key=CvPublicKey.from_key(oid, k1.public_key(), domain_parameters=True),
            chat=Chat.of(ID_IS, Role.CVCA, 3), effective=D(2026, 1, 1), expiration=D(2029, 1, 1),
        )  # fmt: skip
        assert CvCertificate.parse(cvca.encode()) == cvca
        cvc.verify(k1.public_key(), oid, cvca.body, cvca.signature)
        with pytest.raises(cvc.AuthenticationFailed):
            cvc.verify(k1.public_key(), oid, cvca.body + b"x", cvca.signature)

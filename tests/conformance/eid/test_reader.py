"""The inspection system against the emulated eID chip, in process.

Every PACE parameter set the chip offers with both passwords, BAC, the holder data decoded
from the data groups, and broken variants that must fail exactly their own verdicts.
"""

from __future__ import annotations

import datetime as dt

import pytest

from eidemu.conformance.connection import open_card
from eidemu.conformance.eid import AccessKey, InspectionSystem, Verdict, read_chip
from eidemu.conformance.eid.reader import choose_pace, pace_choices
from eidemu.conformance.eid.report import failed_names
from eidemu.emulator.icao import oids

from .conftest import CAN, CHIPS, MRZ_INFORMATION

CHIP = CHIPS / "g2-valid-1"
CARD_ACCESS = (CHIP / "EF.CardAccess.bin").read_bytes()
PA_CHECKS = [
    "pa.master-list",
    "pa.sod-signature",
    "pa.dg-hash:DG1",
    "pa.dg-hash:DG2",
    "pa.dg-hash:DG11",
    "pa.dg-hash:DG12",
    "pa.dg-hash:DG14",
    "pa.dg-hash:DG15",
    "pa.ds-chain",
    "pa.ds-validity",
    "pa.ds-revocation",
    "pa.key-usage",
]
ALL_CHECKS = ["access", "read", *PA_CHECKS, "chip-authentication", "active-authentication"]


def inspect(uri: str = "emulator:eid-g2-valid-1", key: AccessKey | None = None, **options: object):
    connection = open_card(uri)
    try:
        return read_chip(connection, key or AccessKey(can=CAN), **options)
    finally:
        connection.close()


def test_the_default_read_passes_every_check_with_pace_cam():
    report = inspect()
    assert report.access == "PACE ECDH-CAM AES-128 brainpoolP256r1 (ID 13), CAN"
    assert [c.name for c in report.checks] == ALL_CHECKS
    assert [c.verdict for c in report.checks] == [Verdict.PASSED] * len(ALL_CHECKS)
    assert report.passed
    assert report.check("chip-authentication").reason == (
        "PACE-CAM: the chip authentication data matches EF.CardSecurity's key"
    )
    assert report.check("active-authentication").reason == "RSA-2048, ISO/IEC 9796-2 scheme 1, sha1"
    for name in ("EF.CardAccess", "EF.CardSecurity", "EF.COM", "EF.SOD"):
        assert report.files[name] == (CHIP / f"{name}.bin").read_bytes()
    for n in (1, 2, 11, 12, 14, 15):
        assert report.files[f"DG{n}"] == (CHIP / f"DG{n}.bin").read_bytes()


def test_holder_data_is_decoded_with_chinese_intact_and_the_face_extracted():
    report = inspect()
    holder = report.holder
    assert holder is not None
    assert (holder.document_code, holder.issuing_state, holder.document_number) == ("ID", "TWN", "TP46375051237517")
    assert (holder.primary_identifier, holder.secondary_identifier) == ("CHUNG", "PO TZU")
    assert (holder.date_of_birth, holder.sex, holder.date_of_expiry, holder.nationality) == (
        "000123",
        "F",
        "361010",
        "TWN",
    )
    assert holder.full_name == "鍾柏子"
    assert holder.personal_number == "X209679048" == holder.optional_data
    assert holder.place_of_birth == "澎湖縣"
    assert holder.full_date_of_birth == "20000123"
    assert (holder.issuing_authority, holder.date_of_issue) == ("內政部 TEST", "20261010")
    assert report.face is not None
    assert report.face.image == (CHIP / "face.jpg").read_bytes()
    assert report.face.image[:3] == b"\xff\xd8\xff"
    assert (report.face.format, report.face.width, report.face.height) == ("jpeg", 240, 320)


def test_choose_pace_prefers_the_chip_authentication_mapping_with_aes():
    choices = pace_choices(CARD_ACCESS)
    assert len(choices) == 8
    best = choose_pace(choices)
    assert best is not None
    assert (best.protocol.oid, best.parameter_id) == (oids.ID_PACE_ECDH_CAM_AES_CBC_CMAC_128, 13)
    without_cam = [c for c in choices if c.protocol.mapping is not oids.Mapping.CHIP_AUTHENTICATION]
    best_gm = choose_pace(without_cam)
    assert best_gm is not None and (best_gm.protocol.oid, best_gm.parameter_id) == (
        oids.ID_PACE_ECDH_GM_AES_CBC_CMAC_256,
        16,
    )
    assert choose_pace([]) is None


@pytest.mark.parametrize("choice", pace_choices(CARD_ACCESS), ids=lambda c: c.describe().replace(" ", "_"))
@pytest.mark.parametrize("password", ["CAN", "MRZ"])
def test_every_offered_pace_parameter_set_with_each_password(choice, password):
    key = AccessKey(can=CAN) if password == "CAN" else AccessKey.parse_mrz(MRZ_INFORMATION)
    report = inspect(key=key, pace=choice.protocol.oid, parameter_id=choice.parameter_id)
    assert report.access == f"PACE {choice.describe()}, {password}"
    assert failed_names(report.checks) == []
    assert [c.name for c in report.checks] == ALL_CHECKS
    if choice.protocol.mapping is oids.Mapping.CHIP_AUTHENTICATION:
        assert report.check("chip-authentication").reason.startswith("PACE-CAM")
    else:
        assert report.check("chip-authentication").reason == "CA ECDH AES-128, secure messaging restarted"


def test_bac_with_the_mrz_fields():
    report = inspect(key=AccessKey.parse_mrz("TP46375051237517,000123,361010"), bac=True)
    assert report.access == "BAC, MRZ"
    assert "EF.CardAccess" not in report.files
    assert failed_names(report.checks) == []
    assert report.holder is not None and report.holder.full_name == "鍾柏子"


def test_bac_cannot_use_the_can():
    report = inspect(bac=True)
    assert [(c.name, c.reason) for c in report.checks] == [
        ("access", "BAC: BAC needs the MRZ: the chip offers no PACE, so the CAN cannot open it")
    ]


def test_short_reads_give_the_same_files():
    long = inspect()
    short = inspect(chunk=0xDF)
    assert short.files == long.files


def test_wrong_can_fails_access_clearly_and_nothing_else_runs():
    report = inspect(key=AccessKey(can="000000"))
    assert [(c.name, c.verdict, c.reason) for c in report.checks] == [
        (
            "access",
            Verdict.FAILED,
            "PACE with the CAN: GENERAL AUTHENTICATE step 4: the chip answered 6300 (wrong password?)",
        )
    ]
    assert report.holder is None and report.face is None and not report.passed


def test_wrong_mrz_fails_access():
    report = inspect(key=AccessKey.parse_mrz("TP46375051237517,000123,361011"))
    assert failed_names(report.checks) == ["access"]
    assert report.checks[0].reason.startswith("PACE with the MRZ: GENERAL AUTHENTICATE step 4: the chip answered 63")


@pytest.mark.parametrize("variant_chip", ["g2-valid-1-aa-ecdsa", "g2-valid-1-aa-rsa1024", "g3-valid-1", "lookalike"])
def test_other_chips_pass(variant_chip):
    import json

    chip = json.loads((CHIPS / variant_chip / "chip.json").read_text("utf-8"))
    report = inspect(f"emulator:eid-{variant_chip}", AccessKey(can=chip["can"]))
    assert failed_names(report.checks) == []
    expected = {
        "g2-valid-1-aa-ecdsa": "ECDSA brainpoolP256r1, sha256",
        "g2-valid-1-aa-rsa1024": "RSA-1024, ISO/IEC 9796-2 scheme 1, sha1",
    }.get(variant_chip, "RSA-2048, ISO/IEC 9796-2 scheme 1, sha1")
    assert report.check("active-authentication").reason == expected


# --- broken chips: exactly their own verdicts fail ------------------------------------------


def test_sod_signed_by_an_expired_document_signer_fails_validity_only(variant):
    report = inspect(variant({"EF.SOD.bin": CHIP / "EF.SOD.ds-expired.bin"}))
    assert failed_names(report.checks) == ["pa.ds-validity"]
    assert report.check("pa.ds-validity").reason.startswith("the Document Signer is valid ")


def test_sod_signed_by_a_revoked_document_signer_fails_revocation_only(variant):
    report = inspect(variant({"EF.SOD.bin": CHIP / "EF.SOD.ds-revoked.bin"}))
    assert failed_names(report.checks) == ["pa.ds-revocation"]
    assert report.check("pa.ds-revocation").reason.startswith("the Document Signer is revoked (keyCompromise) since ")


def test_a_data_group_that_does_not_match_its_hash_fails_that_hash_only(variant, tmp_path):
    dg12 = (CHIP / "DG12.bin").read_bytes()
    changed = dg12.replace(b"20261010", b"20261011")
    assert changed != dg12
    (tmp_path / "DG12.bin").write_bytes(changed)
    report = inspect(variant({"DG12.bin": tmp_path / "DG12.bin"}))
    assert failed_names(report.checks) == ["pa.dg-hash:DG12"]
    assert report.check("pa.dg-hash:DG12").reason == "the sha256 of DG12 differs from EF.SOD's"
    assert report.holder is not None and report.holder.date_of_issue == "20261011"


def test_an_active_authentication_key_other_than_dg15s_fails_aa_only(variant):
    report = inspect(variant({"aa.key.pem": CHIPS / "g2-valid-2" / "aa.key.pem"}))
    assert failed_names(report.checks) == ["active-authentication"]
    assert report.check("active-authentication").reason.startswith("recovered message starts ")


def test_a_chip_authentication_key_other_than_dg14s_fails_ca_only(variant):
    other = CHIPS / "g2-valid-2" / "chip-ca.key.pem"
    report = inspect(variant({"chip-ca.key.pem": other}), pace=oids.ID_PACE_ECDH_GM_AES_CBC_CMAC_128)
    assert failed_names(report.checks) == ["chip-authentication"]
    assert report.check("chip-authentication").reason == "READ BINARY after CA: the chip ended secure messaging (6988)"
    assert report.check("active-authentication").verdict is Verdict.SKIPPED


def test_a_data_group_beyond_32767_bytes_is_read_with_odd_ins(variant, tmp_path):
    big = b"\x75\x82\x9c\x3c" + (bytes(range(256)) * 157)[:0x9C3C]  # 40 000 bytes, DO 75
    (tmp_path / "DG2.bin").write_bytes(big)
    report = inspect(variant({"DG2.bin": tmp_path / "DG2.bin"}))
    assert report.files["DG2"] == big
    assert failed_names(report.checks) == ["decode:DG2", "pa.dg-hash:DG2"]


def test_checks_at_a_time_after_the_crl_next_update_fail_revocation_only():
    report = inspect(now=dt.datetime(2029, 1, 1, tzinfo=dt.UTC))
    assert failed_names(report.checks) == ["pa.ds-revocation"]
    assert report.check("pa.ds-revocation").reason.startswith("the CRL is not current")


def test_inspection_system_counts_its_apdus():
    system = InspectionSystem(open_card("emulator:eid-g2-valid-1"))
    report = system.inspect(AccessKey(can=CAN))
    assert report.passed
    # CardAccess, MSE, 4 x GA, CardSecurity, SELECT, COM, 6 DGs, SOD, INTERNAL AUTHENTICATE
    assert system.channel.exchanges == 18


@pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
def test_chip_authentication_over_dh(variant, tmp_path):
    """A chip whose DG14 holds a DH key on the RFC 5114 1024-bit group (ID 0), its EF.SOD
    re-signed by the TEST Document Signer: PACE-GM, then CA over DH passes, and so does PA."""
    from asn1crypto import keys
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import dh

    from eidemu.emulator.icao import asn1 as icao_asn1
    from eidemu.emulator.icao import lds
    from eidemu.emulator.icao.dh import group

    g = group("modp1024_160")
    key = dh.DHParameterNumbers(g.p, g.g, g.q).parameters().generate_private_key()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    spki = keys.PublicKeyInfo.load(
        key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    old = lds.SecurityInfoSet.parse((CHIP / "DG14.bin").read_bytes(), 0x6E)
    kept = [
        i
        for i in old.infos
        if type(i) not in (icao_asn1.ChipAuthenticationInfo, icao_asn1.ChipAuthenticationPublicKeyInfo)
    ]
    dh_infos = [
        lds.chip_authentication_info("DH", "AES-128"),
        icao_asn1.ChipAuthenticationPublicKeyInfo(
            {"protocol": icao_asn1.ID_PK_DH, "chip_authentication_public_key": spki}
        ),
    ]
    dg14 = lds.SecurityInfoSet(tuple(kept + dh_infos), 0x6E).encode()
    groups = {n: (CHIP / f"DG{n}.bin").read_bytes() for n in (1, 2, 11, 12, 15)} | {14: dg14}
    csca = CHIPS.parent / "csca"
    signer = x509.load_pem_x509_certificate((csca / "ds-valid.cert.pem").read_bytes())
    signer_key = serialization.load_pem_private_key((csca / "ds-valid.key.pem").read_bytes(), None)
    sod = lds.Sod.sign(groups, signer, signer_key).encode()  # type: ignore[arg-type]
    for name, content in (("dh.key.pem", pem), ("DG14.bin", dg14), ("EF.SOD.bin", sod)):
        (tmp_path / name).write_bytes(content)
    uri = variant({"DG14.bin": tmp_path / "DG14.bin", "EF.SOD.bin": tmp_path / "EF.SOD.bin"})
    profile = uri.removeprefix("emulator:")
    text = open(profile, encoding="utf-8").read()
    start, end = text.index("      chip_authentication:"), text.index("      active_authentication:")
    text = (
        text[:start]
        + f"      chip_authentication:\n        key: {tmp_path / 'dh.key.pem'}\n        agreement: DH\n"
        + text[end:]
    )
    text = text.replace("      - {mapping: ECDH-CAM, cipher: AES-128, parameter_id: 13}\n", "")
    open(profile, "w", encoding="utf-8").write(text)
    report = inspect(uri, pace=oids.ID_PACE_ECDH_GM_AES_CBC_CMAC_128, parameter_id=13)
    assert failed_names(report.checks) == []
    assert report.check("chip-authentication").reason == "CA DH AES-128, secure messaging restarted"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"\x31\x03\x30\x01", "EF.CardAccess: end of file at 4 bytes, the TLV announces 5"),
        (b"\x31\x03\x30\x01\x05", "EF.CardAccess: SecurityInfos: "),
    ],
)
def test_a_malformed_card_access_fails_access(variant, tmp_path, content, reason):
    (tmp_path / "EF.CardAccess.bin").write_bytes(content)
    report = inspect(variant({"EF.CardAccess.bin": tmp_path / "EF.CardAccess.bin"}))
    assert failed_names(report.checks) == ["access"]
    assert report.checks[0].reason.startswith(reason)

"""Passive authentication's own checks on the shipped TEST files (fixtures/pki/eid):
a tampered SOD, master list or data group, another trust anchor, a CRL of the wrong
issuer; each fails its own verdict with the reason a user reads."""

from __future__ import annotations

import datetime as dt

import pytest

from eidemu.conformance.eid.passive import (
    TrustStore,
    TrustStoreError,
    passive_authentication,
    verify_signed_data,
    zone_hashes,
)
from eidemu.conformance.eid.report import Verdict, failed_names
from eidemu.fixtures import fixture_path

from .conftest import CHIPS, CSCA

CHIP = CHIPS / "g2-valid-1"
DATA_GROUPS = {n: (CHIP / f"DG{n}.bin").read_bytes() for n in (1, 2, 11, 12, 14, 15)}
SOD = (CHIP / "EF.SOD.bin").read_bytes()
NOW = dt.datetime.now(dt.UTC)


@pytest.fixture(scope="module")
def trust() -> TrustStore:
    return TrustStore.from_master_list(CSCA / "masterlist.der", [CSCA / "csca-tw.crl"])


def test_the_shipped_chip_passes_every_step(trust):
    checks = passive_authentication(SOD, DATA_GROUPS, trust, NOW)
    assert [c.name for c in checks] == [
        "pa.master-list",
        "pa.sod-signature",
        *(f"pa.dg-hash:DG{n}" for n in (1, 2, 11, 12, 14, 15)),
        "pa.ds-chain",
        "pa.ds-validity",
        "pa.ds-revocation",
        "pa.key-usage",
    ]
    assert {c.verdict for c in checks} == {Verdict.PASSED}
    assert checks[0].reason.startswith("1 CSCA certificate(s), signed by CN=Master List Signer Taiwan TEST,")


def test_a_csca_certificate_file_is_a_trust_store_too():
    store = TrustStore.from_certificates([CSCA / "csca-tw.cert.pem"], [CSCA / "csca-tw.crl"])
    checks = passive_authentication(SOD, DATA_GROUPS, store, NOW)
    assert checks[0].name == "pa.sod-signature" and failed_names(checks) == []


def test_a_changed_lds_security_object_fails_the_message_digest():
    # one byte of DG1's hash inside the eContent: the messageDigest attribute no longer matches
    digest = __import__("hashlib").sha256(DATA_GROUPS[1]).digest()
    assert SOD.count(digest) == 1
    tampered = SOD.replace(digest, bytes([digest[0] ^ 1]) + digest[1:])
    checks = passive_authentication(tampered, DATA_GROUPS, TrustStore.from_certificates([CSCA / "csca-tw.cert.pem"]))
    assert [(c.name, c.verdict.value, c.reason) for c in checks] == [
        ("pa.sod-signature", "FAILED", "EF.SOD: the messageDigest attribute is not the sha256 of the eContent")
    ]


def test_a_changed_signature_fails_the_sod_signature():
    body = SOD[4:]
    view = verify_signed_data(body, "2.23.136.1.1.1", "EF.SOD")
    assert view.signer.subject.rfc4514_string().startswith("CN=Document Signer Taiwan TEST 1,")
    tampered = SOD[:-3] + bytes([SOD[-3] ^ 0x55]) + SOD[-2:]  # inside the ECDSA s value
    checks = passive_authentication(tampered, DATA_GROUPS, TrustStore.from_certificates([CSCA / "csca-tw.cert.pem"]))
    assert failed_names(checks) == ["pa.sod-signature"]
    assert checks[0].reason == "EF.SOD: the signature over the signed attributes does not verify"


def test_a_data_group_not_in_the_sod_fails_and_one_not_read_is_skipped(trust):
    groups = {n: v for n, v in DATA_GROUPS.items() if n != 15} | {3: b"\x63\x00"}
    checks = {c.name: c for c in passive_authentication(SOD, groups, trust, NOW)}
    assert checks["pa.dg-hash:DG3"].verdict is Verdict.FAILED
    assert checks["pa.dg-hash:DG3"].reason == "read from the chip but not listed in EF.SOD"
    assert checks["pa.dg-hash:DG15"].verdict is Verdict.SKIPPED


def test_a_tampered_master_list_is_not_trusted(tmp_path):
    der = bytearray((CSCA / "masterlist.der").read_bytes())
    der[-5] ^= 0x01  # inside the master list signer's signature
    path = tmp_path / "ml.der"
    path.write_bytes(bytes(der))
    store = TrustStore.from_master_list(path, [CSCA / "csca-tw.crl"])
    assert store.cscas == ()
    checks = passive_authentication(SOD, DATA_GROUPS, store, NOW)
    assert failed_names(checks) == ["pa.master-list", "pa.ds-chain", "pa.ds-revocation"]
    assert checks[0].reason.startswith("master list: ")


def test_another_ca_as_trust_anchor_fails_the_chain():
    store = TrustStore.from_certificates([fixture_path("pki", "ca", "root-g2.cert.pem")], [CSCA / "csca-tw.crl"])
    checks = {c.name: c for c in passive_authentication(SOD, DATA_GROUPS, store, NOW)}
    assert checks["pa.ds-chain"].verdict is Verdict.FAILED
    assert checks["pa.ds-chain"].reason.startswith("the Document Signer is not issued by a CSCA of ")
    assert checks["pa.ds-revocation"].reason == "no CSCA to check the CRL against"


def test_a_crl_of_another_issuer_does_not_count():
    store = TrustStore.from_certificates([CSCA / "csca-tw.cert.pem"], [fixture_path("pki", "crl", "root-g2.crl")])
    checks = {c.name: c for c in passive_authentication(SOD, DATA_GROUPS, store, NOW)}
    assert (checks["pa.ds-revocation"].verdict, checks["pa.ds-revocation"].reason) == (
        Verdict.FAILED,
        "no CRL of the issuing CSCA",
    )


def test_without_a_crl_revocation_is_skipped():
    store = TrustStore.from_certificates([CSCA / "csca-tw.cert.pem"])
    checks = {c.name: c for c in passive_authentication(SOD, DATA_GROUPS, store, NOW)}
    assert checks["pa.ds-revocation"].verdict is Verdict.SKIPPED


def test_a_file_that_is_no_master_list_is_a_one_line_error():
    with pytest.raises(TrustStoreError, match=r"csca-tw\.crl: not a CSCA master list: "):
        TrustStore.from_master_list(CSCA / "csca-tw.crl")
    with pytest.raises(TrustStoreError, match=r"csca-tw\.crl: not an X\.509 certificate file"):
        TrustStore.from_certificates([CSCA / "csca-tw.crl"])


# -- the EAC zones: listed in EF.COM, hashed in EF.SOD, read only after EAC -------------------------

ZONE_CHIP = CHIPS / "g3-valid-1"
ZONES = (3, 4, 5, 6, 7, 8, 9, 13)
ZONE_SOD = (ZONE_CHIP / "EF.SOD.bin").read_bytes()
PUBLIC = {n: (ZONE_CHIP / f"DG{n}.bin").read_bytes() for n in (1, 2, 11, 12, 14, 15)}
ZONE_DATA = {n: (ZONE_CHIP / f"DG{n}.bin").read_bytes() for n in ZONES}


def test_protected_data_groups_are_reported_not_read(trust):
    checks = {c.name: c for c in passive_authentication(ZONE_SOD, PUBLIC, trust, NOW, ZONES)}
    assert failed_names(checks.values()) == []
    for n in ZONES:
        assert (checks[f"pa.dg-hash:DG{n}"].verdict, checks[f"pa.dg-hash:DG{n}"].reason) == (
            Verdict.SKIPPED,
            "behind Extended Access Control (6982), not read",
        )
    # a protected data group EF.SOD does not hash fails its own check
    checks = {c.name: c for c in passive_authentication(ZONE_SOD, PUBLIC, trust, NOW, (10,))}
    assert (checks["pa.dg-hash:DG10"].verdict, checks["pa.dg-hash:DG10"].reason) == (
        Verdict.FAILED,
        "listed in EF.COM but not hashed in EF.SOD",
    )
    assert failed_names(checks.values()) == ["pa.dg-hash:DG10"]


def test_zone_hashes_pass_on_the_shipped_chip_and_catch_an_altered_zone():
    check = zone_hashes(ZONE_SOD, ZONE_DATA)
    assert (check.name, check.verdict, check.reason) == (
        "zone-hashes",
        Verdict.PASSED,
        "DG3, DG4, DG5, DG6, DG7, DG8, DG9, DG13 match EF.SOD (sha256)",
    )
    altered = dict(ZONE_DATA)
    altered[13] = altered[13][:-1] + bytes([altered[13][-1] ^ 0x01])
    check = zone_hashes(ZONE_SOD, altered)
    assert (check.verdict, check.reason) == (Verdict.FAILED, "DG13: the sha256 of DG13 differs from EF.SOD's")
    # another chip's EF.SOD does not hash the zones at all
    check = zone_hashes(SOD, {3: ZONE_DATA[3]})
    assert (check.verdict, check.reason) == (Verdict.FAILED, "DG3: read from the chip but not listed in EF.SOD")
    assert zone_hashes(ZONE_SOD, {}).verdict is Verdict.SKIPPED
    check = zone_hashes(b"\x30\x00", ZONE_DATA)
    assert (check.verdict, check.reason) == (Verdict.FAILED, "EF.SOD: template tag 30, expected 77")

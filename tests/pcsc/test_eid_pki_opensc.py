"""OpenSC, unchanged, against the eID chip's citizen-certificate zone through pcscd + vpcd.

The tools run as their own processes with ``OPENSC_CONF`` pointing at the shipped
``fixtures/opensc/opensc.conf`` (docs/eid.md, "Citizen-certificate zone with OpenSC") and
``PCSCLITE_CSOCK_NAME`` at the private pcscd of this test session (tests/pcsc/conftest.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from eidemu.cards import insert_card
from eidemu.emulator.profile import load_profile
from eidemu.fixtures import fixture_path

from .conftest import RUN_DIR, unavailable

PROFILE = "eid-g3-valid-1"
PIN = "0860318"  # the identity's initial PIN (fixtures/pki/identities/g3-valid-1/identity.json)
IDENTITY = fixture_path("pki", "identities", "g3-valid-1")
OPENSC_CONF = fixture_path("opensc", "opensc.conf")
TIMEOUT = 60


def _module() -> str:
    for candidate in (
        "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
        "/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so",
        "/usr/lib/opensc-pkcs11.so",
        "/usr/lib64/opensc-pkcs11.so",
    ):
        if Path(candidate).exists():
            return candidate
    try:
        listing = subprocess.run(["dpkg", "-L", "opensc-pkcs11"], capture_output=True, text=True, check=False).stdout
    except OSError:
        listing = ""
    for line in listing.splitlines():
        if line.endswith("/opensc-pkcs11.so"):
            return line
    unavailable("opensc-pkcs11.so not found (install the opensc-pkcs11 package, scripts/setup.sh)")
    raise AssertionError  # unreachable: unavailable() skips or fails


@pytest.fixture(scope="module")
def tools() -> None:
    for tool in ("pkcs15-tool", "pkcs11-tool", "openssl"):
        if shutil.which(tool) is None:
            unavailable(f"{tool} is not installed (scripts/setup.sh installs opensc)")


@pytest.fixture
def zone_card(slots, tools):
    card = load_profile(PROFILE).build()
    if os.environ.get("PKI_TRACE"):
        log = open(os.environ["PKI_TRACE"], "a")
        card.tracer = lambda c, r, t: print(c.hex(), "->", r.hex()[-40:], file=log, flush=True)
    insert_card(slots, 0, card)
    return card


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    home = RUN_DIR / "opensc-home"
    home.mkdir(exist_ok=True)
    env = dict(os.environ, OPENSC_CONF=str(OPENSC_CONF), HOME=str(home))
    return subprocess.run(list(argv), capture_output=True, text=True, env=env, timeout=TIMEOUT, check=False)


def test_pkcs15_tool_lists_the_zone_certificates(zone_card) -> None:
    result = run("pkcs15-tool", "--reader", "0", "--list-certificates")
    assert result.returncode == 0, result.stderr
    sign = x509.load_pem_x509_certificate((IDENTITY / "sign.cert.pem").read_bytes())
    serial = sign.subject.get_attributes_for_oid(x509.NameOID.SERIAL_NUMBER)[0].value
    assert result.stdout.count("X.509 Certificate [") == 4, result.stdout
    for label in ("Signature", "Authentication", "Issuing CA", "Root CA"):
        assert f"X.509 Certificate [{label}]" in result.stdout
    encoded = sign.serial_number.to_bytes(20, "big").hex().upper()
    assert f"Encoded serial : 02 14 {encoded}" in result.stdout
    # The subject, from the certificate OpenSC reads off the zone.
    read = run("pkcs15-tool", "--reader", "0", "--read-certificate", "4501")
    assert read.returncode == 0, read.stderr
    on_card = x509.load_pem_x509_certificate(read.stdout.encode())
    assert on_card == sign
    assert on_card.subject.rfc4514_string() == f"2.5.4.5={serial},CN=趙蓁,C=TW"


def test_pkcs11_tool_shows_the_token(zone_card) -> None:
    result = run("pkcs11-tool", "--module", _module(), "-L")
    assert result.returncode == 0, result.stderr
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert "token label        : TW eID citizen cert TEST" in lines, result.stdout
    assert "token manufacturer : eidemu (TEST ONLY)" in lines
    assert "token flags        : login required, token initialized, PIN initialized, readonly" in lines
    assert "pin min/max        : 6/8" in lines


def test_pkcs11_sign_verifies_with_openssl(zone_card, tmp_path) -> None:
    data = tmp_path / "data.txt"
    data.write_bytes(b"eidemu TEST: a document signed with the citizen-certificate zone\n")
    signature = tmp_path / "data.sig"
    result = run(
        "pkcs11-tool", "--module", _module(), "--login", "--pin", PIN, "--sign", "--id", "4501",
        "--mechanism", "SHA256-RSA-PKCS", "--input-file", str(data), "--output-file", str(signature),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(signature.read_bytes()) == 256
    cert = x509.load_pem_x509_certificate((IDENTITY / "sign.cert.pem").read_bytes())
    public = tmp_path / "sign.pub.pem"
    from cryptography.hazmat.primitives import serialization

    public.write_bytes(
        cert.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    verify = run("openssl", "dgst", "-sha256", "-verify", str(public), "-signature", str(signature), str(data))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify.stdout.strip() == "Verified OK"


# -- the zone's conformance tests through pcscd + vpcd ---------------------------------------


GROUPS = ("SELECT", "FILE", "PIN", "SIGN", "KEY", "DEC", "AUTH")


# The OCSP flow (EID_PKI_FLOW_03) runs once here, on the zone-only profile: it needs the test
# PKI's services on their fixed address, which other test processes may hold for a moment.
@pytest.mark.parametrize(
    ("profile", "card_config", "selection"),
    [
        ("eid-pki-g3-valid-1", None, ["EID_PKI_*"]),
        (
            "eid-g3-valid-1",
            "eid-g3-valid-1-pki",
            [*(f"EID_PKI_{g}_*" for g in GROUPS), "EID_PKI_FLOW_01", "EID_PKI_FLOW_02"],
        ),
    ],
)
def test_zone_catalogue_passes_through_pcscd_and_vpcd(stack, profile, card_config, selection) -> None:
    from eidemu.conformance.runner import CardUnderTest, Outcome, load_catalogue, run_tests, select_tests

    from .conftest import READER0, wait_for_card

    card = CardUnderTest(f"served:{profile}?vpcd=localhost:{stack.port}&slot=0", card_config=card_config)
    try:
        results = run_tests(card, select_tests(load_catalogue(), selection))
    finally:
        card.close()
    assert len(results) >= 27
    assert [(r.test.id, r.message) for r in results if r.outcome != Outcome.PASSED] == []
    assert {r.test.id for r in results if r.test.destructive} >= {"EID_PKI_PIN_03", "EID_PKI_PIN_04"}
    wait_for_card(READER0, present=False)

"""Relying-party flows against the in-process card, through eidemu.conformance.moica.MoicaCard.

Discovery through the PKCS#15 directories, certificates, PIN, signature, decryption, a CMS
detached signature checked by the openssl CLI, key material never leaving the card, and
chain validation with revocation (pyhanko-certvalidator against the local CRL/OCSP server).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from eidemu.conformance.connection import InProcessConnection
from eidemu.conformance.moica import InvalidPinError, MoicaCard, PinBlockedError, PinStatus
from eidemu.emulator.cardos.card import Card
from eidemu.emulator.cardos.fs import DF, RecordEF, TransparentEF
from eidemu.emulator.formats import pkcs15
from eidemu.emulator.iso7816.trace import JsonLinesTracer
from eidemu.emulator.pki.moica_profiles import write_profile
from eidemu.emulator.profile import PROFILE_DIR, ProfileError, load_profile
from tests.openssl_cms import openssl_cms_verify

from .conftest import FIXTURES, VALID, identity_dir, private_key

PIN = json.loads((identity_dir(VALID) / "identity.json").read_text(encoding="utf-8"))["initial_pin"]


def _crypto(cert: asn1_x509.Certificate) -> x509.Certificate:
    return x509.load_der_x509_certificate(cert.dump())


# -- discovery -------------------------------------------------------------------------------


def test_card_number_and_version(client: MoicaCard) -> None:
    identity = json.loads((identity_dir(VALID) / "identity.json").read_text(encoding="utf-8"))
    assert client.card_number() == identity["card_number"]
    assert client.version()[:8] == b"CHT V32N"
    assert client.is_moica()


def test_prkdf_describes_sign_and_keyx(client: MoicaCard) -> None:
    keys = {k.id: k for k in client.private_keys()}
    assert set(keys) == {b"SIGN", b"KEYX"}
    assert keys[b"SIGN"].key_reference == 0x05 and keys[b"KEYX"].key_reference == 0x01
    assert keys[b"SIGN"].usage == {"sign", "non_repudiation"}
    assert keys[b"KEYX"].usage == {"decrypt", "unwrap"}
    assert {k.modulus_bits for k in keys.values()} == {2048}


def test_cdf_points_into_08f2_with_index_and_length(client: MoicaCard) -> None:
    certs = client.certificates()
    assert [(c.id, c.index, c.authority) for c in certs] == [
        (b"ROOT", 0x0000, True),
        (b"CA", 0x0700, True),
        (b"KEYX", 0x0E00, False),
        (b"SIGN", 0x1500, False),
    ]
    assert {c.path for c in certs} == {bytes.fromhex("3F00503008F2")}
    for info in certs:
        cert = client.read_certificate(info)
        assert len(cert.dump()) == info.length


def test_directory_objects_parse_with_openssl(client: MoicaCard, tmp_path: Path) -> None:
    """An independent DER parser accepts every object of every directory file."""
    for fid in (0x4100, 0x4101, 0x4104, 0x4107, 0x4108, 0x5031):
        objects = client.directory(fid)
        assert objects, f"{fid:04X} is empty"
        for der in objects:
            (tmp_path / "obj.der").write_bytes(der)
            subprocess.run(
                ["openssl", "asn1parse", "-inform", "DER", "-in", str(tmp_path / "obj.der")],
                check=True,
                capture_output=True,
            )


def test_directories_end_in_padding(card: Card) -> None:
    for fid in ("4100", "4101", "4104", "4107", "4108", "5031", "5032"):
        ef = card.mf.find_path(f"3F00/5030/{fid}")
        assert isinstance(ef, TransparentEF)
        data = bytes(ef.data)
        objects = pkcs15.split_directory(data)
        used = sum(map(len, objects))
        assert used < len(data) and set(data[used:]) == {0x00}


def test_aodf_token_info_dodf_odf(client: MoicaCard) -> None:
    (pin_der,) = client.directory(0x4108)
    pin = pkcs15.PinObject.load(pin_der)["type_attributes"].native
    assert (pin["min_length"], pin["stored_length"], pin["max_length"]) == (6, 10, 8)
    assert pin["pin_reference"] == 1 and pin["pad_char"] == b"\xff"
    assert {"needs_padding", "integrity_protected", "confidentiality_protected"} <= pin["pin_flags"]
    client.select_path("3F0050305032")
    token = pkcs15.TokenInfo.load(pkcs15.split_directory(client.read_until_padding())[0]).native
    assert token["serial_number"].decode() == client.card_number()
    labels = [
        pkcs15.OpaqueDataObject.load(d)["common_object_attributes"]["label"].native for d in client.directory(0x4107)
    ]
    assert labels == ["Card number", "Card version"]
    odf = [pkcs15.PKCS15Objects.load(d) for d in client.directory(0x5031)]
    assert [(o.name, o.chosen["efid_or_path"].native.hex().upper()) for o in odf] == [
        ("private_keys", "3F0050304100"),
        ("public_keys", "3F0050304101"),
        ("certificates", "3F0050304104"),
        ("data_objects", "3F0050304107"),
        ("auth_objects", "3F0050304108"),
    ]


def test_split_directory_refuses_a_truncated_object() -> None:
    with pytest.raises(ValueError):
        pkcs15.split_directory(bytes.fromhex("3010 0401"))
    assert not pkcs15.directory_complete(bytes.fromhex("3010 0401"))
    assert pkcs15.split_directory(bytes.fromhex("3003 020101 3000 FF FF")) == [bytes.fromhex("3003020101"), b"\x30\x00"]


# -- certificates, PIN, sign, decrypt ------------------------------------------------------------


def test_both_user_certificates_match_the_card_keys(client: MoicaCard) -> None:
    for key_id, which in ((b"SIGN", "sign"), (b"KEYX", "enc")):
        cert = _crypto(client.certificate(key_id))
        assert cert.public_bytes(serialization.Encoding.PEM) == (identity_dir(VALID) / f"{which}.cert.pem").read_bytes()
        n, e = client.public_key(client.key_reference(key_id))
        assert (n, e) == (cert.public_key().public_numbers().n, cert.public_key().public_numbers().e)  # type: ignore[union-attr]
    sign_cert = _crypto(client.certificate(b"SIGN"))
    assert sign_cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature


def test_sign_sha256_digest_info_verifies_with_the_certificate(client: MoicaCard) -> None:
    client.verify_pin(PIN)
    document = "自然人憑證 test document".encode()
    signature = client.sign_sha256(client.key_reference(b"SIGN"), hashlib.sha256(document).digest())
    public_key = _crypto(client.certificate(b"SIGN")).public_key()
    public_key.verify(signature, document, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr, call-arg, arg-type]


def test_decrypt_pkcs1_v15(client: MoicaCard) -> None:
    client.verify_pin(PIN)
    public_key = _crypto(client.certificate(b"KEYX")).public_key()
    ciphertext = public_key.encrypt(b"a 32-byte content-encryption key", padding.PKCS1v15())  # type: ignore[union-attr, call-arg]
    assert client.decrypt(client.key_reference(b"KEYX"), ciphertext) == b"a 32-byte content-encryption key"


def test_wrong_pins_raise_with_tries_then_blocked(client: MoicaCard) -> None:
    with pytest.raises(InvalidPinError) as first:
        client.verify_pin("000000")
    assert first.value.attempts_remaining == 2
    with pytest.raises(InvalidPinError) as second:
        client.verify_pin("000001")
    assert second.value.attempts_remaining == 1
    with pytest.raises(PinBlockedError):
        client.verify_pin("000002")
    with pytest.raises(PinBlockedError):
        client.verify_pin(PIN)
    client.unblock(b"MOICA-ISSUER-TST", 0x0A, new_pin="13572468")
    client.verify_pin("13572468")
    assert client.pin_status() == PinStatus(verified=True, tries_left=None)


def test_change_pin_flow(client: MoicaCard) -> None:
    client.change_pin(PIN, "87654321")
    client.connection.reset()
    assert client.pin_status() == PinStatus(verified=False, tries_left=3)
    client.verify_pin("87654321")


# -- CMS, checked by openssl ---------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")
def test_cms_detached_signature_verifies_with_openssl(client: MoicaCard, tmp_path: Path) -> None:
    document = "報稅文件 — signed with the emulated citizen certificate card\n".encode()
    client.verify_pin(PIN)
    signer = client.certificate(b"SIGN")
    chain = [client.certificate(b"CA")]
    signature = client.cms_sign_detached(document, signer, chain, client.key_reference(b"SIGN"))
    pki = FIXTURES / "pki" / "ca"
    cas = [pki / "root-g2.cert.pem", pki / "moica-g2.cert.pem"]
    ok, stderr = openssl_cms_verify(signature, document, cas, tmp_path)
    assert ok, stderr
    # A changed document must fail: the check above can fail.
    ok, _ = openssl_cms_verify(signature, document + b"x", cas, tmp_path)
    assert not ok


# -- private keys never leave the card --------------------------------------------------------


def _secret_windows(slug: str) -> list[bytes]:
    """16-byte windows of every private component, big and little endian."""
    windows = []
    for which in ("sign", "enc"):
        numbers = private_key(slug, which).private_numbers()
        for value in (numbers.d, numbers.p, numbers.q, numbers.dmp1, numbers.dmq1, numbers.iqmp):
            raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
            for form in (raw, raw[::-1]):
                windows += [form[i : i + 16] for i in range(0, len(form) - 16, 8)]
    return windows


def _read_everything(card: Card, client: MoicaCard) -> bytes:
    """Every byte a host can read: every EF through READ BINARY or READ RECORD, by APDU."""
    seen = bytearray()
    for f in card.mf.walk():
        if isinstance(f, DF):
            continue
        client.select_path(f.path.replace("/", ""))
        if isinstance(f, TransparentEF):
            seen += client.read_binary(0, len(f.data))
        elif isinstance(f, RecordEF):
            for number in range(1, len(f.records) + 1):
                seen += client.transmit(bytes((0x80, 0xB2, number, 0x00, 0x81)), "READ RECORD")[0]
    return bytes(seen)


def test_no_command_returns_private_key_material(card: Card, client: MoicaCard) -> None:
    responses = bytearray()
    original = card.transmit

    def recording(apdu: bytes) -> bytes:
        response = original(apdu)
        responses.extend(response)
        return response

    card.transmit = recording  # type: ignore[method-assign]
    everything = _read_everything(card, client)
    assert len(everything) > 7000
    client.verify_pin(PIN)
    client.sign_sha256(0x05, hashlib.sha256(b"m").digest())
    client.private_operation(0x01, bytes(256))
    for apdu in ("80CA000000", "8084000008", "80C1000000", "80B2090081"):
        client.transmit(bytes.fromhex(apdu), "probe")
    haystack = everything + bytes(responses)
    leaks = [w for w in _secret_windows(VALID) if w in haystack]
    assert leaks == []
    # and the check can find a leak: a window of d planted in the haystack is seen
    assert _secret_windows(VALID)[0] in haystack + _secret_windows(VALID)[0]
    shown = repr(card.default_app.keys)
    assert str(private_key(VALID, "sign").private_numbers().d)[:20] not in shown and "RSAPrivateKey" not in shown


def test_pin_never_reaches_logs_or_traces(card: Card, client: MoicaCard, caplog: pytest.LogCaptureFixture) -> None:
    stream = io.StringIO()
    card.tracer = JsonLinesTracer(stream)
    with caplog.at_level(logging.DEBUG):
        client.verify_pin(PIN)
        with pytest.raises(InvalidPinError):
            client.verify_pin("000000")
        client.transmit(b"\x80\x20\x00\x01\x07" + PIN.encode(), "plain VERIFY")
    text = stream.getvalue() + caplog.text
    assert '"ins": "VERIFY"' in stream.getvalue()
    assert PIN not in text and PIN.encode().hex().upper() not in text and PIN.encode().hex() not in text


# -- profiles --------------------------------------------------------------------------------


def test_committed_profiles_are_in_sync_with_the_pki(tmp_path: Path) -> None:
    for slug in ("g2-valid-1", "g3-valid-1", "g2-revoked", "g2-expired"):
        fresh = write_profile(FIXTURES / "pki", slug, tmp_path)
        committed = PROFILE_DIR / f"moica-{slug}.yaml"

        def strip_paths(text: str) -> list[str]:
            return [ln for ln in text.splitlines() if "private_key:" not in ln and "file:" not in ln]

        assert strip_paths(fresh.read_text("utf-8")) == strip_paths(committed.read_text("utf-8"))
        assert (tmp_path / "moica-data" / slug / "08F2.bin").read_bytes() == (
            PROFILE_DIR / "moica-data" / slug / "08F2.bin"
        ).read_bytes()
        load_profile(fresh)


def _relocated_profile_text() -> str:
    """The g2-valid-1 profile with its file references made absolute, to copy elsewhere."""
    text = (PROFILE_DIR / "moica-g2-valid-1.yaml").read_text("utf-8")
    return text.replace("../pki/", (FIXTURES / "pki").as_posix() + "/").replace(
        "moica-data/", (PROFILE_DIR / "moica-data").as_posix() + "/"
    )


def test_a_stale_profile_is_refused(tmp_path: Path) -> None:
    text = _relocated_profile_text()
    (tmp_path / "copy.yaml").write_text(text, "utf-8")
    load_profile(tmp_path / "copy.yaml")  # the relocated copy itself is fine
    own = (FIXTURES / "pki" / "identities" / "g2-valid-1" / "sign.key.pem").as_posix()
    other = (FIXTURES / "pki" / "identities" / "g2-valid-2" / "sign.key.pem").as_posix()
    assert own in text
    (tmp_path / "stale.yaml").write_text(text.replace(own, other), "utf-8")
    with pytest.raises(
        ProfileError, match=r"default_application\.options\.keys\[1\]: record 7 of 3F00/5030/0810 does not match key 05"
    ):
        load_profile(tmp_path / "stale.yaml")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("    pin: 01\n", "    pin: 01\n    colour: blue\n", "default_application.options: unknown option 'colour'"),
        (
            "    transport_key: 4D4F4943412D544553542D4F4E4C5921",
            "    transport_key: 0011",
            "default_application.options.transport_key: the transport key is a 2-key 3DES key of 16 bytes",
        ),
        (
            "    transport_key: 4D4F4943412D544553542D4F4E4C5921",
            "    transport_key: 4D4G",
            "default_application.options.transport_key: not a hex string",
        ),
        ("    pin: 01\n", "    pin: 09\n", "default_application.options.pin: PIN 09 is not defined in the profile"),
        (
            "        usage: sign\n",
            "        usage: stamp\n",
            "default_application.options.keys[1].usage: must be one of sign, decrypt",
        ),
        (
            "        id: KEYX\n",
            "",
            "default_application.options.keys[0]: missing required option 'id'",
        ),
        (
            "sign.key.pem",
            "nowhere.key.pem",
            "default_application.options.keys[1].private_key: cannot load nowhere.key.pem",
        ),
    ],
)
def test_profile_option_errors_name_the_place_in_one_line(tmp_path: Path, old: str, new: str, message: str) -> None:
    text = _relocated_profile_text()
    assert old in text
    (tmp_path / "bad.yaml").write_text(text.replace(old, new), "utf-8")
    with pytest.raises(ProfileError) as info:
        load_profile(tmp_path / "bad.yaml")
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(f"{tmp_path / 'bad.yaml'}: {message}")


@pytest.mark.parametrize("slug", ["g2-valid-1", "g2-valid-2", "g3-valid-1", "g2-revoked", "g2-expired", "lookalike"])
def test_every_shipped_profile_signs(slug: str) -> None:
    card = load_profile(PROFILE_DIR / f"moica-{slug}.yaml").build()
    client = MoicaCard(InProcessConnection(card))
    pin = json.loads((identity_dir(slug) / "identity.json").read_text(encoding="utf-8"))["initial_pin"]
    client.verify_pin(pin)
    signature = client.sign_sha256(client.key_reference(b"SIGN"), hashlib.sha256(b"ok").digest())
    _crypto(client.certificate(b"SIGN")).public_key().verify(  # type: ignore[union-attr, call-arg]
        signature,
        b"ok",
        padding.PKCS1v15(),  # type: ignore[arg-type]
        hashes.SHA256(),  # type: ignore[arg-type]
    )


# -- chain validation and revocation over the local CRL/OCSP server ------------------------


@pytest.fixture(scope="module")
def live_cards(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """A PKI generated for a free loopback port, served by ``eidemu pki serve``'s server, and
    MOICA profiles generated from it (exercising the generator on a fresh PKI)."""
    from eidemu.emulator.pki.generate import generate_pki
    from eidemu.emulator.pki.services import PkiHttpServer

    server = PkiHttpServer(None, "127.0.0.1", 0)
    pki_dir = tmp_path_factory.mktemp("pki")
    generate_pki(pki_dir, base_url=server.base_url, seed=11)
    server.load(pki_dir)
    thread = server.start_in_thread()
    profiles = tmp_path_factory.mktemp("profiles")
    for slug in ("g2-valid-1", "g3-valid-1", "g2-revoked", "g2-expired", "lookalike"):
        write_profile(pki_dir, slug, profiles)
    yield pki_dir, profiles
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _validate_from_card(pki_dir: Path, profiles: Path, slug: str, mode: str):  # type: ignore[no-untyped-def]
    from pyhanko_certvalidator import CertificateValidator, ValidationContext
    from pyhanko_certvalidator.fetchers.requests_fetchers import RequestsFetcherBackend
    from pyhanko_certvalidator.policy_decl import CertRevTrustPolicy, RevocationCheckingPolicy, RevocationCheckingRule

    client = MoicaCard(InProcessConnection(load_profile(profiles / f"moica-{slug}.yaml").build()))
    signer = client.certificate(b"SIGN")
    on_card_chain = [client.read_certificate(c) for c in client.certificates() if c.authority]

    def ca(name: str) -> asn1_x509.Certificate:
        return asn1_x509.Certificate.load(
            x509.load_pem_x509_certificate((pki_dir / "ca" / f"{name}.cert.pem").read_bytes()).public_bytes(
                serialization.Encoding.DER
            )
        )

    rule = {
        "crl": RevocationCheckingRule.CRL_REQUIRED,
        "ocsp": RevocationCheckingRule.OCSP_REQUIRED,
    }[mode]
    context = ValidationContext(
        trust_roots=[ca("root-g2"), ca("root-g3")],  # trust comes from the relying party, not the card
        other_certs=on_card_chain,
        allow_fetching=True,
        fetcher_backend=RequestsFetcherBackend(),
        revinfo_policy=CertRevTrustPolicy(RevocationCheckingPolicy(rule, rule)),
    )
    validator = CertificateValidator(signer, validation_context=context)
    return asyncio.run(validator.async_validate_usage({"digital_signature", "non_repudiation"}))


@pytest.mark.parametrize("mode", ["crl", "ocsp"])
@pytest.mark.parametrize("slug", ["g2-valid-1", "g3-valid-1"])
def test_card_certificate_validates_with_revocation(live_cards: tuple[Path, Path], slug: str, mode: str) -> None:
    path = _validate_from_card(*live_cards, slug, mode)
    assert len(path) == 3


@pytest.mark.parametrize("mode", ["crl", "ocsp"])
def test_revoked_card_certificate_fails(live_cards: tuple[Path, Path], mode: str) -> None:
    from pyhanko_certvalidator.errors import RevokedError

    with pytest.raises(RevokedError):
        _validate_from_card(*live_cards, "g2-revoked", mode)


def test_expired_card_certificate_fails(live_cards: tuple[Path, Path]) -> None:
    from pyhanko_certvalidator.errors import ExpiredError

    with pytest.raises(ExpiredError):
        _validate_from_card(*live_cards, "g2-expired", "crl")


def test_lookalike_card_certificate_does_not_chain(live_cards: tuple[Path, Path]) -> None:
    from pyhanko_certvalidator.errors import PathBuildingError, PathValidationError

    with pytest.raises((PathBuildingError, PathValidationError)):
        _validate_from_card(*live_cards, "lookalike", "crl")

"""``eidemu demo``: the main job, end to end, in readable steps.

A citizen digital certificate card is emulated in a virtual PC/SC reader (a private pcscd
with vsmartcard's vpcd driver), and an application talks to it through pyscard as
signing middleware would: it reads the card number and the signature certificate, verifies
the PIN, has the card sign a document digest, checks the signature with the certificate's
public key and validates the certificate's chain and revocation status against the test
PKI's local CRL/OCSP services. Then everything is stopped.

Where the PC/SC stack cannot be started (not root, packages missing) the demo says why and
runs the same application against the card in-process.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from contextlib import ExitStack
from typing import TYPE_CHECKING

from eidemu.conformance.connection import ConnectionWrapper

from . import EXIT_CARD_ERROR, EXIT_OK
from .show import format_exchange

if TYPE_CHECKING:
    from eidemu.conformance.connection import CardConnection
    from eidemu.emulator.transport.vpcd import PoweredCard

DEFAULT_PROFILE = "moica-g2-valid-1"
DOCUMENT = "eidemu demo: 報稅 2026 (a document to sign)".encode()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="sign with an emulated citizen certificate card in a virtual PC/SC reader",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    p.add_argument("--profile", default=DEFAULT_PROFILE, help=f"MOICA card profile (default {DEFAULT_PROFILE})")
    p.add_argument(
        "--in-process", action="store_true", help="skip the virtual reader; talk to the card in this process"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="steps only, no APDU listing")
    p.add_argument("--full", action="store_true", help="show every byte of long APDUs")
    p.set_defaults(handler=run)


class ShownConnection(ConnectionWrapper):
    """A connection that prints every exchange as it happens (PIN data masked)."""

    def __init__(self, inner: CardConnection, quiet: bool, max_bytes: int | None) -> None:
        super().__init__(inner)
        self.quiet = quiet
        self.max_bytes = max_bytes
        self.count = 0

    def transmit(self, command: bytes) -> bytes:
        response = self.inner.transmit(command)
        self.count += 1
        if not self.quiet:
            print("    " + format_exchange(command, response, max_bytes=self.max_bytes).replace("\n", "\n    "))
        return response


def step(number: int, text: str) -> None:
    print(f"\n[{number}] {text}", flush=True)


def run(args: argparse.Namespace) -> int:
    from eidemu.emulator.profile import load_profile

    profile = load_profile(args.profile)
    card = profile.build()
    if card.default_app.type_name != "moica-gen1":
        raise ValueError(f"{args.profile}: the demo needs a citizen certificate card profile (moica-*)")
    pin = card.pins[1].value.decode()  # the test identity's PIN; the holder would type it
    print(f"eidemu demo: citizen digital certificate card {profile.name!r} (TEST identity, TEST keys)")
    with ExitStack() as stack:
        connection = None if args.in_process else _virtual_reader(stack, card)
        if connection is None:
            from eidemu.conformance.connection import InProcessConnection

            connection = InProcessConnection(card, f"emulator:{profile.name}")
            step(1, "the card runs in this process (no virtual reader)")
        shown = ShownConnection(connection, args.quiet, None if args.full else 24)
        stack.callback(shown.close)
        ok = _signing_flow(shown, pin)
    print(f"\n{'done' if ok else 'FAILED'}: {shown.count} APDUs exchanged with {connection.description}")
    return EXIT_OK if ok else EXIT_CARD_ERROR


def _virtual_reader(stack: ExitStack, card: PoweredCard) -> CardConnection | None:
    """Start pcscd + vpcd privately, serve the card, connect through pyscard; or explain."""
    from eidemu.cards import VirtualReader
    from eidemu.emulator.transport.pcscd import PcscdError

    step(1, "starting a private pcscd with the vpcd virtual reader driver")
    started = time.monotonic()
    try:
        reader = stack.enter_context(VirtualReader())
    except PcscdError as exc:
        print(f"    virtual reader unavailable: {exc}")
        print("    falling back to the card in this process (scripts/setup.sh installs the stack)")
        return None
    instance = reader.instance
    print(f"    pcscd pid {instance.pid}, reader {instance.reader_name(0)!r} ({time.monotonic() - started:.2f} s)")

    from eidemu.conformance.pcsc import PcscConnection

    step(2, f"inserting the emulated card into {instance.reader_name(0)!r}")
    started = time.monotonic()
    connection = PcscConnection(reader.insert(card, 0))
    print(f"    card present after {time.monotonic() - started:.2f} s; ATR {connection.atr.hex(' ').upper()}")
    print("    (the application below uses pyscard, exactly as with a physical reader)")
    return connection


def _signing_flow(connection: ShownConnection, pin: str) -> bool:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    from eidemu.conformance.flows.moica_relying_party import validate_signer
    from eidemu.conformance.moica import MoicaCard

    client = MoicaCard(connection)
    step(3, "reading the card number and version (EF 0900/0903, 0900/0905)")
    print(f"    card number {client.card_number()}, version {client.version()[:8].decode('ascii', 'replace')}")

    step(4, "finding the signature key and certificate in the PKCS#15 directories, reading it")
    sign_ref = client.key_reference(b"SIGN")
    infos = client.certificates()
    signer_info = next(i for i in infos if not i.authority and i.id == b"SIGN")
    certificate = client.read_certificate(signer_info)
    subject = certificate.subject.native
    print(f"    subject CN={subject.get('common_name')}, serialNumber={subject.get('serial_number')}")
    print(f"    issuer  {certificate.issuer.human_friendly}")

    step(5, "verifying the PIN (protected VERIFY, enciphered with the TEST transport key)")
    client.verify_pin(pin)

    step(6, "signing the SHA-256 digest of a document on the card (2 x 80 EA, then 80 C1)")
    digest = hashlib.sha256(DOCUMENT).digest()
    signature = client.sign_sha256(sign_ref, digest)

    step(7, "checking the signature with the certificate's public key")
    from cryptography import x509 as crypto_x509

    public_key = crypto_x509.load_der_x509_certificate(certificate.dump()).public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    try:
        public_key.verify(signature, DOCUMENT, padding.PKCS1v15(), hashes.SHA256())
        print("    signature valid (RSASSA-PKCS1-v1_5, SHA-256)")
    except Exception:
        print("    signature INVALID")
        return False

    step(8, "validating the certificate chain to the TEST root, with OCSP at the local test services")
    authorities = [client.read_certificate(i).dump() for i in infos if i.authority]
    try:
        path = validate_signer(certificate.dump(), authorities, "OCSP")
    except ValueError as exc:
        print(f"    chain NOT valid: {exc}")
        return False
    print("    valid, not revoked (OCSP): " + " -> ".join(_short_name(name) for name in path))
    return True


def _short_name(human_friendly: str) -> str:
    """'Common Name: X; ...' -> 'X'; without a common name, the first attribute's value."""
    parts = [p.split(": ", 1)[-1] for p in human_friendly.replace(", ", "; ").split("; ")]
    for part in human_friendly.replace(", ", "; ").split("; "):
        if part.startswith("Common Name: "):
            return part.removeprefix("Common Name: ")
    return parts[0]

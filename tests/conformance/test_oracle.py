"""The tester's oracle, independent of the card's encoder (PKCS#15 v1.1 §6.5; RFC 5280 §4.1).

Round trips through eidemu's own ASN.1 classes cannot find a mistake that the card's encoder
and the tester's decoder share. Here the other side is OpenSSL:

- the tester decodes PKCS#15 CDF entries that OpenSSL encoded from a hand-written
  description (``data/cdf-*.cnf``, provenance in ``data/PROVENANCE.md``);
- the CDF entries and certificates the emulated card returns are decoded by
  ``openssl asn1parse`` / ``openssl x509`` field by field and compared with what the tester
  reports.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from eidemu.conformance.connection import open_card
from eidemu.conformance.moica import CertificateInfo, MoicaCard
from eidemu.fixtures import fixture_path

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")

DATA = Path(__file__).parent / "data"
OK = b"\x90\x00"
SLUG = "g2-valid-1"


def openssl(*args: str, data: bytes | None = None) -> bytes:
    result = subprocess.run(["openssl", *args], input=data, capture_output=True, check=True, timeout=30)
    return result.stdout


@dataclass(frozen=True)
class Node:
    """One line of ``openssl asn1parse -i`` with the raw bytes of its contents."""

    offset: int
    depth: int
    tag: str
    text: str
    contents: bytes


def asn1parse(der: bytes) -> list[Node]:
    lines = openssl("asn1parse", "-inform", "DER", "-i", data=der).decode("utf-8").splitlines()
    nodes = []
    pattern = re.compile(r"\s*(\d+):d=(\d+)\s+hl=\s*(\d+) l=\s*(\d+) (?:prim|cons):\s*([^:]*?)\s*(?::(.*))?$")
    for line in lines:
        match = pattern.match(line)
        assert match, line
        offset, depth, header, length = (int(match.group(i)) for i in range(1, 5))
        nodes.append(
            Node(
                offset,
                depth,
                match.group(5).removesuffix("[HEX DUMP]").strip(),
                match.group(6) or "",
                der[offset + header : offset + header + length],
            )
        )
    return nodes


def cdf_entry_by_openssl(der: bytes) -> CertificateInfo:
    """The fields of a CDF entry as OpenSSL decodes them (label, id, authority, path)."""
    nodes = asn1parse(der)
    assert [n.tag for n in nodes[:2]] == ["SEQUENCE", "SEQUENCE"]
    label = next(n for n in nodes if n.depth == 2 and n.tag == "UTF8STRING").contents.decode("utf-8")
    class_start = next(i for i, n in enumerate(nodes) if n.depth == 1 and i > 1)
    class_nodes = []
    for node in nodes[class_start + 1 :]:
        if node.depth < 2:
            break
        class_nodes.append(node)
    cert_id = next(n for n in class_nodes if n.tag == "OCTET STRING").contents
    authority = any(n.tag == "BOOLEAN" and n.contents == b"\xff" for n in class_nodes if n.depth == 2)
    type_index = next(i for i, n in enumerate(nodes) if n.depth == 1 and n.tag == "cont [ 1 ]")
    # [1] { X509CertificateAttributes { value Path { efidOrPath, index, [0] length }, ... } }
    path = []
    for node in nodes[type_index + 3 :]:
        if node.depth < 4:
            break
        if node.depth == 4:
            path.append(node)
    assert [n.tag for n in path] == ["OCTET STRING", "INTEGER", "cont [ 0 ]"], path
    return CertificateInfo(
        id=cert_id,
        label=label,
        authority=authority,
        path=path[0].contents,
        index=int.from_bytes(path[1].contents, "big", signed=True),
        length=int.from_bytes(path[2].contents, "big", signed=True),
    )


class OneDirectoryCard:
    """A card double that answers SELECT with 9000 and READ BINARY (80 B0) from one file."""

    description = "one PKCS#15 directory"
    atr = b""

    def __init__(self, content: bytes) -> None:
        self.content = content

    def transmit(self, command: bytes) -> bytes:
        if command[1] == 0xA4:
            return OK
        assert command[:2] == b"\x80\xb0", command.hex()
        offset = int.from_bytes(command[2:4], "big")
        return self.content[offset : offset + command[4]] + OK

    def reset(self, cold: bool = False) -> bytes:
        return self.atr

    def close(self) -> None:
        pass


@pytest.mark.parametrize("name", ["cdf-sign", "cdf-root"])
def test_the_samples_are_what_their_description_encodes(name: str, tmp_path: Path) -> None:
    out = tmp_path / f"{name}.der"
    openssl("asn1parse", "-genconf", str(DATA / f"{name}.cnf"), "-noout", "-out", str(out))
    assert out.read_bytes() == (DATA / f"{name}.der").read_bytes()


def test_the_tester_reads_a_cdf_that_openssl_encoded() -> None:
    directory = (DATA / "cdf-root.der").read_bytes() + (DATA / "cdf-sign.der").read_bytes()
    client = MoicaCard(OneDirectoryCard(directory + bytes(300)))  # zero padding, as on the card
    assert client.certificates() == [
        CertificateInfo(b"ROOT", "Root CA", True, bytes.fromhex("3F00503008F2"), 0, 902),
        CertificateInfo(b"SIGN", "Signature", False, bytes.fromhex("3F00503008F2"), 5376, 1156),
    ]


@pytest.fixture(scope="module")
def card() -> MoicaCard:
    return MoicaCard(open_card(f"emulator:moica-{SLUG}"))


def test_the_card_cdf_decoded_by_openssl_matches_the_tester(card: MoicaCard) -> None:
    entries = card.directory(0x4104)
    by_openssl = [cdf_entry_by_openssl(der) for der in entries]
    assert by_openssl == card.certificates()
    assert [(e.id, e.authority) for e in by_openssl] == [
        (b"ROOT", True),
        (b"CA", True),
        (b"KEYX", False),
        (b"SIGN", False),
    ]


@pytest.mark.parametrize(("cert_id", "pem"), [(b"SIGN", "sign.cert.pem"), (b"KEYX", "enc.cert.pem")])
def test_the_card_certificates_are_the_test_pki_files(card: MoicaCard, cert_id: bytes, pem: str) -> None:
    """The certificate bytes the tester reads equal the TEST PKI's file as OpenSSL converts it,
    and OpenSSL reads the same subject and serial number as the tester."""
    pem_path = fixture_path("pki", "identities", SLUG, pem)
    certificate = card.certificate(cert_id)
    assert certificate.dump() == openssl("x509", "-in", str(pem_path), "-outform", "DER")
    text = openssl(
        "x509",
        "-inform",
        "DER",
        "-noout",
        "-serial",
        "-subject",
        "-nameopt",
        "RFC2253,-esc_msb",
        data=certificate.dump(),
    )
    serial, subject = text.decode("utf-8").splitlines()
    assert serial == f"serial={certificate.serial_number:X}"
    assert f"CN={certificate.subject.native['common_name']}" in subject.removeprefix("subject=")

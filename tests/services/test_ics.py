"""The ICS CheckSNPID double over HTTPS: client signature, every record code and ErrID."""

from __future__ import annotations

import ssl
import urllib.request
from collections.abc import Iterator
from urllib.parse import quote, urlencode
from xml.etree import ElementTree

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from eidemu.emulator.pki.store import TestPki
from eidemu.services import ics
from eidemu.services.server import running

NONCE, REQ_TIME = "ABCDEFGHIJ12345", "20261201120000"


@pytest.fixture(scope="module")
def ics_url() -> Iterator[str]:
    service = ics.IcsService(TestPki.load(ics.ICS_FIXTURES.parent.parent), [ics.default_bank()[0]])
    with running(service.handle, name="test-ics", ssl_context=ics.server_context()) as http:
        assert http.base_url.startswith("https://127.0.0.1:")
        yield http.base_url + ics.ICS_PATH.lstrip("/")


def post(url: str, xml: str) -> ElementTree.Element:
    body = urlencode({ics.FORM_FIELD: xml}).encode()
    with urllib.request.urlopen(url, data=body, timeout=10, context=ics.client_context()) as response:
        assert response.headers["Content-Type"] == "text/xml; charset=utf-8"
        return ElementTree.fromstring(response.read())


def rec(pki: TestPki, slug: str) -> tuple[str, str]:
    identity = pki.identities[slug].identity
    return identity.cert_serial_number, identity.national_id


def test_every_record_code(ics_url: str) -> None:
    pki = TestPki.load(ics.ICS_FIXTURES.parent.parent)
    cert, key = ics.default_bank()
    records = [
        rec(pki, "g3-valid-1"),
        ("0000000000000000", pki.identities["g3-valid-1"].identity.national_id),
        ("0000000000000000", "A123456789"),
        rec(pki, "g2-not-yet-valid"),
        rec(pki, "g2-expired"),
        rec(pki, "g3-revoked"),
        rec(pki, "lookalike"),
    ]
    answer = post(ics_url, ics.build_request(key, cert, records, NONCE, REQ_TIME))
    assert answer.tag == "ICSResponse"
    assert [answer.findtext(n) for n in ("ClientID", "Nonce", "ReqTime", "TotalCount")] == [
        ics.thumbprint(cert), NONCE, REQ_TIME, "7"]  # fmt: skip
    assert answer.find("ErrID") is None
    rows = [
        (r.findtext("ID"), r.findtext("SN"), r.findtext("SSID4"), r.findtext("Code")) for r in answer.findall("Rec")
    ]
    assert rows == [(str(i), sn, ssid[-4:], code) for i, ((sn, ssid), code) in
                    enumerate(zip(records, ["0", "1", "2", "3", "4", "5", "2"]), 1)]  # fmt: skip


def test_client_id_is_the_sha1_thumbprint() -> None:
    cert, _ = ics.default_bank()
    import hashlib

    from cryptography.hazmat.primitives.serialization import Encoding

    assert ics.thumbprint(cert) == hashlib.sha1(cert.public_bytes(Encoding.DER)).hexdigest().upper()


def test_unknown_client_and_bad_signature(ics_url: str) -> None:
    cert, key = ics.default_bank()
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = post(ics_url, ics.build_request(stranger, cert, [("1", "A123456789")], NONCE, REQ_TIME))
    assert (forged.findtext("ErrID"), forged.find("Rec")) == ("1021", None)
    assert forged.findtext("ClientID") == ics.thumbprint(cert)
    other = ics.build_request(key, cert, [("1", "A123456789")], NONCE, REQ_TIME).replace(
        ics.thumbprint(cert), "AB" * 20
    )
    assert post(ics_url, other).findtext("ErrID") == "1020"  # length unchanged: both 40 hex digits


@pytest.mark.parametrize(
    ("mangle", "err_id"),
    [
        (lambda x: x.replace("<ICSReqLength>", "<ICSReqLength>9"), "1002"),
        (lambda x: x.replace(NONCE, NONCE[:-1] + "!"), "1003"),
        (lambda x: x.replace(REQ_TIME, REQ_TIME[:-1] + "x"), "1004"),
        (lambda x: x.replace("<TotalCount>1<", "<TotalCount>2<"), "1005"),
        (lambda x: "<!DOCTYPE x [<!ENTITY a 'b'>]>" + x, "1001"),
        (lambda x: x[:-5], "1001"),
        (lambda x: x.replace("<Signature>", "<Signature>zz"), "1021"),
    ],
)
def test_request_errors(ics_url: str, mangle: object, err_id: str) -> None:
    cert, key = ics.default_bank()
    xml = ics.build_request(key, cert, [("1", "A123456789")], NONCE, REQ_TIME)
    assert post(ics_url, mangle(xml)).findtext("ErrID") == err_id  # type: ignore[operator]


def test_more_than_1000_records_is_refused(ics_url: str) -> None:
    cert, key = ics.default_bank()
    xml = ics.build_request(key, cert, [("1", "A123456789")] * 1001, NONCE, REQ_TIME)
    service = ics.IcsService(TestPki.load(ics.ICS_FIXTURES.parent.parent), [cert])
    assert "<ErrID>1005</ErrID>" in service.check(xml.encode())


def test_database_failure_switch() -> None:
    cert, key = ics.default_bank()
    service = ics.IcsService(TestPki.load(ics.ICS_FIXTURES.parent.parent), [cert], database_failure=True)
    answer = service.check(ics.build_request(key, cert, [("1", "A123456789")], NONCE, REQ_TIME).encode())
    assert "<Code>999</Code>" in answer


def test_the_tls_certificate_is_checked_by_the_client(ics_url: str) -> None:
    with pytest.raises(urllib.error.URLError) as error:
        urllib.request.urlopen(ics_url, data=b"x", timeout=10, context=ssl.create_default_context())
    assert isinstance(error.value.reason, ssl.SSLCertVerificationError)


def test_wrong_form_and_method(ics_url: str) -> None:
    with urllib.request.urlopen(ics_url, data=b"Other=1", timeout=10, context=ics.client_context()) as response:
        assert response.read() == b"<ICSResponse><ErrID>1001</ErrID></ICSResponse>"
    body = ("ICSRequestXMLData=" + quote("\u00e9")).encode()
    with urllib.request.urlopen(ics_url, data=body, timeout=10, context=ics.client_context()) as response:
        assert b"<ErrID>1001</ErrID>" in response.read()
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(ics_url, timeout=10, context=ics.client_context())
    assert error.value.code == 405

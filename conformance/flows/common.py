"""Helpers shared by the MOICA Python tests: the test decorator and certificate reading."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509

from ..moica import MoicaCard, MoicaError
from ..pythontests import CheckFailed, FlowContext, TestFunction, conformance_test

MOICA_TOKENS = ("MOICA-GEN1", "CLA-80", "PKCS15")


def moica_test(
    test_id: str, title: str, *, spec: str, purpose: str, tokens: tuple[str, ...] = (), destructive: bool = False
) -> Callable[[TestFunction], TestFunction]:
    """:func:`~eidemu.conformance.pythontests.conformance_test` for MOICA generation 1: the MOICA
    tokens are implied, and a status word the middleware does not expect FAILS the test."""

    def wrap(function: TestFunction) -> TestFunction:
        @functools.wraps(function)
        def run(context: FlowContext) -> None:
            try:
                function(context)
            except MoicaError as exc:
                raise CheckFailed(str(exc), "90 00", f"{exc.sw >> 8:02X} {exc.sw & 0xFF:02X}") from None

        return conformance_test(
            test_id,
            title,
            spec=spec,
            purpose=purpose,
            tokens=MOICA_TOKENS + tokens,
            destructive=destructive,
        )(run)

    return wrap


@dataclass(frozen=True)
class UserCertificate:
    """A user certificate as the CDF locates it in EF 08F2, parsed."""

    id: bytes  # PKCS#15 iD: b"SIGN" or b"KEYX"
    der: bytes
    cert: x509.Certificate

    @property
    def name(self) -> str:
        return {b"SIGN": "signature", b"KEYX": "encryption"}.get(self.id, self.id.decode("ascii", "replace"))


def read_certificates(client: MoicaCard) -> tuple[list[UserCertificate], list[UserCertificate]]:
    """(user certificates, authority certificates) listed by the CDF (PKCS#15 v1.1 §6.5),
    read from the card and parsed; an unparseable certificate FAILS the test."""
    users: list[UserCertificate] = []
    authorities: list[UserCertificate] = []
    for info in client.certificates():
        client.select_path(info.path)
        der = client.read_binary(info.index, info.length)
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError as exc:
            raise CheckFailed(
                f"certificate {info.id!r} at {info.index:04X} is not DER X.509: {exc}", "X.509 DER", der[:8].hex()
            ) from None
        (authorities if info.authority else users).append(UserCertificate(info.id, der, cert))
    FlowContext.check(
        {u.id for u in users} == {b"SIGN", b"KEYX"},
        "the CDF lists the signature and the encryption certificate",
        "SIGN, KEYX",
        ", ".join(sorted(u.id.decode("ascii", "replace") for u in users)),
    )
    return sorted(users, key=lambda u: u.id, reverse=True), authorities


def issuer_of(cert: x509.Certificate, authorities: list[UserCertificate]) -> x509.Certificate:
    """The on-card CA certificate whose subject is the certificate's issuer."""
    for ca in authorities:
        if ca.cert.subject == cert.issuer:
            return ca.cert
    raise CheckFailed(
        "no CA certificate on the card names the user certificate's issuer",
        cert.issuer.rfc4514_string(),
        "; ".join(ca.cert.subject.rfc4514_string() for ca in authorities),
    )

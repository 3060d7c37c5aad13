#!/usr/bin/env python3
"""A bank's account opening: read the applicant's citizen certificate card over PC/SC, then
confirm with ICS (CheckSNPID) that the certificate belongs to the ID number they gave.

The card is an emulated MOICA card in eidemu's virtual reader (a private pcscd with the vpcd
driver, ``eidemu.cards.VirtualReader``); the bank reads it through pyscard like a real one, takes
the certificate serial (SN) from the subject DN, signs the ICS request with its TEST key and
posts it over HTTPS to eidemu's ICS double, trusting only TEST ICS Root.

    python examples/ics-onboarding.py                         # g3-valid-1: Code 0
    python examples/ics-onboarding.py --holder g3-revoked     # Code 5
    python examples/ics-onboarding.py --ics https://127.0.0.1:8767/   # against `eidemu ics serve`

Exit code 0 when ICS answered Code 0 (match), 1 otherwise. TEST ONLY.
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import string
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode
from xml.etree import ElementTree

from cryptography import x509
from cryptography.x509.oid import NameOID

from eidemu.cards import VirtualReader
from eidemu.conformance.moica import MoicaCard
from eidemu.conformance.pcsc import PcscConnection
from eidemu.emulator.pki.store import TestPki
from eidemu.emulator.profile import load_profile
from eidemu.fixtures import fixture_path
from eidemu.services import ics
from eidemu.services.server import running

MEANINGS = {0: "match", 1: "no record", 2: "no certificate for this ID", 3: "not activated", 4: "expired",
            5: "revoked", 999: "database failure"}  # fmt: skip


def read_card_serial(reader: VirtualReader, holder: str, workdir: Path) -> str:
    """Insert the holder's emulated card, read its signature certificate over PC/SC: the SN."""
    name = reader.insert(load_profile(f"moica-{holder}").build(workdir / "state.json"))
    with PcscConnection(name) as connection:
        card = MoicaCard(connection)
        certificate = x509.load_der_x509_certificate(card.certificate(b"SIGN").dump())
    serial = certificate.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value
    print(f"card in {name!r}: certificate {certificate.subject.rfc4514_string()}")
    return str(serial)


def confirm(url: str, sn: str, id_num: str) -> int:
    cert, key = ics.default_bank()
    nonce = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(15))
    xml = ics.build_request(key, cert, [(sn, id_num)], nonce, time.strftime("%Y%m%d%H%M%S"))
    body = urlencode({ics.FORM_FIELD: xml}).encode()
    with urllib.request.urlopen(url, data=body, timeout=10, context=ics.client_context()) as response:  # noqa: S310
        answer = ElementTree.fromstring(response.read())  # noqa: S314 - the double's answer
    if answer.findtext("ErrID"):
        print(f"ICS refused the request: ErrID {answer.findtext('ErrID')}")
        return -1
    if answer.findtext("Nonce") != nonce:
        print("ICS answer does not echo our nonce")
        return -1
    code = int(answer.findtext("Rec/Code") or -1)
    print(f"ICS: SN {sn}, SSID4 {answer.findtext('Rec/SSID4')}: Code {code} ({MEANINGS.get(code, 'system error')})")
    return code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--holder", default="g3-valid-1", help="TEST identity: the card inserted and the ID given")
    parser.add_argument("--ics", help="a running `eidemu ics serve` base URL (default: start one in-process)")
    args = parser.parse_args()
    pki = TestPki.load(fixture_path("pki"))
    id_num = pki.identities[args.holder].identity.national_id  # what the applicant typed into the form
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ics-example-")))
        reader = stack.enter_context(VirtualReader(workdir / "reader"))
        sn = read_card_serial(reader, args.holder, workdir)
        base = args.ics
        if base is None:
            service = ics.IcsService(pki, [ics.default_bank()[0]])
            base = stack.enter_context(
                running(service.handle, name="ics-example", ssl_context=ics.server_context())
            ).base_url
        code = confirm(base.rstrip("/") + ics.ICS_PATH, sn, id_num)
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

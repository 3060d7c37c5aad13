"""eMRTD passive authentication: DG hashes, the EF.SOD signature, the Document Signer (unit PA).

The verdicts are those of the terminal's own passive authentication
(:func:`eidemu.conformance.eid.passive.passive_authentication`, ICAO Doc 9303-11 §5.1) over
the files read under secure messaging. The chain, revocation and key-usage tests trust the
shipped TEST master list and CSCA CRL (token ``EID-TW-TEST-PKI``); a real chip of another
country is judged against its own CSCA with ``eidemu eid read --trust``.
"""

from __future__ import annotations

from ..eid.passive import passive_authentication
from ..eid.report import Check, Verdict
from ..pythontests import CheckFailed, FlowContext
from .emrtd_common import emrtd_test, open_session, read_lds, trust_store


def _check(context: FlowContext, name: str) -> Check:
    files = read_lds(open_session(context))
    checks = {
        c.name: c for c in passive_authentication(files.sod, files.data_groups, trust_store(), None, files.protected)
    }
    found = checks.get(name)
    if found is None:
        signature = checks.get("pa.sod-signature")
        reason = signature.reason if signature is not None else "no check ran"
        raise CheckFailed(f"{name} could not run: {reason}", "PASSED", "not run")
    return found


def _passes(context: FlowContext, name: str) -> None:
    check = _check(context, name)
    FlowContext.check(check.verdict is Verdict.PASSED, check.reason, "PASSED", check.verdict.name)


@emrtd_test(
    "EMRTD_PA_A_1",
    "the EF.SOD signature verifies",
    spec="ICAO Doc 9303-11 §5.1 (step 1); RFC 5652 §5.4-§5.6 (signed attributes, messageDigest)",
    purpose="The SignerInfo's signature over the DER SET of signed attributes verifies with the included Document "
    "Signer certificate; contentType equals eContentType and messageDigest is the hash of the LDSSecurityObject.",
)
def pa_sod_signature(context: FlowContext) -> None:
    _passes(context, "pa.sod-signature")


def _register_hash(test_id: str, number: int, tokens: tuple[str, ...]) -> None:
    def run(context: FlowContext) -> None:
        _passes(context, f"pa.dg-hash:DG{number}")

    run.__name__ = run.__qualname__ = f"pa_dg{number}_hash"
    emrtd_test(
        test_id,
        f"the hash of DG{number} matches EF.SOD",
        spec="ICAO Doc 9303-11 §5.1 (step 3); ICAO Doc 9303-10 §4.6.2 (hash over the whole data group)",
        purpose=f"The hash of DG{number} as read (template included) equals its DataGroupHash in the "
        "LDSSecurityObject.",
        tokens=tokens,
    )(run)


for _id, _number, _tokens in (
    ("EMRTD_PA_B_1", 1, ()),
    ("EMRTD_PA_B_2", 2, ()),
    ("EMRTD_PA_B_11", 11, ("LDS-DG11",)),
    ("EMRTD_PA_B_12", 12, ("LDS-DG12",)),
    ("EMRTD_PA_B_14", 14, ("CA",)),
    ("EMRTD_PA_B_15", 15, ("AA",)),
):
    _register_hash(_id, _number, _tokens)


@emrtd_test(
    "EMRTD_PA_B_20",
    "every data group's hash matches EF.SOD",
    spec="ICAO Doc 9303-11 §5.1; ICAO Doc 9303-10 §4.6.2",
    purpose="Every data group EF.COM lists is hashed in EF.SOD, and every hash matches the data group as read "
    "(those behind Extended Access Control, 69 82 under the session, are listed and hashed but not read).",
)
def pa_all_hashes(context: FlowContext) -> None:
    files = read_lds(open_session(context))
    checks = passive_authentication(files.sod, files.data_groups, trust_store(), None, files.protected)
    hashes = [c for c in checks if c.name.startswith("pa.dg-hash")]
    FlowContext.check(hashes, "data group hashes checked", ">= 1", 0)
    not_read = {f"pa.dg-hash:DG{n}" for n in files.protected}
    bad = [
        f"{c.name}: {c.reason}"
        for c in hashes
        if c.verdict is not Verdict.PASSED and not (c.name in not_read and c.verdict is Verdict.SKIPPED)
    ]
    FlowContext.check(not bad, "every data group hash", "all PASSED", "; ".join(bad))


@emrtd_test(
    "EMRTD_PA_C_1",
    "the Document Signer chains to a CSCA of the master list",
    spec="ICAO Doc 9303-11 §5.1 (step 2); ICAO Doc 9303-12 §7 (certificate profile), §9 (CSCA master list)",
    purpose="The Document Signer certificate in EF.SOD is issued by a CSCA of the verified TEST master list "
    "(issuer name and signature).",
    tokens=("EID-TW-TEST-PKI",),
)
def pa_chain(context: FlowContext) -> None:
    _passes(context, "pa.ds-chain")


@emrtd_test(
    "EMRTD_PA_C_2",
    "the Document Signer is valid now",
    spec="ICAO Doc 9303-12 §7.1.1 (validity); RFC 5280 §4.1.2.5",
    purpose="The Document Signer certificate's validity period (and its CSCA's) contains the time of the test.",
    tokens=("EID-TW-TEST-PKI",),
)
def pa_validity(context: FlowContext) -> None:
    _passes(context, "pa.ds-validity")


@emrtd_test(
    "EMRTD_PA_C_3",
    "the Document Signer is not on the CSCA's CRL",
    spec="ICAO Doc 9303-12 §7.1.4 (CRL profile); RFC 5280 §6.3",
    purpose="The CSCA's CRL is signed by the CSCA, current, and does not list the Document Signer's serial number.",
    tokens=("EID-TW-TEST-PKI",),
)
def pa_revocation(context: FlowContext) -> None:
    _passes(context, "pa.ds-revocation")


@emrtd_test(
    "EMRTD_PA_C_4",
    "Document Signer and CSCA key usages",
    spec="ICAO Doc 9303-12 §7.1 (DS: digitalSignature; CSCA: keyCertSign, cRLSign, basicConstraints CA)",
    purpose="The Document Signer asserts digitalSignature; its CSCA keyCertSign and cRLSign and is a CA.",
    tokens=("EID-TW-TEST-PKI",),
)
def pa_key_usage(context: FlowContext) -> None:
    _passes(context, "pa.key-usage")

"""Checks a CMS detached signature with the openssl CLI: an independent verifier."""

from __future__ import annotations

import subprocess
from pathlib import Path


def openssl_cms_verify(signature: bytes, document: bytes, ca_pems: list[Path], workdir: Path) -> tuple[bool, str]:
    """``openssl cms -verify -binary`` of a DER signature over ``document``; (ok, stderr)."""
    (workdir / "doc").write_bytes(document)
    (workdir / "doc.p7s").write_bytes(signature)
    cafile = workdir / "ca.pem"
    cafile.write_bytes(b"".join(p.read_bytes() for p in ca_pems))
    out = workdir / "out"
    args = ["-in", str(workdir / "doc.p7s"), "-content", str(workdir / "doc"), "-CAfile", str(cafile), "-out", str(out)]
    result = subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-inform", "DER", *args],
        capture_output=True,
        text=True,
    )
    ok = result.returncode == 0 and "Verification successful" in result.stderr and out.read_bytes() == document
    return ok, result.stderr

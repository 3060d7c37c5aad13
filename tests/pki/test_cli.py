"""``eidemu pki``: argument errors are one line and exit code 2; generate writes the layout with progress."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography import x509

from eidemu.cli import main


def _exit_code(argv: list[str]) -> int:
    """main()'s return value, or the code argparse exits with."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


@pytest.mark.parametrize(
    "argv",
    [
        ["pki", "generate", "--base-url", "ftp://127.0.0.1/"],
        ["pki", "generate", "--base-url", "http:///nohost"],
        ["pki", "generate", "--seed", "x"],
        ["pki", "serve", "--port", "70000"],
        ["pki", "frobnicate"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    if argv[1] == "generate":
        argv = [*argv, "--out", str(tmp_path / "out")]
    assert _exit_code(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_serve_without_a_pki_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pki", "serve", "--pki", str(tmp_path), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("eidemu: error:") and "manifest.json" in err and len(err.splitlines()) == 1


def test_generate_refuses_a_foreign_non_empty_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    assert main(["pki", "generate", "--out", str(tmp_path)]) == 2
    assert (tmp_path / "precious.txt").read_text() == "keep me"
    assert "refusing" in capsys.readouterr().err


@pytest.mark.slow
def test_generate_writes_the_layout_with_plain_progress(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pki"
    assert main(["pki", "generate", "--out", str(out), "--base-url", "http://127.0.0.1:9999", "--seed", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # 23 MOICA steps, 11 for the eID part, 17 CV certificates, 7 mobile certificates
    assert lines[0].startswith("[ 0/58] CA root-g2")
    assert lines[-2] == "[58/58] done"
    assert [int(line[1:3]) for line in lines[:-1]] == list(range(59))
    assert any("eID chip g2-valid-1-aa-ecdsa" in line for line in lines)
    assert (out / "eid" / "chips" / "g2-valid-1" / "EF.SOD.bin").is_file()
    assert any("moica-g3: RSA-4096" in line for line in lines)
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert manifest["base_url"] == "http://127.0.0.1:9999/"
    assert manifest["seed"] == 5
    assert (out / "identities" / "g2-valid-1" / "sign.key.pem").is_file()
    assert len(json.loads((out / "eac" / "manifest.json").read_text("utf-8"))["certificates"]) == 17
    # A second run over its own output is allowed and replaces it, every part: the mobile
    # certificates are issued by the new TEST MOICA G3, not by the key of the first run.
    assert main(["pki", "generate", "--out", str(out), "--seed", "5"]) == 0
    g3 = x509.load_pem_x509_certificate((out / "ca" / "moica-g3.cert.pem").read_bytes())
    mobile = x509.load_pem_x509_certificate((out / "mobile" / "g3-valid-1.cert.pem").read_bytes())
    mobile.verify_directly_issued_by(g3)

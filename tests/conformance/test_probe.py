"""The probe: harmless commands only (a recording connection checks every INS), the tokens and
variables it infers, and the run's answers for undeclared cards and unset variables."""

from __future__ import annotations

import pytest
import yaml

from eidemu.cli import main
from eidemu.conformance.connection import ConnectionWrapper, open_card
from eidemu.conformance.probe import ALLOWED_INS, Prober, ProbeRefused, ProbeResult, probe
from eidemu.conformance.runner import (
    CardDeclaration,
    CardUnderTest,
    Outcome,
    load_catalogue,
    run_test,
    select_tests,
    unset_variables,
)

# SELECT, GET RESPONSE, GET CHALLENGE, GET DATA, MANAGE CHANNEL; never VERIFY (20), a write
# (D6, DC, E2, DA...), or anything else.
HARMLESS = {0xA4, 0xC0, 0x84, 0xCA, 0x70}


class Recording(ConnectionWrapper):
    """A connection that records every command and fails the test on any INS off the list."""

    def __init__(self, inner):
        super().__init__(inner)
        self.sent: list[bytes] = []

    def transmit(self, command: bytes) -> bytes:
        assert command[1] in HARMLESS, f"probe sent INS {command[1]:02X}"
        self.sent.append(command)
        return self.inner.transmit(command)


@pytest.mark.parametrize("profile", ["iso-demo", "moica-g2-valid-1"])
def test_probe_sends_only_harmless_commands(profile):
    connection = Recording(open_card(f"emulator:{profile}"))
    result = probe(connection)
    assert connection.sent and ALLOWED_INS == HARMLESS
    assert [e.command for e in result.exchanges] == connection.sent


def test_prober_refuses_verify_before_sending():
    connection = Recording(open_card("emulator:iso-demo"))
    with pytest.raises(ProbeRefused, match="never sends INS 20"):
        Prober(connection, ProbeResult(b"")).send(bytes.fromhex("0020000108313233343536FFFF"))
    assert connection.sent == []


def test_probe_of_iso_demo_infers_from_answers_and_knows_the_card():
    result = probe(open_card("emulator:iso-demo"))
    assert result.known == "iso-demo"
    assert result.tokens["SELECT-FID"] == "SELECT MF 3F00 with P2=0C answered 9000 (ISO/IEC 7816-4:2005 §7.1.1)"
    assert result.tokens["GET-RESPONSE"] == "SELECT by AID as case 3 answered 6115; GET RESPONSE returned the FCI"
    assert result.tokens["LOGICAL-CHANNELS"] == "MANAGE CHANNEL opened channel 1 and closed it"
    assert result.variables["AID"][0] == bytes.fromhex("A0000002471001")
    assert result.variables["AID_PARTIAL"][0] == bytes.fromhex("A000000247")


def test_probe_recognises_moica_and_leaves_its_variables_as_placeholders(tmp_path):
    result = probe(open_card("emulator:moica-g2-valid-1"))
    assert result.card.startswith("the MOICA citizen certificate card")
    assert {"CLA-80", "MOICA-GEN1", "PKCS15", "RSA2048", "PIN"} <= set(result.tokens)
    assert "CLA-00" not in result.tokens and "MOICA-TEST-PKI" in result.absent
    assert sorted(result.placeholders) == ["CARD_NUMBER", "PIN_VERIFY_OK", "PIN_VERIFY_WRONG"]
    text = result.yaml()
    assert '  # CARD_NUMBER: ""' in text
    document = yaml.safe_load(text)  # the placeholders are comments: the file loads as is
    assert document["tokens"] == list(result.tokens)
    assert document["atr"] == "3B B8 13 00 81 31 FA 52 43 48 54 4D 4F 49 43 41 A5"


def test_unset_variables_found_before_sending():
    scripts = load_catalogue()
    pairs = {t.id: (s, t) for s, t in select_tests(scripts)}
    script, test = pairs["ISO_READ_01"]
    assert unset_variables(script, test, {}) == ["AID", "EF_FID", "EF_SIZE_LE", "EF_SIZE", "EF_PREFIX"]
    script, test = pairs["ISO_LENGTH_04"]  # EXACT is captured, not needed from the card
    assert unset_variables(script, test, {}) == ["AID", "RECORD_SFI_P2", "RECORD_1"]


def test_missing_variable_is_not_run_without_any_apdu():
    declaration = CardDeclaration("bare", frozenset({"ISO7816", "CLA-00", "SELECT-AID"}), {})
    card = CardUnderTest("emulator:iso-demo", declaration)
    try:
        pairs = {t.id: (s, t) for s, t in select_tests(load_catalogue())}
        result = run_test(card, *pairs["ISO_SELECT_03"])
    finally:
        card.close()
    assert result.outcome == Outcome.NOT_RUN and result.steps == ()
    assert result.message == (
        "needs ${AID}: not set by the card's declaration (set with --var NAME=HEX or in the card file)"
    )


def test_run_on_an_undeclared_card_says_so_in_one_line(tmp_path, capsys):
    card_file = tmp_path / "nothing.yaml"
    card_file.write_text("tokens: []\n", encoding="utf-8")
    assert main(["conformance", "run", "--card", "emulator:iso-demo", "--card-config", str(card_file)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "no card declaration" in err[0] and "eidemu conformance probe --card emulator:iso-demo" in err[0]


def test_run_with_probe_and_the_probe_command(tmp_path, capsys):
    card_file = tmp_path / "nothing.yaml"
    card_file.write_text("tokens: []\n", encoding="utf-8")
    code = main(
        ["conformance", "run", "-q", "--card", "emulator:moica-g2-valid-1", "--card-config", str(card_file), "--probe"]
    )
    captured = capsys.readouterr()
    assert "probed emulator:moica-g2-valid-1: the MOICA citizen certificate card" in captured.err
    assert "tests will be NOT RUN" in captured.err and "${CARD_NUMBER}: MOICA_FILE_03" in captured.err
    assert "not run" in captured.out and code == 0
    out = tmp_path / "card.yaml"
    assert main(["conformance", "probe", "--card", "emulator:iso-demo", "--out", str(out)]) == 0
    assert yaml.safe_load(out.read_text(encoding="utf-8"))["variables"]["AID"] == "A0 00 00 02 47 10 01"


def test_not_run_in_junit_and_html_reports():
    from eidemu.conformance.reports import html_report, junit_xml

    declaration = CardDeclaration("bare", frozenset({"ISO7816", "CLA-00", "SELECT-AID"}), {})
    card = CardUnderTest("emulator:iso-demo", declaration)
    try:
        pairs = {t.id: (s, t) for s, t in select_tests(load_catalogue())}
        results = [run_test(card, *pairs["ISO_SELECT_03"]), run_test(card, *pairs["ISO_INS_01"])]
    finally:
        card.close()
    assert [r.outcome for r in results] == [Outcome.NOT_RUN, Outcome.PASSED]
    xml = junit_xml(results)
    assert 'skipped="1"' in xml
    assert '<skipped message="NOT RUN: needs ${AID}: not set by the card' in xml
    page = html_report(results, "emulator:iso-demo")
    assert "NOT RUN" in page and "needs ${AID}" in page

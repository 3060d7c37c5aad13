"""The runner: the catalogue passes on the emulator, broken doubles fail exactly where expected."""

from __future__ import annotations

import json

import pytest

from eidemu.conformance.connection import InProcessConnection, register_scheme
from eidemu.conformance.runner import (
    CardDeclaration,
    CardUnderTest,
    Outcome,
    RunOptions,
    declaration_for,
    run_test,
    run_tests,
    select_tests,
    summary,
)
from eidemu.conformance.script import parse_script
from eidemu.emulator.profile import load_profile


def test_whole_catalogue_passes_against_the_emulator(catalogue):
    card = CardUnderTest("emulator:iso-demo")
    results = run_tests(card, select_tests(catalogue))
    assert len(results) >= 50
    iso = [r for r in results if r.test.id.startswith("ISO_")]
    assert len(iso) >= 50
    assert [(r.test.id, r.message) for r in iso if r.outcome != Outcome.PASSED] == []
    assert {r.outcome for r in results if r not in iso} == {Outcome.NOT_APPLICABLE}


def test_catalogue_ids_are_unique_and_cite_a_spec(catalogue):
    tests = [t for s in catalogue for t in s.tests]
    assert len({t.id for t in tests}) == len(tests)
    assert all(t.spec and t.purpose and t.title for t in tests)
    assert all(not s.warnings for s in catalogue)


@pytest.mark.parametrize(
    ("profile", "failing", "message"),
    [
        (
            "broken-wrong-sw",
            {"ISO_INS_01", "ISO_INS_02"},
            "status word: expected 6D 00, received 6E 00 (CLA_NOT_SUPPORTED)",
        ),
        (
            "broken-pin-counter",
            {"ISO_PIN_02", "ISO_PIN_04"},
            "status word: expected 63 C2 (${PIN_TRIES_MINUS1_SW}), received 63 C3 (PIN_TRIES_LEFT(3))",
        ),
        (
            "broken-truncated",
            {"ISO_READ_01", "ISO_READ_02", "ISO_PIN_03", "ISO_UPDATE_01"},
            "data length: expected 200 (${EF_SIZE}), received 199 bytes",
        ),
    ],
)
def test_broken_cards_fail_exactly_the_expected_tests(catalogue, broken_card, profile, failing, message):
    results = run_tests(broken_card(profile), select_tests(catalogue))
    failed = {r.test.id for r in results if r.outcome == Outcome.FAILED}
    assert failed == failing
    others = {r.outcome for r in results if r.test.id not in failing and r.test.id.startswith("ISO_")}
    assert others == {Outcome.PASSED}
    messages = " ".join(r.message for r in results if r.outcome == Outcome.FAILED)
    assert message in messages
    first = next(r for r in results if r.outcome == Outcome.FAILED)
    assert first.expected and first.received and first.expected != first.received


def test_missing_tokens_make_tests_not_applicable_never_passed(catalogue):
    card = CardUnderTest("emulator:iso-demo", CardDeclaration("bare", frozenset({"ISO7816", "CLA-00"})))
    results = {r.test.id: r for r in run_tests(card, select_tests(catalogue, ["ISO_PIN_03", "ISO_INS_01"]))}
    assert results["ISO_PIN_03"].outcome == Outcome.NOT_APPLICABLE
    assert results["ISO_PIN_03"].message == "card lacks PIN, SELECT-AID, SELECT-FID, READ-BINARY"
    assert results["ISO_PIN_03"].steps == ()
    assert results["ISO_INS_01"].outcome == Outcome.PASSED


def test_negated_token_excludes_cards_that_have_it(catalogue, iso_demo_declaration):
    card = CardUnderTest("emulator:iso-demo", iso_demo_declaration.merged(["CLA-80"]))
    (result,) = run_tests(card, select_tests(catalogue, ["ISO_CLA_01"]))
    assert result.outcome == Outcome.NOT_APPLICABLE
    assert result.message == "card has CLA-80"


def test_selection_by_id_glob_and_category(catalogue):
    assert [t.id for _, t in select_tests(catalogue, ["ISO_PIN_0[12]"])] == ["ISO_PIN_01", "ISO_PIN_02"]
    assert {t.id for _, t in select_tests(catalogue, ["ISO_GETRESP"])} == {f"ISO_GETRESP_0{i}" for i in range(1, 6)}
    assert len(select_tests(catalogue, ["ISO_PIN_01,ISO_INS_*"])) == 3


class _RealCardStandIn(InProcessConnection):
    """A card that is not 'emulator:' (so not rebuilt between tests): resets only."""

    resets = 0

    def reset(self, cold: bool = False) -> bytes:
        type(self).resets += 1
        return super().reset(cold)


@pytest.fixture
def real_card(iso_demo_declaration):
    register_scheme("testreal", lambda target: _RealCardStandIn(load_profile(target).build(), f"testreal:{target}"))
    card = CardUnderTest("testreal:iso-demo", iso_demo_declaration)
    yield card
    card.close()


def test_destructive_tests_are_skipped_on_real_cards_unless_allowed(catalogue, real_card):
    selected = select_tests(catalogue, ["ISO_PIN_02", "ISO_PIN_01"])
    results = run_tests(real_card, selected)
    assert [(r.test.id, r.outcome) for r in results] == [
        ("ISO_PIN_01", Outcome.PASSED),
        ("ISO_PIN_02", Outcome.SKIPPED),
    ]
    assert results[1].message == "destructive test: run with --allow-destructive"
    allowed = run_tests(real_card, selected, RunOptions(allow_destructive=True))
    assert [r.outcome for r in allowed] == [Outcome.PASSED, Outcome.PASSED]


def test_real_cards_are_reset_and_keep_state_between_tests(catalogue, real_card):
    before = _RealCardStandIn.resets
    # ISO_PIN_02 leaves the counter at 2 tries: on a real card the next test sees it.
    selected = select_tests(catalogue, ["ISO_PIN_02"]) + select_tests(catalogue, ["ISO_PIN_01"])
    results = run_tests(real_card, selected, RunOptions(allow_destructive=True))
    assert _RealCardStandIn.resets - before == 2
    assert [r.outcome for r in results] == [Outcome.PASSED, Outcome.FAILED]
    assert "received 63 C2" in results[1].message


def test_emulated_cards_are_rebuilt_between_tests(catalogue):
    card = CardUnderTest("emulator:iso-demo")
    results = run_tests(card, select_tests(catalogue, ["ISO_PIN_04", "ISO_PIN_01", "ISO_PIN_03"]))
    assert [r.outcome for r in results] == [Outcome.PASSED] * 3


def test_unset_variable_is_not_run_before_any_apdu_not_a_failure():
    script = parse_script("test T_VAR_01: t\nsend 00 20 00 01 data ${NOPE}\n  sw 90 00\n", "v.apdu")
    result = run_test(CardUnderTest("emulator:iso-demo"), script, script.tests[0])
    assert (result.outcome, result.steps) == (Outcome.NOT_RUN, ())
    assert (
        result.message
        == "needs ${NOPE}: not set by the card's declaration (set with --var NAME=HEX or in the card file)"
    )


def test_captures_feed_later_steps_and_failing_steps_stop_the_test():
    text = """\
test T_CAP_01: capture and reuse
send 00 A4 04 00 data A0 00 00 02 47 10 01
  sw 61 ??
  capture N = sw[1:2]
send 00 C0 00 00 le ${N}
  sw 90 00
  data length 21
send 00 A4 00 0C data 7F 7F
  sw 90 00
send 00 A4 00 0C data 3F 00
  sw 90 00
"""
    script = parse_script(text, "cap.apdu")
    result = run_test(CardUnderTest("emulator:iso-demo"), script, script.tests[0])
    assert result.outcome == Outcome.FAILED
    assert [s.index for s in result.steps] == [1, 2, 3]
    assert result.steps[1].command.hex().upper() == "00C0000015"
    assert result.message == "step 3 (cap.apdu:8): status word: expected 90 00, received 6A 82 (FILE_NOT_FOUND)"
    assert (result.expected, result.received) == ("90 00", "6A 82 (FILE_NOT_FOUND)")


def test_trace_per_test_redacts_pins(catalogue, tmp_path):
    card = CardUnderTest("emulator:iso-demo")
    run_tests(card, select_tests(catalogue, ["ISO_PIN_03"]), RunOptions(trace_dir=tmp_path))
    lines = [json.loads(x) for x in (tmp_path / "ISO_PIN_03.jsonl").read_text().splitlines()]
    assert lines[0]["event"] == "test" and lines[0]["id"] == "ISO_PIN_03"
    verify = [x for x in lines if x.get("ins") == "VERIFY"]
    assert verify[0]["hex"] == "0020000108" + "**" * 8
    text = (tmp_path / "ISO_PIN_03.jsonl").read_text()
    assert "313233343536" not in text


def test_declarations_by_profile_name_and_atr():
    by_name = declaration_for("emulator:iso-demo", None)
    assert "PIN" in by_name.tokens and by_name.variables["PIN"] == b"123456\xff\xff"
    by_atr = declaration_for("pcsc:Virtual Reader 0", bytes.fromhex("3B888001454944454D5530313A"))
    assert by_atr == by_name
    assert declaration_for("pcsc:Unknown", b"\x3b\x00").tokens == frozenset()


def test_summary_counts(catalogue):
    results = run_tests(CardUnderTest("emulator:iso-demo"), select_tests(catalogue, ["ISO_SELECT_0*"]))
    assert summary(results)[Outcome.PASSED] == 9


def test_open_card_knows_the_installed_schemes_and_names_them_for_an_unknown_one():
    from eidemu.conformance.connection import CardConnectionError, known_schemes, open_card

    assert {"emulator", "pcsc", "served", "vpcd"} <= set(known_schemes())
    with pytest.raises(CardConnectionError, match=r"^unknown card URI scheme 'nope' \(known: emulator, "):
        open_card("nope:x")


def test_emulator_cards_are_rebuildable_unless_they_keep_state(tmp_path):
    from eidemu.conformance.connection import Rebuildable, open_card

    fresh = open_card("emulator:iso-demo")
    stateful = open_card(f"emulator:iso-demo?state={tmp_path / 'state.json'}")
    assert isinstance(fresh, Rebuildable) and not isinstance(stateful, Rebuildable)
    assert stateful.description == f"emulator:iso-demo?state={tmp_path / 'state.json'}"
    assert CardUnderTest(f"emulator:iso-demo?state={tmp_path / 's2.json'}").emulated is False

"""The fault control channel: a private UNIX socket, arm/clear/status/reinsert, one-line errors,
and the ``eidemu fault`` command against it."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from eidemu.cli import build_parser, main
from eidemu.emulator.cardos.card import Card
from eidemu.emulator.faults import FaultyCard
from eidemu.emulator.faults.control import ControlError, ControlServer, request, runtime_dir

from .conftest import SELECT_DEMO


@pytest.fixture
def served(demo: Card, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ControlServer, FaultyCard]]:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    (tmp_path / "run").mkdir(mode=0o700)
    card = FaultyCard(demo)
    reinserted: list[int] = []
    server = ControlServer(lambda slot: card if slot == 0 else None, reinserted.append, slots=lambda: [0]).start()
    server.reinserted = reinserted  # type: ignore[attr-defined]
    yield server, card
    server.close()


def test_socket_and_directory_are_private(served: tuple[ControlServer, FaultyCard], tmp_path: Path) -> None:
    server, _ = served
    assert server.path == tmp_path / "run" / "eidemu" / "faults.sock"
    assert stat.S_IMODE(server.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(server.path.parent.stat().st_mode) == 0o700


def test_arm_status_clear(served: tuple[ControlServer, FaultyCard]) -> None:
    server, card = served
    plan = {"eidemu_faults": 1, "rules": [{"fault": "status", "sw": "6581", "command": "00A4"}]}
    answer = request({"op": "arm", "slot": 0, "plan": plan}, server.path)
    assert answer["status"]["rules"] == ["fault=status command=00A4 sw=6581"]
    assert card.transmit(SELECT_DEMO) == b"\x65\x81"
    status = request({"op": "status", "slot": None}, server.path)
    assert status["slots"]["0"]["fired"] == [1] and status["slots"]["0"]["apdus"] == 1
    request({"op": "clear", "slot": 0}, server.path)
    assert card.transmit(SELECT_DEMO) == b"\x90\x00"
    assert server.reinserted == [0]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("doc", "error"),
    [
        ({"op": "arm", "slot": 3, "plan": {"eidemu_faults": 1}}, "slot 3 holds no card"),
        ({"op": "arm", "slot": 0, "plan": {"eidemu_faults": 1, "rules": [{"fault": "x"}]}}, "slot 0 plan: rules[0]"),
        ({"op": "explode", "slot": 0}, "unknown op 'explode' (arm, clear, reinsert, status)"),
        ({"op": "clear", "slot": "0"}, "'slot' must be a slot number"),
    ],
)
def test_bad_requests_get_one_line(served: tuple[ControlServer, FaultyCard], doc: dict, error: str) -> None:
    server, _ = served
    with pytest.raises(ControlError) as info:
        request(doc, server.path)
    assert str(info.value).startswith(error)


def test_a_foreign_directory_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    (tmp_path / "eidemu").mkdir(mode=0o755)
    os.chmod(tmp_path / "eidemu", 0o755)
    with pytest.raises(ControlError, match=r"not a private directory of this user \(mode 0700 expected\)$"):
        runtime_dir()


def test_cli_fault_arm_and_status(served: tuple[ControlServer, FaultyCard], capsys: pytest.CaptureFixture[str]) -> None:
    server, card = served
    code = main(["fault", "arm", "--slot", "0", "--control", str(server.path), "fault=delay command=00B0 seconds=0"])
    assert code == 0
    assert capsys.readouterr().out == (
        "slot 0: 1 rule(s) armed, 0 APDU(s) seen, timing off\n  fired 0x: fault=delay command=00B0 seconds=0.0\n"
    )
    assert main(["fault", "status", "--control", str(server.path)]) == 0
    assert capsys.readouterr().out.startswith("slot 0: 1 rule(s) armed")
    assert main(["fault", "arm", "--control", str(server.path), "fault=delay"]) == 2
    assert capsys.readouterr().err == ("eidemu: error: rule 1: give a trigger (apdu, command, after or probability)\n")
    assert card.plan is not None


def test_cli_without_a_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fault", "status", "--control", str(tmp_path / "none.sock")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"eidemu: error: {tmp_path / 'none.sock'}: no fault control channel")
    assert err.count("\n") == 1


def test_parser_knows_the_fault_command() -> None:
    args = build_parser().parse_args(["fault", "clear", "--slot", "1"])
    assert (args.action, args.slot) == ("clear", 1)


def test_serve_with_a_bad_plan_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("eidemu_faults: 1\nrules:\n  - fault: status\n    sw: 65\n    apdu: 1\n")
    assert main(["serve", "--profile", "iso-demo", "--vpcd", "localhost:1", "--faults", str(plan)]) == 2
    assert capsys.readouterr().err == f"eidemu: error: {plan}: rules[0].sw: must be 4 hex digits\n"
    assert main(["serve", "--profile", "iso-demo", "--vpcd", "localhost:1", "--fault", "fault=mute"]) == 2
    assert capsys.readouterr().err == "eidemu: error: --fault 1: give a trigger (apdu, command, after or probability)\n"

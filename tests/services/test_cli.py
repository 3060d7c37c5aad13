"""``eidemu fido serve|phone`` and ``eidemu ics serve`` as processes: start time, one log line per
request, clean exit on SIGTERM, one-line errors."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from eidemu.emulator.pki.http_service import LocalHttpService
from eidemu.emulator.pki.store import TestPki
from eidemu.services import ics
from eidemu.services.fido import FidoService

from .conftest import PKI_DIR, Fido, holder_id

EIDEMU = [sys.executable, "-m", "eidemu.cli"]


def start(*args: str) -> tuple[subprocess.Popen[str], str, float]:
    process = subprocess.Popen([*EIDEMU, *args, "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)  # fmt: skip
    assert process.stdout is not None
    banner = process.stdout.readline()
    match = re.search(r"at (https?://127\.0\.0\.1:\d+/)", banner)
    ready = re.search(r"ready in (\d+) ms", banner)
    assert match and ready, banner
    return process, match.group(1), int(ready.group(1)) / 1000


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    return stderr


@pytest.mark.parametrize("kind", ["fido", "ics"])
def test_services_start_in_well_under_a_second_in_process(kind: str) -> None:
    started = time.monotonic()
    pki = TestPki.load(PKI_DIR)
    if kind == "fido":
        handler = FidoService(pki).handle
        context = None
    else:
        handler = ics.IcsService(pki, [ics.default_bank()[0]]).handle
        context = ics.server_context()
    with LocalHttpService(handler, name="t", ssl_context=context) as http:
        http.start_in_thread()
        elapsed = time.monotonic() - started
    assert elapsed < 0.5, f"{kind} took {elapsed:.3f} s"


@pytest.fixture
def fido_process() -> Iterator[tuple[subprocess.Popen[str], str, float]]:
    process, url, ready = start("fido", "serve")
    yield process, url, ready
    if process.poll() is None:
        process.kill()
        process.communicate()


def test_fido_serve_phone_cli_and_sigterm(fido_process: tuple[subprocess.Popen[str], str, float]) -> None:
    process, url, ready = fido_process
    assert ready < 0.5
    pki = TestPki.load(PKI_DIR)
    fido = Fido(FidoService(pki), url)  # the service object is unused: requests go to the process
    id_num = holder_id(pki, "g3-valid-1")
    answer = fido.post("getSpTicket", op_code="ATH", id_num=id_num)
    assert answer["error_code"] == "0"
    phone = subprocess.run([*EIDEMU, "fido", "phone", "approve", "--server", url, "--ticket", answer["sp_ticket"]],
                           capture_output=True, text=True, timeout=30)  # fmt: skip
    assert (phone.returncode, phone.stdout) == (0, "eidemu fido phone: approve: 0\n")
    again = subprocess.run([*EIDEMU, "fido", "phone", "cancel", "--server", url, "--ticket", answer["sp_ticket"]],
                           capture_output=True, text=True, timeout=30)  # fmt: skip
    assert (again.returncode, again.stdout) == (
        1,
        "eidemu fido phone: refused: SPTKTID_SPTKT_RDM: ticket already used\n",
    )
    unbind = subprocess.run([*EIDEMU, "fido", "phone", "unbind", "--server", url, "--id-num", id_num],
                            capture_output=True, text=True, timeout=30)  # fmt: skip
    assert (unbind.returncode, unbind.stdout) == (0, "eidemu fido phone: unbind: unbind\n")
    assert fido.post("checkDeviceStatus", id_num=id_num)["is_fido"] is False
    result = fido.post("getAthOrSignResult", sp_ticket=answer["sp_ticket"])
    assert result["error_code"] == "0"
    stderr = stop(process)
    request_lines = [line for line in stderr.splitlines() if '"POST /' in line]
    assert len(request_lines) == 6, stderr  # getSpTicket, 3 phone calls, checkDeviceStatus, getAthOrSignResult
    assert id_num not in stderr


def test_phone_cli_usage_errors() -> None:
    run = subprocess.run([*EIDEMU, "fido", "phone", "approve"], capture_output=True, text=True, timeout=30)
    assert (run.returncode, run.stderr) == (2, "eidemu: error: approve: --ticket or --link is required\n")
    run = subprocess.run([*EIDEMU, "fido", "phone", "unbind"], capture_output=True, text=True, timeout=30)
    assert (run.returncode, run.stderr) == (2, "eidemu: error: unbind: --id-num is required\n")


def test_fido_serve_bad_config_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "fido.json"
    config.write_text('{"policy": {"x": {"action": "fly"}}}')
    run = subprocess.run([*EIDEMU, "fido", "serve", "--config", str(config)], capture_output=True, text=True,
                         timeout=30)  # fmt: skip
    assert run.returncode == 2
    assert run.stderr == (f"eidemu: error: {config}: policy.x.action: one of wait, approve, cancel, biometric_fail, "
                          "timeout, wrong_app, not_bound, no_push_token, not 'fly'\n")  # fmt: skip
    config.write_text("{\n oops")
    run = subprocess.run([*EIDEMU, "fido", "serve", "--config", str(config)], capture_output=True, text=True,
                         timeout=30)  # fmt: skip
    assert (run.returncode, run.stderr) == (2, f"eidemu: error: {config}: line 2 column 2: "
                                               "Expecting property name enclosed in double quotes\n")  # fmt: skip


def test_ics_serve_over_https_and_sigterm() -> None:
    process, url, ready = start("ics", "serve")
    try:
        assert url.startswith("https://") and ready < 0.5
        cert, key = ics.default_bank()
        from .test_ics import NONCE, REQ_TIME, post

        answer = post(url + ics.ICS_PATH.lstrip("/"), ics.build_request(key, cert, [("1", "A123456789")], NONCE,
                                                                         REQ_TIME))  # fmt: skip
        assert answer.findtext("Rec/Code") == "2"
    finally:
        stderr = stop(process)
    assert len([line for line in stderr.splitlines() if "CheckSNPID" in line and '"POST' in line]) == 1
    assert "A123456789" not in stderr


def test_fido_config_file_round_trip(tmp_path: Path) -> None:
    config = tmp_path / "fido.json"
    config.write_text(json.dumps({"service_providers": [{"sp_service_id": "X", "aes_key": "22" * 32}],
                                  "policy": {"g3-valid-1": {"action": "approve", "after": 1}},
                                  "quirks": {"error_code_as_int": True}}))  # fmt: skip
    from eidemu.services.fido import FidoConfig

    loaded = FidoConfig.load(config)
    assert [p.service_id for p in loaded.providers] == ["X"]
    assert loaded.policy["g3-valid-1"].after == 1.0
    assert loaded.quirks.error_code_as_int is True


def test_fido_serve_policy_file_makes_the_phone_approve(tmp_path: Path) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"policy": {"g3-valid-1": {"action": "approve"}}}))
    process, url, _ = start("fido", "serve", "--policy", str(policy))
    try:
        pki = TestPki.load(PKI_DIR)
        fido = Fido(FidoService(pki), url)
        answer = fido.post("getSpTicket", op_code="ATH", id_num=holder_id(pki, "g3-valid-1"))
        assert fido.post("requestAthOrSignPush", sp_ticket=answer["sp_ticket"])["error_code"] == "0"
        assert fido.post("getAthOrSignResult", sp_ticket=answer["sp_ticket"])["error_code"] == "0"
    finally:
        stop(process)

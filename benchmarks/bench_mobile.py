"""Benchmark: a complete mobile-certificate login through ``eidemu fido serve``, against the same
requests to an endpoint that does no work, in one run.

A login is four requests, as a relying party and the holder make them: ``getSpTicket`` (ATH,
PUSH), ``requestAthOrSignPush``, the scripted phone's approve (``POST /eidemu/phone``: the
service signs with the holder's RSA-4096 key here) and ``getAthOrSignResult``. The floor sends
the same four requests (same paths, same bodies, a ticket of the same length) to a
:class:`~eidemu.emulator.pki.http_service.LocalHttpService` whose handler answers a constant
JSON object: the cost of HTTP on the project's bounded base, with nothing behind it.

Both servers run in their own processes (``eidemu fido serve --port 0`` and this script with
``--floor``); the client is ``http.client`` (the service closes every connection, so one
connection per request for both). Rounds alternate service and floor; medians are per login;
requests per second over ``--seconds`` with ``--clients`` threads.

    python3 benchmarks/bench_mobile.py [--rounds 50] [--seconds 5] [--clients 2] [--json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import signal
import statistics
import subprocess
import sys
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from eidemu.emulator.pki.store import TestPki
from eidemu.fixtures import fixture_path
from eidemu.services.fido import DEFAULT_SP_ID, DEFAULT_SP_KEY, sp_request

ID_NUM = TestPki.load(fixture_path("pki")).identities["g3-valid-1"].identity.national_id


def post(base: str, path: str, message: dict[str, Any]) -> dict[str, Any]:
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request("POST", path, json.dumps(message), {"Content-Type": "application/json"})
        response = connection.getresponse()
        return json.loads(response.read())
    finally:
        connection.close()


def login(base: str, floor_ticket: str | None = None) -> None:
    """The four requests of one login; with ``floor_ticket`` the answers are not looked at."""
    txn = "bench"
    answer = post(base, "/moise/sp/getSpTicket",
                  sp_request(DEFAULT_SP_ID, DEFAULT_SP_KEY, "getSpTicket", transaction_id=txn, op_code="ATH",
                             id_num=ID_NUM, time_limit=60))  # fmt: skip
    ticket = floor_ticket or answer["sp_ticket"]
    post(
        base,
        "/moise/sp/requestAthOrSignPush",
        sp_request(DEFAULT_SP_ID, DEFAULT_SP_KEY, "requestAthOrSignPush", transaction_id=txn, sp_ticket=ticket),
    )
    post(base, "/eidemu/phone", {"action": "approve", "sp_ticket": ticket})
    result = post(
        base,
        "/moise/sp/getAthOrSignResult",
        sp_request(DEFAULT_SP_ID, DEFAULT_SP_KEY, "getAthOrSignResult", transaction_id=txn, sp_ticket=ticket),
    )
    if floor_ticket is None and result["error_code"] != "0":
        raise RuntimeError(f"login failed: {result['error_code']}")


def start(command: list[str]) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    url = next(word for word in line.split() if word.startswith("http://"))
    return process, url[: url.index("/", len("http://")) + 1]


def serve_floor() -> None:
    from eidemu.emulator.pki.http_service import HttpAnswer, LocalHttpService
    from eidemu.services.server import serve_until_signal

    body = json.dumps({"error_code": "0", "sp_ticket": "x"}).encode()
    service = LocalHttpService(lambda request: HttpAnswer(200, "application/json", body), name="floor")
    print(f"floor at {service.base_url}", flush=True)
    with service:
        serve_until_signal(service)


def throughput(base: str, seconds: float, clients: int, floor_ticket: str | None) -> float:
    done = [0] * clients
    deadline = time.monotonic() + seconds

    def worker(i: int) -> None:
        while time.monotonic() < deadline:
            login(base, floor_ticket)
            done[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) * 4 / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--floor", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor:
        serve_floor()
        return 0
    service, service_url = start([sys.executable, "-m", "eidemu.cli", "fido", "serve", "--port", "0"])
    floor, floor_url = start([sys.executable, __file__, "--floor"])
    try:
        sample = post(service_url, "/moise/sp/getSpTicket",
                      sp_request(DEFAULT_SP_ID, DEFAULT_SP_KEY, "getSpTicket", transaction_id="w", op_code="ATH",
                                 id_num=ID_NUM))  # fmt: skip
        floor_ticket = "x" * len(sample["sp_ticket"])
        login(service_url)  # warm up: the holder's key is loaded at the first signature
        login(floor_url, floor_ticket)
        timings: dict[str, list[float]] = {"service": [], "floor": []}
        for _ in range(args.rounds):
            for name, url, ticket in (("service", service_url, None), ("floor", floor_url, floor_ticket)):
                started = time.perf_counter()
                login(url, ticket)
                timings[name].append((time.perf_counter() - started) * 1000)
        rates = {
            "service": throughput(service_url, args.seconds, args.clients, None),
            "floor": throughput(floor_url, args.seconds, args.clients, floor_ticket),
        }
    finally:
        for process in (service, floor):
            process.send_signal(signal.SIGTERM)
            process.wait(10)
    medians = {name: statistics.median(values) for name, values in timings.items()}
    figures = {
        "rounds": args.rounds,
        "clients": args.clients,
        "median_login_ms": {k: round(v, 2) for k, v in medians.items()},
        "requests_per_second": {k: round(v, 1) for k, v in rates.items()},
        "logins_per_second": {k: round(v / 4, 1) for k, v in rates.items()},
        "latency_ratio": round(medians["service"] / medians["floor"], 2),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(f"complete login (ticket, push, approve, poll), {args.rounds} rounds, medians:")
        for name in ("service", "floor"):
            print(f"  {name:8s} {medians[name]:8.2f} ms/login   {rates[name]:8.1f} requests/s "
                  f"({rates[name] / 4:.1f} logins/s, {args.clients} clients, {args.seconds:g} s)")  # fmt: skip
        print(f"  latency ratio service/floor: {figures['latency_ratio']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

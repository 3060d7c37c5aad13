"""Benchmark: ``/sign`` PKCS7 through the HiPKI-compatible service, against its floor.

Stack: a private pcscd with vpcd; the emulated card ``moica-g2-valid-1`` served by
``eidemu serve`` in its own process; the service ``eidemu hipki serve --card pcsc:...`` in its
own process; this script as the client (one keep-alive HTTP connection).

Each round, back to back in alternating order:

- service: ``POST /sign`` with a PKCS7 tbsPackage (SHA-256, signingTime, nonce, card
  number), the PIN in the package: the service sends VERIFY + ``80 EA`` x2 + ``80 C1`` and
  builds the CMS;
- floor: the same card operations sent directly over PC/SC from this process (protected
  VERIFY, the private operation) plus building the same CMS with the same code
  (:func:`eidemu.hipki.cms.sign_cms`), the signer certificate read once beforehand as the
  service reads it once per card.

Medians over ``--runs`` runs of ``--rounds`` rounds, each run with a fresh card process and
service; target ratio at most 1.3. The client is ``http.client`` on one keep-alive connection
(the lightest HTTP client in the standard library, so the figure is the service's cost, not
a client library's). Then requests per second over ``--seconds`` with one client and with
two clients (threads, one connection each) on the same card, whose operations the service
runs one at a time.

    python3 benchmarks/bench_hipki.py [--rounds 100] [--runs 3] [--seconds 5] [--json]
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RUN_DIR = Path(tempfile.mkdtemp(prefix="eidemu-bench-hipki-"))
os.environ["PCSCLITE_CSOCK_NAME"] = str(RUN_DIR / "sock" / "pcscd.comm")  # before pyscard loads

import requests  # noqa: E402

from eidemu.hipki.cms import SignedAttributeRequest, sign_cms  # noqa: E402

SLUG = "g2-valid-1"
READER = "Virtual PCD 00 00"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_card(present: bool, timeout: float = 15.0) -> None:
    from smartcard import scard

    from eidemu.conformance.pcsc import PcscContext

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        context = PcscContext()
        try:
            bits = context.reader_states().get(READER, (0, b""))[0]
        finally:
            context.close()
        if bool(bits & scard.SCARD_STATE_PRESENT) == present:
            return
        time.sleep(0.02)
    raise RuntimeError(f"{READER}: card {'absent' if present else 'still present'} after {timeout} s")


def post_sign(conn: http.client.HTTPConnection, i: int, pin: str) -> dict:
    body = urlencode({"tbsPackage": json.dumps(package(i, pin))})
    conn.request("POST", "/sign", body, {"Content-Type": "application/x-www-form-urlencoded"})
    return json.loads(conn.getresponse().read())  # type: ignore[no-any-return]


def package(i: int, pin: str) -> dict[str, str]:
    return {
        "func": "MakeSignature",
        "signatureType": "PKCS7",
        "hashAlgorithm": "SHA256",
        "tbs": f"nonce {i}",
        "nonce": f"nonce {i}",
        "withSigningTime": "true",
        "withCardSN": "true",
        "pin": pin,
        "slotDescription": READER,
    }


class Stack:
    """One run's card process and service process."""

    def __init__(self, vpcd_port: int) -> None:
        serve = [sys.executable, "-m", "eidemu.cli", "serve", "--profile", f"moica-{SLUG}"]
        serve += ["--vpcd", f"localhost:{vpcd_port}", "--slot", "0"]
        self.card = subprocess.Popen(serve, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        wait_card(True)
        self.port = free_port()
        service = [sys.executable, "-m", "eidemu.cli", "hipki", "serve", "--card", f"pcsc:{READER}"]
        service += ["--port", str(self.port), "--trust-file", str(RUN_DIR / "trusted.json")]
        self.service = subprocess.Popen(service, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.url = f"http://localhost:{self.port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                requests.get(self.url + "/selfTest.htm", timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline or self.service.poll() is not None:
                    raise RuntimeError("the service did not start") from None
                time.sleep(0.05)

    def close(self) -> None:
        from bench_pcsc import stop_processes  # type: ignore[import-not-found]

        stop_processes((self.service, self.card))
        wait_card(False)


def measure_run(vpcd_port: int, rounds: int, pin: str, quiet: bool) -> tuple[list[float], list[float]]:
    from eidemu.conformance.moica import MoicaCard
    from eidemu.conformance.pcsc import PcscConnection

    stack = Stack(vpcd_port)
    conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=30)
    service_times: list[float] = []
    floor_times: list[float] = []
    try:
        direct = PcscConnection(READER)
        client = MoicaCard(direct)
        cert = client.certificate(b"SIGN").dump()
        card_number = client.card_number()
        ref = client.key_reference(b"SIGN")

        def service_round(i: int) -> None:
            start = time.perf_counter()
            answer = post_sign(conn, i, pin)
            service_times.append(time.perf_counter() - start)
            if answer["ret_code"] != 0:
                raise RuntimeError(f"/sign answered {answer['ret_code']:#x}: {answer['message']}")

        def floor_round(i: int) -> None:
            p = package(i, pin)
            start = time.perf_counter()
            client.verify_pin(p["pin"])
            request = SignedAttributeRequest(
                dt.datetime.now(dt.UTC).replace(microsecond=0), p["nonce"].encode(), card_number
            )
            signature = sign_cms(p["tbs"].encode(), cert, "sha256", lambda b: client.private_operation(ref, b), request)
            base64.b64encode(signature)
            floor_times.append(time.perf_counter() - start)

        service_round(-1)  # warm-up: the service reads the token once per card
        floor_round(-1)
        service_times.clear()
        floor_times.clear()
        for i in range(rounds):
            for measure in (service_round, floor_round) if i % 2 == 0 else (floor_round, service_round):
                measure(i)
            if i % 20 == 0 and not quiet:
                print(f"  round {i + 1}/{rounds}", file=sys.stderr, end="\r", flush=True)
        direct.close()
        conn.close()
    finally:
        stack.close()
    return service_times, floor_times


def throughput(vpcd_port: int, clients: int, seconds: float, pin: str) -> float:
    """/sign PKCS7 requests per second with ``clients`` threads, each its own connection."""
    stack = Stack(vpcd_port)
    counts = [0] * clients
    errors: list[str] = []
    stop = time.monotonic() + seconds

    def work(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=60)
        i = 0
        while time.monotonic() < stop:
            answer = post_sign(conn, i, pin)
            if answer["ret_code"] != 0:
                errors.append(answer["message"])
                return
            counts[n] += 1
            i += 1

    try:
        requests.post(stack.url + "/sign", data={"tbsPackage": json.dumps(package(0, pin))}, timeout=30)
        started = time.monotonic()
        threads = [threading.Thread(target=work, args=(n,)) for n in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
    finally:
        stack.close()
    if errors:
        raise RuntimeError(errors[0])
    return sum(counts) / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100, help="requests (and floors) per run (default 100)")
    parser.add_argument("--runs", type=int, default=3, help="runs, each with fresh processes (default 3)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each throughput measurement")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.runs < 1 or args.seconds <= 0:
        parser.error("--rounds and --runs must be at least 1, --seconds positive")

    from eidemu.emulator.transport import pcscd

    pin = json.loads((ROOT / "fixtures/pki/identities" / SLUG / "identity.json").read_text("utf-8"))["initial_pin"]
    try:
        instance = pcscd.start(RUN_DIR)
    except pcscd.PcscdError as exc:
        print(f"bench_hipki: {exc}", file=sys.stderr)
        return 2
    service_times: list[float] = []
    floor_times: list[float] = []
    per_run: list[float] = []
    try:
        for run in range(args.runs):
            if not args.json:
                print(f"run {run + 1}/{args.runs}", file=sys.stderr, flush=True)
            services, floors = measure_run(instance.port, args.rounds, pin, args.json)
            service_times += services
            floor_times += floors
            per_run.append(statistics.median(services) / statistics.median(floors))
        one = throughput(instance.port, 1, args.seconds, pin)
        two = throughput(instance.port, 2, args.seconds, pin)
    finally:
        pcscd.stop(RUN_DIR)
    service, floor = statistics.median(service_times), statistics.median(floor_times)
    report = {
        "rounds": args.rounds,
        "runs": args.runs,
        "service_median_ms": round(service * 1000, 3),
        "floor_median_ms": round(floor * 1000, 3),
        "ratio": round(service / floor, 3),
        "run_ratios": [round(r, 3) for r in per_run],
        "paired_ratio_median": round(statistics.median(a / b for a, b in zip(service_times, floor_times)), 3),
        "requests_per_second_1_client": round(one, 1),
        "requests_per_second_2_clients": round(two, 1),
        "target": 1.3,
    }
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(f"/sign PKCS7 through the service: median {report['service_median_ms']} ms")
        print(f"floor (same card operations over PC/SC + same CMS): median {report['floor_median_ms']} ms")
        print(f"ratio {report['ratio']} (target <= 1.3); each run: {' '.join(f'{r:.3f}' for r in per_run)}")
        print(f"median of per-round ratios {report['paired_ratio_median']}")
        one, two = report["requests_per_second_1_client"], report["requests_per_second_2_clients"]
        print(f"requests/s: 1 client {one}, 2 clients {two}")
    return 0 if report["ratio"] <= 1.3 else 1


if __name__ == "__main__":
    sys.exit(main())

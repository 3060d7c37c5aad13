"""``eidemu ics serve``: the ICS CheckSNPID double (TEST) over HTTPS."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from eidemu.fixtures import fixture_path

from . import EXIT_OK, UsageError

DEFAULT_PORT = 8767


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ics", help="ICS identity confirmation double (TEST) for banks")
    psub = p.add_subparsers(dest="ics_command", metavar="ACTION", required=True)
    serve = psub.add_parser("serve", help="serve CheckSNPID over HTTPS with a TEST server certificate")
    serve.add_argument("--pki", type=Path, default=fixture_path("pki"), metavar="DIR", help="default: the TEST PKI")
    serve.add_argument("--bank", type=Path, action="append", default=[], metavar="PEM",
                       help="a registered bank certificate (repeatable; default: the shipped TEST bank)")  # fmt: skip
    serve.add_argument("--cert", type=Path, metavar="PEM", help="server certificate (default: the TEST one)")
    serve.add_argument("--key", type=Path, metavar="PEM", help="server key (default: the TEST one)")
    serve.add_argument("--host", default="127.0.0.1", help="default: loopback only")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve.add_argument("--database-failure", action="store_true", help="answer every record with Code 999")
    serve.set_defaults(handler=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    from eidemu.emulator.pki.http_service import LocalHttpService
    from eidemu.emulator.pki.store import PkiLayoutError, TestPki
    from eidemu.services import ics
    from eidemu.services.server import serve_until_signal

    started = time.monotonic()
    if not 0 <= args.port <= 65535:
        raise UsageError(f"port out of range: {args.port}")
    if (args.cert is None) != (args.key is None):
        raise UsageError("--cert and --key go together")
    banks = ics.load_banks(args.bank or [ics.ICS_FIXTURES / "bank.cert.pem"])
    try:
        service = ics.IcsService(TestPki.load(args.pki), banks, database_failure=args.database_failure)
    except PkiLayoutError as exc:
        raise UsageError(str(exc)) from None
    try:
        context = ics.server_context(args.cert, args.key) if args.cert else ics.server_context()
    except __import__("ssl").SSLError as exc:
        raise UsageError(f"{args.cert}: {exc.reason or exc}") from None
    logging.getLogger("eidemu.http").setLevel(logging.INFO)
    http = LocalHttpService(service.handle, args.host, args.port, name="eidemu-ics", ssl_context=context)
    print(
        f"eidemu ics serve: TEST CheckSNPID at {http.base_url}{ics.ICS_PATH.lstrip('/')} "
        f"({len(service.banks)} banks, ready in {(time.monotonic() - started) * 1000:.0f} ms)",
        flush=True,
    )
    with http:
        serve_until_signal(http)
    return EXIT_OK

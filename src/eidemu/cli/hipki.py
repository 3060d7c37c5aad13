"""``eidemu hipki serve|control``: the HiPKI-compatible local signing service (docs/hipki.md)."""

from __future__ import annotations

import argparse
import ipaddress
import json
import urllib.error
import urllib.request
from pathlib import Path

from . import EXIT_CARD_ERROR, EXIT_OK, UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("hipki", help="a HiPKI-compatible local signing service (localhost:61161) over a card")
    psub = p.add_subparsers(dest="hipki_command", metavar="ACTION", required=True)
    serve = psub.add_parser("serve", help="serve the HiPKI HTTP API over a card")
    serve.add_argument(
        "--card", default="pcsc:", metavar="URI", help="pcsc:[READER PREFIX] (default: all readers) or emulator:PROFILE"
    )
    serve.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=61161)
    serve.add_argument(
        "--trust-file",
        type=Path,
        metavar="FILE",
        help="trusted-site list (default: ~/.config/eidemu/hipki-trusted-sites.json)",
    )
    serve.add_argument("--trust", action="append", default=[], metavar="HOST", help="trust this site (repeatable)")
    serve.add_argument("--auto-approve", action="store_true", help="grant /addDomain without asking (headless tests)")
    serve.add_argument(
        "--user",
        action="append",
        default=[],
        metavar="STEP",
        help="scripted user step: pin:DIGITS, cancel, timeout, approve, deny (repeatable, used in order)",
    )
    serve.add_argument("--test-control", action="store_true", help="enable POST /eidemu/control (tests only)")
    serve.add_argument("--queue-timeout", type=float, default=30.0, metavar="S", help="longest wait for a busy card")
    serve.add_argument(
        "--prompt-timeout", type=float, default=1.0, metavar="S", help="the scripted user's 'timeout' wait"
    )
    serve.add_argument("--max-body", type=int, default=1 << 20, metavar="BYTES", help="largest request body")
    serve.add_argument("--allow-non-loopback", action="store_true", help=argparse.SUPPRESS)
    serve.set_defaults(handler=run_serve)
    ctl = psub.add_parser("control", help="test control of a running service (started with --test-control)")
    ctl.add_argument("--port", type=int, default=61161)
    ctl.add_argument("--fail-next", metavar="CODE", help="make the next request answer this ret_code (e.g. 0x76000006)")
    ctl.add_argument("--last-error", default="0", metavar="CODE", help="last_error of --fail-next")
    ctl.add_argument("--path", help="only the next request to this path (e.g. /sign)")
    ctl.add_argument("--user", action="append", default=[], metavar="STEP", help="append scripted user steps")
    ctl.add_argument("--card", choices=("remove", "insert"), help="remove or insert the emulated card (emulator: only)")
    ctl.add_argument("--trust", metavar="HOST", help="trust a site")
    ctl.set_defaults(handler=run_control)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_serve(args: argparse.Namespace) -> int:
    import dataclasses

    from eidemu.hipki.server import LIMITS, ServiceConfig, serve_forever
    from eidemu.hipki.trust import default_trust_file
    from eidemu.hipki.user import Step

    if not _loopback(args.host) and not args.allow_non_loopback:
        raise UsageError(f"--host {args.host}: the service binds only loopback addresses (127.0.0.1, ::1)")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: not a TCP port")
    try:
        steps = [Step.parse(s) for s in args.user]
    except ValueError as exc:
        raise UsageError(f"--user: {exc}") from None
    config = ServiceConfig(
        card=args.card,
        host=args.host,
        port=args.port,
        trust_file=args.trust_file or default_trust_file(),
        trusted=tuple(args.trust),
        auto_approve=args.auto_approve,
        user_steps=steps,
        test_control=args.test_control,
        queue_timeout=args.queue_timeout,
        prompt_timeout=args.prompt_timeout,
        limits=dataclasses.replace(LIMITS, max_body=args.max_body),
    )
    try:
        serve_forever(config)
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def _code(text: str, what: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise UsageError(f"{what} {text!r}: not a number (0x76000006 or decimal)") from None


def run_control(args: argparse.Namespace) -> int:
    body: dict[str, object] = {}
    if args.fail_next is not None:
        spec: dict[str, object] = {
            "ret_code": _code(args.fail_next, "--fail-next"),
            "last_error": _code(args.last_error, "--last-error"),
        }
        if args.path:
            spec["path"] = args.path
        body["fail_next"] = spec
    if args.user:
        body["user"] = args.user
    if args.card:
        body["card"] = args.card
    if args.trust:
        body["trust"] = args.trust
    if not body:
        raise UsageError("nothing to do: give --fail-next, --user, --card or --trust")
    request = urllib.request.Request(
        f"http://127.0.0.1:{args.port}/eidemu/control",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "X-Eidemu-Control": "1"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback URL built here
            print(response.read().decode())
            return EXIT_OK
    except urllib.error.HTTPError as exc:
        print(f"eidemu: error: the service refused: {exc.read().decode().strip()}")
        return EXIT_CARD_ERROR
    except urllib.error.URLError as exc:
        raise UsageError(f"no service on port {args.port}: {exc.reason}") from None

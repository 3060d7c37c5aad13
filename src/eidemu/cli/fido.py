"""``eidemu fido serve|phone``: the mobile citizen certificate service double and its scripted phone."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from pathlib import Path

from eidemu.fixtures import fixture_path

from . import EXIT_CARD_ERROR, EXIT_OK, UsageError

DEFAULT_PORT = 8766


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fido", help="mobile citizen certificate service double (TEST) and scripted phone")
    psub = p.add_subparsers(dest="fido_command", metavar="ACTION", required=True)
    serve = psub.add_parser("serve", help="serve the SP API (/moise/sp/...) on loopback HTTP")
    serve.add_argument("--pki", type=Path, default=fixture_path("pki"), metavar="DIR", help="default: the TEST PKI")
    serve.add_argument("--config", type=Path, metavar="FILE", help="JSON: service_providers, policy, quirks")
    serve.add_argument("--policy", type=Path, metavar="FILE",
                       help="JSON: the scripted phone's policy and default_policy")  # fmt: skip
    serve.add_argument("--host", default="127.0.0.1", help="default: loopback only")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve.set_defaults(handler=run_serve)
    phone = psub.add_parser("phone", help="act as the holder's phone against a running service")
    phone.add_argument("action", choices=("approve", "cancel", "biometric_fail", "wrong_app", "timeout", "unbind",
                                          "bind", "no_push_token", "push_token"))  # fmt: skip
    phone.add_argument("--server", default=f"http://127.0.0.1:{DEFAULT_PORT}/", metavar="URL")
    phone.add_argument("--ticket", metavar="SP_TICKET", help="a pushed ticket")
    phone.add_argument("--link", metavar="URL", help="a deep link or QR payload to scan")
    phone.add_argument("--id-num", metavar="ID", help="the holder (required for device actions)")
    phone.add_argument("--after", type=float, default=0.0, metavar="SECONDS", help="answer becomes visible later")
    phone.set_defaults(handler=run_phone)


def run_serve(args: argparse.Namespace) -> int:
    from eidemu.emulator.pki.http_service import LocalHttpService
    from eidemu.emulator.pki.store import PkiLayoutError, TestPki
    from eidemu.services.fido import FidoConfig, FidoService
    from eidemu.services.server import serve_until_signal

    started = time.monotonic()
    if not 0 <= args.port <= 65535:
        raise UsageError(f"port out of range: {args.port}")
    config = FidoConfig.load(args.config) if args.config else FidoConfig()
    if args.policy:
        policy = FidoConfig.load(args.policy)
        config = dataclasses.replace(config, policy=policy.policy, default_policy=policy.default_policy)
    try:
        service = FidoService(TestPki.load(args.pki), config)
    except PkiLayoutError as exc:
        raise UsageError(str(exc)) from None
    if not service.holders:
        raise UsageError(f"{args.pki}: no mobile certificates (mobile/manifest.json)")
    logging.getLogger("eidemu.http").setLevel(logging.INFO)  # one line per request on stderr
    http = LocalHttpService(service.handle, args.host, args.port, name="eidemu-fido")
    print(
        f"eidemu fido serve: TEST mobile certificate service at {http.base_url}moise/sp/ "
        f"({len(service.holders)} holders, {len(service.providers)} SPs, ready in "
        f"{(time.monotonic() - started) * 1000:.0f} ms)",
        flush=True,
    )
    with http:
        serve_until_signal(http)
    return EXIT_OK


def run_phone(args: argparse.Namespace) -> int:
    from eidemu.services.phone import DEVICE_ACTIONS, Phone, PhoneError

    phone = Phone(args.server, args.id_num)
    try:
        if args.action in DEVICE_ACTIONS:
            if not args.id_num:
                raise UsageError(f"{args.action}: --id-num is required")
            outcome = phone.device(args.action)
        else:
            if not args.ticket and not args.link:
                raise UsageError(f"{args.action}: --ticket or --link is required")
            outcome = phone.answer(args.action, args.ticket, link=args.link, after=args.after)
    except PhoneError as error:
        print(f"eidemu fido phone: refused: {error}")
        return EXIT_CARD_ERROR
    print(f"eidemu fido phone: {args.action}: {outcome}")
    return EXIT_OK

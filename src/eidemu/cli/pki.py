"""``eidemu pki generate|serve``: build the MOICA-shaped test PKI and run its CRL/OCSP services."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from eidemu.fixtures import fixture_path

from . import EXIT_OK, UsageError

DEFAULT_PKI_DIR = fixture_path("pki")


def register(sub: argparse._SubParsersAction) -> None:
    from eidemu.emulator.pki import DEFAULT_BASE_URL, DEFAULT_SEED

    p = sub.add_parser("pki", help="generate the test PKI or serve its CRLs and OCSP")
    psub = p.add_subparsers(dest="pki_command", metavar="ACTION", required=True)
    gen = psub.add_parser("generate", help="rebuild the test CAs, identities, certificates and CRLs")
    gen.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="where to write it (fixtures/pki in a checkout is the shipped one)",
    )
    gen.add_argument(
        "--base-url",
        default=DEFAULT_BASE_URL,
        metavar="URL",
        help=f"where `eidemu pki serve` will listen; written into CRLDP/AIA (default {DEFAULT_BASE_URL})",
    )
    gen.add_argument("--seed", type=int, default=DEFAULT_SEED, metavar="N", help="identity seed")
    gen.add_argument(
        "--eid-only",
        action="store_true",
        help="rebuild only DIR/eid (CSCA Taiwan TEST, Document Signers, master list, chip data) "
        "from the identities of an existing PKI, leaving its other files as they are "
        "(identities, base URL and dates come from its manifest; --seed and --base-url are ignored)",
    )
    gen.add_argument(
        "--eac-only",
        action="store_true",
        help="rebuild only DIR/eac (the TEST EAC PKI: CVCAs, link certificate, document verifiers, "
        "terminals and their keys), leaving the other files as they are",
    )
    gen.set_defaults(handler=run_generate)
    serve = psub.add_parser("serve", help="publish CRLs and answer OCSP requests over loopback HTTP")
    serve.add_argument("--pki", type=Path, default=DEFAULT_PKI_DIR, metavar="DIR", help="default: the shipped TEST PKI")
    serve.add_argument("--host", default="127.0.0.1", help="default: loopback only")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument(
        "--max-connections",
        type=int,
        default=256,
        metavar="N",
        help="open connections at most; beyond, the oldest idle one is closed (default 256)",
    )
    serve.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="a connection is closed this long after it opened, answered or not (default 10)",
    )
    serve.set_defaults(handler=run_serve)


@contextmanager
def progress_display() -> Iterator[Callable[[int, int, str], None]]:
    """A rich progress bar on a terminal, one plain line per step otherwise."""
    if sys.stdout.isatty():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(
            TextColumn("{task.description:<36}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
        ) as bar:
            task = bar.add_task("starting", total=None)

            def report(done: int, total: int, description: str) -> None:
                bar.update(task, completed=done, total=total, description=description)

            yield report
        return

    def plain(done: int, total: int, description: str) -> None:
        print(f"[{done:2d}/{total}] {description}", flush=True)

    yield plain


def run_generate(args: argparse.Namespace) -> int:
    """The whole TEST PKI: MOICA-shaped CAs and identities with the eID data (``generate_pki``),
    then the EAC PKI (``eac/``) and the mobile certificates (``mobile/``, issued by the new
    TEST MOICA G3), so no part is left signed by keys of an earlier run."""
    from eidemu.emulator.pki.eac import SPECS as EAC_SPECS
    from eidemu.emulator.pki.eac import generate_eac
    from eidemu.emulator.pki.generate import IDENTITY_SPECS, generate_pki
    from eidemu.emulator.pki.mobile import generate_mobile, has_mobile_certificate

    started = time.monotonic()
    if args.eac_only:
        return _run_generate_eac(args, started)
    if args.eid_only:
        return _run_generate_eid(args, started)
    with progress_display() as report:
        after = len(EAC_SPECS) + sum(has_mobile_certificate(spec.ca) for spec in IDENTITY_SPECS)
        position = {"done": 0, "total": after}

        def numbered(done: int, total: int, description: str) -> None:  # generate_pki's steps
            position.update(done=done, total=total + after)
            if done < total:  # its last report says it is complete; the whole is not yet
                report(done, total + after, description)

        def following(description: str) -> None:  # then one step per CV certificate, mobile certificate
            report(position["done"], position["total"], description)
            position["done"] += 1

        manifest = generate_pki(args.out, base_url=args.base_url, seed=args.seed, progress=numbered)
        eac = generate_eac(args.out, progress=following)
        generate_mobile(args.out, progress=following)
        report(position["total"], position["total"], "done")
    print(
        f"test PKI written to {args.out}: {len(manifest['cas'])} CAs, {len(manifest['identities'])} identities, "
        f"{len(eac['certificates'])} CV certificates, {time.monotonic() - started:.1f} s; "
        f"serve it at {manifest['base_url']}"
    )
    return EXIT_OK


def _run_generate_eid(args: argparse.Namespace, started: float) -> int:
    from eidemu.emulator.pki.eid import regenerate_eid

    if not (args.out / "manifest.json").is_file():
        raise UsageError(f"{args.out}: no manifest.json; --eid-only needs an existing test PKI")
    try:
        manifest = regenerate_eid(args.out, progress=lambda text: print(text, flush=True))
    except (ValueError, KeyError) as exc:
        raise UsageError(f"{args.out}: {exc}") from None
    print(
        f"eID data written to {args.out / 'eid'}: CSCA Taiwan TEST, {len(manifest['signers'])} signers, "
        f"{len(manifest['chips'])} chips, {time.monotonic() - started:.1f} s"
    )
    return EXIT_OK


def _run_generate_eac(args: argparse.Namespace, started: float) -> int:
    from eidemu.emulator.pki.eac import generate_eac

    manifest = generate_eac(args.out, progress=lambda text: print(text, flush=True))
    print(
        f"EAC PKI written to {args.out / 'eac'}: {len(manifest['certificates'])} CV certificates, "
        f"{time.monotonic() - started:.1f} s"
    )
    return EXIT_OK


def run_serve(args: argparse.Namespace) -> int:
    from eidemu.emulator.pki.http_service import HttpLimits
    from eidemu.emulator.pki.services import serve_forever

    if not 0 <= args.port <= 65535:
        raise UsageError(f"port out of range: {args.port}")
    if not 1 <= args.max_connections <= 65535:
        raise UsageError(f"--max-connections must be between 1 and 65535, not {args.max_connections}")
    if not 0 < args.timeout <= 3600:  # also refuses nan and inf
        raise UsageError(f"--timeout must be more than 0 and at most 3600 seconds, not {args.timeout:g}")
    limits = HttpLimits(max_connections=args.max_connections, connection_timeout=args.timeout)
    logging.getLogger("eidemu.http").setLevel(logging.INFO)  # one line per request on stderr
    serve_forever(args.pki, args.host, args.port, limits=limits)
    return EXIT_OK

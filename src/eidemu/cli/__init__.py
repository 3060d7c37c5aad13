"""The ``eidemu`` command line: one entry point, one module per subcommand group.

Exit codes: 0 success; 1 a card answered an error where success was expected (or a test
failed); 2 usage or input error. Errors are one readable line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Each module has register(subparsers); a subcommand's handler returns the exit code.
SUBCOMMAND_MODULES = (
    "eidemu.cli.demo",
    "eidemu.cli.apdu",
    "eidemu.cli.profile",
    "eidemu.cli.serve",
    "eidemu.cli.pcscd",
    "eidemu.cli.pki",
    "eidemu.cli.conformance",
    "eidemu.cli.record",
    "eidemu.cli.hipki",
    "eidemu.cli.fault",
    "eidemu.cli.eid",
    "eidemu.cli.fido",
    "eidemu.cli.ics",
)

EXIT_OK, EXIT_CARD_ERROR, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad arguments or input files; printed as one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="eidemu",
        description="Emulated Taiwan identity smart cards and a conformance test harness.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log card-side events to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    import logging

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="eidemu: %(message)s")
    from eidemu.conformance.connection import CardConnectionError
    from eidemu.emulator.profile import ProfileError
    from eidemu.emulator.state import StateError

    try:
        return int(args.handler(args))
    except BrokenPipeError:  # output piped into head and the like
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except (UsageError, ProfileError, StateError, CardConnectionError, OSError, ValueError) as exc:
        print(f"eidemu: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except RecursionError:
        print("eidemu: error: input nested too deeply", file=sys.stderr)
        return EXIT_USAGE
    except MemoryError:
        print("eidemu: error: out of memory reading the input", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("eidemu: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a defect in eidemu: still one line, the traceback only with -v
        logging.getLogger("eidemu").debug("internal error", exc_info=True)
        print(
            f"eidemu: internal error ({type(exc).__name__}): {_one_line(exc)}; please report it (-v shows where)",
            file=sys.stderr,
        )
        if args.verbose:
            import traceback

            traceback.print_exc()
        return EXIT_USAGE


def _one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line (messages from libraries may span several)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 500 else text[:500] + " ..."


if __name__ == "__main__":
    sys.exit(main())

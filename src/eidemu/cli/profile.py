"""``eidemu profile check|show``: validate and describe card profiles."""

from __future__ import annotations

import argparse
import sys

from . import EXIT_OK, EXIT_USAGE


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("profile", help="check or show card profile files")
    psub = p.add_subparsers(dest="profile_command", metavar="ACTION", required=True)
    check = psub.add_parser("check", help="validate profile files; one line per problem")
    check.add_argument("files", nargs="+", metavar="FILE")
    check.set_defaults(handler=run_check)
    show = psub.add_parser("show", help="print a profile's card: ATR, files, PINs, applications")
    show.add_argument("file", metavar="FILE")
    show.set_defaults(handler=run_show)


def run_check(args: argparse.Namespace) -> int:
    """Each file: ``ok``, or one line per problem on stderr (exit 2 if any file has one).

    A file that does not load is one line (the first problem); one that loads is checked
    further for likely mistakes (:func:`~eidemu.emulator.profile.check_profile`)."""
    from eidemu.emulator.profile import ProfileError, check_profile, load_profile

    failed = False
    for name in args.files:
        try:
            profile = load_profile(name)
            problems = check_profile(profile)
        except ProfileError as exc:
            print(f"eidemu: error: {exc}", file=sys.stderr)
            failed = True
            continue
        for problem in problems:
            print(f"eidemu: error: {problem}", file=sys.stderr)
        if problems:
            failed = True
        else:
            print(f"{profile.path}: ok ({profile.name})")
    return EXIT_USAGE if failed else EXIT_OK


def run_show(args: argparse.Namespace) -> int:
    from eidemu.emulator.cardos.fs import DF, RecordEF, TransparentEF
    from eidemu.emulator.profile import load_profile

    profile = load_profile(args.file)
    card = profile.build()
    print(f"profile  {profile.name}  ({profile.path})")
    desc = profile.document.get("description")
    if desc:
        print(f"         {' '.join(str(desc).split())}")
    print(f"ATR      {card.atr.hex(' ').upper()}")
    print(f"channels {card.max_channels}")
    print(f"default application: {card.default_app.type_name}")
    for aid, app in card.applications.items():
        print(f"application {aid.hex().upper()}  type {app.type_name}  DF {app.df.path}")
    for pin in card.pins.values():
        puk = f", PUK {pin.puk_ref:02X}" if pin.puk_ref is not None else ""
        print(
            f"PIN {pin.ref:02X} {pin.name or ''}: {pin.max_tries} tries, length {pin.min_length}..{pin.max_length}{puk}"
        )
    for key in card.keys.values():
        print(f"key {key.ref:02X}: {key.algorithm} (test key)")
    print("files:")
    for f in card.mf.walk():
        depth = f.path.count("/")
        if isinstance(f, DF):
            kind = "DF" + (f"  name {f.aid.hex().upper()}" if f.aid else "")
        elif isinstance(f, TransparentEF):
            kind = f"EF transparent, {len(f.data)} bytes"
        elif isinstance(f, RecordEF):
            kind = f"EF records, {len(f.records)} of max {f.max_records}"
        else:
            kind = "?"
        sfi = f"  SFI {f.sfi:02X}" if f.sfi is not None else ""
        rules = ", ".join(f"{op} {cond}" for op, cond in sorted(f.access.items()))
        print(f"  {'  ' * depth}{f.fid:04X} {f.name}: {kind}{sfi}{'  [' + rules + ']' if rules else ''}")
    return EXIT_OK

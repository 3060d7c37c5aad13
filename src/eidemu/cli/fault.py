"""``eidemu fault``: arm, clear and inspect fault plans of a running ``eidemu serve``.

Talks to the server's control socket (a UNIX socket only the same user can open; its path
is printed by ``eidemu serve``): ``--control PATH``, else ``$EIDEMU_FAULTS``, else the
default path. See docs/faults.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import IO, Any

from . import EXIT_OK, UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fault",
        help="arm, clear or show fault plans of cards served by 'eidemu serve'",
        description="Change the fault plan of a card while it runs. Rules are one-line "
        "'key=value' words, e.g. 'fault=remove command=80EA02 reinsert_after=2' (docs/faults.md).",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    arm = actions.add_parser("arm", help="arm a plan (file or rules) on a slot, replacing its plan")
    arm.add_argument("rules", nargs="*", metavar="RULE", help="one-line rules")
    arm.add_argument("--plan", help="a plan file (YAML or JSON) instead of rules")
    arm.add_argument("--seed", type=int, help="seed for rules with a probability")
    for name, text in (
        ("clear", "disarm a slot's plan (and bring back a card a fault removed)"),
        ("reinsert", "bring back a card a fault removed"),
        ("status", "show plans, fired counts and APDU counts"),
    ):
        actions.add_parser(name, help=text)
    for action in actions.choices.values():
        action.add_argument("--slot", type=int, default=None if action is actions.choices["status"] else 0)
        action.add_argument("--control", metavar="PATH", help="the control socket (default: $EIDEMU_FAULTS)")
        action.add_argument("--json", action="store_true", help="print the server's answer as JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, out: IO[str] | None = None) -> int:
    from eidemu.emulator.faults import FaultPlan, PlanError, load_plan
    from eidemu.emulator.faults.control import request

    out = out or sys.stdout
    doc: dict[str, Any] = {"op": args.action, "slot": args.slot}
    if args.action == "arm":
        if bool(args.plan) == bool(args.rules):
            raise UsageError("fault arm: give --plan FILE or one or more RULEs")
        try:
            plan = (
                load_plan(args.plan) if args.plan else FaultPlan.from_lines(args.rules, seed=args.seed, source="rule")
            )
        except PlanError as exc:
            raise UsageError(str(exc)) from None
        doc["plan"] = plan.encode()
    answer = request(doc, args.control)
    if args.json:
        print(json.dumps(answer, indent=1, sort_keys=True), file=out)
        return EXIT_OK
    if "slots" in answer:
        if not answer["slots"]:
            print("no cards", file=out)
        for slot, status in sorted(answer["slots"].items(), key=lambda item: int(item[0])):
            print(_describe(int(slot), status), file=out)
    elif "status" in answer:
        print(_describe(answer["slot"], answer["status"]), file=out)
    else:
        print(f"slot {answer['slot']}: {args.action} done", file=out)
    return EXIT_OK


def _describe(slot: int, status: dict[str, Any]) -> str:
    rules = status.get("rules", [])
    head = f"slot {slot}: " + (f"{len(rules)} rule(s) armed" if status.get("armed") else "no plan armed")
    head += f", {status.get('apdus', 0)} APDU(s) seen, timing {status.get('timing', 'off')}"
    lines = [head]
    for rule, fired in zip(rules, status.get("fired", [])):
        lines.append(f"  fired {fired}x: {rule}")
    return "\n".join(lines)

"""Card profiles: a card described as a YAML or JSON document, validated at load time.

The schema is documented in ``docs/profile-format.md``. Every problem is reported as one
:class:`ProfileError` line naming the file, the place in the document (``files[1].children
[0].fid``) and what is wrong.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import os
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from eidemu.fixtures import fixture_path

from .cardos.card import Application, Card, OptionError, SymmetricKey
from .cardos.fs import DF, File, RecordEF, TransparentEF
from .cardos.security import NEVER, AccessCondition, AccessOperation, Pin
from .formats import documents
from .formats.files import (
    CONTENT_LIMIT,
    PROFILE_LIMIT,
    InputFileError,
    is_inside,
    read_bounded,
    read_text_bounded,
)
from .iso7816.apdu import parse_hex
from .iso7816.crypto import BlockAlgorithm

PROFILE_VERSION = 1
PROFILE_DIR = fixture_path("profiles")

T = TypeVar("T")


class ProfileError(ValueError):
    """A profile that cannot be loaded; the message is one line meant for users."""


@dataclass
class Node:
    """A value in the profile document together with where it is, for error messages."""

    value: Any
    where: str
    source: str
    base_dir: Path

    def fail(self, message: str) -> ProfileError:
        return ProfileError(f"{self.source}: {self.where or 'top level'}: {message}")

    def fail_at(self, path: str, message: str) -> ProfileError:
        """An error at ``path`` below this node (``keys[1].usage``)."""
        where = f"{self.where}.{path}" if self.where and not path.startswith("[") else f"{self.where}{path}"
        return ProfileError(f"{self.source}: {where}: {message}")

    def child(self, key: str | int) -> Node:
        where = f"{self.where}[{key}]" if isinstance(key, int) else (f"{self.where}.{key}" if self.where else key)
        return Node(self.value[key], where, self.source, self.base_dir)

    def mapping(self, allowed: set[str], required: set[str] = frozenset()) -> dict[str, Any]:  # type: ignore[assignment]
        if not isinstance(self.value, dict):
            raise self.fail(f"expected a mapping, found {type(self.value).__name__}")
        unknown = sorted(set(map(str, self.value)) - allowed)
        if unknown:
            raise self.fail(f"unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")
        missing = sorted(required - set(self.value))
        if missing:
            raise self.fail(f"missing required key {missing[0]!r}")
        return self.value

    def get(self, key: str) -> Node | None:
        return self.child(key) if key in self.value else None

    def items(self) -> Iterator[Node]:
        if not isinstance(self.value, list):
            raise self.fail(f"expected a list, found {type(self.value).__name__}")
        for i in range(len(self.value)):
            yield self.child(i)

    def as_hex(self) -> bytes:
        if isinstance(self.value, int) and not isinstance(self.value, bool):
            return self.value.to_bytes(max(1, (self.value.bit_length() + 7) // 8), "big")
        if not isinstance(self.value, str):
            raise self.fail("expected a hex string")
        try:
            return parse_hex(self.value)
        except ValueError as exc:
            raise self.fail(str(exc)) from None  # never the value: it may be a PIN or a key

    def as_ref(self, bits: int = 8) -> int:
        """A reference or identifier given as an integer or as a hex string."""
        if isinstance(self.value, bool):
            raise self.fail("expected a number")
        if isinstance(self.value, int):
            number = self.value
        else:
            raw = self.as_hex()
            if len(raw) * 8 > bits:
                raise self.fail(f"expected at most {bits // 8} byte(s), got {len(raw)}")
            number = int.from_bytes(raw, "big")
        if not 0 <= number < (1 << bits):
            raise self.fail(f"value {number} out of range")
        return number

    def as_int(self, low: int, high: int) -> int:
        value = self.value
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail("expected a decimal integer")
        if not low <= value <= high:
            raise self.fail(f"must be between {low} and {high}")
        return value

    def as_str(self) -> str:
        if not isinstance(self.value, str):
            raise self.fail("expected a string")
        return self.value

    def as_bytes(self) -> bytes:
        """Content: hex string, or a mapping with one of hex / text / file."""
        if isinstance(self.value, str):
            return self.as_hex()
        spec = self.mapping({"hex", "text", "file", "pad_to", "pad_byte"})
        sources = [k for k in ("hex", "text", "file") if k in spec]
        if len(sources) != 1:
            raise self.fail("content needs exactly one of hex, text, file")
        kind = sources[0]
        node = self.child(kind)
        if kind == "hex":
            data = node.as_hex()
        elif kind == "text":
            data = node.as_str().encode("utf-8")
        else:
            path = (self.base_dir / node.as_str()).resolve()
            try:
                data = read_bounded(path, CONTENT_LIMIT, "content file")
            except FileNotFoundError:
                raise node.fail(f"cannot read {node.value!r}: no such file") from None
            except InputFileError as exc:
                raise node.fail(f"{node.value!r}: {str(exc).partition(': ')[2]}") from None
            if path.suffix in (".pem", ".crt") and data.lstrip().startswith(b"-----BEGIN"):
                data = _pem_to_der(data, node)
        if "pad_to" in spec:
            size = self.child("pad_to").as_int(0, 1 << 24)
            pad = self.child("pad_byte").as_ref() if "pad_byte" in spec else 0
            if len(data) > size:
                raise self.fail(f"content of {len(data)} bytes exceeds pad_to {size}")
            data = data.ljust(size, bytes((pad,)))
        return data

    def optional(self, key: str, convert: Callable[[Node], T], default: T) -> T:
        node = self.get(key)
        return default if node is None else convert(node)


def _pem_to_der(data: bytes, node: Node) -> bytes:
    import base64

    lines = [ln for ln in data.decode("ascii", "replace").splitlines() if ln and not ln.startswith("-----")]
    try:
        return base64.b64decode("".join(lines), validate=True)
    except ValueError:
        raise node.fail("PEM file is not valid base64") from None


TOP_KEYS = {
    "eidemu_profile",
    "name",
    "description",
    "atr",
    "channels",
    "get_response",
    "pins",
    "keys",
    "files",
    "applications",
    "default_application",
    "data_objects",
    "test_only",
}
FILE_KEYS = {
    "fid",
    "name",
    "type",
    "sfi",
    "aid",
    "content",
    "size",
    "fill",
    "records",
    "max_records",
    "record_size",
    "access",
    "children",
}
PIN_KEYS = {
    "ref",
    "name",
    "value",
    "value_hex",
    "tries",
    "remaining",
    "min_length",
    "max_length",
    "pad_to",
    "pad_byte",
    "puk",
    "unblock",
    "change",
}


@dataclass
class Profile:
    """A loaded, validated profile: the document and enough to build fresh cards from it."""

    path: Path
    document: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.document.get("name", self.path.stem))

    @property
    def profile_id(self) -> str:
        """Name plus a digest of the document: a state file only fits the profile it came from."""
        digest = hashlib.sha256(json.dumps(self.document, sort_keys=True, default=str).encode())
        return f"{self.name}#{digest.hexdigest()[:12]}"

    def build(self, state_file: str | Path | None = None) -> Card:
        """A freshly personalised card; with ``state_file``, its saved state applied.

        The state file is locked for the card's life and checked against the profile
        before it is applied (:mod:`eidemu.emulator.state`): StateError otherwise."""
        from .state import StateStore, validate_state

        card = _build_card(self)
        if state_file is not None:
            card.store = store = StateStore(state_file, self.profile_id)
            try:
                saved = store.load()
                if saved is not None:
                    validate_state(saved, card, str(state_file))
            except BaseException:
                store.release()  # a refused state file is not kept locked
                raise
            if saved is not None:
                card.restore(saved)
        card.power_on()
        return card


def resolve_profile_path(name: str | Path) -> Path:
    """A path as given, or the name of a shipped profile in fixtures/profiles."""
    path = Path(name)
    if _exists(path):
        return path
    for suffix in ("", ".yaml", ".yml", ".json"):
        candidate = PROFILE_DIR / f"{name}{suffix}"
        if _exists(candidate):
            return candidate
    shipped = ", ".join(sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))) or "none"
    raise ProfileError(f"{name}: no such profile file (shipped profiles: {shipped})")


def _exists(path: Path) -> bool:
    """Whether anything is at ``path``; names the system cannot look up (too long, NUL) are not."""
    try:
        return os.path.lexists(path)
    except (OSError, ValueError):
        return False


def load_profile(name: str | Path) -> Profile:
    """Read and validate a profile; any problem raises one-line ProfileError."""
    path = resolve_profile_path(name)
    source = str(path)
    try:
        text = read_text_bounded(path, PROFILE_LIMIT, "profile")
    except FileNotFoundError:
        raise ProfileError(f"{source}: cannot read: no such file") from None
    except InputFileError as exc:
        raise ProfileError(str(exc)) from None
    doc = parse_document(text, source, json_syntax=path.suffix == ".json")
    profile = Profile(path, doc)
    _build_card(profile)  # full validation, including file references and applications
    return profile


def parse_document(text: str, source: str, json_syntax: bool = False) -> Any:
    """A YAML (or JSON) document with bounded nesting and size; ProfileError naming the place
    (:func:`eidemu.emulator.formats.documents.parse_document`)."""
    try:
        return documents.parse_document(text, source, json_syntax)
    except documents.DocumentError as exc:
        raise ProfileError(str(exc)) from None


CARD_MEMORY_LIMIT = 64 << 20
"""Most bytes the ``size`` and ``pad_to`` values of one profile may add up to: each is at
most 16 MiB, but a few lines could otherwise declare gigabytes of file content."""


def _declared_bytes(document: Any) -> int:
    """The sum of every ``size`` and ``pad_to`` in the document (walked without recursion)."""
    total, stack = 0, [document]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            for key in ("size", "pad_to"):
                number = value.get(key)
                if isinstance(number, str) and number.strip().isdigit():
                    number = int(number)
                if isinstance(number, int) and not isinstance(number, bool) and number > 0:
                    total += number
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return total


def _build_card(profile: Profile) -> Card:
    root = Node(profile.document, "", str(profile.path), profile.path.parent)
    top = root.mapping(TOP_KEYS, {"eidemu_profile", "atr"})
    declared = _declared_bytes(profile.document)
    if declared > CARD_MEMORY_LIMIT:
        raise root.fail(f"file sizes add up to {declared} bytes, more than the {CARD_MEMORY_LIMIT} a profile may hold")
    if root.child("eidemu_profile").as_int(0, 1 << 16) != PROFILE_VERSION:
        raise root.child("eidemu_profile").fail(f"unsupported version (this eidemu reads {PROFILE_VERSION})")
    atr = root.child("atr").as_hex()
    if not 2 <= len(atr) <= 33 or atr[0] not in (0x3B, 0x3F):
        raise root.child("atr").fail("an ATR is 2..33 bytes starting with 3B or 3F")
    mf = DF(0x3F00, name="MF")
    if "files" in top:
        for node in root.child("files").items():
            _add_file(mf, node)
    get_response = root.optional("get_response", Node.as_str, "auto")
    if get_response not in ("auto", "always"):
        raise root.child("get_response").fail("must be 'auto' or 'always'")
    card = Card(
        atr,
        mf,
        pins=_pins(root),
        keys=_keys(root),
        data_objects=_data_objects(root.get("data_objects")),
        max_channels=root.optional("channels", lambda n: n.as_int(1, 20), 4),
        always_get_response=get_response == "always",
        name=profile.name,
    )
    for pin in card.pins.values():
        if pin.puk_ref is not None and pin.puk_ref not in card.pins:
            raise root.fail(f"PIN {pin.ref:02X} names PUK {pin.puk_ref:02X}, which is not defined")
    _applications(root, card)
    return card


def _add_file(parent: DF, node: Node) -> None:
    spec = node.mapping(FILE_KEYS, {"fid"})
    fid = node.child("fid").as_ref(16)
    kind = node.optional("type", Node.as_str, "df" if "children" in spec or "aid" in spec else "ef")
    access = _access(node.get("access"))
    sfi = node.optional("sfi", lambda n: n.as_ref(), None)
    if sfi is not None and not 1 <= sfi <= 30:
        raise node.child("sfi").fail("a short EF identifier is 1..30")
    name = node.optional("name", Node.as_str, "")
    f: File
    if kind == "df":
        for key in ("content", "records", "size"):
            if key in spec:
                raise node.fail(f"a DF has no {key!r}")
        f = DF(fid, name=name, access=access, aid=node.optional("aid", Node.as_hex, b""))
    elif kind in ("ef", "transparent"):
        data = node.optional("content", Node.as_bytes, b"")
        size = node.optional("size", lambda n: n.as_int(0, 1 << 24), len(data))
        if len(data) > size:
            raise node.fail(f"content of {len(data)} bytes exceeds size {size}")
        fill = node.optional("fill", lambda n: n.as_ref(), 0)
        f = TransparentEF(fid, name=name, access=access, sfi=sfi, data=bytearray(data.ljust(size, bytes((fill,)))))
    elif kind in ("record", "linear"):
        records = [n.as_bytes() for n in node.child("records").items()] if "records" in spec else []
        f = RecordEF(
            fid,
            name=name,
            access=access,
            sfi=sfi,
            records=records,
            max_records=node.optional("max_records", lambda n: n.as_int(1, 254), 254),
            record_size=node.optional("record_size", lambda n: n.as_int(0, 255), 0),
        )
        if len(records) > f.max_records:
            raise node.fail("more records than max_records")
        for i, rec in enumerate(records):
            if (f.record_size and len(rec) != f.record_size) or len(rec) > 255:
                raise node.child("records").child(i).fail("record length does not fit the file")
    else:
        raise node.child("type").fail(f"unknown file type {kind!r} (df, ef, record)")
    try:
        parent.add(f)
    except ValueError as exc:
        raise node.fail(str(exc)) from None
    if "children" in spec:
        if not isinstance(f, DF):
            raise node.fail("only a DF has children")
        for child in node.child("children").items():
            _add_file(f, child)


def _data_objects(node: Node | None) -> dict[int, bytes]:
    """GET DATA objects: quoted hex tags (P1-P2) mapped to the bytes the card returns."""
    if node is None:
        return {}
    if not isinstance(node.value, dict):
        raise node.fail("expected a mapping of quoted hex tags to content")
    objects = {}
    for key in node.value:
        if not isinstance(key, str):
            raise node.fail(f"tag {key!r} must be a quoted hex string such as '5F52'")
        tag = Node(key, f"{node.where}.{key}", node.source, node.base_dir).as_ref(16)
        objects[tag] = node.child(key).as_bytes()
    return objects


def _access(node: Node | None) -> dict[AccessOperation, AccessCondition]:
    if node is None:
        return {}
    spec = node.mapping({op.value for op in AccessOperation})
    rules = {}
    for op in spec:
        text = node.child(op).as_str()
        try:
            rules[AccessOperation(op)] = AccessCondition.parse(text)
        except ValueError as exc:
            raise node.child(op).fail(str(exc)) from None
    return rules


def _pins(root: Node) -> dict[int, Pin]:
    pins: dict[int, Pin] = {}
    if root.get("pins") is None:
        return pins
    for node in root.child("pins").items():
        spec = node.mapping(PIN_KEYS, {"ref"})
        if ("value" in spec) == ("value_hex" in spec):
            raise node.fail("give exactly one of value (text) or value_hex")
        value = node.child("value").as_str().encode() if "value" in spec else node.child("value_hex").as_hex()
        conditions: dict[str, AccessCondition] = {}
        for key in ("unblock", "change"):
            conditions[key] = NEVER
            if key in spec:
                text = node.child(key).as_str()
                try:
                    conditions[key] = AccessCondition.parse(text)
                except ValueError as exc:
                    raise node.child(key).fail(str(exc)) from None
        tries = node.optional("tries", lambda n: n.as_int(1, 15), 3)
        pin = Pin(
            ref=node.child("ref").as_ref(),
            value=value,
            max_tries=tries,
            remaining=node.optional("remaining", partial(Node.as_int, low=0, high=tries), tries),
            name=node.optional("name", Node.as_str, ""),
            min_length=node.optional("min_length", lambda n: n.as_int(1, 64), 4),
            max_length=node.optional("max_length", lambda n: n.as_int(1, 64), 8),
            pad_to=node.optional("pad_to", lambda n: n.as_int(0, 64), 0),
            pad_byte=node.optional("pad_byte", lambda n: n.as_ref(), 0xFF),
            puk_ref=node.optional("puk", lambda n: n.as_ref(), None),
            unblock=conditions["unblock"],
            change=conditions["change"],
        )
        if not pin.min_length <= len(value) <= pin.max_length:
            raise node.fail(
                f"PIN value length must be within min_length..max_length ({pin.min_length}..{pin.max_length})"
            )
        if pin.pad_to and len(value) > pin.pad_to:
            raise node.fail("PIN value longer than pad_to")
        if pin.ref in pins:
            raise node.child("ref").fail(f"duplicate PIN reference {pin.ref:02X}")
        pins[pin.ref] = pin
    return pins


def _keys(root: Node) -> dict[int, SymmetricKey]:
    keys: dict[int, SymmetricKey] = {}
    if root.get("keys") is None:
        return keys
    for node in root.child("keys").items():
        node.mapping({"ref", "algorithm", "value", "name"}, {"ref", "algorithm", "value"})
        try:
            algorithm = BlockAlgorithm(node.child("algorithm").as_str().lower())
        except ValueError:
            raise node.child("algorithm").fail("must be 3des or aes") from None
        value = node.child("value").as_hex()
        if len(value) not in algorithm.key_sizes:
            raise node.child("value").fail(f"a {algorithm} key is {' or '.join(map(str, algorithm.key_sizes))} bytes")
        ref = node.child("ref").as_ref()
        if ref in keys:
            raise node.child("ref").fail(f"duplicate key reference {ref:02X}")
        keys[ref] = SymmetricKey(ref, algorithm, value)
    return keys


def _applications(root: Node, card: Card) -> None:
    from .applets import APPLICATION_TYPES

    def make(node: Node, kind: str, df: DF, aid: bytes) -> Application:
        cls = APPLICATION_TYPES.get(kind)
        if cls is None:
            raise node.fail(f"unknown application type {kind!r} (known: {', '.join(sorted(APPLICATION_TYPES))})")
        options_node = node.get("options") or Node({}, f"{node.where}.options", node.source, node.base_dir)
        options = _options(options_node, cls.options_type)
        try:
            return cls(card, df, aid, options)
        except OptionError as exc:
            raise options_node.fail_at(exc.path, exc.message) from None
        except (ValueError, KeyError, TypeError, OSError) as exc:  # a key file that does not load, ...
            if isinstance(exc, ProfileError):
                raise
            raise node.fail(f"{kind}: {exc}") from None

    default = root.get("default_application")
    if default is None:
        implicit = Node({}, "default_application", root.source, root.base_dir)
        card.set_default_application(make(implicit, "iso", card.mf, b""))
    else:
        default.mapping({"type", "options"}, {"type"})
        card.set_default_application(make(default, default.child("type").as_str(), card.mf, b""))
    if root.get("applications") is None:
        return
    for node in root.child("applications").items():
        spec = node.mapping({"aid", "type", "df", "options"}, {"aid", "type"})
        aid = node.child("aid").as_hex()
        if not 5 <= len(aid) <= 16:
            raise node.child("aid").fail("an AID is 5..16 bytes (ISO/IEC 7816-4:2020 §12.2.3)")
        df = card.mf
        if "df" in spec:
            try:
                found = card.mf.find_path(node.child("df").as_str())
            except (KeyError, ValueError):
                raise node.child("df").fail("no such DF in the file tree") from None
            if not isinstance(found, DF):
                raise node.child("df").fail("not a DF")
            df = found
        try:
            card.add_application(make(node, node.child("type").as_str(), df, aid))
        except ValueError as exc:
            if isinstance(exc, ProfileError):
                raise
            raise node.fail(str(exc)) from None


# -- profile check: what loads but is almost certainly a mistake ---------------------------

RESERVED_FIDS = {0x3FFF: "3FFF is reserved for path selection", 0xFFFF: "FFFF is reserved (RFU)"}
"""ISO/IEC 7816-4:2005 §5.3.1.1: 3FFF stands for the current DF in paths, FFFF is reserved;
3F00 names the MF and cannot name another file."""


def check_profile(profile: Profile) -> list[str]:
    """Problems in a profile that loads: one line each, naming the file and the place.

    Duplicate YAML keys are refused when the profile is read (:class:`ProfileError`);
    this finds duplicate DF names (AIDs), access rules naming a PIN or key the profile does
    not define, reserved file identifiers and content files outside the profile's folder.
    """
    card = _build_card(profile)
    source, base = str(profile.path), profile.path.parent
    problems: list[str] = []
    granted = frozenset().union(
        *(app.granted_authentications() for app in (card.default_app, *card.applications.values()))
    )
    # Shipped profiles may share the shipped data beside them (the TEST PKI's chip files).
    shipped = fixture_path()
    content_root = shipped if is_inside(profile.path, shipped) else base

    def note(where: str, message: str) -> None:
        problems.append(f"{source}: {where or 'top level'}: {message}")

    def rule(where: str, text: object) -> None:
        try:
            condition = AccessCondition.parse(str(text))
        except ValueError:
            return  # refused by the loader already
        branches = (condition, *condition.alternatives)
        for cond in (*branches, *(r for c in branches for r in c.requires)):
            if cond.kind == "pin" and cond.ref not in card.pins:
                note(where, f"names PIN {cond.ref:02X}, which the profile does not define")
            if cond.kind == "auth" and cond.ref not in card.keys and cond.ref not in granted:
                note(where, f"names key {cond.ref:02X}, which the profile does not define")

    def content_file(where: str, content: object) -> None:
        if isinstance(content, dict) and isinstance(content.get("file"), str):
            if not is_inside(base / content["file"], content_root):
                note(f"{where}.file", "content file lies outside the profile's folder")

    aids: dict[bytes, str] = {}

    def walk(entries: object, where: str) -> None:
        if not isinstance(entries, list):
            return
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict):
                continue
            here = f"{where}[{i}]"
            node = Node(entry, here, source, base)
            fid = node.child("fid").as_ref(16) if "fid" in entry else None
            if fid in RESERVED_FIDS:
                note(f"{here}.fid", RESERVED_FIDS[fid])
            elif fid == 0x3F00:
                note(f"{here}.fid", "3F00 is the MF and cannot name another file")
            if "aid" in entry:
                aid = node.child("aid").as_hex()
                if aid in aids:
                    note(f"{here}.aid", f"DF name {aid.hex().upper()} already used at {aids[aid]}")
                aids.setdefault(aid, f"{here}.aid")
            for op, text in (entry.get("access") or {}).items():
                rule(f"{here}.access.{op}", text)
            content_file(f"{here}.content", entry.get("content"))
            for j, record in enumerate(entry.get("records") or []):
                content_file(f"{here}.records[{j}]", record)
            walk(entry.get("children"), f"{here}.children")

    walk(profile.document.get("files"), "files")
    for i, pin in enumerate(profile.document.get("pins") or []):
        for key in ("unblock", "change"):
            if isinstance(pin, dict) and key in pin:
                rule(f"pins[{i}].{key}", pin[key])
    for key, value in (profile.document.get("data_objects") or {}).items():
        content_file(f"data_objects.{key}", value)
    return problems


def _options(node: Node, options_type: type[Any]) -> Any:
    """An application's options: the mapping checked against the fields of its options
    dataclass (``Application.options_type``) and converted field by field, by type."""
    if node.value is None:
        node = Node({}, node.where, node.source, node.base_dir)
    fields = {f.name: f for f in dataclasses.fields(options_type)}
    if not isinstance(node.value, dict):
        raise node.fail(f"expected a mapping, found {type(node.value).__name__}")
    unknown = sorted(set(map(str, node.value)) - set(fields))
    if unknown:
        allowed = ", ".join(fields) or "none"
        raise node.fail(f"unknown option {unknown[0]!r} (allowed: {allowed})")
    hints = typing.get_type_hints(options_type)
    values: dict[str, Any] = {}
    for name, f in fields.items():
        if name in node.value:
            values[name] = _option_value(node.child(name), hints[name])
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise node.fail(f"missing required option {name!r}")
    try:
        return options_type(**values)
    except OptionError as exc:
        raise node.fail_at(exc.path, exc.message) from None


def _option_value(node: Node, kind: Any) -> Any:
    """One option value converted to the field's type: hex for bytes, a one-byte reference
    (hex or integer) for int, a path relative to the profile for Path, an enum by its
    value, a list of mappings for a tuple of dataclasses."""
    origin = typing.get_origin(kind)
    if origin is types.UnionType or origin is typing.Union:
        choices = [k for k in typing.get_args(kind) if k is not type(None)]
        return None if node.value is None else _option_value(node, choices[0])
    if origin is tuple:
        item = typing.get_args(kind)[0]
        return tuple(_option_value(child, item) for child in node.items())
    if dataclasses.is_dataclass(kind):
        return _options(node, kind)  # type: ignore[arg-type]
    if kind is bool:
        if not isinstance(node.value, bool):
            raise node.fail("expected true or false")
        return node.value
    if kind is bytes:
        return node.as_hex()
    if kind is int:
        return node.as_ref()
    if kind is str:
        return node.as_str()
    if kind is Path:
        return node.base_dir / node.as_str()
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        try:
            return kind(node.as_str())
        except ValueError:
            raise node.fail(f"must be one of {', '.join(str(m.value) for m in kind)}") from None
    raise TypeError(f"option type {kind!r} has no profile spelling")

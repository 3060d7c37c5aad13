"""Probe a card the suite has never seen: which applicability tokens it supports, by harmless commands only.

``eidemu conformance probe --card URI`` sends SELECT (of the MF and of well-known AIDs),
GET RESPONSE, GET CHALLENGE, GET DATA of common objects, MANAGE CHANNEL open and close, and
class-byte probes; never VERIFY, never a write, never anything that changes the card's
persistent state. Every command goes through :meth:`Prober.send`, which refuses any
instruction outside :data:`ALLOWED_INS` before it reaches the card.

From the answers it infers the tokens the catalogue uses (docs/conformance-scripts.md,
"Applicability tokens"), recognises the cards eidemu knows by ATR and answers (the MOICA
citizen certificate card, the eID chip, NHI cards, eMRTDs, the emulator's own profiles), and
writes a card declaration (the ``--card-config`` file format) with each token's evidence as
a YAML comment and the variables the catalogue's applicable tests need as commented-out
placeholders.

Clauses: ISO/IEC 7816-4:2005 §7.1.1 SELECT, §7.1.2 MANAGE CHANNEL, §7.4.2 GET DATA, §7.5.3
GET CHALLENGE, §7.6.1 GET RESPONSE, §5.1.1 class byte, §5.1.3 status words; ICAO 9303-10
§3.6.2 (eMRTD AID); ISO/IEC 7816-15 / PKCS #15 v1.1 §5.4 (PKCS#15 AID); GlobalPlatform Card
Specification 2.3 §9.9 (ISD selected by SELECT without data, or by its AID).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from eidemu.emulator.iso7816.apdu import ResponseAPDU

from .connection import CardConnection, CardConnectionError
from .runner import CardDeclaration, load_card_declarations, load_catalogue, unset_variables
from .script import Script

# SELECT, GET RESPONSE, GET CHALLENGE, GET DATA, MANAGE CHANNEL: none changes persistent state.
ALLOWED_INS = frozenset({0xA4, 0xC0, 0x84, 0xCA, 0x70})

MF = bytes.fromhex("3F00")
EMRTD_AID = bytes.fromhex("A0000002471001")  # ICAO 9303-10 §3.6.2 (LDS1 eMRTD application)
NHI_AID = bytes.fromhex("D15800000100000000000000001100")  # Taiwan NHI card (documented by its middleware)
PKCS15_AID = bytes.fromhex("A000000063504B43532D3135")  # PKCS #15 v1.1 §5.4: RID A000000063 "PKCS-15"
GP_ISD_AID = bytes.fromhex("A000000151000000")  # GlobalPlatform Card Specification 2.3 §H.1 (ISD)
WELL_KNOWN_AIDS: tuple[tuple[str, bytes], ...] = (
    ("eMRTD (ICAO 9303)", EMRTD_AID),
    ("NHI card", NHI_AID),
    ("PKCS#15", PKCS15_AID),
    ("GlobalPlatform ISD", GP_ISD_AID),
)
# GET DATA objects (P1-P2): 7816-4:2005 §8.1.1 Table 82 (5F52 historical bytes, 0066 card data),
# GlobalPlatform CPLC (9F7F).
GET_DATA_OBJECTS = (("historical bytes", 0x5F52), ("card data", 0x0066), ("CPLC", 0x9F7F))
ABSENT_OBJECT = 0x01FE  # the tag ISO_DATA_02 asks for; a card implementing GET DATA answers 6A88

# ATRs of the cards eidemu knows (fixtures/profiles/*.yaml): historical bytes name them.
MOICA_HISTORICAL = b"CHTMOICA"  # fixtures/profiles/moica-g2-valid-1.yaml
EID_HISTORICAL = b"TWEID"  # fixtures/profiles/eid-g2-valid-1.yaml


STRICT_EVIDENCE = (
    "kept by default: tests stricter than ISO/IEC 7816-4 on purpose; delete this line to leave them out "
    '(docs/conformance-scripts.md "Strictness")'
)


class ProbeRefused(RuntimeError):
    """A probe tried to send an instruction outside :data:`ALLOWED_INS` (a defect; never sent)."""


@dataclass(frozen=True)
class Exchange:
    command: bytes
    response: bytes

    def __str__(self) -> str:
        return f"{self.command.hex(' ').upper()} -> {_short(self.response)}"


def _short(response: bytes) -> str:
    if len(response) < 2:
        return response.hex(" ").upper() or "(nothing)"
    sw = response[-2:].hex(" ").upper()
    return f"{sw} with {len(response) - 2} bytes" if len(response) > 2 else sw


@dataclass
class ProbeResult:
    """What the probe found: tokens with their evidence, variables, the card recognised."""

    atr: bytes
    card: str = "an unknown ISO/IEC 7816 card"
    known: str | None = None  # name in fixtures/conformance/cards.yaml
    tokens: dict[str, str] = field(default_factory=dict)  # token -> evidence
    absent: dict[str, str] = field(default_factory=dict)  # catalogue token -> why not inferred
    variables: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # name -> value, evidence
    placeholders: dict[str, list[str]] = field(default_factory=dict)  # unset variable -> test IDs
    selected: list[str] = field(default_factory=list)  # well-known applications that selected
    link_errors: list[str] = field(default_factory=list)  # the card stopped answering

    def exchanges_sent(self) -> int:
        return len(self.exchanges)

    exchanges: list[Exchange] = field(default_factory=list)

    def add(self, token: str, evidence: str) -> None:
        self.tokens.setdefault(token, evidence)

    def declaration(self) -> CardDeclaration:
        return CardDeclaration(
            self.known or "probed", frozenset(self.tokens), {k: v for k, (v, _) in self.variables.items()}
        )

    def yaml(self) -> str:
        """The card declaration file, evidence as comments (``--card-config FILE``)."""
        lines = [
            "# Card declaration written by 'eidemu conformance probe' from harmless commands only",
            "# (SELECT, GET RESPONSE, GET CHALLENGE, GET DATA, MANAGE CHANNEL). Review it: a token",
            "# claims the card supports a feature, and the catalogue's tests for it then apply.",
            f"# Card: {self.card}" + (f" (shipped declaration {self.known!r})" if self.known else ""),
            *(f"# The card stopped answering {e}" for e in self.link_errors),
            f"atr: {self.atr.hex(' ').upper()}",
            f"description: {_quote('probed: ' + self.card)}",
            "tokens:",
        ]
        for token, evidence in self.tokens.items():
            lines.append(f"  - {token:<20} # {evidence}")
        if self.absent:
            lines.append("  # Not inferred (add a token by hand if the card supports it):")
            for token, why in sorted(self.absent.items()):
                lines.append(f"  # - {token:<18} # {why}")
        lines.append("variables:" if self.variables or self.placeholders else "variables: {}")
        for name, (value, evidence) in self.variables.items():
            lines.append(f"  {name + ': ' + _hex(value):<44} # {evidence}")
        if self.placeholders:
            lines.append("  # Needed by the catalogue's applicable tests, unknown to the probe: fill in and")
            lines.append("  # uncomment. Until then these tests are NOT RUN (never ERROR).")
            for name, tests in sorted(self.placeholders.items()):
                shown = ", ".join(tests[:4]) + (f" and {len(tests) - 4} more" if len(tests) > 4 else "")
                lines.append(f"  # {name + ': ' + chr(34) * 2:<42} # needed by {shown}")
        return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Prober:
    """Send harmless commands to a card and keep every exchange."""

    def __init__(self, connection: CardConnection, result: ProbeResult) -> None:
        self.connection = connection
        self.result = result

    def send(self, command: bytes) -> ResponseAPDU:
        """Transmit ``command`` (refused before sending unless its INS is in :data:`ALLOWED_INS`)."""
        if len(command) < 4 or command[1] not in ALLOWED_INS:
            raise ProbeRefused(f"the probe never sends INS {command[1:2].hex().upper() or '??'}")
        raw = self.connection.transmit(command)
        self.result.exchanges.append(Exchange(command, raw))
        if len(raw) < 2:
            return ResponseAPDU(b"", 0x6F00)
        return ResponseAPDU.parse(raw)

    def complete(self, command: bytes) -> tuple[ResponseAPDU, bool]:
        """``command``, following 61xx with GET RESPONSE (ISO/IEC 7816-4:2005 §7.6.1) and 6Cxx with the
        exact Le (§5.1.3); the final response and whether GET RESPONSE served data."""
        response = self.send(command)
        if response.sw1 == 0x6C:
            response = self.send(command[:-1] + bytes([response.sw2]))
        if response.sw1 == 0x61:
            data = b""
            while response.sw1 == 0x61:
                response = self.send(bytes([command[0] & 0x03, 0xC0, 0, 0, response.sw2]))
                data += response.data
            return ResponseAPDU(data, response.sw), response.sw == 0x9000
        return response, False


def _apdu(cla: int, ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = None) -> bytes:
    body = bytes([len(data)]) + data if data else b""
    return bytes([cla, ins, p1, p2]) + body + (bytes([le]) if le is not None else b"")


def _ok(response: ResponseAPDU) -> bool:
    return response.sw == 0x9000 or response.sw1 in (0x61, 0x62, 0x63)


def _hex(data: bytes) -> str:
    return data.hex(" ").upper()


def probe(
    connection: CardConnection, catalogue: Iterable[Script] | None = None, log: Callable[[str], None] | None = None
) -> ProbeResult:
    """Probe the card behind ``connection`` (left reset) and infer its declaration."""
    atr = connection.reset()
    result = ProbeResult(atr)
    p = Prober(connection, result)
    say = log or (lambda _text: None)
    result.add("ISO7816", f"answered a reset with ATR {_hex(atr)}")
    _recognise_by_atr(result)

    select_mf = _apdu(0x00, 0xA4, 0x00, 0x0C, MF)
    mf = p.send(select_mf)
    say(f"SELECT MF (class 00): {mf.sw:04X}")
    cla = 0x00
    if mf.sw in (0x6E00,):
        moica = p.send(_apdu(0x80, 0xA4, 0x00, 0x0C, MF))
        if moica.sw != 0x6E00:
            cla = 0x80
            result.add("CLA-80", f"SELECT MF in class 80 answered {moica.sw:04X}, class 00 answered 6E00")
        result.absent["CLA-00"] = "SELECT MF in class 00 answered 6E00 (class not supported)"
    else:
        result.add("CLA-00", f"SELECT MF in class 00 answered {mf.sw:04X}, not 6E00")
        if mf.sw == 0x9000:
            result.add("SELECT-FID", "SELECT MF 3F00 with P2=0C answered 9000 (ISO/IEC 7816-4:2005 §7.1.1)")
        cla_80 = p.send(_apdu(0x80, 0xA4, 0x00, 0x0C, MF))
        say(f"SELECT MF (class 80): {cla_80.sw:04X}")
        result.absent["CLA-80"] = f"class-80 SELECT MF answered {cla_80.sw:04X}; the card uses class 00"

    steps: list[Callable[[], None]] = [lambda: _probe_aids(p, result, cla, say)]
    if cla == 0x00:
        steps += [lambda: _probe_get_challenge(p, result), lambda: _probe_get_data(p, result)]
        steps += [lambda: _probe_channels(p, result)]
        if "SELECT-FID" in result.tokens:
            steps.append(lambda: _probe_select_forms(p, result))
    for step in steps:
        try:
            step()
        except (CardConnectionError, OSError) as exc:
            # A card that stops answering (some crash on a command they do not handle):
            # keep what was found, say so, and stop if a reset does not bring it back.
            result.link_errors.append(f"after {result.exchanges_sent()} commands: {exc}")
            say(f"the card stopped answering: {exc}")
            try:
                connection.reset()
            except (CardConnectionError, OSError):
                break
    _recognise_by_answers(result)
    result.add("STRICT", STRICT_EVIDENCE)
    try:
        connection.reset()
    except (CardConnectionError, OSError) as exc:
        result.link_errors.append(f"final reset: {exc}")
    if catalogue is None:
        catalogue = load_catalogue()
    _catalogue_needs(result, list(catalogue))
    return result


def _probe_select_forms(p: Prober, result: ProbeResult) -> None:
    for p2, token, tags in ((0x00, "SELECT-FCI", (0x6F, 0x62, 0x64)), (0x04, "SELECT-FCP", (0x62,))):
        response, _ = p.complete(_apdu(0x00, 0xA4, 0x00, p2, MF, 0x00))
        if response.sw == 0x9000 and response.data[:1] and response.data[0] in tags:
            result.add(token, f"SELECT MF with P2={p2:02X} returned template {response.data[0]:02X}")
        else:
            result.absent[token] = f"SELECT MF with P2={p2:02X} answered {_short(response.encode())}"


def _probe_aids(p: Prober, result: ProbeResult, cla: int, say: Callable[[str], None]) -> None:
    selected = result.selected
    for name, aid in WELL_KNOWN_AIDS:
        response = p.send(_apdu(cla, 0xA4, 0x04, 0x0C, aid))
        say(f"SELECT {name} ({_hex(aid)}): {response.sw:04X}")
        if response.sw == 0x9000:
            selected.append(name)
            if "SELECT-AID" not in result.tokens:
                result.add("SELECT-AID", f"SELECT by DF name {name} ({_hex(aid)}) answered 9000")
                result.variables["AID"] = (aid, f"{name}: SELECT by DF name answered 9000")
    if "AID" not in result.variables:
        result.absent["SELECT-AID"] = "no well-known AID selected (eMRTD, NHI, PKCS#15, GlobalPlatform ISD)"
        return
    if cla != 0x00:
        return
    aid = result.variables["AID"][0]
    partial = aid[:5]
    response = p.send(_apdu(0x00, 0xA4, 0x04, 0x0C, partial))
    if response.sw == 0x9000:
        result.add("SELECT-AID-PARTIAL", f"SELECT by the truncated DF name {_hex(partial)} answered 9000")
        result.variables["AID_PARTIAL"] = (partial, "the first five bytes of AID selected it")
    else:
        result.absent["SELECT-AID-PARTIAL"] = (
            f"SELECT by the truncated DF name {_hex(partial)} answered {response.sw:04X}"
        )
    case3 = p.send(_apdu(0x00, 0xA4, 0x04, 0x00, aid))
    if case3.sw1 == 0x61:
        fci = p.send(_apdu(0x00, 0xC0, 0x00, 0x00, le=case3.sw2))
        if fci.sw == 0x9000 and fci.data[:1] == b"\x6f":
            result.add(
                "GET-RESPONSE", f"SELECT by AID as case 3 answered {case3.sw:04X}; GET RESPONSE returned the FCI"
            )
    else:
        result.absent["GET-RESPONSE"] = f"SELECT by AID as case 3 answered {_short(case3.encode())}, not 61xx"
    if "SELECT-FCI" not in result.tokens:
        response, _ = p.complete(_apdu(0x00, 0xA4, 0x04, 0x00, aid, 0x00))
        if response.sw == 0x9000 and response.data[:1] == b"\x6f":
            result.add("SELECT-FCI", "SELECT by AID with P2=00 returned an FCI (6F)")
            result.absent.pop("SELECT-FCI", None)
    p.send(_apdu(0x00, 0xA4, 0x04, 0x0C, aid))
    parent = p.send(_apdu(0x00, 0xA4, 0x03, 0x0C))
    if parent.sw == 0x9000:
        result.add("SELECT-PARENT", "SELECT P1=03 after selecting the application answered 9000")
    else:
        result.absent["SELECT-PARENT"] = f"SELECT P1=03 answered {parent.sw:04X}"


def _probe_get_challenge(p: Prober, result: ProbeResult) -> None:
    response = p.send(_apdu(0x00, 0x84, 0x00, 0x00, le=0x08))
    if response.sw == 0x9000 and len(response.data) == 8:
        result.add("GET-CHALLENGE", "GET CHALLENGE with Le=08 returned 8 bytes and 9000")
    else:
        result.absent["GET-CHALLENGE"] = f"GET CHALLENGE with Le=08 answered {_short(response.encode())}"


def _probe_get_data(p: Prober, result: ProbeResult) -> None:
    found = []
    for name, tag in GET_DATA_OBJECTS:
        response = p.send(_apdu(0x00, 0xCA, tag >> 8, tag & 0xFF, le=0x00))
        if response.sw == 0x9000:
            found.append(f"{name} {tag:04X}")
    absent = p.send(_apdu(0x00, 0xCA, ABSENT_OBJECT >> 8, ABSENT_OBJECT & 0xFF, le=0x00))
    if found or absent.sw in (0x6A88, 0x6A82):
        evidence = f"GET DATA returned {', '.join(found)}" if found else f"GET DATA 01FE answered {absent.sw:04X}"
        result.add("GET-DATA", evidence)
    else:
        result.absent["GET-DATA"] = f"GET DATA of 01FE answered {absent.sw:04X} and no common object was returned"


def _probe_channels(p: Prober, result: ProbeResult) -> None:
    opened = p.send(_apdu(0x00, 0x70, 0x00, 0x00, le=0x01))
    if opened.sw == 0x9000 and len(opened.data) == 1 and 0 < opened.data[0] < 20:
        channel = opened.data[0]
        closed = p.send(_apdu(channel if channel < 4 else 0x40 | (channel - 4), 0x70, 0x80, channel))
        if closed.sw == 0x9000:
            result.add("LOGICAL-CHANNELS", f"MANAGE CHANNEL opened channel {channel} and closed it")
            return
        result.absent["LOGICAL-CHANNELS"] = f"MANAGE CHANNEL close of channel {channel} answered {closed.sw:04X}"
        return
    result.absent["LOGICAL-CHANNELS"] = f"MANAGE CHANNEL open answered {_short(opened.encode())}"


def _historical(atr: bytes) -> bytes:
    """The historical bytes (ISO/IEC 7816-3:2006 §8.2): T0's low nibble counts them, after
    the interface bytes TA1..TDi that each TD's high nibble announces."""
    if len(atr) < 2:
        return b""
    count = atr[1] & 0x0F
    i, y = 1, atr[1] >> 4
    while True:
        i += bin(y).count("1")
        if not y & 0x8 or i >= len(atr):
            break
        y = atr[i] >> 4
    return atr[i + 1 : i + 1 + count]


def _recognise_by_atr(result: ProbeResult) -> None:
    for name, (_declaration, atr, _profile) in load_card_declarations().items():
        if atr is not None and atr == result.atr:
            result.known = name
            result.card = f"the emulator's {name} card"
            return
    historical = _historical(result.atr)
    if MOICA_HISTORICAL in historical:
        result.card = "the MOICA citizen certificate card (HiCOS interface; generations 2 and 3 share this ATR)"
    elif EID_HISTORICAL in historical:
        result.card = "the next-generation eID chip (eid-* profiles, eMRTD application)"


def _recognise_by_answers(result: ProbeResult) -> None:
    selected = result.selected
    if result.card.startswith("the MOICA") and "CLA-80" in result.tokens:
        # The card's own interface: class 80, PKCS#15 DF 5030, 2048-bit RSA keys, a PIN
        # (docs/moica-card.md); the catalogue's moica-gen1.apdu tests it.
        for token in ("MOICA-GEN1", "PKCS15", "RSA2048", "PIN"):
            result.add(token, "recognised as the MOICA card (ATR 'CHTMOICA', class 80 only): docs/moica-card.md")
        result.absent["MOICA-TEST-PKI"] = "only the emulator's cards carry test-PKI certificates"
        return
    if result.known:
        declaration = load_card_declarations()[result.known][0]
        for token in sorted(declaration.tokens):
            result.add(token, f"shipped declaration {result.known} (ATR match)")
            result.absent.pop(token, None)
        for var, value in declaration.variables.items():
            result.variables.setdefault(var, (value, f"shipped declaration {result.known}"))
        return
    if "eMRTD (ICAO 9303)" in selected and not result.card.startswith("the next"):
        result.card = "an eMRTD (ICAO 9303 LDS1 application selected)"
    elif "NHI card" in selected:
        result.card = "a Taiwan NHI card (NHI application selected)"


def _catalogue_needs(result: ProbeResult, catalogue: list[Script]) -> None:
    """Catalogue tokens not inferred get a reason; variables the applicable tests need are placeholders."""
    tokens = frozenset(result.tokens)
    variables = {k: v for k, (v, _) in result.variables.items()}
    for script in catalogue:
        for test in script.tests:
            for token in test.tokens:
                name = token.lstrip("!")
                if name not in tokens and name not in result.absent:
                    result.absent[name] = _why_not_probed(name)
            if not test.applies_to(tokens)[0]:
                continue
            for name in unset_variables(script, test, variables):
                result.placeholders.setdefault(name, []).append(test.id)


_NOT_PROBED = {
    "PIN": "needs VERIFY, which the probe never sends",
    "UPDATE-BINARY": "needs a write, which the probe never sends",
    "READ-BINARY": "needs a readable EF the probe does not know (READ BINARY is not sent)",
    "READ-BINARY-SFI": "needs a readable EF the probe does not know",
    "READ-BINARY-ODD": "needs a large EF the probe does not know",
    "RECORD": "needs a record EF the probe does not know",
    "SELECT-PATH": "needs the path of an EF the probe does not know",
}


def _why_not_probed(token: str) -> str:
    return _NOT_PROBED.get(token, "not told by harmless commands")

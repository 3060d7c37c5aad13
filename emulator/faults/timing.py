"""A latency model: how long a real contact card takes to answer each command.

The time of one exchange is the T=1 transfer time of the command and response blocks
plus the card's processing time for the instruction, with jitter:

* **Elementary time unit** (ISO/IEC 7816-3:2006 §7.1): ``etu = F / D x 1 / f`` seconds,
  with F and D from the ATR's TA1 (§8.3, Tables 7 and 8) and f the reader's clock.
* **Characters** (§7.2, §11.2): a character is 10 etu; in T=1 the character guard time
  is ``CGT = 12 + N`` etu (11 etu when N = 255), N from TC1 (0 when absent).
* **Blocks** (§11.3): prologue NAD PCB LEN (3 bytes), INF, LRC epilogue (1 byte); INF at
  most IFSC bytes (TA3, default 32) from the reader and IFSD bytes to the reader; each
  chained I-block is acknowledged by a 4-byte R-block; between blocks in opposite
  directions the block guard time ``BGT = 22 etu`` (§11.2).

Processing times per instruction come from a profile (:data:`CITIZEN_CARD`), each figure
with its public source or marked as an assumption. The model is off unless a plan says
``timing: real`` or ``eidemu serve --timing real``; ``scale`` multiplies every delay (0.1
for fast CI runs, while traces still report the unscaled model time).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .plan import HeaderPattern

# ISO/IEC 7816-3:2006 Table 7 (Fi by the high nibble of TA1) and Table 8 (Di by the low nibble).
FI_TABLE = {0: 372, 1: 372, 2: 558, 3: 744, 4: 1116, 5: 1488, 6: 1860, 9: 512, 10: 768, 11: 1024, 12: 1536, 13: 2048}
DI_TABLE = {1: 1, 2: 2, 3: 4, 4: 8, 5: 16, 6: 32, 7: 64, 8: 12, 9: 20}


@dataclass(frozen=True)
class AtrTiming:
    """The transmission parameters an ATR announces (ISO/IEC 7816-3 §8.2-§8.3)."""

    fi: int = 372
    di: int = 1
    extra_guard: int = 0  # N, from TC1
    ifsc: int = 32  # from the first TA for T=1 (TA3 and later)

    @classmethod
    def parse(cls, atr: bytes) -> AtrTiming:
        """TA1, TC1 and the first T=1 TAi (IFSC) from an ATR; defaults where absent."""
        if len(atr) < 2:
            return cls()
        fi, di, n, ifsc = 372, 1, 0, 32
        y, i, level, protocol = atr[1] >> 4, 2, 1, 0
        while True:
            ta = tb = tc = td = None
            for bit, name in ((1, "a"), (2, "b"), (4, "c"), (8, "d")):
                if y & bit:
                    if i >= len(atr):
                        return cls(fi, di, n, ifsc)
                    value = atr[i]
                    i += 1
                    if name == "a":
                        ta = value
                    elif name == "b":
                        tb = value
                    elif name == "c":
                        tc = value
                    else:
                        td = value
            del tb
            if level == 1:
                if ta is not None:
                    fi = FI_TABLE.get(ta >> 4, 372)
                    di = DI_TABLE.get(ta & 0x0F, 1)
                if tc is not None:
                    n = tc
            elif level >= 3 and protocol == 1 and ta is not None and ifsc == 32:
                ifsc = ta or 32
            if td is None:
                return cls(fi, di, n, ifsc)
            protocol = td & 0x0F
            y = td >> 4
            level += 1

    def etu(self, clock_hz: float) -> float:
        """Seconds per elementary time unit: F / (D x f), ISO/IEC 7816-3 §7.1."""
        return self.fi / (self.di * clock_hz)

    @property
    def character_etu(self) -> int:
        """Character pitch in T=1: CGT = 12 + N etu, or 11 when N = 255 (§11.2)."""
        return 11 if self.extra_guard == 255 else 12 + self.extra_guard


BGT_ETU = 22  # ISO/IEC 7816-3 §11.2: block guard time in T=1
BLOCK_OVERHEAD = 4  # NAD PCB LEN + LRC (§11.3.1)


def t1_transfer_seconds(command_len: int, response_len: int, atr: AtrTiming, clock_hz: float, ifsd: int) -> float:
    """Time on the I/O line for one T=1 exchange (ISO/IEC 7816-3 §11): the command in
    I-blocks of at most IFSC bytes, the response in I-blocks of at most IFSD bytes, an
    R-block for each chained block, and BGT at each change of direction."""

    def blocks(n: int, size: int) -> int:
        return max(1, -(-n // size))

    sent = blocks(command_len, atr.ifsc)
    received = blocks(response_len, ifsd)
    characters = (
        command_len
        + response_len
        + BLOCK_OVERHEAD * (sent + received)
        + BLOCK_OVERHEAD * ((sent - 1) + (received - 1))  # R-blocks acknowledging chained blocks
    )
    turns = 2 * (sent - 1) + 2 * (received - 1) + 1
    return (characters * atr.character_etu + turns * BGT_ETU) * atr.etu(clock_hz)


@dataclass(frozen=True)
class ProcessingTime:
    """Processing time for commands matching ``pattern``: fixed plus per data byte."""

    pattern: HeaderPattern
    milliseconds: float
    per_byte_ms: float = 0.0
    source: str = ""


@dataclass(frozen=True)
class LatencyModel:
    """Transfer plus processing time per instruction, with uniform jitter of ``jitter``."""

    name: str
    clock_hz: float = 4_000_000.0
    ifsd: int = 254
    default_ms: float = 1.0
    processing: tuple[ProcessingTime, ...] = ()
    jitter: float = 0.05
    notes: tuple[str, ...] = field(default=(), compare=False)

    def processing_ms(self, command: bytes) -> float:
        for entry in self.processing:
            if entry.pattern.matches(command):
                data = max(0, len(command) - 5)
                return entry.milliseconds + entry.per_byte_ms * data
        return self.default_ms

    def nominal_seconds(self, atr: bytes, command: bytes, response: bytes) -> float:
        """The model time without jitter."""
        transfer = t1_transfer_seconds(len(command), len(response), AtrTiming.parse(atr), self.clock_hz, self.ifsd)
        return transfer + self.processing_ms(command) / 1000.0

    def seconds(self, atr: bytes, command: bytes, response: bytes, rng: random.Random) -> float:
        nominal = self.nominal_seconds(atr, command, response)
        return nominal * (1.0 + rng.uniform(-self.jitter, self.jitter))


def _p(text: str) -> HeaderPattern:
    return HeaderPattern.parse(text)


# Public measurements used below: jsign's benchmarks of a CryptoCertum contact card
# (Common Profile 3.6.1), github.com/ebourg/jsign, jsign-benchmark/README.md: SELECT of
# an application 9.45 ms, VERIFY 33.0 ms, RSA-2048 signature 269 ms (means of 10 runs,
# transfers included). Processing below = that figure minus this model's transfer time
# for the citizen card's own exchange (SELECT 5.3 ms, protected VERIFY 13.6 ms, the last
# 80 EA half 40.4 ms), so that the modelled totals match the measured ones.
CITIZEN_CARD = LatencyModel(
    name="moica",
    clock_hz=4_000_000.0,
    processing=(
        ProcessingTime(_p("80EA02"), 229.0, source="RSA-2048 private operation: jsign CryptoCertum signRSA2048 269 ms"),
        ProcessingTime(_p("002A"), 229.0, source="PSO CDS/DECIPHER, the same RSA-2048 operation"),
        ProcessingTime(_p("xx20"), 19.5, source="VERIFY: jsign CryptoCertum verifyPin 33.0 ms"),
        ProcessingTime(_p("xx24"), 30.0, source="assumption: a VERIFY plus one more EEPROM commit"),
        ProcessingTime(_p("xx2C"), 30.0, source="assumption: as CHANGE REFERENCE DATA"),
        ProcessingTime(_p("xxA4"), 4.2, source="SELECT: jsign CryptoCertum selectApplet 9.45 ms"),
        ProcessingTime(_p("xxD6"), 4.0, 0.05, source="assumption: an EEPROM page program per 64 bytes"),
        ProcessingTime(_p("xxDC"), 4.0, 0.05, source="assumption: as UPDATE BINARY"),
    ),
    notes=(
        "Reader clock 4 MHz (assumption; ISO/IEC 7816-3 Table 7 allows up to 5 MHz for Fi 372).",
        "TA1 13 in the generation-1 ATR: Fi 372, Di 4, so etu = 372 / (4 x 4 MHz) = 23.25 us.",
    ),
)
"""The citizen digital certificate card (generation 1) over a contact reader."""

MODELS = {"moica": CITIZEN_CARD}


def model_for(atr: bytes) -> LatencyModel:
    """The model for a card; every shipped profile uses the citizen-card figures today."""
    del atr
    return CITIZEN_CARD

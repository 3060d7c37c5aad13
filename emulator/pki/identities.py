"""Synthetic Taiwan identities for the test PKI and card profiles.

Rules from public descriptions of the identity numbers (restated in docs/test-pki.md):

* national ID number (國民身分證統一編號): a letter (registration area), ``1``/``2`` (sex), 8 digits,
  the last of which makes the weighted checksum divisible by 10;
* citizen certificate card number: two capital letters and 14 digits, e.g. ``TP00000001611111``;
* ROC dates ``yyyMMdd`` with ROC year = Gregorian year - 1911;
* the MOICA initial PIN was the holder's ROC birth date ``yyyMMdd`` (7 digits; PINs are 6 to 8 characters).

Everything here is synthetic: names are drawn from common characters, numbers from a seeded
generator, and no record of a real person is consulted. A generated number can coincide with a
real one by chance, as any valid-looking test number can; it carries no information about anybody.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

# Letter values of the registration-area letter (taiwan-ids.md); not in alphabetical order for
# I, O, W, X, Y, Z, so a table rather than arithmetic on the letter.
LETTER_VALUES: Mapping[str, int] = {
    "A": 10, "B": 11, "C": 12, "D": 13, "E": 14, "F": 15, "G": 16, "H": 17, "I": 34, "J": 18,
    "K": 19, "L": 20, "M": 21, "N": 22, "O": 35, "P": 23, "Q": 24, "R": 25, "S": 26, "T": 27,
    "U": 28, "V": 29, "W": 32, "X": 30, "Y": 31, "Z": 33,
}  # fmt: skip

# Weights over the 11 digits: the letter's two digits, then the 9 digits of the number.
CHECKSUM_WEIGHTS = (1, 9, 8, 7, 6, 5, 4, 3, 2, 1, 1)

NATIONAL_ID_PATTERN = re.compile(r"[A-Z][12][0-9]{8}")
CARD_NUMBER_PATTERN = re.compile(r"[A-Z]{2}[0-9]{14}")
ROC_DATE_PATTERN = re.compile(r"[0-9]{7}")
CERT_SERIAL_PATTERN = re.compile(r"[0-9]{16}")

ROC_EPOCH_OFFSET = 1911
PIN_MIN_LENGTH, PIN_MAX_LENGTH = 6, 8

# Frequent surnames and given-name characters; combinations are arbitrary.
SURNAMES = "陳林黃張李王吳劉蔡楊許鄭謝洪郭邱曾廖賴徐周葉蘇莊呂江何蕭羅高潘簡朱鍾游彭詹胡施沈余盧梁趙顏柯翁魏孫戴"
GIVEN_CHARS = "志明俊傑建宏家豪承翰冠宇宗翰怡君雅婷淑芬美玲佳穎欣怡惠婷鈺婷詩涵雅雯文彥柏宏書豪信宏彥廷宜蓁子晴"


def _checksum_digits(national_id_prefix: str) -> list[int]:
    letter, rest = national_id_prefix[0], national_id_prefix[1:]
    value = LETTER_VALUES[letter]
    return [value // 10, value % 10, *(int(c) for c in rest)]


def national_id_check_digit(prefix: str) -> str:
    """Return the check digit completing a 9-character prefix (letter, sex digit, 7 digits).

    The weighted sum over the letter's two-digit value and all 9 digits, with weights
    ``1 9 8 7 6 5 4 3 2 1 1``, must be divisible by 10 (taiwan-ids.md).
    """
    if not re.fullmatch(r"[A-Z][0-9]{8}", prefix):
        raise ValueError(f"national ID prefix must be a capital letter and 8 digits: {prefix!r}")
    partial = sum(d * w for d, w in zip(_checksum_digits(prefix), CHECKSUM_WEIGHTS[:-1]))
    return str(-partial % 10)


def is_valid_national_id(value: str) -> bool:
    """True if ``value`` is a well-formed national ID number with a correct checksum."""
    if not NATIONAL_ID_PATTERN.fullmatch(value):
        return False
    total = sum(d * w for d, w in zip(_checksum_digits(value), CHECKSUM_WEIGHTS))
    return total % 10 == 0


def is_valid_card_number(value: str) -> bool:
    """True if ``value`` has the card-number shape: two capital letters then 14 digits."""
    return CARD_NUMBER_PATTERN.fullmatch(value) is not None


def to_roc_date(date: dt.date) -> str:
    """Format a date as ROC ``yyyMMdd`` (1964-08-12 -> ``0530812``)."""
    roc_year = date.year - ROC_EPOCH_OFFSET
    if not 1 <= roc_year <= 999:
        raise ValueError(f"date outside the ROC calendar range: {date.isoformat()}")
    return f"{roc_year:03d}{date.month:02d}{date.day:02d}"


def from_roc_date(value: str) -> dt.date:
    """Parse a ROC ``yyyMMdd`` date (``0530812`` -> 1964-08-12)."""
    if not ROC_DATE_PATTERN.fullmatch(value) or int(value[:3]) == 0:
        raise ValueError(f"ROC date must be 7 digits yyyMMdd with year >= 1: {value!r}")
    return dt.date(int(value[:3]) + ROC_EPOCH_OFFSET, int(value[3:5]), int(value[5:7]))


def initial_pin(birth_date: dt.date) -> str:
    """The MOICA initial PIN: the holder's ROC birth date ``yyyMMdd`` (moica-card.md, PIN rules)."""
    pin = to_roc_date(birth_date)
    assert PIN_MIN_LENGTH <= len(pin) <= PIN_MAX_LENGTH
    return pin


@dataclass(frozen=True)
class Identity:
    """A synthetic card holder.

    ``cert_serial_number`` is the 16-digit subject ``serialNumber`` of the holder's certificates;
    as on the real card it is not the national ID number, which appears in the certificates only
    as its last 4 digits (Subject Directory Attributes, 2.16.886.1.100.2.51).
    """

    national_id: str
    card_number: str
    name_zh: str
    birth_date: dt.date
    sex: str  # "M" or "F", consistent with the national ID's second character
    cert_serial_number: str
    initial_pin: str

    def __post_init__(self) -> None:
        if not is_valid_national_id(self.national_id):
            raise ValueError(f"invalid national ID number: {self.national_id!r}")
        if not is_valid_card_number(self.card_number):
            raise ValueError(f"invalid card number: {self.card_number!r}")
        if self.sex != {"1": "M", "2": "F"}[self.national_id[1]]:
            raise ValueError(f"sex {self.sex!r} does not match national ID {self.national_id!r}")
        if not CERT_SERIAL_PATTERN.fullmatch(self.cert_serial_number):
            raise ValueError(f"certificate serialNumber must be 16 digits: {self.cert_serial_number!r}")
        if not (self.initial_pin.isdigit() and PIN_MIN_LENGTH <= len(self.initial_pin) <= PIN_MAX_LENGTH):
            raise ValueError("initial PIN must be 6 to 8 digits")

    @property
    def national_id_last4(self) -> str:
        """The value MOICA certificates carry in attribute 2.16.886.1.100.2.51."""
        return self.national_id[-4:]

    @property
    def roc_birth_date(self) -> str:
        return to_roc_date(self.birth_date)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping; dates as ISO 8601, plus the derived ROC birth date."""
        data = asdict(self)
        data["birth_date"] = self.birth_date.isoformat()
        data["roc_birth_date"] = self.roc_birth_date
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Identity:
        """Inverse of :meth:`to_json`; extra keys (``ca``, ``status``, ...) are ignored."""
        return cls(
            national_id=data["national_id"],
            card_number=data["card_number"],
            name_zh=data["name_zh"],
            birth_date=dt.date.fromisoformat(data["birth_date"]),
            sex=data["sex"],
            cert_serial_number=data["cert_serial_number"],
            initial_pin=data["initial_pin"],
        )


def generate_national_id(rng: random.Random, sex: str | None = None) -> str:
    """A random, checksum-valid national ID number; ``sex`` ``"M"``/``"F"`` fixes the second character."""
    letter = rng.choice(sorted(LETTER_VALUES))
    sex_digit = {"M": "1", "F": "2"}[sex] if sex else rng.choice("12")
    prefix = letter + sex_digit + "".join(rng.choice("0123456789") for _ in range(7))
    return prefix + national_id_check_digit(prefix)


def generate_card_number(rng: random.Random) -> str:
    """A card number: two capital letters and 14 digits (``TP`` as on the published example)."""
    return "TP" + "".join(rng.choice("0123456789") for _ in range(14))


def generate_name(rng: random.Random) -> str:
    """A Chinese name: one surname character and one or two given-name characters."""
    given = "".join(rng.choice(GIVEN_CHARS) for _ in range(rng.choice((1, 2, 2, 2))))
    return rng.choice(SURNAMES) + given


def generate_identity(rng: random.Random) -> Identity:
    """One synthetic identity drawn from ``rng`` (born 1940-2005)."""
    sex = rng.choice("MF")
    national_id = generate_national_id(rng, sex)
    start = dt.date(1940, 1, 1)
    birth_date = start + dt.timedelta(days=rng.randrange((dt.date(2005, 12, 31) - start).days))
    return Identity(
        national_id=national_id,
        card_number=generate_card_number(rng),
        name_zh=generate_name(rng),
        birth_date=birth_date,
        sex=sex,
        cert_serial_number="".join(rng.choice("0123456789") for _ in range(16)),
        initial_pin=initial_pin(birth_date),
    )


def generate_identities(seed: int) -> Iterator[Identity]:
    """An endless, deterministic stream of distinct identities for ``seed``."""
    rng = random.Random(seed)
    seen: set[str] = set()
    while True:
        identity = generate_identity(rng)
        if identity.national_id in seen or identity.cert_serial_number in seen:
            continue
        seen.update((identity.national_id, identity.cert_serial_number))
        yield identity

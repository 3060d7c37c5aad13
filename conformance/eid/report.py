"""The inspection system's report: holder data and one verdict per verification step.

Every step of ICAO 9303-11 the terminal runs (access control, passive authentication's
parts, Chip Authentication, Active Authentication) ends as a :class:`Check` with a
:class:`Verdict` and a one-line reason. Frozen dataclasses; :meth:`InspectionReport.to_json`
gives the machine-readable form the CLI prints with ``--json``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from enum import Enum, unique
from typing import Any


@unique
class Verdict(Enum):
    """Outcome of one verification step."""

    PASSED = "PASSED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"  # not applicable to this chip or not asked for; never a failure


@dataclass(frozen=True)
class Check:
    """One verification step: a stable name (``pa.sod-signature``), the verdict and why."""

    name: str
    verdict: Verdict
    reason: str = ""

    @classmethod
    def passed(cls, name: str, reason: str = "") -> Check:
        return cls(name, Verdict.PASSED, reason)

    @classmethod
    def failed(cls, name: str, reason: str) -> Check:
        return cls(name, Verdict.FAILED, reason)

    @classmethod
    def skipped(cls, name: str, reason: str) -> Check:
        return cls(name, Verdict.SKIPPED, reason)

    def line(self) -> str:
        return f"{self.name}: {self.verdict.value}" + (f" ({self.reason})" if self.reason else "")


@dataclass(frozen=True)
class Holder:
    """The holder's data as the chip stores it (DG1 MRZ, DG11, DG12; 9303-10 §4.7).

    MRZ dates are ``YYMMDD``; DG11 and DG12 dates ``YYYYMMDD``. Text is as decoded (DG11
    and DG12 in UTF-8, so Chinese names stay intact); empty strings where a field is absent.
    """

    document_code: str
    issuing_state: str
    document_number: str
    primary_identifier: str
    secondary_identifier: str
    nationality: str
    date_of_birth: str
    sex: str
    date_of_expiry: str
    optional_data: str = ""
    full_name: str = ""  # DG11 5F0E
    personal_number: str = ""  # DG11 5F10 (the national ID number)
    place_of_birth: str = ""  # DG11 5F11
    full_date_of_birth: str = ""  # DG11 5F2B
    issuing_authority: str = ""  # DG12 5F19
    date_of_issue: str = ""  # DG12 5F26


@dataclass(frozen=True)
class FaceImage:
    """The first face of DG2: the image bytes as stored (JPEG or JPEG 2000) and its size."""

    image: bytes = field(repr=False)
    format: str  # "jpeg" or "jpeg2000"
    width: int
    height: int

    @property
    def suffix(self) -> str:
        return ".jpg" if self.format == "jpeg" else ".jp2"


@dataclass(frozen=True)
class InspectionReport:
    """What one read of a chip found: access used, files read, holder data, verdicts."""

    card: str
    access: str  # e.g. "PACE id-PACE-ECDH-CAM-AES-CBC-CMAC-128, parameter ID 13, CAN"
    files: dict[str, bytes] = field(repr=False)  # "EF.COM", "DG1", ..., "EF.SOD" -> content
    holder: Holder | None
    face: FaceImage | None
    checks: tuple[Check, ...]
    zones: tuple[tuple[str, str], ...] = ()
    """EAC zone contents as (label, text) rows, read after Terminal Authentication."""

    @property
    def passed(self) -> bool:
        """True when no step FAILED (skipped steps are not failures)."""
        return all(c.verdict is not Verdict.FAILED for c in self.checks)

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.verdict is Verdict.FAILED)

    def check(self, name: str) -> Check:
        """The check called ``name``; KeyError if the reader did not run it."""
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: files as SHA-256 and length, the face as base64."""
        return {
            "card": self.card,
            "access": self.access,
            "passed": self.passed,
            "files": {
                name: {"length": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                for name, data in self.files.items()
            },
            "holder": asdict(self.holder) if self.holder else None,
            "face": None
            if self.face is None
            else {
                "format": self.face.format,
                "width": self.face.width,
                "height": self.face.height,
                "length": len(self.face.image),
                "base64": base64.b64encode(self.face.image).decode("ascii"),
            },
            "checks": [{"name": c.name, "verdict": c.verdict.value, "reason": c.reason} for c in self.checks],
            "zones": [{"label": label, "value": value} for label, value in self.zones],
        }


def failed_names(checks: Iterable[Check]) -> list[str]:
    """Names of the failed checks, in order (what tests compare against)."""
    return [c.name for c in checks if c.verdict is Verdict.FAILED]

"""An inspection system for eMRTD-like chips (ICAO Doc 9303-11, 9303-10, 9303-12).

The terminal side of the eID chip's ICAO zone, talking to any card through
:func:`eidemu.conformance.connection.open_card`: read EF.CardAccess, run PACE (or BAC),
read EF.COM, every data group and EF.SOD under secure messaging, verify passive
authentication with its own checks (:mod:`.passive`), run Chip Authentication (or check
PACE-CAM) and Active Authentication, and return an :class:`~.report.InspectionReport`.

Modules: :mod:`.report` (the typed report), :mod:`.channel` (APDUs, secure messaging,
file reading), :mod:`.passive` (CMS, trust store, CRL), :mod:`.reader` (the flow).
It uses only the codec layer (``eidemu.emulator.iso7816``, ``eidemu.emulator.icao``,
``eidemu.fixtures``), never the card's own code.
"""

from __future__ import annotations

from .passive import TrustStore
from .reader import AccessKey, InspectionSystem, read_chip
from .report import Check, Holder, InspectionReport, Verdict

__all__ = [
    "AccessKey",
    "Check",
    "Holder",
    "InspectionReport",
    "InspectionSystem",
    "TrustStore",
    "Verdict",
    "read_chip",
]

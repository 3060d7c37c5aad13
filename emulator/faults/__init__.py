"""Fault injection and realistic timing for emulated cards (one layer between transport
and card OS): plans (:mod:`.plan`), the wrapper (:mod:`.card`), the latency model
(:mod:`.timing`) and the control channel (:mod:`.control`). See docs/faults.md."""

from ..transport.vpcd import CardMute, CardWithdrawn
from .card import FaultEvent, FaultyCard, PersistentImage, Tear, corrupt_response
from .plan import FaultKind, FaultPlan, FaultRule, HeaderPattern, PlanError, TearPoint, load_plan
from .timing import CITIZEN_CARD, AtrTiming, LatencyModel, t1_transfer_seconds

__all__ = [
    "CITIZEN_CARD",
    "AtrTiming",
    "CardMute",
    "CardWithdrawn",
    "FaultEvent",
    "FaultKind",
    "FaultPlan",
    "FaultRule",
    "FaultyCard",
    "HeaderPattern",
    "LatencyModel",
    "PersistentImage",
    "PlanError",
    "Tear",
    "TearPoint",
    "corrupt_response",
    "load_plan",
    "t1_transfer_seconds",
]

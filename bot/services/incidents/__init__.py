"""Incidents and their playbooks as buttons: declare, run steps exactly once, note, resolve, export."""

from bot.services.access import GroupDirectory, Responders
from bot.services.incidents.models import (
    ClaimedRun,
    FreezeLift,
    Incident,
    IncidentProblem,
    InterruptedRun,
    NeedsConfirmation,
    PlaybookView,
    Refusal,
    Resolution,
    StepRequest,
    StepResult,
    StepState,
    StepView,
    elapsed,
)
from bot.services.incidents.service import ActionFactory, IncidentService, RunPoster
from bot.services.ports import IncidentFreezer

__all__ = [
    "ActionFactory",
    "ClaimedRun",
    "FreezeLift",
    "GroupDirectory",
    "Incident",
    "IncidentFreezer",
    "IncidentProblem",
    "IncidentService",
    "InterruptedRun",
    "NeedsConfirmation",
    "PlaybookView",
    "Refusal",
    "Resolution",
    "Responders",
    "RunPoster",
    "StepRequest",
    "StepResult",
    "StepState",
    "StepView",
    "elapsed",
]

"""The resettlement pipeline as data: stages, the transition table, who moves what, and the SLA clocks.

Stages follow the domain guide: the referring agency's side (referral to submission to a State), the
receiving State's side (prescreening to arrival), and the exits (withdrawn, closed). A move not in
:data:`TRANSITIONS` is a 409; ``tests/cases/test_pipeline.py`` walks every pair.

SLA clocks, by the case's processing priority (the stage's own clock) and submission priority (the target
departure): the figures below are RDN's defaults. Emergency, urgent and normal departures within about 7
days, 6 weeks and 12 months of submission are UNHCR's (Resettlement Handbook); the rest are ours, to be set
by the network.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from rdn.cases.models import Priority
from rdn.core.i18n import N_


class Stage(StrEnum):
    # The referring agency's side.
    referred = "referred"
    needs_assessment = "needs_assessment"
    initial_review = "initial_review"
    interview = "interview"
    recommendation = "recommendation"
    review = "review"
    recommended = "recommended"
    not_recommended = "not_recommended"
    submitted = "submitted"
    # The receiving State's side.
    prescreening = "prescreening"
    security_checks = "security_checks"
    state_interview = "state_interview"
    on_hold = "on_hold"
    approved = "approved"
    denied = "denied"
    medical_exam = "medical_exam"
    cultural_orientation = "cultural_orientation"
    placement = "placement"
    travel_booking = "travel_booking"
    departed = "departed"
    arrived = "arrived"
    # Exits.
    withdrawn = "withdrawn"
    closed = "closed"


STAGE_NAMES: dict[Stage, str] = {
    Stage.referred: N_("Referred"),
    Stage.needs_assessment: N_("Needs assessment"),
    Stage.initial_review: N_("Initial review"),
    Stage.interview: N_("Resettlement interview"),
    Stage.recommendation: N_("Submission recommendation"),
    Stage.review: N_("Review"),
    Stage.recommended: N_("Recommended"),
    Stage.not_recommended: N_("Not recommended"),
    Stage.submitted: N_("Submitted to a State"),
    Stage.prescreening: N_("Prescreening"),
    Stage.security_checks: N_("Security checks"),
    Stage.state_interview: N_("State interview"),
    Stage.on_hold: N_("On hold"),
    Stage.approved: N_("Approved"),
    Stage.denied: N_("Denied"),
    Stage.medical_exam: N_("Medical examination"),
    Stage.cultural_orientation: N_("Cultural orientation"),
    Stage.placement: N_("Sponsorship and placement"),
    Stage.travel_booking: N_("Travel booking"),
    Stage.departed: N_("Departed"),
    Stage.arrived: N_("Arrived"),
    Stage.withdrawn: N_("Withdrawn"),
    Stage.closed: N_("Closed"),
}

AGENCY_SIDE: tuple[Stage, ...] = (
    Stage.referred, Stage.needs_assessment, Stage.initial_review, Stage.interview, Stage.recommendation,
    Stage.review, Stage.recommended, Stage.not_recommended, Stage.submitted,
)
STATE_SIDE: tuple[Stage, ...] = (
    Stage.prescreening, Stage.security_checks, Stage.state_interview, Stage.on_hold, Stage.approved,
    Stage.denied, Stage.medical_exam, Stage.cultural_orientation, Stage.placement, Stage.travel_booking,
    Stage.departed, Stage.arrived,
)
#: The usual road, for the timeline.
MAIN_ROAD: tuple[Stage, ...] = (
    Stage.referred, Stage.needs_assessment, Stage.initial_review, Stage.interview, Stage.recommendation,
    Stage.review, Stage.recommended, Stage.submitted, Stage.prescreening, Stage.security_checks,
    Stage.state_interview, Stage.approved, Stage.medical_exam, Stage.cultural_orientation, Stage.placement,
    Stage.travel_booking, Stage.departed, Stage.arrived,
)

TRANSITIONS: dict[Stage, frozenset[Stage]] = {
    Stage.referred: frozenset({Stage.needs_assessment, Stage.withdrawn}),
    Stage.needs_assessment: frozenset({Stage.initial_review, Stage.withdrawn}),
    Stage.initial_review: frozenset({Stage.interview, Stage.needs_assessment, Stage.withdrawn}),
    Stage.interview: frozenset({Stage.recommendation, Stage.withdrawn}),
    Stage.recommendation: frozenset({Stage.review, Stage.interview, Stage.withdrawn}),
    # Review: recommended, not recommended, or returned for more work.
    Stage.review: frozenset({Stage.recommended, Stage.not_recommended, Stage.recommendation, Stage.interview,
                             Stage.withdrawn}),
    Stage.recommended: frozenset({Stage.submitted, Stage.withdrawn}),
    Stage.not_recommended: frozenset({Stage.needs_assessment, Stage.closed}),
    Stage.submitted: frozenset({Stage.prescreening, Stage.security_checks, Stage.denied, Stage.withdrawn}),
    Stage.prescreening: frozenset({Stage.security_checks, Stage.denied, Stage.withdrawn}),
    Stage.security_checks: frozenset({Stage.state_interview, Stage.on_hold, Stage.denied, Stage.withdrawn}),
    Stage.state_interview: frozenset({Stage.approved, Stage.denied, Stage.on_hold, Stage.withdrawn}),
    Stage.on_hold: frozenset({Stage.security_checks, Stage.state_interview, Stage.approved, Stage.denied,
                              Stage.withdrawn}),
    Stage.approved: frozenset({Stage.medical_exam, Stage.on_hold, Stage.withdrawn}),
    # A refusal: resubmission to another State, or the end.
    Stage.denied: frozenset({Stage.recommended, Stage.closed}),
    Stage.medical_exam: frozenset({Stage.cultural_orientation, Stage.placement, Stage.on_hold, Stage.withdrawn}),
    Stage.cultural_orientation: frozenset({Stage.placement, Stage.travel_booking, Stage.withdrawn}),
    Stage.placement: frozenset({Stage.travel_booking, Stage.withdrawn}),
    # Re-vetting until travel: a case can go on hold right up to departure.
    Stage.travel_booking: frozenset({Stage.departed, Stage.on_hold, Stage.withdrawn}),
    Stage.departed: frozenset({Stage.arrived}),
    Stage.arrived: frozenset({Stage.closed}),
    Stage.withdrawn: frozenset({Stage.needs_assessment, Stage.closed}),
    Stage.closed: frozenset(),
}

#: Moves a receiving State (with an accepted resettlement referral) may make itself.
STATE_MOVES: frozenset[tuple[Stage, Stage]] = frozenset(
    (a, b) for a, targets in TRANSITIONS.items() for b in targets
    if (a in STATE_SIDE or a == Stage.submitted) and b in STATE_SIDE
)

#: Moves that need every pre-departure checklist item done or not needed.
NEEDS_CHECKLIST: frozenset[Stage] = frozenset({Stage.departed})

# Days allowed in a stage, by processing priority (emergency, urgent, normal); None: no clock.
_STAGE_DAYS: dict[Stage, tuple[int, int, int]] = {
    Stage.referred: (1, 3, 14),
    Stage.needs_assessment: (1, 7, 30),
    Stage.initial_review: (1, 7, 30),
    Stage.interview: (2, 14, 60),
    Stage.recommendation: (1, 7, 30),
    Stage.review: (1, 5, 30),
    Stage.recommended: (1, 5, 30),
    Stage.submitted: (2, 14, 60),
    Stage.prescreening: (1, 14, 60),
    Stage.security_checks: (3, 21, 120),
    Stage.state_interview: (2, 14, 60),
    Stage.on_hold: (7, 30, 180),
    Stage.approved: (1, 7, 30),
    Stage.medical_exam: (2, 14, 45),
    Stage.cultural_orientation: (1, 7, 30),
    Stage.placement: (2, 14, 45),
    Stage.travel_booking: (2, 10, 30),
    Stage.departed: (2, 2, 2),
    # Waiting on a decision about what comes next.
    Stage.not_recommended: (3, 14, 30),
    Stage.denied: (3, 14, 30),
}
_PRIORITY_INDEX = {Priority.emergency: 0, Priority.urgent: 1, Priority.normal: 2}
#: From referral to submission, by processing priority.
SUBMISSION_DAYS: dict[Priority, int] = {Priority.emergency: 3, Priority.urgent: 21, Priority.normal: 120}
#: From submission to departure, by submission priority (UNHCR: about 7 days, 6 weeks, 12 months).
DEPARTURE_DAYS: dict[Priority, int] = {Priority.emergency: 7, Priority.urgent: 42, Priority.normal: 365}

_BEFORE_SUBMISSION = frozenset({Stage.referred, Stage.needs_assessment, Stage.initial_review, Stage.interview,
                                Stage.recommendation, Stage.review, Stage.recommended})


def allowed(current: Stage, target: Stage) -> bool:
    return target in TRANSITIONS[current]


def is_open(stage: Stage) -> bool:
    """Still moving: not arrived, closed or withdrawn."""
    return stage not in {Stage.arrived, Stage.closed, Stage.withdrawn}


def stage_due(stage: Stage, since: datetime, priority: Priority) -> datetime | None:
    days = _STAGE_DAYS.get(stage)
    return None if days is None else since + timedelta(days=days[_PRIORITY_INDEX[priority]])


def targets(opened_at: datetime, submitted_at: datetime | None, processing: Priority,
            submission: Priority) -> tuple[date, date]:
    """(target submission date, target departure date): the departure target runs from the actual
    submission once there is one, else from the submission target."""
    submit_by = (opened_at + timedelta(days=SUBMISSION_DAYS[processing])).date()
    start = submitted_at.date() if submitted_at else submit_by
    return submit_by, start + timedelta(days=DEPARTURE_DAYS[submission])


def due_at(stage: Stage, stage_due_at: datetime | None, submit_by: date, depart_by: date) -> datetime | None:
    """The earliest clock that applies now (None when the case is not moving)."""
    if not is_open(stage):
        return None
    candidates = [stage_due_at] if stage_due_at is not None else []
    if stage in {Stage.not_recommended, Stage.denied}:
        return stage_due_at  # waiting on a decision about what next; only the stage's clock runs
    end_of = time(23, 59, 59, tzinfo=UTC)
    if stage in _BEFORE_SUBMISSION:
        candidates.append(datetime.combine(submit_by, end_of))
    if stage != Stage.departed:
        candidates.append(datetime.combine(depart_by, end_of))
    return min(candidates) if candidates else None

"""JSON shapes of the red phone."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import Field

from rdn.core.schemas import Out, StrictIn
from rdn.redphone.models import (
    ActionStatus,
    ActivationLevel,
    ContactKind,
    CrisisStatus,
    DecisionStatus,
    PageStatus,
    ParticipantRole,
    PledgeStatus,
    RunStatus,
)


class CrisisOut(Out):
    id: uuid.UUID
    reference: str
    title: str
    summary: str
    region: str
    countries: list[str]
    displaced_population: int | None
    target_places: int | None
    activation_level: ActivationLevel
    status: CrisisStatus
    exercise: bool
    declared_by_org_id: uuid.UUID
    declared_at: datetime
    closed_at: datetime | None


class CrisisDeclare(StrictIn):
    title: str = Field(min_length=3, max_length=200)
    summary: str = Field(default="", max_length=5000)
    region: str = Field(default="", max_length=120)
    countries: list[str] = Field(default_factory=list, max_length=60)
    displaced_population: int | None = Field(default=None, ge=0)
    target_places: int | None = Field(default=None, ge=0)
    activation_level: ActivationLevel = ActivationLevel.monitoring
    exercise: bool = False
    government_ids: list[uuid.UUID] | None = Field(default=None, max_length=200,
                                                   description="A drill only: the governments to page")


class CrisisChange(StrictIn):
    status: CrisisStatus | None = None
    activation_level: ActivationLevel | None = None
    summary: str | None = Field(default=None, max_length=5000)
    target_places: int | None = Field(default=None, ge=0)
    displaced_population: int | None = Field(default=None, ge=0)


class ParticipantOut(Out):
    org_id: uuid.UUID
    name: str
    role: ParticipantRole


class ParticipantIn(StrictIn):
    org_id: uuid.UUID
    role: ParticipantRole


class PagingOut(Out):
    org_id: uuid.UUID
    org: str
    status: RunStatus | None
    round: int | None
    level: int | None
    level_name: str | None
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    acknowledged_via: str | None


class MessageIn(StrictIn):
    client_id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
                           description="Chosen by the sender (a UUID): sending again never duplicates")
    body: str = Field(min_length=1, max_length=4000)


class MessageOut(Out):
    id: uuid.UUID
    client_id: str
    kind: str
    author: str
    organization: str
    body: str
    created_at: datetime


class DecisionIn(StrictIn):
    text: str = Field(min_length=3, max_length=4000)
    supersedes: uuid.UUID | None = None


class DecisionOut(Out):
    id: uuid.UUID
    text: str
    status: DecisionStatus
    recorded_at: datetime
    recorded_by_org_id: uuid.UUID | None
    superseded_by_id: uuid.UUID | None


class PledgeIn(StrictIn):
    places: int = Field(ge=1, le=1_000_000)
    population: str = Field(default="", max_length=120)
    time_frame: str = Field(default="", max_length=120)
    note: str = Field(default="", max_length=500)


class PledgeChange(StrictIn):
    status: PledgeStatus


class PledgeOut(Out):
    id: uuid.UUID
    crisis_id: uuid.UUID
    org_id: uuid.UUID
    places: int
    population: str
    time_frame: str
    note: str
    status: PledgeStatus
    created_at: datetime


class ActionIn(StrictIn):
    title: str = Field(min_length=3, max_length=300)
    owner_org_id: uuid.UUID
    due_on: date


class ActionChange(StrictIn):
    status: ActionStatus


class ActionOut(Out):
    id: uuid.UUID
    crisis_id: uuid.UUID
    title: str
    owner_org_id: uuid.UUID
    due_on: date
    status: ActionStatus
    completed_at: datetime | None


class PageOut(Out):
    id: uuid.UUID
    crisis_id: uuid.UUID
    org_id: uuid.UUID
    cycle: int
    level: int
    status: PageStatus
    created_at: datetime
    acknowledged_at: datetime | None


class AckOut(Out):
    org_id: uuid.UUID
    acknowledged_by: str
    acknowledged_at: datetime | None
    already: bool


class LevelIn(StrictIn):
    name: str = Field(min_length=1, max_length=80)
    wait_minutes: int = Field(default=5, ge=1, le=60)
    user_ids: list[uuid.UUID] = Field(default_factory=list, max_length=50)


class ChainIn(StrictIn):
    repeat_count: int = Field(default=1, ge=0, le=5)
    levels: list[LevelIn] = Field(min_length=1, max_length=10)


class LevelOut(Out):
    name: str
    wait_minutes: int
    people: list[dict[str, str]]


class ChainOut(Out):
    org_id: uuid.UUID
    repeat_count: int
    levels: list[LevelOut]
    warnings: list[str]


class ContactIn(StrictIn):
    kind: ContactKind
    address: str = Field(min_length=1, max_length=320)
    label: str = Field(default="", max_length=80)


class ContactOut(Out):
    id: uuid.UUID
    kind: ContactKind
    hint: str
    label: str
    verified_at: datetime | None
    created_at: datetime


class VerifyIn(StrictIn):
    code: str = Field(min_length=4, max_length=12)

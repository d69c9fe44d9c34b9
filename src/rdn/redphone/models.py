"""The red phone's records: crises, contact chains, escalation runs and pages, and the crisis room."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from rdn.core import clock
from rdn.core.crypto import SensitiveFields, sealed
from rdn.core.tenancy import enum_column
from rdn.db import Base, new_id


class ActivationLevel(StrEnum):
    monitoring = "monitoring"
    information_sharing = "information_sharing"
    full_activation = "full_activation"

    @property
    def rank(self) -> int:
        return list(ActivationLevel).index(self)


class CrisisStatus(StrEnum):
    declared = "declared"
    active = "active"
    stabilised = "stabilised"
    closed = "closed"


#: The crisis lifecycle. Closing cancels live paging; reopening pages again.
CRISIS_TRANSITIONS: dict[CrisisStatus, frozenset[CrisisStatus]] = {
    CrisisStatus.declared: frozenset({CrisisStatus.active, CrisisStatus.stabilised, CrisisStatus.closed}),
    CrisisStatus.active: frozenset({CrisisStatus.stabilised, CrisisStatus.closed}),
    CrisisStatus.stabilised: frozenset({CrisisStatus.active, CrisisStatus.closed}),
    CrisisStatus.closed: frozenset({CrisisStatus.active}),
}


class ParticipantRole(StrEnum):
    chair = "chair"
    member = "member"
    rapporteur = "rapporteur"
    observer = "observer"


class ContactKind(StrEnum):
    email = "email"
    sms = "sms"
    webhook = "webhook"  # the government's own system, through its webhook endpoints


class RunStatus(StrEnum):
    active = "active"
    acknowledged = "acknowledged"
    exhausted = "exhausted"
    cancelled = "cancelled"  # the crisis closed, or a new paging round replaced this one


class PageStatus(StrEnum):
    pending = "pending"
    sent = "sent"
    delivered = "delivered"
    acknowledged = "acknowledged"
    timed_out = "timed_out"
    failed = "failed"


class DecisionStatus(StrEnum):
    recorded = "recorded"
    superseded = "superseded"


class PledgeStatus(StrEnum):
    proposed = "proposed"
    confirmed = "confirmed"
    fulfilled = "fulfilled"
    withdrawn = "withdrawn"


PLEDGE_TRANSITIONS: dict[PledgeStatus, frozenset[PledgeStatus]] = {
    PledgeStatus.proposed: frozenset({PledgeStatus.confirmed, PledgeStatus.withdrawn}),
    PledgeStatus.confirmed: frozenset({PledgeStatus.fulfilled, PledgeStatus.withdrawn}),
    PledgeStatus.fulfilled: frozenset(),
    PledgeStatus.withdrawn: frozenset(),
}


class ActionStatus(StrEnum):
    open = "open"
    in_progress = "in_progress"
    done = "done"
    cancelled = "cancelled"


ACTION_TRANSITIONS: dict[ActionStatus, frozenset[ActionStatus]] = {
    ActionStatus.open: frozenset({ActionStatus.in_progress, ActionStatus.done, ActionStatus.cancelled}),
    ActionStatus.in_progress: frozenset({ActionStatus.open, ActionStatus.done, ActionStatus.cancelled}),
    ActionStatus.done: frozenset({ActionStatus.in_progress}),
    ActionStatus.cancelled: frozenset({ActionStatus.open}),
}


def _fk(table: str, ondelete: str = "CASCADE") -> ForeignKey:
    return ForeignKey(f"{table}.id", ondelete=ondelete)


# Crises --------------------------------------------------------------------------------------------------------


class Crisis(Base):
    __tablename__ = "crises"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    reference: Mapped[str] = mapped_column(String(24), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text, default="")
    region: Mapped[str] = mapped_column(String(120), default="")
    countries: Mapped[list[str]]
    displaced_population: Mapped[int | None] = mapped_column(BigInteger)
    target_places: Mapped[int | None]
    activation_level: Mapped[ActivationLevel] = mapped_column(enum_column(ActivationLevel, "activation_level"))
    status: Mapped[CrisisStatus] = mapped_column(enum_column(CrisisStatus, "crisis_status"), index=True)
    exercise: Mapped[bool] = mapped_column(default=False, index=True)
    declared_by_user_id: Mapped[uuid.UUID] = mapped_column(_fk("users", "RESTRICT"))
    declared_by_org_id: Mapped[uuid.UUID] = mapped_column(_fk("organizations", "RESTRICT"))
    declared_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)
    closed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)


class Participant(Base):
    __tablename__ = "crisis_participants"
    __table_args__ = (UniqueConstraint("crisis_id", "org_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    crisis_id: Mapped[uuid.UUID] = mapped_column(_fk("crises"), index=True)
    org_id: Mapped[uuid.UUID] = mapped_column(_fk("organizations"), index=True)
    role: Mapped[ParticipantRole] = mapped_column(enum_column(ParticipantRole, "participant_role"))


# Contact chains ------------------------------------------------------------------------------------------------


class ContactChain(Base):
    __tablename__ = "contact_chains"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(_fk("organizations"), unique=True)
    repeat_count: Mapped[int] = mapped_column(default=1)  # how many times the whole chain is run again
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)


class ChainLevel(Base):
    __tablename__ = "chain_levels"
    __table_args__ = (UniqueConstraint("chain_id", "position"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    chain_id: Mapped[uuid.UUID] = mapped_column(_fk("contact_chains"), index=True)
    position: Mapped[int]
    name: Mapped[str] = mapped_column(String(80))
    wait_minutes: Mapped[int] = mapped_column(default=5)


class ChainMember(Base):
    __tablename__ = "chain_members"
    __table_args__ = (UniqueConstraint("level_id", "user_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    level_id: Mapped[uuid.UUID] = mapped_column(_fk("chain_levels"), index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(_fk("users"), index=True)
    position: Mapped[int] = mapped_column(default=0)


class ContactMethod(SensitiveFields, Base):
    """How a person is reached: the address is sealed; a masked hint is kept for display."""

    __tablename__ = "contact_methods"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(_fk("users"), index=True)
    kind: Mapped[ContactKind] = mapped_column(enum_column(ContactKind, "contact_kind"))
    # For the "webhook" kind: the government whose system is called, and the address is the person's
    # identifier in that system.
    org_id: Mapped[uuid.UUID | None] = mapped_column(_fk("organizations"))
    address: Mapped[bytes | None] = sealed()
    hint: Mapped[str] = mapped_column(String(120))
    label: Mapped[str] = mapped_column(String(80), default="")
    verified_at: Mapped[datetime | None]
    verify_code_hash: Mapped[str | None] = mapped_column(String(64))
    verify_expires_at: Mapped[datetime | None]
    verify_attempts: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


# Paging --------------------------------------------------------------------------------------------------------


class EscalationRun(Base):
    """One government's escalation for one paging round of a crisis, from a snapshot of its chain.

    ``fence`` grows with every step; a step job carries the fence it was scheduled with and does nothing if
    the run has moved on, so no step is ever done twice or out of turn.
    """

    __tablename__ = "escalation_runs"
    __table_args__ = (UniqueConstraint("crisis_id", "org_id", "round"),
                      Index("ix_escalation_runs_due", "status", "next_step_at"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    crisis_id: Mapped[uuid.UUID] = mapped_column(_fk("crises"), index=True)
    org_id: Mapped[uuid.UUID] = mapped_column(_fk("organizations"), index=True)
    round: Mapped[int] = mapped_column(default=1)  # 1: declaration; later rounds: raised level, reopened
    trigger: Mapped[str] = mapped_column(String(30))
    snapshot: Mapped[dict[str, Any]]  # {"levels": [{"name", "wait_minutes", "people": [{"user_id", "name"}]}]}
    repeat_count: Mapped[int] = mapped_column(default=0)
    status: Mapped[RunStatus] = mapped_column(enum_column(RunStatus, "run_status"))
    cycle: Mapped[int] = mapped_column(default=0)
    level: Mapped[int] = mapped_column(default=-1)  # -1: not started
    fence: Mapped[int] = mapped_column(default=0)
    next_step_at: Mapped[datetime | None]
    started_at: Mapped[datetime] = mapped_column(default=clock.now)
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by_user_id: Mapped[uuid.UUID | None] = mapped_column(_fk("users", "SET NULL"))
    acknowledged_via: Mapped[str | None] = mapped_column(String(20))
    ended_at: Mapped[datetime | None]


class Page(Base):
    __tablename__ = "pages"
    __table_args__ = (UniqueConstraint("run_id", "cycle", "level", "user_id"),
                      Index("ix_pages_user_status", "user_id", "status"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    run_id: Mapped[uuid.UUID] = mapped_column(_fk("escalation_runs"), index=True)
    crisis_id: Mapped[uuid.UUID] = mapped_column(_fk("crises"), index=True)
    org_id: Mapped[uuid.UUID] = mapped_column(_fk("organizations"))
    user_id: Mapped[uuid.UUID] = mapped_column(_fk("users"))
    cycle: Mapped[int]
    level: Mapped[int]
    status: Mapped[PageStatus] = mapped_column(enum_column(PageStatus, "page_status"))
    short_code: Mapped[str] = mapped_column(String(8), index=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    timed_out_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]


class DeliveryAttempt(Base):
    __tablename__ = "page_attempts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    page_id: Mapped[uuid.UUID] = mapped_column(_fk("pages"), index=True)
    method_id: Mapped[uuid.UUID | None] = mapped_column(_fk("contact_methods", "SET NULL"))
    kind: Mapped[ContactKind] = mapped_column(enum_column(ContactKind, "contact_kind"))
    hint: Mapped[str] = mapped_column(String(120))
    outcome: Mapped[str] = mapped_column(String(16))  # sent | delivered | failed | skipped
    detail: Mapped[str] = mapped_column(String(300), default="")
    reference: Mapped[str | None] = mapped_column(String(120), index=True)  # the provider's id, for receipts
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


# The crisis room -----------------------------------------------------------------------------------------------


class Message(Base):
    __tablename__ = "crisis_messages"
    __table_args__ = (UniqueConstraint("crisis_id", "client_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    crisis_id: Mapped[uuid.UUID] = mapped_column(_fk("crises"), index=True)
    client_id: Mapped[str] = mapped_column(String(64))  # chosen by the sender: a resend never duplicates
    kind: Mapped[str] = mapped_column(String(16), default="message")  # message | system
    author_user_id: Mapped[uuid.UUID | None] = mapped_column(_fk("users", "SET NULL"))
    author_org_id: Mapped[uuid.UUID | None] = mapped_column(_fk("organizations", "SET NULL"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)


class Decision(Base):
    __tablename__ = "crisis_decisions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    crisis_id: Mapped[uuid.UUID] = mapped_column(_fk("crises"), index=True)
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[DecisionStatus] = mapped_column(enum_column(DecisionStatus, "decision_status"))
    recorded_by_user_id: Mapped[uuid.UUID | None] = mapped_column(_fk("users", "SET NULL"))
    recorded_by_org_id: Mapped[uuid.UUID | None] = mapped_column(_fk("organizations", "SET NULL"))
    recorded_at: Mapped[datetime] = mapped_column(default=clock.now)
    superseded_by_id: Mapped[uuid.UUID | None] = mapped_column(_fk("crisis_decisions", "SET NULL"))
    superseded_at: Mapped[datetime | None]


class Pledge(Base):
    __tablename__ = "pledges"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    crisis_id: Mapped[uuid.UUID] = mapped_column(_fk("crises"), index=True)
    org_id: Mapped[uuid.UUID] = mapped_column(_fk("organizations"), index=True)
    places: Mapped[int]
    population: Mapped[str] = mapped_column(String(120), default="")
    time_frame: Mapped[str] = mapped_column(String(120), default="")
    note: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[PledgeStatus] = mapped_column(enum_column(PledgeStatus, "pledge_status"))
    created_by_user_id: Mapped[uuid.UUID | None] = mapped_column(_fk("users", "SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)


class Action(Base):
    __tablename__ = "crisis_actions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    crisis_id: Mapped[uuid.UUID] = mapped_column(_fk("crises"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    owner_org_id: Mapped[uuid.UUID] = mapped_column(_fk("organizations"), index=True)
    due_on: Mapped[date] = mapped_column(Date)
    status: Mapped[ActionStatus] = mapped_column(enum_column(ActionStatus, "action_status"))
    created_by_user_id: Mapped[uuid.UUID | None] = mapped_column(_fk("users", "SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)
    completed_at: Mapped[datetime | None]
    last_reminded_on: Mapped[date | None] = mapped_column(Date)

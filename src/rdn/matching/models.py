"""The records of matching: member governments' reception sites and quotas, each case's overridden needs, and
matching runs with their proposed placements (each accepted or overridden by an officer, then confirmed into
referrals).

A run is kept whole: its filter, the figures of its solution (objective, LP bound, gap) and one placement per
case with the explanation computed when it was solved, so runs can be compared after sites and cases change.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, SmallInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from rdn.core import clock
from rdn.core.i18n import N_
from rdn.core.tenancy import enum_column
from rdn.db import Base, new_id


def _fk(table: str, ondelete: str = "CASCADE") -> ForeignKey:
    return ForeignKey(f"{table}.id", ondelete=ondelete)


#: The resources a case can need besides places (people). Sites list a capacity for those they offer; a site
#: without one cannot take a case that needs it (a capability mismatch).
RESOURCES: dict[str, str] = {
    "medical": N_("Medical care slots"),
    "large_family": N_("Large-family housing units"),
    "accessible": N_("Accessible housing units"),
    "single_parent": N_("Single-parent support places"),
    "caseworker_hours": N_("Caseworker hours"),
}
PEOPLE = "people"
RESOURCE_NAMES: dict[str, str] = {PEOPLE: N_("Places (people)"), **RESOURCES}


class Site(Base):
    """A reception site of a member government: a locality or resettlement affiliate, with its capacity in
    people for the period and in further named resources, and what it offers arriving families."""

    __tablename__ = "match_sites"
    __table_args__ = (UniqueConstraint("org_id", "code"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(_fk("organizations", "RESTRICT"), index=True)
    code: Mapped[str] = mapped_column(String(40))  # the government's own short code
    name: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2), index=True)
    locality: Mapped[str] = mapped_column(String(200), default="")
    period: Mapped[str] = mapped_column(String(20), default="")  # e.g. "2027" or "2027-Q1"
    capacity_people: Mapped[int] = mapped_column(Integer, default=0)
    resources: Mapped[dict[str, Any]] = mapped_column(default=dict)  # name -> capacity
    languages: Mapped[list[str]] = mapped_column(default=list)  # ISO 639 codes served
    nationalities: Mapped[list[str]] = mapped_column(default=list)  # established communities (ISO 3166)
    unemployment_rate: Mapped[float] = mapped_column(Float, default=5.0)  # percent
    labour_demand: Mapped[int] = mapped_column(SmallInteger, default=1)  # education local jobs ask for, 0-3
    setting: Mapped[str] = mapped_column(String(10), default="")  # "urban", "rural" or ""
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)

    def capacity(self, resource: str) -> float:
        return float(self.capacity_people) if resource == PEOPLE else float((self.resources or {}).get(resource, 0))


class Quota(Base):
    """A government's places for a year across all its sites, part of them kept for emergency cases."""

    __tablename__ = "match_quotas"

    org_id: Mapped[uuid.UUID] = mapped_column(_fk("organizations"), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    places: Mapped[int] = mapped_column(Integer)
    emergency_reserve: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)


class NeedOverride(Base):
    """An officer's correction of what a case needs of one resource (the derived need is the default)."""

    __tablename__ = "match_need_overrides"

    case_id: Mapped[uuid.UUID] = mapped_column(_fk("cases"), primary_key=True)
    resource: Mapped[str] = mapped_column(String(40), primary_key=True)
    amount: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(String(500))
    by_user_id: Mapped[uuid.UUID | None] = mapped_column(_fk("users", "SET NULL"))
    at: Mapped[datetime] = mapped_column(default=clock.now)


class RunStatus(StrEnum):
    queued = "queued"
    solving = "solving"
    proposed = "proposed"  # solved: officers review the placements
    confirmed = "confirmed"  # referrals were created
    failed = "failed"


RUN_STATUS_NAMES: dict[RunStatus, str] = {
    RunStatus.queued: N_("Waiting to start"),
    RunStatus.solving: N_("Solving"),
    RunStatus.proposed: N_("Proposal ready for review"),
    RunStatus.confirmed: N_("Confirmed"),
    RunStatus.failed: N_("Failed"),
}


class Run(Base):
    """One matching run over a batch of cases (a saved filter of the owner's cases)."""

    __tablename__ = "match_runs"
    __table_args__ = (Index("ix_match_runs_org_created", "org_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(_fk("organizations", "RESTRICT"))
    title: Mapped[str] = mapped_column(String(200))
    filters: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the batch: the cases list's filters
    year: Mapped[int] = mapped_column(Integer)  # whose quotas apply
    status: Mapped[RunStatus] = mapped_column(enum_column(RunStatus, "match_run_status"))
    progress: Mapped[str] = mapped_column(String(200), default="")
    cases: Mapped[int] = mapped_column(Integer, default=0)
    people: Mapped[int] = mapped_column(Integer, default=0)
    placed: Mapped[int] = mapped_column(Integer, default=0)
    objective: Mapped[float | None] = mapped_column(Float)
    bound: Mapped[float | None] = mapped_column(Float)
    gap: Mapped[float | None] = mapped_column(Float)
    seconds: Mapped[float | None] = mapped_column(Float)
    method: Mapped[str] = mapped_column(String(40), default="")
    use: Mapped[list[Any]] = mapped_column(default=list)  # per site: capacity and use per resource
    error: Mapped[str] = mapped_column(Text, default="")
    created_by_user_id: Mapped[uuid.UUID | None] = mapped_column(_fk("users", "SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    finished_at: Mapped[datetime | None]
    confirmed_by_user_id: Mapped[uuid.UUID | None] = mapped_column(_fk("users", "SET NULL"))
    confirmed_at: Mapped[datetime | None]


class Decision(StrEnum):
    proposed = "proposed"  # not reviewed yet
    accepted = "accepted"  # the proposed site stands
    overridden = "overridden"  # another site (or none), with a reason
    referred = "referred"  # confirmed: the referral exists


DECISION_NAMES: dict[Decision, str] = {
    Decision.proposed: N_("To review"),
    Decision.accepted: N_("Accepted"),
    Decision.overridden: N_("Overridden"),
    Decision.referred: N_("Referred"),
}


class Placement(Base):
    """What a run proposes for one case, and what the officer decided."""

    __tablename__ = "match_placements"
    __table_args__ = (UniqueConstraint("run_id", "case_id"), Index("ix_match_placements_case", "case_id"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    run_id: Mapped[uuid.UUID] = mapped_column(_fk("match_runs"))
    case_id: Mapped[uuid.UUID] = mapped_column(_fk("cases"))
    position: Mapped[int] = mapped_column(Integer)  # the case's row in the run
    number: Mapped[str] = mapped_column(String(40))
    people: Mapped[int] = mapped_column(SmallInteger)
    priority: Mapped[str] = mapped_column(String(16))
    needs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    proposed_site_id: Mapped[uuid.UUID | None] = mapped_column(_fk("match_sites", "SET NULL"))
    score: Mapped[float | None] = mapped_column(Float)  # at the proposed site
    explanation: Mapped[dict[str, Any]] = mapped_column(default=dict)
    decision: Mapped[Decision] = mapped_column(enum_column(Decision, "match_decision"))
    site_id: Mapped[uuid.UUID | None] = mapped_column(_fk("match_sites", "SET NULL"))  # as decided
    reason: Mapped[str] = mapped_column(String(1000), default="")  # why it was overridden
    decided_by_user_id: Mapped[uuid.UUID | None] = mapped_column(_fk("users", "SET NULL"))
    decided_at: Mapped[datetime | None]
    referral_id: Mapped[uuid.UUID | None] = mapped_column(_fk("referrals", "SET NULL"))

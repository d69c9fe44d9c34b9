"""The records of pathways and obstacles: each destination country's legal pathways, the obstacles in host and
transit countries that block cases (with their evidence and status history), the cases they block, the
diplomatic actions against them, and the network's library of what worked.

A block ties one case's pre-departure checklist item to an obstacle for a span of time (``blocked_at`` to
``released_at``): counts, durations and "blocked people over time" are computed from these spans, without
reading anything of the case beyond its summary.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Date, Float, ForeignKey, Index, Integer, LargeBinary, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from rdn.core import clock
from rdn.core.i18n import N_
from rdn.core.tenancy import enum_column
from rdn.db import Base, new_id


def _fk(table: str, ondelete: str = "CASCADE") -> ForeignKey:
    return ForeignKey(f"{table}.id", ondelete=ondelete)


class PathwayType(StrEnum):
    resettlement = "resettlement"
    humanitarian_admission = "humanitarian_admission"
    family_reunification = "family_reunification"
    labour_mobility = "labour_mobility"
    education = "education"
    sponsorship_named = "sponsorship_named"
    sponsorship_matched = "sponsorship_matched"


PATHWAY_TYPE_NAMES: dict[PathwayType, str] = {
    PathwayType.resettlement: N_("Resettlement"),
    PathwayType.humanitarian_admission: N_("Humanitarian admission or parole"),
    PathwayType.family_reunification: N_("Family reunification"),
    PathwayType.labour_mobility: N_("Labour mobility"),
    PathwayType.education: N_("Education"),
    PathwayType.sponsorship_named: N_("Community sponsorship (named)"),
    PathwayType.sponsorship_matched: N_("Community sponsorship (matched)"),
}


class PathwayStatus(StrEnum):
    open = "open"
    paused = "paused"
    closed = "closed"


PATHWAY_STATUS_NAMES: dict[PathwayStatus, str] = {
    PathwayStatus.open: N_("Open"), PathwayStatus.paused: N_("Paused"), PathwayStatus.closed: N_("Closed"),
}


class Pathway(Base):
    """A legal pathway a destination country offers, and who can use it."""

    __tablename__ = "pathways"
    __table_args__ = (Index("ix_pathways_country_status", "country", "status"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(_fk("organizations", "RESTRICT"), index=True)
    country: Mapped[str] = mapped_column(String(2))  # the destination
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[PathwayType] = mapped_column(enum_column(PathwayType, "pathway_type"))
    description: Mapped[str] = mapped_column(Text, default="")
    nationalities: Mapped[list[str]] = mapped_column(default=list)  # eligible; empty: any
    locations: Mapped[list[str]] = mapped_column(default=list)  # countries applicants may be in; empty: any
    categories: Mapped[list[str]] = mapped_column(default=list)  # UNHCR submission categories; empty: any
    conditions: Mapped[str] = mapped_column(Text, default="")  # other conditions, in words
    year: Mapped[int] = mapped_column(Integer)
    places: Mapped[int] = mapped_column(Integer, default=0)  # a year
    places_used: Mapped[int] = mapped_column(Integer, default=0)
    processing_days: Mapped[int | None] = mapped_column(Integer)  # typical
    fee_amount: Mapped[float | None] = mapped_column(Float)
    fee_currency: Mapped[str] = mapped_column(String(3), default="")
    documents: Mapped[list[str]] = mapped_column(default=list)
    responsible: Mapped[str] = mapped_column(String(200), default="")  # the organization that runs it
    status: Mapped[PathwayStatus] = mapped_column(enum_column(PathwayStatus, "pathway_status"))
    status_since: Mapped[date] = mapped_column(Date)
    opens_on: Mapped[date | None] = mapped_column(Date)
    closes_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)


class PathwayKey(Base):
    """What search matches, one row per key of a pathway: "n:VE" for each eligible nationality, "l:CO" for each
    country applicants may be in (none when open to any). Keyed by the key first, so a search is two index range
    scans (one per side) on either database, instead of reading every pathway's lists."""

    __tablename__ = "pathway_keys"

    key: Mapped[str] = mapped_column(String(8), primary_key=True)
    pathway_id: Mapped[uuid.UUID] = mapped_column(_fk("pathways"), primary_key=True, index=True)


class ObstacleType(StrEnum):
    exit_permit = "exit_permit"
    exit_fee = "exit_fee"
    overstay_fine = "overstay_fine"
    missing_document = "missing_document"
    no_legal_status = "no_legal_status"
    transit_visa = "transit_visa"
    proof_of_funds = "proof_of_funds"
    medical_hold = "medical_hold"
    security_hold = "security_hold"
    other = "other"


OBSTACLE_TYPE_NAMES: dict[ObstacleType, str] = {
    ObstacleType.exit_permit: N_("Exit permit"),
    ObstacleType.exit_fee: N_("Exit fee"),
    ObstacleType.overstay_fine: N_("Overstay fine"),
    ObstacleType.missing_document: N_("Missing travel or civil document"),
    ObstacleType.no_legal_status: N_("No legal status in the host country"),
    ObstacleType.transit_visa: N_("Transit visa"),
    ObstacleType.proof_of_funds: N_("Proof of funds"),
    ObstacleType.medical_hold: N_("Medical hold"),
    ObstacleType.security_hold: N_("Security hold"),
    ObstacleType.other: N_("Other"),
}


class Severity(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


SEVERITY_NAMES: dict[Severity, str] = {
    Severity.low: N_("Low"), Severity.medium: N_("Medium"), Severity.high: N_("High"),
    Severity.critical: N_("Critical"),
}


class ObstacleStatus(StrEnum):
    reported = "reported"
    confirmed = "confirmed"
    being_addressed = "being_addressed"
    resolved = "resolved"


OBSTACLE_STATUS_NAMES: dict[ObstacleStatus, str] = {
    ObstacleStatus.reported: N_("Reported"), ObstacleStatus.confirmed: N_("Confirmed"),
    ObstacleStatus.being_addressed: N_("Being addressed"), ObstacleStatus.resolved: N_("Resolved"),
}


class Obstacle(Base):
    """Something in a host or transit country that stops cases from leaving."""

    __tablename__ = "obstacles"
    __table_args__ = (Index("ix_obstacles_country_status", "country", "status"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    country: Mapped[str] = mapped_column(String(2))  # host or transit country
    type: Mapped[ObstacleType] = mapped_column(enum_column(ObstacleType, "obstacle_type"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    amount: Mapped[float | None] = mapped_column(Float)  # where it is a fee or fine, per person
    currency: Mapped[str] = mapped_column(String(3), default="")
    nationalities: Mapped[list[str]] = mapped_column(default=list)  # affected; empty: everyone
    since: Mapped[date | None] = mapped_column(Date)
    severity: Mapped[Severity] = mapped_column(enum_column(Severity, "obstacle_severity"))
    status: Mapped[ObstacleStatus] = mapped_column(enum_column(ObstacleStatus, "obstacle_status"))
    history: Mapped[list[Any]] = mapped_column(default=list)  # [{status, at, by}] every change, oldest first
    links: Mapped[list[str]] = mapped_column(default=list)  # evidence: public sources
    resolved_at: Mapped[datetime | None]
    reported_by_org_id: Mapped[uuid.UUID] = mapped_column(_fk("organizations", "RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)


class Evidence(Base):
    """A note on an obstacle, with an attachment or not (a decree, a receipt, a photo of a notice)."""

    __tablename__ = "obstacle_evidence"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    obstacle_id: Mapped[uuid.UUID] = mapped_column(_fk("obstacles"), index=True)
    org_id: Mapped[uuid.UUID] = mapped_column(_fk("organizations", "RESTRICT"))
    user_id: Mapped[uuid.UUID | None] = mapped_column(_fk("users", "SET NULL"))
    note: Mapped[str] = mapped_column(Text, default="")
    filename: Mapped[str] = mapped_column(String(200), default="")
    content_type: Mapped[str] = mapped_column(String(100), default="")
    data: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class Block(Base):
    """A case's checklist item blocked by an obstacle, from ``blocked_at`` until it is released."""

    __tablename__ = "obstacle_blocks"
    __table_args__ = (Index("ix_obstacle_blocks_obstacle_open", "obstacle_id", "released_at"),
                      Index("ix_obstacle_blocks_case", "case_id", "item"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    obstacle_id: Mapped[uuid.UUID] = mapped_column(_fk("obstacles"))
    case_id: Mapped[uuid.UUID] = mapped_column(_fk("cases"))
    item: Mapped[str] = mapped_column(String(32))
    owner_org_id: Mapped[uuid.UUID] = mapped_column(_fk("organizations", "RESTRICT"))
    people: Mapped[int] = mapped_column(SmallInteger)
    blocked_at: Mapped[datetime] = mapped_column(default=clock.now)
    released_at: Mapped[datetime | None]
    release_reason: Mapped[str] = mapped_column(String(40), default="")  # "resolved", "unblocked", "moved"


class ActionType(StrEnum):
    demarche = "demarche"
    joint_statement = "joint_statement"
    bilateral_request = "bilateral_request"
    funding_offer = "funding_offer"
    technical_assistance = "technical_assistance"


ACTION_TYPE_NAMES: dict[ActionType, str] = {
    ActionType.demarche: N_("Démarche"),
    ActionType.joint_statement: N_("Joint statement"),
    ActionType.bilateral_request: N_("Bilateral request"),
    ActionType.funding_offer: N_("Funding offer"),
    ActionType.technical_assistance: N_("Technical assistance"),
}


class DiplomaticAction(Base):
    """What governments did about an obstacle, with its outcome and the next follow-up."""

    __tablename__ = "diplomatic_actions"
    __table_args__ = (Index("ix_diplomatic_actions_follow_up", "follow_up_on", "reminded_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    obstacle_id: Mapped[uuid.UUID] = mapped_column(_fk("obstacles"), index=True)
    type: Mapped[ActionType] = mapped_column(enum_column(ActionType, "diplomatic_action_type"))
    lead_org_id: Mapped[uuid.UUID] = mapped_column(_fk("organizations", "RESTRICT"))
    cosigners: Mapped[list[str]] = mapped_column(default=list)  # organization ids
    on: Mapped[date] = mapped_column(Date)
    description: Mapped[str] = mapped_column(Text, default="")
    outcome: Mapped[str] = mapped_column(Text, default="")
    follow_up_on: Mapped[date | None] = mapped_column(Date)
    reminded_at: Mapped[datetime | None]  # the follow-up reminder went out
    created_by_user_id: Mapped[uuid.UUID | None] = mapped_column(_fk("users", "SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class Practice(Base):
    """A note in the best-practice library: what worked, in Markdown (rendered safely)."""

    __tablename__ = "practice_notes"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(_fk("organizations", "RESTRICT"), index=True)
    author_user_id: Mapped[uuid.UUID | None] = mapped_column(_fk("users", "SET NULL"))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(default=list)
    country: Mapped[str] = mapped_column(String(2), default="")
    pathway_id: Mapped[uuid.UUID | None] = mapped_column(_fk("pathways", "SET NULL"))
    obstacle_id: Mapped[uuid.UUID | None] = mapped_column(_fk("obstacles", "SET NULL"))
    filename: Mapped[str] = mapped_column(String(200), default="")
    content_type: Mapped[str] = mapped_column(String(100), default="")
    data: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)

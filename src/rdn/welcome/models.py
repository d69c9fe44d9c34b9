"""The records of Welcome: sponsorship programmes (their rules as data), sponsor groups and their members, the
matches of groups with arriving families, the core services of each family's first months, and donations.

A sponsor group is an organization of its own (kind ``sponsor_group``): its members sign in as sponsors of that
organization. What sponsors learn of a family is the match's ``shared`` snapshot, taken by the programme's staff
from the case when they propose the match and limited to the fields the programme lets sponsors see (first names,
arrival, family size, languages, the needs the family agreed to share). Sponsors never read the case itself.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, Date, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from rdn.core import clock
from rdn.core.i18n import N_
from rdn.core.tenancy import enum_column
from rdn.db import Base, new_id


def _fk(table: str, ondelete: str = "CASCADE") -> ForeignKey:
    return ForeignKey(f"{table}.id", ondelete=ondelete)


class Stream(StrEnum):
    matched = "matched"  # the programme matches the group with a family it does not know
    named = "named"  # the group names a family it knows


STREAM_NAMES = {Stream.matched: N_("Matched"), Stream.named: N_("Named")}

#: What a programme may let sponsors see of a family (the match's ``shared`` snapshot holds only these).
SPONSOR_FIELDS = ("given_names", "size", "arrival", "languages", "needs", "ages")
SPONSOR_FIELD_NAMES = {
    "given_names": N_("First names"),
    "size": N_("Family size"),
    "arrival": N_("Itinerary (flight, airport, time)"),
    "languages": N_("Languages"),
    "needs": N_("Needs the family agreed to share"),
    "ages": N_("Ages"),
}


class Programme(Base):
    """A government's sponsorship programme, its rules as data. ``services`` lists the core services every family
    receives: ``{"code", "label", "due_days", "per_person"}`` (due that many days after arrival; per person, or
    once for the family)."""

    __tablename__ = "welcome_programmes"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(_fk("organizations", "RESTRICT"), index=True)  # the government
    slug: Mapped[str] = mapped_column(String(40), unique=True)  # in public addresses: /welcome/us-welcome-corps
    country: Mapped[str] = mapped_column(String(2))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    streams: Mapped[list[str]] = mapped_column(default=list)  # Stream values the programme runs
    min_adults: Mapped[int] = mapped_column(Integer, default=5)
    checks_required: Mapped[bool] = mapped_column(Boolean, default=True)  # background checks of every adult
    training_required: Mapped[bool] = mapped_column(Boolean, default=True)  # of every adult
    funds_per_person: Mapped[float] = mapped_column(Float, default=0.0)  # per refugee the group may welcome
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    cash_share: Mapped[float] = mapped_column(Float, default=0.0)  # at least this share of the funds in cash
    support_days: Mapped[int] = mapped_column(Integer, default=90)
    services: Mapped[list[Any]] = mapped_column(default=list)
    staff_after_days: Mapped[int] = mapped_column(Integer, default=7)  # overdue this long: the staff are told
    sponsor_fields: Mapped[list[str]] = mapped_column(default=list)  # of SPONSOR_FIELDS
    accepting: Mapped[bool] = mapped_column(Boolean, default=True)  # groups may sign up
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)


class GroupStatus(StrEnum):
    forming = "forming"  # signed up; the programme's rules do not all hold yet
    eligible = "eligible"  # every rule holds: may be matched
    matched = "matched"  # a match is proposed or accepted, the family has not arrived
    welcoming = "welcoming"  # the family has arrived: the support period runs
    completed = "completed"  # the support period ended, outcomes recorded
    withdrawn = "withdrawn"


GROUP_STATUS_NAMES = {
    GroupStatus.forming: N_("Forming"),
    GroupStatus.eligible: N_("Eligible"),
    GroupStatus.matched: N_("Matched"),
    GroupStatus.welcoming: N_("Welcoming"),
    GroupStatus.completed: N_("Completed"),
    GroupStatus.withdrawn: N_("Withdrawn"),
}


class SponsorGroup(Base):
    """Citizens who sponsor together: their preferences, funds and welcome plan. ``plan`` is who does what:
    ``{"service": code, "member_id": id}`` for each core service."""

    __tablename__ = "welcome_groups"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    programme_id: Mapped[uuid.UUID] = mapped_column(_fk("welcome_programmes", "RESTRICT"), index=True)
    org_id: Mapped[uuid.UUID] = mapped_column(_fk("organizations", "RESTRICT"), unique=True)  # the group's own
    # The government running the programme (its staff handle the group): copied here for the rules and scopes.
    government_org_id: Mapped[uuid.UUID] = mapped_column(_fk("organizations", "RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2))
    city: Mapped[str] = mapped_column(String(120), default="")
    contact_email: Mapped[str] = mapped_column(String(320))
    stream: Mapped[Stream] = mapped_column(enum_column(Stream, "welcome_stream"), default=Stream.matched)
    named_family: Mapped[str] = mapped_column(String(500), default="")  # the named stream: who, as the group knows
    languages: Mapped[list[str]] = mapped_column(default=list)  # ISO 639 codes the group speaks
    nationalities: Mapped[list[str]] = mapped_column(default=list)  # preferred; empty: any
    min_size: Mapped[int] = mapped_column(Integer, default=1)
    max_size: Mapped[int] = mapped_column(Integer, default=6)
    capacity: Mapped[int] = mapped_column(Integer, default=4)  # people the group can house
    supports: Mapped[list[str]] = mapped_column(default=list)  # needs the group can meet (wheelchair, ...)
    funds_pledged: Mapped[float] = mapped_column(Float, default=0.0)
    funds_cash: Mapped[float] = mapped_column(Float, default=0.0)  # of the pledged funds, in cash
    funds_verified_at: Mapped[datetime | None]
    plan: Mapped[list[Any]] = mapped_column(default=list)
    status: Mapped[GroupStatus] = mapped_column(enum_column(GroupStatus, "welcome_group_status"),
                                                default=GroupStatus.forming, index=True)
    eligible_since: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)


class CheckStatus(StrEnum):
    pending = "pending"
    passed = "passed"
    failed = "failed"


CHECK_STATUS_NAMES = {CheckStatus.pending: N_("Pending"), CheckStatus.passed: N_("Passed"),
                      CheckStatus.failed: N_("Not passed")}


class SponsorMember(Base):
    """One person of a group, with the state of their background check and training (recorded by the
    programme's staff). ``user_id``: their account, if they sign in."""

    __tablename__ = "welcome_members"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    group_id: Mapped[uuid.UUID] = mapped_column(_fk("welcome_groups"), index=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(_fk("users", "SET NULL"))
    full_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320), default="")
    adult: Mapped[bool] = mapped_column(Boolean, default=True)
    check_status: Mapped[CheckStatus] = mapped_column(enum_column(CheckStatus, "welcome_check_status"),
                                                      default=CheckStatus.pending)
    checked_on: Mapped[date | None] = mapped_column(Date)
    trained_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class MatchStatus(StrEnum):
    proposed = "proposed"  # waiting for the group's and the family's acceptance
    active = "active"  # both accepted
    declined = "declined"  # by either side
    completed = "completed"  # the support period ended
    cancelled = "cancelled"  # by the programme's staff


MATCH_STATUS_NAMES = {
    MatchStatus.proposed: N_("Proposed"), MatchStatus.active: N_("Accepted by both sides"),
    MatchStatus.declined: N_("Declined"),
    MatchStatus.completed: N_("Completed"), MatchStatus.cancelled: N_("Cancelled"),
}
OPEN_MATCHES = frozenset({MatchStatus.proposed, MatchStatus.active})
_OPEN_SQL = text("status IN ('proposed', 'active')")


class Match(Base):
    """A group matched with an arriving family (a case). ``shared`` is what the group may know of the family
    (see the module's docstring); ``arrival_notice`` the itinerary; ``outcomes`` what the first months gave."""

    __tablename__ = "welcome_matches"
    __table_args__ = (
        Index("ix_welcome_matches_group_status", "group_id", "status"),
        Index("ix_welcome_matches_case", "case_id"),
        # One open match per family and per group, whatever two people proposing at once would do.
        Index("ix_welcome_matches_one_open_case", "case_id", unique=True, sqlite_where=_OPEN_SQL,
              postgresql_where=_OPEN_SQL),
        Index("ix_welcome_matches_one_open_group", "group_id", unique=True, sqlite_where=_OPEN_SQL,
              postgresql_where=_OPEN_SQL),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    programme_id: Mapped[uuid.UUID] = mapped_column(_fk("welcome_programmes", "RESTRICT"), index=True)
    group_id: Mapped[uuid.UUID] = mapped_column(_fk("welcome_groups", "RESTRICT"))
    case_id: Mapped[uuid.UUID] = mapped_column(_fk("cases", "RESTRICT"))
    stream: Mapped[Stream] = mapped_column(enum_column(Stream, "welcome_stream"))
    proposed_by: Mapped[str] = mapped_column(String(20), default="staff")  # staff | algorithm
    score: Mapped[float | None] = mapped_column(Float)
    reasons: Mapped[list[str]] = mapped_column(default=list)  # why this pair (the algorithm's, in words)
    status: Mapped[MatchStatus] = mapped_column(enum_column(MatchStatus, "welcome_match_status"),
                                                default=MatchStatus.proposed)
    group_accepted_at: Mapped[datetime | None]
    family_accepted_at: Mapped[datetime | None]  # recorded by staff: the family said yes
    declined_reason: Mapped[str] = mapped_column(String(500), default="")
    shared: Mapped[dict[str, Any]] = mapped_column(default=dict)
    arrival_on: Mapped[date | None] = mapped_column(Date)
    arrival_notice: Mapped[dict[str, Any]] = mapped_column(default=dict)  # flight, airport, time, notes
    notice_sent_at: Mapped[datetime | None]
    outcomes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    completed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)


class ServiceTask(Base):
    """One core service for a family (or one of its people): due a number of days after arrival, owned by a
    member of the group, done with evidence. ``reminded_at`` / ``escalated_at``: the one reminder to the group
    and the one notice to the programme's staff, so that neither is sent twice."""

    __tablename__ = "welcome_tasks"
    __table_args__ = (
        UniqueConstraint("match_id", "code", "person"),
        Index("ix_welcome_tasks_open_due", "done_on", "due_on"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    match_id: Mapped[uuid.UUID] = mapped_column(_fk("welcome_matches"), index=True)
    code: Mapped[str] = mapped_column(String(40))
    label: Mapped[str] = mapped_column(String(200))
    person: Mapped[str] = mapped_column(String(120), default="")  # "" for the family as a whole
    due_days: Mapped[int] = mapped_column(Integer)
    due_on: Mapped[date | None] = mapped_column(Date)  # arrival + due_days (None until the arrival is known)
    owner_member_id: Mapped[uuid.UUID | None] = mapped_column(_fk("welcome_members", "SET NULL"))
    done_on: Mapped[date | None] = mapped_column(Date)
    evidence: Mapped[str] = mapped_column(Text, default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    reminded_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)


class DonationKind(StrEnum):
    food = "food"
    clothing = "clothing"
    furniture = "furniture"
    household = "household"
    other = "other"


DONATION_KIND_NAMES = {
    DonationKind.food: N_("Food"), DonationKind.clothing: N_("Clothing"), DonationKind.furniture: N_("Furniture"),
    DonationKind.household: N_("Household goods"), DonationKind.other: N_("Other"),
}


class DonationStatus(StrEnum):
    offered = "offered"
    claimed = "claimed"  # a group will collect it for its family
    given = "given"  # reached the family (the ledger)
    withdrawn = "withdrawn"


DONATION_STATUS_NAMES = {
    DonationStatus.offered: N_("Offered"), DonationStatus.claimed: N_("Claimed"),
    DonationStatus.given: N_("Given to a family"),
    DonationStatus.withdrawn: N_("Withdrawn"),
}


class Donation(Base):
    """An item offered to a programme's families, by a person or a group; claimed by a group for its family and
    recorded as given (what was given to whom)."""

    __tablename__ = "welcome_donations"
    __table_args__ = (Index("ix_welcome_donations_programme_status", "programme_id", "status"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    programme_id: Mapped[uuid.UUID] = mapped_column(_fk("welcome_programmes", "RESTRICT"))
    donor_name: Mapped[str] = mapped_column(String(200))
    donor_email: Mapped[str] = mapped_column(String(320), default="")
    donor_group_id: Mapped[uuid.UUID | None] = mapped_column(_fk("welcome_groups", "SET NULL"))
    kind: Mapped[DonationKind] = mapped_column(enum_column(DonationKind, "welcome_donation_kind"))
    description: Mapped[str] = mapped_column(String(500))
    condition: Mapped[str] = mapped_column(String(20), default="good")  # new | good | fair
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    city: Mapped[str] = mapped_column(String(120), default="")
    status: Mapped[DonationStatus] = mapped_column(enum_column(DonationStatus, "welcome_donation_status"),
                                                  default=DonationStatus.offered)
    claimed_by_group_id: Mapped[uuid.UUID | None] = mapped_column(_fk("welcome_groups", "SET NULL"))
    claimed_at: Mapped[datetime | None]
    given_to_match_id: Mapped[uuid.UUID | None] = mapped_column(_fk("welcome_matches", "SET NULL"))
    given_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

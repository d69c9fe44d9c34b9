"""The records of Safe Mobility: offices and their eligibility, registrations made online by refugees and
migrants, the screening rules (as data, versioned) and what each screening found, appointment slots and
bookings.

What identifies a person (names, contacts, the household's names, free text) is sealed with the office's data key
(``rdn.core.crypto``). What screening and the office's figures need is kept in clear but identifies no one on its
own: nationalities, birth dates, the date of arrival in the country, the household's ages and ties, the answers to
screening questions. Duplicates are found through keyed hashes (HMAC with the server's secret) of the normalised
name with the birth date, of the phone number and of the email address, never through the clear values.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from rdn.core import clock
from rdn.core.crypto import SensitiveFields, sealed
from rdn.core.i18n import N_
from rdn.core.tenancy import enum_column
from rdn.db import Base, new_id


def _fk(table: str, ondelete: str = "CASCADE") -> ForeignKey:
    return ForeignKey(f"{table}.id", ondelete=ondelete)


class Office(Base):
    """A Safe Mobility office: who may register there (nationalities, present in the country by a cut-off date),
    in which languages, and the organization that runs it (an organization of kind ``mobility_office``)."""

    __tablename__ = "mobility_offices"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(_fk("organizations", "RESTRICT"), unique=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)  # in public addresses: /safe-mobility/cr
    country: Mapped[str] = mapped_column(String(2))  # where the office is (and registrants are)
    name: Mapped[str] = mapped_column(String(200))
    nationalities: Mapped[list[str]] = mapped_column(default=list)  # eligible; empty: any
    presence_cutoff: Mapped[date | None] = mapped_column(Date)  # in the country on or before this date
    opened_on: Mapped[date | None] = mapped_column(Date)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")  # of its appointments
    address: Mapped[str] = mapped_column(String(500), default="")
    elsewhere: Mapped[str] = mapped_column(Text, default="")  # where else to look, told to those not eligible
    accepting: Mapped[bool] = mapped_column(Boolean, default=True)  # registration open
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)


class RegistrationStatus(StrEnum):
    received = "received"  # registered, not yet screened (screening runs at once; kept for imports)
    screened = "screened"  # screening done: may qualify for one or more pathways, to review
    not_qualified = "not_qualified"  # screened: no pathway found (told where else to look)
    interview = "interview"  # an appointment is booked
    interviewed = "interviewed"
    referred = "referred"  # a case was opened and referred to a government
    closed = "closed"  # by staff, with a reason
    withdrawn = "withdrawn"  # by the registrant
    merged = "merged"  # a duplicate, merged into another registration


REGISTRATION_STATUS_NAMES: dict[RegistrationStatus, str] = {
    RegistrationStatus.received: N_("Received"),
    RegistrationStatus.screened: N_("Screened"),
    RegistrationStatus.not_qualified: N_("No pathway found"),
    RegistrationStatus.interview: N_("Interview booked"),
    RegistrationStatus.interviewed: N_("Interviewed"),
    RegistrationStatus.referred: N_("Referred"),
    RegistrationStatus.closed: N_("Closed"),
    RegistrationStatus.withdrawn: N_("Withdrawn"),
    RegistrationStatus.merged: N_("Merged"),
}
#: Registrations still in the office's hands (screening rules apply to these; a rule change moves these).
OPEN_STATUSES = frozenset({RegistrationStatus.received, RegistrationStatus.screened,
                           RegistrationStatus.not_qualified, RegistrationStatus.interview,
                           RegistrationStatus.interviewed})


class Registration(SensitiveFields, Base):
    """One household's registration at an office.

    ``profile`` (clear) is what screening reads: ``{"members": [{"relationship": "principal"|"spouse"|"child"|
    "parent"|"sibling"|"other", "sex": "f"|"m"|"x", "birth_date": "2001-04-02", "nationality": "VE"}, ...],
    "ties": ["ES", ...] (countries where close family lives), "categories": [...]}``; ``answers`` the
    answers to screening questions by question key. ``identity`` (sealed) holds the names: ``{"members":
    [{"given_name": ..., "family_name": ...}, ...]}`` in the order of ``profile["members"]``; ``contact``
    (sealed) ``{"phone": ..., "email": ..., "whatsapp": ...}``.
    """

    __tablename__ = "mobility_registrations"
    __sensitive_owner__ = "org_id"
    __table_args__ = (
        Index("ix_mobility_registrations_office_status", "office_id", "status"),
        Index("ix_mobility_registrations_office_created", "office_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    office_id: Mapped[uuid.UUID] = mapped_column(_fk("mobility_offices", "RESTRICT"))
    org_id: Mapped[uuid.UUID] = mapped_column(_fk("organizations", "RESTRICT"))  # the office's: seals with its key
    reference: Mapped[str] = mapped_column(String(20), unique=True)  # told to the registrant: SM-CR-7K3P9Q2M
    pin_hash: Mapped[str] = mapped_column(String(64))  # HMAC of the PIN with the server's secret
    status: Mapped[RegistrationStatus] = mapped_column(enum_column(RegistrationStatus, "mobility_registration_status"))
    status_since: Mapped[datetime] = mapped_column(default=clock.now)
    language: Mapped[str] = mapped_column(String(8))  # the registrant's: messages go out in it
    nationality: Mapped[str] = mapped_column(String(2))  # the principal applicant's
    birth_date: Mapped[date | None] = mapped_column(Date)  # the principal applicant's
    arrived_on: Mapped[date] = mapped_column(Date)  # in the office's country
    household_size: Mapped[int] = mapped_column(Integer, default=1)
    profile: Mapped[dict[str, Any]] = mapped_column(default=dict)
    answers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Consent, one use at a time, in plain words on the form: the date each was given (None: not given).
    consent_screening: Mapped[datetime | None]  # to be screened for pathways (needed to register)
    consent_contact: Mapped[datetime | None]  # to be contacted by email, SMS or WhatsApp
    consent_share: Mapped[datetime | None]  # to have the file shared with governments for referral
    identity: Mapped[bytes | None] = sealed()
    contact: Mapped[bytes | None] = sealed()
    # Keyed hashes for duplicates: of the principal's normalised name and birth date, of the phone, of the email.
    person_key: Mapped[str] = mapped_column(String(64), index=True)
    phone_key: Mapped[str | None] = mapped_column(String(64), index=True)
    email_key: Mapped[str | None] = mapped_column(String(64), index=True)
    duplicate_of_id: Mapped[uuid.UUID | None] = mapped_column(_fk("mobility_registrations", "SET NULL"))
    merged_into_id: Mapped[uuid.UUID | None] = mapped_column(_fk("mobility_registrations", "SET NULL"))
    case_id: Mapped[uuid.UUID | None] = mapped_column(_fk("cases", "SET NULL"), index=True)
    referred_pathway_id: Mapped[uuid.UUID | None] = mapped_column(_fk("pathways", "SET NULL"))
    referred_org_id: Mapped[uuid.UUID | None] = mapped_column(_fk("organizations", "SET NULL"))
    referred_at: Mapped[datetime | None]
    closed_reason: Mapped[str] = mapped_column(String(500), default="")
    source_ip_key: Mapped[str] = mapped_column(String(64), default="")  # keyed hash: floods, not who
    history: Mapped[list[Any]] = mapped_column(default=list)  # [{"at", "status", "by"}]
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)


class RuleStatus(StrEnum):
    active = "active"
    retired = "retired"  # replaced by a newer version, or switched off


class ScreeningRule(Base):
    """One version of a screening rule: at an office, the conditions under which a registration may qualify for
    a pathway of a destination country. Staff edit rules as data; each save is a new version of the same
    ``rule_key`` (the previous one retired), so every result names the exact version that decided it.

    ``questions``: ``[{"key": "worked_abroad", "type": "yes_no"|"number"|"choice", "text": {"es": ..., "en":
    ...}, "choices": [...]}]`` asked on the public form. ``conditions``: every one must hold, each
    ``{"field": ..., "op": ..., "value": ...}`` or ``{"any": [condition, ...]}`` (see
    ``rdn.mobility.screening``).
    """

    __tablename__ = "mobility_rules"
    __table_args__ = (UniqueConstraint("rule_key", "version"), Index("ix_mobility_rules_office_status",
                                                                      "office_id", "status"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    rule_key: Mapped[uuid.UUID] = mapped_column(default=new_id)  # the same across versions
    version: Mapped[int] = mapped_column(Integer, default=1)
    office_id: Mapped[uuid.UUID] = mapped_column(_fk("mobility_offices"))
    name: Mapped[str] = mapped_column(String(200))
    destination: Mapped[str] = mapped_column(String(2))  # the country the pathway leads to
    pathway_id: Mapped[uuid.UUID | None] = mapped_column(_fk("pathways", "SET NULL"))  # in the catalog
    questions: Mapped[list[Any]] = mapped_column(default=list)
    conditions: Mapped[list[Any]] = mapped_column(default=list)
    status: Mapped[RuleStatus] = mapped_column(enum_column(RuleStatus, "mobility_rule_status"))
    created_by_user_id: Mapped[uuid.UUID | None] = mapped_column(_fk("users", "SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class ScreeningResult(Base):
    """What one rule version found for one registration: whether it qualifies, and which conditions held
    (``checks``: ``[{"label": "Nationality is one of VE, NI", "held": true}, ...]``). A registration's current
    results are those with ``current`` true (re-screening marks the earlier ones not current)."""

    __tablename__ = "mobility_results"
    __table_args__ = (Index("ix_mobility_results_registration_current", "registration_id", "current"),
                      Index("ix_mobility_results_rule_current", "rule_id", "current"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    registration_id: Mapped[uuid.UUID] = mapped_column(_fk("mobility_registrations"))
    rule_id: Mapped[uuid.UUID] = mapped_column(_fk("mobility_rules"))
    qualifies: Mapped[bool] = mapped_column(Boolean)
    checks: Mapped[list[Any]] = mapped_column(default=list)
    current: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class Slot(Base):
    """A time at an office when ``capacity`` interviews can take place."""

    __tablename__ = "mobility_slots"
    __table_args__ = (Index("ix_mobility_slots_office_starts", "office_id", "starts_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    office_id: Mapped[uuid.UUID] = mapped_column(_fk("mobility_offices"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    capacity: Mapped[int] = mapped_column(Integer, default=1)
    booked: Mapped[int] = mapped_column(Integer, default=0)  # appointments booked (not cancelled)
    offered: Mapped[bool] = mapped_column(Boolean, default=True)  # registrants may book it themselves
    location: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class AppointmentStatus(StrEnum):
    booked = "booked"
    attended = "attended"
    no_show = "no_show"
    cancelled = "cancelled"  # by the registrant or staff, or moved to another slot (rescheduled)


APPOINTMENT_STATUS_NAMES: dict[AppointmentStatus, str] = {
    AppointmentStatus.booked: N_("Booked"),
    AppointmentStatus.attended: N_("Attended"),
    AppointmentStatus.no_show: N_("Did not come"),
    AppointmentStatus.cancelled: N_("Cancelled"),
}


class Appointment(Base):
    __tablename__ = "mobility_appointments"
    __table_args__ = (Index("ix_mobility_appointments_registration", "registration_id", "status"),
                      Index("ix_mobility_appointments_slot", "slot_id", "status"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    registration_id: Mapped[uuid.UUID] = mapped_column(_fk("mobility_registrations"))
    slot_id: Mapped[uuid.UUID] = mapped_column(_fk("mobility_slots", "RESTRICT"))
    status: Mapped[AppointmentStatus] = mapped_column(enum_column(AppointmentStatus, "mobility_appointment_status"))
    booked_by: Mapped[str] = mapped_column(String(20))  # "registrant" or "staff"
    sequence: Mapped[int] = mapped_column(Integer, default=0)  # iCalendar SEQUENCE: raised on each change
    rescheduled_from_id: Mapped[uuid.UUID | None] = mapped_column(_fk("mobility_appointments", "SET NULL"))
    reminded_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)

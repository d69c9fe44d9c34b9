"""The records of the cases domain: cases (families) and their members, sensitive sections, the pipeline,
data-sharing agreements, consent, referrals, ownership transfers, and the name-search index.

Enumerations are string enums stored as strings; state machines are explicit transition tables
(``rdn.cases.pipeline`` for stages, ``REFERRAL_TRANSITIONS`` here for referrals) that tests walk.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Computed,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from rdn.core import clock
from rdn.core.crypto import SensitiveFields, sealed
from rdn.core.i18n import N_
from rdn.core.tenancy import enum_column
from rdn.db import Base, new_id


def _fk(table: str, ondelete: str = "CASCADE") -> ForeignKey:
    return ForeignKey(f"{table}.id", ondelete=ondelete)


# Vocabularies ---------------------------------------------------------------------------------------------------


class Category(StrEnum):
    """UNHCR's seven resettlement submission categories."""

    LPN = "LPN"  # legal and/or physical protection needs (includes LGBTIQ+ people at risk)
    WGR = "WGR"  # women and girls at risk
    CAR = "CAR"  # children and adolescents at risk (needs a best-interests determination)
    SVT = "SVT"  # survivors of violence and/or torture
    MED = "MED"  # medical needs
    FAM = "FAM"  # restoring family unity
    LAS = "LAS"  # lack of foreseeable alternative durable solutions


CATEGORY_NAMES: dict[Category, str] = {
    Category.LPN: N_("Legal and/or physical protection needs"),
    Category.WGR: N_("Women and girls at risk"),
    Category.CAR: N_("Children and adolescents at risk"),
    Category.SVT: N_("Survivors of violence and/or torture"),
    Category.MED: N_("Medical needs"),
    Category.FAM: N_("Restoring family unity"),
    Category.LAS: N_("Lack of foreseeable alternative durable solutions"),
}


class Priority(StrEnum):
    emergency = "emergency"
    urgent = "urgent"
    normal = "normal"


PRIORITY_NAMES: dict[Priority, str] = {
    Priority.emergency: N_("Emergency"),
    Priority.urgent: N_("Urgent"),
    Priority.normal: N_("Normal"),
}


class Sex(StrEnum):
    female = "female"
    male = "male"
    other = "other"
    unknown = "unknown"


SEX_NAMES: dict[Sex, str] = {
    Sex.female: N_("Female"), Sex.male: N_("Male"), Sex.other: N_("Other"), Sex.unknown: N_("Unknown"),
}


class Relationship(StrEnum):
    """A member's relationship to the principal applicant."""

    principal = "principal"
    spouse = "spouse"
    partner = "partner"
    child = "child"
    stepchild = "stepchild"
    parent = "parent"
    sibling = "sibling"
    grandparent = "grandparent"
    grandchild = "grandchild"
    other_relative = "other_relative"
    non_relative = "non_relative"  # a dependant who is not a relative


RELATIONSHIP_NAMES: dict[Relationship, str] = {
    Relationship.principal: N_("Principal applicant"),
    Relationship.spouse: N_("Spouse"),
    Relationship.partner: N_("Partner"),
    Relationship.child: N_("Child"),
    Relationship.stepchild: N_("Stepchild"),
    Relationship.parent: N_("Parent"),
    Relationship.sibling: N_("Sibling"),
    Relationship.grandparent: N_("Grandparent"),
    Relationship.grandchild: N_("Grandchild"),
    Relationship.other_relative: N_("Other relative"),
    Relationship.non_relative: N_("Dependant, not related"),
}


class Education(StrEnum):
    none = "none"
    primary = "primary"
    secondary = "secondary"
    vocational = "vocational"
    university = "university"
    unknown = "unknown"


EDUCATION_NAMES: dict[Education, str] = {
    Education.none: N_("No formal education"),
    Education.primary: N_("Primary"),
    Education.secondary: N_("Secondary"),
    Education.vocational: N_("Vocational"),
    Education.university: N_("University"),
    Education.unknown: N_("Unknown"),
}


class SpecificNeed(StrEnum):
    disability = "disability"
    serious_medical_condition = "serious_medical_condition"
    older_person_at_risk = "older_person_at_risk"
    unaccompanied_child = "unaccompanied_child"
    separated_child = "separated_child"
    single_parent = "single_parent"
    pregnant_or_lactating = "pregnant_or_lactating"
    woman_at_risk = "woman_at_risk"
    child_at_risk = "child_at_risk"
    legal_protection = "legal_protection"


NEED_NAMES: dict[SpecificNeed, str] = {
    SpecificNeed.disability: N_("Disability"),
    SpecificNeed.serious_medical_condition: N_("Serious medical condition"),
    SpecificNeed.older_person_at_risk: N_("Older person at risk"),
    SpecificNeed.unaccompanied_child: N_("Unaccompanied child"),
    SpecificNeed.separated_child: N_("Separated child"),
    SpecificNeed.single_parent: N_("Single parent"),
    SpecificNeed.pregnant_or_lactating: N_("Pregnant or lactating"),
    SpecificNeed.woman_at_risk: N_("Woman at risk"),
    SpecificNeed.child_at_risk: N_("Child at risk"),
    SpecificNeed.legal_protection: N_("Specific legal and physical protection needs"),
}


class Section(StrEnum):
    """What one may see of a case. ``summary`` holds no personal data; the rest are shared by agreement."""

    summary = "summary"  # number, categories, priorities, stage, dates, household size, current country
    identity = "identity"  # members' names, sex, dates of birth, nationality, relationships
    background = "background"  # languages, education, occupation
    needs = "needs"  # specific needs
    location = "location"  # where in the current country
    family = "family"  # family ties in destination countries, linked cases
    preferences = "preferences"  # stated preferences
    pipeline = "pipeline"  # stage history with notes, the pre-departure checklist
    protection = "protection"  # sealed: protection narrative
    medical = "medical"  # sealed
    sogi = "sogi"  # sealed: sexual orientation and gender identity
    svt = "svt"  # sealed: survivors of violence or torture
    confidential = "confidential"  # sealed: notes a member asked to keep from the others (owner only)


SECTION_NAMES: dict[Section, str] = {
    Section.summary: N_("Summary"),
    Section.identity: N_("Identity"),
    Section.background: N_("Languages, education and occupation"),
    Section.needs: N_("Specific needs"),
    Section.location: N_("Location"),
    Section.family: N_("Family ties and linked cases"),
    Section.preferences: N_("Preferences"),
    Section.pipeline: N_("Pipeline history and checklist"),
    Section.protection: N_("Protection narrative"),
    Section.medical: N_("Medical"),
    Section.sogi: N_("Sexual orientation and gender identity"),
    Section.svt: N_("Survivors of violence or torture"),
    Section.confidential: N_("Member-confidential notes"),
}

#: Sealed at rest; shown only after a step-up, each read audited.
SENSITIVE: frozenset[Section] = frozenset(
    {Section.protection, Section.medical, Section.sogi, Section.svt, Section.confidential}
)
#: The sealed sections stored on the case itself (confidential notes are per member).
CASE_SEALED: tuple[Section, ...] = (Section.protection, Section.medical, Section.sogi, Section.svt)
#: What a data-sharing agreement may list (the summary always goes; confidential notes never leave).
SHAREABLE: frozenset[Section] = frozenset(Section) - {Section.summary, Section.confidential}


class Purpose(StrEnum):
    resettlement = "resettlement"
    family_reunification = "family_reunification"
    complementary_pathway = "complementary_pathway"
    services = "services"


PURPOSE_NAMES: dict[Purpose, str] = {
    Purpose.resettlement: N_("Resettlement consideration"),
    Purpose.family_reunification: N_("Family reunification"),
    Purpose.complementary_pathway: N_("Complementary pathway"),
    Purpose.services: N_("Services"),
}


class ChecklistItem(StrEnum):
    security = "security"
    medical = "medical"
    exit_permit = "exit_permit"
    travel_document = "travel_document"
    orientation = "orientation"


CHECKLIST_NAMES: dict[ChecklistItem, str] = {
    ChecklistItem.security: N_("Security clearance"),
    ChecklistItem.medical: N_("Medical clearance"),
    ChecklistItem.exit_permit: N_("Exit permit"),
    ChecklistItem.travel_document: N_("Travel document"),
    ChecklistItem.orientation: N_("Cultural orientation"),
}


class ChecklistStatus(StrEnum):
    pending = "pending"
    in_progress = "in_progress"
    done = "done"
    blocked = "blocked"
    not_needed = "not_needed"


CHECKLIST_STATUS_NAMES: dict[ChecklistStatus, str] = {
    ChecklistStatus.pending: N_("Pending"),
    ChecklistStatus.in_progress: N_("In progress"),
    ChecklistStatus.done: N_("Done"),
    ChecklistStatus.blocked: N_("Blocked"),
    ChecklistStatus.not_needed: N_("Not needed"),
}


# Cases ----------------------------------------------------------------------------------------------------------


PRIORITY_RANK = {Priority.emergency: 0, Priority.urgent: 1, Priority.normal: 2}
# The same ranks, as the database computes them (the cases migration holds this text too).
PRIORITY_RANK_SQL = "CASE processing_priority " + " ".join(
    f"WHEN '{p.value}' THEN {rank}" for p, rank in PRIORITY_RANK.items() if p != Priority.normal) + " ELSE 2 END"


class Case(SensitiveFields, Base):
    __tablename__ = "cases"
    __sensitive_owner__ = "owner_org_id"
    __table_args__ = (
        UniqueConstraint("owner_org_id", "number"),
        Index("ix_cases_owner_updated", "owner_org_id", "updated_at"),
        Index("ix_cases_owner_due", "owner_org_id", "due_at"),
        # A stage filter walks one stage in due order (the list's usual sort) without reading other stages.
        Index("ix_cases_owner_stage_due", "owner_org_id", "stage", "due_at"),
        Index("ix_cases_owner_nationality", "owner_org_id", "nationality"),
        # A category filter is on either category: two indexes the database combines (a rare category over a
        # whole caseload otherwise reads every case to find none).
        Index("ix_cases_owner_category_primary", "owner_org_id", "category_primary"),
        Index("ix_cases_owner_category_secondary", "owner_org_id", "category_secondary"),
        # The list sorted by priority, then due date: walked in order up to the page.
        Index("ix_cases_owner_priority_due", "owner_org_id", "priority_rank", "due_at"),
        # A case found by a number it had under an earlier owner (PostgreSQL; SQLite reads each case's list).
        Index("ix_cases_previous_numbers", "previous_numbers", postgresql_using="gin").ddl_if(dialect="postgresql"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    owner_org_id: Mapped[uuid.UUID] = mapped_column(_fk("organizations", "RESTRICT"))
    number: Mapped[str] = mapped_column(String(40))
    previous_numbers: Mapped[list[str]] = mapped_column(default=list)  # under earlier owners
    # Denormalised from the principal applicant and the members, for lists and filters.
    principal_name: Mapped[str] = mapped_column(String(300), default="")
    nationality: Mapped[str | None] = mapped_column(String(2))
    size: Mapped[int] = mapped_column(SmallInteger, default=0)

    current_country: Mapped[str] = mapped_column(String(2), index=True)
    current_location: Mapped[str] = mapped_column(String(200), default="")
    category_primary: Mapped[Category] = mapped_column(enum_column(Category, "case_category"))
    category_secondary: Mapped[Category] = mapped_column(enum_column(Category, "case_category"))
    processing_priority: Mapped[Priority] = mapped_column(enum_column(Priority, "case_priority"), index=True)
    # 0 emergency, 1 urgent, 2 normal: computed by the database, for sorting by priority with an index.
    priority_rank: Mapped[int] = mapped_column(SmallInteger, Computed(PRIORITY_RANK_SQL, persisted=True))
    submission_priority: Mapped[Priority] = mapped_column(enum_column(Priority, "case_priority"))
    stage: Mapped[str] = mapped_column(String(32), index=True)
    stage_since: Mapped[datetime] = mapped_column(default=clock.now)
    opened_at: Mapped[datetime] = mapped_column(default=clock.now)
    submitted_at: Mapped[datetime | None]
    departed_at: Mapped[datetime | None]
    arrived_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    # SLA clocks: the stage's own due time and the case's targets; due_at is the earliest that applies.
    stage_due_at: Mapped[datetime | None]
    target_submission_on: Mapped[date | None] = mapped_column(Date)
    target_departure_on: Mapped[date | None] = mapped_column(Date)
    due_at: Mapped[datetime | None] = mapped_column(index=True)
    preferences: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Sealed sections: each a JSON object, sealed with the owner's data key.
    protection: Mapped[bytes | None] = sealed()
    medical: Mapped[bytes | None] = sealed()
    sogi: Mapped[bytes | None] = sealed()
    svt: Mapped[bytes | None] = sealed()
    import_id: Mapped[uuid.UUID | None]
    version: Mapped[int] = mapped_column(default=1)
    created_by_user_id: Mapped[uuid.UUID | None] = mapped_column(_fk("users", "SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)


class CaseShare(Base):
    """Derived, for lists: a case a recipient organization sees through live referrals, with copies of the
    columns lists filter and sort on, so that a government's list walks its own index like an owner's.

    Kept in step by ``rdn.cases.shares`` in the flush of every change to a case, its members, its referrals,
    their agreements or a recipient's country. ``policy.live_referrals_to`` stays the rule (a single case is
    always checked against it); a row exists while at least one referral is live, clears the nationality rule
    and runs under an active agreement, and shows the case until ``until`` (the latest end among those
    agreements; 9999-12-31 when one has none), so an agreement that expires hides the case the next day.
    ``identity_until``: the same, over referrals that share the identity section (name search).
    """

    __tablename__ = "case_shares"
    __table_args__ = (
        Index("ix_case_shares_org_due", "org_id", "due_at"),
        Index("ix_case_shares_org_priority_due", "org_id", "priority_rank", "due_at"),
        Index("ix_case_shares_org_stage_due", "org_id", "stage", "due_at"),
        Index("ix_case_shares_org_category_primary", "org_id", "category_primary"),
        Index("ix_case_shares_org_category_secondary", "org_id", "category_secondary"),
        Index("ix_case_shares_org_updated", "org_id", "updated_at"),
        Index("ix_case_shares_org_nationality", "org_id", "nationality"),
        Index("ix_case_shares_case", "case_id"),
        Index("ix_case_shares_org_number", "org_id", "number"),
    )

    org_id: Mapped[uuid.UUID] = mapped_column(_fk("organizations"), primary_key=True)
    case_id: Mapped[uuid.UUID] = mapped_column(_fk("cases"), primary_key=True)
    until: Mapped[date] = mapped_column(Date)
    identity_until: Mapped[date | None] = mapped_column(Date)
    number: Mapped[str] = mapped_column(String(40))
    principal_name: Mapped[str] = mapped_column(String(300))
    nationality: Mapped[str | None] = mapped_column(String(2))
    current_country: Mapped[str] = mapped_column(String(2))
    category_primary: Mapped[Category] = mapped_column(enum_column(Category, "case_category"))
    category_secondary: Mapped[Category] = mapped_column(enum_column(Category, "case_category"))
    priority_rank: Mapped[int] = mapped_column(SmallInteger)
    stage: Mapped[str] = mapped_column(String(32))
    due_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class CaseCounter(Base):
    """The last case number an organization gave in a year (numbers are per owner: UNHCR-26-000123)."""

    __tablename__ = "case_counters"

    org_id: Mapped[uuid.UUID] = mapped_column(_fk("organizations"), primary_key=True)
    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(default=0)


class Member(Base):
    __tablename__ = "case_members"
    __table_args__ = (
        Index("ix_case_members_case_position", "case_id", "position"),
        # Whose nationality is the recipient's own (a government never receives its own nationals' cases).
        Index("ix_case_members_nationality_case", "nationality", "case_id"),
        # "Someone on a case looks like this person": see rdn.cases.names.person_key.
        Index("ix_case_members_look_alike", "look_alike_key", "birth_year"),
        # Name search, by the owner or by the organizations the case is shared with (PostgreSQL only: SQLite has
        # no such index, and reads the keys of each member).
        Index("ix_case_members_name_keys", "name_keys", "shared_with", postgresql_using="gin").ddl_if(
            dialect="postgresql"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(_fk("cases"))
    position: Mapped[int] = mapped_column(SmallInteger, default=0)
    relationship: Mapped[Relationship] = mapped_column(enum_column(Relationship, "member_relationship"))
    given_name: Mapped[str] = mapped_column(String(120))
    family_name: Mapped[str] = mapped_column(String(120), default="")
    other_names: Mapped[list[str]] = mapped_column(default=list)  # other spellings and transliterations
    sex: Mapped[Sex] = mapped_column(enum_column(Sex, "member_sex"))
    birth_year: Mapped[int] = mapped_column(SmallInteger)
    birth_date: Mapped[date | None] = mapped_column(Date)  # when the full date is known
    nationality: Mapped[str | None] = mapped_column(String(2))
    stateless: Mapped[bool] = mapped_column(default=False)
    languages: Mapped[list[str]] = mapped_column(default=list)  # ISO 639 codes
    education: Mapped[Education] = mapped_column(enum_column(Education, "member_education"),
                                                 default=Education.unknown)
    occupation: Mapped[str] = mapped_column(String(120), default="")
    specific_needs: Mapped[list[str]] = mapped_column(default=list)
    # The name skeletons as one digest (names.person_key), kept by service.index_names.
    look_alike_key: Mapped[str | None] = mapped_column(String(34))
    # The name-search keys of every name and spelling (names.member_keys): the normalised tokens (``n:``) and
    # the skeletons that transliterations share (``s:``), kept by service.index_names. A JSON array with a GIN
    # index on PostgreSQL, which intersects the keys of several tokens without reading any other row.
    name_keys: Mapped[list[str]] = mapped_column(default=list, server_default=text("'[]'"))
    # The organizations the case is shared with, identity included (``uuid.hex`` of each, from ``case_shares``;
    # kept by rdn.cases.shares): a recipient's name search finds its people in the same index. Only a guide to
    # the index: the search still checks each share row.
    shared_with: Mapped[list[str]] = mapped_column(default=list, server_default=text("'[]'"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)

    @property
    def full_name(self) -> str:
        return f"{self.given_name} {self.family_name}".strip()


class ConfidentialNote(SensitiveFields, Base):
    """Something one member asked to keep from the others: only the owner's caseworkers see it."""

    __tablename__ = "case_confidential_notes"
    __sensitive_owner__ = "owner_org_id"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(_fk("cases"), index=True)
    member_id: Mapped[uuid.UUID] = mapped_column(_fk("case_members"), index=True)
    owner_org_id: Mapped[uuid.UUID] = mapped_column(_fk("organizations", "RESTRICT"))
    body: Mapped[bytes | None] = sealed()
    created_by_user_id: Mapped[uuid.UUID | None] = mapped_column(_fk("users", "SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class FamilyTie(Base):
    """A relative in a possible destination country (relevant to matching and to the FAM category)."""

    __tablename__ = "case_family_ties"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(_fk("cases"), index=True)
    country: Mapped[str] = mapped_column(String(2), index=True)
    city: Mapped[str] = mapped_column(String(120), default="")
    relationship: Mapped[str] = mapped_column(String(60))
    note: Mapped[str] = mapped_column(String(300), default="")


class CaseLink(Base):
    """Two cases that belong together (a married child's own case, relatives processed together)."""

    __tablename__ = "case_links"
    __table_args__ = (UniqueConstraint("case_id", "linked_case_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(_fk("cases"), index=True)
    linked_case_id: Mapped[uuid.UUID] = mapped_column(_fk("cases"), index=True)
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class StageEvent(Base):
    """One move of the pipeline: who, when, from where to where, and why."""

    __tablename__ = "case_stage_events"
    __table_args__ = (Index("ix_case_stage_events_case_at", "case_id", "at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(_fk("cases"))
    from_stage: Mapped[str | None] = mapped_column(String(32))
    to_stage: Mapped[str] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(Text, default="")
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(_fk("users", "SET NULL"))
    actor_org_id: Mapped[uuid.UUID | None] = mapped_column(_fk("organizations", "SET NULL"))
    actor_label: Mapped[str] = mapped_column(String(200), default="")
    at: Mapped[datetime] = mapped_column(default=clock.now)


class ChecklistEntry(Base):
    """One item of the pre-departure checklist. ``obstacle_id`` will tie it to an obstacle (pathways)."""

    __tablename__ = "case_checklist"
    __table_args__ = (UniqueConstraint("case_id", "item"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(_fk("cases"))
    item: Mapped[ChecklistItem] = mapped_column(enum_column(ChecklistItem, "checklist_item"))
    status: Mapped[ChecklistStatus] = mapped_column(enum_column(ChecklistStatus, "checklist_status"),
                                                    default=ChecklistStatus.pending)
    note: Mapped[str] = mapped_column(String(500), default="")
    obstacle_id: Mapped[uuid.UUID | None]
    updated_by_user_id: Mapped[uuid.UUID | None] = mapped_column(_fk("users", "SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)


# Sharing --------------------------------------------------------------------------------------------------------


class AgreementStatus(StrEnum):
    proposed = "proposed"
    active = "active"
    declined = "declined"
    withdrawn = "withdrawn"
    ended = "ended"


AGREEMENT_STATUS_NAMES: dict[AgreementStatus, str] = {
    AgreementStatus.proposed: N_("Proposed"),
    AgreementStatus.active: N_("In force"),
    AgreementStatus.declined: N_("Declined"),
    AgreementStatus.withdrawn: N_("Withdrawn"),
    AgreementStatus.ended: N_("Ended"),
}


class Agreement(Base):
    """A data-sharing agreement: what ``provider`` may share with ``recipient``, for which purposes.

    One party proposes, the other's administrator accepts; either party ends it. Only an agreement in force
    (and not past ``valid_until``) lets data flow: ending it cuts access on the next request.
    """

    __tablename__ = "sharing_agreements"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    provider_org_id: Mapped[uuid.UUID] = mapped_column(_fk("organizations", "RESTRICT"), index=True)
    recipient_org_id: Mapped[uuid.UUID] = mapped_column(_fk("organizations", "RESTRICT"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    reference: Mapped[str] = mapped_column(String(100), default="")  # the signed instrument's reference
    purposes: Mapped[list[str]]
    sections: Mapped[list[str]]
    valid_until: Mapped[date | None] = mapped_column(Date)
    status: Mapped[AgreementStatus] = mapped_column(enum_column(AgreementStatus, "agreement_status"), index=True)
    proposed_by_org_id: Mapped[uuid.UUID] = mapped_column(_fk("organizations", "RESTRICT"))
    proposed_by_user_id: Mapped[uuid.UUID | None] = mapped_column(_fk("users", "SET NULL"))
    proposed_at: Mapped[datetime] = mapped_column(default=clock.now)
    decided_by_user_id: Mapped[uuid.UUID | None] = mapped_column(_fk("users", "SET NULL"))
    decided_at: Mapped[datetime | None]
    ended_by_user_id: Mapped[uuid.UUID | None] = mapped_column(_fk("users", "SET NULL"))
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str] = mapped_column(String(500), default="")


class ConsentMethod(StrEnum):
    verbal = "verbal"
    written = "written"
    digital = "digital"


class Consent(Base):
    """A family's consent to disclose their case to one recipient for one purpose (withdrawable)."""

    __tablename__ = "case_consents"
    __table_args__ = (Index("ix_case_consents_case_recipient", "case_id", "recipient_org_id", "purpose"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(_fk("cases"))
    recipient_org_id: Mapped[uuid.UUID] = mapped_column(_fk("organizations", "RESTRICT"))
    purpose: Mapped[Purpose] = mapped_column(enum_column(Purpose, "referral_purpose"))
    method: Mapped[ConsentMethod] = mapped_column(enum_column(ConsentMethod, "consent_method"))
    given_by_member_id: Mapped[uuid.UUID | None] = mapped_column(_fk("case_members", "SET NULL"))
    note: Mapped[str] = mapped_column(String(500), default="")
    recorded_by_user_id: Mapped[uuid.UUID | None] = mapped_column(_fk("users", "SET NULL"))
    recorded_at: Mapped[datetime] = mapped_column(default=clock.now)
    withdrawn_at: Mapped[datetime | None]
    withdrawn_by_user_id: Mapped[uuid.UUID | None] = mapped_column(_fk("users", "SET NULL"))
    withdrawn_reason: Mapped[str] = mapped_column(String(500), default="")


class ReferralStatus(StrEnum):
    pending = "pending"
    in_progress = "in_progress"
    accepted = "accepted"
    rejected = "rejected"
    done = "done"
    revoked = "revoked"


REFERRAL_STATUS_NAMES: dict[ReferralStatus, str] = {
    ReferralStatus.pending: N_("Pending"),
    ReferralStatus.in_progress: N_("In progress"),
    ReferralStatus.accepted: N_("Accepted"),
    ReferralStatus.rejected: N_("Rejected"),
    ReferralStatus.done: N_("Done"),
    ReferralStatus.revoked: N_("Revoked"),
}

#: Statuses in which the recipient sees the case (as far as the referral's sections go).
LIVE_REFERRAL = frozenset({ReferralStatus.pending, ReferralStatus.in_progress, ReferralStatus.accepted,
                           ReferralStatus.done})


class Side(StrEnum):
    sender = "sender"
    recipient = "recipient"


#: (from, to) -> which side may make the move.
REFERRAL_TRANSITIONS: dict[tuple[ReferralStatus, ReferralStatus], frozenset[Side]] = {
    (ReferralStatus.pending, ReferralStatus.in_progress): frozenset({Side.recipient}),
    (ReferralStatus.pending, ReferralStatus.accepted): frozenset({Side.recipient}),
    (ReferralStatus.pending, ReferralStatus.rejected): frozenset({Side.recipient}),
    (ReferralStatus.pending, ReferralStatus.revoked): frozenset({Side.sender}),
    (ReferralStatus.in_progress, ReferralStatus.accepted): frozenset({Side.recipient}),
    (ReferralStatus.in_progress, ReferralStatus.rejected): frozenset({Side.recipient}),
    (ReferralStatus.in_progress, ReferralStatus.revoked): frozenset({Side.sender}),
    (ReferralStatus.accepted, ReferralStatus.done): frozenset({Side.sender, Side.recipient}),
    (ReferralStatus.accepted, ReferralStatus.revoked): frozenset({Side.sender}),
}


class Outcome(StrEnum):
    successful = "successful"
    not_successful = "not_successful"


class RoundMode(StrEnum):
    parallel = "parallel"  # every recipient is asked at once
    sequential = "sequential"  # the next is asked when the one before rejects


class ReferralRound(Base):
    """One act of referring a case to one or several governments, in turn or in parallel."""

    __tablename__ = "referral_rounds"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(_fk("cases"), index=True)
    sender_org_id: Mapped[uuid.UUID] = mapped_column(_fk("organizations", "RESTRICT"))
    mode: Mapped[RoundMode] = mapped_column(enum_column(RoundMode, "round_mode"))
    purpose: Mapped[Purpose] = mapped_column(enum_column(Purpose, "referral_purpose"))
    sections: Mapped[list[str]]
    recipients: Mapped[list[str]]  # organization ids, in the order they are asked
    next_index: Mapped[int] = mapped_column(default=0)  # sequential: the next recipient to ask
    note: Mapped[str] = mapped_column(Text, default="")
    # The sender's overrides hold for every government of the round, however late it is asked.
    consent_override_reason: Mapped[str] = mapped_column(String(500), default="")
    nationality_override_reason: Mapped[str] = mapped_column(String(500), default="")
    created_by_user_id: Mapped[uuid.UUID | None] = mapped_column(_fk("users", "SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class Referral(Base):
    __tablename__ = "referrals"
    __table_args__ = (
        # Covers what decides which cases a government sees (policy.live_referrals_to): answered from the index.
        Index("ix_referrals_recipient_status", "recipient_org_id", "status", "agreement_id", "case_id",
              postgresql_include=["shares_identity", "nationality_override_reason"]),
        Index("ix_referrals_case_recipient", "case_id", "recipient_org_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    round_id: Mapped[uuid.UUID] = mapped_column(_fk("referral_rounds"), index=True)
    case_id: Mapped[uuid.UUID] = mapped_column(_fk("cases"))
    sender_org_id: Mapped[uuid.UUID] = mapped_column(_fk("organizations", "RESTRICT"), index=True)
    recipient_org_id: Mapped[uuid.UUID] = mapped_column(_fk("organizations", "RESTRICT"))
    agreement_id: Mapped[uuid.UUID] = mapped_column(_fk("sharing_agreements", "RESTRICT"), index=True)
    purpose: Mapped[Purpose] = mapped_column(enum_column(Purpose, "referral_purpose"))
    sections: Mapped[list[str]]
    shares_identity: Mapped[bool] = mapped_column(default=False)  # "identity" in sections: name search
    status: Mapped[ReferralStatus] = mapped_column(enum_column(ReferralStatus, "referral_status"))
    consent_id: Mapped[uuid.UUID | None] = mapped_column(_fk("case_consents", "SET NULL"))
    consent_override_reason: Mapped[str] = mapped_column(String(500), default="")
    consent_override_by_user_id: Mapped[uuid.UUID | None] = mapped_column(_fk("users", "SET NULL"))
    nationality_override_reason: Mapped[str] = mapped_column(String(500), default="")
    nationality_override_by_user_id: Mapped[uuid.UUID | None] = mapped_column(_fk("users", "SET NULL"))
    note: Mapped[str] = mapped_column(Text, default="")
    reason: Mapped[str] = mapped_column(String(1000), default="")  # why it was rejected or revoked
    outcome: Mapped[Outcome | None] = mapped_column(enum_column(Outcome, "referral_outcome"))
    outcome_reason: Mapped[str] = mapped_column(String(1000), default="")
    created_by_user_id: Mapped[uuid.UUID | None] = mapped_column(_fk("users", "SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)
    closed_at: Mapped[datetime | None]


class ReferralMessage(Base):
    """The thread on a referral: the recipient asks for more information, the sender answers."""

    __tablename__ = "referral_messages"
    __table_args__ = (Index("ix_referral_messages_referral_at", "referral_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    referral_id: Mapped[uuid.UUID] = mapped_column(_fk("referrals"))
    org_id: Mapped[uuid.UUID] = mapped_column(_fk("organizations", "RESTRICT"))
    user_id: Mapped[uuid.UUID | None] = mapped_column(_fk("users", "SET NULL"))
    author_label: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class TransferStatus(StrEnum):
    pending = "pending"
    accepted = "accepted"
    declined = "declined"
    cancelled = "cancelled"


TRANSFER_STATUS_NAMES: dict[TransferStatus, str] = {
    TransferStatus.pending: N_("Waiting for a decision"),
    TransferStatus.accepted: N_("Accepted"),
    TransferStatus.declined: N_("Declined"),
    TransferStatus.cancelled: N_("Cancelled"),
}


class Transfer(Base):
    """Handing a case's ownership to another organization: asked by the owner, accepted by the receiver."""

    __tablename__ = "case_transfers"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(_fk("cases"), index=True)
    from_org_id: Mapped[uuid.UUID] = mapped_column(_fk("organizations", "RESTRICT"))
    to_org_id: Mapped[uuid.UUID] = mapped_column(_fk("organizations", "RESTRICT"), index=True)
    reason: Mapped[str] = mapped_column(String(1000))
    status: Mapped[TransferStatus] = mapped_column(enum_column(TransferStatus, "transfer_status"))
    requested_by_user_id: Mapped[uuid.UUID | None] = mapped_column(_fk("users", "SET NULL"))
    requested_at: Mapped[datetime] = mapped_column(default=clock.now)
    decided_by_user_id: Mapped[uuid.UUID | None] = mapped_column(_fk("users", "SET NULL"))
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str] = mapped_column(String(1000), default="")


class CaseImport(Base):
    """One import of a file: who, what, how many; each case it created points back here."""

    __tablename__ = "case_imports"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(_fk("organizations", "RESTRICT"), index=True)
    filename: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64))
    cases: Mapped[int] = mapped_column(Integer)
    people: Mapped[int] = mapped_column(Integer)
    created_by_user_id: Mapped[uuid.UUID | None] = mapped_column(_fk("users", "SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

"""JSON shapes of cases and referrals. Fields of sections the caller may not see are absent from answers."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from pydantic import Field

from rdn.cases.models import (
    AgreementStatus,
    Category,
    ChecklistItem,
    ChecklistStatus,
    ConsentMethod,
    Education,
    Outcome,
    Priority,
    Purpose,
    ReferralStatus,
    Relationship,
    RoundMode,
    Section,
    Sex,
    SpecificNeed,
    TransferStatus,
)
from rdn.cases.pipeline import Stage
from rdn.core.schemas import Out, StrictIn

DOB = Field(description="A year (1987) or a date (1987-04-12): many refugees know only the year",
            pattern=r"^\d{4}(-\d{2}-\d{2})?$")


class MemberIn(StrictIn):
    relationship: Relationship
    given_name: str = Field(min_length=1, max_length=120)
    family_name: str = Field(default="", max_length=120)
    other_names: list[str] = Field(default_factory=list, max_length=10,
                                   description="Other spellings and transliterations")
    sex: Sex
    date_of_birth: str = DOB
    nationality: str | None = Field(default=None, description="ISO 3166-1 alpha-2; empty when stateless")
    stateless: bool = False
    languages: list[str] = Field(default_factory=list, max_length=20, description="ISO 639 codes")
    education: Education = Education.unknown
    occupation: str = Field(default="", max_length=120)
    specific_needs: list[SpecificNeed] = Field(default_factory=list)


class MemberChange(StrictIn):
    relationship: Relationship | None = None
    given_name: str | None = Field(default=None, min_length=1, max_length=120)
    family_name: str | None = Field(default=None, max_length=120)
    other_names: list[str] | None = Field(default=None, max_length=10)
    sex: Sex | None = None
    date_of_birth: str | None = Field(default=None, pattern=r"^\d{4}(-\d{2}-\d{2})?$")
    nationality: str | None = None
    stateless: bool | None = None
    languages: list[str] | None = Field(default=None, max_length=20)
    education: Education | None = None
    occupation: str | None = Field(default=None, max_length=120)
    specific_needs: list[SpecificNeed] | None = None
    version: int | None = Field(default=None, description="The case version you saw (optimistic concurrency)")


class TieIn(StrictIn):
    country: str = Field(min_length=2, max_length=2)
    city: str = Field(default="", max_length=120)
    relationship: str = Field(min_length=1, max_length=60, description="Who the relative is to the family")
    note: str = Field(default="", max_length=300)


class PreferencesIn(StrictIn):
    countries: list[str] = Field(default_factory=list, max_length=10, description="Wanted, in order")
    avoid: list[str] = Field(default_factory=list, max_length=10)
    setting: str = Field(default="any", pattern="^(any|urban|rural)$")
    note: str = Field(default="", max_length=500)


class CaseIn(StrictIn):
    current_country: str = Field(min_length=2, max_length=2)
    current_location: str = Field(default="", max_length=200)
    category_primary: Category
    category_secondary: Category
    processing_priority: Priority
    submission_priority: Priority
    members: list[MemberIn] = Field(min_length=1, max_length=60)
    family_ties: list[TieIn] = Field(default_factory=list, max_length=20)
    preferences: PreferencesIn | None = None
    note: str = Field(default="", max_length=2000)


class CaseChange(StrictIn):
    current_country: str | None = Field(default=None, min_length=2, max_length=2)
    current_location: str | None = Field(default=None, max_length=200)
    category_primary: Category | None = None
    category_secondary: Category | None = None
    processing_priority: Priority | None = None
    submission_priority: Priority | None = None
    family_ties: list[TieIn] | None = Field(default=None, max_length=20)
    preferences: PreferencesIn | None = None
    version: int | None = Field(default=None, description="The case version you saw (optimistic concurrency)")


class MemberOut(Out):
    id: uuid.UUID
    position: int
    relationship: Relationship | None = None
    given_name: str | None = None
    family_name: str | None = None
    other_names: list[str] | None = None
    sex: Sex | None = None
    birth_year: int | None = None
    birth_date: date | None = None
    nationality: str | None = None
    stateless: bool | None = None
    languages: list[str] | None = None
    education: Education | None = None
    occupation: str | None = None
    specific_needs: list[str] | None = None


class TieOut(Out):
    id: uuid.UUID
    country: str
    city: str
    relationship: str
    note: str


class LinkOut(Out):
    id: uuid.UUID
    case_id: uuid.UUID | None = Field(description="None when you may not see the linked case")
    number: str | None
    reason: str


class HistoryOut(Out):
    from_: str | None = Field(alias="from")
    to: str
    note: str
    at: datetime
    by: str


class ChecklistOut(Out):
    item: ChecklistItem
    status: ChecklistStatus
    note: str
    updated_at: datetime


class ReferralOut(Out):
    id: uuid.UUID
    case_id: uuid.UUID
    sender_org_id: uuid.UUID
    recipient_org_id: uuid.UUID
    agreement_id: uuid.UUID
    purpose: Purpose
    sections: list[str]
    status: ReferralStatus
    reason: str
    outcome: Outcome | None
    outcome_reason: str
    consent_recorded: bool
    consent_overridden: bool
    nationality_overridden: bool
    note: str
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None


class CaseSummaryOut(Out):
    id: uuid.UUID
    number: str
    stage: Stage
    category_primary: Category
    category_secondary: Category
    processing_priority: Priority
    submission_priority: Priority
    size: int
    current_country: str
    opened_at: datetime
    submitted_at: datetime | None
    target_submission_on: date | None
    target_departure_on: date | None
    due_at: datetime | None
    overdue: bool
    version: int
    updated_at: datetime
    principal_name: str | None = Field(default=None, description="Only where you may see identities")
    owned: bool | None = None


class CaseOut(Out):
    id: uuid.UUID
    number: str
    owner_org_id: uuid.UUID
    owner_name: str | None
    stage: Stage
    stage_since: datetime
    category_primary: Category
    category_secondary: Category
    processing_priority: Priority
    submission_priority: Priority
    size: int
    current_country: str
    opened_at: datetime
    submitted_at: datetime | None
    departed_at: datetime | None
    arrived_at: datetime | None
    target_submission_on: date | None
    target_departure_on: date | None
    due_at: datetime | None
    overdue: bool
    version: int
    updated_at: datetime
    sections: list[str] = Field(description="The sections you may see")
    sensitive_sections: list[str] = Field(description="Sealed sections you may open (after a step-up)")
    principal_name: str | None = None
    previous_numbers: list[str] | None = None
    members: list[MemberOut] | None = None
    current_location: str | None = None
    family_ties: list[TieOut] | None = None
    links: list[LinkOut] | None = None
    preferences: dict[str, Any] | None = None
    history: list[HistoryOut] | None = None
    checklist: list[ChecklistOut] | None = None
    referrals: list[ReferralOut]


class SimilarOut(Out):
    index: int = Field(description="Which of the people you sent")
    case_id: uuid.UUID
    case_number: str
    member_id: uuid.UUID
    name: str
    birth_year: int


class CaseCreated(Out):
    case: CaseOut
    similar: list[SimilarOut] = Field(description="People already on cases you can see who look like these")


class MoveIn(StrictIn):
    to: Stage
    note: str = Field(default="", max_length=2000)
    version: int | None = None


class ChecklistIn(StrictIn):
    status: ChecklistStatus
    note: str = Field(default="", max_length=500)


class SensitiveIn(StrictIn):
    value: dict[str, Any] | None = Field(description="The section's fields; null or empty clears it")
    version: int | None = None


class ConfidentialIn(StrictIn):
    member_id: uuid.UUID
    body: str = Field(min_length=1, max_length=5000)


class LinkIn(StrictIn):
    case_id: uuid.UUID
    reason: str = Field(default="", max_length=200)


class PrincipalIn(StrictIn):
    previous_becomes: Relationship = Field(description="The previous principal's relationship to the new one")
    version: int | None = None


class ConsentIn(StrictIn):
    recipient_org_id: uuid.UUID
    purpose: Purpose
    method: ConsentMethod
    given_by_member_id: uuid.UUID | None = None
    note: str = Field(default="", max_length=500)


class ConsentOut(Out):
    id: uuid.UUID
    recipient_org_id: uuid.UUID
    purpose: Purpose
    method: ConsentMethod
    given_by_member_id: uuid.UUID | None
    note: str
    recorded_at: datetime
    withdrawn_at: datetime | None
    withdrawn_reason: str


class WithdrawIn(StrictIn):
    reason: str = Field(min_length=3, max_length=500)


class ReferIn(StrictIn):
    recipients: list[uuid.UUID] = Field(min_length=1, max_length=10, description="Member governments, in order")
    purpose: Purpose
    sections: list[Section] = Field(min_length=1)
    mode: RoundMode = RoundMode.parallel
    note: str = Field(default="", max_length=5000)
    consent_override_reason: str = Field(default="", max_length=500,
                                         description="Senior officials and administrators only")
    nationality_override_reason: str = Field(default="", max_length=500, description="Administrators only")


class RoundOut(Out):
    id: uuid.UUID
    case_id: uuid.UUID
    mode: RoundMode
    purpose: Purpose
    sections: list[str]
    recipients: list[str]
    referrals: list[ReferralOut]


class ReferralChange(StrictIn):
    status: ReferralStatus
    reason: str = Field(default="", max_length=1000)
    outcome: Outcome | None = None
    outcome_reason: str = Field(default="", max_length=1000)


class ReferralMessageIn(StrictIn):
    body: str = Field(min_length=1, max_length=5000)


class ReferralMessageOut(Out):
    id: uuid.UUID
    org_id: uuid.UUID
    author_label: str
    body: str
    created_at: datetime


class AgreementIn(StrictIn):
    other_org_id: uuid.UUID
    we_provide: bool = Field(description="True: your organization shares cases with the other; false: receives")
    title: str = Field(min_length=3, max_length=200)
    reference: str = Field(default="", max_length=100)
    purposes: list[Purpose] = Field(min_length=1)
    sections: list[Section] = Field(min_length=1)
    valid_until: date | None = None


class AgreementOut(Out):
    id: uuid.UUID
    provider_org_id: uuid.UUID
    recipient_org_id: uuid.UUID
    title: str
    reference: str
    purposes: list[str]
    sections: list[str]
    valid_until: date | None
    status: AgreementStatus
    proposed_by_org_id: uuid.UUID
    proposed_at: datetime
    decided_at: datetime | None
    ended_at: datetime | None
    end_reason: str


class AgreementDecision(StrictIn):
    decision: AgreementStatus = Field(description="active (accept), declined, withdrawn or ended")
    reason: str = Field(default="", max_length=500)


class TransferIn(StrictIn):
    to_org_id: uuid.UUID
    reason: str = Field(min_length=3, max_length=1000)


class TransferOut(Out):
    id: uuid.UUID
    case_id: uuid.UUID
    from_org_id: uuid.UUID
    to_org_id: uuid.UUID
    reason: str
    status: TransferStatus
    requested_at: datetime
    decided_at: datetime | None
    decision_note: str


class TransferDecision(StrictIn):
    decision: TransferStatus = Field(description="accepted or declined (receiver), cancelled (sender)")
    note: str = Field(default="", max_length=1000)


class LogEntryOut(Out):
    seq: int
    ts: datetime
    actor_label: str
    org_id: uuid.UUID | None
    action: str
    details: dict[str, Any]

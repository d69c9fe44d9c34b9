"""The office staff's JSON API: the queue of registrations (no names unless ``include=identity``, each opening an
audited sensitive read), one registration with its screening results and interview, turning a registration into a
case referred to a government (``Idempotency-Key`` supported as on every POST), and the office's figures.

Another office's registration answers 404, exactly as one that does not exist."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from fastapi import Query
from pydantic import Field

from rdn.core import policy
from rdn.core.identity import Principal
from rdn.core.modules import api_router
from rdn.core.schemas import Out, PageMeta, PageOut, StrictIn
from rdn.core.web import CurrentPrincipal, DbSession
from rdn.mobility import appointments, convert, dashboard, screening
from rdn.mobility import queue as work
from rdn.mobility.models import (
    AppointmentStatus,
    Office,
    Registration,
    RegistrationStatus,
)

router = api_router(prefix="/api/v1/mobility", tags=["mobility"])


class PersonName(Out):
    given_name: str = ""
    family_name: str = ""


class IdentityOut(Out):
    members: list[PersonName] = Field(description="in the order of the household (the principal applicant first)")
    phone: str = ""
    email: str = ""
    whatsapp: str = ""


class RegistrationSummaryOut(Out):
    id: uuid.UUID
    reference: str
    office_id: uuid.UUID
    status: RegistrationStatus
    status_since: datetime
    language: str
    nationality: str = Field(description="the principal applicant's (ISO 3166)")
    arrived_on: date
    household_size: int
    created_at: datetime
    possible_duplicate: bool
    qualifying: int = Field(description="current screening results that may qualify")
    case_id: uuid.UUID | None
    referred_org_id: uuid.UUID | None
    referred_pathway_id: uuid.UUID | None
    referred_at: datetime | None
    identity: IdentityOut | None = Field(None, description="only with include=identity (an audited read)")


class CheckOut(Out):
    text: str = Field(description="the condition in words")
    held: bool


class ResultOut(Out):
    rule_id: uuid.UUID
    rule_key: uuid.UUID
    version: int
    name: str
    destination: str
    pathway_id: uuid.UUID | None
    qualifies: bool
    checks: list[CheckOut]
    screened_at: datetime


class AppointmentOut(Out):
    id: uuid.UUID
    status: AppointmentStatus
    starts_at: datetime
    ends_at: datetime
    location: str


class RegistrationOut(RegistrationSummaryOut):
    profile: dict[str, Any] = Field(description="household ages, sexes, nationalities and relationships; ties")
    answers: dict[str, Any]
    consent_screening: datetime | None
    consent_contact: datetime | None
    consent_share: datetime | None
    duplicate_of_id: uuid.UUID | None
    merged_into_id: uuid.UUID | None
    closed_reason: str
    results: list[ResultOut]
    appointment: AppointmentOut | None = Field(description="the interview booked, if any")
    possible_duplicates: list[uuid.UUID]
    history: list[dict[str, Any]]


class ConvertIn(StrictIn):
    rule_id: uuid.UUID = Field(description="the rule of a current qualifying screening result")
    government_org_id: uuid.UUID
    note: str = Field(default="", max_length=5000)


class ConvertOut(Out):
    registration_id: uuid.UUID
    status: RegistrationStatus
    case_id: uuid.UUID
    case_number: str
    round_id: uuid.UUID
    purpose: str
    sections: list[str]


class WeekOut(Out):
    week: date
    registrations: int
    screened: int
    referred: int
    arrived: int


class GroupOut(Out):
    key: str
    label: str
    registrations: int
    screened: int
    qualifying: int
    referred: int
    arrived: int


class DashboardOut(Out):
    offices: list[str] = Field(description="the offices counted (slugs)")
    since: date
    weeks: list[WeekOut]
    nationalities: list[GroupOut]
    pathways: list[GroupOut]
    statuses: dict[str, int]
    totals: dict[str, int]
    median_days: float | None = Field(description="from registration to referral")
    p90_days: float | None
    appointments: dict[str, int]
    no_show_rate: float | None


def _identity(opened: dict[str, Any]) -> IdentityOut:
    contact = opened["contact"]
    return IdentityOut(members=[PersonName(given_name=str(m.get("given_name") or ""),
                                           family_name=str(m.get("family_name") or ""))
                                for m in opened["identity"].get("members") or [] if isinstance(m, dict)],
                       phone=str(contact.get("phone") or ""), email=str(contact.get("email") or ""),
                       whatsapp=str(contact.get("whatsapp") or ""))


def _summary(reg: Registration, duplicate: bool, qualifying: int, identity: IdentityOut | None) -> dict[str, Any]:
    return {"id": reg.id, "reference": reg.reference, "office_id": reg.office_id, "status": reg.status,
            "status_since": reg.status_since, "language": reg.language, "nationality": reg.nationality,
            "arrived_on": reg.arrived_on, "household_size": reg.household_size, "created_at": reg.created_at,
            "possible_duplicate": duplicate, "qualifying": qualifying, "case_id": reg.case_id,
            "referred_org_id": reg.referred_org_id, "referred_pathway_id": reg.referred_pathway_id,
            "referred_at": reg.referred_at, "identity": identity}


@router.get("/registrations", response_model=PageOut[RegistrationSummaryOut],
            summary="The office's registrations, one queue tab at a time (no names unless include=identity)")
def list_registrations(db: DbSession, principal: CurrentPrincipal,
                       tab: Literal["new", "review", "today", "all"] = "all",
                       q: str = Query("", max_length=40, description="a reference, or part of one"),
                       nationality: str = Query("", max_length=2), status: str = Query("", max_length=20),
                       include: Literal["", "identity"] = Query("", description="identity: names and contact, audited"),
                       page: int = Query(1, ge=1), per_page: int = Query(25, ge=1, le=100)
                       ) -> PageOut[RegistrationSummaryOut]:
    result = work.queue(db, principal, tab=tab, q=q, nationality=nationality, status=status, page=page,
                        per_page=per_page)
    items = []
    for item in result.items:
        identity = None
        if include == "identity":
            identity = _identity(work.open_file(db, actor=principal, registration=item.registration, via="api"))
        items.append(RegistrationSummaryOut(**_summary(item.registration, item.possible_duplicate, item.qualifying,
                                                       identity)))
    return PageOut(items=items, meta=PageMeta(**result.meta()))


def _detail(db: Any, principal: Principal, reg: Registration, include: str) -> RegistrationOut:
    identity = _identity(work.open_file(db, actor=principal, registration=reg, via="api")) \
        if include == "identity" else None
    results = [ResultOut(rule_id=rule.id, rule_key=rule.rule_key, version=rule.version, name=rule.name,
                         destination=rule.destination, pathway_id=rule.pathway_id, qualifies=res.qualifies,
                         screened_at=res.created_at,
                         checks=[CheckOut(text=screening.describe(c, questions=rule.questions),
                                          held=bool(c.get("held"))) for c in res.checks or [] if isinstance(c, dict)])
               for res, rule in screening.results_of(db, reg)]
    current = appointments.current_appointment(db, reg)
    appointment = AppointmentOut(id=current[0].id, status=current[0].status, starts_at=current[1].starts_at,
                                 ends_at=current[1].ends_at, location=current[1].location) if current else None
    duplicates = [d.id for d in work.duplicates_of(db, principal, reg)] \
        if reg.status != RegistrationStatus.merged else []
    return RegistrationOut(
        **_summary(reg, bool(duplicates) or reg.duplicate_of_id is not None, sum(r.qualifies for r in results),
                   identity),
        profile=reg.profile or {}, answers=reg.answers or {}, consent_screening=reg.consent_screening,
        consent_contact=reg.consent_contact, consent_share=reg.consent_share, duplicate_of_id=reg.duplicate_of_id,
        merged_into_id=reg.merged_into_id, closed_reason=reg.closed_reason, results=results,
        appointment=appointment, possible_duplicates=duplicates, history=list(reg.history or []))


@router.get("/registrations/{registration_id}", response_model=RegistrationOut,
            summary="One registration: household profile, answers, screening results, interview (names with "
                    "include=identity, audited)")
def get_registration(registration_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
                     include: Literal["", "identity"] = Query("")) -> RegistrationOut:
    reg = work.access_registration(db, principal, registration_id)
    return _detail(db, principal, reg, include)


@router.post("/registrations/{registration_id}/convert", response_model=ConvertOut, status_code=201,
             summary="Open a case for the household and refer it to a government under a qualifying pathway, "
                     "in one step")
def convert_registration(registration_id: uuid.UUID, body: ConvertIn, db: DbSession,
                         principal: CurrentPrincipal) -> ConvertOut:
    reg = work.access_registration(db, principal, registration_id, "mobility.registration.handle")
    case, round_ = convert.convert(db, actor=principal, registration=reg, rule_id=body.rule_id,
                                   government_org_id=body.government_org_id, note=body.note)
    return ConvertOut(registration_id=reg.id, status=reg.status, case_id=case.id, case_number=case.number,
                      round_id=round_.id, purpose=round_.purpose.value, sections=list(round_.sections))


@router.get("/dashboard", response_model=DashboardOut,
            summary="An office's figures (the secretariat: every office's, or one with office=slug)")
def get_dashboard(db: DbSession, principal: CurrentPrincipal, office: str = Query("", max_length=40),
                  weeks: int = Query(26, ge=1, le=104)) -> DashboardOut:
    chosen = None
    if office:
        chosen = db.scalars(policy.scoped(principal, Office).where(Office.slug == office)).first()
        if chosen is None:
            raise policy.NotFound()
    else:
        chosen = work.office_of(db, principal)
    fig = dashboard.figures(db, principal, chosen, weeks=weeks)
    return DashboardOut(
        offices=[o.slug for o in fig.offices], since=fig.since,
        weeks=[WeekOut(**vars(w)) for w in fig.weeks],
        nationalities=[GroupOut(**vars(g)) for g in fig.nationalities],
        pathways=[GroupOut(**vars(g)) for g in fig.pathways], statuses=fig.statuses, totals=fig.totals,
        median_days=fig.median_days, p90_days=fig.p90_days, appointments=fig.appointments,
        no_show_rate=fig.no_show_rate)

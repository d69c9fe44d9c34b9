"""Welcome's JSON API, for the programme's staff: programmes and their rules, a programme's figures, its sponsor
groups (eligibility in words, members' checks and training, funds verification), the families arriving, matches
proposed by staff or by the algorithm, the family's answer and the arrival notice with the core services that
follow, and the donations ledger.

Every object is reached through the scoped queries of ``rdn.welcome.policy`` (another government's group or
match answers 404, exactly as one that does not exist); ``Idempotency-Key`` is honoured on every POST.

Sponsors have no API: their accounts get no tokens, and a sponsor's browser session calling this API is refused
with 403 whatever the object (the refusal says nothing about it). Their pages show them the family only as
``service.sponsor_view`` does, so no route here can hand a sponsor the case or a field outside that view.

The service refuses a change the state does not allow with a plain problem (400); this API answers those with
409 Conflict, as the rest of the API does for illegal transitions (see :func:`_conflicts`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Depends, Query
from pydantic import Field
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from rdn.cases.policy import access_case
from rdn.core import policy
from rdn.core.errors import Conflict, FieldError, ProblemError, ValidationFailed
from rdn.core.i18n import gettext as _
from rdn.core.identity import Principal
from rdn.core.modules import api_router
from rdn.core.pagination import paginate
from rdn.core.schemas import Out, PageMeta, PageOut, StrictIn
from rdn.core.tenancy import OrgKind
from rdn.core.web import CurrentPrincipal, DbSession
from rdn.welcome import service
from rdn.welcome.models import (
    CheckStatus,
    Donation,
    DonationKind,
    DonationStatus,
    GroupStatus,
    Match,
    MatchStatus,
    Programme,
    ServiceTask,
    SponsorGroup,
    SponsorMember,
    Stream,
)

router = api_router(prefix="/api/v1/welcome", tags=["welcome"])


# Who may call ---------------------------------------------------------------------------------------------------


def _staff(principal: CurrentPrincipal) -> Principal:
    """The caller, unless they act for a sponsor group: this API is the staff's (see the module's docstring)."""
    if principal.org_kind == OrgKind.sponsor_group:
        raise policy.Forbidden()
    return principal


Staff = Annotated[Principal, Depends(_staff)]


@contextmanager
def _conflicts() -> Iterator[None]:
    """A state that does not allow the change (the service's plain ``ProblemError``) is a 409, not a 400."""
    try:
        yield
    except ProblemError as exc:
        if type(exc) is not ProblemError:
            raise
        raise Conflict(exc.detail, errors=exc.errors) from exc


def _programme(db: Session, principal: Principal, programme_id: uuid.UUID,
               action: str = "welcome.programme.read") -> Programme:
    return policy.access(db, principal, Programme, programme_id, action)


def _own_programme(db: Session, principal: Principal, programme_id: uuid.UUID) -> Programme:
    """A programme whose groups and donations the caller reads: its own government's staff only (the same 404
    as a missing one for the rest of the network, who may read the programme itself)."""
    programme = _programme(db, principal, programme_id)
    if programme.org_id != principal.org_id or not policy.can(principal, "welcome.group.read"):
        raise policy.NotFound()
    return programme


def _group(db: Session, principal: Principal, group_id: uuid.UUID, action: str = "welcome.group.read") -> SponsorGroup:
    return policy.access(db, principal, SponsorGroup, group_id, action)


def _match(db: Session, principal: Principal, match_id: uuid.UUID) -> Match:
    return policy.access(db, principal, Match, match_id)


# Schemas --------------------------------------------------------------------------------------------------------


class ServiceItem(StrictIn):
    code: str = Field(min_length=1, max_length=40, description="letters, digits or _; once per programme")
    label: str = Field(default="", max_length=200)
    due_days: int = Field(default=0, description="due this many days after arrival (0 to 1100)")
    per_person: bool = Field(default=False, description="one task for each person of the family")


class ServiceOut(Out):
    code: str
    label: str
    due_days: int
    per_person: bool = False


class ProgrammeOut(Out):
    id: uuid.UUID
    org_id: uuid.UUID = Field(description="the government running the programme")
    slug: str = Field(description="its public pages: /welcome/{slug}")
    country: str
    name: str
    description: str
    streams: list[Stream]
    min_adults: int
    checks_required: bool
    training_required: bool
    funds_per_person: float
    currency: str
    cash_share: float = Field(description="at least this share of the funds in cash (0 to 1)")
    support_days: int
    services: list[ServiceOut] = Field(description="the core services, due relative to arrival")
    staff_after_days: int = Field(description="a service overdue this long is reported to the programme's staff")
    sponsor_fields: list[str] = Field(description="what sponsors may know of a family")
    accepting: bool = Field(description="groups may sign up")
    created_at: datetime
    updated_at: datetime


class ProgrammeIn(StrictIn):
    slug: str = Field(max_length=40, description="2 to 40 lowercase letters, digits or hyphens; unique")
    name: str = Field(max_length=200)
    description: str = Field(default="", max_length=5000)
    streams: list[Stream] = Field(default_factory=lambda: [Stream.matched], max_length=2)
    min_adults: int = 5
    checks_required: bool = True
    training_required: bool = True
    funds_per_person: float = 0.0
    currency: str = Field(default="USD", max_length=20, description="ISO 4217")
    cash_share: float = 0.0
    support_days: int = 90
    services: list[ServiceItem] | None = Field(default=None, max_length=60,
                                               description="default: the core services of the domain guide")
    staff_after_days: int = 7
    sponsor_fields: list[str] = Field(default_factory=list, max_length=len(service.SPONSOR_FIELDS))
    accepting: bool = True


class ProgrammeUpdate(StrictIn):
    """The rules to change; the others keep their values. Each group's eligibility follows at once."""

    name: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    streams: list[Stream] | None = Field(default=None, max_length=2)
    min_adults: int | None = None
    checks_required: bool | None = None
    training_required: bool | None = None
    funds_per_person: float | None = None
    currency: str | None = Field(default=None, max_length=20)
    cash_share: float | None = None
    support_days: int | None = None
    services: list[ServiceItem] | None = Field(default=None, max_length=60)
    staff_after_days: int | None = None
    sponsor_fields: list[str] | None = Field(default=None, max_length=len(service.SPONSOR_FIELDS))
    accepting: bool | None = None


class ServicesFigures(Out):
    due: int = Field(description="services due by today (or done)")
    on_time: int
    late: int = Field(description="done after their due date")
    overdue: int = Field(description="past their due date and not done")
    on_time_share: float | None


class FundsFigures(Out):
    pledged: float
    cash: float
    verified: float
    currency: str


class DashboardOut(Out):
    groups: dict[str, int] = Field(description="groups by status")
    matches: dict[str, int] = Field(description="matches by status")
    families_welcomed: int = Field(description="families arrived, with an accepted or completed match")
    services: ServicesFigures
    outcomes: dict[str, int] = Field(description="completed matches, and how many reached each outcome")
    funds: FundsFigures


class MissingOut(Out):
    code: str = Field(description="adults, checks, training, funds, cash, funds_verified, plan, named_family, stream")
    text: str = Field(description="what the group lacks, in words it can act on")


class MemberOut(Out):
    id: uuid.UUID
    full_name: str
    email: str
    adult: bool
    check_status: CheckStatus
    checked_on: date | None
    trained_on: date | None
    signs_in: bool = Field(description="the member has an account")


class GroupSummaryOut(Out):
    id: uuid.UUID
    programme_id: uuid.UUID
    org_id: uuid.UUID = Field(description="the group's own organization")
    name: str
    country: str
    city: str
    contact_email: str
    stream: Stream
    status: GroupStatus
    eligible_since: datetime | None
    languages: list[str]
    nationalities: list[str] = Field(description="preferred; empty: any")
    supports: list[str] = Field(description="needs the group can meet")
    min_size: int
    max_size: int
    capacity: int = Field(description="people the group can house")
    funds_pledged: float
    funds_cash: float
    funds_verified_at: datetime | None
    created_at: datetime
    updated_at: datetime


class GroupOut(GroupSummaryOut):
    named_family: str
    plan: list[dict[str, Any]] = Field(description="who does what: {service, member_id}")
    funds_needed: float
    eligible: bool = Field(description="every rule of the programme holds")
    missing: list[MissingOut] = Field(description="what stands between the group and eligibility")
    members: list[MemberOut]


class CheckIn(StrictIn):
    check: CheckStatus | None = Field(default=None, description="the background check")
    trained_on: date | None = Field(default=None, description="training completed on (null: not trained)")


class ArrivingOut(Out):
    id: uuid.UUID
    number: str
    size: int
    nationality: str | None


class GroupRef(Out):
    id: uuid.UUID
    name: str
    status: GroupStatus


class TaskOut(Out):
    id: uuid.UUID
    code: str
    label: str
    person: str = Field(description="empty: the family as a whole")
    due_days: int
    due_on: date | None = Field(description="arrival + due_days; null until the arrival is known")
    done_on: date | None
    owner_member_id: uuid.UUID | None
    owner: str | None = Field(description="the owner's name")
    overdue: bool
    evidence: str
    notes: str
    reminded_at: datetime | None = Field(description="the group was reminded (once)")
    escalated_at: datetime | None = Field(description="the programme's staff were told (once)")


class MatchOut(Out):
    id: uuid.UUID
    programme_id: uuid.UUID
    group: GroupRef
    case_id: uuid.UUID
    stream: Stream
    proposed_by: str = Field(description="staff or algorithm")
    score: float | None
    reasons: list[str]
    status: MatchStatus
    group_accepted_at: datetime | None
    family_accepted_at: datetime | None
    declined_reason: str
    shared: dict[str, Any] = Field(description="what the group may know of the family (the programme's fields)")
    arrival_on: date | None
    arrival_notice: dict[str, Any]
    notice_sent_at: datetime | None
    outcomes: dict[str, Any]
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    tasks: list[TaskOut] = Field(description="the core services, once both sides accepted")


class ProposeIn(StrictIn):
    group_id: uuid.UUID = Field(description="an eligible group of the programme")
    case_id: uuid.UUID = Field(description="a family your government accepted for resettlement, or its own")
    shared_needs: list[str] = Field(default_factory=list, max_length=len(service.NEEDS),
                                    description="needs the family agreed to share with the group")


class ReasonOut(Out):
    code: str
    text: str
    points: float


class ProposalOut(Out):
    match_id: uuid.UUID | None
    group_id: uuid.UUID
    group_name: str
    case_id: uuid.UUID
    score: float
    reasons: list[ReasonOut]


class UnmatchedOut(Out):
    case_id: uuid.UUID
    number: str
    reason: str


class MatchingRunOut(Out):
    proposals: list[ProposalOut]
    unmatched_families: list[UnmatchedOut]
    unmatched_groups: list[uuid.UUID]
    seconds: float


class FamilyAnswerIn(StrictIn):
    accept: bool
    reason: str = Field(default="", max_length=500, description="why the family declined")


class ArrivalIn(StrictIn):
    arrival_on: date
    flight: str = Field(default="", max_length=service.MAX_TEXT)
    airport: str = Field(default="", max_length=service.MAX_TEXT)
    time: str = Field(default="", max_length=service.MAX_TEXT)
    notes: str = Field(default="", max_length=service.MAX_TEXT)


class DonationOut(Out):
    id: uuid.UUID
    programme_id: uuid.UUID
    kind: DonationKind
    description: str
    condition: str
    quantity: int
    city: str
    donor_name: str
    donor_email: str
    donor_group_id: uuid.UUID | None
    status: DonationStatus
    claimed_by_group_id: uuid.UUID | None
    claimed_at: datetime | None
    given_to_match_id: uuid.UUID | None
    given_on: date | None
    created_at: datetime


# Answers --------------------------------------------------------------------------------------------------------


def _group_out(db: Session, group: SponsorGroup) -> GroupOut:
    programme = db.get(Programme, group.programme_id)
    assert programme is not None
    members = service.members_of(db, group)
    missing = service.eligibility(programme, group, members)
    summary = GroupSummaryOut.model_validate(group).model_dump()
    return GroupOut(**summary, named_family=group.named_family, plan=list(group.plan),
                    funds_needed=service.funds_needed(programme, group), eligible=not missing,
                    missing=[MissingOut(code=m.code, text=m.text) for m in missing],
                    members=[MemberOut(id=m.id, full_name=m.full_name, email=m.email, adult=m.adult,
                                       check_status=m.check_status, checked_on=m.checked_on, trained_on=m.trained_on,
                                       signs_in=m.user_id is not None) for m in members])


def _task_out(task: ServiceTask, owners: dict[uuid.UUID, str], today: date) -> TaskOut:
    return TaskOut(id=task.id, code=task.code, label=service.service_label({"code": task.code, "label": task.label}),
                   person=task.person, due_days=task.due_days, due_on=task.due_on, done_on=task.done_on,
                   owner_member_id=task.owner_member_id,
                   owner=owners.get(task.owner_member_id) if task.owner_member_id else None,
                   overdue=service.overdue(task, today), evidence=task.evidence, notes=task.notes,
                   reminded_at=task.reminded_at, escalated_at=task.escalated_at)


def _match_out(db: Session, match: Match) -> MatchOut:
    group = db.get(SponsorGroup, match.group_id)
    assert group is not None
    owners = {m.id: m.full_name for m in service.members_of(db, group)}
    today = service.today_()
    return MatchOut(
        id=match.id, programme_id=match.programme_id, group=GroupRef(id=group.id, name=group.name, status=group.status),
        case_id=match.case_id, stream=match.stream, proposed_by=match.proposed_by, score=match.score,
        reasons=list(match.reasons), status=match.status, group_accepted_at=match.group_accepted_at,
        family_accepted_at=match.family_accepted_at, declined_reason=match.declined_reason,
        shared=dict(match.shared), arrival_on=match.arrival_on, arrival_notice=dict(match.arrival_notice),
        notice_sent_at=match.notice_sent_at, outcomes=dict(match.outcomes), completed_at=match.completed_at,
        created_at=match.created_at, updated_at=match.updated_at,
        tasks=[_task_out(t, owners, today) for t in service.tasks_of(db, match)])


# Programmes -----------------------------------------------------------------------------------------------------


@router.get("/programmes", response_model=PageOut[ProgrammeOut],
            summary="The network's sponsorship programmes (country, q: words of the name)")
def list_programmes(db: DbSession, principal: Staff, country: str = Query("", max_length=2),
                    q: str = Query("", max_length=100), page: int = Query(1, ge=1),
                    per_page: int = Query(25, ge=1, le=100)) -> PageOut[ProgrammeOut]:
    policy.require(principal, "welcome.programme.read")
    stmt = policy.scoped(principal, Programme)
    if country:
        stmt = stmt.where(Programme.country == country.upper())
    if q.strip():
        stmt = stmt.where(Programme.name.ilike(f"%{q.strip()}%"))
    result = paginate(db, stmt.order_by(Programme.country, Programme.name, Programme.id), page=page,
                      per_page=per_page)
    return PageOut(items=[ProgrammeOut.model_validate(p) for p in result.items], meta=PageMeta(**result.meta()))


@router.post("/programmes", response_model=ProgrammeOut, status_code=201,
             summary="Start your government's programme: its rules as data")
def create_programme(body: ProgrammeIn, db: DbSession, principal: Staff) -> Programme:
    return service.create_programme(db, actor=principal, data=body.model_dump(mode="json", exclude_unset=True))


@router.get("/programmes/{programme_id}", response_model=ProgrammeOut, summary="One programme and its rules")
def get_programme(programme_id: uuid.UUID, db: DbSession, principal: Staff) -> Programme:
    return _programme(db, principal, programme_id)


@router.patch("/programmes/{programme_id}", response_model=ProgrammeOut,
              summary="Change your programme's rules (each group's eligibility follows at once)")
def update_programme(programme_id: uuid.UUID, body: ProgrammeUpdate, db: DbSession, principal: Staff) -> Programme:
    programme = _programme(db, principal, programme_id, "welcome.programme.manage")
    changes = body.model_dump(mode="json", exclude_unset=True)
    nulls = [name for name, value in changes.items() if value is None]
    if nulls:
        raise ValidationFailed(errors=[FieldError(name, _("cannot be null")) for name in nulls])
    return service.update_programme(db, actor=principal, programme=programme, changes=changes)


@router.get("/programmes/{programme_id}/dashboard", response_model=DashboardOut,
            summary="The programme's figures: groups by status, families welcomed, services on time, outcomes, "
                    "funds")
def dashboard(programme_id: uuid.UUID, db: DbSession, principal: Staff) -> DashboardOut:
    programme = _programme(db, principal, programme_id)
    return DashboardOut.model_validate(service.dashboard(db, actor=principal, programme=programme))


# Groups ---------------------------------------------------------------------------------------------------------


@router.get("/programmes/{programme_id}/groups", response_model=PageOut[GroupSummaryOut],
            summary="The programme's sponsor groups that you handle (status; q: words of the name or city)")
def list_groups(programme_id: uuid.UUID, db: DbSession, principal: Staff, status: GroupStatus | None = None,
                q: str = Query("", max_length=100), page: int = Query(1, ge=1),
                per_page: int = Query(25, ge=1, le=100)) -> PageOut[GroupSummaryOut]:
    programme = _own_programme(db, principal, programme_id)
    stmt = policy.scoped(principal, SponsorGroup).where(SponsorGroup.programme_id == programme.id)
    if status is not None:
        stmt = stmt.where(SponsorGroup.status == status)
    words = q.strip()
    if words:
        stmt = stmt.where(or_(SponsorGroup.name.ilike(f"%{words}%"), SponsorGroup.city.ilike(f"%{words}%")))
    result = paginate(db, stmt.order_by(SponsorGroup.name, SponsorGroup.id), page=page, per_page=per_page)
    return PageOut(items=[GroupSummaryOut.model_validate(g) for g in result.items], meta=PageMeta(**result.meta()))


@router.get("/groups/{group_id}", response_model=GroupOut,
            summary="One group: what it still lacks under the programme's rules, its members' checks and training")
def get_group(group_id: uuid.UUID, db: DbSession, principal: Staff) -> GroupOut:
    return _group_out(db, _group(db, principal, group_id))


@router.post("/groups/{group_id}/members/{member_id}/check", response_model=GroupOut,
             summary="Record a member's background check and training (the programme's staff)")
def record_check(group_id: uuid.UUID, member_id: uuid.UUID, body: CheckIn, db: DbSession,
                 principal: Staff) -> GroupOut:
    group = _group(db, principal, group_id, "welcome.group.verify")
    member = db.get(SponsorMember, member_id)
    if member is None or member.group_id != group.id:
        raise policy.NotFound()
    given = body.model_dump(exclude_unset=True)
    if not given:
        raise ValidationFailed("check", _("give the check, the training date, or both"))
    if "check" in given and given["check"] is None:
        raise ValidationFailed("check", _("pending, passed or failed"))
    trained: Any = None
    if "trained_on" in given:
        trained = given["trained_on"].isoformat() if given["trained_on"] else ""
    service.record_check(db, actor=principal, group=group, member=member,
                         check=body.check.value if body.check else None, trained_on=trained)
    return _group_out(db, group)


@router.post("/groups/{group_id}/verify-funds", response_model=GroupOut,
             summary="Record that the funds the group pledged are verified")
def verify_funds(group_id: uuid.UUID, db: DbSession, principal: Staff) -> GroupOut:
    group = _group(db, principal, group_id, "welcome.group.verify")
    service.verify_funds(db, actor=principal, group=group)
    return _group_out(db, group)


# Matching -------------------------------------------------------------------------------------------------------


@router.get("/programmes/{programme_id}/arriving", response_model=PageOut[ArrivingOut],
            summary="Families on their way to the programme's country with no group yet (no names)")
def arriving(programme_id: uuid.UUID, db: DbSession, principal: Staff, page: int = Query(1, ge=1),
             per_page: int = Query(25, ge=1, le=100)) -> PageOut[ArrivingOut]:
    programme = _programme(db, principal, programme_id)
    cases = service.arriving_cases(db, principal, programme)
    chosen = cases[(page - 1) * per_page:page * per_page]
    pages = max(1, -(-len(cases) // per_page))
    return PageOut(items=[ArrivingOut(id=c.id, number=c.number, size=c.size, nationality=c.nationality)
                          for c in chosen],
                   meta=PageMeta(total=len(cases), page=page, per_page=per_page, pages=pages))


@router.post("/programmes/{programme_id}/matches", response_model=MatchOut, status_code=201,
             summary="Propose an eligible group for an arriving family: the group and the family must both accept")
def propose(programme_id: uuid.UUID, body: ProposeIn, db: DbSession, principal: Staff) -> MatchOut:
    programme = _programme(db, principal, programme_id)
    policy.require(principal, "welcome.match.propose", programme)
    group = db.scalars(policy.scoped(principal, SponsorGroup).where(SponsorGroup.id == body.group_id,
                                                                    SponsorGroup.programme_id == programme.id)).first()
    if group is None:
        raise ValidationFailed("group_id", _("no such group in this programme"))
    try:
        access = access_case(db, principal, body.case_id)
    except policy.NotFound:
        raise ValidationFailed("case_id", _("no such case, or it is not shared with you")) from None
    if not (access.owner or access.accepted_for_resettlement):
        raise ValidationFailed("case_id", _("only a family accepted for resettlement by your government"))
    unknown = [n for n in body.shared_needs if n not in service.NEEDS]
    if unknown:
        raise ValidationFailed("shared_needs", _("%(value)s is not a known need", value=unknown[0][:40]))
    with _conflicts():
        match = service.propose(db, actor=principal, group=group, case_id=access.case.id,
                                shared_needs=body.shared_needs)
    return _match_out(db, match)


@router.post("/programmes/{programme_id}/matching-runs", response_model=MatchingRunOut,
             summary="Let the algorithm propose a group for every arriving family it can; each proposal says "
                     "why, each family left out what stood in the way")
def run_matching(programme_id: uuid.UUID, db: DbSession, principal: Staff) -> MatchingRunOut:
    programme = _programme(db, principal, programme_id)
    # The families it may leave out: those arriving now (the run proposes for some of them).
    numbers = {c.id: c.number for c in service.arriving_cases(db, principal, programme)}
    with _conflicts():
        result = service.run_matching(db, actor=principal, programme=programme)
    proposed = {(m.group_id, m.case_id): m.id for m in db.scalars(
        select(Match).where(Match.programme_id == programme.id, Match.status == MatchStatus.proposed,
                            Match.case_id.in_([p.family_id for p in result.proposals])))}
    names = {gid: name for gid, name in db.execute(select(SponsorGroup.id, SponsorGroup.name).where(
        SponsorGroup.id.in_([p.group_id for p in result.proposals])))}
    return MatchingRunOut(
        proposals=[ProposalOut(match_id=proposed.get((p.group_id, p.family_id)), group_id=p.group_id,
                               group_name=names.get(p.group_id, ""), case_id=p.family_id, score=p.score,
                               reasons=[ReasonOut(code=r.code, text=r.text, points=r.points) for r in p.reasons])
                   for p in result.proposals],
        unmatched_families=[UnmatchedOut(case_id=case_id, number=numbers.get(case_id, ""), reason=reason)
                            for case_id, reason in result.unmatched_families.items()],
        unmatched_groups=list(result.unmatched_groups), seconds=round(result.seconds, 3))


@router.get("/matches/{match_id}", response_model=MatchOut,
            summary="One match: the group, the family's case, what the group may know, the arrival, the core "
                    "services (due, done, owner, overdue) and the outcomes")
def get_match(match_id: uuid.UUID, db: DbSession, principal: Staff) -> MatchOut:
    return _match_out(db, _match(db, principal, match_id))


@router.post("/matches/{match_id}/family", response_model=MatchOut,
             summary="Record the family's answer to the proposal (accepted by both sides: the services start)")
def family_answer(match_id: uuid.UUID, body: FamilyAnswerIn, db: DbSession, principal: Staff) -> MatchOut:
    match = _match(db, principal, match_id)
    with _conflicts():
        service.record_family_answer(db, actor=principal, match=match, accept=body.accept, reason=body.reason)
    return _match_out(db, match)


@router.post("/matches/{match_id}/arrival", response_model=MatchOut,
             summary="The arrival notice: every service's due date follows the arrival date, the group is told")
def arrival(match_id: uuid.UUID, body: ArrivalIn, db: DbSession, principal: Staff) -> MatchOut:
    match = _match(db, principal, match_id)
    with _conflicts():
        service.set_arrival(db, actor=principal, match=match, arrival_on=body.arrival_on,
                            notice=body.model_dump(exclude={"arrival_on"}))
    return _match_out(db, match)


# Donations ------------------------------------------------------------------------------------------------------


@router.get("/programmes/{programme_id}/donations", response_model=PageOut[DonationOut],
            summary="The donations ledger: what was offered, claimed by which group, given to which family")
def donations(programme_id: uuid.UUID, db: DbSession, principal: Staff, status: DonationStatus | None = None,
              kind: DonationKind | None = None, page: int = Query(1, ge=1),
              per_page: int = Query(25, ge=1, le=100)) -> PageOut[DonationOut]:
    programme = _own_programme(db, principal, programme_id)
    stmt = policy.scoped(principal, Donation).where(Donation.programme_id == programme.id)
    if status is not None:
        stmt = stmt.where(Donation.status == status)
    if kind is not None:
        stmt = stmt.where(Donation.kind == kind)
    result = paginate(db, stmt.order_by(Donation.created_at.desc(), Donation.id), page=page, per_page=per_page)
    return PageOut(items=[DonationOut.model_validate(d) for d in result.items], meta=PageMeta(**result.meta()))

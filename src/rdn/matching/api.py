"""JSON API of matching: reception sites and quotas, need overrides, runs, decisions and confirmation.

Writes take an ``Idempotency-Key`` header (as every write of the API does): a retried POST replays the first
answer instead of starting a second run or referring twice.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import Query
from pydantic import Field

from rdn.core import policy
from rdn.core.modules import api_router
from rdn.core.schemas import Out, PageMeta, PageOut, StrictIn
from rdn.core.web import CurrentPrincipal, DbSession
from rdn.matching import service
from rdn.matching.models import Decision, Run, RunStatus, Site

router = api_router(prefix="/api/v1/matching", tags=["matching"])


class SiteOut(Out):
    id: uuid.UUID
    org_id: uuid.UUID
    code: str
    name: str
    country: str
    locality: str
    period: str
    capacity_people: int
    resources: dict[str, float]
    languages: list[str]
    nationalities: list[str]
    unemployment_rate: float
    labour_demand: int
    setting: str
    active: bool


class SiteIn(StrictIn):
    code: str = Field(min_length=1, max_length=40)
    name: str = Field(min_length=1, max_length=200)
    locality: str = Field(default="", max_length=200)
    period: str = Field(default="", max_length=20)
    capacity_people: int = Field(ge=0, le=1_000_000)
    resources: dict[str, float] = Field(default_factory=dict)
    languages: list[str] = Field(default_factory=list, max_length=30)
    nationalities: list[str] = Field(default_factory=list, max_length=30)
    unemployment_rate: float = Field(default=5.0, ge=0, le=100)
    labour_demand: int = Field(default=1, ge=0, le=3)
    setting: str = Field(default="", max_length=10)
    active: bool = True


class SiteUpdate(StrictIn):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    locality: str | None = Field(default=None, max_length=200)
    period: str | None = Field(default=None, max_length=20)
    capacity_people: int | None = Field(default=None, ge=0, le=1_000_000)
    resources: dict[str, float] | None = None
    languages: list[str] | None = Field(default=None, max_length=30)
    nationalities: list[str] | None = Field(default=None, max_length=30)
    unemployment_rate: float | None = Field(default=None, ge=0, le=100)
    labour_demand: int | None = Field(default=None, ge=0, le=3)
    setting: str | None = Field(default=None, max_length=10)
    active: bool | None = None


class QuotaIn(StrictIn):
    places: int = Field(ge=0, le=10_000_000)
    emergency_reserve: int = Field(default=0, ge=0, le=10_000_000)


class QuotaOut(Out):
    org_id: uuid.UUID
    organization: str
    year: int
    places: int
    emergency_reserve: int


class NeedIn(StrictIn):
    amount: float | None = Field(default=None, ge=0, le=1000, description="empty: back to the derived need")
    reason: str = Field(default="", max_length=500)


class RunIn(StrictIn):
    title: str = Field(default="", max_length=200)
    year: int | None = Field(default=None, ge=2000, le=2100)
    filters: dict[str, Any] = Field(default_factory=dict, description="the cases list's filters: q, priority, "
                                    "category, nationality, current_country, stage (a list)")


class RunOut(Out):
    id: uuid.UUID
    title: str
    filters: dict[str, Any]
    year: int
    status: RunStatus
    progress: str
    cases: int
    people: int
    placed: int
    objective: float | None
    bound: float | None
    gap: float | None
    seconds: float | None
    method: str
    error: str
    created_at: datetime
    finished_at: datetime | None
    confirmed_at: datetime | None


class RunDetailOut(RunOut):
    use: list[dict[str, Any]]


class PlacementOut(Out):
    id: uuid.UUID
    case_id: uuid.UUID
    number: str
    people: int
    priority: str
    needs: dict[str, float]
    proposed_site_id: uuid.UUID | None
    score: float | None
    decision: Decision
    site_id: uuid.UUID | None
    reason: str
    referral_id: uuid.UUID | None
    explanation: dict[str, Any]


class DecisionIn(StrictIn):
    accept: bool = Field(default=False, description="true: the proposed site stands")
    site_id: str | None = Field(default=None, description="override: another site's id, or \"none\"")
    reason: str = Field(default="", max_length=1000)


class CountOut(Out):
    count: int


def _run(db: Any, principal: Any, run_id: uuid.UUID, action: str = "match.run.read") -> Run:
    return policy.access(db, principal, Run, run_id, action)


@router.get("/sites", response_model=PageOut[SiteOut], summary="Reception sites of the network")
def list_sites(db: DbSession, principal: CurrentPrincipal, q: str = Query("", max_length=100),
               country: str = Query("", max_length=2), page: int = Query(1, ge=1),
               per_page: int = Query(50, ge=1, le=200)) -> PageOut[SiteOut]:
    result = service.list_sites(db, principal, q=q, country=country, page=page, per_page=per_page)
    return PageOut(items=[SiteOut.model_validate(s) for s in result.items], meta=PageMeta(**result.meta()))


@router.post("/sites", response_model=SiteOut, status_code=201, summary="Add one of your government's sites")
def create_site(body: SiteIn, db: DbSession, principal: CurrentPrincipal) -> Site:
    return service.create_site(db, actor=principal, data=body.model_dump())


@router.get("/sites/{site_id}", response_model=SiteOut, summary="One site")
def get_site(site_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Site:
    return policy.access(db, principal, Site, site_id, "match.site.read")


@router.patch("/sites/{site_id}", response_model=SiteOut, summary="Change one of your sites")
def update_site(site_id: uuid.UUID, body: SiteUpdate, db: DbSession, principal: CurrentPrincipal) -> Site:
    site = policy.access(db, principal, Site, site_id, "match.site.manage")
    return service.update_site(db, actor=principal, site=site, data=body.model_dump(exclude_none=True))


@router.get("/quotas/{year}", response_model=list[QuotaOut], summary="Every government's quota for a year")
def list_quotas(year: int, db: DbSession, principal: CurrentPrincipal) -> list[QuotaOut]:
    return [QuotaOut(org_id=o.id, organization=o.name, year=q.year, places=q.places,
                     emergency_reserve=q.emergency_reserve) for o, q in service.quotas(db, principal, year)]


@router.put("/quotas/{year}", response_model=CountOut, summary="Set your government's quota for a year")
def set_quota(year: int, body: QuotaIn, db: DbSession, principal: CurrentPrincipal) -> CountOut:
    quota = service.set_quota(db, actor=principal, year=year, places=body.places,
                              emergency_reserve=body.emergency_reserve)
    return CountOut(count=quota.places)


@router.put("/needs/{case_id}/{resource}", response_model=CountOut,
            summary="Override what a case needs of a resource (empty amount: back to the derived need)")
def override_need(case_id: uuid.UUID, resource: str, body: NeedIn, db: DbSession,
                  principal: CurrentPrincipal) -> CountOut:
    found = service.override_need(db, actor=principal, case_id=case_id, resource=resource,
                                  amount=body.amount, reason=body.reason)
    return CountOut(count=0 if found is None else 1)


@router.get("/runs", response_model=PageOut[RunOut], summary="Your organization's matching runs")
def list_runs(db: DbSession, principal: CurrentPrincipal, page: int = Query(1, ge=1),
              per_page: int = Query(25, ge=1, le=100)) -> PageOut[RunOut]:
    result = service.list_runs(db, principal, page=page, per_page=per_page)
    return PageOut(items=[RunOut.model_validate(r) for r in result.items], meta=PageMeta(**result.meta()))


@router.post("/runs", response_model=RunOut, status_code=202,
             summary="Start a run over a batch of your cases (solved by the worker; poll the run)")
def start_run(body: RunIn, db: DbSession, principal: CurrentPrincipal) -> Run:
    return service.start_run(db, actor=principal, title=body.title, filters=body.filters, year=body.year)


@router.get("/runs/{run_id}", response_model=RunDetailOut, summary="A run: status, progress, figures, use")
def get_run(run_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Run:
    return _run(db, principal, run_id)


@router.get("/runs/{run_id}/placements", response_model=PageOut[PlacementOut], summary="A run's placements")
def list_placements(run_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
                    decision: str = Query("", max_length=20), q: str = Query("", max_length=40),
                    page: int = Query(1, ge=1), per_page: int = Query(50, ge=1, le=200)) -> PageOut[PlacementOut]:
    run = _run(db, principal, run_id)
    result = service.placements_of(db, run, decision=decision, q=q, page=page, per_page=per_page)
    return PageOut(items=[PlacementOut.model_validate(p) for p in result.items], meta=PageMeta(**result.meta()))


@router.post("/runs/{run_id}/placements/{placement_id}", response_model=PlacementOut,
             summary="Accept a placement, or override it with another site (or none) and a reason")
def decide(run_id: uuid.UUID, placement_id: uuid.UUID, body: DecisionIn, db: DbSession,
           principal: CurrentPrincipal) -> Any:
    run = _run(db, principal, run_id, "match.run.write")
    placement = service.placement_of(db, run, placement_id)
    return service.decide(db, actor=principal, run=run, placement=placement, site_id=body.site_id,
                          reason=body.reason, accept=body.accept)


@router.post("/runs/{run_id}/accept-remaining", response_model=CountOut,
             summary="Accept every placement not reviewed yet")
def accept_remaining(run_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> CountOut:
    run = _run(db, principal, run_id, "match.run.write")
    return CountOut(count=service.accept_remaining(db, actor=principal, run=run))


@router.post("/runs/{run_id}/confirm", response_model=CountOut,
             summary="Refer every accepted or overridden case to its site's government (all or none)")
def confirm(run_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> CountOut:
    run = _run(db, principal, run_id, "match.run.write")
    return CountOut(count=len(service.confirm(db, actor=principal, run=run)))

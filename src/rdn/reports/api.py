"""The network picture's JSON API: a view's figures (the network's, or one government's for its own officials and
the secretariat: the same 404 for anyone else as for a government that does not exist), and the projected needs
(read by everyone who reads the picture, added, changed and removed by the secretariat; ``Idempotency-Key`` is
honoured on POST)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Response
from pydantic import Field

from rdn.core import policy
from rdn.core.modules import api_router
from rdn.core.schemas import Out, StrictIn
from rdn.core.web import CurrentPrincipal, DbSession
from rdn.reports import service
from rdn.reports.models import Need

router = api_router(prefix="/api/v1/reports", tags=["reports"])


class NeedIn(StrictIn):
    year: int = Field(ge=2000, le=2100)
    population: str = Field(min_length=1, max_length=120)
    scope: str | None = Field(default=None, description="all, population or region (default: from the fields)")
    nationality: str | None = Field(default=None, description="ISO 3166 code the cases carry")
    region: str = Field(default="", description="a region key (docs/reports.md), or empty")
    people: int = Field(gt=0, le=200_000_000)
    source: str = Field(min_length=1, max_length=300)


class NeedOut(Out):
    id: uuid.UUID
    year: int
    population: str
    scope: str
    nationality: str | None
    region: str
    people: int
    source: str


@router.get("/network", summary="The network's figures for a year or a quarter")
def network(db: DbSession, principal: CurrentPrincipal, period: str = "") -> dict[str, Any]:
    policy.require(principal, "report.network.read")
    return service.for_viewer(db, service.picture(db, period=service.period_asked(period)), principal=principal)


@router.get("/members/{short_name}", summary="One member government's figures (its own officials, the secretariat)")
def member(short_name: str, db: DbSession, principal: CurrentPrincipal, period: str = "") -> dict[str, Any]:
    org = service.government_by_short_name(db, short_name)
    if org is None:
        raise policy.NotFound()
    policy.require(principal, "report.member.read", org)
    data = service.picture(db, period=service.period_asked(period), government=org.id)
    return service.for_viewer(db, data, principal=principal)


@router.get("/needs", response_model=list[NeedOut], summary="The projected needs, by year")
def needs(db: DbSession, principal: CurrentPrincipal, year: int | None = None) -> list[Need]:
    policy.require(principal, "report.network.read")
    return service.list_needs(db, year=year)


@router.post("/needs", response_model=NeedOut, status_code=201, summary="Add a projected need (the secretariat)")
def add_need(body: NeedIn, db: DbSession, principal: CurrentPrincipal) -> Need:
    return service.create_need(db, actor=principal, data=body.model_dump())


def _need(db: Any, principal: Any, need_id: uuid.UUID) -> Need:
    """A need the caller may change; the same 404 for a missing one and for anyone who may not."""
    need = db.get(Need, need_id)
    if need is None:
        raise policy.NotFound()
    policy.require(principal, "report.needs.manage", need)
    return need  # type: ignore[no-any-return]


@router.put("/needs/{need_id}", response_model=NeedOut, summary="Change a projected need (the secretariat)")
def change_need(need_id: uuid.UUID, body: NeedIn, db: DbSession, principal: CurrentPrincipal) -> Need:
    return service.update_need(db, actor=principal, need=_need(db, principal, need_id), data=body.model_dump())


@router.delete("/needs/{need_id}", status_code=204, summary="Remove a projected need (the secretariat)")
def delete_need(need_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    service.delete_need(db, actor=principal, need=_need(db, principal, need_id))
    return Response(status_code=204)

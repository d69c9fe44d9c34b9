"""JSON API of the pathway catalog: search (by eligible nationality and where the applicant is), one pathway,
a government's own pathways added and changed, and places offered against places used per country."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from fastapi import Query, Response
from pydantic import Field

from rdn.core import policy
from rdn.core.modules import api_router
from rdn.core.schemas import Out, PageMeta, PageOut, StrictIn
from rdn.core.web import CurrentPrincipal, DbSession
from rdn.pathways import catalog
from rdn.pathways.models import Pathway, PathwayStatus, PathwayType

router = api_router(prefix="/api/v1", tags=["pathways"])


class PathwayOut(Out):
    id: uuid.UUID
    org_id: uuid.UUID
    country: str = Field(description="the destination (the government's country)")
    name: str
    type: PathwayType
    description: str
    nationalities: list[str] = Field(description="eligible nationalities (ISO 3166); empty: any")
    locations: list[str] = Field(description="countries applicants may be in (ISO 3166); empty: any")
    categories: list[str] = Field(description="UNHCR submission categories; empty: any")
    conditions: str
    year: int
    places: int = Field(description="places offered in the year")
    places_used: int
    processing_days: int | None
    fee_amount: float | None
    fee_currency: str
    documents: list[str]
    responsible: str
    status: PathwayStatus
    status_since: date
    opens_on: date | None
    closes_on: date | None
    created_at: datetime
    updated_at: datetime


class PathwayIn(StrictIn):
    name: str = Field(min_length=1, max_length=200)
    type: PathwayType
    description: str = Field(default="", max_length=5000)
    nationalities: list[str] = Field(default_factory=list, max_length=catalog.MAX_CODES,
                                     description="eligible nationalities (ISO 3166); empty: any")
    locations: list[str] = Field(default_factory=list, max_length=catalog.MAX_CODES,
                                 description="countries applicants may be in (ISO 3166); empty: any")
    categories: list[str] = Field(default_factory=list, max_length=7, description="UNHCR submission categories")
    conditions: str = Field(default="", max_length=2000)
    year: int | None = Field(default=None, ge=2000, le=2100, description="default: this year")
    places: int = Field(default=0, ge=0, le=10_000_000)
    places_used: int = Field(default=0, ge=0, le=10_000_000)
    processing_days: int | None = Field(default=None, ge=0, le=3650)
    fee_amount: float | None = Field(default=None, ge=0)
    fee_currency: str = Field(default="", max_length=3)
    documents: list[str] = Field(default_factory=list, max_length=catalog.MAX_DOCUMENTS)
    responsible: str = Field(default="", max_length=200)
    status: PathwayStatus = PathwayStatus.open
    opens_on: date | None = None
    closes_on: date | None = None


class PathwayUpdate(StrictIn):
    """The fields to change; the others keep their values (null clears an optional one)."""

    name: str | None = Field(default=None, max_length=200)
    type: PathwayType | None = None
    description: str | None = Field(default=None, max_length=5000)
    nationalities: list[str] | None = Field(default=None, max_length=catalog.MAX_CODES)
    locations: list[str] | None = Field(default=None, max_length=catalog.MAX_CODES)
    categories: list[str] | None = Field(default=None, max_length=7)
    conditions: str | None = Field(default=None, max_length=2000)
    year: int | None = Field(default=None, ge=2000, le=2100)
    places: int | None = Field(default=None, ge=0, le=10_000_000)
    places_used: int | None = Field(default=None, ge=0, le=10_000_000)
    processing_days: int | None = Field(default=None, ge=0, le=3650)
    fee_amount: float | None = Field(default=None, ge=0)
    fee_currency: str | None = Field(default=None, max_length=3)
    documents: list[str] | None = Field(default=None, max_length=catalog.MAX_DOCUMENTS)
    responsible: str | None = Field(default=None, max_length=200)
    status: PathwayStatus | None = None
    opens_on: date | None = None
    closes_on: date | None = None


class PathwayPlacesOut(Out):
    id: uuid.UUID
    name: str
    type: PathwayType
    status: PathwayStatus
    places: int
    used: int


class CountryPlacesOut(Out):
    country: str
    places: int
    used: int
    count: int = Field(description="pathways")
    pathways: list[PathwayPlacesOut]


@router.get("/pathways", response_model=PageOut[PathwayOut], summary="Search the pathway catalog")
def list_pathways(db: DbSession, principal: CurrentPrincipal,
                  nationality: str = Query("", max_length=2, description="eligible nationality (ISO 3166)"),
                  current_country: str = Query("", max_length=2, description="where the applicant is (ISO 3166)"),
                  type: str = Query("", max_length=40), status: str = Query("", max_length=20),
                  q: str = Query("", max_length=200, description="words in the name, description or who runs it"),
                  page: int = Query(1, ge=1), per_page: int = Query(25, ge=1, le=100)) -> Response:
    result = catalog.search(catalog.reading(db), principal, nationality=nationality,
                            current_country=current_country, type=type, status=status, q=q, page=page,
                            per_page=per_page)
    body = PageOut(items=[PathwayOut.model_validate(p) for p in result.items], meta=PageMeta(**result.meta()))
    # Already validated: written out here rather than checked and encoded a second time by the framework (the
    # busiest call of the catalog; the documented response model is the same).
    return Response(body.model_dump_json(), media_type="application/json")


@router.post("/pathways", response_model=PathwayOut, status_code=201, summary="Add a pathway of your government")
def create_pathway(body: PathwayIn, db: DbSession, principal: CurrentPrincipal) -> Pathway:
    return catalog.create_pathway(db, actor=principal, data=body.model_dump())


@router.get("/pathways/places", response_model=list[CountryPlacesOut],
            summary="Places offered and used in a year, per destination country and pathway")
def places(db: DbSession, principal: CurrentPrincipal,
           year: int | None = Query(None, ge=2000, le=2100, description="default: this year")) -> list[Any]:
    return [CountryPlacesOut.model_validate(c)
            for c in catalog.places_by_country(catalog.reading(db), principal, year or catalog.today().year)]


@router.get("/pathways/{pathway_id}", response_model=PathwayOut, summary="One pathway")
def get_pathway(pathway_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Pathway:
    return policy.access(catalog.reading(db), principal, Pathway, pathway_id, "pathway.read")


@router.patch("/pathways/{pathway_id}", response_model=PathwayOut, summary="Change one of your pathways")
def update_pathway(pathway_id: uuid.UUID, body: PathwayUpdate, db: DbSession, principal: CurrentPrincipal) -> Pathway:
    pathway = policy.access(db, principal, Pathway, pathway_id, "pathway.manage")
    return catalog.update_pathway(db, actor=principal, pathway=pathway, data=body.model_dump(exclude_unset=True))

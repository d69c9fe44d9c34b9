"""Pages of the pathway catalog: the search ("which pathways could a Venezuelan family in Colombia use?") with
the obstacles known where the family is and the picture of places offered against places used; a pathway's
page (with its keeper's edit form); adding a pathway; the figures as CSV with HXL hashtags."""

from __future__ import annotations

import csv
import io
import math
import uuid
from functools import lru_cache
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from rdn.cases.models import CATEGORY_NAMES, Category
from rdn.core import i18n, policy
from rdn.core.errors import ValidationFailed
from rdn.core.i18n import gettext as _
from rdn.core.modules import page_router
from rdn.core.tenancy import Organization
from rdn.core.web import CurrentPrincipal, DbSession, PostedForm, redirect, render
from rdn.pathways import catalog
from rdn.pathways.catalog import CountryPlaces
from rdn.pathways.models import (
    OBSTACLE_STATUS_NAMES,
    OBSTACLE_TYPE_NAMES,
    PATHWAY_STATUS_NAMES,
    PATHWAY_TYPE_NAMES,
    SEVERITY_NAMES,
    Pathway,
)

router = page_router()

NOTICES = {
    "created": i18n.N_("The pathway is in the catalog."),
    "saved": i18n.N_("Your changes were saved."),
}
CHART_COUNTRIES = 20  # the chart draws the countries offering most places; the table lists them all
#: What the places file holds, and the HXL hashtag of each column.
CSV_COLUMNS = (
    ("year", "#date+year"),
    ("destination_country", "#country+code+destination"),
    ("destination_country_name", "#country+name+destination"),
    ("pathway", "#activity+name+pathway"),
    ("pathway_type", "#activity+type+code"),
    ("status", "#status+code"),
    ("places_offered", "#capacity+num+offered"),
    ("places_used", "#reached+num+used"),
    ("places_left", "#capacity+num+remaining"),
)


def _notice(key: str | None) -> str | None:
    return i18n.gettext(NOTICES[key]) if key in NOTICES else None


def _errors(db: Session, exc: ValidationFailed) -> dict[str, str]:
    db.rollback()
    return {e.field: e.message for e in exc.errors} or {"form": exc.detail}


def _labels() -> dict[str, Any]:
    return _labels_in(i18n.locale_var.get())


def _options() -> dict[str, Any]:
    return _options_in(i18n.locale_var.get())


@lru_cache(maxsize=16)
def _labels_in(locale: str) -> dict[str, Any]:
    """The names of the kinds and states, in ``locale`` (the page's language; built once per language)."""
    return {"type": {k.value: _(v) for k, v in PATHWAY_TYPE_NAMES.items()},
            "status": {k.value: _(v) for k, v in PATHWAY_STATUS_NAMES.items()},
            "category": {k.value: _(v) for k, v in CATEGORY_NAMES.items()},
            "severity": {k.value: _(v) for k, v in SEVERITY_NAMES.items()},
            "obstacle_type": {k.value: _(v) for k, v in OBSTACLE_TYPE_NAMES.items()},
            "obstacle_status": {k.value: _(v) for k, v in OBSTACLE_STATUS_NAMES.items()}}


@lru_cache(maxsize=16)
def _options_in(locale: str) -> dict[str, Any]:
    return {"type": [(k.value, _(v)) for k, v in PATHWAY_TYPE_NAMES.items()],
            "status": [(k.value, _(v)) for k, v in PATHWAY_STATUS_NAMES.items()],
            "category": [(c.value, f"{c.value} · {_(CATEGORY_NAMES[c])}") for c in Category],
            "countries": i18n.countries(locale)}


def _nice(top: int) -> int:
    """The chart's top: ``top`` rounded up to 1, 2 or 5 times a power of ten."""
    if top <= 0:
        return 1
    power = 10 ** math.floor(math.log10(top))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= top)


def places_chart(rows: list[CountryPlaces]) -> dict[str, Any] | None:
    """The bars of "places offered versus used by country": a light bar per country for the places offered,
    a dark one inside it for the places used (the countries offering most places, at most CHART_COUNTRIES)."""
    shown = sorted((r for r in rows if r.places or r.used), key=lambda r: (-r.places, r.country))[:CHART_COUNTRIES]
    if not shown:
        return None
    width, height, pad_left, pad_top, baseline = 600, 210, 72, 12, 180
    top = _nice(max(max(r.places, r.used) for r in shown))
    step = (width - pad_left - 12) / len(shown)
    bars = []
    for k, r in enumerate(shown):
        offered_h = (baseline - pad_top) * r.places / top
        used_h = (baseline - pad_top) * min(r.used, top) / top
        x, w = pad_left + k * step + step * 0.12, step * 0.76
        bars.append({
            "x": round(x, 1), "w": round(w, 1), "y": round(baseline - offered_h, 1), "h": round(offered_h, 1),
            "ux": round(x + w * 0.2, 1), "uw": round(w * 0.6, 1), "uy": round(baseline - used_h, 1),
            "uh": round(used_h, 1), "cx": round(pad_left + (k + .5) * step, 1), "tick": r.country,
            "label": _("%(country)s: %(used)s of %(places)s places used", country=i18n.country_name(r.country),
                       used=i18n.format_number(r.used), places=i18n.format_number(r.places))})
    return {"width": width, "height": height, "pad_left": pad_left, "pad_top": pad_top, "baseline": baseline,
            "label_x": pad_left // 2,
            "top": i18n.format_number(top), "mid": i18n.format_number(top // 2),
            "mid_y": round(baseline - (baseline - pad_top) / 2, 1), "bars": bars, "more": len(rows) > len(shown)}


def _query(values: dict[str, Any]) -> str:
    return urlencode({k: v for k, v in values.items() if v})


# The catalog -----------------------------------------------------------------------------------------------------


@router.get("/pathways")
def pathways(request: Request, db: DbSession, principal: CurrentPrincipal,
             nationality: Annotated[str, Query(max_length=2)] = "",
             current_country: Annotated[str, Query(max_length=2)] = "",
             type: Annotated[str, Query(max_length=40)] = "", status: Annotated[str, Query(max_length=20)] = "",
             q: Annotated[str, Query(max_length=200)] = "", year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
             page: Annotated[int, Query(ge=1)] = 1, notice: str | None = None) -> Response:
    values = {"nationality": nationality.upper(), "current_country": current_country.upper(), "type": type,
              "status": status, "q": q}
    catalog.reading(db)
    result = catalog.search(db, principal, page=page, listed=True, **values)
    obstacles = catalog.obstacles_for(db, principal, nationality=values["nationality"],
                                      current_country=values["current_country"])
    year = year or catalog.today().year
    # The network's picture of places goes with the catalog as a whole; a search for one family shows its
    # pathways and the obstacles where it is, and links to the picture.
    places = None if any(values.values()) else catalog.places_by_country(db, principal, year, pathways=False)
    if places is not None:
        places.sort(key=lambda r: i18n.country_name(r.country))
    return render(request, "pathways/pathways.html", {
        "page": result, "values": values, "labels": _labels(), "options": _options(), "notice": _notice(notice),
        "base_query": _query({**values, "year": year if year != catalog.today().year else ""}),
        "obstacles": obstacles, "year": year, "places": places,
        "totals": {"places": sum(r.places for r in places or []), "used": sum(r.used for r in places or []),
                   "count": sum(r.count for r in places or [])},
        "chart": places_chart(places) if places else None, "can_create": policy.can(principal, "pathway.manage")})


@router.get("/pathways/places.csv")
def places_csv(db: DbSession, principal: CurrentPrincipal,
               year: Annotated[int | None, Query(ge=2000, le=2100)] = None) -> Response:
    """Places offered and used per pathway (and so per destination country) in a year: a header row, a row of
    HXL hashtags, then one row per pathway."""
    year = year or catalog.today().year
    rows = catalog.places_by_country(catalog.reading(db), principal, year)
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([name for name, _tag in CSV_COLUMNS])
    writer.writerow([tag for _name, tag in CSV_COLUMNS])
    with i18n.using("en"):
        for country in rows:
            for p in country.pathways:
                writer.writerow([year, country.country, i18n.country_name(country.country), _cell(p.name),
                                 p.type.value, p.status.value, p.places, p.used, max(0, p.places - p.used)])
    return Response(out.getvalue().encode("utf-8"), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="rdn-pathway-places-{year}.csv"'})


def _cell(text: str) -> str:
    """Text a spreadsheet would read as a formula gets a leading apostrophe."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# One pathway ------------------------------------------------------------------------------------------------------


def _form_values(pathway: Pathway | None) -> dict[str, Any]:
    if pathway is None:
        return {"type": "", "status": "open", "year": catalog.today().year, "places": 0, "places_used": 0,
                "categories": []}
    values = catalog.pathway_values(pathway)
    for key in ("nationalities", "locations"):
        values[key] = ", ".join(values[key])
    values["documents"] = "\n".join(values["documents"])
    values["type"], values["status"] = pathway.type.value, pathway.status.value
    for key in ("processing_days", "fee_amount", "opens_on", "closes_on"):
        value = values[key]
        values[key] = "" if value is None else (value.isoformat() if hasattr(value, "isoformat") else f"{value:g}")
    return values


def _posted(form: Any) -> dict[str, Any]:
    data = {k: str(form.get(k, "")) for k in catalog.FIELDS if k != "categories"}
    data["categories"] = [str(c) for c in form.getlist("categories")]
    return data


def _form_page(request: Request, pathway: Pathway | None, values: dict[str, Any], errors: dict[str, str],
               status: int = 200) -> Response:
    return render(request, "pathways/pathway_form.html", {
        "pathway": pathway, "values": values, "errors": errors, "options": _options()}, status=status)


@router.get("/pathways/new")
def new_pathway(request: Request, principal: CurrentPrincipal) -> Response:
    policy.require(principal, "pathway.manage")
    return _form_page(request, None, _form_values(None), {})


@router.post("/pathways/new")
def create_pathway(request: Request, db: DbSession, principal: CurrentPrincipal, form: PostedForm) -> Response:
    policy.require(principal, "pathway.manage")
    data = _posted(form)
    try:
        pathway = catalog.create_pathway(db, actor=principal, data=data)
    except ValidationFailed as exc:
        return _form_page(request, None, data, _errors(db, exc), 422)
    return redirect(f"/pathways/{pathway.id}?notice=created")


def _pathway_page(request: Request, db: Session, principal: Any, pathway: Pathway, *,
                  values: dict[str, Any] | None = None, errors: dict[str, str] | None = None,
                  notice: str | None = None, status: int = 200) -> Response:
    can_manage = policy.can(principal, "pathway.manage", pathway)
    return render(request, "pathways/pathway.html", {
        "pathway": pathway, "org": db.get(Organization, pathway.org_id), "labels": _labels(),
        "options": _options(), "notice": _notice(notice), "can_manage": can_manage,
        "values": values if values is not None else _form_values(pathway), "errors": errors or {}}, status=status)


@router.get("/pathways/{pathway_id}")
def pathway_page(request: Request, pathway_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
                 notice: str | None = None) -> Response:
    pathway = policy.access(catalog.reading(db), principal, Pathway, pathway_id, "pathway.read")
    return _pathway_page(request, db, principal, pathway, notice=notice)


@router.post("/pathways/{pathway_id}")
def update_pathway(request: Request, pathway_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
                   form: PostedForm) -> Response:
    pathway = policy.access(db, principal, Pathway, pathway_id, "pathway.manage")
    data = _posted(form)
    try:
        catalog.update_pathway(db, actor=principal, pathway=pathway, data=data)
    except ValidationFailed as exc:
        errors = _errors(db, exc)
        pathway = policy.access(db, principal, Pathway, pathway_id, "pathway.manage")
        return _pathway_page(request, db, principal, pathway, values=data, errors=errors, status=422)
    return redirect(f"/pathways/{pathway.id}?notice=saved")

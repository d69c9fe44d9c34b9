"""Pages of matching: runs (start, watch, review, decide, confirm, compare), reception sites and quotas."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from rdn.cases.models import CATEGORY_NAMES, PRIORITY_NAMES, Category, Priority
from rdn.cases.pipeline import STAGE_NAMES, Stage
from rdn.core import clock, i18n, policy
from rdn.core.errors import Conflict, ValidationFailed
from rdn.core.i18n import gettext as _
from rdn.core.modules import page_router
from rdn.core.tenancy import Organization
from rdn.core.web import CurrentPrincipal, DbSession, redirect, render, safe_next
from rdn.matching import service
from rdn.matching.models import (
    DECISION_NAMES,
    RESOURCE_NAMES,
    RUN_STATUS_NAMES,
    Decision,
    Placement,
    Run,
    RunStatus,
    Site,
)
from rdn.web import charts

router = page_router()

NOTICES = {
    "started": i18n.N_("The run is queued; this page follows its progress."),
    "decided": i18n.N_("Your decision is saved."),
    "accepted": i18n.N_("Every remaining proposal with a site is accepted."),
    "confirmed": i18n.N_("Confirmed: the referrals are created and the governments notified."),
    "saved": i18n.N_("Your changes were saved."),
    "needs": i18n.N_("The case's needs are saved; they count from the next run."),
}


#: The scorer's factors as officers read them (the scorer's own labels are English, for analysts' files).
FACTORS = {
    "intercept": i18n.N_("Baseline"),
    "language_match": i18n.N_("Speaks a language the site serves"),
    "community": i18n.N_("Same-nationality community at the site"),
    "unemployment_rate": i18n.N_("Local unemployment rate, in percent"),
    "education": i18n.N_("Education level (0-3)"),
    "skills_gap": i18n.N_("Gap between education and local job demand"),
    "setting_match": i18n.N_("Urban or rural preference met"),
    "medical_care_missing": i18n.N_("Medical condition without specialised care nearby"),
    "employed_adults": i18n.N_("Expected adults employed (working-age adults times the chance of each)"),
    "floor": i18n.N_("Floor (every case is worth placing)"),
}


def _notice(key: str | None) -> str | None:
    return i18n.gettext(NOTICES[key]) if key in NOTICES else None


def _errors(db: Session, exc: ValidationFailed | Conflict) -> dict[str, str]:
    db.rollback()
    return {e.field: e.message for e in exc.errors} or {"form": exc.detail}


def _labels() -> dict[str, Any]:
    return {"status": {k.value: _(v) for k, v in RUN_STATUS_NAMES.items()},
            "decision": {k.value: _(v) for k, v in DECISION_NAMES.items()},
            "resource": {k: _(v) for k, v in RESOURCE_NAMES.items()},
            "priority": {k.value: _(v) for k, v in PRIORITY_NAMES.items()},
            "factor": {k: _(v) for k, v in FACTORS.items()}}


def _filter_options() -> dict[str, list[tuple[str, str]]]:
    return {"priority": [(p.value, _(PRIORITY_NAMES[p])) for p in Priority],
            "category": [(c.value, f"{c.value} · {_(CATEGORY_NAMES[c])}") for c in Category],
            "stage": [(s.value, _(STAGE_NAMES[s])) for s in Stage if s not in service.NOT_MATCHED],
            "countries": i18n.countries(i18n.locale_var.get())}


# Runs -------------------------------------------------------------------------------------------------------


@router.get("/matching")
def runs(request: Request, db: DbSession, principal: CurrentPrincipal, page: Annotated[int, Query(ge=1)] = 1,
         priority: Annotated[str, Query(max_length=20)] = "", category: Annotated[str, Query(max_length=10)] = "",
         nationality: Annotated[str, Query(max_length=2)] = "",
         current_country: Annotated[str, Query(max_length=2)] = "",
         stage: Annotated[str, Query(max_length=40)] = "", q: Annotated[str, Query(max_length=100)] = "") -> Response:
    result = service.list_runs(db, principal, page=page)
    values = {"priority": priority, "category": category, "nationality": nationality,
              "current_country": current_country, "stage": stage, "q": q, "title": "", "year": clock.now().year}
    return render(request, "matching/runs.html", {
        "page": result, "labels": _labels(), "options": _filter_options(), "values": values, "errors": {},
        "can_start": policy.can(principal, "match.run.write")})


@router.post("/matching/runs")
def start_run(request: Request, db: DbSession, principal: CurrentPrincipal,
              title: Annotated[str, Form(max_length=400)] = "", year: Annotated[str, Form(max_length=10)] = "",
              priority: Annotated[str, Form(max_length=20)] = "", category: Annotated[str, Form(max_length=10)] = "",
              nationality: Annotated[str, Form(max_length=2)] = "",
              current_country: Annotated[str, Form(max_length=2)] = "",
              stage: Annotated[str, Form(max_length=40)] = "",
              q: Annotated[str, Form(max_length=100)] = "") -> Response:
    filters = {"priority": priority, "category": category, "nationality": nationality,
               "current_country": current_country, "stage": [stage] if stage else [], "q": q}
    try:
        run = service.start_run(db, actor=principal, title=title, filters=filters, year=year or None)
    except ValidationFailed as exc:
        return render(request, "matching/runs.html", {
            "page": service.list_runs(db, principal), "labels": _labels(), "options": _filter_options(),
            "values": {**filters, "stage": stage, "title": title, "year": year}, "errors": _errors(db, exc),
            "can_start": True}, status=422)
    return redirect(f"/matching/runs/{run.id}?notice=started")


def _run(db: Session, principal: Any, run_id: uuid.UUID, action: str = "match.run.read") -> Run:
    return policy.access(db, principal, Run, run_id, action)


def _chart(histogram: list[dict[str, Any]]) -> dict[str, Any] | None:
    return charts.bars([(h["count"], f"{h['low']:.1f}", _("%(count)s cases scored %(low)s-%(high)s", count=h["count"],
                                                             low=f"{h['low']:.2f}", high=f"{h['high']:.2f}"))
                        for h in histogram])


@router.get("/matching/runs/{run_id}")
def run_page(request: Request, run_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
             decision: Annotated[str, Query(max_length=20)] = "", q: Annotated[str, Query(max_length=40)] = "",
             page: Annotated[int, Query(ge=1)] = 1, notice: str | None = None) -> Response:
    run = _run(db, principal, run_id)
    placements = service.placements_of(db, run, decision=decision, q=q, page=page)
    sites = service.sites_by_id(db, [p.site_id for p in placements.items]
                                + [p.proposed_site_id for p in placements.items])
    histogram = service.score_histogram(db, run)
    others = [r for r in service.list_runs(db, principal, per_page=50).items if r.id != run.id]
    return render(request, "matching/run.html", {
        "run": run, "placements": placements, "sites": sites, "labels": _labels(), "decision": decision, "q": q,
        "notice": _notice(notice), "working": run.status in (RunStatus.queued, RunStatus.solving),
        "chart": _chart(histogram), "histogram": histogram, "countries": service.use_by_country(run),
        "site_use": sorted(run.use or [], key=lambda u: (u["country"], u["name"])),
        "can_decide": run.status == RunStatus.proposed and policy.can(principal, "match.run.write", run),
        "others": others, "decisions": [(d.value, _(n)) for d, n in DECISION_NAMES.items()]})


def _sites_for_override(db: Session, principal: Any, run: Run) -> list[tuple[str, str]]:
    return [(str(s.id), f"{i18n.country_name(s.country)} · {s.name}") for s in service.sites_for(db, run)]


def _placement_page(request: Request, db: Session, principal: Any, run: Run, placement: Placement, *,
                    errors: dict[str, str] | None = None, values: dict[str, str] | None = None,
                    notice: str | None = None, status: int = 200) -> Response:
    sites = service.sites_by_id(db, [placement.site_id, placement.proposed_site_id])
    return render(request, "matching/placement.html", {
        "run": run, "p": placement, "sites": sites, "labels": _labels(), "errors": errors or {},
        "values": values or {}, "notice": _notice(notice), "options": _sites_for_override(db, principal, run),
        "can_decide": run.status == RunStatus.proposed and placement.decision != Decision.referred
        and policy.can(principal, "match.run.write", run),
        "resources": list(RESOURCE_NAMES)}, status=status)


@router.get("/matching/runs/{run_id}/placements/{placement_id}")
def placement_page(request: Request, run_id: uuid.UUID, placement_id: uuid.UUID, db: DbSession,
                   principal: CurrentPrincipal, notice: str | None = None) -> Response:
    run = _run(db, principal, run_id)
    return _placement_page(request, db, principal, run, service.placement_of(db, run, placement_id), notice=notice)


@router.post("/matching/runs/{run_id}/placements/{placement_id}")
def decide(request: Request, run_id: uuid.UUID, placement_id: uuid.UUID, db: DbSession,
           principal: CurrentPrincipal, action: Annotated[str, Form(max_length=20)] = "",
           site_id: Annotated[str, Form(max_length=40)] = "", reason: Annotated[str, Form(max_length=2000)] = ""
           ) -> Response:
    run = _run(db, principal, run_id, "match.run.write")
    placement = service.placement_of(db, run, placement_id)
    try:
        service.decide(db, actor=principal, run=run, placement=placement, site_id=site_id, reason=reason,
                       accept=action == "accept")
    except (ValidationFailed, Conflict) as exc:
        errors = _errors(db, exc)
        run = _run(db, principal, run_id)
        placement = service.placement_of(db, run, placement_id)
        return _placement_page(request, db, principal, run, placement, errors=errors,
                               values={"site_id": site_id, "reason": reason}, status=422)
    return redirect(f"/matching/runs/{run.id}/placements/{placement.id}?notice=decided")


@router.post("/matching/runs/{run_id}/accept-remaining")
def accept_remaining(run_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    run = _run(db, principal, run_id, "match.run.write")
    service.accept_remaining(db, actor=principal, run=run)
    return redirect(f"/matching/runs/{run.id}?notice=accepted")


@router.post("/matching/runs/{run_id}/confirm")
def confirm(request: Request, run_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    run = _run(db, principal, run_id, "match.run.write")
    try:
        service.confirm(db, actor=principal, run=run)
    except (ValidationFailed, Conflict) as exc:
        errors = _errors(db, exc)
        run = _run(db, principal, run_id)
        return render(request, "matching/confirm_failed.html", {"run": run, "errors": errors}, status=422)
    return redirect(f"/matching/runs/{run.id}?notice=confirmed")


@router.get("/matching/runs/{run_id}/compare")
def compare(request: Request, run_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
            other: Annotated[uuid.UUID | None, Query(alias="with")] = None) -> Response:
    run_a = _run(db, principal, run_id)
    if other is None:
        return redirect(f"/matching/runs/{run_a.id}")
    run_b = _run(db, principal, other)
    return render(request, "matching/compare.html", {"a": run_a, "b": run_b, "c": service.compare(db, run_a, run_b),
                                                     "labels": _labels()})


@router.post("/matching/needs/{case_id}")
def override_need(request: Request, case_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
                  resource: Annotated[str, Form(max_length=40)] = "", amount: Annotated[str, Form(max_length=20)] = "",
                  reason: Annotated[str, Form(max_length=1000)] = "",
                  next: Annotated[str, Form(max_length=300)] = "/matching") -> Response:
    target = safe_next(next, "/matching")
    try:
        service.override_need(db, actor=principal, case_id=case_id, resource=resource, amount=amount, reason=reason)
    except ValidationFailed as exc:
        errors = _errors(db, exc)
        return render(request, "matching/needs_failed.html", {"errors": errors, "back": target}, status=422)
    return redirect(target + ("&" if "?" in target else "?") + "notice=needs")


# Sites and quotas -----------------------------------------------------------------------------------------------


@router.get("/matching/sites")
def sites(request: Request, db: DbSession, principal: CurrentPrincipal,
          q: Annotated[str, Query(max_length=100)] = "", country: Annotated[str, Query(max_length=2)] = "",
          page: Annotated[int, Query(ge=1)] = 1, notice: str | None = None) -> Response:
    result = service.list_sites(db, principal, q=q, country=country, page=page)
    orgs = {o.id: o for o in db.scalars(select(Organization).where(
        Organization.id.in_({s.org_id for s in result.items})))} if result.items else {}
    return render(request, "matching/sites.html", {
        "page": result, "q": q, "country": country, "orgs": orgs, "labels": _labels(), "notice": _notice(notice),
        "countries": i18n.countries(i18n.locale_var.get()), "can_manage": policy.can(principal, "match.site.manage")})


def _site_form(request: Request, site: Site | None, values: dict[str, Any], errors: dict[str, str],
               status: int = 200) -> Response:
    return render(request, "matching/site_form.html", {"site": site, "values": values, "errors": errors,
                                                       "labels": _labels()}, status=status)


def _site_data(form: Any) -> dict[str, Any]:
    data = {k: form.get(k, "") for k in ("code", "name", "locality", "period", "capacity_people", "languages",
                                         "nationalities", "unemployment_rate", "labour_demand", "setting")}
    data["resources"] = {r: form.get(f"resource_{r}", "") for r in RESOURCE_NAMES if r != "people"
                         if form.get(f"resource_{r}", "")}
    data["active"] = "true" if form.get("active") else "false"
    return data


@router.get("/matching/sites/new")
def new_site(request: Request, principal: CurrentPrincipal) -> Response:
    policy.require(principal, "match.site.manage")
    return _site_form(request, None, {"active": True, "labour_demand": 1, "unemployment_rate": 5}, {})


@router.post("/matching/sites/new")
async def create_site(request: Request, db: DbSession, principal: CurrentPrincipal) -> Response:
    policy.require(principal, "match.site.manage")
    data = _site_data(await request.form())
    try:
        site = service.create_site(db, actor=principal, data=data)
    except ValidationFailed as exc:
        return _site_form(request, None, {**data, **{f"resource_{k}": v for k, v in data["resources"].items()}},
                          _errors(db, exc), 422)
    return redirect(f"/matching/sites/{site.id}?notice=saved")


@router.get("/matching/sites/{site_id}")
def site_page(request: Request, site_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
              notice: str | None = None) -> Response:
    site = policy.access(db, principal, Site, site_id, "match.site.read")
    if policy.can(principal, "match.site.manage", site):
        values = {**service.site_values(site), **{f"resource_{k}": v for k, v in (site.resources or {}).items()}}
        values["languages"], values["nationalities"] = ", ".join(site.languages), ", ".join(site.nationalities)
        response = _site_form(request, site, values, {})
        return response
    return render(request, "matching/site.html", {"site": site, "org": db.get(Organization, site.org_id),
                                                  "labels": _labels(), "notice": _notice(notice)})


@router.post("/matching/sites/{site_id}")
async def update_site(request: Request, site_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    site = policy.access(db, principal, Site, site_id, "match.site.manage")
    data = _site_data(await request.form())
    try:
        service.update_site(db, actor=principal, site=site, data=data)
    except ValidationFailed as exc:
        errors = _errors(db, exc)
        site = policy.access(db, principal, Site, site_id, "match.site.manage")
        return _site_form(request, site, {**data, **{f"resource_{k}": v for k, v in data["resources"].items()}},
                          errors, 422)
    return redirect("/matching/sites?notice=saved")


@router.get("/matching/quotas")
def quotas(request: Request, db: DbSession, principal: CurrentPrincipal,
           year: Annotated[int | None, Query(ge=2000, le=2100)] = None, notice: str | None = None) -> Response:
    year = year or clock.now().year
    rows = service.quotas(db, principal, year)
    mine = next((q for o, q in rows if o.id == principal.org_id), None)
    return render(request, "matching/quotas.html", {
        "rows": rows, "year": year, "mine": mine, "errors": {}, "values": {}, "notice": _notice(notice),
        "can_manage": policy.can(principal, "match.site.manage")})


@router.post("/matching/quotas")
def set_quota(request: Request, db: DbSession, principal: CurrentPrincipal,
              year: Annotated[str, Form(max_length=10)] = "", places: Annotated[str, Form(max_length=20)] = "",
              emergency_reserve: Annotated[str, Form(max_length=20)] = "") -> Response:
    try:
        service.set_quota(db, actor=principal, year=year, places=places, emergency_reserve=emergency_reserve)
    except ValidationFailed as exc:
        errors = _errors(db, exc)
        year_n = int(year) if year.isdigit() else clock.now().year
        return render(request, "matching/quotas.html", {
            "rows": service.quotas(db, principal, year_n), "year": year_n, "errors": errors,
            "mine": None, "values": {"places": places, "emergency_reserve": emergency_reserve},
            "notice": None, "can_manage": True}, status=422)
    return redirect(f"/matching/quotas?year={year}&notice=saved")

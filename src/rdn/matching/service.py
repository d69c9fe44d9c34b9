"""Matching in the platform: reception sites and quotas, each case's needs, runs over a batch of cases,
officers' decisions, and confirming placements into referrals.

A run fixes its batch when it starts (the owner's cases matching a filter, one placement row each) and is
solved by the worker (``matching.solve`` on the outbox): the problem is built from the sites, quotas and
cases as they are then (``build``), scored by the scorer, solved by ``rdn.matching.optimizer`` and explained
case by case (``rdn.matching.explain``). Officers accept or override each placement (an override names a
reason); confirming refers every decided case to the government of its site in one transaction, or refers
none and says which case could not be referred and why.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from rdn import db
from rdn.cases import search, sharing
from rdn.cases.models import LIVE_REFERRAL, Case, FamilyTie, Member, Purpose, Referral, Section
from rdn.cases.pipeline import Stage
from rdn.cases.policy import access_case
from rdn.core import audit, clock, outbox, policy
from rdn.core.errors import Conflict, FieldError, ValidationFailed
from rdn.core.i18n import gettext as _
from rdn.core.identity import Principal
from rdn.core.pagination import Page, paginate
from rdn.core.tenancy import Organization, OrgKind
from rdn.matching import explain as explaining
from rdn.matching import optimizer, scoring
from rdn.matching.files import PRIORITY_WEIGHTS
from rdn.matching.models import (
    PEOPLE,
    RESOURCES,
    Decision,
    NeedOverride,
    Placement,
    Quota,
    Run,
    RunStatus,
    Site,
)

MAX_BATCH = 5_000  # cases in one run
#: Cases no run takes: they left the road, or are past placement.
NOT_MATCHED = frozenset({Stage.closed, Stage.withdrawn, Stage.denied, Stage.not_recommended, Stage.departed,
                         Stage.arrived, Stage.travel_booking})
#: What a confirmed placement shares with the receiving government, as far as the agreement allows.
REFER_SECTIONS = (Section.identity, Section.background, Section.needs, Section.family, Section.preferences)
EDUCATION_LEVEL = {"none": 0, "primary": 1, "secondary": 2, "vocational": 2, "university": 3}
RESOURCE_ORDER = (PEOPLE, *RESOURCES)


# Sites and quotas -----------------------------------------------------------------------------------------------


def _text(value: Any, field_name: str, errors: list[FieldError], *, high: int, required: bool = False) -> str:
    text = str(value or "").strip()
    if required and not text:
        errors.append(FieldError(field_name, _("is required")))
    elif len(text) > high:
        errors.append(FieldError(field_name, _("at most %(high)s characters", high=high)))
    return text


def _number(value: Any, field_name: str, errors: list[FieldError], *, low: float = 0, high: float = 1e7,
            integer: bool = False) -> float:
    try:
        number = float(str(value).strip()) if value not in (None, "") else 0.0
    except ValueError:
        errors.append(FieldError(field_name, _("must be a number")))
        return 0.0
    if not np.isfinite(number) or number < low or number > high:
        errors.append(FieldError(field_name, _("must be between %(low)s and %(high)s", low=f"{low:g}",
                                                high=f"{high:g}")))
        return 0.0
    if integer and number != int(number):
        errors.append(FieldError(field_name, _("must be a whole number")))
    return number


def _codes(value: Any, field_name: str, errors: list[FieldError], *, length: int) -> list[str]:
    items = value if isinstance(value, list | tuple) else str(value or "").replace(";", ",").split(",")
    out = [str(v).strip().lower() if length == 3 else str(v).strip().upper() for v in items if str(v).strip()]
    bad = [c for c in out if not (2 <= len(c) <= length and c.isalpha())]
    if bad:
        errors.append(FieldError(field_name, _("not codes: %(codes)s", codes=", ".join(bad))))
    return list(dict.fromkeys(out))[:30]


def clean_site(data: Mapping[str, Any]) -> dict[str, Any]:
    errors: list[FieldError] = []
    out: dict[str, Any] = {
        "code": _text(data.get("code"), "code", errors, high=40, required=True),
        "name": _text(data.get("name"), "name", errors, high=200, required=True),
        "locality": _text(data.get("locality"), "locality", errors, high=200),
        "period": _text(data.get("period"), "period", errors, high=20),
        "capacity_people": int(_number(data.get("capacity_people"), "capacity_people", errors, high=1e6,
                                       integer=True)),
        "languages": _codes(data.get("languages"), "languages", errors, length=3),
        "nationalities": _codes(data.get("nationalities"), "nationalities", errors, length=2),
        "unemployment_rate": _number(data.get("unemployment_rate") or 5, "unemployment_rate", errors, high=100),
        "labour_demand": int(_number(data.get("labour_demand") or 1, "labour_demand", errors, high=3,
                                     integer=True)),
        "setting": _text(data.get("setting"), "setting", errors, high=10).lower(),
        "active": str(data.get("active", True)).lower() not in {"false", "0", "off", "no"},
    }
    raw = data.get("resources") or {}
    if not isinstance(raw, Mapping):
        errors.append(FieldError("resources", _("must be an object of resource names and capacities")))
        raw = {}
    resources: dict[str, float] = {}
    for name, value in raw.items():
        if name not in RESOURCES:
            errors.append(FieldError(f"resources.{name}", _("unknown resource; one of %(names)s",
                                                            names=", ".join(RESOURCES))))
            continue
        amount = _number(value, f"resources.{name}", errors, high=1e6)
        if amount > 0:
            resources[name] = amount
    out["resources"] = resources
    if out["setting"] not in {"", "urban", "rural"}:
        errors.append(FieldError("setting", _("must be one of %(values)s", values="urban, rural")))
    if errors:
        raise ValidationFailed(errors=errors)
    return out


def create_site(session: Session, *, actor: Principal, data: Mapping[str, Any]) -> Site:
    policy.require(actor, "match.site.manage")
    values = clean_site(data)
    org = session.get(Organization, actor.org_id)
    assert org is not None and org.country
    if session.scalar(select(Site.id).where(Site.org_id == org.id, Site.code == values["code"])):
        raise ValidationFailed("code", _("another site of yours has this code"))
    site = Site(org_id=org.id, country=org.country, **values)
    session.add(site)
    session.flush()
    audit.record(session, action="match.site.create", actor=actor, object_type="match_site", object_id=site.id,
                 details={"code": site.code, "capacity_people": site.capacity_people})
    return site


def update_site(session: Session, *, actor: Principal, site: Site, data: Mapping[str, Any]) -> Site:
    policy.require(actor, "match.site.manage", site)
    values = clean_site({**site_values(site), **data})
    if values["code"] != site.code and session.scalar(
            select(Site.id).where(Site.org_id == site.org_id, Site.code == values["code"])):
        raise ValidationFailed("code", _("another site of yours has this code"))
    changed = {k: v for k, v in values.items() if getattr(site, k) != v}
    for key, value in changed.items():
        setattr(site, key, value)
    site.updated_at = clock.now()
    audit.record(session, action="match.site.update", actor=actor, object_type="match_site", object_id=site.id,
                 details={"changed": sorted(changed)})
    return site


def site_values(site: Site) -> dict[str, Any]:
    return {"code": site.code, "name": site.name, "locality": site.locality, "period": site.period,
            "capacity_people": site.capacity_people, "resources": dict(site.resources or {}),
            "languages": list(site.languages or []), "nationalities": list(site.nationalities or []),
            "unemployment_rate": site.unemployment_rate, "labour_demand": site.labour_demand, "setting": site.setting,
            "active": site.active}


def list_sites(session: Session, actor: Principal, *, q: str = "", country: str = "", page: int = 1,
               per_page: int = 50) -> Page[Site]:
    policy.require(actor, "match.site.read")
    stmt = policy.scoped(actor, Site)
    if q.strip():
        like = f"%{q.strip().lower()}%"
        stmt = stmt.where(func.lower(Site.name).like(like) | func.lower(Site.locality).like(like)
                          | func.lower(Site.code).like(like))
    if country:
        stmt = stmt.where(Site.country == country.upper())
    return paginate(session, stmt.order_by(Site.country, Site.name, Site.id), page=page, per_page=per_page)


def set_quota(session: Session, *, actor: Principal, year: Any, places: Any, emergency_reserve: Any) -> Quota:
    policy.require(actor, "match.site.manage")
    errors: list[FieldError] = []
    year_n = int(_number(year, "year", errors, low=2000, high=2100, integer=True))
    places_n = int(_number(places, "places", errors, high=1e7, integer=True))
    reserve_n = int(_number(emergency_reserve, "emergency_reserve", errors, high=1e7, integer=True))
    if not errors and reserve_n > places_n:
        errors.append(FieldError("emergency_reserve", _("cannot be more than the places")))
    if errors:
        raise ValidationFailed(errors=errors)
    assert actor.org_id is not None
    quota = session.get(Quota, (actor.org_id, year_n))
    if quota is None:
        quota = Quota(org_id=actor.org_id, year=year_n, places=places_n, emergency_reserve=reserve_n)
        session.add(quota)
    quota.places, quota.emergency_reserve, quota.updated_at = places_n, reserve_n, clock.now()
    session.flush()
    audit.record(session, action="match.quota.set", actor=actor, object_type="organization",
                 object_id=actor.org_id, details={"year": year_n, "places": places_n, "reserve": reserve_n})
    return quota


def quotas(session: Session, actor: Principal, year: int) -> list[tuple[Organization, Quota]]:
    policy.require(actor, "match.site.read")
    rows = session.execute(policy.scoped(actor, Quota).where(Quota.year == year)
                           .add_columns(Organization).join(Organization, Organization.id == Quota.org_id)
                           .order_by(Organization.name)).all()
    return [(org, quota) for quota, org in rows]


# Needs --------------------------------------------------------------------------------------------------------


def derive_needs(people: int, specific_needs: Iterable[str]) -> dict[str, float]:
    """What a household uses of each resource, from what the case says: its size, and its members' specific
    needs (never the sealed medical section)."""
    needs = set(specific_needs)
    medical = 1.0 if "serious_medical_condition" in needs else 0.0
    single = 1.0 if "single_parent" in needs else 0.0
    return {PEOPLE: float(people), "medical": medical, "large_family": 1.0 if people >= 6 else 0.0,
            "accessible": 1.0 if "disability" in needs else 0.0, "single_parent": single,
            "caseworker_hours": 2 + 0.5 * people + 4 * medical + 2 * single}


def override_need(session: Session, *, actor: Principal, case_id: Any, resource: str, amount: Any,
                  reason: str) -> NeedOverride | None:
    """Set (or, with an empty amount, clear) an officer's correction of one need of a case."""
    access = access_case(session, actor, case_id)
    policy.require(actor, "match.needs.override", access)
    if resource not in RESOURCE_ORDER:
        raise ValidationFailed("resource", _("unknown resource; one of %(names)s", names=", ".join(RESOURCE_ORDER)))
    existing = session.get(NeedOverride, (access.case.id, resource))
    if amount in (None, ""):
        if existing is not None:
            session.delete(existing)
            audit.record(session, action="match.needs.clear", actor=actor, object_type="case",
                         object_id=access.case.id, details={"resource": resource})
        return None
    errors: list[FieldError] = []
    value = _number(amount, "amount", errors, high=1000)
    text = _text(reason, "reason", errors, high=500, required=True)
    if errors:
        raise ValidationFailed(errors=errors)
    if existing is None:
        existing = NeedOverride(case_id=access.case.id, resource=resource, amount=value, reason=text)
        session.add(existing)
    existing.amount, existing.reason, existing.by_user_id, existing.at = value, text, actor.user_id, clock.now()
    session.flush()
    audit.record(session, action="match.needs.override", actor=actor, object_type="case", object_id=access.case.id,
                 details={"resource": resource, "amount": f"{value:g}"})
    return existing


# Runs -----------------------------------------------------------------------------------------------------------


FILTER_KEYS = ("q", "priority", "category", "nationality", "current_country", "stage")


def clean_filters(raw: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in FILTER_KEYS:
        value = raw.get(key)
        if key == "stage":
            values = value if isinstance(value, list | tuple) else ([value] if value else [])
            stages = [str(v) for v in values if str(v)]
            bad = [s for s in stages if s not in {st.value for st in Stage}]
            if bad:
                raise ValidationFailed("filters.stage", _("unknown stage: %(stages)s", stages=", ".join(bad)))
            if stages:
                out[key] = stages
        elif value not in (None, ""):
            text = str(value).strip()
            if len(text) > 100:
                raise ValidationFailed(f"filters.{key}", _("at most %(high)s characters", high=100))
            out[key] = text
    return out


def batch(session: Session, actor: Principal, filters: Mapping[str, Any]) -> list[Case]:
    """The caller's own cases matching the filter that a run would take, in priority order: not those past
    placement or off the road, nor those already referred for resettlement (a referral is live)."""
    f = search.CaseFilters(q=filters.get("q", ""), stage=list(filters.get("stage", [])),
                           priority=filters.get("priority", ""), category=filters.get("category", ""),
                           nationality=filters.get("nationality", ""),
                           current_country=filters.get("current_country", ""), relation="owned")
    referred = exists(select(Referral.id).where(Referral.case_id == Case.id, Referral.status.in_(LIVE_REFERRAL),
                                                Referral.purpose == Purpose.resettlement))
    stmt = search.filtered(actor, f).where(Case.owner_org_id == actor.org_id,
                                           Case.stage.not_in([s.value for s in NOT_MATCHED]), ~referred)
    return list(session.scalars(stmt.limit(MAX_BATCH + 1)))


def start_run(session: Session, *, actor: Principal, title: str, filters: Mapping[str, Any],
              year: Any = None) -> Run:
    """Fix the batch (one placement row per case) and queue the solve."""
    policy.require(actor, "match.run.write")
    errors: list[FieldError] = []
    title = _text(title, "title", errors, high=200) or _("Matching run")
    year_n = int(_number(year or clock.now().year, "year", errors, low=2000, high=2100, integer=True))
    if errors:
        raise ValidationFailed(errors=errors)
    clean = clean_filters(filters)
    cases = batch(session, actor, clean)
    if not cases:
        raise ValidationFailed("filters", _("no case of yours that could be matched fits this filter"))
    if len(cases) > MAX_BATCH:
        raise ValidationFailed("filters", _("more than %(high)s cases fit this filter: narrow it", high=MAX_BATCH))
    assert actor.org_id is not None
    run = Run(org_id=actor.org_id, title=title, filters=clean, year=year_n, status=RunStatus.queued,
              cases=len(cases), people=sum(c.size for c in cases), created_by_user_id=actor.user_id,
              created_at=clock.now(), progress=_("Waiting for the worker"))
    session.add(run)
    session.flush()
    facts = case_facts(session, cases)
    session.add_all(Placement(run_id=run.id, case_id=c.id, position=k, number=c.number, people=c.size,
                              priority=c.processing_priority.value, needs=facts[c.id].needs,
                              decision=Decision.proposed) for k, c in enumerate(cases))
    audit.record(session, action="match.run.start", actor=actor, object_type="match_run", object_id=run.id,
                 details={"cases": len(cases), "filters": clean})
    outbox.enqueue(session, "matching.solve", {"run_id": str(run.id)}, org_id=actor.org_id)
    return run


@dataclass
class CaseFacts:
    """What matching reads of a case (the summary, and the owner's own background, needs and ties)."""

    people: int
    adults: int
    nationality: str
    nationalities: set[str]
    languages: set[str]
    education: int
    specific_needs: set[str]
    priority: str
    ties: list[tuple[str, str]]  # (country, city)
    wanted: list[str]
    avoided: list[str]
    setting: str
    needs: dict[str, float] = field(default_factory=dict)

    @property
    def excluded(self) -> set[str]:
        """The countries a case never goes to: any member's country of nationality, and those it avoids."""
        return (self.nationalities | set(self.avoided)) - {""}


def case_facts(session: Session, cases: Sequence[Case]) -> dict[uuid.UUID, CaseFacts]:
    ids = [c.id for c in cases]
    year = clock.now().year
    out: dict[uuid.UUID, CaseFacts] = {}
    for c in cases:
        prefs = c.preferences or {}
        out[c.id] = CaseFacts(people=c.size, adults=0, nationality=c.nationality or "",
                              nationalities={c.nationality} if c.nationality else set(), languages=set(),
                              education=0, specific_needs=set(), priority=c.processing_priority.value, ties=[],
                              wanted=[str(x).upper() for x in prefs.get("countries", [])],
                              avoided=[str(x).upper() for x in prefs.get("avoid", [])],
                              setting=str(prefs.get("setting", "any")))
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for m in session.scalars(select(Member).where(Member.case_id.in_(chunk))):
            f = out[m.case_id]
            if year - m.birth_year >= 18:
                f.adults += 1
                f.education = max(f.education, EDUCATION_LEVEL.get(m.education.value, 0))
            if m.nationality:
                f.nationalities.add(m.nationality)
            f.languages.update(m.languages or [])
            f.specific_needs.update(m.specific_needs or [])
        for t in session.scalars(select(FamilyTie).where(FamilyTie.case_id.in_(chunk))):
            out[t.case_id].ties.append((t.country.upper(), t.city.strip().lower()))
        overrides = session.scalars(select(NeedOverride).where(NeedOverride.case_id.in_(chunk)))
        by_case: dict[uuid.UUID, dict[str, float]] = defaultdict(dict)
        for o in overrides:
            by_case[o.case_id][o.resource] = o.amount
        for case_id in chunk:
            f = out[case_id]
            f.adults = max(f.adults, 1 if f.people else 0)
            f.needs = {**derive_needs(f.people, f.specific_needs), **by_case.get(case_id, {})}
    return out


@dataclass
class Built:
    """A run's problem and what maps it back to records."""

    problem: optimizer.Problem
    placements: list[Placement]
    facts: list[CaseFacts]
    sites: list[Site]
    orgs: dict[uuid.UUID, Organization]
    case_table: Any
    site_table: Any
    scorer: Any  # the one that scored the problem (it also explains its scores)


def sites_for(session: Session, run: Run) -> list[Site]:
    """The sites a run may use: active sites of the other active governments with which the run's organization
    has a data-sharing agreement in force for resettlement (a placement elsewhere could not be referred)."""
    sites = list(session.scalars(
        select(Site).join(Organization, Organization.id == Site.org_id)
        .where(Site.active.is_(True), Site.org_id != run.org_id, Organization.active.is_(True),
               Organization.kind == OrgKind.government)
        .order_by(Site.country, Site.code, Site.id)))
    agreed = {org_id for org_id in {s.org_id for s in sites}
              if sharing.agreement_for(session, run.org_id, org_id, Purpose.resettlement) is not None}
    return [s for s in sites if s.org_id in agreed]


def build(session: Session, run: Run) -> Built:
    """The placement problem of a run, from its cases and the sites, quotas and overrides as they are now."""
    placements = list(session.scalars(select(Placement).where(Placement.run_id == run.id)
                                      .order_by(Placement.position)))
    cases = {c.id: c for c in session.scalars(select(Case).where(Case.id.in_([p.case_id for p in placements])))}
    facts_by_id = case_facts(session, [cases[p.case_id] for p in placements])
    facts = [facts_by_id[p.case_id] for p in placements]
    sites = sites_for(session, run)
    orgs = {o.id: o for o in session.scalars(select(Organization).where(
        Organization.id.in_({s.org_id for s in sites})))} if sites else {}
    n, m = len(facts), len(sites)
    needs = np.array([[f.needs.get(r, 0.0) for r in RESOURCE_ORDER] for f in facts], dtype=float).reshape(n, -1)
    capacity = np.array([[s.capacity(r) for r in RESOURCE_ORDER] for s in sites], dtype=float).reshape(m, -1)
    case_table = scoring.CaseTable.from_rows([_case_row(p, f) for p, f in zip(placements, facts, strict=True)])
    site_table = scoring.SiteTable.from_rows([_site_row(s) for s in sites])
    scorer = scoring.load_scorer()
    scores = scorer.scores(case_table, site_table) if n and m else np.zeros((n, m))
    allowed = np.ones((n, m), dtype=bool)
    country = np.array([s.country for s in sites])
    locality = np.array([s.locality.strip().lower() for s in sites])
    for i, f in enumerate(facts):
        if f.excluded and m:
            allowed[i] &= ~np.isin(country, list(f.excluded))
        if f.ties and m:
            tie_countries = [c for c, _city in f.ties if c not in f.excluded]
            at_city = np.zeros(m, dtype=bool)
            for c, city in f.ties:
                if city:
                    at_city |= (country == c) & (locality == city)
            in_country = np.isin(country, tie_countries)
            if at_city.any():
                allowed[i] &= at_city
            elif in_country.any():
                allowed[i] &= in_country
    weights = np.array([PRIORITY_WEIGHTS.get(f.priority, 1.0) for f in facts], dtype=float)
    extra: dict[str, Any] = {}
    if m:
        groups = sorted({s.org_id for s in sites}, key=str)
        group_of = {g: k for k, g in enumerate(groups)}
        found = {q.org_id: q for q in session.scalars(select(Quota).where(Quota.year == run.year,
                                                                         Quota.org_id.in_(groups)))}
        if found:
            # A government without a quota for the year is limited by its sites alone.
            unlimited = float(capacity[:, 0].sum()) + 1
            extra = {"site_group": np.array([group_of[s.org_id] for s in sites], dtype=np.int64),
                     "group_quota": np.array([found[g].places if g in found else unlimited for g in groups],
                                             dtype=float),
                     "group_reserve": np.array([found[g].emergency_reserve if g in found else 0 for g in groups],
                                               dtype=float),
                     "emergency": np.array([f.priority == "emergency" for f in facts], dtype=bool)}
    problem = optimizer.Problem(np.nan_to_num(scores.astype(float)), allowed, needs, capacity, weights, **extra)
    return Built(problem, placements, facts, sites, orgs, case_table, site_table, scorer)


def _case_row(p: Placement, f: CaseFacts) -> dict[str, str]:
    return {"case_id": p.number, "people": str(f.people), "adults": str(f.adults), "nationality": f.nationality,
            "languages": ";".join(sorted(f.languages)), "education": str(f.education), "priority": f.priority,
            "setting": "" if f.setting == "any" else f.setting,
            "medical": "yes" if f.needs.get("medical", 0) > 0 else "no"}


def _site_row(s: Site) -> dict[str, str]:
    return {"site_id": str(s.id), "country": s.country, "languages": ";".join(s.languages or []),
            "communities": ";".join(s.nationalities or []), "unemployment_rate": f"{s.unemployment_rate:g}",
            "labour_demand": str(s.labour_demand), "setting": s.setting,
            "medical_care": "yes" if s.capacity("medical") > 0 else "no"}


@outbox.handler("matching.solve", max_attempts=2, priority=50)
def _solve_job(ctx: outbox.JobContext) -> None:
    run_id = uuid.UUID(ctx.payload["run_id"])
    with db.new_session() as early:  # shown while it works: its own short transaction
        run = early.get(Run, run_id)
        if run is None or run.status not in (RunStatus.queued, RunStatus.solving):
            return
        run.status, run.progress = RunStatus.solving, _("Building the problem and solving it")
        early.commit()

    def failed(session: Session) -> None:
        row = session.get(Run, run_id)
        if row is not None:
            row.status, row.error, row.finished_at = RunStatus.failed, _("The solve failed; start a new run."), \
                clock.now()

    ctx.on_failure(failed)
    solve_run(ctx.session, run_id)


def solve_run(session: Session, run_id: uuid.UUID) -> Run:
    run = session.get(Run, run_id)
    assert run is not None
    built = build(session, run)
    solution = optimizer.solve(built.problem)
    problem, sites = built.problem, built.sites
    labels = [f"{s.name} ({s.country})" for s in sites]
    scorer = built.scorer
    context = explaining.prepare(problem, solution)
    for i, placement in enumerate(built.placements):
        j = int(solution.assignment[i])
        site = sites[j] if j >= 0 else None
        placement.proposed_site_id = placement.site_id = site.id if site else None
        placement.score = float(problem.scores[i, j]) if site else None
        placement.needs = {r: float(problem.needs[i, k]) for k, r in enumerate(RESOURCE_ORDER)
                           if problem.needs[i, k]}
        placement.explanation = _explanation(built, solution, i, labels, scorer, context)
    used = np.zeros_like(problem.capacity)
    placed = solution.assignment >= 0
    np.add.at(used, solution.assignment[placed], problem.needs[placed])
    run.use = [{"site": str(s.id), "code": s.code, "name": s.name, "country": s.country,
                "capacity": {r: float(problem.capacity[j, k]) for k, r in enumerate(RESOURCE_ORDER)
                             if problem.capacity[j, k]},
                "used": {r: float(used[j, k]) for k, r in enumerate(RESOURCE_ORDER) if used[j, k]}}
               for j, s in enumerate(sites)]
    run.objective, run.bound, run.gap = solution.objective, solution.bound, solution.gap
    run.seconds, run.method = solution.seconds, solution.method
    run.placed = int(placed.sum())
    run.status, run.progress, run.finished_at = RunStatus.proposed, "", clock.now()
    audit.record(session, action="match.run.solved", actor=audit.Actor("worker"), object_type="match_run",
                 object_id=run.id, details={"placed": run.placed, "cases": run.cases, "gap": f"{run.gap:.6f}"})
    return run


def _explanation(built: Built, solution: optimizer.Solution, i: int, labels: list[str], scorer: Any,
                 context: explaining.Context) -> dict[str, Any]:
    def breakdown(case: int, site: int) -> list[Any]:
        return scorer.breakdown(built.case_table, built.site_table, case, site)

    facts = built.facts[i]
    found = explaining.explain(built.problem, solution, i, site_labels=labels, breakdown=breakdown,
                               resources=list(RESOURCE_ORDER), site_countries=[s.country for s in built.sites],
                               excluded_countries=sorted(facts.excluded), case_label=built.placements[i].number,
                               context=context)
    out = explaining.as_dict(found)
    if out.get("alternative"):
        out["alternative"]["site_id"] = str(built.sites[out["alternative"]["site"]].id)
    out["excluded_countries"] = sorted(facts.excluded)
    out["tie_countries"] = sorted({c for c, _city in facts.ties})
    return out


def list_runs(session: Session, actor: Principal, *, page: int = 1, per_page: int = 25) -> Page[Run]:
    policy.require(actor, "match.run.read")
    stmt = policy.scoped(actor, Run).order_by(Run.created_at.desc(), Run.id)
    return paginate(session, stmt, page=page, per_page=per_page)


def placements_of(session: Session, run: Run, *, decision: str = "", q: str = "", page: int = 1,
                  per_page: int = 50) -> Page[Placement]:
    stmt = select(Placement).where(Placement.run_id == run.id)
    if decision in {d.value for d in Decision}:
        stmt = stmt.where(Placement.decision == decision)
    elif decision == "unplaced":
        stmt = stmt.where(Placement.site_id.is_(None))
    if q.strip():
        stmt = stmt.where(Placement.number.like(f"%{q.strip().upper()}%"))
    return paginate(session, stmt.order_by(Placement.position), page=page, per_page=per_page)


def sites_by_id(session: Session, ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, Site]:
    wanted = {i for i in ids if i is not None}
    return {s.id: s for s in session.scalars(select(Site).where(Site.id.in_(wanted)))} if wanted else {}


def placement_of(session: Session, run: Run, placement_id: Any) -> Placement:
    found = session.scalars(select(Placement).where(Placement.run_id == run.id, Placement.id == placement_id)).first()
    if found is None:
        raise policy.NotFound()
    return found


def _open_for_decisions(run: Run) -> None:
    if run.status != RunStatus.proposed:
        raise Conflict(_("this run is not waiting for decisions"))


def decide(session: Session, *, actor: Principal, run: Run, placement: Placement, site_id: Any = None,
           reason: str = "", accept: bool = False) -> Placement:
    """Accept the proposed site, or override it with another site (or none) and a reason."""
    policy.require(actor, "match.run.write", run)
    _open_for_decisions(run)
    if placement.decision == Decision.referred:
        raise Conflict(_("this placement is already referred"))
    errors: list[FieldError] = []
    text = _text(reason, "reason", errors, high=1000)
    if errors:
        raise ValidationFailed(errors=errors)
    if accept:
        placement.decision, placement.site_id = Decision.accepted, placement.proposed_site_id
    else:
        if site_id in (None, "", "none"):
            site = None
        else:
            site = next((s for s in sites_for(session, run) if str(s.id) == str(site_id).strip()), None)
            if site is None:
                raise ValidationFailed("site_id", _("choose one of the sites this run may use (active sites of "
                                                    "governments you have an agreement with)"))
            excluded = set(placement.explanation.get("excluded_countries", []))
            if site.country in excluded:
                raise ValidationFailed("site_id", _("this case may not go to %(country)s (a member's nationality "
                                                    "or a country the family avoids)", country=site.country))
            if site.capacity_people < placement.people:
                raise ValidationFailed("site_id", _("the site has %(capacity)s places, the family is %(people)s",
                                                    capacity=site.capacity_people, people=placement.people))
        if (site.id if site else None) == placement.proposed_site_id:
            placement.decision, placement.site_id = Decision.accepted, placement.proposed_site_id
        else:
            if not text:
                raise ValidationFailed("reason", _("say why you override the proposal"))
            placement.decision, placement.site_id = Decision.overridden, site.id if site else None
    placement.reason = text
    placement.decided_by_user_id, placement.decided_at = actor.user_id, clock.now()
    audit.record(session, action="match.placement.decide", actor=actor, object_type="match_run", object_id=run.id,
                 details={"case": placement.number, "decision": placement.decision.value,
                          "site": str(placement.site_id) if placement.site_id else None})
    return placement


def accept_remaining(session: Session, *, actor: Principal, run: Run) -> int:
    """Accept every placement not reviewed yet that has a proposed site."""
    policy.require(actor, "match.run.write", run)
    _open_for_decisions(run)
    rows = list(session.scalars(select(Placement).where(Placement.run_id == run.id,
                                                        Placement.decision == Decision.proposed,
                                                        Placement.proposed_site_id.is_not(None))))
    now = clock.now()
    for p in rows:
        p.decision, p.site_id, p.decided_by_user_id, p.decided_at = Decision.accepted, p.proposed_site_id, \
            actor.user_id, now
    audit.record(session, action="match.placement.accept_all", actor=actor, object_type="match_run",
                 object_id=run.id, details={"accepted": len(rows)})
    return len(rows)


def confirm(session: Session, *, actor: Principal, run: Run) -> list[Placement]:
    """Refer every accepted or overridden case with a site to the site's government: all of them, or (with
    the first problems named, case by case) none."""
    policy.require(actor, "match.run.write", run)
    _open_for_decisions(run)
    decided = list(session.scalars(select(Placement).where(
        Placement.run_id == run.id, Placement.decision.in_([Decision.accepted, Decision.overridden]),
        Placement.site_id.is_not(None)).order_by(Placement.position)))
    if not decided:
        raise ValidationFailed("placements", _("accept or override at least one placement first"))
    sites = sites_by_id(session, [p.site_id for p in decided])
    errors = _over_capacity(decided, sites)
    referred: list[tuple[Placement, Any]] = []
    for p in decided:
        site = sites[p.site_id]  # type: ignore[index]
        try:
            access = access_case(session, actor, p.case_id)
            agreement = sharing.agreement_for(session, run.org_id, site.org_id, Purpose.resettlement)
            allowed = set(agreement.sections) if agreement else set()
            with session.begin_nested():
                round_ = sharing.refer(
                    session, actor=actor, access=access, recipients=[str(site.org_id)],
                    purpose=Purpose.resettlement, sections=[s.value for s in REFER_SECTIONS if s.value in allowed],
                    note=_("Proposed by matching run \u201c%(title)s\u201d: %(site)s.", title=run.title,
                           site=f"{site.name}, {site.locality}".strip(", ")))
            referred.append((p, round_))
        except ValidationFailed as exc:
            errors.append(FieldError(f"placements.{p.number}", "; ".join(e.message for e in exc.errors)
                                     or exc.detail))
        except policy.NotFound:
            errors.append(FieldError(f"placements.{p.number}", _("the case is no longer yours to refer")))
        if len(errors) >= 20:
            break
    if errors:
        raise ValidationFailed(errors=errors)
    for p, round_ in referred:
        p.referral_id = session.scalar(select(Referral.id).where(Referral.round_id == round_.id))
        p.decision = Decision.referred
    run.status, run.confirmed_by_user_id, run.confirmed_at = RunStatus.confirmed, actor.user_id, clock.now()
    audit.record(session, action="match.run.confirm", actor=actor, object_type="match_run", object_id=run.id,
                 details={"referred": len(referred)})
    return [p for p, _round in referred]


def _over_capacity(decided: list[Placement], sites: Mapping[uuid.UUID, Site]) -> list[FieldError]:
    used: dict[tuple[uuid.UUID, str], float] = defaultdict(float)
    for p in decided:
        for resource, amount in (p.needs or {}).items():
            used[(p.site_id, resource)] += amount  # type: ignore[index]
    errors = []
    for (site_id, resource), amount in sorted(used.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
        site = sites[site_id]
        if amount > site.capacity(resource) + 1e-9:
            errors.append(FieldError(f"sites.{site.code}", _(
                "%(site)s would be over its capacity of %(resource)s: %(used)s of %(capacity)s",
                site=site.name, resource=resource, used=f"{amount:g}", capacity=f"{site.capacity(resource):g}")))
    return errors


# Pictures and comparisons ---------------------------------------------------------------------------------------


def score_histogram(session: Session, run: Run, bins: int = 10) -> list[dict[str, Any]]:
    scores = [s for s in session.scalars(select(Placement.score).where(Placement.run_id == run.id,
                                                                      Placement.score.is_not(None)))]
    if not scores:
        return []
    top = max(scores) or 1.0
    width = top / bins
    counts = [0] * bins
    for s in scores:
        counts[min(bins - 1, int(s / width))] += 1
    return [{"low": k * width, "high": (k + 1) * width, "count": c} for k, c in enumerate(counts)]


def use_by_country(run: Run) -> list[dict[str, Any]]:
    totals: dict[str, dict[str, float]] = defaultdict(lambda: {"capacity": 0.0, "used": 0.0})
    for row in run.use or []:
        t = totals[row["country"]]
        t["capacity"] += row["capacity"].get(PEOPLE, 0.0)
        t["used"] += row["used"].get(PEOPLE, 0.0)
    return [{"country": c, **v, "share": v["used"] / v["capacity"] if v["capacity"] else 0.0}
            for c, v in sorted(totals.items())]


def compare(session: Session, a: Run, b: Run) -> dict[str, Any]:
    """Two runs side by side: their figures, per-country placements, and the cases they place differently."""
    rows_a = {p.case_id: p for p in session.scalars(select(Placement).where(Placement.run_id == a.id))}
    rows_b = {p.case_id: p for p in session.scalars(select(Placement).where(Placement.run_id == b.id))}
    sites = sites_by_id(session, [p.site_id for p in (*rows_a.values(), *rows_b.values())])
    both = rows_a.keys() & rows_b.keys()
    moved = sorted((rows_a[c] for c in both if rows_a[c].site_id != rows_b[c].site_id), key=lambda p: p.number)

    def countries(rows: Mapping[Any, Placement]) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for p in rows.values():
            if p.site_id in sites:
                out[sites[p.site_id].country] += p.people  # type: ignore[index]
        return out

    ca, cb = countries(rows_a), countries(rows_b)
    return {"common": len(both), "only_a": len(rows_a.keys() - both), "only_b": len(rows_b.keys() - both),
            "moved": [(p, sites.get(p.site_id), sites.get(rows_b[p.case_id].site_id)) for p in moved[:200]],
            "moved_count": len(moved),
            "countries": [(c, ca.get(c, 0), cb.get(c, 0)) for c in sorted(set(ca) | set(cb))]}

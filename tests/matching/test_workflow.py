"""Matching in the platform: sites and quotas kept by their government, a run over a batch of the agency's
cases solved by the worker within every capacity, exclusion and tie, officers' decisions, and confirmation
that refers every decided case or none."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from rdn.cases.models import Case, Referral, ReferralStatus
from rdn.core import outbox, policy
from rdn.core.errors import Conflict, ValidationFailed
from rdn.matching import service
from rdn.matching.models import Decision, NeedOverride, Placement, Run, RunStatus, Site
from tests.cases.conftest import CasesWorld, household


def run_jobs() -> int:
    return outbox.Worker().run_until_idle()


def site(w: CasesWorld, gov: str, code: str, people: int, *, locality: str = "", **resources: float) -> Site:
    org = w.net.orgs[gov]
    row = Site(org_id=org.id, code=code, name=f"{code} centre", country=org.country, locality=locality,
               capacity_people=people, resources={"caseworker_hours": 500.0, **resources},
               languages=["en", "prs"], nationalities=["AF"], unemployment_rate=5.0, labour_demand=2)
    w.session.add(row)
    w.session.flush()
    return row


@pytest.fixture
def sites(cases_world: CasesWorld) -> dict[str, Site]:
    w = cases_world
    return {"TOR": site(w, "canada", "TOR", 9, locality="Toronto", medical=1),
            "MTL": site(w, "canada", "MTL", 6, locality="Montréal"),
            "MAD": site(w, "spain", "MAD", 8, locality="Madrid", large_family=1),
            "BER": site(w, "germany", "BER", 7, locality="Berlin", medical=2, large_family=1)}


def _solve(w: CasesWorld, **filters: Any) -> Run:
    run = service.start_run(w.session, actor=w.p("caseworker_unhcr"), title="Test run", filters=filters)
    w.session.commit()
    assert run_jobs() >= 1
    w.session.refresh(run)
    return run


def _placements(w: CasesWorld, run: Run) -> list[Placement]:
    return list(w.session.scalars(select(Placement).where(Placement.run_id == run.id)
                                  .order_by(Placement.position)))


def test_sites_and_quotas_are_kept_by_their_own_government(cases_world: CasesWorld) -> None:
    w = cases_world
    data = {"code": "HFX", "name": "Halifax", "capacity_people": "40", "resources": {"medical": "3"},
            "languages": "en, ar", "nationalities": "SY"}
    created = service.create_site(w.session, actor=w.p("admin_canada"), data=data)
    assert (created.country, created.capacity_people, created.resources) == ("CA", 40, {"medical": 3.0})
    assert created.languages == ["en", "ar"] and created.nationalities == ["SY"]
    # Everyone on staff sees it; only Canada's keepers change it; the agency cannot add sites.
    assert service.list_sites(w.session, w.p("minister_spain")).total >= 1
    with pytest.raises(policy.NotFound):
        service.update_site(w.session, actor=w.p("minister_spain"), site=created, data={"capacity_people": 1})
    with pytest.raises(policy.Forbidden):
        service.create_site(w.session, actor=w.p("caseworker_unhcr"), data=data)
    with pytest.raises(policy.Forbidden):
        service.list_sites(w.session, w.p("sponsor_group_a"))
    # A bad row names its fields and creates nothing.
    before = w.session.scalar(select(func.count()).select_from(Site))
    with pytest.raises(ValidationFailed) as bad:
        service.create_site(w.session, actor=w.p("officer_canada"),
                            data={"code": "X", "name": "X", "capacity_people": "-3", "resources": {"spa": 2}})
    assert {e.field for e in bad.value.errors} == {"capacity_people", "resources.spa"}
    assert w.session.scalar(select(func.count()).select_from(Site)) == before
    with pytest.raises(ValidationFailed) as dup:
        service.create_site(w.session, actor=w.p("officer_canada"), data=data)
    assert dup.value.errors[0].field == "code"
    quota = service.set_quota(w.session, actor=w.p("officer_canada"), year=2027, places=100, emergency_reserve=10)
    assert (quota.places, quota.emergency_reserve) == (100, 10)
    with pytest.raises(ValidationFailed) as over:
        service.set_quota(w.session, actor=w.p("officer_canada"), year=2027, places=5, emergency_reserve=10)
    assert over.value.errors[0].field == "emergency_reserve"
    rows = service.quotas(w.session, w.p("caseworker_unhcr"), 2027)
    assert [(o.name, q.places) for o, q in rows] == [("Canada", 100)]


def test_needs_are_derived_from_the_case_and_overridable_with_a_reason(cases_world: CasesWorld) -> None:
    w = cases_world
    members = household(size=7)
    members[0]["specific_needs"] = "serious_medical_condition; disability"
    case = w.open_case(members=members)
    facts = service.case_facts(w.session, [case])[case.id]
    assert facts.needs["people"] == 7 and facts.needs["large_family"] == 1
    assert facts.needs["medical"] == 1 and facts.needs["accessible"] == 1
    assert facts.needs["caseworker_hours"] == 2 + 0.5 * 7 + 4
    assert facts.excluded == {"AF"}  # the members' nationality
    with pytest.raises(ValidationFailed) as missing:
        service.override_need(w.session, actor=w.p("caseworker_unhcr"), case_id=case.id, resource="medical",
                              amount="0", reason="")
    assert missing.value.errors[0].field == "reason"
    service.override_need(w.session, actor=w.p("caseworker_unhcr"), case_id=case.id, resource="medical",
                          amount="0", reason="Treated; follow-up only")
    assert service.case_facts(w.session, [case])[case.id].needs["medical"] == 0
    # Someone the case is not shared with gets the same 404 as for a missing case.
    with pytest.raises(policy.NotFound):
        service.override_need(w.session, actor=w.p("officer_canada"), case_id=case.id, resource="medical",
                              amount="1", reason="x")
    service.override_need(w.session, actor=w.p("caseworker_unhcr"), case_id=case.id, resource="medical",
                          amount="", reason="")
    assert w.session.get(NeedOverride, (case.id, "medical")) is None


def test_a_run_places_its_batch_within_every_capacity_exclusion_and_tie(
        cases_world: CasesWorld, sites: dict[str, Site]) -> None:
    w = cases_world
    plain = [w.open_case(members=household(size=s)) for s in (2, 3, 4, 1, 2)]
    spanish = w.open_case(members=household(size=3, nationality="ES"))  # never to Spain
    avoiding = w.open_case(members=household(size=2), )
    avoiding.preferences = {"avoid": ["CA"], "countries": [], "setting": "any"}
    tied = service_case_with_tie(w, "DE", "Berlin")
    big = w.open_case(members=household(size=7))  # a large family: MAD or BER
    sick_members = household(size=2)
    sick_members[0]["specific_needs"] = "serious_medical_condition"
    sick = w.open_case(members=sick_members)  # medical: TOR or BER
    other_owner = w.open_case("officer_canada", members=household(size=2))  # not the agency's: not in the batch
    w.session.flush()
    run = _solve(w)
    assert run.status == RunStatus.proposed and run.cases == 10 and run.error == ""
    placements = {p.case_id: p for p in _placements(w, run)}
    assert other_owner.id not in placements
    by_id = {s.id: s for s in sites.values()}
    used: dict[Any, float] = {}
    for p in placements.values():
        if p.site_id is None:
            continue
        used[p.site_id] = used.get(p.site_id, 0) + p.people
        assert p.site_id == p.proposed_site_id and p.decision == Decision.proposed
        assert by_id[p.site_id].country not in p.explanation["excluded_countries"]
    assert all(used[s] <= by_id[s].capacity_people for s in used)
    assert by_id[placements[spanish.id].site_id].country != "ES" if placements[spanish.id].site_id else True
    if placements[avoiding.id].site_id:
        assert by_id[placements[avoiding.id].site_id].country != "CA"
    assert placements[tied.id].site_id in (None, sites["BER"].id)
    assert placements[big.id].site_id in (None, sites["MAD"].id, sites["BER"].id)
    assert placements[sick.id].site_id in (None, sites["TOR"].id, sites["BER"].id)
    # The capacities hold 30 people and the batch is 28: the exact optimum places nearly everyone.
    assert run.placed >= 8 and run.gap == pytest.approx(0, abs=1e-9)
    assert run.objective == pytest.approx(sum(p.score * service.PRIORITY_WEIGHTS[p.priority]
                                              for p in placements.values() if p.score is not None))
    # Each placement explains itself: the score's breakdown, and the best alternative with why not.
    explained = placements[plain[0].id].explanation
    assert explained["placed"] and explained["breakdown"] and explained["alternative"]["reasons"]
    use = {u["code"]: u for u in run.use}
    assert use["TOR"]["used"].get("people", 0) == used.get(sites["TOR"].id, 0)


def service_case_with_tie(w: CasesWorld, country: str, city: str) -> Case:
    from rdn.cases import service as cases

    return cases.create_case(w.session, actor=w.p("caseworker_unhcr"),
                             case={"current_country": "PK", "category_primary": "FAM", "category_secondary": "LAS",
                                   "processing_priority": "normal", "submission_priority": "normal"},
                             members=household(size=2),
                             family_ties=[{"country": country, "city": city, "relationship": "brother"}])


def test_officers_accept_or_override_with_a_reason_and_confirming_refers_all_or_none(
        cases_world: CasesWorld, sites: dict[str, Site]) -> None:
    w = cases_world
    cases = [w.open_case(members=household(size=2)) for _ in range(3)]
    run = _solve(w)
    first, second, third = (p for p in _placements(w, run))
    actor = w.p("caseworker_unhcr")
    assert all(p.site_id for p in (first, second, third))
    # Canada's officer cannot reach the agency's run: the same 404 as a missing one.
    with pytest.raises(policy.NotFound):
        policy.access(w.session, w.p("officer_canada"), Run, run.id, "match.run.read")
    service.decide(w.session, actor=actor, run=run, placement=first, accept=True)
    assert first.decision == Decision.accepted and first.site_id == first.proposed_site_id
    target = next(s for s in sites.values() if s.id != second.proposed_site_id and s.country != "ES")
    with pytest.raises(ValidationFailed) as no_reason:
        service.decide(w.session, actor=actor, run=run, placement=second, site_id=str(target.id))
    assert no_reason.value.errors[0].field == "reason"
    afghan_country = Site(org_id=w.net.orgs["canada"].id, code="KBL", name="Nowhere", country="AF",
                          capacity_people=50)  # a site in the members' country of nationality
    w.session.add(afghan_country)
    w.session.flush()
    with pytest.raises(ValidationFailed) as bad_site:
        service.decide(w.session, actor=actor, run=run, placement=second, site_id=str(afghan_country.id),
                       reason="x")
    assert bad_site.value.errors[0].field == "site_id"
    service.decide(w.session, actor=actor, run=run, placement=second, site_id=str(target.id),
                   reason="A brother lives nearby")
    assert (second.decision, second.site_id, second.reason) == (Decision.overridden, target.id,
                                                                 "A brother lives nearby")
    assert service.accept_remaining(w.session, actor=actor, run=run) == 1
    # No consent recorded for any of them: nothing is referred, and each case is named.
    before = w.session.scalar(select(func.count()).select_from(Referral))
    with pytest.raises(ValidationFailed) as refused, w.session.begin_nested():
        service.confirm(w.session, actor=actor, run=run)
    assert {e.field for e in refused.value.errors} == {f"placements.{c.number}" for c in cases}
    assert "consent" in refused.value.errors[0].message
    assert w.session.scalar(select(func.count()).select_from(Referral)) == before
    assert run.status == RunStatus.proposed
    by_site = {s.id: s for s in sites.values()}
    gov_of = {o.id: key for key, o in w.net.orgs.items()}
    for p, case in zip((first, second, third), cases, strict=True):
        w.consent(case, gov_of[by_site[p.site_id].org_id])
    referred = service.confirm(w.session, actor=actor, run=run)
    assert len(referred) == 3 and run.status == RunStatus.confirmed
    for p in (first, second, third):
        referral = w.session.get(Referral, p.referral_id)
        assert referral is not None and referral.status == ReferralStatus.pending
        assert referral.recipient_org_id == by_site[p.site_id].org_id and p.decision == Decision.referred
    with pytest.raises(Conflict):
        service.confirm(w.session, actor=actor, run=run)


def test_confirming_beyond_a_sites_capacity_is_refused(cases_world: CasesWorld, sites: dict[str, Site]) -> None:
    w = cases_world
    for _ in range(3):
        w.open_case(members=household(size=3))
    run = _solve(w)
    actor = w.p("caseworker_unhcr")
    small = sites["MTL"]  # 6 places: three families of three do not fit
    for p in _placements(w, run):
        if p.site_id != small.id:
            service.decide(w.session, actor=actor, run=run, placement=p, site_id=str(small.id), reason="Test")
        else:
            service.decide(w.session, actor=actor, run=run, placement=p, accept=True)
    with pytest.raises(ValidationFailed) as over:
        service.confirm(w.session, actor=actor, run=run)
    assert over.value.errors[0].field == "sites.MTL" and "9 of 6" in over.value.errors[0].message


def test_runs_are_compared_case_by_case(cases_world: CasesWorld, sites: dict[str, Site]) -> None:
    w = cases_world
    for size in (2, 3, 2):
        w.open_case(members=household(size=size))
    a = _solve(w)
    sites["TOR"].active = False  # the second run cannot use Toronto
    w.session.flush()
    b = _solve(w)
    result = service.compare(w.session, a, b)
    moved_from_toronto = sum(1 for p in _placements(w, a) if p.site_id == sites["TOR"].id)
    assert result["common"] == 3 and result["moved_count"] >= moved_from_toronto
    totals_a = {c: pa for c, pa, _pb in result["countries"]}
    assert sum(totals_a.values()) == sum(p.people for p in _placements(w, a) if p.site_id)


def test_an_empty_batch_is_refused_with_the_filter_named(cases_world: CasesWorld) -> None:
    w = cases_world
    with pytest.raises(ValidationFailed) as empty:
        service.start_run(w.session, actor=w.p("caseworker_unhcr"), title="", filters={"nationality": "SY"})
    assert empty.value.errors[0].field == "filters"
    with pytest.raises(ValidationFailed) as bad:
        service.start_run(w.session, actor=w.p("caseworker_unhcr"), title="", filters={"stage": ["nowhere"]})
    assert bad.value.errors[0].field == "filters.stage"
    assert w.session.scalar(select(func.count()).select_from(Run)) == 0
    with pytest.raises(policy.Forbidden):
        service.start_run(w.session, actor=w.p("analyst_ec"), title="", filters={})


def test_scores_respect_the_scorer(cases_world: CasesWorld, sites: dict[str, Site]) -> None:
    """The problem a run solves carries the scorer's scores and the hard constraints as data."""
    w = cases_world
    w.open_case(members=household(size=2))
    w.open_case(members=household(size=2, nationality="DE"))
    run = service.start_run(w.session, actor=w.p("caseworker_unhcr"), title="", filters={})
    built = service.build(w.session, run)
    assert built.problem.scores.shape == (2, 4) and np.isfinite(built.problem.scores).all()
    germany = [k for k, s in enumerate(built.sites) if s.country == "DE"]
    assert not built.problem.allowed[1, germany].any() and built.problem.allowed[0].all()


def test_a_governments_quota_and_its_emergency_reserve_hold(cases_world: CasesWorld, sites: dict[str, Site]) -> None:
    w = cases_world
    for code in ("MAD", "BER"):
        sites[code].active = False  # Canada's two sites alone: 15 places
    service.set_quota(w.session, actor=w.p("officer_canada"), year=2027, places=6, emergency_reserve=3)
    normal = [w.open_case(members=household(size=3), processing_priority="normal") for _ in range(2)]
    emergency = w.open_case(members=household(size=3), processing_priority="emergency")
    w.session.flush()
    run = service.start_run(w.session, actor=w.p("caseworker_unhcr"), title="Quota", filters={}, year=2027)
    w.session.commit()
    run_jobs()
    w.session.refresh(run)
    placed = {p.case_id: p for p in _placements(w, run) if p.site_id is not None}
    # Six places in all, three of them kept for emergencies: the emergency family and one other.
    assert emergency.id in placed
    assert sum(1 for c in normal if c.id in placed) == 1
    assert sum(p.people for p in placed.values()) == 6
    unplaced = next(p for p in _placements(w, run) if p.site_id is None)
    assert unplaced.explanation["placed"] is False

"""The network picture's figures equal what the records say.

Each test writes its own records (cases, referrals, stage changes, quotas, needs, crisis pledges, obstacle
blocks) straight into the database and computes every expected figure itself, in plain Python over those records,
following the definitions of rdn.reports.figures' docstring; only ``compute`` and the period helpers of the module
under test are used. A few headline numbers are also written out by hand, so that the test's own arithmetic is
checked too. The clock is frozen wherever "now" matters.
"""

from __future__ import annotations

import itertools
import statistics
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rdn.cases import pipeline
from rdn.cases.models import (
    Agreement,
    AgreementStatus,
    Case,
    Category,
    Priority,
    Purpose,
    Referral,
    ReferralRound,
    ReferralStatus,
    RoundMode,
    StageEvent,
)
from rdn.config import get_settings, set_settings
from rdn.core import clock, outbox
from rdn.core.tenancy import Organization, OrgKind
from rdn.matching.models import Quota
from rdn.pathways.models import Block, Obstacle, ObstacleStatus, ObstacleType, Severity
from rdn.redphone.models import ActivationLevel, Crisis, CrisisStatus, Pledge, PledgeStatus
from rdn.reports import service
from rdn.reports.figures import compute, parse_period, quarter_period, year_period
from rdn.reports.models import Need, Snapshot
from tests.factories import Network

GOVS = ("canada", "spain", "germany")
#: UNHCR's regions in the order the picture lists them, and the region of each country of asylum used here.
REGION_ORDER = ["east_horn_great_lakes", "southern_africa", "west_central_africa", "americas", "asia_pacific",
                "europe", "mena"]
REGION = {"PK": "asia_pacific", "LB": "mena", "TR": "europe", "UG": "east_horn_great_lakes", "IR": "mena",
          "CO": "americas", "JO": "mena", "AQ": "other"}
ACCEPTED = {ReferralStatus.accepted, ReferralStatus.done}
LIVE = {ReferralStatus.pending, ReferralStatus.in_progress, ReferralStatus.accepted, ReferralStatus.done}
KEPT = {PledgeStatus.confirmed, PledgeStatus.fulfilled}
SIX_MONTHS = timedelta(days=183)


def at(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=UTC)


@contextmanager
def frozen(when: datetime) -> Iterator[None]:
    with clock.frozen(when):
        yield


# Writing records ----------------------------------------------------------------------------------------------


class World:
    """The records a test writes, kept so that the test can count them itself."""

    def __init__(self, session: Session, net: Network) -> None:
        self.s = session
        self.net = net
        self.orgs = net.orgs
        self.cases: list[Case] = []
        self.referrals: list[Referral] = []
        self.events: list[StageEvent] = []
        self.pledges: list[tuple[Crisis, Pledge]] = []
        self.crises: list[Crisis] = []
        self.quotas: list[Quota] = []
        self.needs: list[Need] = []
        self.obstacles: list[Obstacle] = []
        self.blocks: list[Block] = []
        self._agreements: dict[tuple[uuid.UUID, uuid.UUID], Agreement] = {}

    def id(self, key: str) -> uuid.UUID:
        return self.orgs[key].id

    @property
    def gov_ids(self) -> set[uuid.UUID]:
        return {self.id(k) for k in GOVS}

    def agreement(self, provider: uuid.UUID, recipient: uuid.UUID) -> Agreement:
        key = (provider, recipient)
        if key not in self._agreements:
            a = Agreement(provider_org_id=provider, recipient_org_id=recipient, title="Test agreement",
                          purposes=[p.value for p in Purpose], sections=["identity", "needs"],
                          status=AgreementStatus.active, proposed_by_org_id=provider, decided_at=at(2024, 1, 1))
            self.s.add(a)
            self.s.flush()
            self._agreements[key] = a
        return self._agreements[key]

    def case(self, *, owner: str = "unhcr", nationality: str | None = "AF", country: str = "PK", size: int = 1,
             priority: Priority = Priority.normal, stage: str = "submitted", stage_due_at: datetime | None = None,
             submitted_at: datetime | None = None, departed_at: datetime | None = None,
             arrived_at: datetime | None = None) -> Case:
        c = Case(owner_org_id=self.id(owner), number=f"T-{len(self.cases) + 1:04d}", nationality=nationality,
                 size=size, current_country=country, category_primary=Category.LPN, category_secondary=Category.LAS,
                 processing_priority=priority, submission_priority=priority, stage=stage, stage_since=at(2024, 1, 1),
                 opened_at=at(2024, 1, 1), submitted_at=submitted_at, departed_at=departed_at,
                 arrived_at=arrived_at, stage_due_at=stage_due_at, created_at=at(2024, 1, 1),
                 updated_at=at(2024, 1, 1))
        self.s.add(c)
        self.s.flush()
        self.cases.append(c)
        return c

    def refer(self, case: Case, to: str, status: ReferralStatus, created: datetime, *,
              updated: datetime | None = None, purpose: Purpose = Purpose.resettlement) -> Referral:
        sender = case.owner_org_id
        rnd = ReferralRound(case_id=case.id, sender_org_id=sender, mode=RoundMode.parallel, purpose=purpose,
                            sections=["identity"], recipients=[str(self.id(to))], created_at=created)
        self.s.add(rnd)
        self.s.flush()
        r = Referral(round_id=rnd.id, case_id=case.id, sender_org_id=sender, recipient_org_id=self.id(to),
                     agreement_id=self.agreement(sender, self.id(to)).id, purpose=purpose, sections=["identity"],
                     status=status, created_at=created, updated_at=updated or created)
        self.s.add(r)
        self.s.flush()
        self.referrals.append(r)
        return r

    def move(self, case: Case, to_stage: str, when: datetime, from_stage: str | None = None) -> StageEvent:
        e = StageEvent(case_id=case.id, from_stage=from_stage, to_stage=to_stage, at=when, actor_label="tests")
        self.s.add(e)
        self.events.append(e)
        return e

    def quota(self, gov: str, year: int, places: int, emergency: int) -> None:
        q = Quota(org_id=self.id(gov), year=year, places=places, emergency_reserve=emergency, updated_at=at(2025, 1, 1))
        self.s.add(q)
        self.quotas.append(q)

    def need(self, year: int, population: str, people: int, source: str, *, nationality: str | None = None,
             region: str = "") -> None:
        n = Need(year=year, population=population, nationality=nationality, region=region, people=people,
                 source=source)
        self.s.add(n)
        self.needs.append(n)

    def crisis(self, reference: str, declared: datetime, *, exercise: bool = False,
               status: CrisisStatus = CrisisStatus.active, target: int | None = None) -> Crisis:
        c = Crisis(reference=reference, title=f"Crisis {reference}", countries=["SD"], target_places=target,
                   activation_level=ActivationLevel.full_activation, status=status, exercise=exercise,
                   declared_by_user_id=self.net.admin_secretariat.id, declared_by_org_id=self.id("secretariat"),
                   declared_at=declared, updated_at=declared)
        self.s.add(c)
        self.s.flush()
        self.crises.append(c)
        return c

    def pledge(self, crisis: Crisis, gov: str, places: int, status: PledgeStatus, created: datetime) -> None:
        p = Pledge(crisis_id=crisis.id, org_id=self.id(gov), places=places, status=status, created_at=created,
                   updated_at=created)
        self.s.add(p)
        self.pledges.append((crisis, p))

    def obstacle(self, title: str, country: str, status: ObstacleStatus) -> Obstacle:
        o = Obstacle(country=country, type=ObstacleType.exit_fee, title=title, severity=Severity.high, status=status,
                     reported_by_org_id=self.id("unhcr"), created_at=at(2025, 1, 1), updated_at=at(2025, 1, 1))
        self.s.add(o)
        self.s.flush()
        self.obstacles.append(o)
        return o

    def block(self, obstacle: Obstacle, case: Case, item: str = "exit_permit", *,
              released: datetime | None = None) -> None:
        b = Block(obstacle_id=obstacle.id, case_id=case.id, item=item, owner_org_id=case.owner_org_id,
                  people=case.size, blocked_at=at(2026, 1, 5), released_at=released,
                  release_reason="unblocked" if released else "")
        self.s.add(b)
        self.blocks.append(b)

    def done(self) -> None:
        self.s.flush()


# Counting them again, in plain Python -------------------------------------------------------------------------


def destination(w: World, c: Case) -> uuid.UUID | None:
    """The government a case goes to: its latest accepted resettlement referral, else its owner if a government."""
    accepted = [r for r in w.referrals if r.case_id == c.id and r.purpose == Purpose.resettlement
                and r.status in ACCEPTED]
    if accepted:
        return max(accepted, key=lambda r: r.updated_at).recipient_org_id
    return c.owner_org_id if c.owner_org_id in w.gov_ids else None


def in_period(value: datetime | None, start: datetime, end: datetime) -> bool:
    return value is not None and start <= value < end


def bounds(period: Any) -> tuple[datetime, datetime]:
    return (datetime(period.start.year, period.start.month, period.start.day, tzinfo=UTC),
            datetime(period.end.year, period.end.month, period.end.day, tzinfo=UTC))


def expected_flows(w: World, period: Any, government: uuid.UUID | None = None) -> dict[str, Any]:
    """Referred, accepted, departed and arrived, per key ("all", ("nat", x), ("reg", x), ("gov", x)) as
    {case id: people}, and the months."""
    start, end = bounds(period)
    referred: dict[Any, dict[uuid.UUID, int]] = defaultdict(dict)
    accepted: dict[Any, dict[uuid.UUID, int]] = defaultdict(dict)
    departed: dict[Any, dict[uuid.UUID, int]] = defaultdict(dict)
    arrived: dict[Any, dict[uuid.UUID, int]] = defaultdict(dict)
    month_referred: dict[str, dict[uuid.UUID, int]] = defaultdict(dict)
    month_departed: dict[str, int] = defaultdict(int)
    month_arrived: dict[str, int] = defaultdict(int)
    cases = {c.id: c for c in w.cases}
    for r in w.referrals:
        c = cases[r.case_id]
        if r.purpose != Purpose.resettlement or r.recipient_org_id not in w.gov_ids:
            continue
        if not in_period(r.created_at, start, end) or (government and r.recipient_org_id != government):
            continue
        for key in ("all", ("nat", c.nationality or ""), ("reg", REGION[c.current_country]),
                    ("gov", r.recipient_org_id)):
            referred[key][c.id] = c.size
            if r.status in ACCEPTED:
                accepted[key][c.id] = c.size
        month_referred[r.created_at.strftime("%Y-%m")][c.id] = c.size
    for c in w.cases:
        to = destination(w, c)
        if government and to != government:
            continue
        keys = ("all", ("nat", c.nationality or ""), ("reg", REGION[c.current_country]), ("gov", to))
        if in_period(c.departed_at, start, end):
            for key in keys:
                departed[key][c.id] = c.size
            month_departed[c.departed_at.strftime("%Y-%m")] += c.size  # type: ignore[union-attr]
        if in_period(c.arrived_at, start, end):
            for key in keys:
                arrived[key][c.id] = c.size
            month_arrived[c.arrived_at.strftime("%Y-%m")] += c.size  # type: ignore[union-attr]
    return {"referred": referred, "accepted": accepted, "departed": departed, "arrived": arrived,
            "month_referred": month_referred, "month_departed": month_departed, "month_arrived": month_arrived}


def people(tally: dict[Any, dict[uuid.UUID, int]], key: Any) -> int:
    return sum(tally.get(key, {}).values())


def n_cases(tally: dict[Any, dict[uuid.UUID, int]], key: Any) -> int:
    return len(tally.get(key, {}))


def share(part: int, whole: int | None, digits: int) -> float | None:
    return round(100.0 * part / whole, digits) if whole else None


def expected_view(w: World, period: Any, government: uuid.UUID | None = None, *,
                  now: datetime) -> dict[str, Any]:
    """headline, by_government (by short name), by_population (by nationality), by_region (in order), months."""
    f = expected_flows(w, period, government)
    ref, acc, dep, arr = f["referred"], f["accepted"], f["departed"], f["arrived"]
    start, end = bounds(period)
    year_needs = [n for n in w.needs if n.year == period.year]
    quotas = {q.org_id: q for q in w.quotas if q.year == period.year}
    pledged: dict[uuid.UUID, int] = defaultdict(int)
    for crisis, p in w.pledges:
        if not crisis.exercise and p.status in KEPT and in_period(p.created_at, start, end):
            pledged[p.org_id] += p.places

    govs = [o for o in w.orgs.values() if o.kind == OrgKind.government and (government is None or o.id == government)]
    by_government = {}
    for org in govs:
        key = ("gov", org.id)
        quota = quotas.get(org.id)
        by_government[org.short_name] = {
            "government": org.name, "short_name": org.short_name, "country": org.country or "",
            "places": quota.places if quota else 0, "emergency": quota.emergency_reserve if quota else 0,
            "pledged": pledged.get(org.id, 0), "referred_cases": n_cases(ref, key), "referred": people(ref, key),
            "accepted": people(acc, key), "departed": people(dep, key), "arrived": people(arr, key)}

    nat_need = {n.nationality: n for n in year_needs if n.nationality}
    nats = set(nat_need) | {k[1] for t in (ref, acc, dep, arr) for k in t if isinstance(k, tuple) and k[0] == "nat"}
    by_population = {}
    for nat in nats:
        key, need = ("nat", nat), nat_need.get(nat)
        by_population[nat] = {
            "population": need.population if need else "", "nationality": nat,
            "need": need.people if need else None, "source": need.source if need else "",
            "referred_cases": n_cases(ref, key), "referred": people(ref, key), "accepted": people(acc, key),
            "departed": people(dep, key), "arrived": people(arr, key),
            "share": share(people(dep, key), need.people if need else None, 2)}

    region_need = {n.region: n for n in year_needs if n.region and n.scope == "region"}
    by_region = []
    for region in [*REGION_ORDER, "other"]:
        key, need = ("reg", region), region_need.get(region)
        row = {"region": region, "need": need.people if need else None, "source": need.source if need else "",
               "referred_cases": n_cases(ref, key), "referred": people(ref, key), "accepted": people(acc, key),
               "departed": people(dep, key), "arrived": people(arr, key)}
        row["share"] = share(row["departed"], row["need"], 2)
        by_region.append(row)

    months = []
    y, m = period.start.year, period.start.month
    last = min(now, end)
    while date(y, m, 1) < period.end and date(y, m, 1) <= last.date():
        key = f"{y}-{m:02d}"
        months.append({"month": key, "referred": sum(f["month_referred"].get(key, {}).values()),
                       "departed": f["month_departed"].get(key, 0), "arrived": f["month_arrived"].get(key, 0)})
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)

    total = next((n for n in year_needs if not n.nationality and not n.region), None)
    mine = [q for q in quotas.values() if government is None or q.org_id == government]
    headline = {
        "need": total.people if total else (sum(n.people for n in nat_need.values()) or None),
        "need_source": total.source if total else "",
        "places": sum(q.places for q in mine), "emergency": sum(q.emergency_reserve for q in mine),
        "pledged": sum(v for k, v in pledged.items() if government is None or k == government),
        "referred_cases": n_cases(ref, "all"), "referred": people(ref, "all"), "accepted": people(acc, "all"),
        "departed_cases": n_cases(dep, "all"), "departed": people(dep, "all"), "arrived": people(arr, "all"),
    }
    return {"headline": headline, "by_government": by_government, "by_population": by_population,
            "by_region": by_region, "months": months,
            "sources": sorted({n.source for n in year_needs})}


def assert_view(data: dict[str, Any], expected: dict[str, Any]) -> None:
    assert data["headline"] == expected["headline"]
    assert {r["short_name"]: r for r in data["by_government"]} == expected["by_government"]
    assert len(data["by_government"]) == len(expected["by_government"])
    assert {r["nationality"]: r for r in data["by_population"]} == expected["by_population"]
    assert len(data["by_population"]) == len(expected["by_population"])
    assert data["by_region"] == expected["by_region"]
    assert data["months"] == expected["months"]
    assert data["sources"] == expected["sources"]


# The network's flows ------------------------------------------------------------------------------------------


def flows_world(session: Session, network: Network) -> World:
    """Cases referred, accepted, departed and arrived around 2026, with quotas, needs and crisis pledges."""
    w = World(session, network)
    # A: Afghan family of four in Pakistan, referred to Canada (accepted) and Spain (rejected) in February;
    # departed in May, arrived the next day: Canada's.
    a = w.case(nationality="AF", country="PK", size=4, departed_at=at(2026, 5, 1, 10), arrived_at=at(2026, 5, 2, 8))
    w.refer(a, "canada", ReferralStatus.accepted, at(2026, 2, 10), updated=at(2026, 3, 1))
    w.refer(a, "spain", ReferralStatus.rejected, at(2026, 2, 10), updated=at(2026, 2, 20))
    # B: referred to (and accepted by) Spain the year before; departed at the very start of 2026.
    b = w.case(nationality="SY", country="LB", size=2, departed_at=at(2026, 1, 1), arrived_at=at(2026, 1, 3))
    w.refer(b, "spain", ReferralStatus.accepted, at(2025, 12, 20), updated=at(2025, 12, 28))
    # C: referred to Germany, still pending.
    c = w.case(nationality="SY", country="TR", size=3)
    w.refer(c, "germany", ReferralStatus.pending, at(2026, 3, 5))
    # D: referred to Canada and Germany, both accepted; Germany's acceptance is the later one: Germany's case.
    # Departed in the last second of 2026, arrived at the first of 2027 (not counted).
    d = w.case(nationality="SS", country="UG", size=5, departed_at=at(2026, 12, 31, 23, 59, 59),
               arrived_at=at(2027, 1, 1))
    w.refer(d, "canada", ReferralStatus.accepted, at(2026, 4, 1), updated=at(2026, 4, 5))
    w.refer(d, "germany", ReferralStatus.done, at(2026, 6, 1), updated=at(2026, 6, 10))
    # E: Canada's own case, departed the second before 2026 (not counted), arrived in January.
    w.case(owner="canada", nationality="AF", country="PK", size=1, departed_at=at(2025, 12, 31, 23, 59, 59),
           arrived_at=at(2026, 1, 2))
    # F: referred just before the year and at its end: neither referral counts.
    f = w.case(nationality="AF", country="IR", size=2)
    w.refer(f, "canada", ReferralStatus.pending, at(2025, 12, 31, 23, 59, 59))
    w.refer(f, "germany", ReferralStatus.in_progress, at(2027, 1, 1))
    # G: a family-reunification referral is not a resettlement referral.
    g = w.case(nationality="VE", country="CO", size=3)
    w.refer(g, "spain", ReferralStatus.accepted, at(2026, 5, 5), purpose=Purpose.family_reunification)
    # H: Canada's case referred to the agency: not a government.
    h = w.case(owner="canada", nationality="AF", country="PK", size=6)
    w.refer(h, "unhcr", ReferralStatus.pending, at(2026, 3, 1))
    # I: referred to Spain twice in the year (rejected, then accepted): one case for Spain.
    i = w.case(nationality="SY", country="JO", size=2)
    w.refer(i, "spain", ReferralStatus.rejected, at(2026, 7, 1), updated=at(2026, 7, 2))
    w.refer(i, "spain", ReferralStatus.accepted, at(2026, 9, 1), updated=at(2026, 9, 3))

    w.quota("canada", 2026, 1000, 100)
    w.quota("spain", 2026, 500, 50)
    w.quota("germany", 2025, 800, 80)  # another year's quota
    w.need(2026, "All populations", 2_000_000, "S1")
    w.need(2026, "Afghan", 500_000, "S2", nationality="AF")
    w.need(2026, "Syrian", 300_000, "S2", nationality="SY")
    w.need(2026, "Middle East and North Africa", 100_000, "S3", region="mena")
    w.need(2025, "Afghan", 999, "S0", nationality="AF")

    x = w.crisis("CR-X", at(2026, 3, 1), target=500)
    w.pledge(x, "canada", 100, PledgeStatus.confirmed, at(2026, 3, 2))
    w.pledge(x, "spain", 50, PledgeStatus.fulfilled, at(2026, 3, 3))
    w.pledge(x, "germany", 30, PledgeStatus.proposed, at(2026, 3, 4))
    w.pledge(x, "canada", 20, PledgeStatus.withdrawn, at(2026, 3, 5))
    old = w.crisis("CR-W", at(2025, 10, 1), status=CrisisStatus.stabilised, target=40)
    w.pledge(old, "canada", 10, PledgeStatus.confirmed, at(2025, 11, 1))  # pledged the year before
    drill = w.crisis("CR-Y", at(2026, 4, 1), exercise=True)
    w.pledge(drill, "germany", 200, PledgeStatus.confirmed, at(2026, 4, 2))
    closed = w.crisis("CR-Z", at(2026, 1, 20), status=CrisisStatus.closed)
    w.pledge(closed, "spain", 7, PledgeStatus.confirmed, at(2026, 2, 1))
    w.done()
    return w


def test_the_network_view_of_a_year_counts_what_the_records_say(session, network) -> None:  # type: ignore[no-untyped-def]
    now = at(2027, 1, 10, 12)
    with frozen(now):
        w = flows_world(session, network)
        data = compute(session, period=year_period(2026))
        expected = expected_view(w, year_period(2026), now=now)
    assert_view(data, expected)

    # The same figures, by hand: A, C, D and I referred (D once though referred twice); A, D and I accepted;
    # B (at the year's first second), A and D (at its last second) departed; B, E and A arrived.
    h = data["headline"]
    assert (h["referred_cases"], h["referred"], h["accepted"]) == (4, 4 + 3 + 5 + 2, 4 + 5 + 2)
    assert (h["departed_cases"], h["departed"], h["arrived"]) == (3, 2 + 4 + 5, 2 + 1 + 4)
    assert (h["need"], h["places"], h["emergency"], h["pledged"]) == (2_000_000, 1500, 150, 100 + 50 + 7)
    gov = {r["short_name"]: r for r in data["by_government"]}
    assert [r["short_name"] for r in data["by_government"]] == ["canada", "germany", "spain"]  # by name
    assert {k: (r["referred_cases"], r["referred"], r["accepted"], r["departed"], r["arrived"])
            for k, r in gov.items()} == {"canada": (2, 9, 9, 4, 5), "spain": (2, 6, 2, 2, 2),
                                         "germany": (2, 8, 5, 5, 0)}
    assert {k: (r["places"], r["emergency"], r["pledged"]) for k, r in gov.items()} == {
        "canada": (1000, 100, 100), "spain": (500, 50, 57), "germany": (0, 0, 0)}
    pop = {r["nationality"]: r for r in data["by_population"]}
    assert [r["nationality"] for r in data["by_population"]][:2] == ["AF", "SY"]  # the largest needs first
    assert "VE" not in pop  # only in a family-reunification referral
    assert (pop["SY"]["referred_cases"], pop["SY"]["referred"], pop["SY"]["departed"]) == (2, 5, 2)
    assert (pop["AF"]["arrived"], pop["AF"]["need"], pop["SS"]["need"]) == (5, 500_000, None)
    region = {r["region"]: r for r in data["by_region"]}
    assert (region["mena"]["referred"], region["mena"]["departed"], region["mena"]["need"]) == (2, 2, 100_000)
    assert region["mena"]["share"] == round(100 * 2 / 100_000, 2)
    assert (region["east_horn_great_lakes"]["referred"], region["east_horn_great_lakes"]["arrived"]) == (5, 0)
    assert region["other"]["referred"] == 0  # always listed (its presence says nothing)
    months = {m["month"]: m for m in data["months"]}
    assert len(months) == 12
    assert months["2026-01"] == {"month": "2026-01", "referred": 0, "departed": 2, "arrived": 3}
    assert months["2026-12"] == {"month": "2026-12", "referred": 0, "departed": 5, "arrived": 0}
    assert [months[f"2026-{m:02d}"]["referred"] for m in range(1, 13)] == [0, 4, 3, 5, 0, 5, 2, 0, 2, 0, 0, 0]


def test_each_member_view_holds_only_what_concerns_that_government(session, network) -> None:  # type: ignore[no-untyped-def]
    now = at(2027, 1, 10, 12)
    with frozen(now):
        w = flows_world(session, network)
        canada = compute(session, period=year_period(2026), government=w.id("canada"))
        views = {g: compute(session, period=year_period(2026), government=w.id(g)) for g in GOVS}
        expected = {g: expected_view(w, year_period(2026), w.id(g), now=now) for g in GOVS}
    for g in GOVS:
        assert_view(views[g], expected[g])
        assert [r["short_name"] for r in views[g]["by_government"]] == [g]

    # Canada by hand: A and D referred to it and accepted; A departed to it (D went to Germany); A and its own
    # case E arrived. Spain's rejection of A and Germany's acceptance of D are not Canada's.
    h = canada["headline"]
    assert canada["government"] == str(w.id("canada"))
    assert (h["referred_cases"], h["referred"], h["accepted"]) == (2, 9, 9)
    assert (h["departed_cases"], h["departed"], h["arrived"]) == (1, 4, 5)
    assert (h["places"], h["emergency"], h["pledged"]) == (1000, 100, 100)
    pop = {r["nationality"]: r for r in canada["by_population"]}
    assert (pop["SY"]["referred"], pop["SY"]["need"]) == (0, 300_000)  # a need with nothing of Canada's
    assert (pop["SS"]["referred"], pop["SS"]["departed"]) == (5, 0)
    months = {m["month"]: m for m in canada["months"]}
    assert months["2026-06"]["referred"] == 0  # D's referral to Germany
    assert months["2026-01"] == {"month": "2026-01", "referred": 0, "departed": 0, "arrived": 1}
    # Germany's view: D departed to Germany, C is pending with it; the drill's pledge is not counted.
    gh = views["germany"]["headline"]
    assert (gh["referred_cases"], gh["referred"], gh["accepted"], gh["departed"], gh["pledged"]) == (2, 8, 5, 5, 0)
    assert views["spain"]["headline"]["pledged"] == 57  # the closed crisis's pledge was made in 2026


def test_a_quarter_counts_its_own_three_months(session, network) -> None:  # type: ignore[no-untyped-def]
    now = at(2026, 11, 5, 9)
    with frozen(now):
        w = World(session, network)
        # I: referred to Spain twice in Q3 (rejected, then accepted): one case.
        i = w.case(nationality="SY", country="JO", size=2)
        w.refer(i, "spain", ReferralStatus.rejected, at(2026, 7, 1), updated=at(2026, 7, 2))
        w.refer(i, "spain", ReferralStatus.accepted, at(2026, 9, 1), updated=at(2026, 9, 3))
        # K: referred in the last second of Q2, departed at Q3's first second, arrived at its last: Canada's.
        k = w.case(nationality="AF", country="PK", size=3, departed_at=at(2026, 7, 1),
                   arrived_at=at(2026, 9, 30, 23, 59, 59))
        w.refer(k, "canada", ReferralStatus.accepted, at(2026, 6, 30, 23, 59, 59), updated=at(2026, 6, 30, 23, 59, 59))
        # L: referred and departed at Q4's first second; its country of asylum is in no region.
        lc = w.case(nationality="AQ", country="AQ", size=2, departed_at=at(2026, 10, 1))
        w.refer(lc, "germany", ReferralStatus.accepted, at(2026, 10, 1))
        # M: Spain's own case, departed in Q2's last second.
        w.case(owner="spain", nationality="AF", country="PK", size=1, departed_at=at(2026, 6, 30, 23, 59, 59))
        w.quota("canada", 2026, 1000, 100)
        w.quota("spain", 2026, 500, 50)
        x = w.crisis("CR-Q", at(2026, 6, 1))
        w.pledge(x, "canada", 9, PledgeStatus.confirmed, at(2026, 6, 30, 23, 59, 59))
        w.pledge(x, "germany", 40, PledgeStatus.confirmed, at(2026, 8, 1))
        w.pledge(x, "spain", 5, PledgeStatus.confirmed, at(2026, 10, 1))
        w.done()
        q3, q4 = quarter_period(2026, 3), quarter_period(2026, 4)
        assert parse_period("2026q3") == q3 and parse_period("2026Q5") is None
        assert parse_period("2026") == year_period(2026)
        data3 = compute(session, period=q3)
        data4 = compute(session, period=q4)
        canada3 = compute(session, period=q3, government=w.id("canada"))
        expected3 = expected_view(w, q3, now=now)
        expected4 = expected_view(w, q4, now=now)
        expected_canada3 = expected_view(w, q3, w.id("canada"), now=now)
    assert_view(data3, expected3)
    assert_view(data4, expected4)
    assert_view(canada3, expected_canada3)
    assert data3["period"] == "2026Q3" and data3["year"] == 2026
    # By hand: Q3 has I's two referrals (one case), K's departure and arrival, Germany's August pledge, and the
    # year's quotas; Q4, still running, has L and shows October and November only.
    h3 = data3["headline"]
    assert (h3["referred_cases"], h3["referred"], h3["accepted"]) == (1, 2, 2)
    assert (h3["departed_cases"], h3["departed"], h3["arrived"], h3["pledged"], h3["places"]) == (1, 3, 3, 40, 1500)
    assert [m["month"] for m in data3["months"]] == ["2026-07", "2026-08", "2026-09"]
    assert data3["as_of"] == at(2026, 10, 1).isoformat()
    h4 = data4["headline"]
    assert (h4["referred"], h4["departed"], h4["arrived"], h4["pledged"]) == (2, 2, 0, 5)
    assert [m["month"] for m in data4["months"]] == ["2026-10", "2026-11"]
    assert data4["as_of"] == now.isoformat()
    assert next(r for r in data4["by_region"] if r["region"] == "other")["departed"] == 2
    assert next(r for r in data3["by_region"] if r["region"] == "other")["departed"] == 0
    h = canada3["headline"]
    assert (h["referred"], h["departed"], h["arrived"], h["pledged"]) == (0, 3, 3, 0)


# Time in stage --------------------------------------------------------------------------------------------------


TIMED = [s.value for s in pipeline.Stage if pipeline._STAGE_DAYS.get(s) is not None]
PRIORITY_ORDER = [Priority.emergency, Priority.urgent, Priority.normal]


def target_days(stage: str, priority: Priority) -> int:
    return pipeline._STAGE_DAYS[pipeline.Stage(stage)][PRIORITY_ORDER.index(priority)]


def expected_stages(w: World, period: Any, now: datetime, government: uuid.UUID | None = None) -> list[dict[str, Any]]:
    start, end = bounds(period)
    cases = {c.id: c for c in w.cases}

    def concerns(c: Case) -> bool:
        if government is None:
            return True
        return c.owner_org_id == government or any(
            r.case_id == c.id and r.recipient_org_id == government and r.status in LIVE for r in w.referrals)

    stays: dict[tuple[str, Priority], list[float]] = defaultdict(list)
    by_case: dict[uuid.UUID, list[StageEvent]] = defaultdict(list)
    for e in w.events:
        by_case[e.case_id].append(e)
    for case_id, events in by_case.items():
        c = cases[case_id]
        if not concerns(c):
            continue
        events.sort(key=lambda e: e.at)
        for here, after in itertools.pairwise(events):
            if here.to_stage in TIMED and start <= after.at < end:
                stays[(here.to_stage, c.processing_priority)].append((after.at - here.at).total_seconds() / 86400)
    current: dict[tuple[str, Priority], list[int]] = defaultdict(lambda: [0, 0])
    for c in w.cases:
        if c.stage in TIMED and concerns(c):
            current[(c.stage, c.processing_priority)][0] += 1
            if c.stage_due_at is not None and c.stage_due_at < now:
                current[(c.stage, c.processing_priority)][1] += 1
    out = []
    for stage in TIMED:
        for priority in PRIORITY_ORDER:
            values = stays.get((stage, priority), [])
            n_now, late = current.get((stage, priority), [0, 0])
            if not values and not n_now:
                continue
            target = target_days(stage, priority)
            within = len([v for v in values if v <= target])
            out.append({"stage": stage, "priority": priority.value, "stays": len(values),
                        "median_days": round(statistics.median(values), 1) if values else None,
                        "target_days": target, "within": within,
                        "within_share": round(100.0 * within / len(values), 1) if values else None,
                        "now": n_now, "late_now": late})
    return out


def stage_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "p90_days"} for r in data["stages"]]


def test_time_in_stage_counts_the_stays_that_ended_in_the_period(session, network) -> None:  # type: ignore[no-untyped-def]
    now = at(2026, 7, 15, 12)
    with frozen(now):
        w = World(session, network)
        # S1: a stay in "referred" that ended at 2026's first second (12 days), 59 days in needs assessment
        # (normal: 30), 19 in initial review; in interview now, past its clock.
        s1 = w.case(stage="interview", stage_due_at=at(2026, 5, 19))
        w.move(s1, "interview", at(2026, 3, 20), "initial_review")  # written out of order on purpose
        w.move(s1, "referred", at(2025, 12, 20))
        w.move(s1, "needs_assessment", at(2026, 1, 1), "referred")
        w.move(s1, "initial_review", at(2026, 3, 1), "needs_assessment")
        # S2: "referred" ended the second before 2026 (not counted); exactly 30 days in needs assessment (within).
        s2 = w.case(stage="initial_review", stage_due_at=at(2026, 8, 1))
        w.move(s2, "referred", at(2025, 12, 1))
        w.move(s2, "needs_assessment", at(2025, 12, 31, 23, 59, 59), "referred")
        w.move(s2, "initial_review", at(2026, 1, 30, 23, 59, 59), "needs_assessment")
        # S3: an emergency: half a day referred (within 1), 2.5 days in needs assessment (late), closed now.
        s3 = w.case(stage="closed", priority=Priority.emergency)
        w.move(s3, "referred", at(2026, 6, 1))
        w.move(s3, "needs_assessment", at(2026, 6, 1, 12), "referred")
        w.move(s3, "initial_review", at(2026, 6, 4), "needs_assessment")
        w.move(s3, "closed", at(2026, 6, 5), "initial_review")
        # S4: Canada's own urgent case: 10 days submitted, 30 in prescreening (urgent: 14), in security checks late.
        s4 = w.case(owner="canada", stage="security_checks", priority=Priority.urgent, stage_due_at=at(2026, 4, 3))
        w.move(s4, "submitted", at(2026, 2, 1))
        w.move(s4, "prescreening", at(2026, 2, 11), "submitted")
        w.move(s4, "security_checks", at(2026, 3, 13), "prescreening")
        # S5: referred to Canada (pending): 10 days referred; in needs assessment, on time.
        s5 = w.case(stage="needs_assessment", stage_due_at=at(2026, 12, 1))
        w.refer(s5, "canada", ReferralStatus.pending, at(2026, 1, 10))
        w.move(s5, "referred", at(2026, 1, 10))
        w.move(s5, "needs_assessment", at(2026, 1, 20), "referred")
        # S6: Canada rejected it: not Canada's. 4 days referred; no stage clock now.
        s6 = w.case(stage="needs_assessment")
        w.refer(s6, "canada", ReferralStatus.rejected, at(2026, 2, 1))
        w.move(s6, "referred", at(2026, 2, 1))
        w.move(s6, "needs_assessment", at(2026, 2, 5), "referred")
        w.done()
        network_2026 = compute(session, period=year_period(2026))
        network_2025 = compute(session, period=year_period(2025))
        canada_2026 = compute(session, period=year_period(2026), government=w.id("canada"))
        expected = {
            "network_2026": expected_stages(w, year_period(2026), now),
            "network_2025": expected_stages(w, year_period(2025), now),
            "canada_2026": expected_stages(w, year_period(2026), now, w.id("canada")),
        }
    assert stage_rows(network_2026) == expected["network_2026"]
    assert stage_rows(network_2025) == expected["network_2025"]
    assert stage_rows(canada_2026) == expected["canada_2026"]

    # By hand.
    rows = {(r["stage"], r["priority"]): r for r in network_2026["stages"]}
    assert (rows[("referred", "normal")]["stays"], rows[("referred", "normal")]["median_days"]) == (3, 10.0)
    assert rows[("referred", "normal")]["within"] == 3
    na = rows[("needs_assessment", "normal")]
    assert (na["stays"], na["median_days"], na["within"], na["target_days"], na["now"], na["late_now"]) == (
        2, 44.5, 1, 30, 2, 0)
    em = rows[("needs_assessment", "emergency")]
    assert (em["stays"], em["median_days"], em["within"], em["target_days"]) == (1, 2.5, 0, 1)
    assert (rows[("interview", "normal")]["stays"], rows[("interview", "normal")]["late_now"]) == (0, 1)
    assert (rows[("prescreening", "urgent")]["within"], rows[("prescreening", "urgent")]["target_days"]) == (0, 14)
    assert ("closed", "emergency") not in rows
    old = {(r["stage"], r["priority"]): r for r in network_2025["stages"]}
    assert (old[("referred", "normal")]["stays"], old[("referred", "normal")]["within"]) == (1, 0)  # S2's 31 days
    mine = {(r["stage"], r["priority"]): r for r in canada_2026["stages"]}
    assert (mine[("referred", "normal")]["stays"], mine[("needs_assessment", "normal")]["now"]) == (1, 1)
    assert mine[("security_checks", "urgent")]["late_now"] == 1
    assert ("interview", "normal") not in mine


# The Global Compact indicator -----------------------------------------------------------------------------------


def expected_indicator(w: World, period: Any, now: datetime, government: uuid.UUID | None = None) -> dict[str, Any]:
    _, end = bounds(period)
    cohort_end = min(now, end) - SIX_MONTHS
    cohort_start = cohort_end - timedelta(days=365)
    # A government's cohort: the cases referred to it for resettlement (in any status) or that it owns; those
    # within are the ones that departed to it.
    cohort = [c for c in w.cases if c.submitted_at is not None and cohort_start <= c.submitted_at < cohort_end
              and (government is None or c.owner_org_id == government
                   or any(r.case_id == c.id and r.recipient_org_id == government
                          and r.purpose == Purpose.resettlement for r in w.referrals))]
    within = [c for c in cohort if c.departed_at is not None and c.departed_at - c.submitted_at <= SIX_MONTHS
              and (government is None or destination(w, c) == government)]
    quotas = [q for q in w.quotas if q.year == period.year and (government is None or q.org_id == government)]
    places, emergency = sum(q.places for q in quotas), sum(q.emergency_reserve for q in quotas)
    return {"cohort_start": cohort_start.date().isoformat(), "cohort_end": cohort_end.date().isoformat(),
            "submitted": len(cohort), "within_six_months": len(within),
            "within_share": round(100.0 * len(within) / len(cohort), 1) if cohort else None,
            "places": places, "emergency": emergency,
            "emergency_share": round(100.0 * emergency / places, 1) if places else None}


def test_resettled_within_six_months_of_submission(session, network) -> None:  # type: ignore[no-untyped-def]
    now = at(2026, 7, 15, 12)
    cohort_end = now - SIX_MONTHS  # 2026-01-13 12:00
    cohort_start = cohort_end - timedelta(days=365)  # 2025-01-13 12:00
    with frozen(now):
        w = World(session, network)
        # P1: submitted at the cohort's first moment, departed exactly 183 days later: within. Spain's.
        p1 = w.case(stage="departed", submitted_at=cohort_start, departed_at=cohort_start + SIX_MONTHS)
        w.refer(p1, "spain", ReferralStatus.accepted, at(2025, 2, 1))
        # P2: Canada's own, departed a second too late.
        w.case(owner="canada", stage="departed", submitted_at=at(2025, 6, 1),
               departed_at=at(2025, 6, 1) + SIX_MONTHS + timedelta(seconds=1))
        # P3: not departed; no government's.
        w.case(submitted_at=at(2025, 12, 1))
        # P4: submitted at the cohort's end: not in it.
        w.case(submitted_at=cohort_end, departed_at=cohort_end + timedelta(days=10))
        # P5: submitted a second before the cohort: not in it (in 2025's).
        w.case(submitted_at=cohort_start - timedelta(seconds=1), departed_at=cohort_start + timedelta(days=20))
        # P6: Canada's by its accepted referral; departed within a month.
        p6 = w.case(stage="departed", submitted_at=at(2025, 9, 1), departed_at=at(2025, 10, 1))
        w.refer(p6, "canada", ReferralStatus.accepted, at(2025, 8, 1))
        # P7: referred to Germany, still pending (Germany's cohort all the same), and to Spain, which took it
        # within the six months: Germany's submission not resettled by Germany.
        p7 = w.case(stage="departed", submitted_at=at(2025, 10, 1), departed_at=at(2025, 11, 1))
        w.refer(p7, "germany", ReferralStatus.pending, at(2025, 9, 1))
        w.refer(p7, "spain", ReferralStatus.accepted, at(2025, 9, 2))
        w.quota("canada", 2026, 1000, 100)
        w.quota("spain", 2026, 300, 60)
        w.done()
        got = {None: compute(session, period=year_period(2026))["indicators"]}
        for g in GOVS:
            got[g] = compute(session, period=year_period(2026), government=w.id(g))["indicators"]
        got_2025 = compute(session, period=year_period(2025))["indicators"]
        expected = {None: expected_indicator(w, year_period(2026), now)}
        for g in GOVS:
            expected[g] = expected_indicator(w, year_period(2026), now, w.id(g))
        expected_2025 = expected_indicator(w, year_period(2025), now)
    assert got == expected
    assert got_2025 == expected_2025
    # By hand: P1, P2, P3, P6 and P7 submitted; P1, P6 and P7 within.
    assert (got[None]["submitted"], got[None]["within_six_months"], got[None]["within_share"]) == (5, 3, 60.0)
    assert (got[None]["cohort_start"], got[None]["cohort_end"]) == ("2025-01-13", "2026-01-13")
    assert (got[None]["emergency_share"], got["spain"]["emergency_share"]) == (round(100 * 160 / 1300, 1), 20.0)
    assert (got["canada"]["submitted"], got["canada"]["within_six_months"]) == (2, 1)
    assert (got["spain"]["submitted"], got["spain"]["within_share"]) == (2, 100.0)
    assert (got["germany"]["submitted"], got["germany"]["within_six_months"], got["germany"]["within_share"]) == (
        1, 0, 0.0)
    # 2025 is over: its cohort ends 183 days before 2026 began: P5, P1 and P2 (P5 and P1 within).
    assert (got_2025["cohort_end"], got_2025["submitted"], got_2025["within_six_months"]) == ("2025-07-02", 3, 2)


# Crises and obstacles -------------------------------------------------------------------------------------------


def expected_crises(w: World, government: uuid.UUID | None = None) -> list[dict[str, Any]]:
    shown = sorted((c for c in w.crises if not c.exercise and c.status != CrisisStatus.closed),
                   key=lambda c: c.declared_at, reverse=True)
    out = []
    for crisis in shown:
        mine = [p for c, p in w.pledges if c is crisis and (government is None or p.org_id == government)]
        kept = [p for p in mine if p.status in KEPT]
        out.append({"id": str(crisis.id), "reference": crisis.reference, "title": crisis.title,
                    "status": crisis.status.value,
                    "declared": crisis.declared_at.date().isoformat(), "target": crisis.target_places,
                    "pledged": sum(p.places for p in kept),
                    "proposed": sum(p.places for p in mine if p.status == PledgeStatus.proposed),
                    "governments": len({p.org_id for p in kept})})
    return out


def expected_obstacles(w: World, government: uuid.UUID | None = None) -> dict[str, dict[str, Any]]:
    """Unresolved obstacles with the distinct cases they block now and those cases' people, by title."""
    cases = {c.id: c for c in w.cases}

    def concerns(c: Case) -> bool:
        return government is None or c.owner_org_id == government or any(
            r.case_id == c.id and r.recipient_org_id == government and r.status in LIVE for r in w.referrals)

    out = {}
    for o in w.obstacles:
        if o.status == ObstacleStatus.resolved:
            continue
        blocked = {b.case_id for b in w.blocks if b.obstacle_id == o.id and b.released_at is None
                   and concerns(cases[b.case_id])}
        if blocked:
            out[o.title] = {"id": str(o.id), "title": o.title, "country": o.country, "type": o.type.value,
                            "status": o.status.value, "cases": len(blocked),
                            "people": sum(cases[i].size for i in blocked)}
    return out


def obstacles_world(session: Session, network: Network) -> World:
    w = World(session, network)
    q1 = w.case(size=4)  # the agency's, accepted by Canada
    w.refer(q1, "canada", ReferralStatus.accepted, at(2026, 2, 1))
    q2 = w.case(owner="canada", size=2)
    q3 = w.case(size=5, country="LB", nationality="SY")  # pending with Spain
    w.refer(q3, "spain", ReferralStatus.pending, at(2026, 2, 1))
    q4 = w.case(size=7)  # referred to Germany, who rejected it
    w.refer(q4, "germany", ReferralStatus.rejected, at(2026, 2, 1))
    fee = w.obstacle("Exit fee", "PK", ObstacleStatus.confirmed)
    w.block(fee, q1)
    w.block(fee, q2, "travel_document")
    w.block(fee, q3, released=at(2026, 3, 1))  # released: no longer blocked by it
    permit = w.obstacle("Exit permit", "LB", ObstacleStatus.reported)
    w.block(permit, q3)
    w.block(permit, q4, "travel_document", released=at(2026, 2, 10))
    lifted = w.obstacle("Lifted ban", "PK", ObstacleStatus.resolved)
    w.block(lifted, q1, "travel_document")  # an open block left on a resolved obstacle: not counted
    talks = w.obstacle("Transit visa", "PK", ObstacleStatus.being_addressed)
    w.block(talks, q4)
    w.done()
    return w


def test_crises_and_obstacles_tables(session, network) -> None:  # type: ignore[no-untyped-def]
    now = at(2026, 7, 15, 12)
    with frozen(now):
        w = flows_world(session, network)
        data = compute(session, period=year_period(2026))
        views = {g: compute(session, period=year_period(2026), government=w.id(g)) for g in GOVS}
    assert data["crises"] == expected_crises(w)
    for g in GOVS:
        assert views[g]["crises"] == expected_crises(w, w.id(g))
    # By hand: the open real crises, newest first; the drill and the closed one are not listed.
    assert [c["reference"] for c in data["crises"]] == ["CR-X", "CR-W"]
    x = data["crises"][0]
    assert (x["pledged"], x["proposed"], x["governments"], x["target"]) == (150, 30, 2, 500)
    assert (data["crises"][1]["pledged"], data["crises"][1]["declared"]) == (10, "2025-10-01")
    cx = views["canada"]["crises"][0]
    assert (cx["pledged"], cx["proposed"], cx["governments"]) == (100, 0, 1)
    gx = views["germany"]["crises"][0]
    assert (gx["pledged"], gx["proposed"], gx["governments"]) == (0, 30, 0)


def test_obstacles_table_counts_open_blocks_of_unresolved_obstacles(session, network) -> None:  # type: ignore[no-untyped-def]
    with frozen(at(2026, 7, 15, 12)):
        w = obstacles_world(session, network)
        network_rows = compute(session, period=year_period(2026))["obstacles"]
        views = {g: compute(session, period=year_period(2026), government=w.id(g))["obstacles"] for g in GOVS}
    assert {r["title"]: r for r in network_rows} == expected_obstacles(w)
    for g in GOVS:
        assert {r["title"]: r for r in views[g]} == expected_obstacles(w, w.id(g))
    # By hand: the exit fee blocks Q1 and Q2 (6 people), the transit visa Q4 (7), the exit permit Q3 (5); the
    # resolved ban is not listed. Sorted by people blocked.
    assert [(r["title"], r["cases"], r["people"]) for r in network_rows] == [
        ("Transit visa", 1, 7), ("Exit fee", 2, 6), ("Exit permit", 1, 5)]
    assert [(r["title"], r["cases"], r["people"]) for r in views["canada"]] == [("Exit fee", 2, 6)]
    assert [(r["title"], r["cases"], r["people"]) for r in views["spain"]] == [("Exit permit", 1, 5)]
    assert views["germany"] == []  # Germany rejected Q4


def test_a_case_blocked_on_two_items_by_one_obstacle_counts_once(session, network) -> None:  # type: ignore[no-untyped-def]
    """An exit fee that holds both a family's exit permit and its travel document blocks one case, its people
    once ("the cases and people they block now")."""
    with frozen(at(2026, 7, 15, 12)):
        w = World(session, network)
        family = w.case(owner="canada", size=4)
        other = w.case(owner="canada", size=3)
        fee = w.obstacle("Exit fee", "PK", ObstacleStatus.confirmed)
        w.block(fee, family, "exit_permit")
        w.block(fee, family, "travel_document")
        w.block(fee, other, "exit_permit")
        w.done()
        network_rows = compute(session, period=year_period(2026))["obstacles"]
        canada_rows = compute(session, period=year_period(2026), government=w.id("canada"))["obstacles"]
    # Two cases (the family and the other), 4 + 3 people: not three blocks and 4 + 4 + 3 people.
    assert [(r["cases"], r["people"]) for r in network_rows] == [(2, 7)]
    assert [(r["cases"], r["people"]) for r in canada_rows] == [(2, 7)]
    assert {r["title"]: r for r in network_rows} == expected_obstacles(w)


# Snapshots ------------------------------------------------------------------------------------------------------


def test_the_picture_is_the_snapshot_while_fresh_and_recomputed_once_stale(session, network) -> None:  # type: ignore[no-untyped-def]
    original = get_settings()
    set_settings(original.model_copy(update={"report_refresh_minutes": 7}))  # stale after 14 minutes
    t0 = at(2026, 3, 10, 12)
    period = year_period(2026)
    try:
        with frozen(t0):
            w = World(session, network)
            first = w.case(size=4)
            w.refer(first, "canada", ReferralStatus.accepted, at(2026, 3, 1))
            w.done()
            data = service.picture(session, period=period)
            assert data["headline"]["referred"] == 4 and data["computed_at"] == t0.isoformat()
            stored = session.scalar(select(Snapshot).where(Snapshot.scope == "network:2026"))
            assert stored is not None and stored.data["headline"]["referred"] == 4

            # Written after the snapshot: not shown while the snapshot is at most twice the interval old.
            later = w.case(size=3)
            w.refer(later, "spain", ReferralStatus.pending, at(2026, 3, 10))
            w.done()
            clock.advance(timedelta(minutes=14))
            fresh = service.picture(session, period=period)
            assert fresh["headline"]["referred"] == 4 and fresh["computed_at"] == t0.isoformat()
            canada = service.picture(session, period=period, government=w.id("canada"))  # its own snapshot
            assert canada["headline"]["referred"] == 4

            # A second older than that: still answered at once, and its recomputation queued (once) for the worker.
            clock.advance(timedelta(seconds=1))
            t1 = clock.now()
            stale = service.picture(session, period=period)
            assert stale["headline"]["referred"] == 4 and stale["computed_at"] == t0.isoformat()
            service.picture(session, period=period)
            queued = session.scalars(select(outbox.Job).where(outbox.Job.kind == "reports.refresh_view")).all()
            assert len(queued) == 1 and queued[0].payload["government"] is None
            session.commit()
            outbox.Worker().run_until_idle()
            session.expire_all()
            recomputed = service.picture(session, period=period)
            assert recomputed["headline"]["referred"] == 7 and recomputed["computed_at"] == t1.isoformat()
            assert recomputed["by_government"] == compute(session, period=period)["by_government"]
            session.expire_all()
            stored = session.scalar(select(Snapshot).where(Snapshot.scope == "network:2026"))
            assert stored is not None and stored.data["computed_at"] == t1.isoformat()

            # A refresh (the worker's, or one asked for) shows what was written since at once.
            third = w.case(size=2)
            w.refer(third, "germany", ReferralStatus.accepted, at(2026, 3, 10))
            w.done()
            clock.advance(timedelta(minutes=1))
            assert service.picture(session, period=period)["headline"]["referred"] == 7
            service.refresh(session, period=period)
            shown = service.picture(session, period=period)
            assert shown["headline"]["referred"] == 9
            assert shown["headline"]["accepted"] == 4 + 2
            assert shown["computed_at"] == clock.now().isoformat()
            # The worker's job recomputes the current year's views whose snapshots are older than the interval:
            # Spain's and Germany's (none yet), not the network's just refreshed nor Canada's (a minute old).
            assert service.refresh_current(session) == 2
            spain = service.picture(session, period=period, government=w.id("spain"))
            assert (spain["headline"]["referred"], spain["computed_at"]) == (3, clock.now().isoformat())
            canada = service.picture(session, period=period, government=w.id("canada"))
            assert canada["computed_at"] == (t0 + timedelta(minutes=14)).isoformat()
            clock.advance(timedelta(minutes=7))  # now every snapshot is at least the interval old
            assert service.refresh_current(session) == 1 + len(GOVS)
    finally:
        set_settings(original)


def test_the_governments_shown_are_the_active_member_governments(session, network) -> None:  # type: ignore[no-untyped-def]
    with frozen(at(2026, 7, 15, 12)):
        data = compute(session, period=year_period(2026))
        names = [o.name for o in session.scalars(select(Organization).where(
            Organization.kind == OrgKind.government, Organization.active.is_(True)))]
    assert [r["government"] for r in data["by_government"]] == sorted(names)
    assert {r["short_name"] for r in data["by_government"]} >= set(GOVS)
    assert "unhcr" not in {r["short_name"] for r in data["by_government"]}

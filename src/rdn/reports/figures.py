"""Computing the network picture from the records of every module, for a period and for the whole network or one
member government.

What each figure counts (docs/reports.md says the same for readers):

* **Referred**: resettlement referrals to a government made in the period, as cases and people (the family's
  size). A case referred to two governments counts once for the network and once for each government.
* **Accepted**: of those referrals, the ones the government accepted (accepted, or accepted and done).
* **Departed** and **arrived**: cases whose departure or arrival date falls in the period, for the government the
  case was accepted by (its latest accepted resettlement referral; the owning government when it owns the case).
* **Need**: the projected needs the network entered for the period's year (rdn.reports.models.Need).
* **Annual places** and **kept for emergencies**: the governments' quotas for the year (matching's quotas).
* **Crisis pledges**: places pledged in crisis rooms in the period (confirmed or fulfilled; drills excluded).
* **Time in stage**: every stay in a pipeline stage that ended in the period, against the stage's clock for the
  case's processing priority; and the cases in each stage now, with those past the clock.
* **Resettled within six months** (Global Compact indicator): of the cases submitted to a State in the twelve
  months that ended six months before the period's end (or before now), those that departed within 183 days.
* **Obstacles**: unresolved obstacles with the cases and people they block now.

Everything is counted in the database's own aggregates or in one pass over the needed columns; nothing here is
scoped to a viewer: these are aggregates for the network's members, and the views decide who sees which.
"""

from __future__ import annotations

import math
import statistics
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, false, func, or_, select
from sqlalchemy.orm import Session

from rdn import db
from rdn.cases import pipeline
from rdn.cases.models import Case, Outcome, Priority, Purpose, Referral, ReferralStatus, StageEvent
from rdn.core import clock
from rdn.core.tenancy import Organization, OrgKind
from rdn.matching.models import Quota
from rdn.pathways.models import Block, Obstacle, ObstacleStatus
from rdn.redphone.models import Crisis, CrisisStatus, Pledge, PledgeStatus
from rdn.reports.models import Need
from rdn.reports.regions import OTHER, REGIONS, region_of

ACCEPTED = (ReferralStatus.accepted, ReferralStatus.done)
KEPT_PLEDGES = (PledgeStatus.confirmed, PledgeStatus.fulfilled)
SIX_MONTHS = timedelta(days=183)
PRIORITIES = (Priority.emergency, Priority.urgent, Priority.normal)
#: Stages with a clock, in the pipeline's order, for the time-in-stage table.
TIMED_STAGES = [s.value for s in pipeline.Stage if pipeline._STAGE_DAYS.get(s) is not None]


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC: a year ("2026") or a quarter ("2026Q3")."""

    key: str
    start: date
    end: date

    @property
    def year(self) -> int:
        return self.start.year

    @property
    def quarter(self) -> int | None:
        return int(self.key[-1]) if "Q" in self.key else None

    @property
    def closed(self) -> bool:
        """Over: its figures change only when records are written for past dates."""
        return datetime(self.end.year, self.end.month, self.end.day, tzinfo=UTC) <= clock.now()

    def bounds(self) -> tuple[datetime, datetime]:
        return (datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC),
                datetime(self.end.year, self.end.month, self.end.day, tzinfo=UTC))


def year_period(year: int) -> Period:
    return Period(str(year), date(year, 1, 1), date(year + 1, 1, 1))


def quarter_period(year: int, quarter: int) -> Period:
    start = date(year, 3 * (quarter - 1) + 1, 1)
    end = date(year + 1, 1, 1) if quarter == 4 else date(year, 3 * quarter + 1, 1)
    return Period(f"{year}Q{quarter}", start, end)


def public_period(year: int, now: datetime) -> Period:
    """A year as the public sees it: to the end of the last full month while it runs (key "2026-to-11": January to
    October), the whole year once it is over."""
    whole = year_period(year)
    first_of_month = date(now.year, now.month, 1)
    if whole.end <= first_of_month:
        return whole
    end = max(whole.start, first_of_month)
    return Period(f"{year}-to-{end.month:02d}", whole.start, end)


def parse_period(key: str) -> Period | None:
    """"2026" or "2026Q3" (years 2000-2100); None for anything else."""
    text = (key or "").strip().upper()
    year_text, _, quarter_text = text.partition("Q")
    if not (year_text.isascii() and year_text.isdecimal() and len(year_text) == 4 and 2000 <= int(year_text) <= 2100):
        return None
    if not quarter_text:
        return None if "Q" in text else year_period(int(year_text))
    if quarter_text not in {"1", "2", "3", "4"}:
        return None
    return quarter_period(int(year_text), int(quarter_text))


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class _Tally:
    """Cases and people per key, each case counted once per key."""

    def __init__(self) -> None:
        self.cases: dict[Any, set[uuid.UUID]] = defaultdict(set)
        self.people: dict[Any, int] = defaultdict(int)

    def add(self, key: Any, case_id: uuid.UUID, size: int) -> None:
        seen = self.cases[key]
        if case_id not in seen:
            seen.add(case_id)
            self.people[key] += size

    def n(self, key: Any) -> int:
        return len(self.cases.get(key, ()))

    def p(self, key: Any) -> int:
        return self.people.get(key, 0)


def governments(session: Session) -> list[Organization]:
    return list(session.scalars(select(Organization).where(Organization.kind == OrgKind.government,
                                                           Organization.active.is_(True))
                                .order_by(Organization.name)))


def destinations(session: Session, cases: Any = None) -> dict[uuid.UUID, uuid.UUID]:
    """Each case's receiving government: its latest accepted resettlement referral (not one that ended as not
    successful). ``cases``: a select of case ids to limit the reading to (the database filters them)."""
    q = (select(Referral.case_id, Referral.recipient_org_id, Referral.updated_at)
         .where(Referral.purpose == Purpose.resettlement, Referral.status.in_(ACCEPTED),
                or_(Referral.outcome.is_(None), Referral.outcome != Outcome.not_successful)))
    if cases is not None:
        q = q.where(Referral.case_id.in_(cases))
    out: dict[uuid.UUID, tuple[datetime, uuid.UUID]] = {}
    for case_id, org_id, at in session.execute(q):
        seen = out.get(case_id)
        if seen is None or at > seen[0]:
            out[case_id] = (at, org_id)
    return {k: v[1] for k, v in out.items()}


def compute(session: Session, *, period: Period, government: uuid.UUID | None = None) -> dict[str, Any]:
    """The figures of one view: the network's (``government`` None) or one government's."""
    start, end = period.bounds()
    now = clock.now()
    gov_orgs = governments(session)
    gov_ids = {o.id for o in gov_orgs}
    # The time the figures stand at: the period's end, or now while it runs.
    as_of = min(now, end)

    # Referrals made in the period --------------------------------------------------------------------------
    referred, accepted = _Tally(), _Tally()
    ref_rows = session.execute(
        select(Referral.case_id, Referral.recipient_org_id, Referral.status, Referral.created_at,
               Case.nationality, Case.current_country, Case.size)
        .join(Case, Case.id == Referral.case_id)
        .where(Referral.purpose == Purpose.resettlement, Referral.created_at >= start, Referral.created_at < end,
               Referral.recipient_org_id.in_(gov_ids) if gov_ids else false(),
               *([Referral.recipient_org_id == government] if government else []))
    ).all()
    monthly: dict[str, dict[str, int]] = defaultdict(lambda: {"referred": 0, "departed": 0, "arrived": 0})
    month_seen: set[tuple[str, uuid.UUID]] = set()
    for case_id, org_id, status, created_at, nationality, country, size in ref_rows:
        dims = ("all", ("nat", nationality or ""), ("reg", region_of(country)), ("gov", org_id))
        for key in dims:
            referred.add(key, case_id, size)
            if status in ACCEPTED:
                accepted.add(key, case_id, size)
        month = _aware(created_at).strftime("%Y-%m")  # type: ignore[union-attr]
        if (month, case_id) not in month_seen:
            month_seen.add((month, case_id))
            monthly[month]["referred"] += size

    # Departures and arrivals in the period -----------------------------------------------------------------
    in_period = or_(and_(Case.departed_at >= start, Case.departed_at < end),
                    and_(Case.arrived_at >= start, Case.arrived_at < end))
    moved = session.execute(
        select(Case.id, Case.owner_org_id, Case.nationality, Case.current_country, Case.size, Case.departed_at,
               Case.arrived_at).where(in_period)
    ).all()
    dest = destinations(session, select(Case.id).where(in_period)) if moved else {}
    departed, arrived = _Tally(), _Tally()
    for case_id, owner, nationality, country, size, departed_at, arrived_at in moved:
        to = dest.get(case_id) or (owner if owner in gov_ids else None)
        if government and to != government:
            continue
        dims = ("all", ("nat", nationality or ""), ("reg", region_of(country)), ("gov", to))
        departed_at, arrived_at = _aware(departed_at), _aware(arrived_at)
        if departed_at is not None and start <= departed_at < end:
            for key in dims:
                departed.add(key, case_id, size)
            monthly[departed_at.strftime("%Y-%m")]["departed"] += size
        if arrived_at is not None and start <= arrived_at < end:
            for key in dims:
                arrived.add(key, case_id, size)
            monthly[arrived_at.strftime("%Y-%m")]["arrived"] += size

    # Needs, quotas, pledges -----------------------------------------------------------------------------------
    needs = list(session.scalars(select(Need).where(Need.year == period.year).order_by(Need.people.desc(),
                                                                                       Need.population)))
    quotas = {q.org_id: q for q in session.scalars(select(Quota).where(Quota.year == period.year))}
    pledge_rows = session.execute(
        select(Pledge.org_id, Pledge.places, Pledge.status, Pledge.crisis_id)
        .join(Crisis, Crisis.id == Pledge.crisis_id)
        .where(Crisis.exercise.is_(False), Pledge.created_at >= start, Pledge.created_at < end)
    ).all()
    pledged: dict[uuid.UUID, int] = defaultdict(int)
    for org_id, places, status, _crisis in pledge_rows:
        if status in KEPT_PLEDGES:
            pledged[org_id] += places

    shown_govs = [o for o in gov_orgs if government is None or o.id == government]
    by_government = []
    for org in shown_govs:
        quota = quotas.get(org.id)
        key = ("gov", org.id)
        by_government.append({
            "government": org.name, "short_name": org.short_name, "country": org.country or "",
            "places": quota.places if quota else 0, "emergency": quota.emergency_reserve if quota else 0,
            "pledged": pledged.get(org.id, 0),
            "referred_cases": referred.n(key), "referred": referred.p(key), "accepted": accepted.p(key),
            "departed": departed.p(key), "arrived": arrived.p(key),
        })

    # By population (nationality) ---------------------------------------------------------------------------
    need_by_nat: dict[str, Need] = {}
    uncoded: list[Need] = []  # populations with no nationality the cases carry (a stateless people, say)
    for need in needs:
        if need.scope == "population" and need.nationality and need.nationality not in need_by_nat:
            need_by_nat[need.nationality] = need
        elif need.scope == "population" and not need.nationality:
            uncoded.append(need)
    nats = set(need_by_nat)
    for tally in (referred, accepted, departed, arrived):
        nats.update(k[1] for k in tally.cases if isinstance(k, tuple) and k[0] == "nat")
    by_population = []
    for nat in nats:
        key = ("nat", nat)
        need = need_by_nat.get(nat)
        row = {"population": need.population if need else "", "nationality": nat,
               "need": need.people if need else None, "source": need.source if need else "",
               "referred_cases": referred.n(key), "referred": referred.p(key), "accepted": accepted.p(key),
               "departed": departed.p(key), "arrived": arrived.p(key)}
        row["share"] = _share(row["departed"], row["need"], 2)
        by_population.append(row)
    for need in uncoded:  # the need alone: no case carries this population as a nationality
        by_population.append({"population": need.population, "nationality": "", "need": need.people,
                              "source": need.source, "referred_cases": None, "referred": None, "accepted": None,
                              "departed": None, "arrived": None, "share": None})
    by_population.sort(key=lambda r: (-(r["need"] or 0), -(r["referred"] or 0), r["nationality"], r["population"]))

    # By region of asylum ------------------------------------------------------------------------------------
    need_by_region: dict[str, Need] = {}
    for need in needs:
        if need.scope == "region" and need.region and need.region not in need_by_region:
            need_by_region[need.region] = need
    by_region = []
    for region in (*REGIONS, OTHER):
        key = ("reg", region)
        need = need_by_region.get(region)
        row = {"region": region, "need": need.people if need else None, "source": need.source if need else "",
               "referred_cases": referred.n(key), "referred": referred.p(key), "accepted": accepted.p(key),
               "departed": departed.p(key), "arrived": arrived.p(key)}
        row["share"] = _share(row["departed"], row["need"], 2)
        by_region.append(row)

    # Months -------------------------------------------------------------------------------------------------
    months = []
    cursor = date(period.start.year, period.start.month, 1)
    while cursor < period.end and cursor <= as_of.date():
        key = cursor.strftime("%Y-%m")
        months.append({"month": key, **monthly.get(key, {"referred": 0, "departed": 0, "arrived": 0})})
        cursor = date(cursor.year + (cursor.month == 12), cursor.month % 12 + 1, 1)

    # The whole picture's headline ---------------------------------------------------------------------------
    total_need = next((n for n in needs if n.scope == "all"), None)
    quota_places = sum(q.places for q in quotas.values() if government is None or q.org_id == government)
    quota_emergency = sum(q.emergency_reserve for q in quotas.values() if government is None or q.org_id == government)
    headline = {
        "need": total_need.people if total_need else None,
        "need_source": total_need.source if total_need else "",
        "places": quota_places, "emergency": quota_emergency,
        "pledged": sum(v for k, v in pledged.items() if government is None or k == government),
        "referred_cases": referred.n("all"), "referred": referred.p("all"), "accepted": accepted.p("all"),
        "departed_cases": departed.n("all"), "departed": departed.p("all"), "arrived": arrived.p("all"),
    }

    return {
        "period": period.key, "year": period.year, "government": str(government) if government else None,
        "computed_at": now.isoformat(), "as_of": as_of.isoformat(),
        "headline": headline,
        "by_population": by_population, "by_region": by_region, "by_government": by_government,
        "months": months,
        "stages": _stage_times(session, start=start, end=end, now=now, government=government),
        "indicators": _indicators(session, end=end, now=now, government=government, places=quota_places,
                                  emergency=quota_emergency, gov_ids=gov_ids),
        "crises": _crises(session, government=government),
        "obstacles": _obstacles(session, government=government),
        "blocked": _blocked(session, government=government),
        "sources": sorted({n.source for n in needs}),
    }


def _share(part: int | None, whole: int | None, digits: int = 1) -> float | None:
    """A percentage (one decimal unless told), None when there is nothing to divide by."""
    if not whole or part is None:
        return None
    return round(100.0 * part / whole, digits)


def _government_cases(government: uuid.UUID) -> Any:
    """Cases referred to ``government`` (in any live status) or owned by it."""
    referred = select(Referral.case_id).where(Referral.recipient_org_id == government,
                                              Referral.status.in_([*ACCEPTED, ReferralStatus.pending,
                                                                           ReferralStatus.in_progress]))
    return or_(Case.id.in_(referred), Case.owner_org_id == government)


def _stage_times(session: Session, *, start: datetime, end: datetime, now: datetime,
                 government: uuid.UUID | None) -> list[dict[str, Any]]:
    # The type keeps SQLite's timestamps read back as datetimes (a window function's result has no column type).
    nxt = func.lead(StageEvent.at, type_=StageEvent.__table__.c.at.type).over(
        partition_by=StageEvent.case_id, order_by=(StageEvent.at, StageEvent.id))
    events = select(StageEvent.case_id, StageEvent.to_stage.label("stage"), StageEvent.at.label("entered"),
                    nxt.label("left")).where(StageEvent.at < end)
    if government:
        events = events.join(Case, Case.id == StageEvent.case_id).where(_government_cases(government))
    stays = events.subquery()
    ended = (stays.c.left.is_not(None), stays.c.left >= start, stays.c.left < end, stays.c.stage.in_(TIMED_STAGES))
    # Per (stage, priority): (stays, median days, 90th percentile days by nearest rank, stays within the target).
    summary: dict[tuple[str, str], tuple[int, float | None, float | None, int]] = {}
    if db.dialect_name(session) == "postgresql":
        # Aggregated by the database (millions of stays at a national programme's volume): a few dozen rows back.
        days = func.extract("epoch", stays.c.left - stays.c.entered) / 86400.0
        target = case(*[((stays.c.stage == stage) & (Case.processing_priority == priority),
                         _target(stage, priority)) for stage in TIMED_STAGES for priority in PRIORITIES])
        q = (select(stays.c.stage, Case.processing_priority, func.count(),
                    func.percentile_cont(0.5).within_group(days), func.percentile_disc(0.9).within_group(days),
                    func.count().filter(days <= target))
             .join(Case, Case.id == stays.c.case_id).where(*ended)
             .group_by(stays.c.stage, Case.processing_priority))
        for stage, priority, n, median, p90, within in session.execute(q):
            summary[(stage, str(priority))] = (int(n), float(median), float(p90), int(within))
    else:
        durations: dict[tuple[str, str], list[float]] = defaultdict(list)
        rows = session.execute(select(stays.c.stage, Case.processing_priority, stays.c.entered, stays.c.left)
                               .join(Case, Case.id == stays.c.case_id).where(*ended))
        for stage, priority, entered, left in rows:
            days_in = ((_aware(left) - _aware(entered)).total_seconds()) / 86400  # type: ignore[operator]
            durations[(stage, str(priority))].append(days_in)
        for (stage, priority), values in durations.items():
            values.sort()
            limit = _target(stage, Priority(priority))
            summary[(stage, priority)] = (len(values), statistics.median(values),
                                          values[max(0, math.ceil(0.9 * len(values)) - 1)],
                                          sum(1 for v in values if v <= limit))

    current = select(Case.stage, Case.processing_priority, func.count(),
                     func.sum(case((Case.stage_due_at < now, 1), else_=0)))
    current = current.where(Case.stage.in_(TIMED_STAGES))
    if government:
        current = current.where(_government_cases(government))
    now_in: dict[tuple[str, str], tuple[int, int]] = {
        (stage, str(priority)): (int(n), int(late or 0))
        for stage, priority, n, late in session.execute(current.group_by(Case.stage, Case.processing_priority))
    }
    out = []
    for stage in TIMED_STAGES:
        for priority in PRIORITIES:
            key = (stage, priority.value)
            stays_n, median, p90, within = summary.get(key, (0, None, None, 0))
            n_now, late = now_in.get(key, (0, 0))
            if not stays_n and not n_now:
                continue
            out.append({
                "stage": stage, "priority": priority.value, "stays": stays_n,
                "median_days": round(median, 1) if median is not None else None,
                "p90_days": round(p90, 1) if p90 is not None else None,
                "target_days": _target(stage, priority), "within": within, "within_share": _share(within, stays_n),
                "now": n_now, "late_now": late,
            })
    return out


def _target(stage: str, priority: Priority) -> int:
    """Days allowed in ``stage`` at this processing priority (rdn.cases.pipeline's clocks)."""
    return pipeline._STAGE_DAYS[pipeline.Stage(stage)][pipeline._PRIORITY_INDEX[priority]]


def _indicators(session: Session, *, end: datetime, now: datetime, government: uuid.UUID | None,
                places: int, emergency: int, gov_ids: set[uuid.UUID]) -> dict[str, Any]:
    """Of the cases submitted in the twelve months that ended six months ago, those that departed within 183 days.
    For a government: the cases referred to it (in any status) or that it owns, and departed to it."""
    cohort_end = min(now, end) - SIX_MONTHS
    cohort_start = cohort_end - timedelta(days=365)
    window = and_(Case.submitted_at >= cohort_start, Case.submitted_at < cohort_end)
    q = select(Case.id, Case.owner_org_id, Case.submitted_at, Case.departed_at).where(window)
    if government:
        referred = select(Referral.case_id).where(Referral.recipient_org_id == government,
                                                  Referral.purpose == Purpose.resettlement)
        q = q.where(or_(Case.id.in_(referred), Case.owner_org_id == government))
    rows = session.execute(q).all()
    within = 0
    if government:
        dest = destinations(session, select(Case.id).where(window, Case.departed_at.is_not(None)))
    for r in rows:
        if r.departed_at is None or _aware(r.departed_at) - _aware(r.submitted_at) > SIX_MONTHS:  # type: ignore[operator]
            continue
        if government and (dest.get(r.id) or (r.owner_org_id if r.owner_org_id in gov_ids else None)) != government:
            continue
        within += 1
    submitted = len(rows)
    return {
        "cohort_start": cohort_start.date().isoformat(), "cohort_end": cohort_end.date().isoformat(),
        "submitted": submitted, "within_six_months": within, "within_share": _share(within, submitted),
        "places": places, "emergency": emergency, "emergency_share": _share(emergency, places),
    }


def _crises(session: Session, *, government: uuid.UUID | None) -> list[dict[str, Any]]:
    crises = list(session.scalars(select(Crisis).where(Crisis.exercise.is_(False),
                                                       Crisis.status != CrisisStatus.closed)
                                  .order_by(Crisis.declared_at.desc())))
    if not crises:
        return []
    pledges = session.execute(select(Pledge.crisis_id, Pledge.org_id, Pledge.places, Pledge.status)
                              .where(Pledge.crisis_id.in_([c.id for c in crises]))).all()
    out = []
    for crisis in crises:
        mine = [p for p in pledges if p.crisis_id == crisis.id and (government is None or p.org_id == government)]
        kept = [p for p in mine if p.status in KEPT_PLEDGES]
        out.append({
            "id": str(crisis.id), "reference": crisis.reference, "title": crisis.title, "status": str(crisis.status),
            "declared": _aware(crisis.declared_at).date().isoformat(),  # type: ignore[union-attr]
            "target": crisis.target_places, "pledged": sum(p.places for p in kept),
            "proposed": sum(p.places for p in mine if p.status == PledgeStatus.proposed),
            "governments": len({p.org_id for p in kept}),
        })
    return out


def _blocked(session: Session, *, government: uuid.UUID | None) -> dict[str, int]:
    """Cases and people blocked now by any unresolved obstacle, each case once."""
    per_case = (select(Block.case_id, func.max(Block.people).label("people"))
                .join(Obstacle, Obstacle.id == Block.obstacle_id)
                .where(Block.released_at.is_(None), Obstacle.status != ObstacleStatus.resolved))
    if government:
        per_case = per_case.join(Case, Case.id == Block.case_id).where(_government_cases(government))
    sub = per_case.group_by(Block.case_id).subquery()
    cases, people = session.execute(select(func.count(sub.c.case_id), func.coalesce(func.sum(sub.c.people), 0))).one()
    return {"cases": int(cases), "people": int(people)}


def _obstacles(session: Session, *, government: uuid.UUID | None) -> list[dict[str, Any]]:
    # One row per obstacle and case first: a case blocked on two checklist items by one obstacle is one case.
    blocks = (select(Block.obstacle_id, Block.case_id, func.max(Block.people).label("people"))
              .where(Block.released_at.is_(None)))
    if government:
        blocks = blocks.join(Case, Case.id == Block.case_id).where(_government_cases(government))
    per_case = blocks.group_by(Block.obstacle_id, Block.case_id).subquery()
    q = (select(Obstacle.id, Obstacle.title, Obstacle.country, Obstacle.type, Obstacle.status,
                func.count(per_case.c.case_id), func.coalesce(func.sum(per_case.c.people), 0))
         .join(per_case, per_case.c.obstacle_id == Obstacle.id)
         .where(Obstacle.status != ObstacleStatus.resolved))
    rows = session.execute(q.group_by(Obstacle.id, Obstacle.title, Obstacle.country, Obstacle.type,
                                      Obstacle.status)).all()
    out = [{"id": str(i), "title": title, "country": country, "type": str(kind), "status": str(status),
            "cases": int(n), "people": int(people)} for i, title, country, kind, status, n, people in rows]
    out.sort(key=lambda r: (-r["people"], r["title"]))
    return out

"""An office's figures: registrations, screened, referred and arrived week by week, by nationality and by pathway;
the time from registration to referral (median and 90th percentile); the interviews people missed; registrations
by status. The secretariat's staff see every office's (each office's staff their own).

Everything is counted by the database (GROUP BY, and ORDER BY with OFFSET for the percentiles), never by loading
the registrations: an office with 100,000 registrations costs a few small queries.

What the figures count:

* **registrations**: every registration but the duplicates merged into another, by the week it was made;
* **screened**: those with at least one screening result, by the week they were made;
* **referred**: those converted into a case referred to a government, by the week of the referral;
* **arrived**: those whose case reached the stage ``arrived``, by the week of arrival.

Weeks start on Monday (UTC); the oldest shown is ``weeks - 1`` weeks before the current one.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Integer, and_, case, cast, exists, func, select
from sqlalchemy.orm import Session

from rdn.cases.models import Case
from rdn.cases.pipeline import Stage
from rdn.core import clock, policy
from rdn.core.identity import Principal
from rdn.mobility.models import (
    Appointment,
    AppointmentStatus,
    Office,
    Registration,
    RegistrationStatus,
    ScreeningResult,
    ScreeningRule,
)
from rdn.pathways.models import Pathway

MEASURES = ("registrations", "screened", "referred", "arrived")
UNIX_JULIAN_DAY = 2440587.5  # julianday('1970-01-01 00:00:00')


@dataclass(frozen=True)
class Week:
    week: date  # its Monday
    registrations: int = 0
    screened: int = 0
    referred: int = 0
    arrived: int = 0


@dataclass(frozen=True)
class Group:
    key: str  # a nationality's ISO code, or a pathway's id ("" for rules without one)
    label: str
    registrations: int = 0
    screened: int = 0
    qualifying: int = 0  # registrations with a current qualifying screening result (by pathway)
    referred: int = 0
    arrived: int = 0


@dataclass(frozen=True)
class Figures:
    offices: list[Office]
    since: date
    weeks: list[Week]
    nationalities: list[Group]
    pathways: list[Group]
    statuses: dict[str, int]
    totals: dict[str, int]
    median_days: float | None  # from registration to referral
    p90_days: float | None
    appointments: dict[str, int] = field(default_factory=dict)  # by status

    @property
    def no_show_rate(self) -> float | None:
        """Of the interviews that were due (attended or missed), the share missed."""
        due = self.appointments.get("attended", 0) + self.appointments.get("no_show", 0)
        return self.appointments.get("no_show", 0) / due if due else None


# Dialects ---------------------------------------------------------------------------------------------------------


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def epoch_days(session: Session, column: Any) -> ColumnElement[Any]:
    """Days since 1970-01-01 UTC (with the fraction of the day)."""
    if _postgres(session):
        return func.extract("epoch", column) / 86400.0
    return func.julianday(column) - UNIX_JULIAN_DAY


def _whole(session: Session, value: ColumnElement[Any]) -> ColumnElement[int]:
    """The whole part of a non-negative number (PostgreSQL rounds a cast, SQLite truncates it)."""
    return cast(func.floor(value), Integer) if _postgres(session) else cast(value, Integer)


def week_of(session: Session, column: Any, start: datetime) -> ColumnElement[int]:
    """Which week since ``start`` (0, 1, ...) ``column`` falls in."""
    since = (start - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() / 86400
    return _whole(session, (epoch_days(session, column) - since) / 7)


# Figures ----------------------------------------------------------------------------------------------------------


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def visible_offices(session: Session, actor: Principal, office: Office | None = None) -> list[Office]:
    """The offices whose figures the actor sees: ``office`` (if allowed), or all those the actor may see."""
    if office is not None:
        policy.require(actor, "mobility.figures", office)
        return [office]
    policy.require(actor, "mobility.figures")
    return [o for o in session.scalars(policy.scoped(actor, Office).order_by(Office.name))
            if policy.can(actor, "mobility.figures", o)]


def _screened() -> ColumnElement[bool]:
    return exists(select(ScreeningResult.id).where(ScreeningResult.registration_id == Registration.id))


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _arrived() -> ColumnElement[bool]:
    return Case.stage == Stage.arrived.value


def _by_week(session: Session, ids: list[uuid.UUID], start: datetime, weeks: int) -> list[Week]:
    counts: dict[int, dict[str, int]] = {k: dict.fromkeys(MEASURES, 0) for k in range(weeks)}
    counted = Registration.office_id.in_(ids), Registration.status != RegistrationStatus.merged
    made = week_of(session, Registration.created_at, start).label("k")
    for k, registrations, screened in session.execute(
            select(made, func.count(Registration.id), _count_if(_screened()))
            .where(*counted, Registration.created_at >= start).group_by(made)):
        if k in counts:
            counts[k]["registrations"], counts[k]["screened"] = int(registrations), int(screened)
    referred = week_of(session, Registration.referred_at, start).label("k")
    for k, n in session.execute(select(referred, func.count(Registration.id))
                                .where(*counted, Registration.referred_at >= start).group_by(referred)):
        if k in counts:
            counts[k]["referred"] = int(n)
    when = func.coalesce(Case.arrived_at, Case.stage_since)
    arrived = week_of(session, when, start).label("k")
    for k, n in session.execute(select(arrived, func.count(Registration.id))
                                .join(Case, Case.id == Registration.case_id)
                                .where(*counted, _arrived(), when >= start).group_by(arrived)):
        if k in counts:
            counts[k]["arrived"] = int(n)
    first = start.date()
    return [Week(first + timedelta(weeks=k), **counts[k]) for k in range(weeks)]


def _by_nationality(session: Session, ids: list[uuid.UUID]) -> list[Group]:
    rows = session.execute(
        select(Registration.nationality, func.count(Registration.id), _count_if(_screened()),
               _count_if(Registration.referred_at.is_not(None)), _count_if(and_(Case.id.is_not(None), _arrived())))
        .outerjoin(Case, Case.id == Registration.case_id)
        .where(Registration.office_id.in_(ids), Registration.status != RegistrationStatus.merged)
        .group_by(Registration.nationality)).all()
    out = [Group(code, code, registrations=int(n), screened=int(s), referred=int(r), arrived=int(a))
           for code, n, s, r, a in rows]
    return sorted(out, key=lambda g: (-g.registrations, g.key))


def _by_pathway(session: Session, ids: list[uuid.UUID]) -> list[Group]:
    found: dict[str, dict[str, Any]] = {}

    def slot(pathway_id: uuid.UUID | None, name: str | None) -> dict[str, Any]:
        key = str(pathway_id) if pathway_id else ""
        return found.setdefault(key, {"label": name or "", "qualifying": 0, "referred": 0, "arrived": 0})

    people = func.count(func.distinct(ScreeningResult.registration_id))
    qualifying = (select(ScreeningRule.pathway_id, Pathway.name, people)
                  .join(ScreeningRule, ScreeningRule.id == ScreeningResult.rule_id)
                  .join(Registration, Registration.id == ScreeningResult.registration_id)
                  .outerjoin(Pathway, Pathway.id == ScreeningRule.pathway_id)
                  .where(Registration.office_id.in_(ids), Registration.status != RegistrationStatus.merged,
                         ScreeningResult.current.is_(True), ScreeningResult.qualifies.is_(True))
                  .group_by(ScreeningRule.pathway_id, Pathway.name))
    for pathway_id, name, n in session.execute(qualifying):
        slot(pathway_id, name)["qualifying"] += int(n)
    referred = (select(Registration.referred_pathway_id, Pathway.name, func.count(Registration.id),
                       _count_if(and_(Case.id.is_not(None), _arrived())))
                .outerjoin(Pathway, Pathway.id == Registration.referred_pathway_id)
                .outerjoin(Case, Case.id == Registration.case_id)
                .where(Registration.office_id.in_(ids), Registration.referred_at.is_not(None))
                .group_by(Registration.referred_pathway_id, Pathway.name))
    for pathway_id, name, n, arrived in session.execute(referred):
        row = slot(pathway_id, name)
        row["referred"] += int(n)
        row["arrived"] += int(arrived)
    out = [Group(key, v["label"], qualifying=v["qualifying"], referred=v["referred"], arrived=v["arrived"])
           for key, v in found.items()]
    return sorted(out, key=lambda g: (-g.referred, -g.qualifying, g.label))


def _percentiles(session: Session, ids: list[uuid.UUID], wanted: tuple[float, ...]) -> list[float | None]:
    """Percentiles (linear between the two nearest ranks) of the days from registration to referral, each read
    by the database as the one or two values at its rank."""
    days = (epoch_days(session, Registration.referred_at) - epoch_days(session, Registration.created_at))
    base = select(days.label("days")).where(Registration.office_id.in_(ids), Registration.referred_at.is_not(None))
    n = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    out: list[float | None] = []
    for p in wanted:
        if not n:
            out.append(None)
            continue
        rank = p * (n - 1)
        low = math.floor(rank)
        values = [float(v) for v in session.scalars(base.order_by(days).offset(low).limit(2))]
        high = values[1] if len(values) > 1 else values[0]
        out.append(round(values[0] + (high - values[0]) * (rank - low), 1))
    return out


def figures(session: Session, actor: Principal, office: Office | None = None, *, weeks: int = 26) -> Figures:
    """The figures of ``office`` (or, with None, of every office the actor may see)."""
    weeks = max(1, min(104, weeks))
    offices = visible_offices(session, actor, office)
    ids = [o.id for o in offices]
    start_day = monday(clock.now().date()) - timedelta(weeks=weeks - 1)
    start = datetime.combine(start_day, time(0), tzinfo=UTC)
    statuses = {s.value: 0 for s in RegistrationStatus}
    for status, n in session.execute(select(Registration.status, func.count(Registration.id))
                                     .where(Registration.office_id.in_(ids)).group_by(Registration.status)):
        statuses[RegistrationStatus(status).value] = int(n)
    nationalities = _by_nationality(session, ids)
    totals = {m: sum(getattr(g, m) for g in nationalities) for m in MEASURES}
    appointments = {s.value: 0 for s in AppointmentStatus}
    for status, n in session.execute(select(Appointment.status, func.count(Appointment.id))
                                     .join(Registration, Registration.id == Appointment.registration_id)
                                     .where(Registration.office_id.in_(ids)).group_by(Appointment.status)):
        appointments[AppointmentStatus(status).value] = int(n)
    median, p90 = _percentiles(session, ids, (0.5, 0.9))
    return Figures(offices=offices, since=start_day, weeks=_by_week(session, ids, start, weeks),
                   nationalities=nationalities, pathways=_by_pathway(session, ids), statuses=statuses,
                   totals=totals, median_days=median, p90_days=p90, appointments=appointments)

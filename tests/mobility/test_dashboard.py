"""The office dashboard: its figures equal counts made independently here from the rows the test wrote; who sees
which office's; the page with its charts and tables; the CSV with its HXL row."""

from __future__ import annotations

import csv
import io
import random
import statistics
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from rdn.cases.models import Case
from rdn.cases.pipeline import Stage
from rdn.core import policy
from rdn.mobility import convert as cv
from rdn.mobility import dashboard
from rdn.mobility.models import AppointmentStatus, Registration, RegistrationStatus
from tests.factories import Client
from tests.mobility.conftest import NOW
from tests.mobility.test_queue import book, make_rule, result


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    rank = p * (len(ordered) - 1)
    low = int(rank)
    high = ordered[min(low + 1, len(ordered) - 1)]
    return round(ordered[low] + (high - ordered[low]) * (rank - low), 1)


@pytest.fixture
def history(mobility_world: Any, session: Session, frozen_now: datetime) -> dict[str, Any]:
    """Forty registrations at the Costa Rica office over eight months, some screened, some referred (two arrived),
    some with interviews; five at the Colombia office."""
    w = mobility_world
    rng = random.Random(7)
    office = w.offices["cr"]
    rules = {"es": make_rule(session, office, w.pathways["es_resettlement"]),
             "ca": make_rule(session, office, w.pathways["ca_labour"], name="Canada labour", destination="CA"),
             "none": make_rule(session, office, None, name="US parole", destination="US")}
    rows: list[Registration] = []
    for n in range(40):
        made = NOW - timedelta(days=rng.randint(0, 240), hours=rng.randint(0, 23))
        reg = w.registration(given_name=f"Persona{n}", nationality=rng.choice(["VE", "VE", "NI", "CO"]),
                             phone=f"+506 8000 {n:04d}", email=f"p{n}@example.org", created_at=made)
        rows.append(reg)
        if n % 5 == 4:
            continue  # never screened
        result(session, reg, rules["es"], qualifies=n % 3 != 0)
        result(session, reg, rules["none"], qualifies=n % 4 == 0, status=None)
        if n % 3 == 0 and n % 4 != 0:
            reg.status = RegistrationStatus.not_qualified
        if n % 6 == 1:
            book(session, office, reg, made + timedelta(days=10),
                 AppointmentStatus.no_show if n % 12 == 1 else AppointmentStatus.attended)
    session.flush()
    referred = [r for i, r in enumerate(rows) if i % 5 != 4 and i % 3 != 0][:9]
    cw = w.p("caseworker_cr")
    for i, reg in enumerate(referred):
        reg.status = RegistrationStatus.interviewed
        case, _ = cv.convert(session, actor=cw, registration=reg, rule_id=rules["es"].id,
                             government_org_id=w.net.orgs["spain"].id)
        reg.referred_at = reg.created_at + timedelta(days=3 + 7 * i, hours=i)
        if i < 2:
            case.stage, case.arrived_at = Stage.arrived.value, reg.referred_at + timedelta(days=20)
    merged = w.registration(given_name="Persona0", phone="+506 8000 9999", email="dup@example.org",
                            status=RegistrationStatus.merged)
    for n in range(5):
        w.registration("co", given_name=f"Otra{n}", nationality="CU", phone=f"+57 300 {n:04d}",
                       email=f"o{n}@example.org")
    session.commit()
    return {"rows": rows, "referred": referred, "merged": merged, "rules": rules}


def test_figures_equal_independent_counts(mobility_world, session, history):
    w = mobility_world
    fig = dashboard.figures(session, w.p("officer_cr"), w.offices["cr"], weeks=26)
    rows: list[Registration] = history["rows"]
    screened = [r for i, r in enumerate(rows) if i % 5 != 4]
    referred = history["referred"]
    cases = {c.id: c for c in session.query(Case).all()}
    arrived = [r for r in referred if cases[r.case_id].stage == "arrived"]
    assert fig.totals == {"registrations": 40, "screened": len(screened), "referred": 9, "arrived": 2}
    assert fig.statuses["merged"] == 1 and sum(fig.statuses.values()) == 41
    assert fig.statuses["referred"] == 9
    start = datetime.combine(fig.since, datetime.min.time(), tzinfo=UTC)
    assert fig.since.weekday() == 0 and len(fig.weeks) == 26

    def week(t: datetime) -> int | None:
        k = (t - start).days // 7
        return k if t >= start and k < 26 else None

    for measure, times in (("registrations", [r.created_at for r in rows]),
                           ("screened", [r.created_at for r in screened]),
                           ("referred", [r.referred_at for r in referred]),
                           ("arrived", [cases[r.case_id].arrived_at for r in arrived])):
        expected = [0] * 26
        for t in times:
            if week(t) is not None:
                expected[week(t)] += 1
        assert [getattr(x, measure) for x in fig.weeks] == expected, measure
    by_nat = {g.key: g for g in fig.nationalities}
    for code in {r.nationality for r in rows}:
        assert by_nat[code].registrations == sum(r.nationality == code for r in rows)
        assert by_nat[code].screened == sum(r.nationality == code for r in screened)
        assert by_nat[code].referred == sum(r.nationality == code for r in referred)
        assert by_nat[code].arrived == sum(r.nationality == code for r in arrived)
    by_path = {g.key: g for g in fig.pathways}
    es = by_path[str(w.pathways["es_resettlement"].id)]
    assert (es.referred, es.arrived) == (9, 2)
    assert es.qualifying == sum(1 for i, r in enumerate(rows) if i % 5 != 4 and i % 3 != 0)
    assert by_path[""].qualifying == sum(1 for i, r in enumerate(rows) if i % 5 != 4 and i % 4 == 0)
    days = [(r.referred_at - r.created_at).total_seconds() / 86400 for r in referred]
    assert fig.median_days == percentile(days, 0.5) and fig.p90_days == percentile(days, 0.9)
    assert fig.median_days == round(statistics.median(days), 1)
    booked = [i for i in range(40) if i % 5 != 4 and i % 6 == 1]
    no_shows = sum(1 for i in booked if i % 12 == 1)
    assert fig.appointments["no_show"] == no_shows and fig.appointments["attended"] == len(booked) - no_shows
    assert fig.no_show_rate == no_shows / len(booked)


def test_who_sees_which_office(mobility_world, session, history):
    w = mobility_world
    assert dashboard.figures(session, w.p("analyst_cr"), w.offices["cr"]).totals["registrations"] == 40
    assert [o.slug for o in dashboard.figures(session, w.p("caseworker_co")).offices] == ["co"]
    everything = dashboard.figures(session, w.p("admin_secretariat"))
    assert {o.slug for o in everything.offices} == {"cr", "co"} and everything.totals["registrations"] == 45
    for persona in ("caseworker_co", "minister_spain", "officer_canada"):
        with pytest.raises(policy.AuthError):
            dashboard.figures(session, w.p(persona), w.offices["cr"])


def test_an_empty_office(mobility_world, session, frozen_now):
    fig = dashboard.figures(session, mobility_world.p("officer_co"), mobility_world.offices["co"], weeks=4)
    assert fig.totals == dict.fromkeys(dashboard.MEASURES, 0) and len(fig.weeks) == 4
    assert fig.median_days is None and fig.no_show_rate is None and fig.pathways == []


def test_the_page_and_the_csv(mobility_world, session, history, client: Client):
    w = mobility_world
    client.login(session, w.net.people["officer_cr"])
    page = client.get("/mobility/dashboard")
    assert page.status_code == 200, page.text
    assert page.text.count("<svg") >= 3 and "<table" in page.text and " style=" not in page.text
    assert "/mobility/dashboard.csv" in page.text
    got = client.get("/mobility/dashboard.csv")
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(got.content.decode("utf-8-sig"))))
    assert rows[1][0].startswith("#") and all(tag.startswith("#") for tag in rows[1])
    assert len(rows) == 2 + 26
    assert sum(int(r[rows[0].index("registrations")]) for r in rows[2:]) == sum(
        x.registrations for x in dashboard.figures(session, w.p("officer_cr"), w.offices["cr"]).weeks)
    for table in ("nationalities", "pathways", "statuses"):
        got = client.get(f"/mobility/dashboard.csv?table={table}")
        rows = list(csv.reader(io.StringIO(got.content.decode("utf-8-sig"))))
        assert got.status_code == 200 and rows[1][0].startswith("#"), table
    assert client.get("/mobility/dashboard.csv?table=people").status_code == 422


def test_the_secretariat_picks_an_office(mobility_world, session, history, client: Client):
    w = mobility_world
    client.login(session, w.net.people["admin_secretariat"])
    everything = client.get("/mobility/dashboard")
    assert everything.status_code == 200 and "Safe Mobility Office Colombia" in everything.text
    assert client.get("/mobility/dashboard?office=cr").status_code == 200
    assert client.get("/mobility/dashboard?office=zz").status_code == 404
    client.login(session, w.net.people["caseworker_co"])
    assert client.get("/mobility/dashboard?office=cr").status_code == 404
    client.login(session, w.net.people["minister_spain"])
    assert client.get("/mobility/dashboard").status_code in (403, 404)

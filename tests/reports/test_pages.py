"""The network picture's pages through real HTTP: the dashboard and a member view draw their charts and tables,
every table downloads as CSV (with its HXL row) and the view as XLSX, the quarterly report prints and downloads as
a PDF, the projected needs are entered by the secretariat (every error named, nothing stored), and the public page
exists only when the deployment turns it on."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from rdn.config import get_settings, set_settings
from rdn.reports import tables
from rdn.reports.models import Need
from tests.factories import Client, api_token, csrf_of


@pytest.fixture
def public_on() -> Iterator[None]:
    original = get_settings()
    set_settings(original.model_copy(update={"public_figures": True, "public_figures_threshold": 10}))
    try:
        yield
    finally:
        set_settings(original)


def browser(app, session, network, persona: str) -> Client:  # type: ignore[no-untyped-def]
    return Client(app).login(session, network.people[persona], org=network.org_of(persona))


def test_the_dashboard_and_a_member_view_draw_every_table(app, session, network) -> None:  # type: ignore[no-untyped-def]
    c = browser(app, session, network, "officer_canada")
    page = c.get("/reports")
    assert page.status_code == 200, page.text[:2000]
    for spec in tables.specs_for("network"):
        if spec.id != "summary":
            assert f'id="t-{spec.id}"' in page.text
    assert 'href="/reports/members/canada?period=' in page.text  # its own view, and only its own
    assert "/reports/members/spain" not in page.text
    member = c.get("/reports/members/canada")
    assert member.status_code == 200, member.text[:2000]
    assert c.get("/reports/members/spain").status_code == 404
    assert c.get("/reports/members/nowhere").status_code == 404


def test_exports(app, session, network) -> None:  # type: ignore[no-untyped-def]
    c = browser(app, session, network, "officer_canada")
    for spec in tables.specs_for("network"):
        r = c.get(f"/reports/tables/{spec.id}.csv?period=2026")
        assert r.status_code == 200, (spec.id, r.text[:500])
        lines = r.content.decode("utf-8-sig").splitlines()
        assert lines[1].split(",")[0].startswith("#")
    x = c.get("/reports/network.xlsx?period=2026")
    assert x.status_code == 200 and x.content[:2] == b"PK"
    q = c.get("/reports/quarterly?period=2026Q3")
    assert q.status_code == 200, q.text[:2000]
    p = c.get("/reports/quarterly.pdf?period=2026Q3")
    assert p.status_code == 200 and p.content.startswith(b"%PDF")
    from pypdf import PdfReader

    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(p.content)).pages)
    assert "2026Q3" in text


def test_needs_are_entered_by_the_secretariat(app, session, network) -> None:  # type: ignore[no-untyped-def]
    c = browser(app, session, network, "admin_secretariat")
    page = c.get("/reports/needs")
    assert page.status_code == 200, page.text[:2000]
    before = session.scalar(select(func.count()).select_from(Need))
    bad = c.post("/reports/needs", data={"csrf_token": csrf_of(page.text), "year": "1999", "population": "",
                                         "people": "-4", "source": ""})
    assert bad.status_code == 422
    for name in ("year", "population", "people", "source"):
        assert f'href="#f-{name}"' in bad.text
    assert session.scalar(select(func.count()).select_from(Need)) == before
    ok = c.post("/reports/needs", data={"csrf_token": csrf_of(page.text), "year": "2026", "population": "Afghan",
                                        "nationality": "AF", "people": "573400",
                                        "source": "UNHCR Projected Global Resettlement Needs 2026"})
    assert ok.status_code == 303
    officer = browser(app, session, network, "officer_canada")
    assert officer.post("/reports/needs", data={"csrf_token": csrf_of(officer.get("/reports/needs").text),
                                                "year": "2026", "population": "X", "people": "5",
                                                "source": "s"}).status_code == 403


def test_the_public_page_is_off_unless_turned_on(app, session, network, public_on) -> None:  # type: ignore[no-untyped-def]
    c = Client(app)
    r = c.get("/transparency")
    assert r.status_code == 200, r.text[:2000]
    assert re.search(r"&lt;10|<10", r.text)
    set_settings(get_settings().model_copy(update={"public_figures": False}))
    assert c.get("/transparency").status_code == 404


def test_the_home_card_shows_the_last_snapshot(app, session, network) -> None:  # type: ignore[no-untyped-def]
    from rdn.core import clock
    from rdn.reports import figures, service

    session.add(Need(year=clock.now().year, population="All populations", people=2_468_135, source="Test"))
    service.refresh(session, period=figures.year_period(clock.now().year))
    session.commit()
    home = browser(app, session, network, "minister_spain").get("/")
    assert "The network against the need" in home.text
    assert "2,468,135" in home.text
    sponsor = browser(app, session, network, "sponsor_group_a").get("/")
    assert "The network against the need" not in sponsor.text


def test_a_need_says_what_it_covers(app, session, network) -> None:  # type: ignore[no-untyped-def]
    c = browser(app, session, network, "admin_secretariat")
    token = csrf_of(c.get("/reports/needs").text)
    base = {"csrf_token": token, "year": "2026", "people": "1000", "source": "UNHCR"}
    # A stateless population: no nationality code, still a population (never the year's headline).
    ok = c.post("/reports/needs", data={**base, "scope": "population", "population": "Stateless Kurds"})
    assert ok.status_code == 303
    need = session.scalar(select(Need).where(Need.population == "Stateless Kurds"))
    assert need is not None and need.scope == "population" and need.nationality is None
    # Everyone, with a region: refused, naming the field; a region without one: refused.
    bad = c.post("/reports/needs", data={**base, "scope": "all", "population": "All", "region": "europe"})
    assert bad.status_code == 422 and 'href="#f-scope"' in bad.text
    bad = c.post("/reports/needs", data={**base, "scope": "region", "population": "Somewhere"})
    assert bad.status_code == 422 and 'href="#f-region"' in bad.text
    # Left to decide: a nationality makes it a population's.
    c.post("/reports/needs", data={**base, "population": "Sudanese", "nationality": "SD"})
    assert session.scalar(select(Need.scope).where(Need.population == "Sudanese")) == "population"
    from rdn.reports import figures

    data = figures.compute(session, period=figures.year_period(2026))
    assert data["headline"]["need"] is None  # a population is never taken for everyone
    kurds = next(r for r in data["by_population"] if r["population"] == "Stateless Kurds")
    assert (kurds["need"], kurds["referred"], kurds["nationality"]) == (1000, None, "")


def test_recompute_now_queues_the_work_and_is_audited(app, session, network) -> None:  # type: ignore[no-untyped-def]
    from rdn.core import outbox
    from rdn.core.audit import AuditEntry
    from rdn.reports.models import Snapshot

    c = browser(app, session, network, "minister_spain")
    page = c.get("/reports/members/spain?period=2026")
    assert page.status_code == 200 and "Recompute now" in page.text
    before = session.scalar(select(Snapshot.computed_at).where(Snapshot.scope.like("member:%:2026")))
    r = c.post("/reports/refresh", data={"csrf_token": csrf_of(page.text), "period": "2026", "member": "spain"})
    assert r.status_code == 303 and r.headers["location"] == "/reports/members/spain?period=2026&queued=1"
    assert "reload the page in a minute" in c.get(r.headers["location"]).text
    jobs = session.scalars(select(outbox.Job).where(outbox.Job.kind == "reports.refresh_view")).all()
    assert len(jobs) == 1 and jobs[0].payload["government"] == str(network.orgs["spain"].id)
    assert session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "report.refresh"))
    outbox.Worker().run_until_idle()
    session.expire_all()
    after = session.scalar(select(Snapshot.computed_at).where(Snapshot.scope.like("member:%:2026")))
    assert before is not None and after is not None and after > before
    # Spain's officials may not ask for Canada's.
    assert c.post("/reports/refresh", data={"csrf_token": csrf_of(page.text), "period": "2026",
                                            "member": "canada"}).status_code == 404


def test_a_bad_period_is_named_not_a_crash(app, session, network) -> None:  # type: ignore[no-untyped-def]
    c = browser(app, session, network, "officer_canada")
    for bad in ("²⁰²⁶", "1999", "2026Q5", "next year"):
        r = c.get(f"/reports?period={bad}")
        assert r.status_code == 422, (bad, r.status_code)
    assert c.get("/reports/needs?year=²").status_code == 200  # a filter that is not a year is no filter
    token = api_token(session, network.people["officer_canada"], network.orgs["canada"], ["read"])
    problem = Client(app).get("/api/v1/reports/network?period=2026Q0", headers=token)
    assert problem.status_code == 422 and "period" in problem.text

"""The pathway catalog: search by nationality and where people are (with "any" on either side), status, type and
words; validation that names the fields and writes nothing; who may add and change pathways; the obstacles
shown beside a search; places offered against places used (the picture, the API and the CSV with HXL); the
pages and the API through HTTP; the demo catalog."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rdn.core import clock, identity, policy
from rdn.core.audit import Actor, AuditEntry
from rdn.core.errors import ValidationFailed
from rdn.core.identity import Principal
from rdn.core.modules import DemoContext
from rdn.core.tenancy import Membership, Organization, Role
from rdn.pathways import catalog
from rdn.pathways.models import (
    Obstacle,
    ObstacleStatus,
    ObstacleType,
    Pathway,
    PathwayKey,
    PathwayStatus,
    Severity,
)
from rdn.pathways.pages_catalog import places_chart
from tests.factories import Client, Network, make_org

YEAR = 2027


def who(session: Session, net: Network, persona: str) -> Principal:
    return identity.principal_for(session, net.people[persona], org_id=net.org_of(persona).id, via="session")


def add(session: Session, org: Organization, name: str, *, nationalities: str = "", locations: str = "",
        status: str = "open", type: str = "resettlement", places: int = 100, used: int = 10, year: int = YEAR,
        **more: Any) -> Pathway:
    """A pathway written as the service writes it (cleaned, keys computed, audited), without the policy."""
    values = catalog.clean_pathway({"name": name, "type": type, "status": status, "nationalities": nationalities,
                                    "locations": locations, "places": places, "places_used": used, "year": year,
                                    **more})
    return catalog._insert(session, Actor("tests"), org, values)


def names(page: Any) -> list[str]:
    return [p.name for p in page.items]


def count(session: Session, model: Any) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


@pytest.fixture
def table(session: Session, network: Network) -> dict[str, Pathway]:
    ca, es, de = network.orgs["canada"], network.orgs["spain"], network.orgs["germany"]
    rows = {
        "A": add(session, ca, "Alpha", nationalities="VE", locations="CO"),
        "B": add(session, ca, "Bravo", status="paused", description="Any nationality, anywhere"),
        "C": add(session, es, "Charlie", nationalities="VE, HT", type="humanitarian_admission"),
        "D": add(session, es, "Delta", locations="EC"),
        "E": add(session, de, "Echo", nationalities="af", locations="pk", responsible="Federal Office"),
        "F": add(session, de, "Foxtrot", nationalities="VE", locations="PE", status="closed"),
    }
    session.flush()
    return rows


@pytest.fixture
def officer_germany(session: Session, network: Network) -> str:
    """Germany's minister, made an officer of Germany too (the personas have no German officer)."""
    session.add(Membership(user_id=network.people["minister_germany"].id, org_id=network.orgs["germany"].id,
                           role=Role.officer))
    session.flush()
    return "minister_germany"


def stored_keys(session: Session, pathway: Pathway) -> list[str]:
    """The search keys stored for ``pathway``, sorted."""
    session.flush()
    return sorted(session.scalars(select(PathwayKey.key).where(PathwayKey.pathway_id == pathway.id)))


# Search ---------------------------------------------------------------------------------------------------------


def test_search_matches_nationality_and_location_with_any_on_either_side(session, network, table):
    reader = who(session, network, "caseworker_unhcr")

    def find(**kw: Any) -> list[str]:
        return names(catalog.search(session, reader, per_page=100, **kw))

    assert stored_keys(session, table["A"]) == ["l:CO", "n:VE"]
    assert stored_keys(session, table["B"]) == []  # open to anyone anywhere: matched by its empty lists
    assert stored_keys(session, table["E"]) == ["l:PK", "n:AF"]  # codes are upper-cased
    # A Venezuelan family in Colombia: named for both, any nationality, any location; open ones first.
    assert find(nationality="VE", current_country="CO") == ["Alpha", "Charlie", "Bravo"]
    assert find(nationality="ve", current_country="co") == ["Alpha", "Charlie", "Bravo"]
    assert find(nationality="VE") == ["Alpha", "Charlie", "Delta", "Bravo", "Foxtrot"]
    assert find(current_country="CO") == ["Alpha", "Charlie", "Bravo"]
    assert find(nationality="AF", current_country="PK") == ["Echo", "Bravo"]
    assert find(nationality="SY", current_country="EC") == ["Delta", "Bravo"]
    assert find() == ["Alpha", "Echo", "Charlie", "Delta", "Bravo", "Foxtrot"]  # by country: CA, DE, ES
    assert find(nationality="VE", status="open") == ["Alpha", "Charlie", "Delta"]
    assert find(status="closed") == ["Foxtrot"]
    assert find(type="humanitarian_admission") == ["Charlie"]
    assert find(q="federal") == ["Echo"]  # who runs it
    assert find(q="ANYWHERE") == ["Bravo"]  # the description
    assert find(q="100%") == []  # LIKE wildcards are taken literally
    paged = catalog.search(session, reader, nationality="VE", per_page=2, page=2)
    assert (paged.total, paged.pages, names(paged)) == (5, 3, ["Delta", "Bravo"])
    beyond = catalog.search(session, reader, nationality="VE", per_page=2, page=9)
    assert (beyond.total, beyond.items) == (5, [])
    assert catalog.search(session, reader, nationality="KP", status="closed").total == 0
    for bad, field in (({"nationality": "V1"}, "nationality"), ({"current_country": "COL"}, "current_country"),
                       ({"type": "ferry"}, "type"), ({"status": "maybe"}, "status")):
        with pytest.raises(ValidationFailed) as exc:
            catalog.search(session, reader, **bad)
        assert exc.value.errors[0].field == field


def test_keys_follow_every_change(session, network, table):
    officer = who(session, network, "officer_canada")
    reader = who(session, network, "caseworker_unhcr")
    assert "Alpha" not in names(catalog.search(session, reader, nationality="VE", current_country="PE"))
    catalog.update_pathway(session, actor=officer, pathway=table["A"], data={"locations": ""})
    assert stored_keys(session, table["A"]) == ["n:VE"]
    assert "Alpha" in names(catalog.search(session, reader, nationality="VE", current_country="PE"))
    catalog.update_pathway(session, actor=officer, pathway=table["A"], data={"nationalities": ["SY", "IQ"]})
    assert stored_keys(session, table["A"]) == ["n:IQ", "n:SY"]
    assert "Alpha" not in names(catalog.search(session, reader, nationality="VE"))


# Writing and validation -------------------------------------------------------------------------------------------


def test_bad_fields_are_named_and_nothing_is_written(session, network):
    officer = who(session, network, "officer_canada")
    before = (count(session, Pathway), count(session, AuditEntry))
    with pytest.raises(ValidationFailed) as exc:
        catalog.create_pathway(session, actor=officer, data={
            "name": " ", "type": "ferry", "status": "maybe", "nationalities": "VE, ZZ", "locations": "Colombia",
            "categories": ["LPN", "XYZ"], "places": "10", "places_used": "12", "processing_days": "1.5",
            "fee_amount": "50", "fee_currency": "", "opens_on": "2027-02-30", "year": "1999"})
    fields = {e.field for e in exc.value.errors}
    assert fields == {"name", "type", "status", "nationalities", "locations", "categories", "places_used",
                      "processing_days", "fee_currency", "opens_on", "year"}
    messages = {e.field: e.message for e in exc.value.errors}
    assert "ZZ" in messages["nationalities"] and "VE" not in messages["nationalities"]
    assert messages["places_used"] == "cannot be more than the places"
    with pytest.raises(ValidationFailed) as exc:
        catalog.create_pathway(session, actor=officer, data={
            "name": "X", "type": "resettlement", "places": "-5", "fee_currency": "euro",
            "opens_on": "2027-06-01", "closes_on": "2027-01-01", "documents": "\n".join(["d"] * 31)})
    assert {e.field for e in exc.value.errors} == {"places", "fee_currency", "closes_on"}
    assert (count(session, Pathway), count(session, AuditEntry)) == before
    # Used places cannot exceed the places on a change either; the pathway keeps its values.
    created = catalog.create_pathway(session, actor=officer, data={"name": "GAR", "type": "resettlement",
                                                                   "places": 50, "places_used": 20})
    with pytest.raises(ValidationFailed) as exc:
        catalog.update_pathway(session, actor=officer, pathway=created, data={"places": 10})
    assert exc.value.errors[0].field == "places_used"
    with pytest.raises(ValidationFailed) as exc:
        catalog.update_pathway(session, actor=officer, pathway=created, data={"keys": ["n:*"]})
    assert exc.value.errors[0].field == "keys"
    assert (created.places, created.places_used) == (50, 20)


def test_a_government_keeps_its_own_pathways(session, network, officer_germany):
    officer = who(session, network, "officer_canada")
    start = datetime(2027, 3, 1, 12, tzinfo=UTC)
    with clock.frozen(start):
        created = catalog.create_pathway(session, actor=officer, data={
            "name": "  Private Sponsorship of Refugees ", "type": "sponsorship_named", "nationalities": "ve; ht",
            "categories": "las, LPN", "places": "200", "places_used": "0", "fee_amount": "0", "fee_currency": "cad",
            "documents": "Undertaking\n\nSettlement plan\nUndertaking", "year": "2027"})
    assert (created.org_id, created.country, created.name) == (network.orgs["canada"].id, "CA",
                                                                "Private Sponsorship of Refugees")
    assert created.nationalities == ["VE", "HT"] and created.categories == ["LPN", "LAS"]
    assert created.documents == ["Undertaking", "Settlement plan"] and created.fee_currency == "CAD"
    assert created.status == PathwayStatus.open and created.status_since == start.date()
    entry = session.scalars(select(AuditEntry).where(AuditEntry.object_id == str(created.id))).one()
    assert entry.action == "pathway.create"
    # Its administrator changes it; a status change dates the status, other changes do not.
    admin = who(session, network, "admin_canada")
    with clock.frozen(start + timedelta(days=10)):
        catalog.update_pathway(session, actor=admin, pathway=created, data={"places_used": 30})
    assert created.status_since == start.date()
    with clock.frozen(start + timedelta(days=20)):
        catalog.update_pathway(session, actor=admin, pathway=created, data={"status": "paused"})
    assert created.status == PathwayStatus.paused and created.status_since == (start + timedelta(days=20)).date()
    actions = session.scalars(select(AuditEntry.action).where(AuditEntry.object_id == str(created.id))
                              .order_by(AuditEntry.seq)).all()
    assert actions == ["pathway.create", "pathway.update", "pathway.update"]
    # Another government's officer: the same 404 as for a missing pathway; the pathway is unchanged.
    german = who(session, network, officer_germany)
    with pytest.raises(policy.NotFound):
        catalog.update_pathway(session, actor=german, pathway=created, data={"places": 1})
    with pytest.raises(policy.NotFound):
        policy.access(session, german, Pathway, created.id, "pathway.manage")
    assert created.places == 200
    own = catalog.create_pathway(session, actor=german, data={"name": "NesT", "type": "sponsorship_matched"})
    assert own.country == "DE"
    # An agency's caseworker and a senior official read but do not add; sponsors do not even read.
    for persona in ("caseworker_unhcr", "minister_spain", "analyst_ec"):
        with pytest.raises(policy.Forbidden):
            catalog.create_pathway(session, actor=who(session, network, persona), data={"name": "X",
                                                                                         "type": "resettlement"})
        assert catalog.search(session, who(session, network, persona)).total == 2
    sponsor = who(session, network, "sponsor_group_a")
    with pytest.raises(policy.Forbidden):
        catalog.search(session, sponsor)
    with pytest.raises(policy.Forbidden):
        catalog.places_by_country(session, sponsor, 2027)
    with pytest.raises(policy.NotFound):
        policy.access(session, sponsor, Pathway, created.id, "pathway.read")
    assert catalog.obstacles_for(session, sponsor, nationality="VE", current_country="CO") == []


# Obstacles beside the search ----------------------------------------------------------------------------------


def obstacle(session: Session, org: Organization, title: str, *, country: str = "CO", nationalities: list[str] | None
             = None, severity: str = "medium", status: str = "confirmed", at: datetime | None = None) -> Obstacle:
    row = Obstacle(country=country, type=ObstacleType.exit_fee, title=title, nationalities=nationalities or [],
                   severity=Severity(severity), status=ObstacleStatus(status), reported_by_org_id=org.id,
                   updated_at=at or clock.now())
    session.add(row)
    session.flush()
    return row


def test_obstacles_for_a_nationality_in_a_country_most_severe_first(session, network):
    agency = network.orgs["unhcr"]
    reader = who(session, network, "caseworker_unhcr")
    base = clock.now()
    obstacle(session, agency, "Overstay fines", nationalities=["VE"], severity="high")
    obstacle(session, agency, "Exit permits for all", severity="critical", status="reported")
    obstacle(session, agency, "Missing passports", nationalities=["VE", "HT"], severity="low")
    obstacle(session, agency, "Haitians only", nationalities=["HT"], severity="critical")
    obstacle(session, agency, "Resolved fines", nationalities=["VE"], severity="critical", status="resolved")
    obstacle(session, agency, "In Ecuador", country="EC", nationalities=["VE"], severity="critical")
    obstacle(session, agency, "Newer high", nationalities=["VE"], severity="high", at=base + timedelta(hours=1))
    found = catalog.obstacles_for(session, reader, nationality="ve", current_country="co")
    assert [o.title for o in found] == ["Exit permits for all", "Newer high", "Overstay fines", "Missing passports"]
    everyone = [o.title for o in catalog.obstacles_for(session, reader, nationality="", current_country="CO")]
    assert set(everyone[:2]) == {"Haitians only", "Exit permits for all"} and len(everyone) == 5
    assert catalog.obstacles_for(session, reader, nationality="VE", current_country="") == []
    for n in range(25):
        obstacle(session, agency, f"Bulk {n}", country="PE")
    assert len(catalog.obstacles_for(session, reader, nationality="VE", current_country="PE")) == catalog.MAX_OBSTACLES


# Places offered and used -------------------------------------------------------------------------------------


def test_the_places_picture_adds_up_the_records(session, network, table):
    add(session, network.orgs["canada"], "Last year", places=999, used=999, year=YEAR - 1)
    reader = who(session, network, "analyst_ec")
    rows = catalog.places_by_country(session, reader, YEAR)
    assert [r.country for r in rows] == ["CA", "DE", "ES"]
    records = session.execute(select(Pathway.country, func.sum(Pathway.places), func.sum(Pathway.places_used))
                              .where(Pathway.year == YEAR).group_by(Pathway.country)).all()
    assert {(r.country, r.places, r.used) for r in rows} == {tuple(r) for r in records}
    for row in rows:
        assert sorted((p.name, p.places, p.used) for p in row.pathways) == sorted(
            (p.name, p.places, p.places_used) for p in table.values() if p.country == row.country)
        assert row.share == pytest.approx(row.used / row.places) and row.count == len(row.pathways)
    sums = catalog.places_by_country(session, reader, YEAR, pathways=False)
    assert [(r.country, r.places, r.used, r.count, r.pathways) for r in sums] == [
        (r.country, r.places, r.used, r.count, []) for r in rows]
    chart = places_chart(rows)
    assert chart is not None and [b["tick"] for b in chart["bars"]] == ["CA", "DE", "ES"]  # all 200 places
    assert all(b["uh"] <= b["h"] for b in chart["bars"])
    assert places_chart([]) is None
    assert catalog.places_by_country(session, reader, YEAR + 5) == []


# Pages and API ---------------------------------------------------------------------------------------------


def browser(app: Any, session: Session, net: Network, persona: str) -> Client:
    return Client(app).login(session, net.people[persona], org=net.org_of(persona))


def test_the_search_page_with_obstacles_picture_and_csv(app, client, session, network, table):
    danger = obstacle(session, network.orgs["unhcr"], "Exit fee for Venezuelans", nationalities=["VE"],
                      severity="critical")
    obstacle(session, network.orgs["unhcr"], "Syrians only", nationalities=["SY"])
    session.commit()
    cw = browser(app, session, network, "caseworker_unhcr")
    page = cw.get("/pathways", params={"nationality": "VE", "current_country": "CO", "year": YEAR})
    assert page.status_code == 200, page.text[-2000:]
    html = page.text
    for name in ("Alpha", "Charlie", "Bravo"):
        assert name in html
    assert "Delta" not in html and "Echo" not in html
    assert f'href="/obstacles/{danger.id}"' in html and "Syrians only" not in html
    assert "Known obstacles in Colombia for people from Venezuela" in html
    assert "places-h" not in html and 'href="/pathways">' in html  # a search links to the network's picture
    catalog_page = cw.get("/pathways", params={"year": YEAR}).text
    assert "<svg" in catalog_page and "Places offered versus used by country" in catalog_page
    assert f"/pathways/places.csv?year={YEAR}" in catalog_page
    assert 'href="/pathways/new"' not in html  # the caseworker cannot add pathways
    empty = cw.get("/pathways", params={"nationality": "KP", "current_country": "AQ", "status": "open"})
    assert empty.status_code == 200 and "No pathways match" in empty.text
    assert "No unresolved obstacles are known there." in empty.text
    assert cw.get("/pathways", params={"year": YEAR}).text.count('class="seg-1"') == 3
    assert cw.get("/pathways", params={"year": 2001}).text.count("No places recorded") == 1
    # The figures as CSV: a header, a row of HXL hashtags, one row per pathway of the year.
    response = cw.get("/pathways/places.csv", params={"year": YEAR})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert lines[0][:2] == ["year", "destination_country"]
    assert lines[1][0] == "#date+year" and all(tag.startswith("#") for tag in lines[1])
    assert len(lines) == 2 + len(table)
    offered = {(r[1], r[3]): (int(r[6]), int(r[7])) for r in lines[2:]}
    assert offered == {(p.country, p.name): (p.places, p.places_used) for p in table.values()}
    assert lines[2][2] == "Canada"
    # Sponsors are refused; anonymous callers are sent to sign in.
    sponsor = browser(app, session, network, "sponsor_group_a")
    assert sponsor.get("/pathways").status_code == 403
    assert sponsor.get("/pathways/places.csv").status_code == 403
    assert sponsor.get(f"/pathways/{table['A'].id}").status_code == 404
    assert client.get("/pathways").status_code == 303


def test_adding_and_changing_a_pathway_through_the_pages(app, session, network, table, officer_germany):
    officer = browser(app, session, network, "officer_canada")
    assert officer.get("/pathways/new").status_code == 200
    form = {"name": "Blended Visa Office-Referred", "type": "sponsorship_matched", "status": "open",
            "nationalities": "", "locations": "", "categories": ["LPN", "LAS"], "year": str(YEAR), "places": "400",
            "places_used": "500", "processing_days": "", "fee_amount": "", "fee_currency": "",
            "documents": "Undertaking\nSettlement plan", "responsible": "IRCC", "description": "", "conditions": "",
            "opens_on": "", "closes_on": ""}
    refused = officer.post("/pathways/new", data=form)
    assert refused.status_code == 422 and "cannot be more than the places" in refused.text
    assert 'value="Blended Visa Office-Referred"' in refused.text and 'href="#f-places_used"' in refused.text
    assert session.scalar(select(Pathway.id).where(Pathway.name == form["name"])) is None
    created = officer.post("/pathways/new", data={**form, "places_used": "120"})
    assert created.status_code == 303, created.text[-2000:]
    pathway_id = uuid.UUID(created.headers["location"].split("/")[2].split("?")[0])
    detail = officer.get(created.headers["location"])
    assert detail.status_code == 200 and "The pathway is in the catalog." in detail.text
    assert "Change this pathway" in detail.text and "Settlement plan" in detail.text
    changed = officer.post(f"/pathways/{pathway_id}", data={**form, "places_used": "150", "status": "paused"})
    assert changed.status_code == 303
    row = session.get(Pathway, pathway_id)
    session.refresh(row)
    assert (row.places_used, row.status, row.categories) == (150, PathwayStatus.paused, ["LPN", "LAS"])
    bad = officer.post(f"/pathways/{pathway_id}", data={**form, "fee_amount": "12"})
    assert bad.status_code == 422 and "is required with a fee" in bad.text
    # Readers see the pathway without the form; others' pathways and missing ones are not found.
    reader = browser(app, session, network, "caseworker_unhcr")
    page = reader.get(f"/pathways/{pathway_id}")
    assert page.status_code == 200 and "Change this pathway" not in page.text
    assert reader.get("/pathways/new").status_code == 403
    assert reader.post("/pathways/new", data=form).status_code == 403
    assert reader.post(f"/pathways/{pathway_id}", data=form).status_code == 404
    german = browser(app, session, network, officer_germany)
    assert german.post(f"/pathways/{pathway_id}", data=form).status_code == 404
    assert german.get(f"/pathways/{pathway_id}").status_code == 200
    assert officer.get(f"/pathways/{uuid.uuid4()}").status_code == 404


def test_the_api(app, session, network, table):
    officer = browser(app, session, network, "officer_canada")
    body = {"name": "Economic Mobility Pathways Pilot", "type": "labour_mobility", "nationalities": ["ve"],
            "places": 2000, "places_used": 860, "year": YEAR, "documents": ["Job offer"]}
    created = officer.post("/api/v1/pathways", json=body)
    assert created.status_code == 201, created.text
    data = created.json()
    assert (data["country"], data["nationalities"], data["status"]) == ("CA", ["VE"], "open")
    assert "keys" not in data
    patched = officer.patch(f"/api/v1/pathways/{data['id']}", json={"status": "closed", "processing_days": None})
    assert patched.status_code == 200 and patched.json()["status"] == "closed"
    bad = officer.patch(f"/api/v1/pathways/{data['id']}", json={"places_used": 5000})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "places_used"
    unknown = officer.post("/api/v1/pathways", json={**body, "colour": "red"})
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "colour"
    reader = browser(app, session, network, "caseworker_unhcr")
    found = reader.get("/api/v1/pathways", params={"nationality": "VE", "current_country": "CO", "per_page": 2})
    assert found.status_code == 200
    assert [p["name"] for p in found.json()["items"]] == ["Alpha", "Charlie"]
    assert found.json()["meta"]["total"] == 4  # Alpha, Charlie, Bravo and the closed pilot (any location)
    assert reader.get("/api/v1/pathways", params={"type": "ferry"}).status_code == 422
    assert reader.get(f"/api/v1/pathways/{data['id']}").json()["name"] == body["name"]
    assert reader.patch(f"/api/v1/pathways/{data['id']}", json={"places": 1}).status_code == 404
    assert reader.post("/api/v1/pathways", json=body).status_code == 403
    places = reader.get("/api/v1/pathways/places", params={"year": YEAR}).json()
    canada = next(c for c in places if c["country"] == "CA")
    assert (canada["places"], canada["used"]) == (2200, 880)
    assert browser(app, session, network, "sponsor_group_a").get("/api/v1/pathways").status_code == 403


# Demo data ----------------------------------------------------------------------------------------------------


def test_the_demo_catalog(session, network):
    orgs = {}
    for short, country in (("au", "AU"), ("br", "BR"), ("ca", "CA"), ("de", "DE"), ("it", "IT"), ("nz", "NZ"),
                           ("es", "ES"), ("gb", "GB"), ("us", "US")):
        orgs[short] = make_org(session, f"demo-{short}", f"Demo {short}", country=country)
    said: list[str] = []
    ctx = DemoContext(session=session, orgs=orgs, say=said.append)
    catalog.seed(ctx)
    total = count(session, Pathway)
    assert total == sum(len(rows) for rows in catalog.DEMO.values()) and said
    catalog.seed(ctx)
    assert count(session, Pathway) == total  # once only
    rows = list(session.scalars(select(Pathway)))
    assert all(0 <= p.places_used <= p.places for p in rows)
    assert all(stored_keys(session, p) == sorted(catalog.pathway_keys(p.nationalities, p.locations)) for p in rows)
    assert {p.country for p in rows} == {"AU", "BR", "CA", "DE", "IT", "NZ", "ES", "GB", "US"}
    assert {p.status for p in rows} == set(PathwayStatus)
    reader = who(session, network, "caseworker_unhcr")
    venezuelans = catalog.search(session, reader, nationality="VE", current_country="CO", per_page=100).items
    assert {"ES", "CA", "US", "BR"} <= {p.country for p in venezuelans}
    assert sum(p.status == PathwayStatus.open for p in venezuelans) >= 5
    assert any(p.nationalities == [] and p.locations == [] for p in venezuelans)
    assert any("VE" in p.nationalities and "CO" in p.locations for p in venezuelans)
    assert all("illustrative" in p.description for p in rows)

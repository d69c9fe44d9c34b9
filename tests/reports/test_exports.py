"""Exports contain only what the viewer may see: a government's tables (CSV, XLSX, the quarterly PDF) hold only
what concerns it, and nobody else opens them (the 404 of a missing government); every table downloads as CSV
with a valid HXL hashtag row (read back by libhxl) and the view as XLSX with one sheet per table; text that a
spreadsheet would run as a formula is written as text."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import hxl
from openpyxl import load_workbook
from pypdf import PdfReader

from rdn.cases.models import ReferralStatus
from rdn.core import clock
from rdn.reports import tables
from tests.factories import Client, api_token
from tests.reports.test_figures import World

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def two_governments(session, network) -> World:  # type: ignore[no-untyped-def]
    """Afghans referred to Canada, Syrians to Spain (with a population name a spreadsheet would run)."""
    w = World(session, network)
    w.need(2026, "=HYPERLINK(\"http://evil.example\",\"Syrian\")", 442400, "UNHCR", nationality="SY")
    w.quota("canada", 2026, 900, 90)
    w.quota("spain", 2026, 700, 70)
    for k in range(3):
        c = w.case(nationality="AF", country="PK", size=4)
        w.refer(c, "canada", ReferralStatus.accepted, datetime(2026, 2, 1 + k, tzinfo=UTC))
    for k in range(2):
        c = w.case(nationality="SY", country="TR", size=5)
        w.refer(c, "spain", ReferralStatus.pending, datetime(2026, 3, 1 + k, tzinfo=UTC))
    w.done()
    session.commit()
    return w


def browser(app, session, network, persona: str) -> Client:  # type: ignore[no-untyped-def]
    return Client(app).login(session, network.people[persona], org=network.org_of(persona))


def rows(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


def test_a_governments_exports_hold_only_what_concerns_it(app, session, network, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    two_governments(session, network)
    officer = browser(app, session, network, "officer_canada")
    with clock.frozen(NOW):
        mine = rows(officer.get("/reports/members/canada/tables/by_population.csv?period=2026").content)
        counted = {line[1]: line[3:7] for line in mine[2:]}  # cases, people referred, accepted, departed
        assert counted["AF"] == ["3", "12", "12", "0"]
        # Spain's Syrians are not in Canada's table: their row is the network's need alone, with nothing counted.
        assert all(v in {"0", ""} for nat, values in counted.items() if nat != "AF" for v in values)
        government = rows(officer.get("/reports/members/canada/tables/by_government.csv?period=2026").content)
        assert [line[0] for line in government[2:]] == ["Canada"]
        book = officer.get("/reports/members/canada/all.xlsx?period=2026")
        wb = load_workbook(io.BytesIO(book.content))
        assert wb.sheetnames == [s.id for s in tables.specs_for("member")]
        sheet = wb["by_government"]
        assert sheet.cell(row=3, column=1).value == "Canada" and sheet.max_row == 3
        pdf = officer.get("/reports/quarterly.pdf?period=2026Q1&member=canada")
        assert pdf.status_code == 200
        text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
        assert "Canada" in text and "Spain" not in text

        # Nobody else opens them: Spain's minister, the agency, a sponsor; the same 404 as for no such government.
        for persona in ("minister_spain", "caseworker_unhcr", "sponsor_group_a"):
            other = browser(app, session, network, persona)
            for url in ("/reports/members/canada/tables/by_population.csv", "/reports/members/canada/all.xlsx",
                        "/reports/quarterly.pdf?period=2026Q1&member=canada", "/reports/members/canada"):
                assert other.get(url).status_code == 404, (persona, url)
            assert other.get("/reports/members/nowhere/all.xlsx").status_code == 404
        spain_token = api_token(session, network.people["minister_spain"], network.orgs["spain"], ["read"])
        assert Client(app).get("/api/v1/reports/members/canada", headers=spain_token).status_code == 404
        spain = Client(app).get("/api/v1/reports/members/spain?period=2026", headers=spain_token).json()
        assert {r["nationality"] for r in spain["by_population"]} == {"SY"}
        # Sponsors see no network figures at all.
        assert browser(app, session, network, "sponsor_group_a").get("/reports/tables/summary.csv").status_code == 403


def test_every_table_downloads_with_a_valid_hxl_row(app, session, network, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    two_governments(session, network)
    c = browser(app, session, network, "admin_secretariat")
    with clock.frozen(NOW):
        for spec in tables.specs_for("network"):
            r = c.get(f"/reports/tables/{spec.id}.csv?period=2026")
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
            assert f"rdn-network-{spec.id}-2026.csv" in r.headers["content-disposition"]
            path = tmp_path / f"{spec.id}.csv"
            path.write_bytes(r.content)
            dataset = hxl.data(str(path), hxl.InputOptions(allow_local=True))
            assert [col.display_tag for col in dataset.columns] == [col.hxl for col in spec.columns]
            assert len(list(dataset)) == len(rows(r.content)) - 2
        book = load_workbook(io.BytesIO(c.get("/reports/network.xlsx?period=2026").content))
        assert book.sheetnames == [s.id for s in tables.specs_for("network")]
        for spec in tables.specs_for("network"):
            assert [cell.value for cell in book[spec.id][2]] == [col.hxl for col in spec.columns]
        # The population a spreadsheet would run as a formula is text, in the CSV and in the workbook.
        population = rows(c.get("/reports/tables/by_population.csv?period=2026").content)
        assert any(line[0].startswith("'=HYPERLINK") for line in population[2:])
        sheet = book["by_population"]
        cells = [row[0] for row in sheet.iter_rows(min_row=3)]
        formula = next(cell for cell in cells if str(cell.value).startswith("=HYPERLINK"))
        assert formula.data_type == "s"


def test_crises_are_listed_only_to_their_participants(app, session, network) -> None:  # type: ignore[no-untyped-def]
    from rdn.redphone.models import Participant, ParticipantRole

    w = two_governments(session, network)
    crisis = w.crisis("CR-SPAIN", datetime(2026, 10, 1, tzinfo=UTC), target=300)
    session.add(Participant(crisis_id=crisis.id, org_id=network.orgs["spain"].id, role=ParticipantRole.chair))
    session.commit()
    with clock.frozen(NOW):
        spain = browser(app, session, network, "minister_spain")
        canada = browser(app, session, network, "officer_canada")
        assert "Crisis CR-SPAIN" in spain.get("/reports?period=2026").text
        assert "Crisis CR-SPAIN" in spain.get("/reports/tables/crises.csv?period=2026").content.decode("utf-8-sig")
        for url in ("/reports?period=2026", "/reports/tables/crises.csv?period=2026",
                    "/reports/quarterly?period=2026Q4", "/reports/members/canada?period=2026"):
            r = canada.get(url)
            assert r.status_code == 200 and "CR-SPAIN" not in r.content.decode("utf-8-sig"), url
        token = api_token(session, network.people["officer_canada"], network.orgs["canada"], ["read"])
        assert "CR-SPAIN" not in Client(app).get("/api/v1/reports/network?period=2026", headers=token).text

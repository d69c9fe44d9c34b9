"""Importing households from CSV and XLSX: whole-file error reports, atomicity, the two layouts, warnings,
the bulk write (numbers, name index, checklist, clocks, audit) and who may import."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from rdn.cases import imports, search, service
from rdn.cases.imports import ImportReport, import_file
from rdn.cases.models import Case, CaseImport, ChecklistEntry, ChecklistItem, Member, StageEvent
from rdn.cases.pipeline import Stage
from rdn.core import audit, policy
from rdn.core.audit import AuditEntry
from rdn.core.errors import ValidationFailed
from tests.cases.conftest import CasesWorld

HEADER = ["case_key", "current_country", "current_location", "category_primary", "category_secondary",
          "processing_priority", "submission_priority", "relationship", "given_name", "family_name", "other_names",
          "sex", "date_of_birth", "nationality", "stateless", "languages", "education", "occupation",
          "specific_needs"]
CASE = {"current_country": "PK", "current_location": "Islamabad", "category_primary": "LPN",
        "category_secondary": "LAS", "processing_priority": "urgent", "submission_priority": "normal"}
GIVEN = ["Ahmad", "Zainab", "Omar", "Layla", "Yusuf", "Maryam", "Hassan", "Aisha", "Karim", "Nour"]
SYLLABLES = ["ka", "lo", "mi", "ra", "su", "te", "no", "ba", "di", "ze", "ha", "ju", "fa", "wo", "qi", "ya"]


def family_name(i: int) -> str:
    """A distinct made-up family name per number (so people of different cases never look alike)."""
    parts = []
    for _ in range(4):
        parts.append(SYLLABLES[i % len(SYLLABLES)])
        i //= len(SYLLABLES)
    return "".join(parts).title()


def household_rows(key: str, family: str, *, size: int = 4, principal: str = "Ahmad", birth: str = "1980",
                   case_on_every_row: bool = True, **case: str) -> list[dict[str, str]]:
    fields = {**CASE, **case}
    rows = [{"case_key": key, **fields, "relationship": "principal", "given_name": principal, "family_name": family,
             "sex": "male", "date_of_birth": birth, "nationality": "AF", "languages": "prs; ps",
             "education": "secondary", "occupation": "Teacher"}]
    if size > 1:
        rows.append({"case_key": key, "relationship": "spouse", "given_name": "Zainab", "family_name": family,
                     "sex": "female", "date_of_birth": "1984-05-06", "nationality": "AF", "languages": "prs"})
    for i in range(size - 2):
        rows.append({"case_key": key, "relationship": "child", "given_name": GIVEN[(i + 2) % len(GIVEN)],
                     "family_name": family, "sex": "female" if i % 2 else "male", "date_of_birth": str(2008 + i),
                     "nationality": "AF", "specific_needs": "child_at_risk" if i == 0 else ""})
    if case_on_every_row:
        for row in rows[1:]:
            row.update(fields)
    return rows


def to_csv(rows: list[dict[str, Any]], header: list[str] | None = None, *, delimiter: str = ",",
           hxl: list[str] | None = None, bom: bool = False) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    header = header or HEADER
    writer.writerow(header)
    if hxl:
        writer.writerow(hxl)
    for row in rows:
        writer.writerow([row.get(h, "") for h in header])
    return (("\ufeff" if bom else "") + out.getvalue()).encode()


def big_file(households: int) -> list[dict[str, str]]:
    rows = []
    for i in range(households):
        rows += household_rows(f"H{i}", family_name(i), birth=str(1960 + i % 40))
    return rows


def run(world: CasesWorld, data: bytes, filename: str = "people.csv", persona: str = "caseworker_unhcr",
        **kw: Any) -> ImportReport:
    return import_file(world.session, actor=world.p(persona), data=data, filename=filename, **kw)


def count(world: CasesWorld, model: Any) -> int:
    return world.session.scalar(select(func.count()).select_from(model)) or 0


def fields(report: ImportReport) -> list[str]:
    return [e.field for e in report.errors]


# The whole file, at once -----------------------------------------------------------------------------------------


def test_one_bad_row_in_ten_thousand_people_imports_nothing_and_the_fixed_file_imports_everything(
        cases_world: CasesWorld) -> None:
    world = cases_world
    rows = big_file(2500)
    assert len(rows) == 10_000
    rows[5001]["sex"] = "x"  # spreadsheet row 5003 (the header is row 1)
    before = {m: count(world, m) for m in (Case, Member, CaseImport, AuditEntry)}

    report = run(world, to_csv(rows))
    assert not report.ok and not report.imported
    assert fields(report) == ["row 5003, column sex"]
    assert "must be one of" in report.errors[0].message
    assert (report.cases, report.people) == (2500, 10_000)
    assert {m: count(world, m) for m in before} == before

    rows[5001]["sex"] = "female"
    progress: list[tuple[int, int | None, str]] = []
    report = run(world, to_csv(rows), progress=lambda done, total, phase: progress.append((done, total, phase)))
    assert report.ok and report.imported, report.errors
    assert (report.cases, report.people) == (2500, 10_000)
    assert {phase for _d, _t, phase in progress} >= {"read", "validate", "write"}
    s = world.session
    imported = select(Case.id).where(Case.import_id == report.import_id)
    assert s.scalar(select(func.count()).select_from(Member).where(Member.case_id.in_(imported))) == 10_000
    numbers = s.scalars(select(Case.number).where(Case.import_id == report.import_id)).all()
    assert len(numbers) == len(set(numbers)) == 2500
    assert report.numbers == (min(numbers), max(numbers))
    row = s.get(CaseImport, report.import_id)
    assert row is not None and (row.cases, row.people, row.filename) == (2500, 10_000, "people.csv")

    # Name search finds an imported person by another spelling of their names.
    target = family_name(1234)
    found = search.list_cases(s, world.p("caseworker_unhcr"),
                              search.CaseFilters(q=f"Mohammed {target.upper()}"), per_page=5)
    assert found.total == 0  # nobody of that name (Ahmad is the principal)
    found = search.list_cases(s, world.p("caseworker_unhcr"), search.CaseFilters(q=f"Ahmed {target}"))
    assert [c.principal_name for c in found.items] == [f"Ahmad {target}"]


def test_an_imported_case_looks_like_one_opened_by_hand(cases_world: CasesWorld) -> None:
    world = cases_world
    rows = household_rows("A", "Rahimi", principal="Mohammad", size=3, case_on_every_row=False)
    rows.insert(0, rows.pop(1))  # the spouse first: the principal still comes first on the case
    report = run(world, to_csv(rows), filename="rahimi.csv")
    assert report.ok, report.errors
    by_hand = world.open_case()
    s = world.session
    case = s.scalars(select(Case).where(Case.import_id == report.import_id)).one()
    for attr in ("principal_name", "nationality", "size", "current_country", "current_location", "category_primary",
                 "category_secondary", "stage", "preferences", "version", "previous_numbers"):
        assert getattr(case, attr) == getattr(by_hand, attr), attr
    assert case.processing_priority == "urgent" and case.submission_priority == "normal"
    expected = Case(stage=Stage.referred, stage_since=case.stage_since, opened_at=case.opened_at,
                    processing_priority="urgent", submission_priority="normal")
    service.recompute_clocks(expected)
    assert (case.stage_due_at, case.target_submission_on, case.target_departure_on, case.due_at) == (
        expected.stage_due_at, expected.target_submission_on, expected.target_departure_on, expected.due_at)
    members = service.members_of(s, case)
    assert [(m.position, m.relationship, m.given_name) for m in members] == [
        (0, "principal", "Mohammad"), (1, "spouse", "Zainab"), (2, "child", "Omar")]
    assert members[0].languages == ["prs", "ps"] and members[2].specific_needs == ["child_at_risk"]
    assert members[1].birth_date == date(1984, 5, 6) and members[1].birth_year == 1984
    assert members[0].name_keys == sorted(service.names.member_keys("Mohammad", "Rahimi"))
    # The look-alike key, as a case opened by hand has it.
    assert members[0].look_alike_key == service.names.look_alike_key("Mohammad", "Rahimi")
    assert members[0].look_alike_key is not None
    # The checklist: every item pending, with no row written (as for a case opened by hand).
    assert [(e.item, e.status) for e in service.checklist(s, case)] == [
        (e.item, e.status) for e in service.checklist(s, by_hand)] == [(item, "pending") for item in ChecklistItem]
    assert count(world, ChecklistEntry) == 0
    event = s.scalars(select(StageEvent).where(StageEvent.case_id == case.id)).one()
    assert (event.from_stage, event.to_stage, event.note) == (None, "referred", "Imported from rahimi.csv")
    entries = s.scalars(select(AuditEntry).where(AuditEntry.object_id == str(case.id))).all()
    assert [(e.action, e.details) for e in entries] == [
        ("case.import", {"import": str(report.import_id), "number": case.number, "members": 3})]
    entry = s.scalars(select(AuditEntry).where(AuditEntry.object_type == "case_import")).one()
    assert entry.object_id == str(report.import_id) and entry.details["cases"] == 1
    assert audit.verify(s).ok


def test_dry_run_checks_everything_and_writes_nothing(cases_world: CasesWorld) -> None:
    world = cases_world
    before = {m: count(world, m) for m in (Case, Member, CaseImport, AuditEntry)}
    report = run(world, to_csv(big_file(3)), dry_run=True)
    assert report.ok and report.dry_run and not report.imported
    assert (report.cases, report.people) == (3, 12)
    assert {m: count(world, m) for m in before} == before
    bad = big_file(3)
    bad[4]["nationality"] = "XX"
    bad[7]["date_of_birth"] = "1987-02-30"
    report = run(world, to_csv(bad), dry_run=True)
    assert fields(report) == ["row 6, column nationality", "row 9, column date_of_birth"]


# Columns ------------------------------------------------------------------------------------------------------


def test_unknown_and_missing_columns_are_named(cases_world: CasesWorld) -> None:
    header = [h for h in HEADER if h not in ("sex", "category_primary")] + ["favourite_colour"]
    report = run(cases_world, to_csv(big_file(1), header))
    assert not report.ok
    assert fields(report) == ["row 1, column favourite_colour", "row 1, column category_primary",
                              "row 1, column sex"]
    assert "is not a column" in report.errors[0].message and "required" in report.errors[2].message


def test_headers_are_trimmed_and_case_insensitive_and_delimiters_are_sniffed(cases_world: CasesWorld) -> None:
    header = [f"  {h.upper().replace('_', ' ')} " for h in HEADER]
    rows = [{f"  {k.upper().replace('_', ' ')} ": v for k, v in row.items()} for row in big_file(2)]
    for delimiter in (";", "\t", ","):
        report = run(cases_world, to_csv(rows, header, delimiter=delimiter, bom=True), dry_run=True)
        assert report.ok, (delimiter, report.errors)
        assert (report.cases, report.people) == (2, 8)


def test_an_hxl_row_is_skipped_and_rows_are_counted_as_a_spreadsheet_shows_them(cases_world: CasesWorld) -> None:
    rows = big_file(2)
    rows[0]["sex"] = "?"
    report = run(cases_world, to_csv(rows, hxl=["#meta+id"] + ["#x_" + h for h in HEADER[1:]]))
    assert fields(report) == ["row 3, column sex"]  # header row 1, hashtags row 2


def test_rows_of_one_case_that_disagree_are_an_error_naming_row_and_column(cases_world: CasesWorld) -> None:
    rows = household_rows("A", "Rahimi") + household_rows("B", "Karimi", case_on_every_row=False)
    rows[2]["current_country"] = "IR"
    rows[3]["current_country"] = "IR"  # one error per case and column, not one per row
    rows[6]["processing_priority"] = "emergency"  # B's principal says urgent, this child says emergency
    report = run(cases_world, to_csv(rows))
    assert fields(report) == ["row 4, column current_country", "row 8, column processing_priority"]
    assert report.errors[0].message == "is 'IR' here but 'PK' on row 2: the rows of one case must agree"
    # Given only on the principal's row is fine, and so is the same value written differently.
    rows[2]["current_country"] = rows[3]["current_country"] = " pk "
    rows[6]["processing_priority"] = ""
    assert run(cases_world, to_csv(rows), dry_run=True).ok


def test_households_are_checked_whole(cases_world: CasesWorld) -> None:
    rows = household_rows("A", "Rahimi") + household_rows("B", "Karimi")
    rows[1]["relationship"] = "principal"  # A has two principal applicants
    rows[4]["relationship"] = "child"  # B has none
    report = run(cases_world, to_csv(rows))
    assert fields(report) == ["row 3, column relationship", "row 6, column relationship"]
    assert all("exactly one principal" in e.message for e in report.errors)


def test_a_case_key_is_required(cases_world: CasesWorld) -> None:
    rows = big_file(1)
    rows[3]["case_key"] = ""
    assert fields(run(cases_world, to_csv(rows))) == ["row 5, column case_key"]


def test_errors_of_a_hopeless_file_are_capped(cases_world: CasesWorld) -> None:
    rows = big_file(400)
    for row in rows:
        row["sex"], row["nationality"] = "?", "??"
    report = run(cases_world, to_csv(rows), dry_run=True)
    assert len(report.errors) == imports.MAX_ERRORS
    assert report.more_errors == 2 * 1600 - imports.MAX_ERRORS
    assert report.errors[0].field == "row 2, column sex"


def test_files_that_cannot_be_read_are_refused_with_the_reason(cases_world: CasesWorld,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationFailed, match="UTF-8"):
        run(cases_world, "given_name\nJosé\n".encode("latin-1"))
    with pytest.raises(ValidationFailed, match="empty"):
        run(cases_world, b"  \n")
    with pytest.raises(ValidationFailed, match="XLSX"):
        run(cases_world, b"PK\x03\x04 not really a workbook", "people.xlsx")
    with pytest.raises(ValidationFailed, match=r"\.xls"):
        run(cases_world, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 old excel", "people.xls")
    monkeypatch.setattr(imports, "MAX_BYTES", 100)
    with pytest.raises(ValidationFailed, match="larger than"):
        run(cases_world, to_csv(big_file(1)))
    monkeypatch.setattr(imports, "MAX_BYTES", 50 * 1024 * 1024)
    monkeypatch.setattr(imports, "MAX_ROWS", 10)
    with pytest.raises(ValidationFailed, match="more than 10 rows"):
        run(cases_world, to_csv(big_file(5)))


# XLSX ---------------------------------------------------------------------------------------------------------


def workbook(sheets: dict[str, list[list[Any]]]) -> bytes:
    wb = Workbook()
    assert wb.active is not None
    wb.remove(wb.active)
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def test_xlsx_with_one_sheet_reads_dates_and_numbers_as_a_person_would(cases_world: CasesWorld) -> None:
    rows = [[row.get(h, "") for h in HEADER] for row in big_file(2)]
    dob = HEADER.index("date_of_birth")
    rows[0][dob] = date(1979, 12, 31)  # a date cell
    rows[1][dob] = 1984.0  # a year typed as a number
    rows[4][dob] = 1981
    data = workbook({"Households": [HEADER, *rows]})
    report = run(cases_world, data, "households.xlsx")
    assert report.ok, report.errors
    members = cases_world.session.scalars(select(Member).join(Case).where(Case.import_id == report.import_id)
                                          .order_by(Case.number, Member.position)).all()
    assert [(m.birth_year, m.birth_date) for m in members[:2]] == [(1979, date(1979, 12, 31)), (1984, None)]
    assert members[4].birth_year == 1981


def test_xlsx_with_cases_and_members_sheets(cases_world: CasesWorld) -> None:
    case_header = ["case_key", *CASE]
    member_header = ["Case_Key", "relationship", "given_name", "family_name", "sex", "date_of_birth", "nationality"]
    cases = [case_header, ["#meta+id", *("#x" for _ in CASE)], ["K1", *CASE.values()],
             ["K2", *{**CASE, "current_country": "LB"}.values()]]
    members = [member_header,
               ["K1", "principal", "Amina", "Haidari", "female", "1990", "AF"],
               ["K2", "principal", "Yusuf", "Haddad", "male", 1975, "SY"],
               ["K1", "child", "Sara", "Haidari", "female", "2015", "AF"],
               ["K2", "spouse", "Rima", "Haddad", "female", "1979", "SY"]]
    report = run(cases_world, workbook({"cases": cases, "members": members}), "two.xlsx")
    assert report.ok, report.errors
    assert (report.cases, report.people) == (2, 4)
    got = cases_world.session.execute(select(Case.current_country, Case.principal_name, Case.size)
                                      .where(Case.import_id == report.import_id).order_by(Case.number)).all()
    assert [tuple(r) for r in got] == [("PK", "Amina Haidari", 2), ("LB", "Yusuf Haddad", 2)]

    members[2][4] = "?"
    members.append(["K9", "principal", "Nobody", "Known", "male", "1990", "SY"])
    cases[3][1] = "ZZ"
    cases.append(["K3", *CASE.values()])  # no people
    report = run(cases_world, workbook({"cases": cases, "members": members}), "two.xlsx")
    assert fields(report) == ["cases row 4, column current_country", "cases row 5, column case_key",
                              "members row 3, column sex", "members row 6, column case_key"]


# Warnings -----------------------------------------------------------------------------------------------------


@pytest.fixture(params=["small caseload", "large caseload"])
def caseload(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways of finding look-alikes on PostgreSQL: from the organization's own people (a small caseload),
    or one index range per person (a large one). SQLite has one way: both runs take it."""
    if request.param == "large caseload":
        monkeypatch.setattr(imports, "SMALL_CASELOAD", -1)
    return str(request.param)


def test_people_who_look_like_someone_known_or_someone_else_in_the_file_are_warned_about(
        cases_world: CasesWorld, caseload: str) -> None:
    world = cases_world
    world.open_case(members=[{"relationship": "principal", "given_name": "Mohammad", "family_name": "Rahimi",
                              "sex": "male", "date_of_birth": "1984", "nationality": "AF"}])
    rows = (household_rows("A", "Rahimi", principal="Muhammad", birth="1985", size=1)
            + household_rows("B", "Al-Hashimi", principal="Omar", birth="1970", size=1)
            + household_rows("C", "Hashimi", principal="Umar", birth="1971", size=1)
            + household_rows("D", "Rahimi", principal="Mohammad", birth="1990", size=1))
    report = run(world, to_csv(rows))
    assert report.ok
    assert [w.field for w in report.warnings] == ["row 2", "row 4"]
    assert "Mohammad Rahimi (born 1984)" in report.warnings[0].message
    assert "row 3" in report.warnings[1].message


# Who may import ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["admin_canada", "sponsor_group_a", "analyst_ec", "admin_unhcr"])
def test_only_people_who_may_open_cases_may_import(cases_world: CasesWorld, persona: str) -> None:
    with pytest.raises((policy.Forbidden, policy.NotFound)):
        run(cases_world, to_csv(big_file(1)), persona=persona)


def test_a_government_officer_imports_cases_of_their_own(cases_world: CasesWorld) -> None:
    report = run(cases_world, to_csv(big_file(2)), persona="officer_canada")
    assert report.ok
    owners = set(cases_world.session.scalars(select(Case.owner_org_id).where(Case.import_id == report.import_id)))
    assert owners == {cases_world.net.orgs["canada"].id}
    assert report.numbers is not None and report.numbers[0].startswith("CANADA-")
    assert audit.verify(cases_world.session).ok


# The command line -------------------------------------------------------------------------------------------------


def test_the_rdn_cases_import_command(committed_db: str, smtp_server: Any, tmp_path: Any) -> None:
    from rdn import db
    from tests.conftest import rdn_environ, run_rdn
    from tests.factories import build_network

    with db.transaction() as s:
        build_network(s)
    env = rdn_environ(committed_db, smtp_server[0])
    rows = big_file(3)
    rows[1]["sex"] = "?"
    rows[6]["date_of_birth"] = "87"
    path = tmp_path / "households.csv"
    path.write_bytes(to_csv(rows))
    me = ["--as", "caseworker_unhcr@rdn.test"]

    bad = run_rdn(["cases", "import", str(path), *me], env)
    assert bad.returncode == 1, bad.stderr
    lines = bad.stdout.splitlines()
    assert "row 3, column sex: must be one of female, male, other, unknown" in lines
    assert "row 8, column date_of_birth: must be a year such as 1987 or a date such as 1987-04-12" in lines
    assert "Nothing imported: 2 errors in households.csv (12 people in 3 cases)" in lines

    rows[1]["sex"], rows[6]["date_of_birth"] = "female", "1987"
    path.write_bytes(to_csv(rows))
    dry = run_rdn(["cases", "import", str(path), *me, "--dry-run"], env)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "No errors in households.csv: 12 people in 3 cases would be imported" in dry.stdout
    refused = run_rdn(["cases", "import", str(path), "--as", "admin_canada@rdn.test"], env)
    assert refused.returncode == 2 and "may not open cases" in refused.stderr
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Case)) == 0

    done = run_rdn(["cases", "import", str(path), *me, "--org", "unhcr"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Imported 12 people in 3 cases from households.csv: UNHCR-" in done.stdout
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Member)) == 12
        entry = s.scalars(select(AuditEntry).where(AuditEntry.object_type == "case_import")).one()
        assert entry.actor_label == "caseworker_unhcr@rdn.test" and entry.details["via"] == "cli"
        assert audit.verify(s).ok


def test_the_template_is_an_empty_import_file(cases_world: CasesWorld) -> None:
    template = imports.template_csv()
    header = next(csv.reader(io.StringIO(template.decode("utf-8-sig"))))
    assert header[0] == "case_key" and sorted(header) == sorted(HEADER)
    report = run(cases_world, template, dry_run=True)
    assert [e.message for e in report.errors] == ["the file has no people to import"]
    rows = to_csv(big_file(1), header).decode().split("\n", 1)[1]  # rows in the template's column order
    report = run(cases_world, template + rows.encode(), dry_run=True)
    assert report.ok and report.people == 4


def test_the_bulk_writer_fills_every_column_of_the_tables_it_writes() -> None:
    """The bulk path names columns itself: a column added to these tables must be added there too."""
    for names_, model in ((imports._CASE_COLUMNS, Case), (imports._MEMBER_COLUMNS, Member),
                          (imports._EVENT_COLUMNS, StageEvent)):
        written = [c.key for c in model.__table__.c if c.computed is None]  # the database computes the others
        assert sorted(names_) == sorted(written), model.__tablename__


def test_look_alikes_on_the_organizations_own_cases_are_named_within_a_year_of_birth(
        cases_world: CasesWorld, caseload: str) -> None:
    """The look-alike probe (one index range per person; LATERAL ... LIMIT on PostgreSQL) names the
    organization's own people born within a year, says when there are more, and never names another
    organization's people."""
    w = cases_world
    mine = [w.open_case(members=[{"relationship": "principal", "given_name": "Mohammad", "family_name": "Rahimi",
                                  "sex": "male", "date_of_birth": str(year), "nationality": "AF"}])
            for year in (1979, 1980, 1980, 1981, 1990)]
    theirs = w.open_case("officer_canada", members=[{"relationship": "principal", "given_name": "Mohammad",
                                                     "family_name": "Rahimi", "sex": "male",
                                                     "date_of_birth": "1980", "nationality": "SY"}])
    rows = (household_rows("A", "Rahimi", size=1, principal="Muhammad", birth="1980")
            + household_rows("B", "Rahimi", size=1, principal="Mohammed", birth="1991")
            + household_rows("C", "Rahimi", size=1, principal="Mohammad", birth="1985"))
    report = run(w, to_csv(rows), dry_run=True)
    assert report.ok
    alike = {e.field: e.message for e in report.warnings if "already on a case" in e.message}
    assert set(alike) == {"row 2", "row 3"}  # born 1985: nobody of mine between 1984 and 1986
    # Four of mine were born 1979-1981: three are named, by case number, and "…" says there are more.
    first_three = sorted(c.number for c in mine[:4])[:3]
    assert all(number in alike["row 2"] for number in first_three) and alike["row 2"].endswith("…")
    assert mine[4].number not in alike["row 2"]
    # Born 1991: the one born 1990, alone.
    assert mine[4].number in alike["row 3"] and not alike["row 3"].endswith("…")
    assert sum(c.number in alike["row 3"] for c in mine) == 1
    assert not any(theirs.number in message for message in alike.values())


def test_past_the_warnings_shown_look_alikes_are_counted_and_the_first_in_the_file_are_named(
        cases_world: CasesWorld, caseload: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file of common names: the report names the look-alikes it can show (the first in the file's order,
    whatever order the database finds them in) and counts the others; people who look like nobody are neither."""
    w = cases_world
    for year in (1950, 1960, 1970, 1990):
        w.open_case(members=[{"relationship": "principal", "given_name": "Mohammad", "family_name": "Rahimi",
                              "sex": "male", "date_of_birth": str(year), "nationality": "AF"}])
    monkeypatch.setattr(imports, "MAX_WARNINGS", 2)
    # Rows 2-6: born 1990, 1970, 2010 (nobody), 1960, 1950 (no two within a year of each other, so nobody in the
    # file looks like anyone else in it); the probes sort in another order than the rows.
    rows = [row for key, birth in (("A", "1990"), ("B", "1970"), ("C", "2010"), ("D", "1960"), ("E", "1950"))
            for row in household_rows(key, "Rahimi", size=1, principal="Muhammad", birth=birth)]
    report = run(w, to_csv(rows), dry_run=True)
    assert report.ok
    assert [(e.field, "already on a case" in e.message) for e in report.warnings] == [
        ("row 2", True), ("row 3", True)]
    assert "born 1990" in report.warnings[0].message and "born 1970" in report.warnings[1].message
    assert report.more_warnings == 2  # rows 5 and 6 (row 4, born 2010, looks like nobody)

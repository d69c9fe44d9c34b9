"""Exports: HXL that libhxl reads back, only what the exporter may see, sensitive sections only after a step-up
and within the agreement, an audit entry per exported case, and a round trip through the importer."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import hxl
import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from rdn.cases import columns, exports, service
from rdn.cases.imports import import_file
from rdn.cases.models import Case
from rdn.cases.search import CaseFilters
from rdn.core import audit, policy
from rdn.core.audit import AuditEntry
from tests.cases.conftest import CasesWorld, household

CANARY_PROTECTION = "CANARY-PROTECTION-7f3a"
CANARY_MEDICAL = "CANARY-MEDICAL-51c9"
CANARY_NOTE = "CANARY-CONFIDENTIAL-e20d"
ALL = CaseFilters()


def read_csv(data: bytes) -> tuple[list[str], list[str], list[dict[str, str]]]:
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    header, tags = rows[0], rows[1]
    return header, tags, [dict(zip(header, r, strict=True)) for r in rows[2:]]


def export_text(world: CasesWorld, persona: str, **kw: Any) -> str:
    return exports.export_csv(world.session, actor=world.p(persona), filters=kw.pop("filters", ALL), **kw).decode()


@pytest.fixture
def three_cases(cases_world: CasesWorld) -> dict[str, Case]:
    """A: referred to Canada (identity, background, needs, protection); B: referred to Spain (identity, needs);
    C: not referred. A has sealed protection and medical sections and a member-confidential note."""
    w = cases_world
    a = w.open_case(members=household("Mohammad", "Rahimi", size=4), current_location="Peshawar, Board Bazaar")
    b = w.open_case(members=household("Abdul Rahman", "Al-Hashimi", nationality="SY", size=2),
                    current_country="LB", current_location="Beirut")
    c = w.open_case(members=household("Nasrin", "Karimi", nationality="IR", size=1), current_country="TR")
    owner = w.access("caseworker_unhcr", a)
    service.write_sensitive(w.session, actor=w.p("caseworker_unhcr"), access=owner, section="protection",
                            value={"narrative": CANARY_PROTECTION})
    service.write_sensitive(w.session, actor=w.p("caseworker_unhcr"), access=w.access("caseworker_unhcr", a),
                            section="medical", value={"diagnosis": CANARY_MEDICAL, "treatment_unavailable": True})
    spouse = service.members_of(w.session, a)[1]
    service.add_confidential_note(w.session, actor=w.p("caseworker_unhcr"), access=w.access("caseworker_unhcr", a),
                                  member=spouse, body=CANARY_NOTE)
    w.refer(a, "canada", sections=["identity", "background", "needs", "protection"])
    w.refer(a, "germany", sections=["identity", "medical"])
    w.refer(b, "spain", sections=["identity", "needs"])
    w.session.flush()
    return {"A": a, "B": b, "C": c}


# HXL -----------------------------------------------------------------------------------------------------------


def test_the_csv_export_is_hxl_that_libhxl_reads_back(cases_world: CasesWorld, three_cases: dict[str, Case],
                                                      tmp_path: Path) -> None:
    data = exports.export_csv(cases_world.session, actor=cases_world.p("caseworker_unhcr"), filters=ALL)
    header, tags, rows = read_csv(data)
    path = tmp_path / "export.csv"
    path.write_bytes(data)
    dataset = hxl.data(str(path), hxl.InputOptions(allow_local=True))
    assert [c.display_tag for c in dataset.columns] == tags
    assert tags == [columns.ALL[name].hxl for name in header]
    read = [r.values for r in dataset]
    assert read == [[row[h] for h in header] for row in rows]
    assert len(read) == 4 + 2 + 1
    by_tag = {c.display_tag: i for i, c in enumerate(dataset.columns)}
    first = read[0]
    case_a = three_cases["A"]
    assert first[by_tag["#meta+id+case"]] == case_a.number
    assert first[by_tag["#beneficiary+name+given"]] == "Mohammad"
    assert first[by_tag["#beneficiary+name+family"]] == "Rahimi"
    assert first[by_tag["#country+code+nationality"]] == "AF"
    assert first[by_tag["#date+birth"]] == "1984"
    assert first[by_tag["#beneficiary+language+code"]] == "prs; ps"
    assert first[by_tag["#affected+num+household"]] == "4"
    assert first[by_tag["#loc+name+current"]] == "Peshawar, Board Bazaar"
    assert {r[by_tag["#status+stage"]] for r in read} == {"referred"}
    # libhxl's own queries work on our tags (a dataset read from a file is a stream: open it again).
    dataset = hxl.data(str(path), hxl.InputOptions(allow_local=True))
    spouses = list(dataset.with_rows("#beneficiary+relationship=spouse"))
    assert sorted(r.get("#beneficiary+name+family") for r in spouses) == ["Al-Hashimi", "Rahimi"]


def test_the_xlsx_export_has_cases_and_members_sheets_that_libhxl_reads(
        cases_world: CasesWorld, three_cases: dict[str, Case], tmp_path: Path) -> None:
    data = exports.export_xlsx(cases_world.session, actor=cases_world.p("caseworker_unhcr"), filters=ALL)
    path = tmp_path / "export.xlsx"
    path.write_bytes(data)
    assert load_workbook(path, read_only=True).sheetnames == ["cases", "members"]
    cases = hxl.data(str(path), hxl.InputOptions(allow_local=True, sheet_index=0))
    members = hxl.data(str(path), hxl.InputOptions(allow_local=True, sheet_index=1))
    assert "#affected+num+household" in [c.display_tag for c in cases.columns]
    numbers = [r.get("#meta+id+case") for r in cases]
    assert sorted(numbers) == sorted(c.number for c in three_cases.values())
    people = [(r.get("#meta+id+case"), r.get("#beneficiary+name+given")) for r in members]
    assert len(people) == 7 and (three_cases["C"].number, "Nasrin") in people


# Only what the exporter may see ----------------------------------------------------------------------------------


def test_a_government_exports_only_cases_referred_to_it_and_only_agreed_sections(
        cases_world: CasesWorld, three_cases: dict[str, Case]) -> None:
    w = cases_world
    header, _tags, rows = read_csv(exports.export_csv(w.session, actor=w.p("officer_canada"), filters=ALL))
    assert {r["case_number"] for r in rows} == {three_cases["A"].number}
    assert {r["given_name"] for r in rows} == {"Mohammad", "Fatima", "Child0", "Child1"}
    assert "languages" in header and "specific_needs" in header  # background and needs were shared
    assert "current_location" not in header and "checklist" not in header  # location and pipeline were not
    assert not [h for h in header if h.startswith(("protection", "medical"))]

    header, _tags, rows = read_csv(exports.export_csv(w.session, actor=w.p("minister_spain"), filters=ALL))
    assert {r["case_number"] for r in rows} == {three_cases["B"].number}
    assert {r["family_name"] for r in rows} == {"Al-Hashimi"}
    assert "specific_needs" in header and "languages" not in header and "occupation" not in header

    text = export_text(w, "minister_germany")
    assert three_cases["A"].number in text and three_cases["B"].number not in text
    assert "Rahimi" in text and "Karimi" not in text


def test_an_administrator_of_a_government_exports_no_names(cases_world: CasesWorld,
                                                          three_cases: dict[str, Case]) -> None:
    w = cases_world
    data = exports.export_csv(w.session, actor=w.p("admin_canada"), filters=ALL)
    header, _tags, rows = read_csv(data)
    assert [r["case_number"] for r in rows] == [three_cases["A"].number]  # one row: no people listed
    assert rows[0]["household_size"] == "4"
    assert not {"given_name", "family_name", "date_of_birth", "current_location"} & set(header)
    for name in ("Mohammad", "Rahimi", "Fatima", "Peshawar"):
        assert name not in data.decode()
    records = exports.export_json(w.session, actor=w.p("admin_canada"), filters=ALL)
    assert [r["sections"] for r in records] == [["summary"]] and "members" not in records[0]
    xlsx = exports.export_xlsx(w.session, actor=w.p("admin_canada"), filters=ALL)
    wb = load_workbook(io.BytesIO(xlsx), read_only=True)
    cells = [str(v) for ws in wb.worksheets for row in ws.iter_rows(values_only=True) for v in row if v]
    assert not any("Rahimi" in v or "Mohammad" in v for v in cells)


@pytest.mark.parametrize("persona", ["sponsor_group_a", "analyst_ec", "admin_secretariat"])
def test_people_who_see_no_cases_cannot_export(cases_world: CasesWorld, three_cases: dict[str, Case],
                                               persona: str) -> None:
    with pytest.raises(policy.Forbidden):
        exports.export_csv(cases_world.session, actor=cases_world.p(persona), filters=ALL)


def test_a_withdrawn_referral_or_an_ended_agreement_leaves_the_case_out(cases_world: CasesWorld,
                                                                        three_cases: dict[str, Case]) -> None:
    from rdn.cases import sharing

    w = cases_world
    assert three_cases["B"].number in export_text(w, "minister_spain")
    sharing.end_agreement(w.session, actor=w.p("minister_spain"), agreement=w.agreements["spain"],
                          reason="Review of the terms")
    assert three_cases["B"].number not in export_text(w, "minister_spain")


# Sensitive sections ------------------------------------------------------------------------------------------------


def test_sensitive_sections_need_a_fresh_step_up_and_stay_within_the_agreement(
        cases_world: CasesWorld, three_cases: dict[str, Case]) -> None:
    w = cases_world
    canaries = (CANARY_PROTECTION, CANARY_MEDICAL, CANARY_NOTE)
    for persona in ("caseworker_unhcr", "officer_canada", "minister_germany", "admin_canada"):
        text = export_text(w, persona)
        assert not any(c in text for c in canaries), persona
        assert not any(c in json.dumps(exports.export_json(w.session, actor=w.p(persona), filters=ALL))
                       for c in canaries)

    with pytest.raises(policy.StepUpRequired):
        exports.export_csv(w.session, actor=w.p("caseworker_unhcr", fresh=False), filters=ALL, include_sensitive=True)
    token = dataclasses.replace(w.p("caseworker_unhcr"), via="token", scopes=frozenset({"read", "write"}))
    with pytest.raises(policy.Forbidden):
        exports.export_csv(w.session, actor=token, filters=ALL, include_sensitive=True)

    reads_before = len(w.session.scalars(select(AuditEntry).where(AuditEntry.action == "sensitive.read")).all())
    header, _tags, rows = read_csv(exports.export_csv(w.session, actor=w.p("caseworker_unhcr"), filters=ALL,
                                                      include_sensitive=True))
    a_rows = [r for r in rows if r["case_number"] == three_cases["A"].number]
    assert {r["protection_narrative"] for r in a_rows} == {CANARY_PROTECTION}
    assert {r["medical_diagnosis"] for r in a_rows} == {CANARY_MEDICAL}
    assert {r["medical_treatment_unavailable"] for r in a_rows} == {"yes"}
    assert [r["confidential_notes"] for r in a_rows] == ["", CANARY_NOTE, "", ""]  # only on the spouse's row
    assert "sogi_narrative" in header  # the owner's caseworker sees the section (empty here)
    reads = w.session.scalars(select(AuditEntry).where(AuditEntry.action == "sensitive.read")
                              .order_by(AuditEntry.seq)).all()[reads_before:]
    assert {e.object_id for e in reads} == {str(c.id) for c in three_cases.values()}
    assert all(CANARY_PROTECTION not in json.dumps(e.details) for e in reads)

    # Canada's agreement lists protection, not medical; Germany's referral shares medical, not protection.
    text = export_text(w, "officer_canada", include_sensitive=True)
    assert CANARY_PROTECTION in text and CANARY_MEDICAL not in text and CANARY_NOTE not in text
    text = export_text(w, "minister_germany", include_sensitive=True)
    assert CANARY_MEDICAL in text and CANARY_PROTECTION not in text and CANARY_NOTE not in text
    for persona in ("minister_spain", "admin_canada"):
        text = export_text(w, persona, include_sensitive=True)
        assert not any(c in text for c in canaries), persona


# Audit ---------------------------------------------------------------------------------------------------------


def test_every_exported_case_has_an_audit_entry(cases_world: CasesWorld, three_cases: dict[str, Case]) -> None:
    w = cases_world
    for fmt, fn in (("csv", exports.export_csv), ("xlsx", exports.export_xlsx), ("json", exports.export_json)):
        last = w.session.scalar(select(AuditEntry.seq).order_by(AuditEntry.seq.desc()).limit(1))
        fn(w.session, actor=w.p("officer_canada"), filters=CaseFilters(q="Muhammad"))
        entries = w.session.scalars(select(AuditEntry).where(AuditEntry.seq > last).order_by(AuditEntry.seq)).all()
        per_case = [e for e in entries if e.object_type == "case"]
        assert [(e.action, e.object_id, e.details) for e in per_case] == [
            ("case.export", str(three_cases["A"].id),
             {"format": fmt, "sections": ["background", "identity", "needs", "summary"]})]  # not protection
        summary = [e for e in entries if e.object_type == "case_export"]
        assert len(summary) == 1 and summary[0].action == "case.export"
        assert summary[0].details["count"] == 1 and summary[0].details["format"] == fmt
        assert summary[0].details["filters"] == {"q": "(a name)"}  # not the name searched for
        assert "Muhammad" not in json.dumps([e.details for e in entries])
    assert audit.verify(w.session).ok


# Filters and batches ----------------------------------------------------------------------------------------------


def test_filters_apply_and_batches_keep_the_list_order(cases_world: CasesWorld, three_cases: dict[str, Case],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    w = cases_world
    more = [w.open_case(members=household("Ali", f"Family{i}", size=2)) for i in range(4)]
    rows = read_csv(exports.export_csv(w.session, actor=w.p("caseworker_unhcr"),
                                       filters=CaseFilters(current_country="LB")))[2]
    assert {r["case_number"] for r in rows} == {three_cases["B"].number}
    rows = read_csv(exports.export_csv(w.session, actor=w.p("caseworker_unhcr"),
                                       filters=CaseFilters(nationality="IR")))[2]
    assert {r["case_number"] for r in rows} == {three_cases["C"].number}

    monkeypatch.setattr(exports, "BATCH", 2)
    records = exports.export_json(w.session, actor=w.p("caseworker_unhcr"), filters=CaseFilters(sort="number"))
    expected = sorted(c.number for c in [*three_cases.values(), *more])
    assert [r["case_number"] for r in records] == expected
    assert [len(r["members"]) for r in records] == [4, 2, 1, 2, 2, 2, 2]
    assert records[0]["members"][0]["languages"] == ["prs", "ps"]  # JSON keeps lists as lists


def test_text_that_a_spreadsheet_would_compute_is_kept_as_text(cases_world: CasesWorld) -> None:
    w = cases_world
    w.open_case(members=household("Omar", "Haddad"), current_location='=HYPERLINK("http://x.test","click")')
    _header, _tags, rows = read_csv(exports.export_csv(w.session, actor=w.p("caseworker_unhcr"), filters=ALL))
    assert rows[0]["current_location"].startswith("'=HYPERLINK")
    xlsx = exports.export_xlsx(w.session, actor=w.p("caseworker_unhcr"), filters=ALL)
    ws = load_workbook(io.BytesIO(xlsx))["cases"]
    cell = ws.cell(row=3, column=[c.value for c in ws[1]].index("current_location") + 1)
    assert cell.data_type == "s" and cell.value.startswith("=HYPERLINK")


# A round trip --------------------------------------------------------------------------------------------------


def people_of(world: CasesWorld, case: Case) -> list[tuple[Any, ...]]:
    return [(m.relationship, m.given_name, m.family_name, m.other_names, m.sex, m.birth_year, m.birth_date,
             m.nationality, m.stateless, m.languages, m.education, m.occupation, m.specific_needs)
            for m in service.members_of(world.session, case)]


def case_fields(case: Case) -> tuple[Any, ...]:
    return (case.current_country, case.current_location, case.category_primary, case.category_secondary,
            case.processing_priority, case.submission_priority, case.size, case.principal_name, case.nationality)


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_an_export_imports_back_as_the_same_households(cases_world: CasesWorld, fmt: str) -> None:
    w = cases_world
    members = household("Mohammad", "Rahimi", size=3)
    members[0]["other_names"] = "Muhammad; محمد"
    members[1]["date_of_birth"] = "1988-03-02"
    members.append({"relationship": "other_relative", "given_name": "Kawa", "family_name": "", "sex": "other",
                    "date_of_birth": "1950", "stateless": True, "languages": "kmr", "education": "none",
                    "occupation": "+ farmer", "specific_needs": "older_person_at_risk; disability"})
    originals = [w.open_case(members=members, current_location="=SUM(A1)"),
                 w.open_case(members=household("Amina", "Haidari", nationality="SY", size=2), current_country="JO",
                             category_primary="WGR", category_secondary="MED", processing_priority="emergency")]
    export = exports.export_csv if fmt == "csv" else exports.export_xlsx
    data = export(w.session, actor=w.p("caseworker_unhcr"), filters=CaseFilters(relation="owned", sort="number"))
    report = import_file(w.session, actor=w.p("caseworker_unhcr"), data=data, filename=f"export.{fmt}")
    assert report.ok, report.errors
    assert (report.cases, report.people) == (2, 6)
    assert any("not imported" in warning.message for warning in report.warnings)  # stage, dates ...
    assert any("looks like someone already on a case" in warning.message for warning in report.warnings)
    copies = w.session.scalars(select(Case).where(Case.import_id == report.import_id).order_by(Case.number)).all()
    assert [case_fields(c) for c in copies] == [case_fields(c) for c in originals]
    assert [people_of(w, c) for c in copies] == [people_of(w, c) for c in originals]
    assert {c.number for c in copies}.isdisjoint({c.number for c in originals})


# The command line -------------------------------------------------------------------------------------------------


def test_the_rdn_cases_export_command(committed_db: str, smtp_server: Any, tmp_path: Path) -> None:
    from rdn import db
    from rdn.core import identity
    from tests.conftest import rdn_environ, run_rdn
    from tests.factories import build_network

    with db.transaction() as s:
        net = build_network(s)
        actor = identity.principal_for(s, net.people["caseworker_unhcr"], org_id=net.orgs["unhcr"].id, via="cli")
        for i, (given, family) in enumerate((("Mohammad", "Rahimi"), ("Amina", "Haidari"), ("Omar", "Haddad"))):
            service.create_case(s, actor=actor, members=household(given, family, size=2),
                                case={"current_country": "PK" if i else "LB", "category_primary": "LPN",
                                      "category_secondary": "LAS", "processing_priority": "urgent",
                                      "submission_priority": "urgent"})
    env = rdn_environ(committed_db, smtp_server[0])
    out = tmp_path / "cases.csv"
    me = ["--as", "caseworker_unhcr@rdn.test"]

    done = run_rdn(["cases", "export", *me, "--output", str(out), "--country", "PK"], env)
    assert done.returncode == 0, done.stderr
    assert "Exported 2 cases (4 people) as csv" in done.stderr
    header, tags, rows = read_csv(out.read_bytes())
    assert tags[0] == "#meta+id+case" and {r["family_name"] for r in rows} == {"Haidari", "Haddad"}
    assert not any(h.startswith(("protection", "medical", "sogi", "svt")) for h in header)  # never from here

    as_json = run_rdn(["cases", "export", *me, "--format", "json", "--search", "Muhammad Rahimi"], env)
    assert as_json.returncode == 0, as_json.stderr
    assert [r["members"][0]["given_name"] for r in json.loads(as_json.stdout)] == ["Mohammad"]

    refused = run_rdn(["cases", "export", "--as", "sponsor_group_a@rdn.test", "--output", str(tmp_path / "x.csv")],
                      env)
    assert refused.returncode == 2 and "may not export cases" in refused.stderr
    assert not (tmp_path / "x.csv").exists() and not list(tmp_path.glob(".rdn-export-*"))
    with db.transaction() as s:
        exported = s.scalars(select(AuditEntry).where(AuditEntry.action == "case.export")).all()
        assert sorted(e.object_type for e in exported) == ["case", "case", "case", "case_export", "case_export"]
        assert all(e.actor_label == "caseworker_unhcr@rdn.test" for e in exported)
        assert audit.verify(s).ok


def test_every_column_has_a_valid_hxl_hashtag() -> None:
    tags = [c.hxl for c in columns.ALL.values()]
    assert len(set(tags)) == len(tags)
    for tag in tags:
        assert hxl.model.Column.parse(tag).display_tag == tag, tag

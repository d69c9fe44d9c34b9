"""The case service: opening a case (validation, numbering), changing it (audited with field names only),
family ties, preferences and links, sealed sections behind a step-up, member-confidential notes, the
access log, and what each persona sees."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rdn.cases import search, service
from rdn.cases.models import Case, CaseCounter, Section
from rdn.cases.policy import access_case
from rdn.core import clock, identity, policy
from rdn.core.audit import AuditEntry
from rdn.core.errors import Conflict, ValidationFailed
from rdn.core.identity import Principal
from rdn.core.tenancy import Role
from tests.cases.conftest import AGREED, CASE_FIELDS, CasesWorld, agree, household
from tests.factories import make_person

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ALL = frozenset(Section)
BUT_CONFIDENTIAL = ALL - {Section.confidential}
SUMMARY = frozenset({Section.summary})


@pytest.fixture
def world(session: Session, network: Any, make_gov_admins: Any) -> Iterator[CasesWorld]:
    with clock.frozen(T0):
        make_gov_admins()
        agreements = {gov: agree(session, network, gov, sections) for gov, sections in AGREED.items()}
        session.flush()
        yield CasesWorld(session, network, agreements)


def extra(w: CasesWorld, key: str, org: str, roles: list[Role], *, fresh: bool = True) -> Principal:
    user, _secret = make_person(w.session, f"{key}@rdn.test", w.net.orgs[org], roles)
    p = identity.principal_for(w.session, user, org_id=w.net.orgs[org].id, via="session")
    return dataclasses.replace(p, mfa_at=clock.now() if fresh else None)


def entries(s: Session, case: Case, action: str | None = None) -> list[AuditEntry]:
    stmt = select(AuditEntry).where(AuditEntry.object_type == "case", AuditEntry.object_id == str(case.id))
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    return list(s.scalars(stmt.order_by(AuditEntry.seq)))


def person(**kw: Any) -> dict[str, Any]:
    return {"relationship": "principal", "given_name": "Amina", "family_name": "Noori", "sex": "female",
            "date_of_birth": "1990", "nationality": "AF", **kw}


def create(w: CasesWorld, members: list[dict[str, Any]], persona: str = "caseworker_unhcr", **fields: Any) -> Case:
    return service.create_case(w.session, actor=w.p(persona), case={**CASE_FIELDS, **fields}, members=members)


def errors_of(exc: pytest.ExceptionInfo[ValidationFailed]) -> dict[str, str]:
    return {e.field: e.message for e in exc.value.errors}


def cases_count(s: Session) -> int:
    return s.scalar(select(func.count(Case.id))) or 0


# Opening a case ---------------------------------------------------------------------------------------------


def test_every_bad_field_is_named_with_its_path_and_nothing_is_created(world: CasesWorld) -> None:
    w = world
    members = [
        person(given_name="", sex="robot"),
        {"relationship": "child", "given_name": "Omar", "sex": "male", "birth_year": "19x8", "nationality": "AF",
         "languages": "prs, xx"},
        {"relationship": "cousin", "given_name": "Sara", "sex": "female", "date_of_birth": "2999-01-01",
         "specific_needs": "flying"},
    ]
    with pytest.raises(ValidationFailed) as exc:
        create(w, members, current_country="ZZ", category_primary="", processing_priority="soon")
    errors = errors_of(exc)
    assert set(errors) == {
        "current_country", "category_primary", "processing_priority",
        "members[0].given_name", "members[0].sex",
        "members[1].birth_year", "members[1].languages",
        "members[2].relationship", "members[2].date_of_birth", "members[2].nationality",
        "members[2].specific_needs",
    }
    assert "xx" in errors["members[1].languages"] and "prs" not in errors["members[1].languages"]
    assert "flying" in errors["members[2].specific_needs"]
    assert cases_count(w.session) == 0
    assert w.session.scalar(select(func.count()).select_from(CaseCounter)) == 0  # no number was used up
    assert w.open_case().number == "UNHCR-26-000001"


@pytest.mark.parametrize(("given", "year", "day"), [
    ("1984", 1984, None),
    (1984, 1984, None),
    ("1984.0", 1984, None),  # a year read from a spreadsheet as a number
    ("1984-02-29", 1984, date(1984, 2, 29)),
    (date(1984, 2, 29), 1984, date(1984, 2, 29)),
    ("1984-02-29 00:00:00", 1984, date(1984, 2, 29)),
])
def test_a_year_alone_or_a_full_date_of_birth(world: CasesWorld, given: Any, year: int, day: date | None) -> None:
    case = create(world, [person(date_of_birth=given)])
    member = service.members_of(world.session, case)[0]
    assert (member.birth_year, member.birth_date) == (year, day)


@pytest.mark.parametrize("given", ["1983-02-29", "1899", "2027", "84", "12/04/1984", ""])
def test_impossible_dates_of_birth_are_refused(world: CasesWorld, given: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        create(world, [person(date_of_birth=given)])
    assert set(errors_of(exc)) == {"members[0].date_of_birth"}


def test_stateless_people_have_no_nationality_and_others_need_one(world: CasesWorld) -> None:
    w = world
    case = create(w, [person(nationality="", stateless=True)])
    member = service.members_of(w.session, case)[0]
    assert member.stateless and member.nationality is None and case.nationality is None
    assert create(w, [person(nationality="", stateless="yes")]).nationality is None
    for bad in (person(nationality="SY", stateless=True), person(nationality=""), person(nationality="XX")):
        with pytest.raises(ValidationFailed) as exc:
            create(w, [bad])
        assert set(errors_of(exc)) == {"members[0].nationality"}
    assert create(w, [person(nationality="sy")]).nationality == "SY"


def test_languages_are_iso_639_codes_including_dari(world: CasesWorld) -> None:
    w = world
    case = create(w, [person(languages="PRS; ps, ar | prs")])
    assert service.members_of(w.session, case)[0].languages == ["prs", "ps", "ar"]
    assert service.members_of(w.session, create(w, [person(languages=["haz", "fa"])]))[0].languages == ["haz", "fa"]
    with pytest.raises(ValidationFailed) as exc:
        create(w, [person(languages="prs, dari")])
    assert "dari" in errors_of(exc)["members[0].languages"]


def test_the_two_categories_must_differ(world: CasesWorld) -> None:
    with pytest.raises(ValidationFailed) as exc:
        create(world, [person()], category_primary="wgr", category_secondary="WGR")
    assert set(errors_of(exc)) == {"category_secondary"}
    case = create(world, [person()], category_primary="wgr", category_secondary="las")
    assert (case.category_primary, case.category_secondary) == ("WGR", "LAS")


def test_a_household_has_exactly_one_principal_applicant(world: CasesWorld) -> None:
    w = world
    two = [person(), person(given_name="Zahra")]
    none = [person(relationship="spouse"), person(relationship="child", given_name="Zahra")]
    for members in (two, none, []):
        with pytest.raises(ValidationFailed) as exc:
            create(w, members)
        assert set(errors_of(exc)) == {"members"}
    # The principal comes first whatever the order given; the case takes its name and nationality.
    case = create(w, [person(relationship="spouse", given_name="Zahra", nationality="IR"),
                      person(given_name="Amina", nationality="AF")])
    members = service.members_of(w.session, case)
    assert [m.given_name for m in members] == ["Amina", "Zahra"]
    assert (case.principal_name, case.nationality, case.size) == ("Amina Noori", "AF", 2)
    assert case.stage == "referred" and case.version == 1
    assert [e.to_stage for e in service.history(w.session, case)] == ["referred"]
    assert len(service.checklist(w.session, case)) == 5
    assert entries(w.session, case, "case.create")[0].details == {"number": case.number, "members": 2}


def test_who_may_open_a_case(world: CasesWorld) -> None:
    w = world
    assert create(w, [person()], persona="officer_canada").owner_org_id == w.net.orgs["canada"].id
    for persona in ("admin_unhcr", "admin_canada", "minister_spain", "analyst_ec", "sponsor_group_a",
                    "admin_secretariat"):
        with pytest.raises(policy.Forbidden):
            create(w, [person()], persona=persona)


def test_numbers_run_per_owner_and_per_year(world: CasesWorld) -> None:
    w = world
    assert [w.open_case().number for _ in range(3)] == ["UNHCR-26-000001", "UNHCR-26-000002", "UNHCR-26-000003"]
    assert w.open_case("officer_canada").number == "CANADA-26-000001"
    with clock.frozen(datetime(2027, 1, 1, 0, 0, 1, tzinfo=UTC)):
        assert w.open_case().number == "UNHCR-27-000001"
        assert w.open_case("officer_canada").number == "CANADA-27-000001"
    assert w.open_case().number == "UNHCR-26-000004"
    assert service.reserve_numbers(w.session, w.net.orgs["unhcr"], 2) == ["UNHCR-26-000005", "UNHCR-26-000006"]
    assert w.open_case().number == "UNHCR-26-000007"  # reserved numbers are never given again


# Changing a case --------------------------------------------------------------------------------------------


def only_names(details: dict[str, Any], *values: str) -> None:
    text = json.dumps(details, ensure_ascii=False)
    for value in values:
        assert value not in text


def test_update_case_is_audited_with_field_names_only(world: CasesWorld) -> None:
    w, s = world, world.session
    case = w.open_case()
    actor, access = w.p("caseworker_unhcr"), w.access("caseworker_unhcr", case)
    service.update_case(s, actor=actor, access=access, changes={
        "current_location": "Safe house 7, Street 12", "category_secondary": "SVT", "not_a_field": "x",
        "processing_priority": "urgent"})  # unchanged: not listed
    assert (case.current_location, case.category_secondary, case.version) == ("Safe house 7, Street 12", "SVT", 2)
    details = entries(s, case, "case.update")[-1].details
    assert details == {"fields": ["category_secondary", "current_location"]}
    only_names(details, "Safe house", "SVT")

    service.update_case(s, actor=actor, access=access, changes={"current_location": "Safe house 7, Street 12"})
    assert case.version == 2 and len(entries(s, case, "case.update")) == 1  # nothing changed, nothing logged

    with pytest.raises(ValidationFailed) as exc:
        service.update_case(s, actor=actor, access=access, changes={"category_primary": "SVT",
                                                                    "current_location": "Elsewhere"})
    assert set(errors_of(exc)) == {"category_secondary"}
    assert (case.category_primary, case.current_location, case.version) == ("LPN", "Safe house 7, Street 12", 2)

    with pytest.raises(Conflict):
        service.update_case(s, actor=actor, access=access, changes={"current_location": "Karachi"}, version=1)
    assert (case.current_location, case.version) == ("Safe house 7, Street 12", 2)
    service.update_case(s, actor=actor, access=access, changes={"current_location": "Karachi"}, version=2)
    assert case.version == 3

    w.refer(case, "canada", sections=["identity"])
    for persona in ("admin_unhcr", "officer_canada", "admin_canada"):  # sees it, may not change it
        with pytest.raises(policy.AuthError):
            service.update_case(s, actor=w.p(persona), access=w.access(persona, case),
                                changes={"current_location": "X"})
    assert case.current_location == "Karachi" and case.version == 3


def test_family_ties_and_preferences(world: CasesWorld) -> None:
    w, s = world, world.session
    case = w.open_case()
    actor, access = w.p("caseworker_unhcr"), w.access("caseworker_unhcr", case)
    with pytest.raises(ValidationFailed) as exc:
        service.update_case(s, actor=actor, access=access, changes={
            "family_ties": [{"country": "CA", "relationship": "brother"}, {"country": "QQ", "relationship": ""}],
            "preferences": {"countries": "CA, DE", "avoid": "de", "setting": "moon"}})
    assert set(errors_of(exc)) == {"family_ties[1].country", "family_ties[1].relationship", "preferences.avoid",
                                   "preferences.setting"}
    assert service.ties_of(s, case) == [] and case.version == 1

    service.update_case(s, actor=actor, access=access, changes={
        "family_ties": [{"country": "de", "city": "Hamburg", "relationship": "sister", "note": "Since 2016"},
                        {"country": "CA", "relationship": "brother"}],
        "preferences": {"countries": "CA; DE", "avoid": "US", "setting": "urban", "note": "Near the sister"}})
    assert [(t.country, t.relationship) for t in service.ties_of(s, case)] == [("CA", "brother"), ("DE", "sister")]
    assert case.preferences == {"countries": ["CA", "DE"], "avoid": ["US"], "setting": "urban",
                                "note": "Near the sister"}
    details = entries(s, case, "case.update")[-1].details
    assert details == {"fields": ["family_ties", "preferences"]}
    only_names(details, "Hamburg", "sister", "Near the sister")

    service.update_case(s, actor=actor, access=access, changes={"family_ties": []})
    assert service.ties_of(s, case) == []

    opened = service.create_case(s, actor=actor, case=CASE_FIELDS, members=household(),
                                 family_ties=[{"country": "ES", "relationship": "uncle"}],
                                 preferences={"countries": ["ES"]})
    assert [t.country for t in service.ties_of(s, opened)] == ["ES"]
    assert opened.preferences["countries"] == ["ES"] and opened.preferences["setting"] == "any"


def test_members_are_added_changed_and_removed_with_the_index_following(world: CasesWorld) -> None:
    w, s = world, world.session
    case = w.open_case()
    cw = w.p("caseworker_unhcr")
    access = w.access("caseworker_unhcr", case)

    def names_found(q: str) -> int:
        return search.list_cases(s, cw, search.CaseFilters(q=q)).total

    grandma = service.add_member(s, actor=cw, access=access, data={
        "relationship": "grandparent", "given_name": "Khadija", "family_name": "Rahimi", "sex": "female",
        "date_of_birth": "1950", "nationality": "AF", "specific_needs": "older_person_at_risk"})
    assert case.size == 4 and case.version == 2 and names_found("Khadija") == 1
    assert entries(s, case, "case.member.add")[-1].details == {"member": str(grandma.id)}
    with pytest.raises(ValidationFailed) as exc:
        service.add_member(s, actor=cw, access=access, data=person())
    assert set(errors_of(exc)) == {"relationship"}
    assert case.size == 4

    service.update_member(s, actor=cw, access=access, member=grandma,
                          changes={"given_name": "Khadeeja", "occupation": "Midwife", "birth_year": 1951})
    assert (grandma.given_name, grandma.occupation, grandma.birth_year) == ("Khadeeja", "Midwife", 1951)
    details = entries(s, case, "case.member.update")[-1].details
    assert details == {"member": str(grandma.id), "fields": ["birth_year", "given_name", "occupation"]}
    only_names(details, "Khadeeja", "Midwife", "1951")
    assert names_found("Khadeeja") == 1 and names_found("Khadija") == 1  # variants: the same skeleton
    service.update_member(s, actor=cw, access=access, member=grandma, changes={"given_name": "Maryam"})
    assert names_found("Maryam") == 1 and names_found("Khadija") == 0  # the old name left the index
    version = case.version
    service.update_member(s, actor=cw, access=access, member=grandma, changes={"given_name": "Maryam"})
    assert case.version == version  # no change, no new version
    with pytest.raises(ValidationFailed):
        service.update_member(s, actor=cw, access=access, member=grandma, changes={"relationship": "principal"})
    with pytest.raises(Conflict):
        service.update_member(s, actor=cw, access=access, member=grandma, changes={"occupation": "Nurse"},
                              version=version - 1)
    assert grandma.occupation == "Midwife"

    stale = case.version - 1
    with pytest.raises(Conflict):
        service.add_member(s, actor=cw, access=access, version=stale, data={
            "relationship": "sibling", "given_name": "Hamid", "sex": "male", "date_of_birth": "1986",
            "nationality": "AF"})
    with pytest.raises(Conflict):
        service.remove_member(s, actor=cw, access=access, member=grandma, version=stale)
    s.flush()
    assert case.size == 4 and names_found("Hamid") == 0 and names_found("Maryam") == 1
    assert len(service.members_of(s, case)) == 4

    service.remove_member(s, actor=cw, access=access, member=grandma, version=case.version)
    assert case.size == 3 and names_found("Maryam") == 0
    assert entries(s, case, "case.member.remove")[-1].details == {"member": str(grandma.id)}
    principal = service.members_of(s, case)[0]
    with pytest.raises(Conflict):
        service.remove_member(s, actor=cw, access=access, member=principal)
    assert case.size == 3

    with pytest.raises(policy.AuthError):  # the agency's administrator does not edit families
        service.add_member(s, actor=w.p("admin_unhcr"), access=w.access("admin_unhcr", case), data=person(
            relationship="sibling"))


def test_a_member_of_another_case_is_not_this_cases(world: CasesWorld) -> None:
    w = world
    one, other = w.open_case(), w.open_case()
    stranger = service.members_of(w.session, other)[1]
    with pytest.raises(policy.NotFound):
        service.get_member(w.session, w.access("caseworker_unhcr", one), stranger.id)
    assert service.get_member(w.session, w.access("caseworker_unhcr", other), stranger.id) is stranger


def test_making_another_member_the_principal_applicant(world: CasesWorld) -> None:
    w, s = world, world.session
    members = household()
    members[1]["nationality"] = "IR"
    case = w.open_case(members=members)
    cw, access = w.p("caseworker_unhcr"), w.access("caseworker_unhcr", case)
    husband, wife = service.members_of(s, case)[:2]
    for bad in ("principal", "cousin"):
        with pytest.raises(ValidationFailed):
            service.make_principal(s, actor=cw, access=access, member=wife, previous_becomes=bad)
    with pytest.raises(Conflict):
        service.make_principal(s, actor=cw, access=access, member=wife, previous_becomes="spouse", version=0)
    assert (wife.relationship, husband.relationship, case.principal_name) == ("spouse", "principal",
                                                                              "Mohammad Rahimi")
    service.make_principal(s, actor=cw, access=access, member=wife, previous_becomes="spouse", version=1)
    assert (wife.relationship, husband.relationship) == ("principal", "spouse")
    assert service.members_of(s, case)[0].id == wife.id
    assert (case.principal_name, case.nationality) == ("Fatima Rahimi", "IR")
    assert entries(s, case, "case.member.principal")[-1].details == {"member": str(wife.id)}


def test_linking_cases(world: CasesWorld) -> None:
    w, s = world, world.session
    parents, son, canadian = w.open_case(), w.open_case(members=household("Ali", "Rahimi")), w.open_case(
        "officer_canada")
    cw = w.p("caseworker_unhcr")
    a, b = w.access("caseworker_unhcr", parents), w.access("caseworker_unhcr", son)
    link = service.link_cases(s, actor=cw, access=a, other=b, reason="Married son, processed together")
    assert service.link_cases(s, actor=cw, access=b, other=a) is link  # one link, either way round
    assert entries(s, parents, "case.link")[-1].details == {"linked_case": str(son.id)}
    with pytest.raises(ValidationFailed):
        service.link_cases(s, actor=cw, access=a, other=a)
    with pytest.raises(policy.NotFound):
        w.access("caseworker_unhcr", canadian)  # a case one cannot see cannot be reached to link it

    # Germany sees the son's case (referred) but not the parents': their side of the link is hidden.
    w.refer(son, "germany", sections=["identity", "family"])
    seen = service.linked_cases(s, w.p("minister_germany"), son)
    assert [(lk.id, other) for lk, other in seen] == [(link.id, None)]
    assert [(lk.id, other.id) for lk, other in service.linked_cases(s, cw, son)] == [(link.id, parents.id)]

    other_link = service.link_cases(s, actor=cw, access=b, other=w.access("caseworker_unhcr", w.open_case()))
    with pytest.raises(policy.NotFound):
        service.unlink_cases(s, actor=cw, access=a, link_id=other_link.id)
    service.unlink_cases(s, actor=cw, access=a, link_id=link.id)
    s.flush()
    assert [lk.id for lk, _ in service.linked_cases(s, cw, parents)] == []
    assert entries(s, parents, "case.unlink")[-1].details == {"link": str(link.id)}


# Sealed sections --------------------------------------------------------------------------------------------


def test_sealed_sections_need_a_fresh_step_up_in_a_browser_session(world: CasesWorld) -> None:
    w, s = world, world.session
    case = w.open_case()
    access = w.access("caseworker_unhcr", case)
    fresh = w.p("caseworker_unhcr")
    stale = dataclasses.replace(fresh, mfa_at=None)
    old = dataclasses.replace(fresh, mfa_at=clock.now() - timedelta(minutes=11))
    token = dataclasses.replace(fresh, via="token")
    value = {"narrative": "Detained and beaten in 2021"}
    for who, error in ((stale, policy.StepUpRequired), (old, policy.StepUpRequired), (token, policy.Forbidden)):
        with pytest.raises(error):
            service.write_sensitive(s, actor=who, access=access, section="svt", value=value)
    assert case.svt is None and case.version == 1
    service.write_sensitive(s, actor=fresh, access=access, section="svt", value=value)
    assert case.svt is not None and b"Detained" not in case.svt  # sealed at rest
    assert entries(s, case, "case.sensitive.write")[-1].details == {"section": "svt", "cleared": False}
    assert service.sealed_sections_present(case) == [Section.svt]

    for who, error in ((stale, policy.StepUpRequired), (old, policy.StepUpRequired), (token, policy.Forbidden)):
        with pytest.raises(error):
            service.read_sensitive(s, actor=who, access=access, sections=["svt"])
    assert entries(s, case, "sensitive.read") == []
    opened = service.read_sensitive(s, actor=fresh, access=access, sections=["svt", "medical"],
                                    purpose="Preparing the submission")
    assert opened == {Section.svt: value, Section.medical: None}
    read = entries(s, case, "sensitive.read")
    assert len(read) == 1 and read[0].details == {"fields": ["medical", "svt"]}
    assert read[0].purpose == "Preparing the submission" and read[0].actor_user_id == fresh.user_id
    only_names(read[0].details, "Detained")
    service.read_sensitive(s, actor=fresh, access=access, sections=["svt"])
    assert len(entries(s, case, "sensitive.read")) == 2  # each read, every time

    with pytest.raises(ValidationFailed):
        service.read_sensitive(s, actor=fresh, access=access, sections=["identity"])
    with pytest.raises(ValidationFailed):
        service.write_sensitive(s, actor=fresh, access=access, section="confidential", value={"narrative": "x"})
    with pytest.raises(ValidationFailed):
        service.write_sensitive(s, actor=fresh, access=access, section="svt", value={"colour": "red"})
    with pytest.raises(Conflict):
        service.write_sensitive(s, actor=fresh, access=access, section="svt", value={"narrative": "Changed"},
                                version=1)
    assert service.read_sensitive(s, actor=fresh, access=access, sections=["svt"])[Section.svt] == value
    service.write_sensitive(s, actor=fresh, access=access, section="svt", value={"narrative": "  "})
    assert case.svt is None
    assert entries(s, case, "case.sensitive.write")[-1].details == {"section": "svt", "cleared": True}


def test_the_medical_section_keeps_its_four_conditions(world: CasesWorld) -> None:
    w, s = world, world.session
    case = w.open_case()
    cw, access = w.p("caseworker_unhcr"), w.access("caseworker_unhcr", case)
    service.write_sensitive(s, actor=cw, access=access, section="medical", value={
        "diagnosis": "Type 1 diabetes", "treatment_unavailable": "yes", "prognosis": "Good with insulin",
        "informed_consent": True})
    assert service.read_sensitive(s, actor=cw, access=access, sections=["medical"])[Section.medical] == {
        "diagnosis": "Type 1 diabetes", "treatment_unavailable": True, "prognosis": "Good with insulin",
        "informed_consent": True, "narrative": ""}


def test_member_confidential_notes_are_for_the_owners_caseworkers_only(world: CasesWorld) -> None:
    w, s = world, world.session
    case = w.open_case()
    cw, access = w.p("caseworker_unhcr"), w.access("caseworker_unhcr", case)
    wife = service.members_of(s, case)[1]
    with pytest.raises(policy.StepUpRequired):
        service.add_confidential_note(s, actor=w.p("caseworker_unhcr", fresh=False), access=access, member=wife,
                                      body="She fears her brother-in-law")
    note = service.add_confidential_note(s, actor=cw, access=access, member=wife,
                                         body="She fears her brother-in-law")
    assert b"brother-in-law" not in note.body
    assert entries(s, case, "case.confidential.add")[-1].details == {"member": str(wife.id)}
    notes = service.read_sensitive(s, actor=cw, access=access, sections=["confidential"])[Section.confidential]
    assert [(n["member_id"], n["body"]) for n in notes] == [(wife.id, "She fears her brother-in-law")]

    officer = extra(w, "officer_unhcr", "unhcr", [Role.officer])
    officer_access = access_case(s, officer, case.id)
    assert officer_access.sections == BUT_CONFIDENTIAL
    with pytest.raises(policy.NotFound):
        service.read_sensitive(s, actor=officer, access=officer_access, sections=["confidential"])
    for who in (officer, w.p("admin_unhcr")):
        with pytest.raises(policy.AuthError):
            service.add_confidential_note(s, actor=who, access=access_case(s, who, case.id), member=wife,
                                          body="Another note")
    # The officer still writes the case's own sealed sections.
    service.write_sensitive(s, actor=officer, access=officer_access, section="protection",
                            value={"narrative": "Threats"})
    assert len(service.read_sensitive(s, actor=cw, access=access, sections=["confidential"])[
        Section.confidential]) == 1


# The access log ---------------------------------------------------------------------------------------------


def test_the_access_log_shows_views_and_changes_to_the_owner_only(world: CasesWorld) -> None:
    w, s = world, world.session
    case = w.open_case()
    cw, access = w.p("caseworker_unhcr"), w.access("caseworker_unhcr", case)
    w.refer(case, "canada", sections=["identity", "protection"])
    service.record_view(s, actor=w.p("officer_canada"), access=w.access("officer_canada", case))
    clock.advance(timedelta(minutes=1))
    service.update_case(s, actor=cw, access=access, changes={"current_location": "Quetta"})
    service.write_sensitive(s, actor=cw, access=access, section="protection", value={"narrative": "Threats"})
    service.read_sensitive(s, actor=w.p("officer_canada"), access=w.access("officer_canada", case),
                           sections=["protection"])
    service.record_view(s, actor=cw, access=access, via="api")

    log = service.access_log(s, actor=cw, access=access)
    actions = [e.action for e in log.items]
    assert actions[:5] == ["case.view", "sensitive.read", "case.sensitive.write", "case.update", "case.view"]
    assert "case.create" in actions and "referral.open" in actions and "case.consent" in actions
    canada_view = next(e for e in log.items if e.action == "case.view" and e.org_id == w.net.orgs["canada"].id)
    assert canada_view.details == {"sections": ["identity", "summary"], "via": "page"}  # not the sealed one
    assert log.items[0].details["via"] == "api" and "confidential" not in log.items[0].details["sections"]
    assert log.total == len(entries(s, case))
    for e in log.items:
        only_names(e.details, "Quetta", "Threats", "Mohammad", "Rahimi")

    assert service.access_log(s, actor=w.p("admin_unhcr"), access=w.access("admin_unhcr", case)).total == log.total
    assert service.access_log(s, actor=cw, access=access, per_page=2).items == log.items[:2]
    analyst = extra(w, "analyst_unhcr", "unhcr", [Role.analyst])
    for who in (analyst, w.p("officer_canada"), w.p("admin_canada")):
        with pytest.raises(policy.AuthError):
            service.access_log(s, actor=who, access=access_case(s, who, case.id))


# Who sees what ----------------------------------------------------------------------------------------------


def test_what_each_persona_sees(world: CasesWorld) -> None:
    w, s = world, world.session
    case = w.open_case()
    w.refer(case, "canada", sections=["identity", "needs", "protection"])
    shared = SUMMARY | {Section.identity, Section.needs, Section.protection}
    expected: dict[str, frozenset[Section] | None] = {
        "caseworker_unhcr": ALL,
        "admin_unhcr": BUT_CONFIDENTIAL,  # administrator and senior official
        "officer_canada": shared,
        "admin_canada": SUMMARY,
        "minister_spain": None, "minister_germany": None, "analyst_ec": None, "sponsor_group_a": None,
        "admin_secretariat": None,
    }
    people: dict[str, Principal] = {k: w.p(k) for k in expected}
    for key, org, roles, sections in (
            ("officer_unhcr", "unhcr", [Role.officer], BUT_CONFIDENTIAL),
            ("senior_unhcr", "unhcr", [Role.senior_official], BUT_CONFIDENTIAL),
            ("admin_only_unhcr", "unhcr", [Role.admin], SUMMARY),
            ("analyst_unhcr", "unhcr", [Role.analyst], SUMMARY),
            ("caseworker_canada", "canada", [Role.caseworker], shared),
            ("senior_canada", "canada", [Role.senior_official], shared),
            ("analyst_canada", "canada", [Role.analyst], SUMMARY)):
        people[key] = extra(w, key, org, roles)
        expected[key] = sections
    for key, p in people.items():
        if expected[key] is None:
            with pytest.raises(policy.NotFound):
                access_case(s, p, case.id)
        else:
            got = access_case(s, p, case.id)
            assert got.sections == expected[key], key
            assert got.owner == (p.org_id == w.net.orgs["unhcr"].id)
    # A case id that does not exist is the same 404.
    import uuid

    with pytest.raises(policy.NotFound):
        access_case(s, people["caseworker_unhcr"], uuid.uuid4())

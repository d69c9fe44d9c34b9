"""Screening rules as data: the condition language (a table of registrations against a few rules, with the checks
that held), validation naming every bad field, versions and retired rules, a preview's counts against what saving
then moves (counted in the stored results, over several edits), the bulk screening against one by one, and who
may read and change an office's rules."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rdn.core import policy
from rdn.core.audit import AuditEntry
from rdn.core.errors import Conflict, ValidationFailed
from rdn.mobility import public_i18n, screening
from rdn.mobility.models import (
    Registration,
    RegistrationStatus,
    RuleStatus,
    ScreeningResult,
    ScreeningRule,
)
from tests.mobility.conftest import MobilityWorld

TRADE = {"key": "trade_experience", "type": "yes_no",
         "text": {"es": "¿Tiene experiencia en un oficio?", "en": "Do you have experience in a trade?"}}
SINGLE = {"key": "single_parent", "type": "yes_no", "text": {"en": "Do you raise your children alone?"}}


def rules_data(world: MobilityWorld) -> dict[str, dict[str, Any]]:
    return {
        "es_family": {"name": "Spain family reunification", "destination": "ES",
                      "pathway_id": str(world.pathways["es_family"].id),
                      "conditions": [{"field": "ties", "op": "contains", "value": "ES"}]},
        "us_parole": {"name": "US parole", "destination": "US",
                      "conditions": [{"field": "nationality", "op": "in", "value": ["VE", "NI", "CU", "HT"]},
                                     {"field": "arrived_on", "op": "on_or_before", "value": "2023-06-12"}]},
        "ca_labour": {"name": "Canada labour", "destination": "CA", "pathway_id": str(world.pathways["ca_labour"].id),
                      "questions": [TRADE],
                      "conditions": [{"field": "age", "op": "gte", "value": 18},
                                     {"field": "age", "op": "lte", "value": 55},
                                     {"field": "answer.trade_experience", "op": "is_true"}]},
        "es_children": {"name": "Spain children at risk", "destination": "ES",
                        "pathway_id": str(world.pathways["es_resettlement"].id), "questions": [SINGLE],
                        "conditions": [{"field": "has_children", "op": "is_true"},
                                       {"any": [{"field": "household_size", "op": "gte", "value": 5},
                                                {"field": "answer.single_parent", "op": "is_true"}]}]},
    }


def save_all(world: MobilityWorld, office: str = "cr") -> dict[str, ScreeningRule]:
    officer = world.p(f"officer_{office}")
    return {key: screening.save_rule(world.session, actor=officer, office=world.offices[office], data=data)
            for key, data in rules_data(world).items()}


CHILD = {"relationship": "child", "sex": "f", "birth_date": "2015-02-01", "nationality": "VE"}
ADULT_SON = {"relationship": "child", "sex": "m", "birth_date": "1995-02-01", "nationality": "VE"}
SPOUSE = {"relationship": "spouse", "sex": "m", "birth_date": "1988-01-01", "nationality": "CO"}

#: (label, registration, expected outcome per rule). The world's today is 2 November 2026 in Costa Rica.
TABLE: list[tuple[str, dict[str, Any], dict[str, bool]]] = [
    ("VE family with ties to Spain and a trade", dict(nationality="VE", birth_date=date(1990, 5, 17),
     arrived_on=date(2023, 3, 1), ties=["ES"], answers={"trade_experience": True}),
     {"es_family": True, "us_parole": True, "ca_labour": True, "es_children": False}),
    ("NI arrived on the cut-off day, 26 today", dict(nationality="NI", birth_date=date(2000, 11, 2),
     arrived_on=date(2023, 6, 12), answers={"trade_experience": False}),
     {"es_family": False, "us_parole": True, "ca_labour": False, "es_children": False}),
    ("NI arrived the day after the cut-off", dict(nationality="NI", arrived_on=date(2023, 6, 13),
     answers={"trade_experience": True}),
     {"es_family": False, "us_parole": False, "ca_labour": True, "es_children": False}),
    ("Colombian, not a parole nationality", dict(nationality="CO", arrived_on=date(2022, 1, 1)),
     {"es_family": False, "us_parole": False, "ca_labour": False, "es_children": False}),
    ("55 until tomorrow", dict(nationality="VE", birth_date=date(1970, 11, 3), arrived_on=date(2024, 1, 1),
     answers={"trade_experience": True}),
     {"es_family": False, "us_parole": False, "ca_labour": True, "es_children": False}),
    ("56 today", dict(nationality="VE", birth_date=date(1970, 11, 2), answers={"trade_experience": True}),
     {"es_family": False, "us_parole": True, "ca_labour": False, "es_children": False}),
    ("17 until tomorrow", dict(nationality="VE", birth_date=date(2008, 11, 3), answers={"trade_experience": True}),
     {"es_family": False, "us_parole": True, "ca_labour": False, "es_children": False}),
    ("HT, birth date unknown", dict(nationality="HT", birth_date=None, arrived_on=date(2021, 8, 1),
     answers={"trade_experience": True}),
     {"es_family": False, "us_parole": True, "ca_labour": False, "es_children": False}),
    ("CU with a child and ties to Spain and the US", dict(nationality="CU", members=[CHILD], ties=["US", "ES"]),
     {"es_family": True, "us_parole": True, "ca_labour": False, "es_children": False}),
    ("VE who did not answer", dict(nationality="VE", ties=["FR"]),
     {"es_family": False, "us_parole": True, "ca_labour": False, "es_children": False}),
    ("NI household of five with children", dict(nationality="NI", arrived_on=date(2023, 7, 1),
     members=[SPOUSE, CHILD, CHILD, ADULT_SON]),
     {"es_family": False, "us_parole": False, "ca_labour": False, "es_children": True}),
    ("VE single parent", dict(nationality="VE", members=[CHILD], answers={"single_parent": True}),
     {"es_family": False, "us_parole": True, "ca_labour": False, "es_children": True}),
    ("VE with a grown son only", dict(nationality="VE", members=[ADULT_SON], answers={"single_parent": True}),
     {"es_family": False, "us_parole": True, "ca_labour": False, "es_children": False}),
    ("Yes written as text", dict(nationality="VE", birth_date=date(1980, 1, 1), answers={"trade_experience": "yes"}),
     {"es_family": False, "us_parole": True, "ca_labour": True, "es_children": False}),
]


def outcome(session: Session, registration: Registration, rules: dict[str, ScreeningRule]) -> dict[str, bool]:
    names = {rule.id: key for key, rule in rules.items()}
    return {names[rule.id]: result.qualifies for result, rule in screening.results_of(session, registration)}


@pytest.mark.parametrize(("label", "kw", "expected"), TABLE, ids=[row[0] for row in TABLE])
def test_the_table(mobility_world: MobilityWorld, session: Session, frozen_now: Any, label: str,
                   kw: dict[str, Any], expected: dict[str, bool]) -> None:
    rules = save_all(mobility_world)
    registration = mobility_world.registration(**kw)
    results = screening.screen_registration(session, registration)
    assert len(results) == len(rules)
    assert outcome(session, registration, rules) == expected, label
    # Qualifying ones first; the status follows; the history tells that screening did it.
    listed = [result.qualifies for result, _rule in screening.results_of(session, registration)]
    assert listed == sorted(listed, reverse=True)
    status = RegistrationStatus.screened if any(expected.values()) else RegistrationStatus.not_qualified
    assert registration.status == status
    assert registration.history[-1]["status"] == status.value and registration.history[-1]["by"] == "screening"


def test_which_checks_held(mobility_world: MobilityWorld, session: Session, frozen_now: Any) -> None:
    rules = save_all(mobility_world)
    # Arrived after the cut-off, 17, no answer: the parole's nationality held, its date did not.
    registration = mobility_world.registration(nationality="VE", birth_date=date(2008, 11, 3),
                                               arrived_on=date(2023, 6, 13), members=[CHILD])
    screening.screen_registration(session, registration)
    by_rule = {rule.id: result for result, rule in screening.results_of(session, registration)}
    parole = by_rule[rules["us_parole"].id]
    assert [c["held"] for c in parole.checks] == [True, False]
    assert parole.checks[0] == {"field": "nationality", "op": "in", "value": ["VE", "NI", "CU", "HT"], "held": True}
    labour = by_rule[rules["ca_labour"].id]
    assert [c["held"] for c in labour.checks] == [False, True, False]  # 17; at most 55; not answered
    children = by_rule[rules["es_children"].id]
    assert children.checks[0]["held"] is True
    assert children.checks[1]["held"] is False
    assert [c["held"] for c in children.checks[1]["any"]] == [False, False]
    # In words, for staff and for the registrant.
    assert screening.describe(parole.checks[0]) == "Nationality is one of Venezuela, Nicaragua, Cuba, Haiti"
    assert screening.describe(parole.checks[1]) == "Date of arrival is on or before Jun 12, 2023"
    assert screening.describe(labour.checks[2], questions=[TRADE]) == \
        "The answer to “Do you have experience in a trade?”: yes"
    assert screening.describe(children.checks[1]).startswith("At least one of: Household size is at least 5; ")
    with public_i18n.using("es"):
        text = screening.describe_public(parole.checks[0])
        assert "Venezuela" in text and "Haití" in text
        assert "¿Tiene experiencia en un oficio?" in screening.describe_public(labour.checks[2], questions=[TRADE])
    assert screening.describe({"field": "ties", "op": "contains", "value": "ES"}) == "Close family lives in Spain"


def test_the_language_on_facts() -> None:
    today = date(2026, 11, 2)
    facts = {"nationality": "VE", "age": 30, "arrived_on": date(2023, 6, 12), "ties": ["ES"], "categories": [],
             "members.nationalities": ["VE", "CO"], "has_children": None, "answer.years": "7", "answer.kind": "nurse"}
    cases = [
        ({"field": "nationality", "op": "not_in", "value": ["NI"]}, True),
        ({"field": "nationality", "op": "eq", "value": "VE"}, True),
        ({"field": "nationality", "op": "ne", "value": "VE"}, False),
        ({"field": "age", "op": "gt", "value": 30}, False),
        ({"field": "age", "op": "lt", "value": 31}, True),
        ({"field": "age", "op": "in", "value": [29, 30]}, True),
        ({"field": "arrived_on", "op": "before", "value": "2023-06-12"}, False),
        ({"field": "arrived_on", "op": "after", "value": "2023-06-11"}, True),
        ({"field": "arrived_on", "op": "gte", "value": "2023-06-12"}, True),
        ({"field": "arrived_on", "op": "eq", "value": "2023-06-12"}, True),
        ({"field": "members.nationalities", "op": "contains_any", "value": ["HT", "CO"]}, True),
        ({"field": "members.nationalities", "op": "contains", "value": "HT"}, False),
        ({"field": "categories", "op": "exists"}, False),
        ({"field": "ties", "op": "exists"}, True),
        ({"field": "has_children", "op": "is_false"}, False),  # unknown: neither true nor false
        ({"field": "has_children", "op": "is_true"}, False),
        ({"field": "answer.years", "op": "gte", "value": 5}, True),  # a number typed as text
        ({"field": "answer.kind", "op": "in", "value": ["nurse", "cook"]}, True),
        ({"field": "answer.missing", "op": "ne", "value": "x"}, False),  # missing: does not hold, even "ne"
        ({"field": "answer.missing", "op": "not_in", "value": ["x"]}, False),
        ({"field": "household_size", "op": "gte", "value": 1}, False),  # not in the facts
        ({"field": "age", "op": "gte", "value": "not a number"}, False),  # a bad stored value never raises
        ({"field": "arrived_on", "op": "lt", "value": 3}, False),
        ({"field": "nope", "op": "weird", "value": None}, False),
    ]
    for condition, held in cases:
        ok, checks = screening.evaluate([condition], facts)
        assert ok is held and checks[0]["held"] is held, condition
    assert screening.evaluate([], facts) == (True, [])
    ok, checks = screening.evaluate([{"any": [{"field": "age", "op": "lt", "value": 18}, "garbage"]}, 7], facts)
    assert ok is False and checks[0]["held"] is False and checks[1]["held"] is False
    # Facts of a registration: ages today, the household, the office's country.
    reg = Registration(nationality="VE", birth_date=date(1990, 11, 3), arrived_on=date(2023, 1, 1), household_size=3,
                       reference="SM-CR-ABCDEFGH", office_id=uuid.uuid4(), answers={"x": True},
                       profile={"members": [{"relationship": "principal", "birth_date": "1990-11-03",
                                             "nationality": "VE"}, CHILD, SPOUSE], "ties": ["ES"], "categories": []})
    facts = screening.facts_of(reg, today)
    assert facts["age"] == 35 and facts["members.min_age"] == 11 and facts["members.max_age"] == 38
    assert facts["has_children"] is True and facts["members.nationalities"] == ["VE", "CO"]
    assert facts["office"] == "CR" and facts["answer.x"] is True and facts["household_size"] == 3


def errors_of(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as caught:
        screening.clean_rule(data)
    return {e.field: e.message for e in caught.value.errors}


def test_validation_names_every_bad_field() -> None:
    errors = errors_of({
        "name": "x" * 201, "destination": "XX", "pathway_id": "not-a-uuid",
        "questions": [TRADE, {**TRADE, "text": {"es": "otra"}},
                      {"key": "Bad Key", "type": "slider", "text": {"zz": "?"}},
                      {"key": "colour", "type": "choice", "text": {"en": "Colour?"}, "choices": ["red"]}],
        "conditions": [{"field": "nationality", "op": "in", "value": ["VE", "QQ"]},
                       {"field": "age", "op": "before", "value": "2020-01-01"},
                       {"field": "shoe_size", "op": "eq", "value": 42},
                       {"field": "arrived_on", "op": "on_or_before", "value": "12/06/2023"},
                       {"any": []},
                       {"field": "ties", "op": "contains_any", "value": "ES"},
                       {"field": "has_children", "op": "is_true", "value": "yes"},
                       {"field": "age", "op": "gte"}]})
    assert set(errors) == {
        "name", "destination", "pathway_id", "questions[1].key", "questions[2].key", "questions[2].type",
        "questions[2].text.zz", "questions[3].choices", "conditions[0].value[1]", "conditions[1].op",
        "conditions[2].field", "conditions[3].value", "conditions[4].any", "conditions[5].value",
        "conditions[6].value", "conditions[7].value"}
    assert "“before” does not apply to age" in errors["conditions[1].op"]
    # Answers must name a question of the rule and fit its type; choices must be the question's.
    errors = errors_of({"name": "A", "destination": "ca", "questions": [
        TRADE, {"key": "sector", "type": "choice", "text": {"en": "Sector?"}, "choices": ["health", "building"]}],
        "conditions": [{"field": "answer.other", "op": "is_true"}, {"field": "answer.trade_experience", "op": "gte",
                                                                   "value": 3},
                       {"field": "answer.sector", "op": "in", "value": ["health", "farming"]},
                       {"field": "answer.trade_experience", "op": "eq", "value": "yes"}]})
    assert set(errors) == {"conditions[0].field", "conditions[1].op", "conditions[2].value[1]",
                           "conditions[3].value"}
    # JSON text, as staff type it in the form.
    assert errors_of({"name": "A", "destination": "ES", "conditions": '[{"field": "ties",'}).keys() == {"conditions"}
    assert "line 1" in errors_of({"name": "A", "destination": "ES", "conditions": "[1,]"})["conditions"]
    assert errors_of({"name": "A", "destination": "ES", "conditions": '{"field": "ties"}'}) == {
        "conditions": "must be a list, written [ ... ]"}
    assert "at least one condition" in errors_of({"name": "A", "destination": "ES", "conditions": ""})["conditions"]
    cleaned = screening.clean_rule({"name": " Spain ", "destination": "es", "questions": "", "conditions":
                                    '[{"field": "ties", "op": "contains", "value": "es"},'
                                    ' {"field": "nationality", "op": "in", "value": ["ve", "VE", "ni"]}]'})
    assert cleaned == {"name": "Spain", "destination": "ES", "pathway_id": None, "questions": [], "conditions": [
        {"field": "ties", "op": "contains", "value": "ES"},
        {"field": "nationality", "op": "in", "value": ["VE", "NI"]}]}


def test_saving_checks_the_catalog_and_the_office(mobility_world: MobilityWorld, session: Session,
                                                   frozen_now: Any) -> None:
    officer, office = mobility_world.p("officer_cr"), mobility_world.offices["cr"]
    data = rules_data(mobility_world)["es_family"]
    with pytest.raises(ValidationFailed) as caught:
        screening.save_rule(session, actor=officer, office=office, data={**data, "destination": "CA"})
    assert {e.field for e in caught.value.errors} == {"destination"}  # the pathway leads to Spain
    with pytest.raises(ValidationFailed) as caught:
        screening.save_rule(session, actor=officer, office=office, data={**data, "pathway_id": str(uuid.uuid4())})
    assert {e.field for e in caught.value.errors} == {"pathway_id"}
    screening.save_rule(session, actor=officer, office=office, data=rules_data(mobility_world)["ca_labour"])
    clash = {"name": "Other", "destination": "CA", "questions": [{**TRADE, "type": "number"}],
             "conditions": [{"field": "answer.trade_experience", "op": "gte", "value": 2}]}
    with pytest.raises(ValidationFailed) as caught:
        screening.save_rule(session, actor=officer, office=office, data=clash)
    assert {e.field for e in caught.value.errors} == {"questions[0].type"}
    assert session.scalar(select(func.count()).select_from(ScreeningRule)) == 1


def test_questions_for_the_office(mobility_world: MobilityWorld, session: Session, frozen_now: Any) -> None:
    rules = save_all(mobility_world)
    officer, office = mobility_world.p("officer_cr"), mobility_world.offices["cr"]
    screening.save_rule(session, actor=officer, office=office, data={
        "name": "Canada caregivers", "destination": "CA", "questions": [TRADE, SINGLE],
        "conditions": [{"field": "answer.trade_experience", "op": "is_true"}]})
    assert [q["key"] for q in screening.questions_for(session, office.id)] == ["trade_experience", "single_parent"]
    assert [r.name for r in screening.active_rules(session, office.id)] == [
        "Canada caregivers", "Canada labour", "Spain children at risk", "Spain family reunification", "US parole"]
    assert screening.questions_for(session, mobility_world.offices["co"].id) == []
    screening.retire_rule(session, actor=officer, rule=rules["ca_labour"])
    assert len(screening.active_rules(session, office.id)) == 4


def qualifying(session: Session, rule_key: uuid.UUID) -> set[uuid.UUID]:
    """The registrations whose current result of the rule (any version) qualifies."""
    return set(session.scalars(select(ScreeningResult.registration_id).join(
        ScreeningRule, ScreeningRule.id == ScreeningResult.rule_id).where(
        ScreeningRule.rule_key == rule_key, ScreeningResult.current.is_(True), ScreeningResult.qualifies.is_(True))))


def counts(session: Session) -> tuple[int, int, int]:
    return (session.scalar(select(func.count()).select_from(ScreeningResult)) or 0,
            session.scalar(select(func.count()).select_from(ScreeningRule)) or 0,
            session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


def test_preview_counts_equal_what_saving_moves(mobility_world: MobilityWorld, session: Session,
                                                frozen_now: Any) -> None:
    world, officer, office = mobility_world, mobility_world.p("officer_cr"), mobility_world.offices["cr"]
    save_all(world)
    registrations = []
    for _label, kw, _expected in TABLE:
        registrations.append(world.registration(**kw))
    for r in registrations[:10]:
        screening.screen_registration(session, r)  # the last four were never screened (status received)
    registrations[0].status = RegistrationStatus.withdrawn  # not open: never counted, never moved
    world.registration(office="co", nationality="VE", ties=["ES"])  # another office's
    session.flush()
    open_count = len(registrations) - 1

    edits = [
        {"name": "Ties to Spain or Portugal", "destination": "ES",
         "conditions": [{"field": "ties", "op": "contains_any", "value": ["ES", "PT"]}]},
        {"name": "Nicaraguans with ties", "destination": "ES",
         "conditions": [{"field": "nationality", "op": "eq", "value": "NI"}]},
        {"name": "Venezuelans with a trade", "destination": "ES", "questions": [TRADE],
         "conditions": [{"field": "nationality", "op": "in", "value": ["VE"]},
                        {"any": [{"field": "answer.trade_experience", "op": "is_true"},
                                 {"field": "has_children", "op": "is_true"}]}]},
        {"name": "Arrived late", "destination": "ES",
         "conditions": [{"field": "arrived_on", "op": "after", "value": "2023-06-12"}]},
    ]
    rule: ScreeningRule | None = None
    seen_moves = 0
    for data in edits:
        written = counts(session)
        preview = screening.preview_rule(session, actor=officer, office=office, data=data, rule=rule)
        assert counts(session) == written  # a preview writes nothing
        before = qualifying(session, rule.rule_key) if rule is not None else set()
        saved = screening.save_rule(session, actor=officer, office=office, data=data, rule=rule)
        after = qualifying(session, saved.rule_key)
        assert preview.total == open_count
        assert (preview.gained, preview.lost) == (len(after - before), len(before - after)), data["name"]
        assert preview.unchanged == preview.total - preview.gained - preview.lost
        assert registrations[0].id not in after
        seen_moves += preview.moved
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "mobility.rule.save")
                                .order_by(AuditEntry.seq.desc())).first()
        assert entry.details["gained"] == preview.gained and entry.details["lost"] == preview.lost
        assert entry.details["version"] == saved.version and entry.details["rule_key"] == str(saved.rule_key)
        rule = saved
    assert seen_moves > 0 and rule is not None and rule.version == len(edits)
    # Every open registration now has exactly one current result per active rule (the received ones too).
    active = screening.active_rules(session, office.id)
    for r in registrations[1:]:
        current = screening.results_of(session, r)
        assert sorted(rule.id for _res, rule in current) == sorted(a.id for a in active)
        session.refresh(r)
        assert r.status in (RegistrationStatus.screened, RegistrationStatus.not_qualified)


def test_versions_and_retired_rules(mobility_world: MobilityWorld, session: Session, frozen_now: Any) -> None:
    world, officer, office = mobility_world, mobility_world.p("officer_cr"), mobility_world.offices["cr"]
    data = rules_data(world)["es_family"]
    v1 = screening.save_rule(session, actor=officer, office=office, data=data)
    tied = world.registration(nationality="CO", ties=["ES"])
    untied = world.registration(nationality="CO")
    screening.screen_registration(session, tied)
    screening.screen_registration(session, untied)
    assert (tied.status, untied.status) == (RegistrationStatus.screened, RegistrationStatus.not_qualified)

    v2 = screening.save_rule(session, actor=officer, office=office, rule=v1, data={
        **data, "name": "Spain family (any tie)", "conditions": [{"field": "ties", "op": "exists"}]})
    assert (v2.rule_key, v2.version, v2.status) == (v1.rule_key, 2, RuleStatus.active)
    assert v1.status == RuleStatus.retired
    assert [rule.id for _r, rule in screening.results_of(session, tied)] == [v2.id]
    old = session.scalars(select(ScreeningResult).where(ScreeningResult.rule_id == v1.id)).all()
    assert old and not any(r.current for r in old)  # kept, no longer current
    with pytest.raises(Conflict):
        screening.save_rule(session, actor=officer, office=office, rule=v1, data=data)  # stale: v2 exists
    assert [v.version for v in screening.versions(session, officer, v1.rule_key)] == [2, 1]

    moves = screening.retire_rule(session, actor=officer, rule=v2)
    assert (moves.lost, moves.gained) == (1, 0)
    assert v2.status == RuleStatus.retired and screening.active_rules(session, office.id) == []
    assert screening.results_of(session, tied) == []
    session.refresh(tied)
    assert tied.status == RegistrationStatus.not_qualified
    assert [h["status"] for h in tied.history] == ["screened", "not_qualified"]
    with pytest.raises(Conflict):
        screening.retire_rule(session, actor=officer, rule=v2)
    actions = session.scalars(select(AuditEntry.action).where(AuditEntry.action.like("mobility.rule.%"))
                              .order_by(AuditEntry.seq)).all()
    assert actions == ["mobility.rule.save", "mobility.rule.save", "mobility.rule.retire"]
    # Saving the retired latest version brings it back as version 3 (before: nobody qualified).
    preview = screening.preview_rule(session, actor=officer, office=office, rule=v2, data=data)
    v3 = screening.save_rule(session, actor=officer, office=office, rule=v2, data=data)
    assert v3.version == 3 and preview.gained == len(qualifying(session, v3.rule_key)) == 1


def snapshot(session: Session, registrations: list[Registration]) -> dict[uuid.UUID, Any]:
    out = {}
    for r in registrations:
        session.refresh(r)
        results = {rule.id: (res.qualifies, res.checks) for res, rule in screening.results_of(session, r)}
        out[r.id] = (r.status, results)
    return out


def test_screen_many_equals_one_by_one(mobility_world: MobilityWorld, session: Session, frozen_now: Any) -> None:
    save_all(mobility_world)
    registrations = [mobility_world.registration(**kw) for _label, kw, _expected in TABLE]
    registrations[1].status = RegistrationStatus.interview  # open: screened, its status kept
    registrations[2].status = RegistrationStatus.referred  # not open: left alone
    other = mobility_world.registration(office="co", nationality="VE", ties=["ES"])
    session.flush()
    assert screening.screen_many(session, mobility_world.offices["cr"].id, batch=4) == len(TABLE) - 1
    many = snapshot(session, registrations)
    assert many[registrations[2].id] == (RegistrationStatus.referred, {})
    assert many[registrations[1].id][0] == RegistrationStatus.interview
    assert screening.results_of(session, other) == []
    for r in registrations:
        if r.status != RegistrationStatus.referred:
            screening.screen_registration(session, r)
    assert snapshot(session, registrations) == many
    # Screening again replaced the results: one current per rule and registration, the earlier ones kept.
    current = session.scalar(select(func.count()).select_from(ScreeningResult).where(ScreeningResult.current))
    total = session.scalar(select(func.count()).select_from(ScreeningResult))
    assert current == (len(TABLE) - 1) * 4 and total == 2 * current
    # Running it again moves nothing and stays consistent; one history entry per change of status only.
    screening.screen_many(session, mobility_world.offices["cr"].id)
    assert snapshot(session, registrations) == many
    assert all(len(r.history) <= 1 for r in registrations)


def test_who_may_read_and_change_rules(mobility_world: MobilityWorld, session: Session, frozen_now: Any) -> None:
    world = mobility_world
    rules = save_all(world)
    cr, co = world.offices["cr"], world.offices["co"]
    data = rules_data(world)["us_parole"]
    for persona in ("officer_co", "caseworker_cr", "analyst_cr", "caseworker_co"):
        p = world.p(persona)
        with pytest.raises(policy.NotFound):
            screening.save_rule(session, actor=p, office=cr, data=data)
        with pytest.raises(policy.NotFound):
            screening.preview_rule(session, actor=p, office=cr, data=data)
        with pytest.raises(policy.NotFound):
            screening.retire_rule(session, actor=p, rule=rules["us_parole"])
    assert screening.save_rule(session, actor=world.p("admin_cr"), office=cr, data=data).office_id == cr.id
    assert screening.active_rules(session, co.id) == []
    for persona in ("officer_co", "caseworker_co"):
        assert session.scalars(policy.scoped(world.p(persona), ScreeningRule)).all() == []
        with pytest.raises(policy.NotFound):
            screening.versions(session, world.p(persona), rules["us_parole"].rule_key)
    caseworker = world.p("caseworker_cr")
    assert policy.can(caseworker, "mobility.rules.read", cr) and not policy.can(caseworker, "mobility.rules.manage", cr)
    assert len(screening.versions(session, caseworker, rules["us_parole"].rule_key)) == 1
    assert not policy.can(world.p("analyst_cr"), "mobility.rules.read", cr)
    assert not policy.can(world.p("officer_co"), "mobility.rules.read", cr)

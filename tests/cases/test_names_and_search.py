"""Name keys across transliterations, then case lists: name and number search, who may search what,
filters, sorts, pagination, and the look-alike warning."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import permutations
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from rdn.cases import names, search, service, sharing
from rdn.cases.models import Case, Referral
from rdn.cases.pipeline import Stage
from rdn.cases.search import CaseFilters
from rdn.core import clock, identity, policy
from rdn.core.identity import Principal
from rdn.core.tenancy import Role
from tests.cases.conftest import AGREED, CasesWorld, agree, household
from tests.factories import make_person

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

SAME = [
    ["Mohammad", "Mohammed", "Muhammad", "Muhamad", "Mohamed", "محمد", "Мухаммед"],
    ["Abdul Rahman", "Abdulrahman", "Abdurrahman", "Abd al-Rahman", "Abdel Rahman", "عبد الرحمن"],
    ["José", "JOSE", "jose"],
    ["Al-Hashimi", "Alhashimi", "Hashimi"],
    ["Hussein", "Hussain", "Husayn", "Hossein"],
    ["Fatima", "Fatimah", "فاطمة"],
    ["Yusuf", "Yousef", "يوسف"],
    ["Ibrahim", "Ebrahim", "ابراهيم"],
    ["Abdullah", "Abdallah", "Abd Allah", "عبد الله", "عبدالله"],
    ["Aisha", "Aysha", "Aïcha", "عائشة"],
]
DIFFERENT = [("Mohammad", "Ali"), ("Ahmad", "Hamid"), ("Omar", "Osman")]


def matches(query: str, name: str) -> bool:
    """Would a search for ``query`` find a person called ``name`` (what the index compares)?"""
    keys = names.member_keys(name, "")
    tokens = names.query(query)
    return bool(tokens) and all(set(t.alternatives) & keys for t in tokens)


# Names ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("a", "b"), [pair for group in SAME for pair in permutations(group, 2)])
def test_transliteration_variants_find_each_other(a: str, b: str) -> None:
    assert matches(a, b)


@pytest.mark.parametrize(("a", "b"), DIFFERENT + [(b, a) for a, b in DIFFERENT])
def test_different_names_do_not_match(a: str, b: str) -> None:
    assert not matches(a, b)


def test_tokens_join_particles_and_fold_case_and_accents() -> None:
    assert names.tokens("Abd al-Rahman  AL-HASHIMI") == ("abdalrahman", "alhashimi")
    assert names.tokens("José García") == names.tokens("JOSE garcia") == ("jose", "garcia")
    assert names.tokens("") == () and names.query("  - ") == []
    # The exact key is the spelling itself: variants share a skeleton, not an exact key.
    assert names.query("Mohammad")[0].exact == "n:mohammad" != names.query("Muhammad")[0].exact
    assert len(names.query("a b c d e f g h i j")) == 8  # at most eight tokens


def test_the_duplicate_warning_keys_agree_across_spellings() -> None:
    assert names.same_person_keys("Mohammed", "Al-Hashimi") == names.same_person_keys("Muhammad", "Hashimi")
    assert names.same_person_keys("Mohammed", "Rahimi") != names.same_person_keys("Ali", "Rahimi")
    assert names.same_person_keys("Mohammed", "") is None


# The search world -------------------------------------------------------------------------------------------


@pytest.fixture
def world(session: Session, network: Any, make_gov_admins: Any) -> Iterator[CasesWorld]:
    with clock.frozen(T0):
        make_gov_admins()
        agreements = {gov: agree(session, network, gov, sections) for gov, sections in AGREED.items()}
        session.flush()
        yield CasesWorld(session, network, agreements)


def person(given: str, family: str, birth: str = "1984", nationality: str = "AF", **kw: Any) -> dict[str, Any]:
    return {"relationship": "principal", "given_name": given, "family_name": family, "sex": "male",
            "date_of_birth": birth, "nationality": nationality, **kw}


@pytest.fixture
def cases(world: CasesWorld) -> dict[str, Case]:
    """Four families of the agency and one of Canada's own."""
    w = world
    out = {
        "hashimi": w.open_case(members=household("Mohammed", "Al-Hashimi")),
        "rahimi": w.open_case(members=household("Muhammad", "Rahimi", size=4)),
        "garcia": w.open_case(members=[person("José", "García", nationality="SY",
                                              other_names=["Yousef Garcia"])],
                              current_country="LB", category_primary="MED", category_secondary="SVT",
                              processing_priority="emergency"),
        "exact": w.open_case(members=[person("Mohammad", "Hashimi", birth="1990")]),
        "canada": w.open_case("officer_canada", members=[person("Mohammad", "Karimi", birth="1980")]),
    }
    w.session.flush()
    return out


def found(w: CasesWorld, who: str | Principal, **filters: Any) -> list[str]:
    p = w.p(who) if isinstance(who, str) else who
    return [c.number for c in search.list_cases(w.session, p, CaseFilters(**filters), per_page=100).items]


def numbers(cases: dict[str, Case], *keys: str) -> list[str]:
    return [cases[k].number for k in keys]


def extra(w: CasesWorld, key: str, org: str, roles: list[Role]) -> Principal:
    user, _secret = make_person(w.session, f"{key}@rdn.test", w.net.orgs[org], roles)
    return identity.principal_for(w.session, user, org_id=w.net.orgs[org].id, via="session")


# Name search ------------------------------------------------------------------------------------------------


def test_a_name_finds_its_variants_in_any_script(world: CasesWorld, cases: dict[str, Case]) -> None:
    w = world
    mine = {cases[k].number for k in ("hashimi", "rahimi", "exact")}
    for q in ("Muhammad", "mohamed", "MOHAMMAD", "محمد", "Мухаммед"):
        assert set(found(w, "caseworker_unhcr", q=q)) == mine, q
    assert found(w, "caseworker_unhcr", q="Hashimi", sort="number") == numbers(cases, "hashimi", "exact")
    assert found(w, "caseworker_unhcr", q="Fatimah Al Hashimi") == numbers(cases, "hashimi")  # the spouse
    assert found(w, "caseworker_unhcr", q="Ali") == []


def test_accents_and_case_do_not_matter(world: CasesWorld, cases: dict[str, Case]) -> None:
    for q in ("jose garcia", "JOSÉ GARCÍA", "José Garcia"):
        assert found(world, "caseworker_unhcr", q=q) == numbers(cases, "garcia")


def test_every_token_must_match_one_person(world: CasesWorld, cases: dict[str, Case]) -> None:
    w = world
    assert found(w, "caseworker_unhcr", q="Mohammad Rahimi") == numbers(cases, "rahimi")
    assert found(w, "caseworker_unhcr", q="Mohammad Nobody") == []
    # Fatima is in the Rahimi family, Mohammed is in the Al-Hashimi family: not one person.
    assert found(w, "caseworker_unhcr", q="Fatima Mohammed") == []
    # A family of four matches once, however many of its people carry the name.
    assert search.list_cases(w.session, w.p("caseworker_unhcr"), CaseFilters(q="Rahimi")).total == 1


def test_exact_spellings_rank_first(world: CasesWorld, cases: dict[str, Case]) -> None:
    w = world
    assert found(w, "caseworker_unhcr", q="Mohammad Hashimi") == numbers(cases, "exact", "hashimi")
    assert found(w, "caseworker_unhcr", q="Mohammed Al-Hashimi") == numbers(cases, "hashimi", "exact")
    assert found(w, "caseworker_unhcr", q="Muhammad")[0] == cases["rahimi"].number


def test_other_names_are_searched(world: CasesWorld, cases: dict[str, Case]) -> None:
    assert found(world, "caseworker_unhcr", q="Yusuf") == numbers(cases, "garcia")
    assert found(world, "caseworker_unhcr", q="يوسف") == numbers(cases, "garcia")


def test_a_case_number_or_a_previous_number_finds_the_case(world: CasesWorld, cases: dict[str, Case]) -> None:
    w = world
    rahimi = cases["rahimi"]
    assert found(w, "caseworker_unhcr", q=rahimi.number) == [rahimi.number]
    assert found(w, "caseworker_unhcr", q=f"  {rahimi.number.lower()} ") == [rahimi.number]
    rahimi.previous_numbers = ["OLDORG-25-000042", "OTHER-24-000007"]
    w.session.flush()
    assert found(w, "caseworker_unhcr", q="OLDORG-25-000042") == [rahimi.number]
    assert found(w, "caseworker_unhcr", q="other-24-000007") == [rahimi.number]
    assert found(w, "caseworker_unhcr", q="OLDORG-25-00004") == []  # a prefix of a number is not the number
    assert found(w, "officer_canada", q=rahimi.number) == []  # not Canada's to see
    assert found(w, "officer_canada", q=cases["canada"].number) == [cases["canada"].number]


def test_a_search_never_returns_what_the_caller_cannot_see(world: CasesWorld, cases: dict[str, Case]) -> None:
    w = world
    assert cases["canada"].number not in found(w, "caseworker_unhcr", q="Mohammad")
    assert found(w, "caseworker_unhcr", q="Karimi") == []
    assert found(w, "officer_canada", q="Mohammad") == numbers(cases, "canada")
    for persona in ("minister_spain", "analyst_ec", "sponsor_group_a", "admin_secretariat"):
        if persona in ("analyst_ec", "sponsor_group_a", "admin_secretariat"):
            with pytest.raises(policy.Forbidden):
                found(w, persona, q="Mohammad")
        else:
            assert found(w, persona, q="Mohammad") == []

    # Referred with the identity section: Canada's handlers find the family by name.
    w.refer(cases["rahimi"], "canada", sections=["identity", "needs"])
    # Referred without it: the case is listed, but no name leads to it.
    w.refer(cases["hashimi"], "canada", sections=["needs"])
    assert set(found(w, "officer_canada")) == {cases[k].number for k in ("rahimi", "hashimi", "canada")}
    assert set(found(w, "officer_canada", q="Mohammad")) == {cases["rahimi"].number, cases["canada"].number}
    assert found(w, "officer_canada", q="Hashimi") == []
    assert found(w, "officer_canada", q="Fatima") == numbers(cases, "rahimi")


def test_a_recipient_finds_people_by_name_while_the_share_lasts_including_people_added_later(
        world: CasesWorld, cases: dict[str, Case]) -> None:
    """A government's name search reads the people shared with it (``Member.shared_with``, kept with the share
    rows): a member added after the referral is found, and a revoked referral hides every name at once."""
    w, s = world, world.session
    w.refer(cases["rahimi"], "canada", sections=["identity", "needs"])
    s.flush()
    referral = s.scalars(select(Referral).where(Referral.case_id == cases["rahimi"].id)).one()
    canada = w.net.orgs["canada"].id.hex
    assert all(m.shared_with == [canada] for m in _fresh_members(s, cases["rahimi"]))
    assert all(m.shared_with == [] for m in _fresh_members(s, cases["hashimi"]))
    service.add_member(s, actor=w.p("caseworker_unhcr"), access=w.access("caseworker_unhcr", cases["rahimi"]), data={
        "relationship": "grandparent", "given_name": "Khadija", "family_name": "Rahimi", "sex": "female",
        "date_of_birth": "1950", "nationality": "AF"})
    s.flush()
    assert found(w, "officer_canada", q="Khadija") == numbers(cases, "rahimi")
    assert found(w, "officer_canada", q="Fatima Rahimi") == numbers(cases, "rahimi")
    sharing.change_referral(s, actor=w.p("caseworker_unhcr"), referral=referral, status="revoked",
                            reason="Consent was withdrawn")
    s.flush()
    assert found(w, "officer_canada", q="Khadija") == found(w, "officer_canada", q="Fatima") == []
    assert all(m.shared_with == [] for m in _fresh_members(s, cases["rahimi"]))


def _fresh_members(s: Session, case: Case) -> list[Any]:
    members = service.members_of(s, case)
    for m in members:
        s.refresh(m)
    return members


def test_summary_only_people_cannot_search_by_name(world: CasesWorld, cases: dict[str, Case]) -> None:
    w = world
    w.refer(cases["rahimi"], "canada", sections=["identity", "needs"])
    # Canada's administrator sees the referred case and Canada's own in lists, by number too, not by name.
    assert set(found(w, "admin_canada")) == {cases["rahimi"].number, cases["canada"].number}
    assert found(w, "admin_canada", q=cases["rahimi"].number) == [cases["rahimi"].number]
    for q in ("Rahimi", "Karimi", "Mohammad"):
        assert found(w, "admin_canada", q=q) == [], q
    analyst = extra(w, "analyst_unhcr", "unhcr", [Role.analyst])
    assert len(found(w, analyst)) == 4 and found(w, analyst, q="Rahimi") == []
    # The agency's administrator is also a senior official: identities, so names.
    assert found(w, "admin_unhcr", q="Rahimi") == numbers(cases, "rahimi")


# Filters ----------------------------------------------------------------------------------------------------


def test_filters(world: CasesWorld, cases: dict[str, Case]) -> None:
    w = world
    cw = "caseworker_unhcr"
    actor = w.p(cw)
    service.move(w.session, actor=actor, access=w.access(cw, cases["rahimi"]), to=Stage.needs_assessment)
    everyone = {cases[k].number for k in ("hashimi", "rahimi", "garcia", "exact")}
    assert set(found(w, cw)) == everyone

    assert found(w, cw, stage=["needs_assessment"]) == numbers(cases, "rahimi")
    assert set(found(w, cw, stage=["referred", "needs_assessment"])) == everyone
    assert found(w, cw, stage=["no_such_stage"]) == []
    assert found(w, cw, priority="emergency") == numbers(cases, "garcia")
    assert set(found(w, cw, priority="urgent")) == everyone - {cases["garcia"].number}
    assert set(found(w, cw, priority="whatever")) == everyone  # an unknown value filters nothing
    assert found(w, cw, category="MED") == numbers(cases, "garcia")  # primary
    assert found(w, cw, category="svt") == numbers(cases, "garcia")  # secondary, any case
    assert set(found(w, cw, category="LAS")) == everyone - {cases["garcia"].number}
    assert found(w, cw, category="CAR") == []
    assert found(w, cw, nationality="sy") == numbers(cases, "garcia")
    assert set(found(w, cw, nationality="AF")) == everyone - {cases["garcia"].number}
    assert found(w, cw, current_country="LB") == numbers(cases, "garcia")
    assert found(w, cw, current_country="LB", priority="normal") == []  # filters combine
    assert found(w, cw, overdue=True) == []

    w.refer(cases["rahimi"], "canada", "spain")
    w.refer(cases["garcia"], "spain")
    canada, spain = w.net.orgs["canada"].id, w.net.orgs["spain"].id
    assert found(w, cw, referred_to=canada) == numbers(cases, "rahimi")
    assert set(found(w, cw, referred_to=spain)) == {cases["rahimi"].number, cases["garcia"].number}
    assert found(w, cw, relation="owned", nationality="SY") == numbers(cases, "garcia")
    assert found(w, cw, relation="referred") == []
    assert found(w, "officer_canada", relation="owned") == numbers(cases, "canada")
    assert found(w, "officer_canada", relation="referred") == numbers(cases, "rahimi")
    assert found(w, "officer_canada", referred_to=canada) == numbers(cases, "rahimi")
    # Canada does not learn where else the agency referred the family.
    assert found(w, "officer_canada", referred_to=spain) == []
    # A revoked referral no longer counts.
    referral = next(r for r in search_referrals(w, cases["garcia"]) if r.recipient_org_id == spain)
    from rdn.cases import sharing

    sharing.change_referral(w.session, actor=actor, referral=referral, status="revoked", reason="Sent elsewhere")
    assert found(w, cw, referred_to=spain) == numbers(cases, "rahimi")


def search_referrals(w: CasesWorld, case: Case) -> list[Any]:
    from rdn.cases import sharing

    return sharing.referrals_of(w.session, w.p("caseworker_unhcr"), w.access("caseworker_unhcr", case))


# Sorts and pages --------------------------------------------------------------------------------------------


def test_sorts_and_pages(world: CasesWorld) -> None:
    w, s = world, world.session
    zahra = w.open_case(members=[person("Zahra", "Karimi")], processing_priority="normal")  # due in 14 days
    clock.advance(timedelta(hours=1))
    amina = w.open_case(members=[person("Amina", "Noori")], processing_priority="emergency")  # 1 day
    clock.advance(timedelta(hours=1))
    layla = w.open_case(members=[person("Layla", "Haidari")], processing_priority="urgent")  # 3 days
    clock.advance(timedelta(hours=1))
    bashir = w.open_case(members=[person("Bashir", "Sadat")], processing_priority="normal")
    bashir.stage = Stage.departed  # two days to arrive, whatever the priority
    bashir.stage_since = clock.now()
    service.recompute_clocks(bashir)
    clock.advance(timedelta(hours=1))
    service.update_case(s, actor=w.p("caseworker_unhcr"), access=w.access("caseworker_unhcr", zahra),
                        changes={"current_location": "Peshawar"})
    s.flush()
    by = {c.principal_name.split()[0]: c.number for c in (zahra, amina, layla, bashir)}

    def order(sort: str, **kw: Any) -> list[str]:
        numbers_ = found(w, "caseworker_unhcr", sort=sort, **kw)
        return [next(k for k, v in by.items() if v == n) for n in numbers_]

    assert order("due") == ["Amina", "Bashir", "Layla", "Zahra"]
    assert order("") == order("relevance") == order("nonsense") == order("due")
    assert order("priority") == ["Amina", "Layla", "Bashir", "Zahra"]
    assert order("updated") == ["Zahra", "Bashir", "Layla", "Amina"]
    assert order("number") == ["Zahra", "Amina", "Layla", "Bashir"]
    assert order("name") == ["Amina", "Bashir", "Layla", "Zahra"]
    assert set(search.SORTS) == {"relevance", "due", "updated", "number", "priority", "name"}

    p = w.p("caseworker_unhcr")
    first = search.list_cases(s, p, CaseFilters(sort="name"), page=1, per_page=3)
    second = search.list_cases(s, p, CaseFilters(sort="name"), page=2, per_page=3)
    assert (first.total, second.total, first.pages) == (4, 4, 2)
    assert [c.number for c in first.items + second.items] == [by[k] for k in ("Amina", "Bashir", "Layla", "Zahra")]
    assert first.has_next and not second.has_next
    assert search.list_cases(s, p, CaseFilters(sort="name"), page=3, per_page=3).items == []
    filtered = search.list_cases(s, p, CaseFilters(priority="normal"), per_page=1)
    assert filtered.total == 2 and len(filtered.items) == 1
    assert search.counts_by_stage(s, p) == {"referred": 3, "departed": 1}


def test_a_list_past_the_count_cap_says_more_than_and_sorts_in_the_database_as_in_python(
        world: CasesWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    """Up to COUNT_CAP matches are sorted in Python, more in SQL: both give the same order for every sort, and
    past the cap the total is a lower bound while the pages go on."""
    w, s = world, world.session
    for i, (given, priority) in enumerate([("Zahra", "normal"), ("Amina", "emergency"), ("Layla", "urgent"),
                                           ("Bashir", "normal"), ("Omar", "urgent"), ("Hana", "emergency")]):
        case = w.open_case(members=[person(given, f"Family{i}")], processing_priority=priority)
        if given == "Bashir":
            case.stage, case.stage_since = Stage.closed, clock.now()  # no clock: sorts last
            service.recompute_clocks(case)
        clock.advance(timedelta(minutes=7))
    s.flush()
    p = w.p("caseworker_unhcr")

    def walk(sort: str, stages: tuple[str, ...] = ()) -> tuple[list[str], list[tuple[int, bool, bool]]]:
        numbers, shapes, page = [], [], 1
        while True:
            result = search.list_cases(s, p, CaseFilters(sort=sort, stage=list(stages)), page=page, per_page=4)
            numbers += [c.number for c in result.items]
            shapes.append((result.total, result.exact, result.has_next))
            if not result.has_next:
                return numbers, shapes
            page += 1

    for sort in search.SORTS:
        in_python, shapes = walk(sort)
        assert shapes == [(6, True, True), (6, True, False)]
        monkeypatch.setattr(search, "COUNT_CAP", 3)
        in_sql, capped = walk(sort)
        monkeypatch.setattr(search, "COUNT_CAP", 1_000)
        assert in_sql == in_python, sort
        assert capped == [(3, False, True), (3, False, False)]  # "more than 3"; the second page is not full
    # Several stages past the cap: each stage walked in due order on its own, then merged.
    both = ("referred", "closed", "referred")
    in_python, _shapes = walk("due", both)
    assert in_python == walk("due")[0]
    monkeypatch.setattr(search, "COUNT_CAP", 3)
    assert walk("due", both)[0] == in_python
    assert walk("", both)[0] == in_python
    monkeypatch.setattr(search, "COUNT_CAP", 1_000)
    monkeypatch.setattr(search, "COUNT_CAP", 3)
    few = search.list_cases(s, p, CaseFilters(priority="emergency"))
    assert (few.total, few.exact, len(few.items)) == (2, True, 2)


# Look-alikes ------------------------------------------------------------------------------------------------


def test_similar_people_are_warned_only_on_visible_cases(world: CasesWorld, cases: dict[str, Case]) -> None:
    w, s = world, world.session
    newcomer = [{"given_name": "Mohamed", "family_name": "Rahimi", "birth_year": 1985},
                {"given_name": "Muhammad", "family_name": "Karimi", "birth_year": 1980},
                {"given_name": "Mohammed", "family_name": "Rahimi", "birth_year": 1990}]
    warned = service.similar_people(s, w.p("caseworker_unhcr"), newcomer)
    assert [(x.index, x.case_number, x.name, x.birth_year) for x in warned] == [
        (0, cases["rahimi"].number, "Muhammad Rahimi", 1984)]  # Canada's Karimi is not the agency's to see
    assert service.similar_people(s, w.p("caseworker_unhcr"), newcomer[:1], exclude_case=cases["rahimi"].id) == []
    canadian = service.similar_people(s, w.p("officer_canada"), newcomer)
    assert [(x.index, x.case_number) for x in canadian] == [(1, cases["canada"].number)]
    # Referred without identities: Canada sees the case but gets no look-alike warning from it.
    w.refer(cases["rahimi"], "canada", sections=["needs"])
    assert [x.index for x in service.similar_people(s, w.p("officer_canada"), newcomer)] == [1]
    w.refer(cases["hashimi"], "canada", sections=["identity"])
    hashimi = service.similar_people(s, w.p("officer_canada"),
                                     [{"given_name": "Muhammad", "family_name": "Hashimi", "birth_year": 1983}])
    assert [x.case_number for x in hashimi] == [cases["hashimi"].number]


def test_a_common_name_past_the_people_cap_shows_exact_spellings_first_and_says_more_than(
        world: CasesWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    """A name search looks at PEOPLE_CAP people at most: past it, the total says "more than", and the people
    spelled exactly as typed are looked for first, so they are on the page; below it, every match is there."""
    w, s = world, world.session
    variants = [w.open_case(members=[person("Hussain", f"Variant{i}")]) for i in range(4)]
    exact = [w.open_case(members=[person("Hussein", f"Exact{i}")]) for i in range(2)]
    s.flush()
    p = w.p("caseworker_unhcr")
    everything = search.list_cases(s, p, CaseFilters(q="Hussein"))
    assert (everything.total, everything.exact) == (6, True)
    assert [c.number for c in everything.items[:2]] == sorted((c.number for c in exact),
                                                              key=lambda n: next(c.principal_name for c in exact
                                                                                 if c.number == n))
    monkeypatch.setattr(search, "PEOPLE_CAP", 3)
    capped = search.list_cases(s, p, CaseFilters(q="Hussein"))
    assert not capped.exact and capped.total == 3
    assert {c.number for c in capped.items[:2]} == {c.number for c in exact}
    assert {c.number for c in capped.items[2:]} <= {c.number for c in variants}
    # Two tokens: the rarer drives, and the other must match the same person.
    both = search.list_cases(s, p, CaseFilters(q="Hussein Exact1"))
    assert [c.number for c in both.items] == [exact[1].number] and both.exact

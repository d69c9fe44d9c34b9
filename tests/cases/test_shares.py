"""``case_shares``: the lists' copy of who sees which case through referrals stays equal to the rule
(``policy.live_referrals_to``) through every change that moves it, and a government's list merges the cases it
owns with those shared with it in the right order on both of the list's paths (exact, and "more than")."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, select

from rdn import db
from rdn.cases import search, service, shares, sharing
from rdn.cases.models import Case, CaseShare, Member, Referral, ReferralStatus
from rdn.cases.search import CaseFilters
from rdn.core import clock, policy
from rdn.core.tenancy import Membership, Role
from tests.cases.conftest import AGREED, CasesWorld, agree, household
from tests.conftest import rdn_environ, run_rdn
from tests.factories import build_network

GOVS = ("canada", "spain", "germany")
OFFICER = {"canada": "officer_canada", "spain": "minister_spain", "germany": "minister_germany"}


def by_rule(w: CasesWorld, gov: str) -> set[str]:
    """What the rule says (the single-case check, never case_shares)."""
    return {c.number for c in w.session.scalars(policy.scoped(w.p(OFFICER[gov]), Case))}


def listed(w: CasesWorld, gov: str, **filters: Any) -> set[str]:
    page = search.list_cases(w.session, w.p(OFFICER[gov]), CaseFilters(**filters), per_page=100)
    return {c.number for c in page.items}


def in_step(w: CasesWorld) -> dict[str, set[str]]:
    w.session.flush()
    seen = {}
    for gov in GOVS:
        seen[gov] = by_rule(w, gov)
        assert listed(w, gov) == seen[gov], gov
        # Name search reads the identity copy of the same rows.
        assert listed(w, gov, q="Rahimi") == {n for n in seen[gov] if n in w_rahimi(w)}, gov
    return seen


def w_rahimi(w: CasesWorld) -> set[str]:
    return {c.number for c in w.session.scalars(select(Case).where(Case.principal_name.like("%Rahimi%")))}


def test_shares_follow_the_rule_through_every_change(cases_world: CasesWorld) -> None:
    w = cases_world
    with clock.frozen(datetime(2026, 6, 1, 12, tzinfo=UTC)):
        a = w.open_case()
        b = w.open_case(members=household("Ahmad", "Karimi"))
        c = w.open_case(members=household("Omar", "Rahimi", nationality="SY"))
        assert in_step(w) == {"canada": set(), "spain": set(), "germany": set()}

        w.refer(a, "canada", "spain")
        w.refer(b, "canada", sections=["needs"])  # no identity: listed, never found by name
        w.refer(c, "germany")
        seen = in_step(w)
        assert seen == {"canada": {a.number, b.number}, "spain": {a.number}, "germany": {c.number}}
        assert listed(w, "canada", q="Karimi") == set()

        # The recipient declines: gone from its list at once.
        referral = w.session.scalars(select(Referral).where(
            Referral.case_id == a.id, Referral.recipient_org_id == w.net.orgs["spain"].id)).one()
        sharing.change_referral(w.session, actor=w.p("minister_spain"), referral=referral,
                                status=ReferralStatus.rejected, reason="Quota reached")
        assert in_step(w)["spain"] == set()

        # The sender revokes.
        referral = w.session.scalars(select(Referral).where(
            Referral.case_id == b.id, Referral.recipient_org_id == w.net.orgs["canada"].id)).one()
        sharing.change_referral(w.session, actor=w.p("caseworker_unhcr"), referral=referral,
                                status=ReferralStatus.revoked, reason="Family asked to wait")
        assert in_step(w)["canada"] == {a.number}

        # A member turns out to be Canadian: the nationality rule hides the case from Canada.
        member = w.session.scalars(select(Member).where(Member.case_id == a.id, Member.position == 1)).one()
        service.update_member(w.session, actor=w.p("caseworker_unhcr"), access=w.access("caseworker_unhcr", a),
                              member=member, changes={"nationality": "CA"})
        assert in_step(w)["canada"] == set()
        service.update_member(w.session, actor=w.p("caseworker_unhcr"), access=w.access("caseworker_unhcr", a),
                              member=member, changes={"nationality": "AF"})
        assert in_step(w)["canada"] == {a.number}

        # The agreement with Germany runs out: the day after its last day, the case is gone without any write.
        w.agreements["germany"].valid_until = date(2026, 6, 2)
        assert in_step(w)["germany"] == {c.number}
        clock.advance(timedelta(days=1))
        assert in_step(w)["germany"] == {c.number}
        clock.advance(timedelta(days=1))
        assert in_step(w)["germany"] == set()
        assert w.session.scalars(select(CaseShare.case_id).where(
            CaseShare.org_id == w.net.orgs["germany"].id)).all() == [c.id]  # the row stays; its date hides it

        # Canada ends its agreement: nothing shows.
        sharing.end_agreement(w.session, actor=w.p("admin_canada"), agreement=w.agreements["canada"],
                              reason="Programme closed")
        assert in_step(w) == {"canada": set(), "spain": set(), "germany": set()}

        # Stage and clock changes are copied: the list filters on the copy.
        w.agreements["germany"].valid_until = None
        in_step(w)
        service.move(w.session, actor=w.p("caseworker_unhcr"), access=w.access("caseworker_unhcr", c),
                     to="needs_assessment", note="Assessment booked")
        assert listed(w, "germany", stage=["needs_assessment"]) == {c.number}
        assert listed(w, "germany", stage=["referred"]) == set()


def test_rebuild_gives_the_rows_the_flushes_kept(cases_world: CasesWorld) -> None:
    w = cases_world
    a, b = w.open_case(), w.open_case(members=household("Ahmad", "Karimi"))
    w.refer(a, "canada", "germany")
    w.refer(b, "spain", sections=["needs"])
    w.session.flush()
    rows = lambda: sorted(  # noqa: E731
        (r.org_id, r.case_id, r.until, r.identity_until, r.stage) for r in w.session.scalars(select(CaseShare)))
    kept = rows()
    assert len(kept) == 3
    assert shares.rebuild(w.session) == 3
    assert rows() == kept


@pytest.mark.parametrize("sort", ["due", "updated", "number", "priority", "name"])
def test_a_government_list_merges_its_own_and_shared_cases_on_both_paths(
        cases_world: CasesWorld, monkeypatch: pytest.MonkeyPatch, sort: str) -> None:
    w = cases_world
    start = datetime(2026, 3, 1, 9, tzinfo=UTC)
    with clock.frozen(start):
        made = []
        for i, (given, family, priority) in enumerate([
                ("Mohammad", "Rahimi", "normal"), ("Ahmad", "Karimi", "emergency"), ("Omar", "Haidari", "urgent"),
                ("Ali", "Nazari", "urgent"), ("Hassan", "Sadat", "normal")]):
            clock.advance(timedelta(hours=1))
            case = w.open_case(members=household(given, family), processing_priority=priority)
            if i != 3:
                w.refer(case, "canada")
            made.append(case)
        clock.advance(timedelta(hours=1))
        own = w.open_case("officer_canada", members=household("Yusuf", "Amiri"), processing_priority="urgent")
        w.session.flush()
        officer = w.p("officer_canada")
        expected_cases = list(w.session.scalars(search.filtered(officer, CaseFilters(sort=sort))))
        expected = [c.number for c in expected_cases]
        assert set(expected) == {c.number for i, c in enumerate(made) if i != 3} | {own.number}

        def walk(per_page: int) -> tuple[list[str], list[tuple[int, bool]]]:
            numbers, totals = [], []
            for page in range(1, 10):
                result = search.list_cases(w.session, officer, CaseFilters(sort=sort), page=page, per_page=per_page)
                if not result.items:
                    break
                numbers += [c.number for c in result.items]
                totals.append((result.total, result.exact))
            return numbers, totals

        exact, totals = walk(2)
        assert exact == expected
        assert set(totals) == {(5, True)}
        beyond = search.list_cases(w.session, officer, CaseFilters(sort=sort), page=9, per_page=2)
        assert (beyond.items, beyond.total, beyond.exact) == ([], 5, True)  # past the end, the total still known
        monkeypatch.setattr(search, "COUNT_CAP", 3)  # past the cap: the database sorts and merges
        capped, totals = walk(2)
        assert capped == expected
        assert set(totals) == {(3, False)}
        # Only the owned case, or only the shared ones.
        assert [c.number for c in search.list_cases(
            w.session, officer, CaseFilters(sort=sort, relation="owned")).items] == [own.number]
        assert [c.number for c in search.list_cases(
            w.session, officer, CaseFilters(sort=sort, relation="referred"), per_page=10).items] == [
            n for n in expected if n != own.number]


def test_rdn_cases_rebuild_shares_restores_rows_removed_by_hand(committed_db, smtp_server):  # type: ignore[no-untyped-def]
    with db.transaction() as s:
        net = build_network(s)
        for persona in ("minister_spain", "minister_germany"):
            s.add(Membership(user_id=net.people[persona].id, org_id=net.org_of(persona).id, role=Role.admin))
        s.flush()
        w = CasesWorld(s, net, {gov: agree(s, net, gov, sections) for gov, sections in AGREED.items()})
        w.refer(w.open_case(), "canada", "germany")
    with db.transaction() as s:
        kept = sorted(s.execute(select(CaseShare.org_id, CaseShare.case_id)).all())
        assert len(kept) == 2
        s.execute(delete(CaseShare))
    result = run_rdn(["cases", "rebuild-shares"], rdn_environ(committed_db, smtp_server[0]))
    assert result.returncode == 0, result.stderr
    assert "2 case shares" in result.stdout
    with db.transaction() as s:
        assert sorted(s.execute(select(CaseShare.org_id, CaseShare.case_id)).all()) == kept
        assert s.scalar(select(func.count()).select_from(CaseShare)) == 2

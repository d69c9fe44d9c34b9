"""The Welcome test world: Canada's programme (Welcome Corps rules: five adults, checks, training, $2,425 per
person with 60% in cash, 90 days), the maple sponsor group (the persona sponsor_group_a's organization) in it,
and a family accepted for resettlement by Canada on its way there."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from rdn.cases.models import Case, Referral
from rdn.cases.sharing import change_referral
from rdn.core import clock
from rdn.core.identity import Principal
from rdn.core.tenancy import Organization
from rdn.welcome import service
from rdn.welcome.models import CheckStatus, Match, Programme, SponsorGroup, SponsorMember
from tests.cases.conftest import CasesWorld, cases_world, household, make_gov_admins  # noqa: F401 - fixtures

WELCOME_CORPS = {"name": "Canada Welcome Circles", "slug": "ca-welcome", "min_adults": 5, "checks_required": True,
                 "training_required": True, "funds_per_person": 2425, "currency": "CAD", "cash_share": 0.6,
                 "support_days": 90, "staff_after_days": 7, "streams": ["matched", "named"],
                 "sponsor_fields": ["given_names", "size", "arrival", "languages", "needs"]}


@dataclasses.dataclass
class WelcomeWorld:
    cw: CasesWorld
    programme: Programme
    group: SponsorGroup

    @property
    def session(self) -> Session:
        return self.cw.session

    def p(self, persona: str) -> Principal:
        return self.cw.p(persona)

    def arriving_case(self, given: str = "Mohammad", size: int = 4) -> Case:
        """A family of the agency, referred to Canada and accepted, approved and on its way."""
        case = self.cw.open_case(members=household(given, size=size))
        self.cw.refer(case, "canada", sections=["identity", "needs"])
        for referral in self.session.scalars(select(Referral).where(Referral.case_id == case.id)):
            change_referral(self.session, actor=self.p("officer_canada"), referral=referral, status="accepted")
        case.stage = "approved"  # the pipeline's own moves are tested with cases; here the family is on its way
        self.session.flush()
        return case

    def make_eligible(self, group: SponsorGroup | None = None) -> None:
        """Five adults who passed their checks and training, the funds pledged and verified, a full plan."""
        group = group or self.group
        s, staff = self.session, self.p("officer_canada")
        sponsor = self.p("sponsor_group_a")
        members = service.members_of(s, group)
        for n in range(len([m for m in members if m.adult]), 5):
            service.add_member(s, actor=sponsor, group=group, data={"full_name": f"Sponsor {n}",
                                                                    "email": f"sponsor{n}@maple.test"})
        for member in service.members_of(s, group):
            service.record_check(s, actor=staff, group=group, member=member, check="passed",
                                 trained_on=clock.now().date().isoformat())
        need = service.funds_needed(self.programme, group)
        first = service.members_of(s, group)[0]
        service.update_group(s, actor=sponsor, group=group, changes={
            "funds_pledged": need, "funds_cash": need,
            "plan": {item["code"]: str(first.id) for item in self.programme.services}})
        service.verify_funds(s, actor=staff, group=group)


    def active_match(self, size: int = 4, needs: tuple[str, ...] = ("wheelchair",)) -> tuple[Match, Case]:
        """The group, made eligible, matched with an arriving family; both sides accepted."""
        self.make_eligible()
        case = self.arriving_case(size=size)
        staff = self.p("officer_canada")
        match = service.propose(self.session, actor=staff, group=self.group, case_id=case.id, shared_needs=needs)
        service.respond_as_group(self.session, actor=self.p("sponsor_group_a"), match=match, accept=True)
        service.record_family_answer(self.session, actor=staff, match=match, accept=True)
        return match, case


def welcome_world(cw: CasesWorld) -> WelcomeWorld:
    s = cw.session
    programme = service.create_programme(s, actor=cw.p("admin_canada"), data=WELCOME_CORPS)
    maple = s.scalars(select(Organization).where(Organization.short_name == "maple")).one()
    group = SponsorGroup(programme_id=programme.id, org_id=maple.id, government_org_id=programme.org_id,
                         name="Maple Street Welcome Circle", country="CA", city="Ottawa",
                         contact_email="circle@maple.test", languages=["en", "fa", "ar"], capacity=5, max_size=6)
    s.add(group)
    s.flush()
    s.add(SponsorMember(group_id=group.id, user_id=cw.net.people["sponsor_group_a"].id, full_name="Emma Wilson",
                        email="sponsor_group_a@rdn.test", adult=True, check_status=CheckStatus.pending))
    s.flush()
    return WelcomeWorld(cw, programme, group)


@pytest.fixture
def ww(cases_world: CasesWorld) -> WelcomeWorld:  # noqa: F811 - the fixture above
    return welcome_world(cases_world)


def day(text: str) -> date:
    return date.fromisoformat(text)


def kwargs(**kw: Any) -> dict[str, Any]:
    return kw

"""The cases test world: the personas' network, agreements in force from the UNHCR-like agency to three
governments, and helpers to open cases and act as a persona (with or without a fresh step-up)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.orm import Session

from rdn.cases import service, sharing
from rdn.cases.models import Agreement, AgreementStatus, Case
from rdn.cases.policy import CaseAccess, access_case
from rdn.core import clock, identity
from rdn.core.identity import Principal
from rdn.core.tenancy import Membership, Role
from tests.factories import Network

#: What each government may see of the agency's cases (the agreements the world starts with).
AGREED = {
    "canada": ["identity", "background", "needs", "protection", "pipeline"],
    "spain": ["identity", "needs"],
    "germany": ["identity", "background", "needs", "location", "family", "preferences", "pipeline", "protection",
                "medical", "sogi", "svt"],
}


def principal(session: Session, net: Network, persona: str, *, fresh: bool = True) -> Principal:
    """``persona`` acting in their organization through a browser session (``fresh``: just stepped up)."""
    p = identity.principal_for(session, net.people[persona], org_id=net.org_of(persona).id, via="session")
    return dataclasses.replace(p, mfa_at=clock.now() if fresh else None)


def household(given: str = "Mohammad", family: str = "Rahimi", *, nationality: str = "AF", size: int = 3,
              birth: str = "1984") -> list[dict[str, Any]]:
    people = [{"relationship": "principal", "given_name": given, "family_name": family, "sex": "male",
               "date_of_birth": birth, "nationality": nationality, "languages": "prs; ps", "education": "secondary",
               "occupation": "Teacher", "specific_needs": ""}]
    if size > 1:
        people.append({"relationship": "spouse", "given_name": "Fatima", "family_name": family, "sex": "female",
                       "date_of_birth": "1988-03-02", "nationality": nationality, "languages": "prs"})
    for i in range(size - 2):
        people.append({"relationship": "child", "given_name": f"Child{i}", "family_name": family,
                       "sex": "female" if i % 2 else "male", "date_of_birth": str(2012 + i),
                       "nationality": nationality, "specific_needs": "child_at_risk" if i == 0 else ""})
    return people


#: Who signs agreements for each government (Spain's and Germany's ministers are made administrators too).
GOV_ADMIN = {"canada": "admin_canada", "spain": "minister_spain", "germany": "minister_germany"}

CASE_FIELDS = {"current_country": "PK", "current_location": "Islamabad", "category_primary": "LPN",
               "category_secondary": "LAS", "processing_priority": "urgent", "submission_priority": "urgent"}


@dataclasses.dataclass
class CasesWorld:
    session: Session
    net: Network
    agreements: dict[str, Agreement]

    def p(self, persona: str, *, fresh: bool = True) -> Principal:
        return principal(self.session, self.net, persona, fresh=fresh)

    def open_case(self, persona: str = "caseworker_unhcr", *, members: list[dict[str, Any]] | None = None,
                  **fields: Any) -> Case:
        return service.create_case(self.session, actor=self.p(persona), case={**CASE_FIELDS, **fields},
                                   members=members or household())

    def access(self, persona: str, case: Case, action: str | None = None, *, fresh: bool = True) -> CaseAccess:
        return access_case(self.session, self.p(persona, fresh=fresh), case.id, action)

    def consent(self, case: Case, gov: str, purpose: str = "resettlement") -> None:
        sharing.record_consent(self.session, actor=self.p("caseworker_unhcr"),
                               access=self.access("caseworker_unhcr", case),
                               recipient_org_id=self.net.orgs[gov].id, purpose=purpose, method="written")

    def refer(self, case: Case, *govs: str, sections: list[str] | None = None, consent: bool = True,
              mode: str = "parallel", purpose: str = "resettlement", **kw: Any) -> Any:
        if consent:
            for gov in govs:
                self.consent(case, gov, purpose)
        return sharing.refer(self.session, actor=self.p(kw.pop("persona", "caseworker_unhcr")),
                             access=self.access("caseworker_unhcr", case),
                             recipients=[self.net.orgs[g].id for g in govs], purpose=purpose,
                             sections=sections or ["identity", "needs"], mode=mode, **kw)


def agree(session: Session, net: Network, gov: str, sections: list[str],
          purposes: tuple[str, ...] = ("resettlement", "family_reunification")) -> Agreement:
    """An agreement from the agency to ``gov``, proposed by the agency's admin and accepted by the government's."""
    proposer = principal(session, net, "admin_unhcr")
    agreement = sharing.propose_agreement(session, actor=proposer, other_org_id=net.orgs[gov].id, we_provide=True,
                                          title=f"UNHCR-like agency and {gov}", purposes=list(purposes),
                                          sections=sections)
    sharing.decide_agreement(session, actor=principal(session, net, GOV_ADMIN[gov]), agreement=agreement,
                             decision=AgreementStatus.active)
    return agreement


@pytest.fixture
def cases_world(session: Session, network: Network, make_gov_admins: Callable[[], None]) -> CasesWorld:
    make_gov_admins()
    agreements = {gov: agree(session, network, gov, sections) for gov, sections in AGREED.items()}
    session.flush()
    return CasesWorld(session, network, agreements)


@pytest.fixture
def make_gov_admins(session: Session, network: Network) -> Callable[[], None]:
    """Spain and Germany have no administrator among the personas: give their ministers the role here."""

    def make() -> None:
        for persona in ("minister_spain", "minister_germany"):
            session.add(Membership(user_id=network.people[persona].id, org_id=network.org_of(persona).id,
                                   role=Role.admin))
        session.flush()

    return make

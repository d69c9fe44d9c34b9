"""Cases and referrals as a module: pages and API, navigation, the home card, demo data."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rdn.cases import policy as _policy  # noqa: F401 - registers the rules
from rdn.cases import search
from rdn.cases.api import router as api
from rdn.cases.demo import seed
from rdn.cases.models import Agreement, AgreementStatus, Case, Referral, ReferralStatus, Transfer, TransferStatus
from rdn.cases.pages import router as pages
from rdn.core import policy
from rdn.core.i18n import N_
from rdn.core.identity import Principal
from rdn.core.modules import Module
from rdn.core.tenancy import Role
from rdn.core.web import Card, NavItem


def _count(session: Session, stmt: Any) -> int:
    return session.scalar(select(func.count()).select_from(stmt.subquery())) or 0


def _card(session: Session, principal: Principal) -> dict[str, Any]:
    org = principal.org_id
    incoming = policy.scoped(principal, Referral).where(Referral.recipient_org_id == org,
                                                        Referral.status == ReferralStatus.pending)
    proposals = 0
    if Role.admin in principal.roles:
        proposals = _count(session, policy.scoped(principal, Agreement).where(
            Agreement.status == AgreementStatus.proposed, Agreement.proposed_by_org_id != org))
    transfers = _count(session, policy.scoped(principal, Transfer).where(
        Transfer.to_org_id == org, Transfer.status == TransferStatus.pending))
    return {"total": _count(session, policy.scoped(principal, Case)),
            "overdue": search.overdue_count(session, principal), "incoming": _count(session, incoming),
            "proposals": proposals, "transfers": transfers}


module = Module(
    name="cases", pages=pages, api=api, demo=seed, demo_order=20,
    nav=[NavItem(N_("Cases"), "/cases", action="case.read", order=10),
         NavItem(N_("Referrals"), "/referrals", action="referral.read", order=11)],
    cards=[Card("cards/cases.html", _card, action="case.read", order=2)],
)

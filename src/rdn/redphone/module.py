"""The red phone as a module: pages and API, navigation, the home card, demo data, jobs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rdn.core import policy
from rdn.core.i18n import N_
from rdn.core.identity import Principal
from rdn.core.modules import Module
from rdn.core.tenancy import OrgKind
from rdn.core.web import Card, NavItem
from rdn.redphone import chains, escalation, service  # noqa: F401 - jobs and periodic tasks register on import
from rdn.redphone import policy as _policy  # noqa: F401 - registers the rules
from rdn.redphone.api import router as api
from rdn.redphone.demo import seed
from rdn.redphone.models import Crisis, CrisisStatus
from rdn.redphone.pages import my_open_pages
from rdn.redphone.pages import router as pages


def _card(session: Session, principal: Principal) -> dict[str, Any] | None:
    open_count = session.scalar(select(func.count()).select_from(
        policy.scoped(principal, Crisis).where(Crisis.status != CrisisStatus.closed,
                                               Crisis.exercise.is_(False)).subquery()))
    warnings = 0
    if principal.org_kind == OrgKind.government and principal.org_id is not None:
        warnings = len(chains.chain_warnings(session, principal.org_id))
    return {"pages": my_open_pages(session, principal), "open": open_count or 0, "warnings": warnings}


module = Module(
    name="redphone", pages=pages, api=api, demo=seed, demo_order=10,
    nav=[NavItem(N_("Red phone"), "/crises", action="crisis.read", order=5),
         NavItem(N_("Contact chain"), "/chains", action="chain.read", order=40)],
    cards=[Card("cards/redphone.html", _card, action="crisis.read", order=1)],
)

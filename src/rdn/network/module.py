"""The network as a module: directory and administration pages, API, demo network, the organization card."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from rdn.core import i18n
from rdn.core.i18n import N_
from rdn.core.identity import Principal
from rdn.core.modules import Module
from rdn.core.tenancy import Organization
from rdn.core.web import Card, NavItem
from rdn.network import policy as _policy  # noqa: F401 - registers the rules
from rdn.network.api import router as api
from rdn.network.demo import seed
from rdn.network.pages import router as pages
from rdn.network.service import KIND_LABELS, ROLE_LABELS


def _org_card(session: Session, principal: Principal) -> dict[str, Any] | None:
    if principal.org is None:
        return {"org": None}
    org = session.get(Organization, principal.org_id)
    return {"org": org, "kind_label": KIND_LABELS[principal.org.kind],
            "roles": sorted(i18n.gettext(ROLE_LABELS[r]) for r in principal.roles)}


module = Module(
    name="network", pages=pages, api=api, demo=seed, demo_order=0,
    nav=[NavItem(N_("Organizations"), "/organizations", action="org.read", order=10),
         NavItem(N_("People"), "/people", action="person.list", order=20)],
    cards=[Card("cards/organization.html", _org_card, order=0)],
)

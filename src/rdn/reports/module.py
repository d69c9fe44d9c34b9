"""The network picture as a module: the dashboard, member views, quarterly report, public page, exports, the
projected needs, the digest and refresh jobs, navigation and demo data."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rdn.core import clock
from rdn.core.i18n import N_
from rdn.core.identity import Principal
from rdn.core.modules import Module, api_router, page_router
from rdn.core.web import Card, NavItem
from rdn.reports import api as _api
from rdn.reports import models as _models
from rdn.reports import pages as _pages
from rdn.reports import policy as _policy  # noqa: F401 - registers the rules
from rdn.reports import service as _service  # noqa: F401 - registers the refresh and digest jobs
from rdn.reports.demo import seed

pages = page_router()
api = api_router()
pages.include_router(_pages.router)
api.include_router(_api.router)



def _card(session: Session, principal: Principal) -> dict[str, Any]:
    """The home card: the current year's headline from the last snapshot (the home page never computes one)."""
    data = session.scalar(select(_models.Snapshot.data).where(_models.Snapshot.scope == f"network:{clock.now().year}"))
    return {"headline": (data or {}).get("headline")}


module = Module(
    name="reports", pages=pages, api=api, demo=seed, demo_order=95,
    nav=[NavItem(N_("Picture"), "/reports", action="report.network.read", order=1)],
    cards=[Card("cards/picture.html", _card, action="report.network.read", order=1)],
)

"""The network picture as a module: the dashboard, member views, quarterly report, public page, exports, the
projected needs, the digest and refresh jobs, navigation and demo data."""

from __future__ import annotations

from rdn.core.i18n import N_
from rdn.core.modules import Module, api_router, page_router
from rdn.core.web import NavItem
from rdn.reports import api as _api
from rdn.reports import models as _models  # noqa: F401 - the tables
from rdn.reports import pages as _pages
from rdn.reports import policy as _policy  # noqa: F401 - registers the rules
from rdn.reports import service as _service  # noqa: F401 - registers the refresh and digest jobs
from rdn.reports.demo import seed

pages = page_router()
api = api_router()
pages.include_router(_pages.router)
api.include_router(_api.router)

module = Module(
    name="reports", pages=pages, api=api, demo=seed, demo_order=95,
    nav=[NavItem(N_("Picture"), "/reports", action="report.network.read", order=1)],
)

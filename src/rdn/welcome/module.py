"""Welcome as a module: sponsorship programmes, sponsor groups, matching with arriving families, the first
months' core services and donations (pages, public pages, API), navigation and demo data."""

from __future__ import annotations

from rdn.core.i18n import N_
from rdn.core.modules import Module, api_router, page_router
from rdn.core.web import NavItem
from rdn.welcome import api as _api
from rdn.welcome import models as _models  # noqa: F401 - the tables
from rdn.welcome import pages as _pages
from rdn.welcome import pages_public as _pages_public
from rdn.welcome import policy as _policy  # noqa: F401 - registers the rules
from rdn.welcome import service as _service  # noqa: F401 - registers the reminders job
from rdn.welcome.demo import seed

pages = page_router()
api = api_router()
for part in (_pages_public, _pages):
    pages.include_router(part.router)
api.include_router(_api.router)

module = Module(
    name="welcome", pages=pages, api=api, demo=seed, demo_order=45,
    nav=[NavItem(N_("Welcome"), "/welcome", action="welcome.programme.read", order=18)],
)

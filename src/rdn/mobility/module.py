"""Safe Mobility as a module: offices, public registration in the registrant's language, status with a reference
and PIN, screening rules as data, appointments, the caseworkers' queue and conversion into referred cases, the
office dashboard (pages and API), navigation and demo data."""

from __future__ import annotations

from rdn.core.i18n import N_
from rdn.core.modules import Module, api_router, page_router
from rdn.core.web import NavItem, templates
from rdn.mobility import api_public, api_staff, pages_calendar, pages_public, pages_rules, pages_staff, public_i18n
from rdn.mobility import messages as _messages  # noqa: F401 - registers the email job
from rdn.mobility import policy as _policy  # noqa: F401 - registers the rules
from rdn.mobility.demo import seed

public_i18n.install(templates.env)
pages = page_router()
api = api_router()
for part in (pages_public, pages_staff, pages_rules, pages_calendar):
    pages.include_router(part.router)
for part in (api_public, api_staff):
    api.include_router(part.router)

module = Module(
    name="mobility", pages=pages, api=api, demo=seed, demo_order=35,
    nav=[NavItem(N_("Safe Mobility"), "/mobility", action="mobility.registration.read", order=17)],
)

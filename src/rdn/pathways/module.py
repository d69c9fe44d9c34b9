"""Pathways and obstacles as a module: the pathway catalog, obstacles and the cases they block, diplomatic
actions, the best-practice library (pages and API), navigation and demo data."""

from __future__ import annotations

from rdn.core.i18n import N_
from rdn.core.modules import Module, api_router, page_router
from rdn.core.web import NavItem
from rdn.pathways import api_catalog, api_library, api_obstacles, pages_catalog, pages_library, pages_obstacles
from rdn.pathways import policy as _policy  # noqa: F401 - registers the rules
from rdn.pathways.demo import seed

pages = page_router()
api = api_router()
for part in (pages_catalog, pages_obstacles, pages_library):
    pages.include_router(part.router)
for part in (api_catalog, api_obstacles, api_library):
    api.include_router(part.router)

module = Module(
    name="pathways", pages=pages, api=api, demo=seed, demo_order=25,
    nav=[NavItem(N_("Pathways"), "/pathways", action="pathway.read", order=14),
         NavItem(N_("Obstacles"), "/obstacles", action="obstacle.read", order=15),
         NavItem(N_("Best practices"), "/practices", action="practice.read", order=16)],
)

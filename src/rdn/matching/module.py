"""Matching as a module: runs, reception sites and quotas (pages and API), navigation, demo data, the solve
job (registered by ``rdn.matching.service``)."""

from __future__ import annotations

from rdn.core.i18n import N_
from rdn.core.modules import Module
from rdn.core.web import NavItem
from rdn.matching import policy as _policy  # noqa: F401 - registers the rules
from rdn.matching.api import router as api
from rdn.matching.demo import seed
from rdn.matching.pages import router as pages

module = Module(
    name="matching", pages=pages, api=api, demo=seed, demo_order=30,
    nav=[NavItem(N_("Matching"), "/matching", action="match.run.read", order=12),
         NavItem(N_("Sites"), "/matching/sites", action="match.site.read", order=13)],
)

"""The shell as a module: home, health checks, API docs."""

from __future__ import annotations

from rdn.core.i18n import N_
from rdn.core.modules import Module
from rdn.core.web import NavItem
from rdn.web.pages import router

module = Module(name="shell", pages=router, nav=[NavItem(N_("Home"), "/", order=0)])

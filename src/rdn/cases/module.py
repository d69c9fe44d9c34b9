"""Cases and referrals as a module: pages and API, navigation, the home card, demo data."""

from __future__ import annotations

from rdn.cases import policy as _policy  # noqa: F401 - registers the rules
from rdn.cases import sharing  # noqa: F401
from rdn.core.modules import Module

module = Module(name="cases")

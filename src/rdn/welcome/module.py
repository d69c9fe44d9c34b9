"""Welcome as a module: sponsorship programmes, sponsor groups, matching with arriving families, the first
months' core services and donations."""

from __future__ import annotations

from rdn.core.modules import Module
from rdn.welcome import models as _models  # noqa: F401 - the tables

module = Module(name="welcome")

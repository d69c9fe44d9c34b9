"""Welcome as a module: sponsorship programmes, sponsor groups, matching with arriving families, the first
months' core services and donations."""

from __future__ import annotations

from rdn.core.modules import Module
from rdn.welcome import models as _models  # noqa: F401 - the tables
from rdn.welcome import policy as _policy  # noqa: F401 - registers the rules
from rdn.welcome import service as _service  # noqa: F401 - registers the reminders job

module = Module(name="welcome")

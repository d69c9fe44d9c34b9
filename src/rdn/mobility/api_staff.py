"""(being written)"""

from __future__ import annotations

from rdn.core.modules import api_router

router = api_router()

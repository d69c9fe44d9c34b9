"""(being written)"""

from __future__ import annotations

from rdn.core.modules import page_router

router = page_router()

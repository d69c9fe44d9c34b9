"""Welcome's public pages: citizens form a group, anyone offers a donation (no account)."""

from __future__ import annotations

from rdn.core.modules import page_router

router = page_router()

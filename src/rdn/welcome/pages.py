"""Welcome's pages for the programme's staff and the sponsors (filled in by its own change)."""

from __future__ import annotations

from rdn.core.modules import page_router

router = page_router()

"""Welcome's JSON API, for the programme's staff."""

from __future__ import annotations

from rdn.core.modules import api_router

router = api_router(prefix="/api/v1/welcome", tags=["welcome"])

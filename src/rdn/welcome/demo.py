"""Welcome's demo data."""

from __future__ import annotations

from rdn.core.modules import DemoContext


def seed(ctx: DemoContext) -> None:
    """Programmes, groups at each stage and families in their first months (filled in by its own change)."""

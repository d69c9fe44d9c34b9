"""Demo data of pathways and obstacles."""

from __future__ import annotations

from rdn.core.modules import DemoContext


def seed(ctx: DemoContext) -> None:
    from rdn.pathways import catalog, library, obstacles

    catalog.seed(ctx)
    obstacles.seed(ctx)
    library.seed(ctx)

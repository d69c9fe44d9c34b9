"""Demo data of pathways and obstacles."""

from __future__ import annotations

from rdn.core.modules import DemoContext


def seed(ctx: DemoContext) -> None:
    from rdn.pathways import catalog, demo_obstacles, library

    catalog.seed(ctx)
    demo_obstacles.seed(ctx)
    library.seed(ctx)

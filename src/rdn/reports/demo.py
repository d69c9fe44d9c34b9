"""Demo data for the network picture: the public projected needs (UNHCR, with their sources) as the network's
needs, and the first snapshots (the dashboard then opens at once)."""

from __future__ import annotations

from rdn.core import clock
from rdn.core.modules import DemoContext
from rdn.reports import figures, service


def seed(ctx: DemoContext) -> None:
    added = service.seed_reference_needs(ctx.session)
    period = figures.year_period(clock.now().year)
    service.refresh(ctx.session, period=period)
    for org in figures.governments(ctx.session):
        service.refresh(ctx.session, period=period, government=org.id)
    if added:
        ctx.say(f"  network picture: {added} projected needs from UNHCR's Projected Global Resettlement Needs")

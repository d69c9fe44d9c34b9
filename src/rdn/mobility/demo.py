"""Demo data of Safe Mobility (being written)."""

from __future__ import annotations

from rdn.core.modules import DemoContext


def seed(ctx: DemoContext) -> None:
    return None

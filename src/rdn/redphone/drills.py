"""Drill results: how fast each government answered the red phone in exercises, and the trend over time."""

from __future__ import annotations

import statistics
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rdn.core.identity import User
from rdn.core.tenancy import Organization
from rdn.redphone.models import Crisis, EscalationRun, RunStatus


@dataclass
class GovernmentResult:
    org_id: uuid.UUID
    org: str
    acknowledged: bool
    seconds: float | None  # from the start of paging to the acknowledgement
    level: int | None  # the level being paged when it was acknowledged (0: the first)
    level_name: str | None
    by: str | None
    status: str


@dataclass
class DrillResult:
    crisis_id: uuid.UUID
    reference: str
    title: str
    declared_at: datetime
    governments: list[GovernmentResult] = field(default_factory=list)

    @property
    def acknowledged(self) -> int:
        return sum(1 for g in self.governments if g.acknowledged)

    @property
    def median_seconds(self) -> float | None:
        times = [g.seconds for g in self.governments if g.seconds is not None]
        return statistics.median(times) if times else None

    @property
    def share_acknowledged(self) -> float:
        return self.acknowledged / len(self.governments) if self.governments else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"crisis_id": str(self.crisis_id), "reference": self.reference, "title": self.title,
                "declared_at": self.declared_at.isoformat(), "acknowledged": self.acknowledged,
                "governments": len(self.governments), "median_seconds": self.median_seconds,
                "results": [{"org_id": str(g.org_id), "org": g.org, "acknowledged": g.acknowledged,
                             "seconds": g.seconds, "level": g.level, "level_name": g.level_name,
                             "status": g.status} for g in self.governments]}


def drill_results(session: Session, limit: int = 24) -> list[DrillResult]:
    """The latest drills, newest first, with each government's first-round result."""
    drills = session.scalars(select(Crisis).where(Crisis.exercise.is_(True))
                             .order_by(Crisis.declared_at.desc()).limit(limit)).all()
    if not drills:
        return []
    orgs = {o.id: o.name for o in session.scalars(select(Organization))}
    runs = session.scalars(select(EscalationRun).where(EscalationRun.crisis_id.in_([d.id for d in drills]),
                                                       EscalationRun.round == 1)).all()
    people = {u.id: u.full_name for u in session.scalars(
        select(User).where(User.id.in_([r.acknowledged_by_user_id for r in runs if r.acknowledged_by_user_id])))}
    by_crisis: dict[uuid.UUID, list[EscalationRun]] = {}
    for run in runs:
        by_crisis.setdefault(run.crisis_id, []).append(run)
    results = []
    for drill in drills:
        result = DrillResult(drill.id, drill.reference, drill.title, drill.declared_at)
        for run in sorted(by_crisis.get(drill.id, []), key=lambda r: orgs.get(r.org_id, "")):
            acked = RunStatus(run.status) == RunStatus.acknowledged and run.acknowledged_at is not None
            levels = run.snapshot["levels"]
            result.governments.append(GovernmentResult(
                org_id=run.org_id, org=orgs.get(run.org_id, "?"), acknowledged=acked,
                seconds=(run.acknowledged_at - run.started_at).total_seconds() if acked else None,  # type: ignore[operator]
                level=run.level if acked else None,
                level_name=levels[run.level]["name"] if acked and 0 <= run.level < len(levels) else None,
                by=people.get(run.acknowledged_by_user_id) if run.acknowledged_by_user_id else None,
                status=RunStatus(run.status).value))
        results.append(result)
    return results


def trend_chart(results: list[DrillResult], width: int = 640, height: int = 220) -> dict[str, Any]:
    """Geometry for the SVG trend chart (oldest drill on the left): median minutes to acknowledge as a line,
    share of governments that acknowledged as bars. Computed here so the template only draws."""
    points = list(reversed(results))
    pad_left, pad_bottom, pad_top = 48, 28, 12
    inner_w, inner_h = width - pad_left - 12, height - pad_bottom - pad_top
    minutes = [r.median_seconds / 60 for r in points if r.median_seconds is not None]
    top = max([*minutes, 5.0])
    step = inner_w / max(1, len(points))
    bars, line = [], []
    for i, r in enumerate(points):
        x = pad_left + i * step
        h = inner_h * r.share_acknowledged
        bars.append({"x": round(x + step * 0.2, 1), "y": round(pad_top + inner_h - h, 1),
                     "w": round(step * 0.6, 1), "h": round(h, 1), "label": r.reference,
                     "cx": round(x + step / 2, 1), "date": r.declared_at.strftime("%Y-%m-%d")})
        if r.median_seconds is not None:
            line.append((round(x + step / 2, 1), round(pad_top + inner_h - inner_h * (r.median_seconds / 60) / top, 1)))
    return {"width": width, "height": height, "bars": bars,
            "line": " ".join(f"{x},{y}" for x, y in line), "dots": line, "top": round(top, 1),
            "pad_left": pad_left, "pad_top": pad_top, "inner_h": inner_h, "inner_w": inner_w,
            "baseline": pad_top + inner_h}

"""Bar charts drawn on the server as SVG (no script, no CDN): the numbers a page's ``bar_chart`` macro
(layout/charts.html) draws. Every chart's page also gives its figures as a table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

WIDTH, HEIGHT, PAD_LEFT, PAD_TOP, BASELINE = 640, 224, 44, 12, 170


def bars(points: Sequence[tuple[float, str, str]]) -> dict[str, Any] | None:
    """``points``: (value, tick under the bar or "", the bar's tooltip), in order. None when all are zero."""
    if not points or not any(value for value, _tick, _label in points):
        return None
    top = max(value for value, _tick, _label in points) or 1
    step = (WIDTH - PAD_LEFT - 12) / len(points)
    gap = 4 if step > 12 else 1
    out = []
    for k, (value, tick, label) in enumerate(points):
        h = (BASELINE - PAD_TOP) * value / top
        out.append({"x": round(PAD_LEFT + k * step + gap / 2, 1), "w": round(max(step - gap, 1), 1),
                    "y": round(BASELINE - h, 1), "h": round(h, 1), "cx": round(PAD_LEFT + (k + .5) * step, 1),
                    "tick": tick, "label": label})
    return {"width": WIDTH, "height": HEIGHT, "pad_left": PAD_LEFT, "pad_top": PAD_TOP, "baseline": BASELINE,
            "top": f"{top:g}", "bars": out}

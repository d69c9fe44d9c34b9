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


def grouped_bars(groups: Sequence[tuple[str, Sequence[tuple[float | None, str]]]], series: Sequence[str], *,
                 number: Any = None) -> dict[str, Any] | None:
    """Horizontal bars, one group per category and one bar per series in each (a legend names the series).

    ``groups``: (the category's label, [(value or None when it cannot be shown, the bar's tooltip), ...] in the
    order of ``series``); ``number`` writes the axis's top figure (the reader's way). None when every value is zero
    or hidden."""
    values = [v for _label, bars in groups for v, _tip in bars if v]
    if not groups or not values:
        return None
    label_w, bar_h, gap, right = 190, 11, 12, 16
    # The legend first, in rows: each entry as wide as its words (about 6.5 px a character at 11 px).
    legend, x, row = [], 8, 0
    for k, name in enumerate(series):
        width = 14 + int(6.5 * len(name)) + 16
        if x + width > WIDTH and x > 8:
            x, row = 8, row + 1
        legend.append({"x": x, "y": 6 + 18 * row, "cls": f"s{k}", "label": name})
        x += width
    legend_h = 26 + 18 * row
    top = max(values)
    span = WIDTH - label_w - right
    out, y = [], legend_h
    for label, bars in groups:
        shown = label if len(label) <= 28 else label[:27] + "…"
        items = []
        for k, (value, tip) in enumerate(bars):
            w = span * (value or 0) / top
            items.append({"x": label_w, "y": y + k * bar_h, "w": round(max(w, 0), 1), "h": bar_h - 2,
                          "cls": f"s{k}", "title": tip})
        block = len(bars) * bar_h
        out.append({"label": shown, "full": label, "ty": round(y + block / 2 + 4, 1), "bars": items})
        y += block + gap
    top_text = number(top) if number is not None else f"{top:g}"
    return {"width": WIDTH, "height": y, "label_w": label_w, "top": top_text, "groups": out, "legend": legend,
            "axis_end": WIDTH - right, "axis_top": legend_h - 4}

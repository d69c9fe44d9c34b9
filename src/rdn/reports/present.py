"""A view's figures as the pages, the quarterly report and its PDF show them: headline cards, and for each table
its caption, header, rows of cells as they read, its chart, and the link to its CSV. The public view has every
count under the threshold suppressed before anything is drawn from it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rdn.core import i18n
from rdn.core.i18n import N_
from rdn.core.i18n import gettext as _
from rdn.reports import tables
from rdn.reports.tables import Spec
from rdn.web import charts

_CARDS = (
    ("need", N_("Projected need"), None),
    ("places", N_("Annual places"), "need"),
    ("pledged", N_("Places pledged in crises"), None),
    ("referred", N_("People referred"), "need"),
    ("accepted", N_("People accepted"), "need"),
    ("departed", N_("People departed"), "need"),
    ("arrived", N_("People arrived"), "need"),
)


@dataclass
class Shown:
    spec: Spec
    title: str
    description: str
    header: list[str]
    numeric: list[bool]
    rows: list[list[str]]
    chart: dict[str, Any] | None
    csv: str
    empty: bool


_COUNTED = ("referred_cases", "referred", "accepted", "departed", "arrived")


def public_populations(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The populations the public sees: those with a projected need (a fixed list, whatever the year's cases), and
    every other nationality merged into one row that is always there: a row of its own would say that at least one
    family of that nationality was referred, and its place in the order how many."""
    listed = [r for r in rows if r.get("need") is not None]
    others = [r for r in rows if r.get("need") is None]
    merged: dict[str, Any] = {"population": _("Other populations"), "nationality": "", "need": None, "source": "",
                              "share": None}
    for key in _COUNTED:
        merged[key] = sum(r.get(key) or 0 for r in others)
    listed.sort(key=lambda r: (-(r["need"] or 0), r["population"]))
    return [*listed, merged]


def suppressed_view(data: dict[str, Any], threshold: int) -> dict[str, dict[str, Any] | list[dict[str, Any]]]:
    """The rows of every public table with small counts suppressed (what the public page, its CSVs and its chart
    are drawn from), and the headline too."""
    out: dict[str, Any] = {}
    for spec in tables.specs_for("public"):
        rows = tables.rows_of(spec, data)
        if spec.id == "by_population":
            rows = public_populations(rows)
        out[spec.id] = tables.suppress(spec, rows, threshold)
    return out


def cards(rows: list[dict[str, Any]] | None, data: dict[str, Any]) -> list[dict[str, Any]]:
    """The headline's cards: the figure, and its share of the need where that means something."""
    head = data["headline"]
    values = {r["key"]: r["value"] for r in rows} if rows is not None else None
    out = []
    for key, label, of in _CARDS:
        value = head.get(key) if values is None else values.get(key)  # public: the suppressed summary
        text = tables.cell(tables.Col(key, label, "", "count"), value)
        share = None
        if of and isinstance(value, int) and isinstance(head.get(of), int) and head.get(of):
            exact = 100.0 * value / head[of]
            # A sliver of the need still reads as something ("<0.01 %"), not as nothing.
            share = f"<{tables.percent(0.01)}" if 0 < exact < 0.01 else tables.percent(round(exact, 2))
        out.append({"key": key, "label": _(label), "value": text, "share": share})
    return out


def show(spec: Spec, rows: list[dict[str, Any]], csv_url: str, *, chart_rows: int = 15) -> Shown:
    header = [_(c.label) for c in spec.columns]
    numeric = [c.kind in {"count", "percent", "days"} for c in spec.columns]
    shown = [[tables.cell(c, r.get(c.key), r) for c in spec.columns] for r in rows]
    chart = None
    if spec.chart and rows:
        label_key, series = spec.chart
        label_col = next(c for c in spec.columns if c.key == label_key)
        cols = [next(c for c in spec.columns if c.key == k) for k in series]
        groups = []
        for r in rows[:chart_rows]:
            bars = []
            for c in cols:
                value = r.get(c.key)
                number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
                bars.append((number, _("%(series)s: %(value)s", series=_(c.label), value=tables.cell(c, value, r))))
            groups.append((tables.cell(label_col, r.get(label_key), r), bars))
        chart = charts.grouped_bars(groups, [_(c.label) for c in cols], number=i18n.format_number)
    return Shown(spec, _(spec.title), _(spec.description), header, numeric, shown, chart, csv_url, not rows)


def sections(data: dict[str, Any], view: str, csv_base: str, *, public: dict[str, Any] | None = None,
             period: str | None = None) -> list[Shown]:
    """Every table of the view, ready to draw. ``csv_base``: the CSV links' prefix ("/reports/tables/");
    ``public``: the suppressed rows (``suppressed_view``) the public view is drawn from; ``period``: the links'
    period (default: the figures' own)."""
    out = []
    for spec in tables.specs_for(view):
        rows = public[spec.id] if public is not None else tables.rows_of(spec, data)  # type: ignore[assignment]
        if spec.id == "summary":
            continue  # drawn as the cards
        link = f"{csv_base}{spec.id}.csv?period={period or data['period']}"
        out.append(show(spec, rows, link))  # type: ignore[arg-type]
    return out

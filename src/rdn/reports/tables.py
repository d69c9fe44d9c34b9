"""Every figure of the picture as a table: its columns (label, HXL hashtag, kind), its rows from the computed
figures, how a cell reads, small-cell suppression for the public, and the CSV and XLSX files.

A table is declared once here and drawn everywhere from the declaration: the page's table view and chart, the
CSV (header, HXL hashtag row, rows), the XLSX sheet, the quarterly report and its PDF, the public page.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from rdn.cases.models import PRIORITY_NAMES
from rdn.cases.pipeline import STAGE_NAMES, Stage
from rdn.core import i18n
from rdn.core.i18n import N_
from rdn.core.i18n import gettext as _
from rdn.reports.regions import region_name

DASH = "\u2013"  # an en dash: no figure
#: Kinds of cell that count people, cases or places: suppressed on the public page under the threshold.
COUNTS = frozenset({"count"})


@dataclass(frozen=True)
class Col:
    key: str
    label: str  # a msgid
    hxl: str
    kind: str = "count"  # count, text, population, country, region, stage, priority, month, percent, days, date
    #: For a figure computed from counts (a share, a median): the count columns it rests on; on the public page it
    #: is suppressed when any of them is under the threshold.
    basis: tuple[str, ...] = ()
    #: A count that is part of another in the same row (accepted of referred): on the public page it is suppressed
    #: when the difference is small (the few not accepted could be singled out).
    part_of: str | None = None


@dataclass(frozen=True)
class Spec:
    id: str
    title: str  # a msgid
    description: str  # a msgid: what the chart shows, for screen readers
    columns: tuple[Col, ...]
    #: The chart: the column naming each group, and the count columns drawn as bars side by side.
    chart: tuple[str, tuple[str, ...]] | None = None
    public: bool = False  # on the public transparency page
    #: The rows split one total between them: a single suppressed cell in a column could be worked out from the
    #: total, so a second one is suppressed too.
    partitions: bool = False
    member: bool = True  # in the member view too
    notes: tuple[str, ...] = field(default=())


_POP = Col("population", N_("Population"), "#group+name", "population")
_NAT = Col("nationality", N_("Nationality code"), "#country+code+origin", "text")
_NEED = Col("need", N_("Projected need (people)"), "#inneed+ind")
_REF_CASES = Col("referred_cases", N_("Cases referred"), "#reached+hh+referred")
_REF = Col("referred", N_("People referred"), "#reached+ind+referred")
_ACC = Col("accepted", N_("People accepted"), "#reached+ind+accepted", part_of="referred")
_DEP = Col("departed", N_("People departed"), "#reached+ind+departed")
_ARR = Col("arrived", N_("People arrived"), "#reached+ind+arrived")
_SHARE = Col("share", N_("Departed, share of the need"), "#indicator+pct+departed_of_need", "percent",
             basis=("departed",))
_SOURCE = Col("source", N_("Source of the need"), "#meta+source", "text")

SPECS: tuple[Spec, ...] = (
    Spec("summary", N_("The year at a glance"), N_("The projected need, the places offered and pledged, and the "
                                                   "people referred, accepted, departed and arrived."),
         (Col("measure", N_("Measure"), "#indicator+name", "measure"), Col("value", N_("Figure"), "#indicator+num")),
         chart=None, public=True),
    Spec("by_population", N_("By population"), N_("For each population, the people referred, accepted, departed "
                                                  "and arrived; the projected need is in the table."),
         (_POP, _NAT, _NEED, _REF_CASES, _REF, _ACC, _DEP, _ARR, _SHARE, _SOURCE),
         chart=("population", ("referred", "accepted", "departed", "arrived")), public=True, partitions=True),
    Spec("by_region", N_("By region of asylum"), N_("For each region where families live now, the people "
                                                    "referred, accepted, departed and arrived."),
         (Col("region", N_("Region"), "#region+name", "region"), _NEED, _REF_CASES, _REF, _ACC, _DEP, _ARR, _SHARE,
          _SOURCE),
         chart=("region", ("referred", "accepted", "departed", "arrived")), public=True, partitions=True),
    Spec("by_government", N_("By member government"), N_("For each member government, its annual places, the "
                                                         "places it pledged in crises, and the people referred to "
                                                         "it, accepted, departed and arrived."),
         (Col("government", N_("Government"), "#org+name", "text"),
          Col("places", N_("Annual places"), "#capacity+places+annual"),
          Col("emergency", N_("Kept for emergencies"), "#capacity+places+emergency"),
          Col("pledged", N_("Places pledged in crises"), "#capacity+places+pledged"),
          _REF_CASES, _REF, _ACC, _DEP, _ARR),
         chart=("government", ("places", "referred", "departed", "arrived")), public=True, partitions=True),
    Spec("months", N_("Month by month"), N_("People referred, departed and arrived in each month."),
         (Col("month", N_("Month"), "#date+month", "month"), _REF, _DEP, _ARR),
         chart=("month", ("referred", "departed", "arrived")), public=True, partitions=True),
    Spec("stages", N_("Time in each stage against the targets"),
         N_("For each stage and priority, the median days a case stayed, against the target days."),
         (Col("stage", N_("Stage"), "#status+stage", "stage"),
          Col("priority", N_("Processing priority"), "#status+priority", "priority"),
          Col("stays", N_("Stays ended"), "#indicator+num+stays"),
          Col("median_days", N_("Median days"), "#indicator+days+median", "days", basis=("stays",)),
          Col("p90_days", N_("Days for 9 in 10"), "#indicator+days+p90", "days", basis=("stays",)),
          Col("target_days", N_("Target days"), "#indicator+days+target", "days"),
          Col("within_share", N_("Within the target"), "#indicator+pct+within_target", "percent",
              basis=("stays",)),
          Col("now", N_("In the stage now"), "#indicator+num+now"),
          Col("late_now", N_("Past the target now"), "#indicator+num+late")),
         chart=None),
    Spec("indicators", N_("Global Compact indicators"),
         N_("The share of submissions resettled within six months, and of places kept for emergencies."),
         (Col("measure", N_("Indicator"), "#indicator+name", "measure"),
          Col("part", N_("Of which"), "#indicator+num+part", part_of="whole"),
          Col("whole", N_("Out of"), "#indicator+num+whole"),
          Col("share", N_("Share"), "#indicator+pct", "percent", basis=("part", "whole")),
          Col("period", N_("Counted over"), "#date+period", "text")),
         public=True),
    Spec("crises", N_("Open crises and their pledges"), N_("For each open crisis, the places pledged against its "
                                                           "target."),
         (Col("reference", N_("Reference"), "#crisis+code", "text"), Col("title", N_("Crisis"), "#crisis+name", "text"),
          Col("declared", N_("Declared"), "#date+declared", "date"),
          Col("target", N_("Target places"), "#capacity+places+target"),
          Col("pledged", N_("Places pledged"), "#capacity+places+pledged"),
          Col("proposed", N_("Places proposed"), "#capacity+places+proposed"),
          Col("governments", N_("Governments pledging"), "#org+num")),
         chart=("title", ("target", "pledged"))),
    Spec("obstacles", N_("Obstacles by people blocked"), N_("For each unresolved obstacle, the people it blocks "
                                                            "now."),
         (Col("title", N_("Obstacle"), "#item+obstacle+name", "text"),
          Col("country", N_("Host or transit country"), "#country+name", "country"),
          Col("cases", N_("Cases blocked"), "#affected+hh+blocked"),
          Col("people", N_("People blocked"), "#affected+ind+blocked")),
         chart=("title", ("people",))),
)
BY_ID = {s.id: s for s in SPECS}

_MEASURES = (
    ("need", N_("Projected need (people)")),
    ("places", N_("Annual places")),
    ("emergency", N_("Kept for emergencies")),
    ("pledged", N_("Places pledged in crises")),
    ("referred_cases", N_("Cases referred")),
    ("referred", N_("People referred")),
    ("accepted", N_("People accepted")),
    ("departed", N_("People departed")),
    ("arrived", N_("People arrived")),
)


def specs_for(view: str) -> list[Spec]:
    """The tables of a view: "network", "member" or "public"."""
    if view == "public":
        return [s for s in SPECS if s.public]
    if view == "member":
        return [s for s in SPECS if s.member]
    return list(SPECS)


def rows_of(spec: Spec, data: dict[str, Any]) -> list[dict[str, Any]]:
    """The table's rows, from a view's computed figures."""
    if spec.id == "summary":
        head = data["headline"]
        return [{"key": key, "measure": label, "value": head.get(key)} for key, label in _MEASURES]
    if spec.id == "indicators":
        ind = data["indicators"]
        period = f"{ind['cohort_start']} {DASH} {ind['cohort_end']}"
        return [
            {"measure": N_("Submissions resettled within six months"), "part": ind["within_six_months"],
             "whole": ind["submitted"], "share": ind["within_share"], "period": period},
            {"measure": N_("Places kept for emergencies"), "part": ind["emergency"], "whole": ind["places"],
             "share": ind["emergency_share"], "period": str(data["year"])},
        ]
    return list(data.get(spec.id) or [])


# Cells --------------------------------------------------------------------------------------------------------


def suppressed_label(threshold: int) -> str:
    return f"<{threshold}"


def cell(col: Col, value: Any, row: dict[str, Any] | None = None) -> str:
    """How a cell reads, in the current language."""
    if isinstance(value, str) and value.startswith("<") and col.kind not in {"text", "population"}:
        return value  # suppressed
    if value is None or value == "":
        if col.kind == "population" and row is not None:
            return i18n.country_name(row.get("nationality")) or _("Not recorded")
        return DASH if col.kind in {"count", "percent", "days"} else ""
    kind = col.kind
    if kind == "count":
        return i18n.format_number(int(value))
    if kind == "percent":
        return percent(float(value))
    if kind == "days":
        return i18n.format_number(round(float(value), 1))
    if kind == "country":
        return i18n.country_name(value) or str(value)
    if kind == "region":
        return _(region_name(value))
    if kind == "stage":
        try:
            return _(STAGE_NAMES[Stage(value)])
        except ValueError:
            return str(value)
    if kind == "priority":
        return _(PRIORITY_NAMES.get(value, value))
    if kind == "measure":
        return _(value)
    if kind == "month" and isinstance(value, str) and len(value) == 7:
        from babel.dates import format_date

        return format_date(date(int(value[:4]), int(value[5:]), 1), "MMM y", locale=i18n.locale_var.get())
    return str(value)


def percent(value: float) -> str:
    """A percentage as the language writes it (12.5 %, 12,5 %, ٪12.5)."""
    from babel.numbers import format_percent

    return format_percent(value / 100, "#,##0.##%", locale=i18n.locale_var.get())


def raw(col: Col, value: Any, row: dict[str, Any]) -> Any:
    """A cell for a file: numbers stay numbers (a spreadsheet sums them), the rest reads as on the page."""
    if col.kind in {"count", "days", "percent"} and isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if col.kind in {"count", "days", "percent"} and value is None:
        return ""
    if col.kind in {"month", "date"}:
        return value or ""  # ISO (2026-03), as a spreadsheet and HXL tools read dates
    return cell(col, value, row)


def suppress(spec: Spec, rows: Sequence[dict[str, Any]], threshold: int) -> list[dict[str, Any]]:
    """The rows as the public may see them.

    1. Every count under ``threshold`` (zero included) reads "<threshold" (a figure that does not exist, such as a
       need nobody entered, stays empty).
    2. A count that is part of another in its row (accepted of referred) is hidden when the rest is small.
    3. In tables whose rows split a total, the hidden cells of a column must add up to at least the threshold (or
       to nothing): otherwise the smallest shown cells are hidden too, so no small count can be worked out from the
       total.
    4. Every share or median resting on a hidden count is hidden.
    """
    label = suppressed_label(threshold)
    out = [dict(r) for r in rows]
    counts = [c for c in spec.columns if c.kind in COUNTS]
    for c in counts:
        for r in out:
            value = r.get(c.key)
            if isinstance(value, (int, float)) and value < threshold:
                r[c.key] = label
    for c in counts:
        if c.part_of:
            for r, original in zip(out, rows, strict=True):
                whole, part = original.get(c.part_of), original.get(c.key)
                if (isinstance(r.get(c.key), (int, float)) and isinstance(whole, (int, float))
                        and isinstance(part, (int, float)) and 0 < whole - part < threshold):
                    r[c.key] = label
    if spec.partitions:
        for c in counts:
            hidden = sum(original.get(c.key) or 0 for r, original in zip(out, rows, strict=True)
                         if r.get(c.key) == label)
            shown = [(r, original) for r, original in zip(out, rows, strict=True)
                     if isinstance(r.get(c.key), (int, float))]
            while 0 < hidden < threshold and shown:
                r, original = min(shown, key=lambda pair: pair[1][c.key])
                r[c.key] = label
                hidden += original[c.key]
                shown.remove((r, original))
    for c in spec.columns:
        if c.basis:
            for r in out:
                if any(r.get(b) == label for b in c.basis):
                    r[c.key] = label
    return out


# Files --------------------------------------------------------------------------------------------------------


def header(spec: Spec) -> tuple[list[str], list[str]]:
    return [_(c.label) for c in spec.columns], [c.hxl for c in spec.columns]


def to_csv(spec: Spec, rows: Iterable[dict[str, Any]]) -> bytes:
    """UTF-8 with a byte-order mark (spreadsheets then read accents), a header row, the HXL hashtag row, rows."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    labels, tags = header(spec)
    writer.writerow(labels)
    writer.writerow(tags)
    for r in rows:
        writer.writerow([_safe(raw(c, r.get(c.key), r)) for c in spec.columns])
    return out.getvalue().encode("utf-8")


def _safe(value: Any) -> Any:
    """Text a spreadsheet would take for a formula is written as text."""
    if not isinstance(value, str) or value in {DASH, "-"}:
        return value
    if value[:1] in {"\t", "\r"} or value.lstrip()[:1] in {"=", "+", "-", "@"}:
        return "'" + value
    return value


def to_xlsx(tables: Sequence[tuple[Spec, list[dict[str, Any]]]]) -> bytes:
    """One sheet per table, each with its header row and HXL hashtag row."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    wb = Workbook(write_only=True)
    for spec, rows in tables:
        ws = wb.create_sheet(spec.id[:31])
        labels, tags = header(spec)
        ws.append(labels)
        ws.append(tags)
        for r in rows:
            line: list[Any] = []
            for c in spec.columns:
                value = raw(c, r.get(c.key), r)
                if isinstance(value, str):
                    text_cell = WriteOnlyCell(ws, value=ILLEGAL_CHARACTERS_RE.sub("", value))
                    text_cell.data_type = "s"  # text, never a formula
                    line.append(text_cell)
                else:
                    line.append(value)
            ws.append(line)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()

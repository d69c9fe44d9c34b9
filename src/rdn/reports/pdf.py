"""The quarterly report as a PDF, made here with fpdf2 (no online service, no browser): the headline, then every
table of the view with bars for the charted ones, in the reader's language (DejaVu Sans, shipped with RDN,
covers Latin and Arabic script; HarfBuzz shapes Arabic and lays it right to left)."""

from __future__ import annotations

import contextlib
from datetime import datetime
from importlib import resources
from typing import Any

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace

from rdn.core import i18n
from rdn.core.context import locale_var
from rdn.core.i18n import gettext as _
from rdn.reports import present, tables

_FONT = "DejaVu"
_SERIES = ((18, 53, 91), (11, 138, 131), (168, 100, 0), (138, 92, 184))


class _Report(FPDF):
    footer_text = ""

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(_FONT, size=7)
        self.set_text_color(90, 90, 90)
        self.cell(0, 6, f"{self.footer_text} · {self.page_no()}", align="C")


def _fonts(pdf: FPDF) -> None:
    folder = resources.files("rdn.reports").joinpath("fonts")
    pdf.add_font(_FONT, "", str(folder.joinpath("DejaVuSans.ttf")))
    pdf.add_font(_FONT, "B", str(folder.joinpath("DejaVuSans-Bold.ttf")))


def quarterly(data: dict[str, Any], *, view: str, government: str | None) -> bytes:
    """The PDF of a view's figures (``view``: "network" or "member")."""
    rtl = i18n.direction(locale_var.get()) == "rtl"
    pdf = _Report(orientation="landscape", format="A4")
    pdf.set_margins(12, 12, 12)
    pdf.set_auto_page_break(True, margin=16)
    _fonts(pdf)
    with contextlib.suppress(ImportError, TypeError):  # uharfbuzz is a dependency; without it, text still reads
        pdf.set_text_shaping(use_shaping_engine=True, direction="rtl" if rtl else "ltr")
    who = government or _("the Resettlement Diplomacy Network")
    title = _("Quarterly report, %(period)s: %(who)s", period=data["period"], who=who)
    pdf.set_title(title)
    pdf.set_author("RDN")
    pdf.set_creator("RDN")
    pdf.footer_text = title
    pdf.add_page()
    align = "R" if rtl else "L"
    pdf.set_font(_FONT, "B", 16)
    pdf.multi_cell(0, 9, title, align=align, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(_FONT, size=9)
    when = i18n.format_datetime(datetime.fromisoformat(data["computed_at"]))
    pdf.multi_cell(0, 5, _("Figures as of %(when)s.", when=when), align=align, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)

    # The headline, as a two-column table.
    pdf.set_font(_FONT, "B", 12)
    pdf.multi_cell(0, 7, _("The period at a glance"), align=align, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(_FONT, size=9)
    with pdf.table(col_widths=(70, 40), width=110, text_align=(align, "R"), first_row_as_headings=False,
                   align="RIGHT" if rtl else "LEFT") as t:
        for card in present.cards(None, data):
            row = t.row()
            row.cell(card["label"])
            row.cell(card["value"] + (f"  ({card['share']})" if card["share"] else ""))
    pdf.ln(4)

    for spec in tables.specs_for(view):
        if spec.id == "summary":
            continue
        rows = tables.rows_of(spec, data)
        pdf.set_font(_FONT, "B", 12)
        if pdf.will_page_break(30):
            pdf.add_page()
        pdf.multi_cell(0, 7, _(spec.title), align=align, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font(_FONT, size=8)
        if not rows:
            pdf.multi_cell(0, 5, _("Nothing to show for this period yet."), align=align,
                           new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.ln(2)
            continue
        if spec.chart:
            _bars(pdf, spec, rows[:10])
        numeric = [c.kind in {"count", "percent", "days"} for c in spec.columns]
        with pdf.table(text_align=tuple("R" if n else align for n in numeric), line_height=4.6,
                       headings_style=FontFace(emphasis="BOLD", fill_color=(235, 239, 243))) as t:
            head = t.row()
            for c in spec.columns:
                head.cell(_(c.label))
            for r in rows:
                line = t.row()
                for c in spec.columns:
                    line.cell(tables.cell(c, r.get(c.key), r))
        pdf.ln(4)
    if data.get("sources"):
        pdf.set_font(_FONT, "B", 10)
        pdf.multi_cell(0, 6, _("Sources"), align=align, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font(_FONT, size=8)
        for source in data["sources"]:
            pdf.multi_cell(0, 4.5, source, align=align, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())


def _bars(pdf: FPDF, spec: tables.Spec, rows: list[dict[str, Any]]) -> None:
    """Grouped horizontal bars, one group per row (the chart of the page, drawn with rectangles)."""
    assert spec.chart is not None
    label_key, series = spec.chart
    label_col = next(c for c in spec.columns if c.key == label_key)
    cols = [next(c for c in spec.columns if c.key == k) for k in series]
    values = [r.get(c.key) for r in rows for c in cols]
    top = max((v for v in values if isinstance(v, (int, float))), default=0)
    if not top:
        return
    bar_h, label_w, width = 2.2, 55, 150
    needed = len(rows) * (len(cols) * bar_h + 2) + 8
    if pdf.will_page_break(needed):
        pdf.add_page()
    x0, y = pdf.l_margin, pdf.get_y()
    # Legend
    pdf.set_font(_FONT, size=7)
    for k, c in enumerate(cols):
        pdf.set_fill_color(*_SERIES[k % len(_SERIES)])
        pdf.rect(x0 + label_w + k * 40, y, 3, 3, style="F")
        pdf.set_xy(x0 + label_w + k * 40 + 4, y - 0.6)
        pdf.cell(34, 4, _(c.label))
    y += 6
    for r in rows:
        label = tables.cell(label_col, r.get(label_key), r)
        pdf.set_xy(x0, y)
        pdf.cell(label_w - 2, len(cols) * bar_h, label[:40], align="R")
        for k, c in enumerate(cols):
            v = r.get(c.key)
            if isinstance(v, (int, float)) and v > 0:
                pdf.set_fill_color(*_SERIES[k % len(_SERIES)])
                pdf.rect(x0 + label_w, y + k * bar_h, width * v / top, bar_h - 0.4, style="F")
        y += len(cols) * bar_h + 2
    pdf.set_y(y + 2)

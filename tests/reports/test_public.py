"""The public transparency page: every figure it shows (cards, tables, chart bars, CSV files) is either a count at
or above the threshold or "<threshold"; a share or a median resting on a suppressed count is suppressed too; a
column whose rows split a total never has a single suppressed cell (it could be worked out); the threshold is the
deployment's; and the page exists only when the deployment turns it on."""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from rdn.cases.models import ReferralStatus
from rdn.config import get_settings, set_settings
from rdn.core import clock
from rdn.pathways.models import ObstacleStatus
from rdn.reports import service, tables
from rdn.reports.figures import year_period
from rdn.reports.tables import Col, Spec
from tests.factories import Client
from tests.reports.test_figures import World

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


@pytest.fixture
def public(request) -> Iterator[int]:  # type: ignore[no-untyped-def]
    threshold = getattr(request, "param", 10)
    original = get_settings()
    set_settings(original.model_copy(update={"public_figures": True, "public_figures_threshold": threshold}))
    try:
        yield threshold
    finally:
        set_settings(original)


def small_and_large(session, network) -> World:  # type: ignore[no-untyped-def]
    """Afghans: many people referred, accepted, departed; Rohingya: fifteen referred; Syrians: a family of three;
    Sudanese: one person (neither with a projected need); a family that arrived this month."""
    w = World(session, network)
    w.need(2026, "Afghan", 573400, "UNHCR", nationality="AF")
    w.need(2026, "Rohingya", 233300, "UNHCR", nationality="MM")
    for k in range(3):
        c = w.case(nationality="MM", country="BD", size=5)
        w.refer(c, "canada", ReferralStatus.accepted, datetime(2026, 4, 1 + k, tzinfo=UTC))
    late = w.case(nationality="AF", country="PK", size=2, arrived_at=datetime(2026, 11, 3, tzinfo=UTC),
                  stage="arrived")
    w.refer(late, "canada", ReferralStatus.accepted, datetime(2026, 11, 2, tzinfo=UTC))
    w.quota("canada", 2026, 900, 90)
    w.quota("spain", 2026, 7, 1)  # a small quota: suppressed too
    for k in range(6):
        c = w.case(nationality="AF", country="PK", size=4, departed_at=datetime(2026, 5, 3 + k, tzinfo=UTC),
                   stage="departed")
        w.refer(c, "canada", ReferralStatus.accepted, datetime(2026, 2, 1 + k, tzinfo=UTC))
    syrians = w.case(nationality="SY", country="TR", size=3)
    w.refer(syrians, "spain", ReferralStatus.accepted, datetime(2026, 3, 2, tzinfo=UTC))
    sudanese = w.case(nationality="SD", country="EG", size=1, departed_at=datetime(2026, 6, 1, tzinfo=UTC),
                      stage="departed")
    w.refer(sudanese, "spain", ReferralStatus.accepted, datetime(2026, 3, 9, tzinfo=UTC))
    w.done()
    session.commit()
    return w


def number(text: str) -> int | None:
    text = text.strip().replace(",", "").replace("\u202f", "").replace("\xa0", "")
    return int(text) if text.isdigit() else None


def table_cells(page: str, spec: Spec) -> list[dict[str, str]]:
    """The rendered table's rows as {column key: cell text}."""
    found = re.search(rf'<table id="table-{spec.id}">(.*?)</table>', page, re.S)
    if found is None:
        return []
    body = re.search(r"<tbody>(.*?)</tbody>", found.group(1), re.S)
    rows = []
    for tr in re.findall(r"<tr>(.*?)</tr>", body.group(1) if body else "", re.S):
        found_cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", tr, re.S)
        cells = [html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in found_cells]
        rows.append(dict(zip([c.key for c in spec.columns], cells, strict=True)))
    return rows


ABSENT = {"\u2013", ""}  # a figure that does not exist (a need nobody entered)


def assert_safe(spec: Spec, rows: list[dict[str, str]], threshold: int) -> None:
    label = f"<{threshold}"
    for row in rows:
        for col in spec.columns:
            value = row[col.key]
            if col.kind == "count":
                n = number(value)
                assert value == label or (n is not None and n >= threshold) or (
                    col.key == "need" and value in ABSENT), (spec.id, col.key, value)
            if col.basis and any(row[b] == label for b in col.basis):
                assert value == label, (spec.id, col.key, value)
    if spec.partitions:
        for col in spec.columns:
            if col.kind == "count" and col.key != "need":
                hidden = [r for r in rows if r[col.key] == label]
                assert len(hidden) != 1 or len(rows) == 1, (spec.id, col.key)


def test_every_public_figure_is_suppressed_under_the_threshold(app, session, network, public) -> None:  # type: ignore[no-untyped-def]
    small_and_large(session, network)
    with clock.frozen(NOW):
        page = Client(app).get("/transparency?period=2026")
        assert page.status_code == 200, page.text[:1000]
        text = page.text
        # The cards.
        cards = re.findall(r'data-card="(\w+)"><dt>[^<]*</dt><dd>([^<]*)', text)
        # 6 x 4 Afghans + 15 Rohingya + 3 + 1; not the family referred this month (the month is not over).
        assert cards and dict(cards)["referred"] == "43"
        for key, value in cards:
            n = number(html.unescape(value))
            assert html.unescape(value) == "<10" or (n is not None and n >= 10) or (
                key == "need" and html.unescape(value) in ABSENT), (key, value)
        # The tables, as drawn and as downloaded.
        seen_suppressed = False
        for spec in tables.specs_for("public"):
            if spec.id == "summary":
                continue
            rows = table_cells(text, spec)
            assert_safe(spec, rows, public)
            seen_suppressed |= any("<10" in r.values() for r in rows)
            download = Client(app).get(f"/transparency/{spec.id}.csv?period=2026")
            assert download.status_code == 200
            lines = list(csv.reader(io.StringIO(download.content.decode("utf-8-sig"))))
            assert lines[1] == [c.hxl for c in spec.columns]
            file_rows = [dict(zip([c.key for c in spec.columns], line, strict=True)) for line in lines[2:]]
            assert_safe(spec, file_rows, public)
        assert seen_suppressed
        # Syrians (3 people) and Sudanese (1) have no need entered: one "Other populations" row holds them (a row
        # of their own would tell that one Sudanese family was referred), hidden; the Rohingya's 15 go with it (the
        # 4 could be worked out from the total); the Afghans' 24 shown.
        population = {r["population"]: r for r in table_cells(text, tables.BY_ID["by_population"])}
        assert list(population) == ["Afghan", "Rohingya", "Other populations"]
        assert population["Afghan"]["referred"] == "24"
        assert population["Other populations"]["referred"] == "<10" and population["Rohingya"]["referred"] == "<10"
        assert "Sudan" not in text and "Syria" not in text
        assert "to Oct 31, 2026" in html.unescape(text)  # the public figures stop at the last full month
        # Chart bars never carry a hidden figure: their tooltips say "<10" and they have no length.
        bars = re.findall(r'width="([\d.]+)" height="[\d.]+" class="bar s\d"><title>([^<]*)</title>', text)
        assert bars
        for width, title in bars:
            value = html.unescape(title).rsplit(": ", 1)[1]
            n = number(value)
            assert value == "<10" or (n is not None and n >= 10), title
            if value == "<10":
                assert float(width) == 0


@pytest.mark.parametrize("public", [25], indirect=True)
def test_the_threshold_is_the_deployments(app, session, network, public) -> None:  # type: ignore[no-untyped-def]
    small_and_large(session, network)
    with clock.frozen(NOW):
        page = Client(app).get("/transparency?period=2026").text
    assert "&lt;25" in page and "&lt;10" not in page
    population = {r["population"]: r for r in table_cells(page, tables.BY_ID["by_population"])}
    assert population["Afghan"]["departed"] == "<25"  # 24 people: under 25 now
    assert population["Afghan"]["referred"] == "<25"


def test_a_single_hidden_cell_in_a_split_column_gets_company() -> None:
    spec = Spec("t", "T", "T", (Col("name", "Name", "#x", "text"), Col("n", "N", "#n")), partitions=True)
    rows = [{"name": "a", "n": 120}, {"name": "b", "n": 40}, {"name": "c", "n": 3}, {"name": "d", "n": 55}]
    out = tables.suppress(spec, rows, 10)
    assert [r["n"] for r in out] == [120, "<10", "<10", 55]  # the smallest shown cell (40) goes too
    zero = tables.suppress(spec, [{"name": "a", "n": 0}, {"name": "b", "n": 0}], 10)
    assert [r["n"] for r in zero] == ["<10", "<10"]  # zero is under the threshold as well
    # Hidden zeros are no cover: 3 hidden among zeros would be the total less 500; the 500 goes too.
    lone = tables.suppress(spec, [{"name": "a", "n": 500}, {"name": "b", "n": 3}, {"name": "c", "n": 0}], 10)
    assert [r["n"] for r in lone] == ["<10", "<10", "<10"]
    # Accepted is part of referred: 12 referred and 10 accepted would single out the 2 not accepted.
    flows = tables.BY_ID["by_government"]
    row = {"government": "X", "places": 0, "emergency": 0, "pledged": 0, "referred_cases": 3, "referred": 12,
           "accepted": 10, "departed": 0, "arrived": 0}
    assert tables.suppress(flows, [row], 10)[0]["accepted"] == "<10"
    assert tables.suppress(flows, [{**row, "accepted": 12}], 10)[0]["accepted"] == 12
    shares = Spec("s", "S", "S", (Col("part", "P", "#p"), Col("share", "S", "#s", "percent", basis=("part",))))
    assert tables.suppress(shares, [{"part": 4, "share": 50.0}], 10) == [{"part": "<10", "share": "<10"}]


def test_the_public_page_is_a_404_unless_turned_on(app, session, network) -> None:  # type: ignore[no-untyped-def]
    assert get_settings().public_figures is False
    assert Client(app).get("/transparency").status_code == 404
    assert Client(app).get("/transparency/by_population.csv").status_code == 404


def test_the_public_page_shows_no_table_the_public_may_not_see(app, session, network, public) -> None:  # type: ignore[no-untyped-def]
    w = small_and_large(session, network)
    obstacle = w.obstacle("A secret diplomatic obstacle", "PK", ObstacleStatus.confirmed)
    w.block(obstacle, w.cases[0])
    session.commit()
    with clock.frozen(NOW):
        service.refresh(session, period=year_period(2026))
        page = Client(app).get("/transparency?period=2026").text
        assert "A secret diplomatic obstacle" not in page and 'id="t-obstacles"' not in page
        assert 'id="t-stages"' not in page and 'id="t-crises"' not in page
        for hidden in ("obstacles", "stages", "crises"):
            assert Client(app).get(f"/transparency/{hidden}.csv").status_code == 404


def test_the_public_csv_links_lead_to_the_files(app, session, network, public) -> None:  # type: ignore[no-untyped-def]
    small_and_large(session, network)
    with clock.frozen(NOW):
        page = Client(app).get("/transparency?period=2026").text
        links = re.findall(r'href="(/transparency/[a-z_]+\.csv\?period=[^"]+)"', page)
        assert links and all(link.endswith("period=2026") for link in links)
        for link in links:
            r = Client(app).get(html.unescape(link))
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv"), link

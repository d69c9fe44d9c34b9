"""The network picture in a browser: Canada's officer opens the network dashboard and Canada's own view; every
chart is drawn (bars of some width); a table view opens with the keyboard and holds the figures the chart draws;
a CSV downloads with its HXL hashtag row; another government's view is the same 404 as one that does not exist.
The public page (RDN_PUBLIC_FIGURES=true) shows small counts as "<10". The dashboard in Arabic is laid out right
to left. Then axe-core (serious and critical violations) on the dashboard, the member view, the quarterly report
and the public page, in English and (the signed-in pages) in Arabic.

The data: a server of its own (the public page is on) on a fresh database seeded by ``rdn demo``."""

from __future__ import annotations

import csv
import io
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import AXE, RDN, sign_in, start_server
from tests.conftest import free_port, fresh_database_url, subprocess_env

pytestmark = pytest.mark.browser

OFFICER = "officer@ca.rdn.example"  # Canada's officer: the dashboard, and Canada's own view
OWN = "ca"
OTHER = "de"
SUPPRESSED = "<10"  # the default threshold, RDN_PUBLIC_FIGURES_THRESHOLD=10

# axe-core's serious and critical violations, with each node's target and what is wrong with it.
AXE_DETAILS = """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
  .filter(v => v.impact === "serious" || v.impact === "critical")
  .map(v => ({id: v.id, impact: v.impact, help: v.help,
              nodes: v.nodes.slice(0, 5).map(n => ({target: n.target.join(" "), html: n.html.slice(0, 200),
                                                     message: n.failureSummary}))}))"""

# Every chart on the page: its id, the section it sits in, its legend, and its groups with their bars.
CHARTS = """() => [...document.querySelectorAll("figure.chart svg[data-chart]")].map(svg => ({
  id: svg.dataset.chart,
  section: svg.closest("section.picture-table")?.id,
  figure: !!svg.closest("figure.chart"),
  labelled: (svg.getAttribute("aria-labelledby") || "").split(" ").every(i => i && document.getElementById(i)),
  series: svg.querySelectorAll("rect:not(.bar)").length,
  groups: [...svg.querySelectorAll("text > title")].map(t => t.textContent),
  bars: [...svg.querySelectorAll("rect.bar")].map(r => ({
    width: parseFloat(r.getAttribute("width")), drawn: r.getBoundingClientRect().width,
    title: r.querySelector("title")?.textContent || ""})),
}))"""


@pytest.fixture(scope="module")
def reports_server(tmp_path_factory: pytest.TempPathFactory, smtp_server: Any) -> Iterator[str]:
    """``rdn serve`` (with its worker) on a fresh database seeded with the demo network, the public page on."""
    gen = fresh_database_url(tmp_path_factory.mktemp("reports-browser"))
    url = next(gen)
    port = free_port()
    env = subprocess_env(url, smtp_server[0], RDN_SSE_MAX_SECONDS="5", RDN_BASE_URL=f"http://127.0.0.1:{port}",
                         RDN_PUBLIC_FIGURES="true")
    subprocess.run([RDN, "demo"], env=env, check=True, capture_output=True)
    proc, base = start_server(env, port)
    try:
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        next(gen, None)


def charts_drawn(page: Any) -> list[dict[str, Any]]:
    """The page's charts, each checked: in a figure, in the section of its table, labelled, with bars of width."""
    charts = page.evaluate(CHARTS)
    assert charts, f"no chart on {page.url}"
    for chart in charts:
        name = f"{chart['id']} on {page.url}"
        assert chart["id"].startswith("ch-") and chart["figure"] and chart["labelled"], name
        assert chart["section"] == "t-" + chart["id"].removeprefix("ch-"), name
        assert chart["series"] and chart["groups"], name
        assert len(chart["bars"]) == chart["series"] * len(chart["groups"]), name
        assert any(b["width"] > 0 and b["drawn"] > 0 for b in chart["bars"]), f"no bar drawn in {name}"
    return charts


def check_table_view(page: Any, chart: dict[str, Any]) -> list[list[str]]:
    """Opens the chart's table view with the keyboard; its rows hold the chart's groups and every figure a bar
    draws. Returns the table's rows as they read."""
    from playwright.sync_api import expect

    table_id = chart["id"].removeprefix("ch-")
    section = page.locator(f"#t-{table_id}")
    details = section.locator("details.table-view")
    table = details.locator(f"table#table-{table_id}")
    expect(details).not_to_have_attribute("open", "")
    expect(table).to_be_hidden()
    summary = details.locator("summary")
    summary.focus()
    expect(summary).to_be_focused()
    page.keyboard.press("Enter")
    expect(details).to_have_attribute("open", "")
    expect(table).to_be_visible()
    header = [h.strip() for h in table.locator("thead th").all_text_contents()]
    rows = [[cell.strip() for cell in row] for row in table.locator("tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.children].map(c => c.textContent))")]
    assert len(rows) >= len(chart["groups"]), table_id
    series = chart["series"]
    for i, group in enumerate(chart["groups"]):
        assert rows[i][0] == group, (table_id, i, rows[i][0], group)
        for bar in chart["bars"][i * series:(i + 1) * series]:
            label, _sep, figure = bar["title"].rpartition(": ")
            assert label in header, (table_id, bar["title"], header)
            assert rows[i][header.index(label)] == figure, (table_id, group, bar["title"], header, rows[i])
    # The region scrolls with the keyboard too.
    expect(details.locator(".table-wrap[tabindex='0'][role='region']")).to_be_visible()
    return rows


def download_csv(page: Any, base: str, table_id: str) -> list[list[str]]:
    """Follows the table's CSV link: a CSV with its header row, then the HXL hashtags."""
    link = page.locator(f"#t-{table_id} p.files a[download]")
    href = link.get_attribute("href")
    assert href and f"{table_id}.csv" in href, href
    with page.expect_download() as info:
        link.click()
    download = info.value
    assert download.suggested_filename.endswith(".csv"), download.suggested_filename
    text = Path(download.path()).read_bytes().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) >= 2, text[:500]
    assert rows[1] and all(tag.startswith("#") for tag in rows[1]), rows[1]
    assert len(rows[0]) == len(rows[1]), rows[:2]
    # The same file as a plain request: served as CSV.
    response = page.request.get(base + href)
    assert response.status == 200 and response.headers["content-type"].startswith("text/csv"), response.headers
    return rows


def axe(page: Any, url: str) -> list[dict[str, Any]]:
    page.goto(url)
    page.add_script_tag(path=str(AXE))
    return list(page.evaluate(AXE_DETAILS))


def switch_language(page: Any, base: str, locale: str) -> None:
    page.goto(base + "/")
    page.locator("#locale-switch").select_option(locale)
    page.locator("form[action='/locale'] button").click()
    page.wait_for_load_state()


def test_the_network_picture_draws_its_charts_opens_its_tables_and_passes_axe(browser: Any,
                                                                             reports_server: str) -> None:
    from playwright.sync_api import expect

    base = reports_server
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, accept_downloads=True, bypass_csp=True)
    page = context.new_page()
    sign_in(page, base, OFFICER)
    found: dict[str, Any] = {}

    # The network dashboard: its headline, every chart drawn, a table view opened with the keyboard, a CSV.
    page.goto(base + "/reports")
    expect(page.locator("h1")).to_have_text("The network picture")
    expect(page.locator("#headline [data-card]")).to_have_count(7)
    members = page.locator("nav[aria-labelledby='h-members'] a")
    expect(members).to_have_count(1)  # Canada's officer may open Canada's view, and no other
    expect(members).to_have_attribute("href", re.compile(rf"^/reports/members/{OWN}\?period=\d{{4}}$"))
    charts = charts_drawn(page)
    ids = {c["id"] for c in charts}
    assert {"ch-by_government", "ch-by_population"} <= ids, ids
    by_government = next(c for c in charts if c["id"] == "ch-by_government")
    rows = check_table_view(page, by_government)
    assert any(row[0] == "Canada" for row in rows), rows
    data = download_csv(page, base, "by_government")
    assert data[0][0] == "Government" and data[1][0] == "#org+name", data[:2]
    assert len(data) - 2 == len(rows), (len(data), len(rows))
    found["en /reports"] = axe(page, base + "/reports")

    # Canada's own view: its charts and a table; another government's view is the same 404 as a missing one.
    member_url = f"{base}/reports/members/{OWN}"
    page.goto(member_url)
    expect(page.locator("h1")).to_have_text("The picture for Canada")
    member_charts = charts_drawn(page)
    first = member_charts[0]
    check_table_view(page, first)
    download_csv(page, base, first["id"].removeprefix("ch-"))
    for other in (OTHER, "no-such-government"):
        assert page.request.get(f"{base}/reports/members/{other}").status == 404, other
    found[f"en /reports/members/{OWN}"] = axe(page, member_url)

    # The quarterly report: every table open, no file links.
    page.goto(base + "/reports/quarterly")
    expect(page.locator("h1")).to_contain_text("Quarterly report")
    expect(page.locator("details.table-view:not([open])")).to_have_count(0)
    expect(page.locator("p.files")).to_have_count(0)
    charts_drawn(page)
    found["en /reports/quarterly"] = axe(page, base + "/reports/quarterly")

    # The public page, for anyone: small counts read "<10", and charts are drawn from what is left.
    public = browser.new_context(viewport={"width": 1280, "height": 1000}, bypass_csp=True)
    p = public.new_page()
    p.goto(base + "/transparency")
    expect(p.locator("h1")).to_have_text("Resettlement in figures")
    expect(p.locator("main")).to_contain_text(f"shown as “{SUPPRESSED}”")
    cells = p.locator("table tbody td").all_inner_texts()
    assert SUPPRESSED in [c.strip() for c in cells], "no suppressed count in the public tables"
    charts_drawn(p)
    public_rows = download_csv(p, base, "by_population")
    assert any(SUPPRESSED in row for row in public_rows[2:]), public_rows
    found["en /transparency"] = axe(p, base + "/transparency")
    public.close()

    # In Arabic: right to left, and still no serious violation.
    switch_language(page, base, "ar")
    try:
        for path in ("/reports", f"/reports/members/{OWN}", "/reports/quarterly"):
            page.goto(base + path)
            assert page.locator("html").get_attribute("dir") == "rtl", path
            assert page.locator("html").get_attribute("lang") == "ar", path
            found[f"ar {path}"] = axe(page, base + path)
        page.goto(base + "/reports")
        charts_drawn(page)
    finally:
        switch_language(page, base, "en")  # the language is the person's: give them back English
    context.close()

    violations = {where: v for where, v in found.items() if v}
    assert violations == {}, "serious or critical axe-core violations:\n" + "\n".join(
        f"{where}: {v['id']} ({v['impact']}): {v['help']}\n" + "\n".join(
            f"    {n['target']}: {n['message']}\n      {n['html']}" for n in v["nodes"])
        for where, vs in violations.items() for v in vs)

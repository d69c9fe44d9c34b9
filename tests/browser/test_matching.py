"""Matching in a browser: the agency's caseworker runs a match over a batch of cases, watches it solve, reads a
placement's explanation, overrides it with a reason, accepts the rest and confirms; the referrals appear, and
Canada's officer finds the case referred. Then axe-core on the matching pages, in English and in Arabic."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import axe_violations, sign_in

pytestmark = pytest.mark.browser

CASEWORKER = "caseworker@unhcr-like.rdn.example"


def test_an_officer_runs_a_match_reads_an_explanation_overrides_one_and_confirms(browser, server):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    sign_in(page, server, CASEWORKER)
    page.goto(server + "/matching")
    expect(page.locator("main")).to_contain_text("Recommended cases, this month")  # the demo's run

    # A run over the agency's cases at the recommendation stage (the demo recorded their consent).
    page.get_by_label("Title").fill("Recommendation stage, browser test")
    page.get_by_label("Stage").select_option("recommendation")
    page.get_by_role("button", name="Start the run").click()
    page.wait_for_url(re.compile(r".*/matching/runs/[0-9a-f-]{36}\?notice=started$"))
    run_url = page.url.split("?")[0]
    expect(page.locator("#run-status")).to_have_text("Proposal ready for review", timeout=60_000)
    expect(page.locator("main")).to_contain_text("Gap to the bound")
    expect(page.locator("figure.chart svg")).to_be_visible()
    heights = page.locator("figure.chart svg rect.bar").evaluate_all("bars => bars.map(b => +b.getAttribute('height'))")
    assert len(heights) == 10 and max(heights) > 0
    expect(page.get_by_role("table", name="Places used by country")).to_be_visible()

    # The first placement's explanation: the score's factors, what binds, the best alternative.
    first = page.get_by_role("table", name="Proposed placements, in the batch's order").locator("tbody tr").first
    number = first.locator("td").first.inner_text()
    first.get_by_role("link", name=number).click()
    expect(page.get_by_role("heading", name="Why this proposal")).to_be_visible()
    factors = page.get_by_role("table", name=re.compile("How the score at the proposed site is made"))
    expect(factors).to_contain_text("Speaks a language the site serves")
    expect(page.get_by_role("heading", name="Best alternative")).to_be_visible()
    proposed = page.locator("#proposed-site").inner_text()
    alternative = page.locator("#alternative strong").inner_text()

    # Override it with the best alternative (offered first), giving a reason.
    page.get_by_role("button", name="Override").click()  # without a reason: refused, the field named
    expect(page.locator(".alert")).to_contain_text("say why you override the proposal")
    page.get_by_label("Reason").fill("The family asked to join relatives there")
    page.get_by_role("button", name="Override").click()
    expect(page.locator("#decision")).to_have_text("Overridden")
    decided = page.locator("#decided-site").inner_text()
    assert decided != proposed and decided.split(",")[0] in alternative

    # Accept the rest and confirm: the referrals are created.
    page.goto(run_url)
    page.get_by_role("button", name="Accept every remaining proposal").click()
    expect(page.locator(".notice")).to_contain_text("Every remaining proposal with a site is accepted")
    page.get_by_role("button", name="Confirm and refer").click()
    expect(page.locator(".notice")).to_contain_text("Confirmed: the referrals are created")
    expect(page.locator("#run-status")).to_have_text("Confirmed")
    page.goto(server + "/referrals?direction=outgoing")
    expect(page.locator("main")).to_contain_text(number)
    page.goto(run_url + "?decision=referred")
    expect(page.get_by_role("link", name=number)).to_be_visible()

    # The matching pages pass axe-core, in English and in Arabic (right to left).
    placement_url = page.get_by_role("link", name=number).get_attribute("href")
    paths = ["/matching", run_url.removeprefix(server), str(placement_url), "/matching/sites", "/matching/quotas"]
    assert axe_violations(browser, context, server, paths, ("en", "ar")) == {}
    context.close()

"""Obstacles in a browser: the agency reports an exit-permit fee in Pakistan and marks one of its cases blocked
by it; Canada's officer records a démarche co-signed by Spain, then the obstacle is resolved; the case shows as
released. Then axe-core on the pathways, obstacles and library pages, in English and in Arabic."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import axe_violations, sign_in

pytestmark = pytest.mark.browser

CASEWORKER = "caseworker@unhcr-like.rdn.example"
OFFICER = "officer@ca.rdn.example"
TITLE = "Exit permit fee, browser test"


def test_a_case_blocked_by_an_exit_permit_is_released_when_the_obstacle_is_resolved(browser, server):
    from playwright.sync_api import expect

    agency = browser.new_context(viewport={"width": 1280, "height": 1000})
    canada = browser.new_context(viewport={"width": 1280, "height": 1000})
    a, b = agency.new_page(), canada.new_page()

    # The agency reports the obstacle.
    sign_in(a, server, CASEWORKER)
    a.goto(server + "/obstacles/new")
    a.get_by_label("Host or transit country").select_option("PK")
    a.get_by_label("Type").select_option("exit_permit")
    a.get_by_label("Title").fill(TITLE)
    a.get_by_label("Description").fill("A fee per person before an exit permit is issued.")
    a.get_by_label("Amount per person, where it is a fee or a fine").fill("830")
    a.get_by_label("Currency (ISO 4217)").fill("USD")
    a.get_by_label("Nationalities affected").fill("AF")
    a.get_by_label("Severity").select_option("critical")
    a.get_by_role("button", name="Save").click()
    a.wait_for_url(re.compile(r".*/obstacles/[0-9a-f-]{36}\?notice=created$"))
    obstacle_url = a.url.split("?")[0]
    expect(a.locator("#blocked-cases")).to_have_text("0")

    # One of its cases in Pakistan: the exit permit is blocked by it.
    a.goto(server + "/cases?current_country=PK&relation=owned")
    a.locator("main table a[href^='/cases/']").first.click()
    case_url = a.url.split("?")[0].split("#")[0]
    number = a.locator("h1 code").inner_text()
    a.get_by_label("Exit permit: blocked by an obstacle").select_option(label=TITLE)
    a.get_by_role("button", name="Mark blocked (Exit permit)").click()
    expect(a.locator("main p.small", has_text=TITLE)).to_contain_text("Blocked by")
    a.goto(obstacle_url)
    expect(a.locator("#blocked-cases")).to_have_text("1")
    expect(a.locator("#blocked-list")).to_contain_text(number)

    # Canada's officer sees the count (not the case, which is not shared with Canada) and records a démarche.
    sign_in(b, server, OFFICER)
    b.goto(obstacle_url)
    expect(b.locator("#blocked-cases")).to_have_text("1")
    assert number not in b.locator("main").inner_text()
    b.get_by_text("Record a diplomatic action").click()
    b.get_by_label("Action", exact=True).select_option("demarche")
    b.get_by_label("Co-signers").select_option(label="Spain")
    b.get_by_label("What was done").fill("Démarche to the interior ministry asking for a fee waiver.")
    b.get_by_role("button", name="Record the action").click()
    expect(b.locator("#actions")).to_contain_text("Démarche")
    expect(b.locator("#actions")).to_contain_text("Spain")
    expect(b.locator("#obstacle-status")).to_have_text("Being addressed")

    # The waiver is granted: the obstacle is resolved and the case released.
    b.get_by_label("New status").select_option("resolved")
    b.get_by_label("Note", exact=True).first.fill("Fee waived for resettling families")
    b.get_by_role("button", name="Change the status").click()
    expect(b.locator(".notice")).to_contain_text("the cases it blocked are released")
    expect(b.locator("#blocked-cases")).to_have_text("0")
    expect(b.locator("#released-cases")).to_have_text("1")

    a.goto(case_url)
    expect(a.get_by_label("Status of Exit permit")).to_have_value("pending")
    expect(a.get_by_label("Note on Exit permit")).to_have_value(re.compile("Released"))
    expect(a.locator("main p.small", has_text=TITLE)).to_have_count(0)  # no longer "Blocked by" it

    # The pages pass axe-core, in English and in Arabic.
    paths = ["/obstacles", "/obstacles?country=PK", obstacle_url.removeprefix(server), "/obstacles/new",
             "/pathways", "/pathways?nationality=VE&current_country=CO", "/practices"]
    assert axe_violations(browser, agency, server, paths, ("en", "ar")) == {}
    for context in (agency, canada):
        context.close()

"""The red phone in two browsers: one government declares, another is paged live, answers, and speaks in the
room; the first sees it all arrive without reloading. Then axe-core on the red phone's pages."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import axe_violations, sign_in

pytestmark = pytest.mark.browser

DECLARER = "minister@de.rdn.example"  # Germany's senior official
PAGED = "senior-official1@it.rdn.example"  # Italy's level 1 in the demo chains


def test_a_declared_crisis_reaches_another_government_live(browser, server):
    from playwright.sync_api import expect

    first = browser.new_context(viewport={"width": 1280, "height": 1000})
    second = browser.new_context(viewport={"width": 1280, "height": 1000})
    a, b = first.new_page(), second.new_page()
    sign_in(b, server, PAGED)  # Italy waits on the home page
    expect(b.locator(".card-redphone")).to_contain_text("No page waiting for you")

    sign_in(a, server, DECLARER)
    a.goto(server + "/crises/new")
    a.get_by_label("Title").fill("Flooding in the camps of eastern Chad")
    a.get_by_label("Summary").fill("Camps flooded; 40,000 people need relocation.")
    a.get_by_label("Target number of places").fill("2000")
    a.get_by_role("button", name="Declare and page every government").click()
    a.wait_for_url(re.compile(r".*/crises/[0-9a-f-]{36}$"))
    room_url = a.url
    navigations: list[str] = []
    a.on("framenavigated", lambda frame: navigations.append(frame.url) if frame == a.main_frame else None)

    # Italy's official sees the page arrive on the home page, without reloading, and acknowledges.
    ack = b.locator(".card-redphone").get_by_role("button", name="Acknowledge for Italy")
    expect(ack).to_be_visible(timeout=20_000)
    ack.click()
    b.wait_for_url(room_url)
    expect(b.locator("#room-paging")).to_contain_text("Acknowledged by")

    b.get_by_label("Message to the room").fill("Italy here: we can take medical cases this month.")
    b.get_by_role("button", name="Send").click()
    expect(b.locator("#room-messages")).to_contain_text("we can take medical cases", timeout=10_000)
    b.get_by_label("Places", exact=True).fill("250")
    b.get_by_label("Time frame").fill("6 months")
    b.get_by_role("button", name="Pledge", exact=True).click()
    expect(b.locator("#room-pledges")).to_contain_text("Italy", timeout=10_000)

    # The first browser, untouched, shows all of it.
    paging = a.locator("#room-paging .ack-acknowledged")
    expect(paging.filter(has_text="Italy")).to_be_visible(timeout=10_000)
    expect(a.locator("#room-messages")).to_contain_text("we can take medical cases", timeout=10_000)
    expect(a.locator("#room-pledges")).to_contain_text("Italy", timeout=10_000)
    expect(a.locator("#room-header")).to_contain_text("250")
    assert navigations == [], f"the first browser navigated: {navigations}"
    assert a.url == room_url

    # The red phone's pages pass axe-core (no serious or critical violation), in the declarer's session.
    paths = [room_url.removeprefix(server), "/crises", "/crises/new", "/pages", "/chains", "/contact", "/drills",
             room_url.removeprefix(server) + "/sitrep"]
    assert axe_violations(browser, first, server, paths) == {}
    for context in (first, second):
        context.close()

"""Safe Mobility in a browser, in Spanish on a phone-sized screen: a Venezuelan woman in Costa Rica registers, sees
she may qualify for two pathways (resettlement and family reunification in Spain), books an interview, and later
checks her status with her reference and PIN; then the office's caseworker turns her registration into a case
referred to Spain. Then axe-core on the public pages, in every registrant language (right to left for Arabic,
Dari and Pashto), and on the staff pages."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import AXE, AXE_SERIOUS, axe_violations, sign_in

pytestmark = pytest.mark.browser

CASEWORKER = "caseworker@smo-cr.rdn.example"
PHONE = {"width": 390, "height": 844}


def test_a_registrant_qualifies_books_checks_her_status_and_is_referred_to_spain(browser, server):
    from playwright.sync_api import expect

    person = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="es-CR")
    p = person.new_page()

    # The offices, in Spanish: registration is free.
    p.goto(server + "/safe-mobility?lang=es")
    expect(p.locator("html")).to_have_attribute("lang", "es")
    expect(p.locator("main")).to_contain_text("gratuito")
    p.goto(server + "/safe-mobility/cr/register")

    # The form, without JavaScript needed: about her, family in Spain, the questions, contact, permission.
    p.locator("#f-given_name").fill("Yolanda")
    p.locator("#f-family_name").fill("Pérez Márquez")
    p.locator("#f-birth_date").fill("1991-08-14")
    p.locator("#f-sex").select_option("f")
    p.locator("#f-nationality").select_option("VE")
    p.locator("#f-arrived_on").fill("2022-03-01")
    p.locator("#f-ties-0").fill("ES")
    p.locator("input[name='answers.protection_risk'][value='yes']").check()
    p.locator("input[name='answers.us_supporter'][value='no']").check()
    p.locator("input[name='answers.trade_experience'][value='no']").check()
    p.locator("#f-phone").fill("+506 8123 4567")
    p.locator("#f-email").fill("yolanda@example.org")
    for consent in ("consent_screening", "consent_contact", "consent_share"):
        p.locator(f"#f-{consent}").check()
    p.wait_for_timeout(3200)  # a person takes longer than a robot: forms sent within 3 seconds are refused
    p.get_by_role("button", name="Enviar mi registro").click()

    # Registered: the reference and PIN, once, and two pathways in Spain.
    expect(p.locator("#reference")).to_have_text(re.compile(r"^SM-CR-[2-9A-HJ-NP-Z]{8}$"))
    reference, pin = p.locator("#reference").inner_text(), p.locator("#pin").inner_text()
    assert re.fullmatch(r"\d{6}", pin)
    cards = p.locator("ul.cards > li")
    expect(cards).to_have_count(2)
    expect(cards.nth(0)).to_contain_text("España")
    expect(cards.nth(1)).to_contain_text("España")
    names = " ".join(cards.all_inner_texts())
    assert "Resettlement to Spain" in names and "Family reunification in Spain" in names

    # Straight on to her status page (she has just registered): a slot.
    p.get_by_role("link", name=re.compile("entrevista", re.I)).click()
    expect(p.locator("#status")).to_be_visible()
    first = p.locator("input[name='slot']").first
    when = first.locator("xpath=..").inner_text().strip()
    first.check()
    p.get_by_role("button", name=re.compile("Reservar")).click()
    expect(p.locator("main")).to_contain_text(when)

    # A new visit: nothing remembered but what she wrote down.
    p.context.clear_cookies()
    p.goto(server + "/safe-mobility/status?lang=es")
    p.locator("#f-reference").fill(reference.lower())  # typed as people type it
    p.locator("#f-pin").fill(pin)
    p.get_by_role("button", name=re.compile("Ver mi registro")).click()
    expect(p.locator("#status")).to_have_text(re.compile("[Ee]ntrevista"))
    expect(p.locator("main")).to_contain_text(when)
    person.close()

    # The office's caseworker finds her, and opens a case referred to Spain.
    office = browser.new_context(viewport={"width": 1280, "height": 1000})
    c = office.new_page()
    sign_in(c, server, CASEWORKER)
    c.goto(server + f"/mobility?tab=all&q={reference}")
    c.get_by_role("link", name=reference).click()
    expect(c.locator("main")).to_contain_text("Yolanda")
    rule = c.locator("#f-rule_id option", has_text="Resettlement to Spain").first.get_attribute("value")
    c.locator("#f-rule_id").select_option(rule)
    spain = c.locator("#f-government_org_id option", has_text="Spain").first.get_attribute("value")
    c.locator("#f-government_org_id").select_option(spain)
    c.get_by_role("button", name="Open the case and refer it").click()
    c.wait_for_url(re.compile(r".*/cases/[0-9a-f-]{36}.*"))
    expect(c.locator("main")).to_contain_text("Spain")
    expect(c.locator("main")).to_contain_text("Pérez Márquez")
    c.goto(server + f"/mobility?tab=all&q={reference}")
    expect(c.locator("main table")).to_contain_text("Referred")

    # Axe-core: the public pages in every registrant language, and the staff pages.
    audit = browser.new_context(bypass_csp=True, viewport=PHONE)
    page = audit.new_page()
    found: dict[str, list[dict[str, str]]] = {}
    try:
        for lang in ("es", "en", "ht", "fr", "pt", "ar", "prs", "ps"):
            for path in ("/safe-mobility", "/safe-mobility/cr/register", "/safe-mobility/status"):
                page.goto(f"{server}{path}?lang={lang}")
                expected_dir = "rtl" if lang in ("ar", "prs", "ps") else "ltr"
                assert page.locator("html").get_attribute("dir") == expected_dir, (lang, path)
                page.add_script_tag(path=str(AXE))
                violations = page.evaluate(AXE_SERIOUS)
                if violations:
                    found[f"{lang} {path}"] = violations
    finally:
        audit.close()
    found.update(axe_violations(browser, office, server,
                                ["/mobility", "/mobility/dashboard", "/mobility/calendar", "/mobility/rules"]))
    office.close()
    assert not found, found

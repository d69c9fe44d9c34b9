"""The shell in Chromium: sign-in with MFA, no serious accessibility violation, no CSP violation, in English
and in Arabic (right to left)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.conftest import AXE, sign_in

pytestmark = pytest.mark.browser

ADMIN = "admin@secretariat.rdn.example"
AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                      nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}));
}"""


def serious(violations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [v for v in violations if v["impact"] in ("serious", "critical")]


def shell_pages(page: Any, base: str) -> list[str]:
    """The shell's pages as the secretariat's administrator reaches them (ids read from the lists)."""
    page.goto(base + "/organizations")
    org = page.locator("table a").first.get_attribute("href")
    page.goto(base + "/people")
    person = page.locator("table a").first.get_attribute("href")
    return ["/", "/organizations", org, "/organizations/new", "/people", person, "/people/new", "/account",
            "/admin/jobs", "/admin/audit", "/this-page-does-not-exist"]


def audit_pages(browser: Any, base: str, storage: Any, paths: list[str], locale: str) -> dict[str, Any]:
    """axe-core on each page (a context that lets the test inject axe past the CSP)."""
    context = browser.new_context(bypass_csp=True, storage_state=storage)
    page = context.new_page()
    found = {}
    for path in paths:
        page.goto(base + path)
        assert page.locator("html").get_attribute("lang") == locale
        page.add_script_tag(path=str(AXE))
        violations = serious(page.evaluate(AXE_RUN))
        if violations:
            found[path] = violations
    context.close()
    return found


def test_sign_in_with_mfa_and_shell_is_accessible_in_english_and_arabic(browser, server):
    context = browser.new_context()
    page = context.new_page()
    csp_errors: list[str] = []
    page.on("console", lambda msg: csp_errors.append(msg.text) if "Content Security Policy" in msg.text else None)

    # Anonymous pages first.
    anonymous = audit_pages(browser, server, None, ["/login", "/password/forgot"], "en")
    assert anonymous == {}, anonymous

    sign_in(page, server, ADMIN)
    assert page.get_by_role("heading", level=1).inner_text().startswith("Welcome")
    paths = shell_pages(page, server)
    for path in paths:  # every page loads its scripts and styles within the CSP
        page.goto(server + path)
    assert csp_errors == []

    english = audit_pages(browser, server, context.storage_state(), paths, "en")
    assert english == {}, english

    # Switch to Arabic with the language switcher, as a person would.
    page.goto(server + "/")
    page.get_by_label("Language").select_option("ar")
    page.locator("form[action='/locale'] button").click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("dir") == "rtl"
    assert page.locator("html").get_attribute("lang") == "ar"
    nav_box = page.locator(".site-nav li").first.bounding_box()
    assert nav_box is not None and nav_box["x"] > 640, "right to left: the navigation starts on the right"
    arabic = audit_pages(browser, server, context.storage_state(), paths, "ar")
    assert arabic == {}, arabic
    assert csp_errors == []
    context.close()


def test_wrong_code_is_refused_and_live_search_filters(browser, server):
    from playwright.sync_api import expect

    context = browser.new_context()
    page = context.new_page()
    page.goto(server + "/login")
    page.get_by_label("Email").fill("minister@es.rdn.example")
    page.get_by_label("Password").fill("Resettle-Demo-2026!")
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Code").fill("000000")
    page.get_by_role("button", name="Verify").click()
    assert page.get_by_role("alert").is_visible()
    assert "/login/mfa" in page.url

    sign_in(page, server, "minister@es.rdn.example")
    page.goto(server + "/organizations")
    rows_before = page.locator("#results tbody tr").count()
    page.get_by_label("Search").fill("safe mob")
    expect(page.locator("#results tbody tr")).to_have_count(4)
    assert rows_before > 4
    assert re.search(r"q=safe\+mob|q=safe%20mob", page.url), "the search is in the address, to share or go back"
    context.close()

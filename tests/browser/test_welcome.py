"""Welcome in a browser: citizens form a sponsor group on the programme's public page (on a phone) and set their
password from the emailed invitation; the group adds its members, pledges the funds and shares out the welcome
plan; Canada's programme officer records five adults' checks and training and verifies the funds, and the group's
page says it is eligible; the officer proposes the group for a family on its way to Canada, the group accepts, the
officer records the family's acceptance and the arrival, the group records the airport reception and the school
enrolment, and the officer sees the progress. Then axe-core on the public, group, match and programme pages.

The data: a server of its own on a fresh database with the test personas, Canada's programme and an arriving
family made with the Welcome test world's helpers (the demo's programmes are not assumed)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pyotp
import pytest

from tests.browser.conftest import AXE, AXE_SERIOUS, start_server
from tests.conftest import free_port, fresh_database_url, rdn_environ, subprocess_env
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
CITIZEN = "ana.souza@elm.example"
CITIZEN_PASSWORD = "elm street welcomes families 42"


@pytest.fixture(scope="module")
def welcome_server(tmp_path_factory: pytest.TempPathFactory, smtp_server: Any,
                   settings: Any) -> Iterator[dict[str, Any]]:
    """A real ``rdn serve`` (with its worker) on a fresh database holding the personas, Canada's programme and a
    family of four accepted by Canada and on its way."""
    from rdn import db
    from rdn.config import load_settings, set_settings
    from tests.cases.conftest import AGREED, CasesWorld, agree
    from tests.factories import build_network
    from tests.welcome.conftest import welcome_world

    gen = fresh_database_url(tmp_path_factory.mktemp("welcome-browser"))
    url = next(gen)
    set_settings(load_settings(environ=rdn_environ(url, smtp_server[0])))
    try:
        session = db.new_session()
        net = build_network(session)
        cw = CasesWorld(session, net, {"canada": agree(session, net, "canada", AGREED["canada"])})
        ww = welcome_world(cw)
        case = ww.arriving_case("Mohammad", size=4)
        data = {"programme_id": str(ww.programme.id), "case_id": str(case.id), "case_number": case.number,
                "officer_totp": net.totp["officer_canada"]}
        session.commit()
        session.close()
    finally:
        db.engine().dispose()
        set_settings(settings)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = subprocess_env(url, smtp_server[0], RDN_BASE_URL=base, RDN_SSE_MAX_SECONDS="5")
    proc, _base = start_server(env, port)
    try:
        yield {"base": base, "mailbox": smtp_server[1], **data}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        next(gen, None)


def sign_in(page: Any, base: str, email: str, password: str, totp: str | None = None) -> None:
    page.goto(base + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Continue").click()
    if totp:
        page.wait_for_url("**/login/mfa**")
        page.get_by_label("Code").fill(pyotp.TOTP(totp).now())
        page.get_by_role("button", name="Verify").click()
    page.wait_for_url(base + "/")


def invitation_link(mailbox: Any, address: str, base: str) -> str:
    from tests.factories import mail_text

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for message in mailbox.to(address):
            found = re.search(re.escape(base) + r"/password/set\?token=[\w-]+", mail_text(message))
            if found:
                return found.group(0)
        time.sleep(0.2)
    raise AssertionError(f"no invitation reached {address}")


def axe(page: Any, url: str) -> list[Any]:
    page.goto(url)
    page.add_script_tag(path=str(AXE))
    return list(page.evaluate(AXE_SERIOUS))


def test_citizens_form_a_group_welcome_a_family_and_the_officer_sees_the_progress(browser: Any,
                                                                                   welcome_server: Any) -> None:
    from playwright.sync_api import expect

    base = welcome_server["base"]
    programme_url = f"{base}/welcome/programmes/{welcome_server['programme_id']}"
    today = datetime.now(UTC).date().isoformat()

    # A citizen signs her group up on the public page, on her phone.
    citizen = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    p = citizen.new_page()
    p.goto(base + "/welcome/join/ca-welcome")
    expect(p.locator("#rules")).to_contain_text("At least 5 adults in the group")
    p.locator("#f-your_name").fill("Ana Souza")
    p.locator("#f-your_email").fill(CITIZEN)
    p.locator("#f-name").fill("Elm Street Neighbours")
    p.locator("#f-city").fill("Ottawa")
    for language in ("en", "fa"):
        p.locator(f"input[name='languages'][value='{language}']").check()
    p.locator("#f-max_size").fill("6")
    p.locator("#f-capacity").fill("5")
    p.get_by_role("button", name="Sign up the group").click()
    expect(p.locator("#registered")).to_contain_text("Elm Street Neighbours is registered")
    expect(p.locator("#missing")).to_contain_text("1 of the 5 adults the programme asks for")
    # The invitation: she chooses a password, then signs in and completes the group.
    p.goto(invitation_link(welcome_server["mailbox"], CITIZEN, base))
    p.locator("#f-password").fill(CITIZEN_PASSWORD)
    p.locator("#f-confirm").fill(CITIZEN_PASSWORD)
    p.get_by_role("button", name="Save the password").click()
    p.wait_for_url("**/login?notice=password-set")
    sign_in(p, base, CITIZEN, CITIZEN_PASSWORD)
    p.goto(base + "/welcome")
    p.wait_for_url(re.compile(r".*/welcome/groups/[0-9a-f-]{36}$"))
    group_url = p.url
    for n, name in enumerate(("Ben Tremblay", "Chloé Martin", "Dev Patel", "Eun-ji Park")):
        p.locator("#members summary").click()
        p.locator("#f-full_name").fill(name)
        p.locator("#f-email").fill(f"member{n}@elm.example")
        p.get_by_role("button", name="Add the member").click()
        expect(p.locator("#member-list")).to_contain_text(name)
    p.locator("#f-funds_pledged").fill("12125")
    p.locator("#f-funds_cash").fill("8000")
    p.locator("#preferences").get_by_role("button", name="Save").click()
    expect(p.locator("#funds-pledged")).to_contain_text("12,125")
    plan = p.locator("#plan select")
    for i in range(plan.count()):
        plan.nth(i).select_option(index=1 + i % 5)
    p.get_by_role("button", name="Save the plan").click()
    expect(p.locator(".notice")).to_contain_text("The welcome plan is saved")
    expect(p.locator("#eligibility-summary")).to_contain_text("things are still missing")

    # The programme officer records the five adults' checks and training, and verifies the funds.
    office = browser.new_context(viewport={"width": 1280, "height": 1000})
    o = office.new_page()
    sign_in(o, base, "officer_canada@rdn.test", PASSWORD, welcome_server["officer_totp"])
    o.goto(programme_url + "?q=elm")
    o.locator("#group-list").get_by_role("link", name="Elm Street Neighbours").click()
    o.wait_for_url(group_url)
    rows = o.locator("#member-list tbody tr")
    expect(rows).to_have_count(5)
    for i in range(5):
        row = o.locator("#member-list tbody tr").nth(i)
        row.locator("select[name='check']").select_option("passed")
        row.locator("input[name='trained_on']").fill(today)
        row.get_by_role("button", name=re.compile("^Record")).click()
        expect(o.locator(".notice")).to_contain_text("The check and training are recorded")
    expect(o.locator("#rules-checklist")).to_contain_text("✗ Missing: The programme has verified the funds")
    o.get_by_role("button", name="Record the funds as verified").click()
    expect(o.locator("#eligibility-summary")).to_contain_text("The group is eligible")
    expect(o.locator("#group-status")).to_have_text("Eligible")

    # The officer proposes the group for the arriving family.
    o.goto(programme_url)
    expect(o.locator("#arriving-list")).to_contain_text(welcome_server["case_number"])
    o.locator("#f-group_id").select_option(group_url.rsplit("/", 1)[1])
    o.locator("#f-case_id").select_option(welcome_server["case_id"])
    o.get_by_role("button", name="Propose the group").click()
    o.wait_for_url(re.compile(r".*/welcome/matches/[0-9a-f-]{36}\?notice=proposed$"))
    match_url = o.url.split("?")[0]
    expect(o.locator("#case-link")).to_have_text(welcome_server["case_number"])

    # The group accepts; it sees the family as shared, never the case.
    p.goto(group_url)
    p.get_by_role("link", name="What the family shared, the arrival and the core services").click()
    p.wait_for_url(match_url)
    expect(p.locator("#given-names")).to_have_text("Mohammad, Fatima, Child0, and Child1")
    assert welcome_server["case_number"] not in p.content() and "Rahimi" not in p.content()
    p.get_by_role("button", name="We accept").click()
    expect(p.locator("#answer")).to_contain_text("Your group accepted")

    # The officer records the family's answer and the arrival.
    o.goto(match_url)
    o.get_by_role("button", name="Record the family's answer").click()
    expect(o.locator("#match-status")).to_have_text("Accepted by both sides")
    o.locator("#f-arrival_on").fill(today)
    o.locator("#f-flight").fill("AC 849")
    o.locator("#f-airport").fill("YOW")
    o.get_by_role("button", name="Send the arrival notice").click()
    expect(o.locator(".notice")).to_contain_text("The arrival is recorded")

    # The group records the airport reception and the school enrolment, with evidence.
    p.goto(match_url)
    expect(p.locator("#arrival")).to_contain_text("AC 849")
    for code, evidence in (("airport", "Met at the arrivals gate with an interpreter"),
                           ("school", "Enrolled at Elm Street Public School")):
        task = p.locator(f"li[data-code='{code}']")
        task.locator("summary").click()
        task.locator("input[name='done_on']").fill(today)
        task.locator("input[name='evidence']").fill(evidence)
        task.get_by_role("button", name="Save").click()
        expect(p.locator(f"li[data-code='{code}'] .task-state")).to_contain_text("Done on")
    expect(p.locator("#task-progress")).to_contain_text(re.compile(r"^2 of \d+ services done"))

    # The programme officer sees the progress.
    o.goto(programme_url)
    expect(o.locator("#match-list")).to_contain_text(re.compile(r"2 of \d+ services done"))
    o.goto(match_url)
    expect(o.locator("li[data-code='school']")).to_contain_text("Enrolled at Elm Street Public School")

    # Axe-core: the public page, and the group, match and programme pages as their readers see them.
    found: dict[str, list[Any]] = {}
    audit = browser.new_context(bypass_csp=True, viewport=PHONE)
    try:
        violations = axe(audit.new_page(), base + "/welcome/join/ca-welcome")
        if violations:
            found["join"] = violations
    finally:
        audit.close()
    for context, paths in ((office, [group_url, match_url, programme_url]), (citizen, [group_url, match_url])):
        checker = browser.new_context(bypass_csp=True, storage_state=context.storage_state())
        try:
            page = checker.new_page()
            for url in paths:
                violations = axe(page, url)
                if violations:
                    found[url] = violations
        finally:
            checker.close()
    citizen.close()
    office.close()
    assert not found, found

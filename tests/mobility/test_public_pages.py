"""The public pages as a registrant's browser without JavaScript uses them: plain GETs and form POSTs with the
CSRF token the page gave, in Spanish and in the right-to-left languages, each page under 100 KB with its CSS."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from rdn.core import clock
from rdn.mobility import registration
from rdn.mobility.models import Registration, RegistrationStatus, RuleStatus, ScreeningRule, Slot
from tests.factories import csrf_of

BUDGET = 100 * 1024
ISSUED = re.compile(r'name="issued" value="([^"]+)"')


def add_rules(session, office) -> None:
    for name, dest in (("Spain resettlement", "ES"), ("Canada labour mobility", "CA")):
        session.add(ScreeningRule(office_id=office.id, name=name, destination=dest, status=RuleStatus.active,
                                  conditions=[{"field": "nationality", "op": "in", "value": ["VE", "NI"]}],
                                  questions=[{"key": "worked_abroad", "type": "yes_no",
                                              "text": {"es": "¿Ha trabajado fuera de su país?",
                                                       "en": "Have you worked abroad?"}}]))
    session.flush()


def fields(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "given_name": "María José", "family_name": "Rodríguez", "birth_date": "1991-03-04", "sex": "f",
        "nationality": "VE", "arrived_on": "2023-02-01",
        "members[0].relationship": "child", "members[0].given_name": "Luis", "members[0].family_name": "Rodríguez",
        "members[0].birth_date": "2016-05-05", "members[0].sex": "m", "members[0].nationality": "",
        "members[1].relationship": "", "members[1].given_name": "", "members[1].birth_date": "",
        "ties": ["España", ""], "phone": "+506 7000 1111", "email": "maria.jose@example.org", "whatsapp": "",
        "consent_screening": "yes", "consent_contact": "yes", "answers.worked_abroad": "yes", "website": "",
    }
    data.update(over)
    return {k: v for k, v in data.items() if v is not None}


def open_form(client, slug: str = "cr", lang: str = "es"):
    page = client.get(f"/safe-mobility/{slug}/register?lang={lang}")
    assert page.status_code == 200, page.text[:500]
    return page, {"csrf_token": csrf_of(page.text), "issued": ISSUED.search(page.text).group(1), "rows": "3"}


def submit(client, slug: str = "cr", lang: str = "es", wait: int = 5, **over: Any):
    _page, hidden = open_form(client, slug, lang)
    clock.advance(timedelta(seconds=wait))
    return client.post(f"/safe-mobility/{slug}/register", data={**hidden, **fields(**over)})


def transferred(client, page) -> int:
    """The page plus every stylesheet it links (what a first visit downloads)."""
    total = len(page.content)
    for href in re.findall(r'<link rel="stylesheet" href="([^"]+)"', page.text):
        total += len(client.get(href).content)
    assert "<script" not in page.text
    return total


def count(session) -> int:
    return session.scalar(select(func.count()).select_from(Registration))


@pytest.fixture
def world(mobility_world, session, frozen_now):
    add_rules(session, mobility_world.offices["cr"])
    session.commit()
    return mobility_world


def test_offices_page_says_who_may_register_and_that_it_is_free(client, world):
    page = client.get("/safe-mobility", headers={"Accept-Language": "es-CR,es;q=0.9"})
    assert page.status_code == 200
    assert '<html lang="es" dir="ltr">' in page.text
    assert "gratuito" in page.text.lower() or "gratis" in page.text.lower()
    assert "Safe Mobility Office Costa Rica" in page.text and "/safe-mobility/cr/register" in page.text
    assert "Nicaragua" in page.text and "Venezuela" in page.text
    for code in ("es", "en", "ht", "fr", "pt", "ar", "prs", "ps"):
        assert f'href="/safe-mobility?lang={code}"' in page.text  # the language menu
    assert transferred(client, page) < BUDGET


@pytest.mark.parametrize("lang", ["ar", "prs", "ps"])
def test_right_to_left_languages(client, world, lang):
    page = client.get(f"/safe-mobility/cr/register?lang={lang}")
    assert page.status_code == 200
    assert f'<html lang="{lang}" dir="rtl">' in page.text
    assert page.cookies.get("rdn_public_lang") == lang
    # The language is remembered for the next page.
    again = client.get("/safe-mobility")
    assert f'<html lang="{lang}" dir="rtl">' in again.text
    assert transferred(client, page) < BUDGET


@pytest.mark.parametrize("lang", ["es", "en", "ht", "fr", "pt", "ar", "prs", "ps"])
def test_every_public_page_is_under_100_kb(client, world, session, lang):
    sizes = {}
    page, _ = open_form(client, "cr", lang)
    sizes["register"] = transferred(client, page)
    # The longest form: every household row shown.
    _, hidden = open_form(client, "cr", lang)
    big = client.post("/safe-mobility/cr/register", data={**hidden, "rows": "15", "more": "1"})
    assert big.status_code == 200 and big.text.count('class="member"') == registration.MAX_MEMBERS
    sizes["register_15"] = transferred(client, big)
    sizes["offices"] = transferred(client, client.get(f"/safe-mobility?lang={lang}"))
    sizes["lookup"] = transferred(client, client.get(f"/safe-mobility/status?lang={lang}"))
    clock.advance(timedelta(seconds=5))
    done = client.post("/safe-mobility/cr/register", data={**hidden, **fields()})
    assert done.status_code == 200, done.text[:300]
    sizes["registered"] = transferred(client, done)
    sizes["status"] = transferred(client, client.get("/safe-mobility/status"))
    print(lang, sizes)  # shown with -s: the figures in the closing note
    assert max(sizes.values()) < BUDGET, sizes


def test_register_without_javascript_shows_reference_pin_and_pathways(client, world, session, mailbox):
    before = count(session)
    done = submit(client)
    assert done.status_code == 200, done.text[:500]
    reference = re.search(r'id="reference">([^<]+)<', done.text).group(1)
    pin = re.search(r'id="pin">(\d{6})<', done.text).group(1)
    assert reference.startswith("SM-CR-")
    assert "Spain resettlement" in done.text and "Canada labour mobility" in done.text
    assert "España" in done.text and "Canadá" in done.text  # destinations in Spanish
    assert 'href="/safe-mobility/status"' in done.text  # book an interview from there
    assert count(session) == before + 1
    reg = session.scalars(select(Registration).where(Registration.reference == reference)).one()
    assert reg.language == "es" and reg.household_size == 2 and reg.answers == {"worked_abroad": True}
    assert reg.profile["ties"] == ["ES"]
    # The PIN is shown once: the status page never shows it.
    status = client.get("/safe-mobility/status")
    assert reference in status.text and pin not in status.text


def test_more_members_adds_rows_and_keeps_answers(client, world, session):
    _page, hidden = open_form(client)
    more = client.post("/safe-mobility/cr/register", data={**hidden, **fields(), "more": "1"})
    assert more.status_code == 200
    assert more.text.count('class="member"') == 6
    assert 'value="María José"' in more.text and 'value="Luis"' in more.text
    assert count(session) == 0 or session.scalar(select(func.count()).select_from(Registration)) == count(session)


def test_errors_are_shown_next_to_fields_with_a_summary(client, world, session):
    before = count(session)
    page = submit(client, **{"birth_date": "", "email": "nope", "members[0].birth_date": "ayer",
                             "consent_screening": None})
    assert page.status_code == 422
    assert 'role="alert"' in page.text and 'id="errors"' in page.text
    for fid in ("f-birth_date", "f-email", "f-members-0-birth_date", "f-consent_screening"):
        assert f'href="#{fid}"' in page.text
        assert f'id="e-{fid}"' in page.text and f'aria-describedby="e-{fid}' in page.text
    assert 'value="María José"' in page.text  # what was typed is kept
    assert count(session) == before


def test_not_eligible_is_told_why_and_where_else(client, world, session):
    page = submit(client, lang="en", arrived_on="2024-02-01", nationality="other")
    assert page.status_code == 200
    assert "You cannot register at this office" in page.text
    assert "June 12, 2023" in page.text and "Nicaragua" in page.text
    assert "help.unhcr.org/costarica" in page.text
    assert count(session) == 0


def test_status_with_reference_and_pin_then_book_update_and_withdraw(client, world, session):
    office = world.offices["cr"]
    slot = Slot(office_id=office.id, starts_at=clock.now() + timedelta(days=2),
                ends_at=clock.now() + timedelta(days=2, minutes=30), capacity=3, location="Oficina San José, piso 2")
    session.add(slot)
    session.commit()
    done = submit(client)
    reference = re.search(r'id="reference">([^<]+)<', done.text).group(1)
    pin = re.search(r'id="pin">(\d{6})<', done.text).group(1)
    anonymous = type(client)(client.app)  # another browser: not signed in
    form = anonymous.get("/safe-mobility/status?lang=es")
    assert 'name="reference"' in form.text
    token = csrf_of(form.text)
    wrong = anonymous.post("/safe-mobility/status", data={"csrf_token": token, "reference": reference, "pin": "000000"})
    assert wrong.status_code == 400 and 'role="alert"' in wrong.text
    right = anonymous.post("/safe-mobility/status", data={"csrf_token": token, "reference": reference.lower(),
                                                         "pin": pin})
    assert right.status_code == 303
    cookie = right.headers["set-cookie"]
    assert "rdn_sm_status=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    status = anonymous.get("/safe-mobility/status")
    assert status.status_code == 200 and reference in status.text
    assert 'id="status"' in status.text and 'name="slot"' in status.text
    booked = anonymous.post("/safe-mobility/status/book", data={"csrf_token": token, "slot": str(slot.id)})
    assert booked.status_code == 303, booked.text[:400]
    page = anonymous.get(booked.headers["location"])
    assert "Oficina San José, piso 2" in page.text and 'name="slot"' not in page.text
    saved = anonymous.post("/safe-mobility/status/contact", data={"csrf_token": token, "phone": "",
                                                                  "email": "nuevo@example.org",
                                                                  "consent_contact": "yes"})
    assert saved.status_code == 303
    refused = anonymous.post("/safe-mobility/status/withdraw", data={"csrf_token": token})
    assert refused.status_code == 422
    gone = anonymous.post("/safe-mobility/status/withdraw", data={"csrf_token": token, "confirm": "yes"})
    assert gone.status_code == 303
    reg = session.scalars(select(Registration).where(Registration.reference == reference)).one()
    session.refresh(reg)
    assert reg.status == RegistrationStatus.withdrawn
    session.refresh(slot)
    assert slot.booked == 0
    # Signed in for 30 minutes only.
    clock.advance(timedelta(minutes=31))
    assert 'name="pin"' in anonymous.get("/safe-mobility/status").text


def test_the_emailed_link_opens_the_status_page(client, world, session):
    reg = world.registration()
    link = registration.status_link(reg).replace("http://testserver", "")
    opened = client.get(link)
    assert opened.status_code == 303 and opened.headers["location"].startswith("/safe-mobility/status")
    assert reg.reference in client.get(opened.headers["location"]).text
    bad = type(client)(client.app).get(f"/safe-mobility/status/{reg.reference}?token=1.abc")
    assert bad.status_code == 400 and 'name="pin"' in bad.text


def test_unknown_office_is_a_clear_404(client, world):
    page = client.get("/safe-mobility/xx/register?lang=es")
    assert page.status_code == 404 and '<html lang="es"' in page.text

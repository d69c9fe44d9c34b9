"""Hostile input on the public form and API: oversized fields, scripts, wrong types, a thousand household
members, floods from one address, robots (honeypot, too fast). Each gets a clear error or a limit, never a
server error, and stores nothing."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from rdn.core import clock
from rdn.mobility import registration, sealed
from rdn.mobility.models import Registration
from tests.factories import csrf_of
from tests.mobility.test_public_pages import ISSUED, fields

API = "/api/v1/mobility/offices/cr/registrations"


def count(session) -> int:
    return session.scalar(select(func.count()).select_from(Registration))


def body(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "given_name": "Carlos", "family_name": "Méndez", "birth_date": "1985-09-09", "sex": "m",
        "nationality": "NI", "arrived_on": "2022-11-30", "members": [], "ties": [], "phone": "+505 8888 2222",
        "email": "", "whatsapp": "", "consent_screening": True, "consent_contact": True, "consent_share": True,
        "language": "en",
    }
    data.update(over)
    return data


@pytest.fixture
def world(mobility_world, session, frozen_now):
    return mobility_world


def post_form(client, wait: int = 5, **over: Any):
    page = client.get("/safe-mobility/cr/register?lang=en")
    hidden = {"csrf_token": csrf_of(page.text), "issued": ISSUED.search(page.text).group(1)}
    clock.advance(timedelta(seconds=wait))
    return client.post("/safe-mobility/cr/register", data={**hidden, **fields(**over)})


@pytest.mark.parametrize(("over", "field"), [
    ({"given_name": "A" * 101}, "given_name"),
    ({"given_name": "A" * 20_000}, "given_name"),
    ({"family_name": "<script>alert(1)</script>"}, "family_name"),
    ({"given_name": 42}, "given_name"),
    ({"given_name": ["Carlos"]}, "given_name"),
    ({"given_name": {"$gt": ""}}, "given_name"),
    ({"birth_date": ["1985-09-09"]}, "birth_date"),
    ({"birth_date": 19850909}, "birth_date"),
    ({"birth_date": "1985-02-30"}, "birth_date"),
    ({"birth_date": "1800-01-01"}, "birth_date"),
    ({"arrived_on": "9" * 5000}, "arrived_on"),
    ({"nationality": 7}, "nationality"),
    ({"sex": True}, "sex"),
    ({"email": "a@b" + "c" * 300 + ".org"}, "email"),
    ({"email": "x@y.org\r\nBcc: all@example.org"}, "email"),
    ({"phone": "+1" + "2" * 40}, "phone"),
    ({"phone": 50688882222}, "phone"),
    ({"consent_screening": "maybe"}, "consent_screening"),
    ({"consent_screening": [True]}, "consent_screening"),
    ({"members": "everyone"}, "members"),
    ({"members": [{"given_name": "Ana"}] * 1000}, "members"),
    ({"members": [["child", "Ana"]]}, "members[0]"),
    ({"members": [{"relationship": "child", "given_name": "Ana", "birth_date": ["2010-01-01"]}]},
     "members[0].birth_date"),
    ({"ties": "ES"}, "ties"),
    ({"ties": ["ES"] * 5000}, "ties"),
    ({"answers": ["yes"]}, "answers"),
    ({"language": ["es"]}, "language"),
    ({"given_name": "Carlos\u0000"}, "given_name"),
])
def test_api_wrong_fields_are_422_naming_the_field_and_store_nothing(client, world, session, over, field):
    before = count(session)
    r = client.post(API, json=body(**over))
    assert r.status_code == 422, r.text[:300]
    assert r.headers["content-type"].startswith("application/problem+json")
    assert field in {e["field"] for e in r.json()["errors"]}, r.json()
    assert count(session) == before


@pytest.mark.parametrize("raw", [b"[]", b"null", b"42", b'"text"', b"{not json", b"[" * 100_000, b"\xff\xfe"])
def test_api_bodies_that_are_not_objects(client, world, session, raw):
    r = client.post(API, content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code in (413, 422), r.text[:300]
    assert count(session) == 0


def test_api_oversized_body_is_refused(client, world, session):
    r = client.post(API, json=body(family_name="x" * 200_000))
    assert r.status_code == 413 and count(session) == 0


def test_api_registers_with_an_idempotency_key(client, world, session):
    headers = {"Idempotency-Key": "7b0a0c0e-1"}
    first = client.post(API, json=body(), headers=headers)
    assert first.status_code == 201, first.text
    assert sealed.REFERENCE.match(first.json()["reference"]) and len(first.json()["pin"]) == 6
    again = client.post(API, json=body(), headers=headers)
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert count(session) == 1
    offices = client.get("/api/v1/mobility/offices").json()
    assert {o["slug"] for o in offices} == {"cr", "co"} and "nationalities" in offices[0]


def test_api_not_eligible(client, world, session):
    r = client.post(API, json=body(nationality="CU"))
    assert r.status_code == 422 and r.json()["type"] == "/problems/not-eligible"
    assert "Nicaragua" in r.json()["detail"] and count(session) == 0


def test_script_in_a_name_is_refused_and_escaped_on_the_page(client, world, session):
    r = post_form(client, given_name='<script>alert("x")</script>', family_name="<img src=x onerror=alert(1)>")
    assert r.status_code == 422
    assert "<script>alert" not in r.text and "<img src=x" not in r.text
    assert "&lt;script&gt;" in r.text  # what was typed comes back, inert
    assert count(session) == 0


def test_a_thousand_household_members_on_the_form(client, world, session):
    page = client.get("/safe-mobility/cr/register?lang=en")
    hidden = {"csrf_token": csrf_of(page.text), "issued": ISSUED.search(page.text).group(1)}
    clock.advance(timedelta(seconds=5))
    many = {f"members[{i}].given_name": "Ana" for i in range(1000)}
    r = client.post("/safe-mobility/cr/register", data={**hidden, **fields(), **many})
    assert r.status_code in (400, 422) and 'role="alert"' in r.text, r.text[:300]
    assert count(session) == 0
    some = {f"members[{i}].given_name": "Ana" for i in range(100)}
    r = client.post("/safe-mobility/cr/register", data={**hidden, **fields(), **some})
    assert r.status_code == 422 and "At most 15 people" in r.text
    assert count(session) == 0


def test_oversized_form_fields(client, world, session):
    r = post_form(client, given_name="x" * 500_000, email="e" * 100_000)
    assert r.status_code in (400, 422) and 'role="alert"' in r.text
    assert count(session) == 0


def test_honeypot_filled(client, world, session):
    r = post_form(client, website="http://spam.example")
    assert r.status_code == 400 and "could not be sent" in r.text
    assert count(session) == 0


def test_too_fast_and_too_old_and_forged_forms(client, world, session):
    r = post_form(client, wait=1)
    assert r.status_code == 400 and "faster than a person" in r.text
    r = post_form(client, wait=3 * 3600)
    assert r.status_code == 400 and "more than 2 hours" in r.text
    page = client.get("/safe-mobility/cr/register?lang=en")
    clock.advance(timedelta(seconds=5))
    forged = f"{int(clock.now().timestamp()) - 60}.{'0' * 32}"
    r = client.post("/safe-mobility/cr/register", data={"csrf_token": csrf_of(page.text), "issued": forged,
                                                         **fields()})
    assert r.status_code == 400 and 'role="alert"' in r.text
    assert count(session) == 0
    # The answers are kept for the next try.
    assert 'value="María José"' in r.text


def test_without_the_csrf_token(client, world, session):
    page = client.get("/safe-mobility/cr/register?lang=es")
    clock.advance(timedelta(seconds=5))
    r = client.post("/safe-mobility/cr/register",
                    data={"issued": ISSUED.search(page.text).group(1), **fields()})
    assert r.status_code == 403 and '<html lang="es"' in r.text and 'role="alert"' in r.text
    assert count(session) == 0


def test_a_flood_from_one_address_is_limited(client, world, session):
    page = client.get("/safe-mobility/cr/register?lang=en")
    hidden = {"csrf_token": csrf_of(page.text), "issued": ISSUED.search(page.text).group(1)}
    clock.advance(timedelta(seconds=5))
    statuses = []
    for i in range(30):
        r = client.post("/safe-mobility/cr/register",
                        data={**hidden, **fields(given_name=f"Persona {'ab'[i // 26]}{chr(97 + i % 26)}")})
        statuses.append(r.status_code)
        assert r.status_code != 500
    limit = registration.REGISTRATIONS_SHORT[0]
    assert statuses[:limit] == [200] * limit and set(statuses[limit:]) == {429}
    assert "Too many attempts" in r.text and "wait 10 minutes" in r.text and r.headers["Retry-After"]
    assert count(session) == limit  # the first five, nothing after
    # Garbage floods are limited too, and through the API as well.
    for _ in range(registration.ATTEMPTS[0]):
        last = client.post(API, json={"given_name": 1})
    assert last.status_code == 429 and last.json()["status"] == 429
    assert count(session) == limit


def test_pin_guessing_on_the_status_page(client, world, session):
    reg = world.registration(pin="246810")
    page = client.get("/safe-mobility/status?lang=en")
    token = csrf_of(page.text)
    for _ in range(registration.PIN_PER_REFERENCE[0]):
        r = client.post("/safe-mobility/status", data={"csrf_token": token, "reference": reg.reference, "pin": "1"})
        assert r.status_code == 400
    r = client.post("/safe-mobility/status", data={"csrf_token": token, "reference": reg.reference, "pin": "246810"})
    assert r.status_code == 429 and "Too many wrong attempts" in r.text
    r = client.post("/safe-mobility/status", data={"csrf_token": token, "reference": ["x"], "pin": {"a": 1}})
    assert r.status_code in (400, 429)


def test_forged_sign_in_cookie_is_ignored(client, world, session):
    reg = world.registration()
    value = registration.sign_in_value(reg)
    client.cookies.set("rdn_sm_status", value[:-4] + "0000")
    assert 'name="pin"' in client.get("/safe-mobility/status").text
    r = client.post("/safe-mobility/status/withdraw", data={"csrf_token": csrf_of(client.get(
        "/safe-mobility/status").text), "confirm": "yes"})
    assert r.status_code == 303 and "expired" in r.headers["location"]
    assert re.search("withdrawn", reg.status.value) is None

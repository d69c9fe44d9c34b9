"""The harness itself: a rolled-back database per test, personas, signed-in clients."""

from __future__ import annotations

from sqlalchemy import func, select

from rdn.core.tenancy import Organization


def test_personas_sign_in_and_see_home(client, network, session):
    client.login(session, network.officer_canada)
    response = client.get("/")
    assert response.status_code == 200
    assert "Officer Canada" in response.text


def test_each_test_starts_empty(session):
    assert session.scalar(select(func.count()).select_from(Organization)) == 0

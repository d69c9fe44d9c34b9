"""The staff JSON API of Safe Mobility: the queue without names unless asked (and then audited), one registration,
conversion (with an Idempotency-Key replayed byte for byte), the dashboard; 404 for another office's, problem+json
for refusals, tokens limited by their scopes."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rdn.cases.models import Case, Referral
from rdn.core.audit import AuditEntry
from rdn.mobility.models import RegistrationStatus
from tests.factories import Client, api_token
from tests.mobility.test_queue import make_rule, result


@pytest.fixture
def api_world(mobility_world: Any, session: Session, frozen_now: Any) -> dict[str, Any]:
    w = mobility_world
    office = w.offices["cr"]
    rules = {"es": make_rule(session, office, w.pathways["es_resettlement"]),
             "de": make_rule(session, office, None, name="Germany admission", destination="DE")}
    ready = w.registration(given_name="Rosa", nationality="VE", email="rosa@example.org", phone="+506 6111 0001")
    for rule in rules.values():
        result(session, ready, rule, status=RegistrationStatus.interviewed)
    fresh = w.registration(given_name="Nico", nationality="NI", email="nico@example.org", phone="+506 6111 0002")
    other = w.registration("co", given_name="Cuca", nationality="CU", email="c@example.org", phone="+57 6111 0003")
    session.commit()
    return {"ready": ready, "fresh": fresh, "other": other, "rules": rules}


def token(session: Session, w: Any, persona: str, scopes: list[str]) -> dict[str, str]:
    from tests.mobility.conftest import STAFF

    org = w.orgs[STAFF[persona][0]] if persona in STAFF else w.net.org_of(persona)
    return api_token(session, w.net.people[persona], org, scopes)


def reads(session: Session, registration_id: Any) -> int:
    return session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "sensitive.read", AuditEntry.object_id == str(registration_id))) or 0


def test_the_queue_has_no_names_unless_asked(mobility_world, session, api_world, client: Client):
    w = mobility_world
    headers = token(session, w, "caseworker_cr", ["read"])
    got = client.get("/api/v1/mobility/registrations", headers=headers)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["meta"]["total"] == 2 and {i["reference"] for i in body["items"]} == {
        api_world["ready"].reference, api_world["fresh"].reference}
    assert all(i["identity"] is None for i in body["items"]) and "Rosa" not in got.text
    assert reads(session, api_world["ready"].id) == 0
    named = client.get("/api/v1/mobility/registrations?include=identity&q=" + api_world["ready"].reference,
                       headers=headers).json()
    assert named["items"][0]["identity"]["members"][0]["given_name"] == "Rosa"
    assert named["items"][0]["identity"]["email"] == "rosa@example.org"
    assert reads(session, api_world["ready"].id) == 1
    new = client.get("/api/v1/mobility/registrations?tab=new", headers=headers).json()
    assert [i["reference"] for i in new["items"]] == [api_world["fresh"].reference]  # Rosa's file was opened
    bad = client.get("/api/v1/mobility/registrations?status=lost", headers=headers)
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    assert client.get("/api/v1/mobility/registrations?tab=later", headers=headers).status_code == 422


def test_one_registration(mobility_world, session, api_world, client: Client):
    w, reg = mobility_world, api_world["ready"]
    headers = token(session, w, "caseworker_cr", ["read"])
    got = client.get(f"/api/v1/mobility/registrations/{reg.id}", headers=headers)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["identity"] is None and body["qualifying"] == 2 and len(body["results"]) == 2
    assert body["results"][0]["checks"][0]["text"] and body["profile"]["members"][0]["nationality"] == "VE"
    assert reads(session, reg.id) == 0
    named = client.get(f"/api/v1/mobility/registrations/{reg.id}?include=identity", headers=headers).json()
    assert named["identity"]["members"][0]["given_name"] == "Rosa" and reads(session, reg.id) == 1
    # Another office's registration and a missing one: the same 404.
    other = client.get(f"/api/v1/mobility/registrations/{api_world['other'].id}", headers=headers)
    missing = client.get(f"/api/v1/mobility/registrations/{api_world['rules']['es'].id}", headers=headers)
    assert other.status_code == missing.status_code == 404 and other.json()["type"] == missing.json()["type"]
    for persona in ("caseworker_co", "officer_canada"):
        assert client.get(f"/api/v1/mobility/registrations/{reg.id}",
                          headers=token(session, w, persona, ["read"])).status_code == 404


def test_convert_with_an_idempotency_key(mobility_world, session, api_world, client: Client):
    w, reg = mobility_world, api_world["ready"]
    body = {"rule_id": str(api_world["rules"]["es"].id), "government_org_id": str(w.net.orgs["spain"].id),
            "note": "Interviewed"}
    reader = token(session, w, "caseworker_cr", ["read"])
    assert client.post(f"/api/v1/mobility/registrations/{reg.id}/convert", json=body,
                       headers=reader).status_code == 404  # a read-only token may not act on it
    headers = {**token(session, w, "caseworker_cr", ["read", "write"]), "Idempotency-Key": "convert-rosa-1"}
    first = client.post(f"/api/v1/mobility/registrations/{reg.id}/convert", json=body, headers=headers)
    assert first.status_code == 201, first.text
    again = client.post(f"/api/v1/mobility/registrations/{reg.id}/convert", json=body, headers=headers)
    assert again.status_code == 201 and again.content == first.content
    assert again.headers.get("Idempotent-Replayed") == "true"
    out = first.json()
    assert out["status"] == "referred" and out["purpose"] == "resettlement"
    assert session.scalar(select(func.count()).select_from(Case)) == 1
    assert session.scalar(select(func.count()).select_from(Referral)) == 1
    # Without the key, a second conversion is refused, naming the field.
    refused = client.post(f"/api/v1/mobility/registrations/{reg.id}/convert", json=body,
                          headers={k: v for k, v in headers.items() if k != "Idempotency-Key"})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "status"


def test_convert_refusals_are_problems(mobility_world, session, api_world, client: Client):
    w, reg = mobility_world, api_world["ready"]
    headers = token(session, w, "caseworker_cr", ["read", "write"])
    germany = client.post(f"/api/v1/mobility/registrations/{reg.id}/convert", headers=headers,
                          json={"rule_id": str(api_world["rules"]["de"].id),
                                "government_org_id": str(w.net.orgs["germany"].id)})
    assert germany.status_code == 422 and germany.json()["errors"][0]["field"] == "government_org_id"
    assert session.scalar(select(func.count()).select_from(Case)) == 0
    unknown = client.post(f"/api/v1/mobility/registrations/{reg.id}/convert", headers=headers,
                          json={"rule_id": str(api_world["rules"]["es"].id),
                                "government_org_id": str(w.net.orgs["spain"].id), "extra": 1})
    assert unknown.status_code == 422
    other = client.post(f"/api/v1/mobility/registrations/{api_world['other'].id}/convert", headers=headers,
                        json={"rule_id": str(api_world["rules"]["es"].id),
                              "government_org_id": str(w.net.orgs["spain"].id)})
    assert other.status_code == 404


def test_the_dashboard(mobility_world, session, api_world, client: Client):
    w = mobility_world
    got = client.get("/api/v1/mobility/dashboard", headers=token(session, w, "analyst_cr", ["read"]))
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["offices"] == ["cr"] and body["totals"]["registrations"] == 2 and len(body["weeks"]) == 26
    secretariat = token(session, w, "admin_secretariat", ["read"])
    assert client.get("/api/v1/mobility/dashboard", headers=secretariat).json()["totals"]["registrations"] == 3
    assert client.get("/api/v1/mobility/dashboard?office=co", headers=secretariat).json()["offices"] == ["co"]
    assert client.get("/api/v1/mobility/dashboard?office=co",
                      headers=token(session, w, "caseworker_cr", ["read"])).status_code == 404
    assert client.get("/api/v1/mobility/dashboard",
                      headers=token(session, w, "minister_spain", ["read"])).status_code == 403

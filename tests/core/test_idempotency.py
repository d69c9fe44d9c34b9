"""Idempotency-Key on POSTs of the JSON API (the UnitOfWorkRoute and rdn.core.idempotency)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from rdn.core import idempotency
from rdn.core.idempotency import IdempotencyKey
from rdn.core.identity import ApiToken
from rdn.core.tenancy import Organization, Role
from tests.factories import api_token, make_person

URL = "/api/v1/organizations"
NORWAY = {"name": "Norway", "short_name": "norway", "kind": "government", "country": "NO"}
ICELAND = {"name": "Iceland", "short_name": "iceland", "kind": "government", "country": "IS"}


@pytest.fixture
def admin_auth(session, network) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return api_token(session, network.admin_secretariat, network.orgs["secretariat"], ["read", "write", "admin"])


def post(client, auth: dict[str, str], key: str | bytes | None, body: dict | bytes):  # type: ignore[no-untyped-def,type-arg]
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {**auth, "Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key  # type: ignore[assignment]
    return client.post(URL, content=content, headers=headers)


def orgs_named(session, short_name: str) -> int:  # type: ignore[no-untyped-def]
    session.expire_all()
    return session.scalar(select(func.count()).select_from(Organization).where(Organization.short_name == short_name))


def keys(session) -> list[IdempotencyKey]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return list(session.scalars(select(IdempotencyKey)))


def token_scope(session, user) -> str:  # type: ignore[no-untyped-def]
    """Keys belong to the credential: the scope of the user's (newest) API token."""
    token = session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)
                            .order_by(ApiToken.created_at.desc())).first()
    return f"token:{token.id}"


def assert_names_the_header(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 422
    assert "Idempotency-Key" in problem["detail"]
    assert [e["field"] for e in problem["errors"]] == ["header.Idempotency-Key"]


def test_same_key_and_body_replays_the_first_response(client, session, admin_auth, network):
    first = post(client, admin_auth, "create-norway-1", NORWAY)
    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    assert first.json()["short_name"] == "norway"

    again = post(client, admin_auth, "create-norway-1", NORWAY)
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert again.headers["content-type"] == first.headers["content-type"]
    assert orgs_named(session, "norway") == 1

    [row] = keys(session)
    assert row.scope == token_scope(session, network.admin_secretariat)
    assert row.key == "create-norway-1"
    assert row.status == "done"
    assert row.response_status == 201
    assert b"norway" not in bytes(row.response_body), "stored responses are sealed"

    # Without a key the same body is processed again (and refused: the short name is taken).
    third = post(client, admin_auth, None, NORWAY)
    assert third.status_code == 422
    assert "short_name" in third.text
    assert orgs_named(session, "norway") == 1


def test_same_key_with_a_different_body_is_refused(client, session, admin_auth):
    assert post(client, admin_auth, "k-mismatch", NORWAY).status_code == 201
    response = post(client, admin_auth, "k-mismatch", ICELAND)
    assert_names_the_header(response)
    assert response.json()["type"] == "/problems/idempotency-key-reused"
    assert orgs_named(session, "iceland") == 0
    # The same key still replays the original request.
    assert post(client, admin_auth, "k-mismatch", NORWAY).headers["Idempotent-Replayed"] == "true"


def test_a_request_in_progress_under_the_key_is_409(client, session, admin_auth, network):
    body = json.dumps(NORWAY).encode()
    outcome = idempotency.begin(token_scope(session, network.admin_secretariat), "k-busy",
                                idempotency.request_hash("POST", URL, body))
    assert outcome.action == "proceed"

    response = post(client, admin_auth, "k-busy", body)
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "Idempotency-Key" in response.json()["detail"]
    assert orgs_named(session, "norway") == 0

    # Once the first request is done, the stored response is replayed.
    idempotency.complete(session, outcome.row_id, 201, b'{"stored": true}', "application/json")
    session.commit()
    response = post(client, admin_auth, "k-busy", body)
    assert response.status_code == 201
    assert response.content == b'{"stored": true}'
    assert response.headers["Idempotent-Replayed"] == "true"
    assert orgs_named(session, "norway") == 0


@pytest.mark.parametrize("bad", [
    {"name": "Norway", "short_name": "norway", "kind": "government"},  # the service refuses: no country
    {"short_name": "norway", "kind": "government", "country": "NO"},  # the schema refuses: no name
    {**NORWAY, "kind": "kingdom"},
])
def test_a_failed_request_releases_the_key(client, session, admin_auth, bad):
    refused = post(client, admin_auth, "k-retry", bad)
    assert refused.status_code == 422
    assert "Idempotent-Replayed" not in refused.headers
    assert keys(session) == []

    corrected = post(client, admin_auth, "k-retry", NORWAY)
    assert corrected.status_code == 201, corrected.text
    assert "Idempotent-Replayed" not in corrected.headers
    assert orgs_named(session, "norway") == 1
    assert post(client, admin_auth, "k-retry", NORWAY).headers["Idempotent-Replayed"] == "true"


@pytest.mark.parametrize("key", ["k" * 201, "clé-unique".encode(), "tab\there"])
def test_an_invalid_key_is_refused_naming_the_header(client, session, admin_auth, key):
    response = post(client, admin_auth, key, NORWAY)
    assert_names_the_header(response)
    assert orgs_named(session, "norway") == 0
    assert keys(session) == []


def test_a_key_of_200_characters_is_accepted(client, session, admin_auth):
    response = post(client, admin_auth, "k" * 200, NORWAY)
    assert response.status_code == 201
    assert post(client, admin_auth, "k" * 200, NORWAY).headers["Idempotent-Replayed"] == "true"


def test_another_user_with_the_same_key_gets_their_own_processing(client, session, admin_auth, network):
    second_admin, _ = make_person(session, "second_admin@rdn.test", network.orgs["secretariat"], [Role.admin])
    session.commit()
    other_auth = api_token(session, second_admin, network.orgs["secretariat"], ["read", "write", "admin"])

    first = post(client, admin_auth, "shared-key", NORWAY)
    assert first.status_code == 201

    # The same key and body from another user is processed for them, not replayed from the first user's
    # (here it is refused, since the short name is now taken).
    response = post(client, other_auth, "shared-key", NORWAY)
    assert response.status_code == 422
    assert "Idempotent-Replayed" not in response.headers
    assert "short_name" in response.text

    # Nor is a different body under that key string a mismatch: the first user's key is not theirs.
    response = post(client, other_auth, "shared-key", ICELAND)
    assert response.status_code == 201, response.text
    assert "Idempotent-Replayed" not in response.headers
    assert orgs_named(session, "iceland") == 1
    assert orgs_named(session, "norway") == 1

    rows = {row.scope: row for row in keys(session) if row.key == "shared-key"}
    assert set(rows) == {token_scope(session, network.admin_secretariat), token_scope(session, second_admin)}
    assert all(row.status == "done" and row.response_status == 201 for row in rows.values())
    assert post(client, admin_auth, "shared-key", NORWAY).content == first.content


def test_another_credential_of_the_same_person_cannot_replay_a_response(client, session, admin_auth, network):
    """A read-only token reusing an admin token's key and body is processed as itself (and refused), not
    answered with the admin's stored response (which could carry a secret shown once)."""
    webhook = {"url": "https://example.org/hook", "event_types": ["*"]}
    first = client.post("/api/v1/webhooks", json=webhook, headers={**admin_auth, "Idempotency-Key": "hook-1"})
    assert first.status_code == 201 and first.json()["secret"].startswith("whsec_")
    reader = api_token(session, network.admin_secretariat, network.orgs["secretariat"], ["read"])
    second = client.post("/api/v1/webhooks", json=webhook, headers={**reader, "Idempotency-Key": "hook-1"})
    assert second.status_code == 403
    assert "whsec_" not in second.text and "Idempotent-Replayed" not in second.headers

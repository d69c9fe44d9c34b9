"""Envelope encryption of sensitive fields: binding, tampering, per-organization keys, master key rotation."""

from __future__ import annotations

import base64
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from rdn import db
from rdn.config import load_settings, set_settings
from rdn.core import audit, clock, crypto, idempotency, identity, webhooks
from rdn.core.crypto import CryptoError, DataKey, Keyring, master_key_id, new_master_key
from rdn.core.idempotency import IdempotencyKey
from rdn.core.identity import User
from rdn.core.tenancy import OrgKind, Role
from rdn.core.webhooks import WebhookEndpoint
from tests.conftest import ON_POSTGRES, rdn_environ, run_rdn
from tests.factories import make_org, make_person

# Helpers -----------------------------------------------------------------------------------------------------


@contextmanager
def using(database_url: str, smtp_port: int, **extra: str) -> Iterator[None]:
    """Switch the process settings (the original ones come back afterwards, even on failure)."""
    from rdn.config import get_settings

    original = get_settings()
    set_settings(load_settings(environ=rdn_environ(database_url, smtp_port, **extra)))
    try:
        yield
    finally:
        set_settings(original)



def _user_with_totp(session: Session, email: str, org, secret: str) -> User:  # type: ignore[no-untyped-def]
    user, _ = make_person(session, email, org, [Role.officer], mfa=False)
    identity.confirm_totp(session, user, secret)
    session.flush()
    return user


def _canary(label: str) -> str:
    # Base32 letters only, so it is also a valid TOTP secret.
    tail = "".join("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"[b % 32] for b in os.urandom(16))
    return f"CANARY{label.upper()}{tail}"



def _squash(s: str) -> str:
    return " ".join(s.split())


def _data_key_of(blob: bytes) -> uuid.UUID:
    return uuid.UUID(bytes=bytes(blob[1:17]))


# Sealing and opening -----------------------------------------------------------------------------------------


def test_round_trip_through_sensitive_fields(session):
    org = make_org(session, "canada", "Canada")
    user = _user_with_totp(session, "officer@rdn.test", org, "JBSWY3DPEHPK3PXPJBSWY3DP")
    endpoint, secret = webhooks.create_endpoint(session, org_id=org.id, url="https://receiver.example/hook")
    session.commit()

    assert user.totp_secret is not None and b"JBSWY3DP" not in bytes(user.totp_secret)
    assert bytes(user.totp_secret)[:1] == crypto.FORMAT_V1
    assert secret.encode() not in bytes(endpoint.secret)

    with db.new_session() as other:  # a new session: its own keyring, values read back from the database
        stored_user = other.get(User, user.id)
        assert identity.get_totp_secret(other, stored_user) == "JBSWY3DPEHPK3PXPJBSWY3DP"
        stored_endpoint = other.get(WebhookEndpoint, endpoint.id)
        assert stored_endpoint.unseal("secret", keyring=Keyring.of(other)) == secret

    # Any JSON value survives; None stays None (no ciphertext stored).
    ring = Keyring.of(session)
    endpoint.seal("secret", {"list": [1, "ü", None], "ok": True}, keyring=ring)
    assert endpoint.unseal("secret", keyring=ring) == {"list": [1, "ü", None], "ok": True}
    user.seal("totp_secret", None, keyring=ring)
    assert user.totp_secret is None and user.unseal("totp_secret", keyring=ring) is None

    # Only sealed columns can be sealed.
    with pytest.raises(CryptoError, match="not a sealed column"):
        user.seal("email", "x@rdn.test", keyring=ring)


def test_a_ciphertext_moved_to_another_record_or_field_fails(session):
    org = make_org(session, "canada", "Canada")
    alice = _user_with_totp(session, "alice@rdn.test", org, "AAAAAAAAAAAAAAAAAAAAAAAA")
    bob = _user_with_totp(session, "bob@rdn.test", org, "BBBBBBBBBBBBBBBBBBBBBBBB")
    first, _ = webhooks.create_endpoint(session, org_id=org.id, url="https://one.example/hook")
    second, _ = webhooks.create_endpoint(session, org_id=org.id, url="https://two.example/hook")
    session.commit()
    # Same owner, same data key: only the associated data tells the records apart.
    assert _data_key_of(alice.totp_secret) == _data_key_of(bob.totp_secret)
    assert _data_key_of(first.secret) == _data_key_of(second.secret)

    bob.totp_secret = alice.totp_secret  # another record, same field
    second.secret = first.secret  # another record, same field
    first.secret = alice.totp_secret  # another table and field
    session.commit()

    with db.new_session() as other:
        ring = Keyring.of(other)
        assert identity.get_totp_secret(other, other.get(User, alice.id)) == "AAAAAAAAAAAAAAAAAAAAAAAA"
        with pytest.raises(CryptoError, match="failed to open"):
            identity.get_totp_secret(other, other.get(User, bob.id))
        with pytest.raises(CryptoError, match="failed to open"):
            other.get(WebhookEndpoint, second.id).unseal("secret", keyring=ring)
        with pytest.raises(CryptoError, match="failed to open"):
            other.get(WebhookEndpoint, first.id).unseal("secret", keyring=ring)

        # The same record, another field name.
        blob = other.get(User, alice.id).totp_secret
        assert ring.open(blob, f"users|{alice.id}|totp_secret") == "AAAAAAAAAAAAAAAAAAAAAAAA"
        for aad in (f"users|{alice.id}|password_hash", f"users|{bob.id}|totp_secret",
                    f"webhook_endpoints|{alice.id}|totp_secret"):
            with pytest.raises(CryptoError):
                ring.open(blob, aad)


@pytest.mark.parametrize(("position", "message"), [
    (0, "not a sealed value"),  # format byte
    (5, "unknown data key"),  # data key id
    (20, "failed to open"),  # nonce
    (30, "failed to open"),  # ciphertext
    (-1, "failed to open"),  # tag
])
def test_a_flipped_byte_fails(session, position, message):
    org = make_org(session, "canada", "Canada")
    user = _user_with_totp(session, "alice@rdn.test", org, "AAAAAAAAAAAAAAAAAAAAAAAA")
    tampered = bytearray(user.totp_secret)
    tampered[position] ^= 0x01
    user.totp_secret = bytes(tampered)
    session.commit()
    with db.new_session() as other, pytest.raises(CryptoError, match=message):
        identity.get_totp_secret(other, other.get(User, user.id))


def test_truncated_or_empty_values_fail(session):
    org = make_org(session, "canada", "Canada")
    user = _user_with_totp(session, "alice@rdn.test", org, "AAAAAAAAAAAAAAAAAAAAAAAA")
    ring = Keyring.of(session)
    for blob in (b"", bytes(user.totp_secret)[:40], b"plain text"):
        with pytest.raises(CryptoError):
            ring.open(blob, f"users|{user.id}|totp_secret")


def test_each_organization_has_its_own_data_key(session):
    canada = make_org(session, "canada", "Canada")
    spain = make_org(session, "spain", "Spain", country="ES")
    ngo = make_org(session, "helpers", "Helpers", kind=OrgKind.ngo, country=None)
    endpoints = {org.id: webhooks.create_endpoint(session, org_id=org.id, url="https://r.example/h")[0]
                 for org in (canada, spain, ngo)}
    user = _user_with_totp(session, "alice@rdn.test", canada, "AAAAAAAAAAAAAAAAAAAAAAAA")
    session.commit()

    used = {}
    for org_id, endpoint in endpoints.items():
        dk = session.get(DataKey, _data_key_of(endpoint.secret))
        assert dk.owner == str(org_id) and dk.active
        used[org_id] = dk.id
    assert len(set(used.values())) == 3
    system_key = session.get(DataKey, _data_key_of(user.totp_secret))
    assert system_key.owner == crypto.SYSTEM_OWNER
    assert system_key.id not in used.values()
    wrapped = session.scalars(select(DataKey.wrapped)).all()
    assert len(set(wrapped)) == len(wrapped) == 4
    # One active key per owner.
    rows = session.execute(select(DataKey.owner, func.count()).where(DataKey.active.is_(True))
                           .group_by(DataKey.owner)).all()
    assert sorted(count for _, count in rows) == [1, 1, 1, 1]

    # A new data key for an owner: new writes use it, old values still open.
    old_blob = endpoints[canada.id].secret
    new_key, _ = crypto.create_data_key(session, str(canada.id))
    assert new_key.version == 2
    with db.new_session() as other:
        fresh, _ = webhooks.create_endpoint(other, org_id=canada.id, url="https://r.example/new")
        assert _data_key_of(fresh.secret) == new_key.id
        old = other.get(WebhookEndpoint, endpoints[canada.id].id)
        assert old.secret == old_blob
        assert old.unseal("secret", keyring=Keyring.of(other)).startswith(webhooks.SECRET_PREFIX)
        other.rollback()


# Master key rotation ------------------------------------------------------------------------------------------


def test_master_key_rotation(session, database_url, smtp_server):
    key_a, key_b = new_master_key(), new_master_key()
    kid_a, kid_b = master_key_id(base64.b64decode(key_a)), master_key_id(base64.b64decode(key_b))
    port = smtp_server[0]

    with using(database_url, port, RDN_MASTER_KEY=key_a):
        canada = make_org(session, "canada", "Canada")
        spain = make_org(session, "spain", "Spain", country="ES")
        user = _user_with_totp(session, "alice@rdn.test", canada, "AAAAAAAAAAAAAAAAAAAAAAAA")
        ep1, secret1 = webhooks.create_endpoint(session, org_id=canada.id, url="https://r.example/1")
        ep2, secret2 = webhooks.create_endpoint(session, org_id=spain.id, url="https://r.example/2")
        session.commit()
        blobs = (bytes(user.totp_secret), bytes(ep1.secret), bytes(ep2.secret))

    def read_all() -> tuple[str, str, str]:
        with db.new_session() as s:
            ring = Keyring.of(s)
            return (identity.get_totp_secret(s, s.get(User, user.id)),
                    s.get(WebhookEndpoint, ep1.id).unseal("secret", keyring=ring),
                    s.get(WebhookEndpoint, ep2.id).unseal("secret", keyring=ring))

    expected = ("AAAAAAAAAAAAAAAAAAAAAAAA", secret1, secret2)
    with db.new_session() as s:
        assert set(s.scalars(select(DataKey.master_key_id))) == {kid_a}
        wrapped_before = dict(s.execute(select(DataKey.id, DataKey.wrapped)).all())
    assert len(wrapped_before) == 3  # canada, spain, system

    # Key B alone cannot read what A wrapped, and says what to do.
    with using(database_url, port, RDN_MASTER_KEY=key_b), \
            pytest.raises(CryptoError, match="RDN_PREVIOUS_MASTER_KEYS"):
        read_all()

    # B current, A previous: everything reads; the re-wrap moves every data key to B.
    with using(database_url, port, RDN_MASTER_KEY=key_b, RDN_PREVIOUS_MASTER_KEYS=key_a):
        assert read_all() == expected
        progress = list(crypto.rewrap_batches(db.new_session, batch=2))
        assert progress[0] == (0, 3)
        assert progress[-1] == (3, 3)
        assert [done for done, _ in progress] == [0, 2, 3]
        assert read_all() == expected
        assert list(crypto.rewrap_batches(db.new_session)) == [(0, 0)]  # nothing left to do

    with db.new_session() as s:
        keys = s.scalars(select(DataKey)).all()
        assert {k.master_key_id for k in keys} == {kid_b}
        assert all(k.rewrapped_at is not None for k in keys)
        assert all(k.wrapped != wrapped_before[k.id] for k in keys)
        # Only data keys were re-wrapped: the sealed values are untouched.
        assert bytes(s.get(User, user.id).totp_secret) == blobs[0]
        assert bytes(s.get(WebhookEndpoint, ep1.id).secret) == blobs[1]

    # A is gone: everything still reads under B alone; A alone reads nothing any more.
    with using(database_url, port, RDN_MASTER_KEY=key_b):
        assert read_all() == expected
    with using(database_url, port, RDN_MASTER_KEY=key_a), pytest.raises(CryptoError):
        read_all()


# The canary --------------------------------------------------------------------------------------------------


def test_canaries_never_reach_the_database_in_clear(committed_db, tmp_path):
    planted: list[tuple[type, uuid.UUID, str, str]] = []  # model, id, field, canary
    also_secret: list[str] = []  # canaries inside a sealed value, looked for in clear as well
    ciphertexts: list[bytes] = []

    with db.transaction() as s:
        org = make_org(s, "canada", "Canada")
        agency = make_org(s, "agency", "Agency", kind=OrgKind.agency, country=None)
        ring = Keyring.of(s)

        def fill_users() -> None:
            for n in range(2):
                canary = _canary(f"totp{n}")
                user = _user_with_totp(s, f"person{n}@rdn.test", org, canary)
                planted.append((User, user.id, "totp_secret", canary))

        def fill_webhooks() -> None:
            for n, owner in enumerate((org, agency)):
                endpoint, generated = webhooks.create_endpoint(s, org_id=owner.id, url=f"https://r.example/{n}")
                # The secret the platform generated is a canary too.
                planted.append((WebhookEndpoint, endpoint.id, "secret", generated))
                if n == 0:
                    canary = "whsec_" + _canary("webhook")
                    endpoint.seal("secret", canary, keyring=ring)
                    planted[-1] = (WebhookEndpoint, endpoint.id, "secret", canary)

        def fill_idempotency() -> None:
            # Stored API responses can carry secrets shown once (a webhook's signing secret).
            for n in range(2):
                row = IdempotencyKey(id=uuid.uuid4(), scope=f"token:{uuid.uuid4()}", key=f"key-{n}",
                                     request_hash="0" * 64, status="in_progress", locked_until=clock.now())
                s.add(row)
                s.flush()
                inner = _canary(f"idem{n}")
                body = ('{"secret": "' + inner + '"}').encode()
                idempotency.complete(s, row.id, 201, body, "application/json")
                planted.append((IdempotencyKey, row.id, "response_body", base64.b64encode(body).decode()))
                also_secret.append(inner)

        def fill_contact_methods() -> None:
            # Officials' phone numbers and addresses for the red phone.
            from rdn.redphone.models import ContactKind, ContactMethod

            owner = _user_with_totp(s, "reachable@rdn.test", org, "BBBBBBBBBBBBBBBBBBBBBBBB")
            for n, kind in enumerate((ContactKind.email, ContactKind.sms)):
                canary = _canary(f"contact{n}")
                method = ContactMethod(id=uuid.uuid4(), user_id=owner.id, kind=kind, hint="•••", active=True)
                method.seal("address", canary, keyring=ring)
                s.add(method)
                planted.append((ContactMethod, method.id, "address", canary))

        case_holder: dict[str, Any] = {}

        def open_case() -> Any:
            # A case of the agency, written through the cases service as a caseworker who just stepped up.
            if "case" not in case_holder:
                import dataclasses

                from rdn.cases import service as cases
                from rdn.cases.policy import access_case

                worker = make_person(s, "caseworker@agency.test", agency, [Role.caseworker])[0]
                p = identity.principal_for(s, worker, org_id=agency.id, via="session")
                p = dataclasses.replace(p, mfa_at=clock.now())
                case = cases.create_case(s, actor=p, case={
                    "current_country": "PK", "category_primary": "SVT", "category_secondary": "MED",
                    "processing_priority": "urgent", "submission_priority": "urgent"}, members=[
                    {"relationship": "principal", "given_name": "Canary", "family_name": "Household", "sex": "female",
                     "date_of_birth": "1990", "nationality": "AF"}])
                case_holder.update(case=case, principal=p, access=access_case(s, p, case.id), cases=cases)
            return case_holder

        def fill_case_section(section: str) -> Callable[[], None]:
            def fill() -> None:
                from rdn.cases.models import Case

                h = open_case()
                canary = _canary(f"case-{section}")
                value = {"narrative": canary}
                if section == "medical":
                    value.update(diagnosis=_canary("diagnosis"), treatment_unavailable=True, prognosis="",
                                 informed_consent=True)
                    also_secret.append(value["diagnosis"])
                h["cases"].write_sensitive(s, actor=h["principal"], access=h["access"], section=section, value=value)
                expected = h["cases"].clean_sensitive(h["cases"].Section(section), value)
                planted.append((Case, h["case"].id, section, expected))
                also_secret.append(canary)

            return fill

        def fill_confidential_notes() -> None:
            from rdn.cases.models import ConfidentialNote

            h = open_case()
            member = h["cases"].members_of(s, h["case"])[0]
            for n in range(2):
                canary = _canary(f"confidential{n}")
                note = h["cases"].add_confidential_note(s, actor=h["principal"], access=h["access"], member=member,
                                                        body=canary)
                planted.append((ConfidentialNote, note.id, "body", canary))

        def fill_registration() -> None:
            # A Safe Mobility registration made through the public service: names and contact sealed, and no
            # trace of them in the clear columns, the keyed hashes, the history or the audit log.
            from rdn.mobility import registration, sealed
            from rdn.mobility.models import Office, Registration

            office_org = make_org(s, "smo", "Safe Mobility Office", kind=OrgKind.mobility_office, country="CR")
            office = Office(org_id=office_org.id, slug="cr", country="CR", name="Safe Mobility Office",
                            nationalities=["VE"], timezone="America/Costa_Rica")
            s.add(office)
            s.flush()
            letters = str.maketrans("234567", "BCDEFG")  # names are letters only
            given, family = _canary("given").translate(letters), _canary("family").translate(letters)
            email = _canary("mail") + "@example.org"
            made = registration.register(s, office=office, ip="203.0.113.9", data={
                "given_name": given, "family_name": family, "birth_date": "1990-05-17", "sex": "f",
                "nationality": "VE", "arrived_on": "2023-01-10", "email": email, "consent_screening": True,
                "consent_contact": True, "language": "es"})
            row = made.registration
            planted.append((Registration, row.id, "identity", sealed.identity_of(s, row)))
            planted.append((Registration, row.id, "contact", sealed.contact_of(s, row)))
            also_secret.extend([given, family, email])

        fillers = {("users", "totp_secret"): fill_users, ("webhook_endpoints", "secret"): fill_webhooks,
                   ("idempotency_keys", "response_body"): fill_idempotency,
                   ("contact_methods", "address"): fill_contact_methods,
                   ("case_confidential_notes", "body"): fill_confidential_notes,
                   ("mobility_registrations", "identity"): fill_registration,
                   ("mobility_registrations", "contact"): lambda: None,  # planted with the identity
                   **{("cases", section): fill_case_section(section)
                      for section in ("protection", "medical", "sogi", "svt")}}
        columns = crypto.sensitive_columns()
        missing = sorted(set(columns) - set(fillers))
        if missing:
            pytest.fail(f"sealed columns without a canary in this test: {missing}")
        for column in columns:
            fillers[column]()
        s.flush()
        for model, row_id, field, _ in planted:
            ciphertexts.append(bytes(getattr(s.get(model, row_id), field)))
        # Audit something afterwards too, so the log has entries about these objects.
        audit.record(s, action="test.canary", actor=audit.SYSTEM, details={"fields": [c for _, c in columns]})

    canaries = [c for *_, c in planted if isinstance(c, str)] + also_secret
    assert len(set(canaries)) == len(canaries) == 20

    if ON_POSTGRES:
        dump = subprocess.run(["pg_dump", "--no-owner", "-d", committed_db], capture_output=True, timeout=120,
                              check=True).stdout
        assert b"CREATE TABLE public.users" in dump
        raw = dump
        stored_forms = [c.hex().encode() for c in ciphertexts]  # bytea is dumped as hex
    else:
        path = Path(make_url(committed_db).database)
        assert path.exists()
        raw = b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
        stored_forms = ciphertexts
    # The dump holds what was written (so the search below looked in the right place)...
    for form in stored_forms:
        assert form in raw
    # ...and no canary, in text or in hex.
    for canary in canaries:
        assert canary.encode() not in raw, f"canary {canary} found in clear in the database"
        assert canary.encode().hex().encode() not in raw, f"canary {canary} found hex-encoded in the database"
        assert canary.encode().hex().upper().encode() not in raw

    with db.transaction() as s:
        ring = Keyring.of(s)
        for model, row_id, field, canary in planted:
            assert s.get(model, row_id).unseal(field, keyring=ring) == canary


# The commands ------------------------------------------------------------------------------------------------


def test_rdn_keys_status_and_rotate(committed_db, smtp_server):
    port = smtp_server[0]
    key_a, key_b = new_master_key(), new_master_key()
    kid_a, kid_b = master_key_id(base64.b64decode(key_a)), master_key_id(base64.b64decode(key_b))
    env_a = rdn_environ(committed_db, port, RDN_MASTER_KEY=key_a)
    env_b = rdn_environ(committed_db, port, RDN_MASTER_KEY=key_b)
    env_b_a = rdn_environ(committed_db, port, RDN_MASTER_KEY=key_b, RDN_PREVIOUS_MASTER_KEYS=key_a)

    with using(committed_db, port, RDN_MASTER_KEY=key_a), db.transaction() as s:
        org = make_org(s, "canada", "Canada")
        user = _user_with_totp(s, "alice@rdn.test", org, "AAAAAAAAAAAAAAAAAAAAAAAA")
        endpoint, secret = webhooks.create_endpoint(s, org_id=org.id, url="https://r.example/h")
        user_id, endpoint_id = user.id, endpoint.id

    status = run_rdn(["keys", "status"], env_a)
    assert status.returncode == 0, status.stderr
    assert f"{kid_a}: 2 data keys (current)" in _squash(status.stdout)

    # Without the old key in RDN_PREVIOUS_MASTER_KEYS the rotation cannot unwrap, and changes nothing.
    refused = run_rdn(["keys", "rotate"], env_b)
    assert refused.returncode != 0
    assert "RDN_PREVIOUS_MASTER_KEYS" in _squash(refused.stderr + refused.stdout)
    assert f"{kid_a}: 2 data keys (current)" in _squash(run_rdn(["keys", "status"], env_a).stdout)

    rotated = run_rdn(["keys", "rotate"], env_b_a)
    assert rotated.returncode == 0, rotated.stderr
    assert f"Re-wrapped 2 data keys under master key {kid_b}; started 0 new data keys" in _squash(rotated.stdout)

    after = _squash(run_rdn(["keys", "status"], env_b).stdout)
    assert f"{kid_b}: 2 data keys (current)" in after
    assert kid_a not in after

    def read(session: Session) -> tuple[str, str]:
        ring = Keyring.of(session)
        return (identity.get_totp_secret(session, session.get(User, user_id)),
                session.get(WebhookEndpoint, endpoint_id).unseal("secret", keyring=ring))

    with using(committed_db, port, RDN_MASTER_KEY=key_b), db.transaction() as s:
        assert read(s) == ("AAAAAAAAAAAAAAAAAAAAAAAA", secret)
        entry = s.scalars(select(audit.AuditEntry).where(audit.AuditEntry.action == "keys.rotate")).one()
        assert entry.details == {"rewrapped": 2, "new_data_keys": 0}
        assert entry.actor_label.startswith("cli:")
        assert audit.verify(s).ok

    # --data-keys starts a new data key per owner; old values still read.
    more = run_rdn(["keys", "rotate", "--data-keys"], env_b)
    assert more.returncode == 0, more.stderr
    assert "Re-wrapped 0 data keys" in _squash(more.stdout) and "started 2 new data keys" in _squash(more.stdout)
    assert f"{kid_b}: 4 data keys (current)" in _squash(run_rdn(["keys", "status"], env_b).stdout)
    with using(committed_db, port, RDN_MASTER_KEY=key_b), db.transaction() as s:
        assert read(s) == ("AAAAAAAAAAAAAAAAAAAAAAAA", secret)
        active = s.execute(select(DataKey.owner, DataKey.version).where(DataKey.active.is_(True))).all()
        assert sorted(v for _, v in active) == [2, 2]

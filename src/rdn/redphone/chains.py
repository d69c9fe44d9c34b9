"""Contact chains and contact methods: who is paged, in which order, and how they are reached."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from rdn.config import get_settings
from rdn.core import audit, clock, i18n, outbox, webhooks
from rdn.core.audit import Actor
from rdn.core.crypto import Keyring
from rdn.core.errors import ValidationFailed
from rdn.core.i18n import N_
from rdn.core.i18n import gettext as _
from rdn.core.identity import Principal, User
from rdn.core.mail import (
    EmailError,
    build_message,
    check_address,
    message_id_for,
    message_payload,
    send_now_rollback_unsafe,
)
from rdn.core.tenancy import Membership, Organization, OrgKind, Role
from rdn.redphone import sms
from rdn.redphone.models import ChainLevel, ChainMember, ContactChain, ContactKind, ContactMethod

MAX_LEVELS = 10
MAX_REPEATS = 5
VERIFY_MINUTES = 30
VERIFY_ATTEMPTS = 5


# Chains --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LevelSpec:
    name: str
    wait_minutes: int
    user_ids: list[uuid.UUID]


def chain_of(session: Session, org_id: uuid.UUID) -> ContactChain | None:
    return session.scalars(select(ContactChain).where(ContactChain.org_id == org_id)).first()


def levels_of(session: Session, chain: ContactChain | None) -> list[tuple[ChainLevel, list[User]]]:
    if chain is None:
        return []
    levels = session.scalars(select(ChainLevel).where(ChainLevel.chain_id == chain.id)
                             .order_by(ChainLevel.position)).all()
    result = []
    for level in levels:
        people = session.scalars(select(User).join(ChainMember, ChainMember.user_id == User.id)
                                 .where(ChainMember.level_id == level.id).order_by(ChainMember.position)).all()
        result.append((level, list(people)))
    return result


def eligible_people(session: Session, org_id: uuid.UUID) -> list[User]:
    """People who can stand in a government's chain: its active staff."""
    return list(session.scalars(
        select(User).join(Membership, Membership.user_id == User.id)
        .where(Membership.org_id == org_id, Membership.role != Role.sponsor, User.active.is_(True))
        .distinct().order_by(User.full_name)
    ))


def set_chain(session: Session, *, actor: Principal | Actor, org: Organization, levels: list[LevelSpec],
              repeat_count: int) -> ContactChain:
    """Replace a government's chain. Live escalations keep the copy they started with."""
    if OrgKind(org.kind) != OrgKind.government:
        raise ValidationFailed("org", _("only member governments keep a contact chain"))
    if not 0 <= repeat_count <= MAX_REPEATS:
        raise ValidationFailed("repeat_count", _("must be between 0 and %(max)s", max=MAX_REPEATS))
    if not 1 <= len(levels) <= MAX_LEVELS:
        raise ValidationFailed("levels", _("a chain has 1 to %(max)s levels", max=MAX_LEVELS))
    staff = {u.id for u in eligible_people(session, org.id)}
    for i, spec in enumerate(levels):
        if not 1 <= len(spec.name.strip()) <= 80:
            raise ValidationFailed(f"levels.{i}.name", _("must be 1 to 80 characters"))
        if not 1 <= spec.wait_minutes <= 60:
            raise ValidationFailed(f"levels.{i}.wait_minutes", _("must be between 1 and 60 minutes"))
        strangers = [u for u in spec.user_ids if u not in staff]
        if strangers:
            raise ValidationFailed(f"levels.{i}.user_ids", _("only this government's own staff can be in its chain"))
        if len(set(spec.user_ids)) != len(spec.user_ids):
            raise ValidationFailed(f"levels.{i}.user_ids", _("a person appears twice in the same level"))
    chain = chain_of(session, org.id)
    if chain is None:
        chain = ContactChain(org_id=org.id)
        session.add(chain)
        session.flush()
    old_levels = session.scalars(select(ChainLevel.id).where(ChainLevel.chain_id == chain.id)).all()
    if old_levels:
        session.execute(delete(ChainMember).where(ChainMember.level_id.in_(old_levels)))
        session.execute(delete(ChainLevel).where(ChainLevel.id.in_(old_levels)))
    for position, spec in enumerate(levels):
        level = ChainLevel(chain_id=chain.id, position=position, name=spec.name.strip(),
                           wait_minutes=spec.wait_minutes)
        session.add(level)
        session.flush()
        for order, user_id in enumerate(spec.user_ids):
            session.add(ChainMember(level_id=level.id, user_id=user_id, position=order))
    chain.repeat_count = repeat_count
    chain.updated_at = clock.now()
    session.flush()
    audit.record(session, action="chain.update", actor=actor, object_type="contact_chain", object_id=chain.id,
                 org_id=org.id, details={"levels": len(levels), "people": sum(len(s.user_ids) for s in levels),
                                         "repeat_count": repeat_count})
    return chain


@dataclass(frozen=True)
class Warning:
    kind: str  # no_chain | empty_level | unreachable
    text: str
    level: int | None = None
    user_id: uuid.UUID | None = None


def chain_warnings(session: Session, org_id: uuid.UUID) -> list[Warning]:
    """What would make paging fail: no chain, an empty level, a person with no verified contact method."""
    chain = chain_of(session, org_id)
    levels = levels_of(session, chain)
    if not levels:
        return [Warning("no_chain", _("This government has no contact chain: nobody would be paged."))]
    warnings = []
    verified = set(session.scalars(
        select(ContactMethod.user_id).where(ContactMethod.active.is_(True), ContactMethod.verified_at.is_not(None))
    ))
    for position, (level, people) in enumerate(levels):
        if not people:
            warnings.append(Warning("empty_level", _("Level %(n)s (%(name)s) has nobody in it.",
                                                     n=position + 1, name=level.name), level=position))
        for person in people:
            if person.id not in verified:
                warnings.append(Warning(
                    "unreachable", _("%(name)s (level %(n)s) has no verified way to be reached.",
                                     name=person.full_name, n=position + 1), level=position, user_id=person.id))
    return warnings


def snapshot(session: Session, org_id: uuid.UUID) -> tuple[dict[str, Any], int]:
    """The chain as it stands now, for a new escalation run (later edits do not change a live run)."""
    chain = chain_of(session, org_id)
    levels = []
    for level, people in levels_of(session, chain):
        levels.append({"name": level.name, "wait_minutes": level.wait_minutes,
                       "people": [{"user_id": str(p.id), "name": p.full_name} for p in people if p.active]})
    return {"levels": levels}, (chain.repeat_count if chain else 0)


@outbox.periodic("redphone-chain-check", timedelta(days=1))
def _daily_chain_check(ctx: outbox.JobContext) -> None:
    """Every day, tell each government's administrators what would make paging fail."""
    from rdn.core.mail import send_email

    session = ctx.session
    for org in session.scalars(select(Organization).where(Organization.kind == OrgKind.government,
                                                          Organization.active.is_(True))):
        warnings = chain_warnings(session, org.id)
        if not warnings:
            continue
        admins = session.scalars(
            select(User).join(Membership, Membership.user_id == User.id)
            .where(Membership.org_id == org.id, Membership.role.in_([Role.admin, Role.senior_official]),
                   User.active.is_(True)).distinct()
        ).all()
        for admin in admins:
            with i18n.using(admin.locale):
                text = _("Hello %(name)s,\n\nRDN's daily check of %(org)s's red phone contact chain found:\n\n%(list)s"
                         "\n\nFix it on the contact chain page: %(link)s",
                         name=admin.full_name, org=org.name, list="\n".join(f"- {w.text}" for w in warnings),
                         link=f"{get_settings().base_url}/chains/{org.id}")
                send_email(session, to=admin.email, subject=_("Red phone: the contact chain needs attention"),
                           text=text, org_id=org.id,
                           dedupe_key=f"chain-check:{org.id}:{admin.id}:{ctx.payload.get('slot')}")


# Contact methods -----------------------------------------------------------------------------------------------

KIND_LABELS = {ContactKind.email: N_("Email"), ContactKind.sms: N_("SMS"),
               ContactKind.webhook: N_("Our government's system")}


def mask(kind: ContactKind, address: str) -> str:
    if kind == ContactKind.email:
        local, _, domain = address.partition("@")
        return f"{local[:1]}•••@{domain}"
    if kind == ContactKind.sms:
        return f"{address[:3]} ••• {address[-3:]}"
    return address[:3] + "•••" if len(address) > 3 else "•••"


def _code_hash(method_id: uuid.UUID, code: str) -> str:
    key = get_settings().secret_key.encode()
    return hmac.new(key, f"rdn-verify:{method_id}:{code}".encode(), hashlib.sha256).hexdigest()


def add_method(session: Session, *, principal: Principal, kind: ContactKind | str, address: str,
               label: str = "") -> ContactMethod:
    """Add a way to reach the caller; it works for paging once verified with the code sent through it."""
    try:
        kind = ContactKind(kind)
    except ValueError:
        raise ValidationFailed("kind", _("must be one of %(values)s",
                                         values=", ".join(k.value for k in ContactKind))) from None
    address = (address or "").strip()
    org_id = None
    if kind == ContactKind.email:
        try:
            check_address(address, "address")
        except EmailError:
            raise ValidationFailed("address", _("is not an email address")) from None
    elif kind == ContactKind.sms:
        try:
            address = sms.normalise_phone(address)
        except sms.SmsError:
            raise ValidationFailed("address", _("a phone number in international form, such as +44 7700 900123")) \
                from None
    else:
        if not 1 <= len(address) <= 200:
            raise ValidationFailed("address", _("your identifier in your government's system (1 to 200 characters)"))
        if principal.org is None or principal.org_kind != OrgKind.government:
            raise ValidationFailed("kind", _("only a government's staff can be reached through its system"))
        org_id = principal.org_id
    count = session.scalar(select(func.count()).select_from(ContactMethod).where(
        ContactMethod.user_id == principal.user_id, ContactMethod.active.is_(True)))
    if (count or 0) >= 10:
        raise ValidationFailed("kind", _("at most 10 contact methods"))
    method = ContactMethod(id=uuid.uuid4(), user_id=principal.user_id, kind=kind, org_id=org_id,
                           hint=mask(kind, address), label=label.strip()[:80], active=True)
    method.seal("address", address, keyring=Keyring.of(session))
    session.add(method)
    session.flush()
    audit.record(session, action="contact.add", actor=principal, object_type="contact_method", object_id=method.id,
                 details={"kind": kind.value})
    send_verification(session, method=method)
    return method


def send_verification(session: Session, *, method: ContactMethod) -> None:
    code = f"{secrets.randbelow(10**6):06d}"
    method.verify_code_hash = _code_hash(method.id, code)
    method.verify_expires_at = clock.now() + timedelta(minutes=VERIFY_MINUTES)
    method.verify_attempts = 0
    outbox.enqueue(session, "redphone.verify", {"method_id": str(method.id), "code": code}, priority=20)


def verify_method(session: Session, *, principal: Principal, method: ContactMethod, code: str) -> bool:
    if method.verified_at is not None:
        return True
    code = "".join(c for c in code if c.isdigit())
    if (method.verify_code_hash is None or method.verify_expires_at is None
            or clock.now() > method.verify_expires_at or method.verify_attempts >= VERIFY_ATTEMPTS):
        raise ValidationFailed("code", _("this code has expired: send a new one"))
    method.verify_attempts += 1
    if not hmac.compare_digest(_code_hash(method.id, code), method.verify_code_hash):
        return False
    method.verified_at = clock.now()
    method.verify_code_hash = None
    audit.record(session, action="contact.verify", actor=principal, object_type="contact_method",
                 object_id=method.id, details={"kind": ContactKind(method.kind).value})
    return True


def remove_method(session: Session, *, principal: Principal, method: ContactMethod) -> None:
    method.active = False
    method.seal("address", None, keyring=Keyring.of(session))
    audit.record(session, action="contact.remove", actor=principal, object_type="contact_method",
                 object_id=method.id)


def verified_methods(session: Session, user_id: uuid.UUID) -> list[ContactMethod]:
    return list(session.scalars(select(ContactMethod).where(
        ContactMethod.user_id == user_id, ContactMethod.active.is_(True), ContactMethod.verified_at.is_not(None))
        .order_by(ContactMethod.created_at)))


def deliver_to_system_rollback_unsafe(session_read: Session, *, org_id: uuid.UUID, event_type: str,
                                      data: dict[str, Any], msg_id: str) -> list[tuple[str, int | str]]:
    """POST an event to every endpoint of a government's own system that takes it; the results per endpoint.
    Reads in ``session_read`` (a short read session), then talks to the outside world."""
    endpoints = [
        (e.url, e.unseal("secret", keyring=Keyring.of(session_read)))
        for e in session_read.scalars(select(webhooks.WebhookEndpoint).where(
            webhooks.WebhookEndpoint.org_id == org_id, webhooks.WebhookEndpoint.active.is_(True)))
        if "*" in e.event_types or event_type in e.event_types
    ]
    session_read.rollback()
    import json

    body = json.dumps({"type": event_type, "timestamp": clock.now().isoformat(), "data": data},
                      separators=(",", ":"), default=str)
    results: list[tuple[str, int | str]] = []
    for url, secret in endpoints:
        try:
            response = webhooks.post_rollback_unsafe(url, secret, msg_id, body)
            results.append((url, response.status_code))
        except Exception as exc:  # reported per endpoint, not raised
            results.append((url, type(exc).__name__))
    return results


@outbox.handler("redphone.verify", max_attempts=6, priority=20)
def _send_verification_code(ctx: outbox.JobContext) -> None:
    with ctx.read() as session:
        method = session.get(ContactMethod, uuid.UUID(ctx.payload["method_id"]))
        if method is None or not method.active or method.verified_at is not None:
            return
        user = session.get(User, method.user_id)
        address = method.unseal("address", keyring=Keyring.of(session))
        kind, org_id, locale = ContactKind(method.kind), method.org_id, user.locale if user else None
        code = ctx.payload["code"]
        with i18n.using(locale):
            text = _("Your RDN verification code is %(code)s. It confirms this contact method for red phone pages.",
                     code=code)
            subject = _("Confirm your contact method for the RDN red phone")
        if kind == ContactKind.webhook:
            results = deliver_to_system_rollback_unsafe(
                session, org_id=org_id, event_type="contact.verification",  # type: ignore[arg-type]
                data={"recipient": address, "code": code}, msg_id=f"msg_verify_{ctx.id.hex}")
            if not any(isinstance(status, int) and 200 <= status < 300 for _url, status in results):
                raise outbox.TransientError(f"no endpoint accepted the code: {results}")
            return
    if kind == ContactKind.email:
        payload = message_payload(message_id=message_id_for(f"verify-{ctx.id.hex}"), to=address, subject=subject,
                                  text=text)
        send_now_rollback_unsafe(build_message(payload))
    else:
        sms.send_rollback_unsafe(address, text, reference=f"verify-{ctx.id.hex}")

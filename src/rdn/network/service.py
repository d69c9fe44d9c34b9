"""Organizations, people and roles: the business rules, with no HTTP and no commits.

Every change is audited in the caller's transaction and announced as an event after commit.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from rdn.config import get_settings
from rdn.core import audit, clock, events, i18n, identity, outbox, policy
from rdn.core.audit import Actor
from rdn.core.crypto import create_data_key, owner_of
from rdn.core.errors import Conflict, ValidationFailed
from rdn.core.i18n import N_
from rdn.core.i18n import gettext as _
from rdn.core.identity import Principal, User
from rdn.core.mail import send_email
from rdn.core.pagination import Page, paginate
from rdn.core.tenancy import Membership, Organization, OrgKind, Role, role_allowed
from rdn.db import dialect_name as db_dialect

SHORT_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,63}$")
INVITE_HOURS = 72
RESET_HOURS = 2

KIND_LABELS = {
    OrgKind.government: N_("Member government"),
    OrgKind.observer: N_("Observer"),
    OrgKind.agency: N_("Referring agency"),
    OrgKind.ngo: N_("NGO"),
    OrgKind.mobility_office: N_("Safe Mobility office"),
    OrgKind.sponsor_group: N_("Sponsor group"),
    OrgKind.secretariat: N_("Secretariat"),
}
ROLE_LABELS = {
    Role.admin: N_("Administrator"),
    Role.senior_official: N_("Senior official"),
    Role.officer: N_("Officer"),
    Role.caseworker: N_("Caseworker"),
    Role.analyst: N_("Analyst"),
    Role.sponsor: N_("Sponsor"),
}


# Organizations -----------------------------------------------------------------------------------------------


def _clean_name(value: str, field: str, *, max_len: int = 200) -> str:
    value = " ".join((value or "").split())
    if not 2 <= len(value) <= max_len:
        raise ValidationFailed(field, _("must be 2 to %(max)s characters", max=max_len))
    return value


def _clean_country(value: str | None, field: str = "country") -> str | None:
    if value is None or value == "":
        return None
    value = value.strip().upper()
    if not i18n.is_country(value):
        raise ValidationFailed(field, _("%(value)s is not an ISO 3166-1 country code", value=value))
    return value


def create_organization(session: Session, *, actor: Principal | Actor, name: str, short_name: str,
                        kind: OrgKind | str, country: str | None = None) -> Organization:
    name = _clean_name(name, "name")
    short_name = (short_name or "").strip().lower()
    if not SHORT_NAME.match(short_name):
        raise ValidationFailed("short_name", _("2 to 40 lowercase letters, digits or hyphens"))
    try:
        kind = OrgKind(kind)
    except ValueError:
        kinds = ", ".join(k.value for k in OrgKind)
        raise ValidationFailed("kind", _("must be one of %(values)s", values=kinds)) from None
    country = _clean_country(country)
    if kind == OrgKind.government and country is None:
        raise ValidationFailed("country", _("a member government needs its country"))
    if session.scalar(select(func.count()).where(Organization.short_name == short_name)):
        raise ValidationFailed("short_name", _("is already used by another organization"))
    org = Organization(name=name, short_name=short_name, kind=kind, country=country, active=True)
    session.add(org)
    session.flush()
    create_data_key(session, owner_of(org.id))
    audit.record(session, action="org.create", actor=actor, object_type="organization", object_id=org.id,
                 details={"kind": kind.value, "country": country, "short_name": short_name}, org_id=org.id)
    events.publish(session, "network", "org.created", {"id": str(org.id), "name": org.name})
    return org


def update_organization(session: Session, *, actor: Principal | Actor, org: Organization,
                        name: str | None = None, country: str | Any | None = ...,
                        active: bool | None = None) -> Organization:
    changed = []
    if name is not None and _clean_name(name, "name") != org.name:
        org.name = _clean_name(name, "name")
        changed.append("name")
    if country is not ...:
        new_country = _clean_country(country)
        if org.kind == OrgKind.government and new_country is None:
            raise ValidationFailed("country", _("a member government needs its country"))
        if new_country != org.country:
            org.country = new_country
            changed.append("country")
    if active is not None and active != org.active:
        if not active and org.kind == OrgKind.secretariat:
            raise Conflict(_("The secretariat cannot be deactivated"))
        org.active = active
        changed.append("active")
    if changed:
        audit.record(session, action="org.update", actor=actor, object_type="organization", object_id=org.id,
                     details={"fields": changed}, org_id=org.id)
        events.publish(session, "network", "org.updated", {"id": str(org.id), "fields": changed})
    return org


def list_organizations(session: Session, principal: Principal, *, q: str | None = None,
                       kind: str | None = None, country: str | None = None, active: bool | None = True,
                       page: int = 1, per_page: int = 25) -> Page[Organization]:
    stmt = policy.scoped(principal, Organization)
    if q:
        like = f"%{q.strip().lower()}%"
        stmt = stmt.where(or_(func.lower(Organization.name).like(like),
                              func.lower(Organization.short_name).like(like)))
    if kind:
        stmt = stmt.where(Organization.kind == OrgKind(kind))
    if country:
        stmt = stmt.where(Organization.country == country.upper())
    if active is not None:
        stmt = stmt.where(Organization.active.is_(active))
    return paginate(session, stmt.order_by(Organization.kind, Organization.name), page=page, per_page=per_page)


def members_of(session: Session, org: Organization) -> list[tuple[User, list[Role]]]:
    rows = session.execute(
        select(User, Membership.role).join(Membership, Membership.user_id == User.id)
        .where(Membership.org_id == org.id).order_by(User.full_name)
    ).all()
    grouped: dict[uuid.UUID, tuple[User, list[Role]]] = {}
    for user, role in rows:
        grouped.setdefault(user.id, (user, []))[1].append(Role(role))
    return list(grouped.values())


# People ------------------------------------------------------------------------------------------------------


def _clean_email(value: str) -> str:
    email = identity.normalise_email(value or "")
    if not EMAIL.match(email):
        raise ValidationFailed("email", _("is not an email address"))
    return email


def create_person(session: Session, *, actor: Principal | Actor, email: str, full_name: str,
                  org: Organization, role: Role | str, password: str | None = None,
                  locale: str | None = None, invite: bool = True) -> User:
    """Create a person with a first role; with no password, they get an invitation email to set one."""
    email = _clean_email(email)
    full_name = _clean_name(full_name, "full_name")
    role = _clean_role(org, role)
    if locale is not None and locale not in i18n.LOCALES:
        raise ValidationFailed("locale", _("must be one of %(values)s", values=", ".join(i18n.LOCALES)))
    if session.scalar(select(func.count()).where(User.email == email)):
        if getattr(actor, "is_secretariat_admin", True):
            raise ValidationFailed("email", _("already belongs to someone; add a role to that person instead"))
        # An organization's administrator learns nothing about people outside it.
        raise ValidationFailed("email", _("this address cannot be used here; ask the secretariat for help"))
    user = User(email=email, full_name=full_name, locale=locale, active=True)
    if password is not None:
        problem = identity.password_problem(password)
        if problem:
            raise ValidationFailed("password", problem)
        identity.set_password(user, password)
    session.add(user)
    session.flush()
    session.add(Membership(user_id=user.id, org_id=org.id, role=role))
    audit.record(session, action="person.create", actor=actor, object_type="person", object_id=user.id,
                 details={"org": str(org.id), "role": role.value}, org_id=org.id)
    if password is None and invite:
        send_invitation(session, user=user, org=org)
    events.publish(session, f"org:{org.id}", "person.created", {"id": str(user.id)})
    return user


def _email_password_link(session: Session, *, user: User, purpose: str, hours: int, subject: str, body: str,
                         org_id: uuid.UUID | None = None, **values: object) -> None:
    """Email a single-use link to set a password, in the person's own language."""
    token = identity.issue_password_token(session, user, purpose, hours=hours)
    link = f"{get_settings().base_url}/password/set?token={token}"
    with i18n.using(user.locale):
        text = i18n.gettext(body, name=user.full_name, hours=hours, link=link, **values)
        send_email(session, to=user.email, subject=i18n.gettext(subject), text=text, org_id=org_id)


def send_invitation(session: Session, *, user: User, org: Organization) -> None:
    _email_password_link(
        session, user=user, purpose="invite", hours=INVITE_HOURS, org_id=org.id, org=org.name,
        subject=N_("You are invited to RDN"),
        body=N_("Hello %(name)s,\n\n%(org)s has given you access to RDN, the Resettlement Diplomacy Network's "
                "coordination platform.\n\nSet your password within %(hours)s hours:\n%(link)s\n\n"
                "If you did not expect this email, you can ignore it."),
    )


def request_password_reset(session: Session, *, email: str) -> None:
    """Queue the reset: the same work whether or not the address has an account (no timing difference)."""
    outbox.enqueue(session, "password.reset", {"email": identity.normalise_email(email)[:254]})


@outbox.handler("password.reset", max_attempts=5)
def _password_reset_job(ctx: outbox.JobContext) -> None:
    send_password_reset(ctx.session, email=ctx.payload["email"])


def send_password_reset(session: Session, *, email: str) -> None:
    """Email a reset link if the address belongs to an active person; say nothing either way."""
    user = session.scalars(select(User).where(User.email == identity.normalise_email(email))).first()
    if user is None or not user.active:
        return
    _email_password_link(
        session, user=user, purpose="reset", hours=RESET_HOURS,
        subject=N_("Reset your RDN password"),
        body=N_("Hello %(name)s,\n\nSomeone asked to reset the password of your RDN account. To choose a new "
                "password, open this link within %(hours)s hours:\n%(link)s\n\nIf it was not you, ignore this "
                "email: your password stays as it is."),
    )
    audit.record(session, action="password.reset_requested", actor=Actor("anonymous"), object_type="person",
                 object_id=user.id)


def set_password_with_token(session: Session, *, token: str, password: str) -> User:
    row = identity.find_password_token(session, token)
    if row is None:
        raise ValidationFailed("token", _("this link has expired or was already used"))
    problem = identity.password_problem(password)
    if problem:
        raise ValidationFailed("password", problem)
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        raise ValidationFailed("token", _("this link has expired or was already used"))
    identity.set_password(user, password)
    row.used_at = clock.now()
    # Recovering an account shuts out whoever had it: their sessions and the tokens they may have made.
    identity.revoke_all_sessions(session, user.id, "password set")
    identity.revoke_all_tokens(session, user.id)
    audit.record(session, action="password.set", actor=Actor(user.email, user.id), object_type="person",
                 object_id=user.id, details={"via": row.purpose})
    return user


def change_password(session: Session, *, principal: Principal, current: str, new: str) -> None:
    user = session.get(User, principal.user_id)
    assert user is not None
    if not identity.check_password(user, current):
        raise ValidationFailed("current_password", _("is not your current password"))
    problem = identity.password_problem(new)
    if problem:
        raise ValidationFailed("new_password", problem)
    identity.set_password(user, new)
    identity.revoke_all_sessions(session, user.id, "password changed", except_id=principal.session_id)
    audit.record(session, action="password.change", actor=principal, object_type="person", object_id=user.id)


def list_people(session: Session, principal: Principal, *, q: str | None = None, org_id: uuid.UUID | None = None,
                active: bool | None = None, page: int = 1, per_page: int = 25) -> Page[User]:
    stmt = policy.scoped(principal, User)
    if q:
        like = f"%{q.strip().lower()}%"
        stmt = stmt.where(or_(func.lower(User.full_name).like(like), User.email.like(like)))
    if org_id:
        stmt = stmt.where(User.id.in_(select(Membership.user_id).where(Membership.org_id == org_id)))
    if active is not None:
        stmt = stmt.where(User.active.is_(active))
    return paginate(session, stmt.order_by(User.full_name), page=page, per_page=per_page)


def update_person(session: Session, *, actor: Principal, user: User, full_name: str | None = None,
                  active: bool | None = None, locale: str | Any | None = ...) -> User:
    changed = []
    if full_name is not None and _clean_name(full_name, "full_name") != user.full_name:
        user.full_name = _clean_name(full_name, "full_name")
        changed.append("full_name")
    if locale is not ...:
        if locale is not None and locale not in i18n.LOCALES:
            raise ValidationFailed("locale", _("must be one of %(values)s", values=", ".join(i18n.LOCALES)))
        if locale != user.locale:
            user.locale = locale
            changed.append("locale")
    if active is not None and active != user.active:
        if not active:
            _guard_last_secretariat_admin(session, user.id)
            identity.revoke_all_sessions(session, user.id, "deactivated")
            identity.revoke_all_tokens(session, user.id)
        user.active = active
        changed.append("active")
    if changed:
        audit.record(session, action="person.update", actor=actor, object_type="person", object_id=user.id,
                     details={"fields": changed})
    return user


def reset_mfa(session: Session, *, actor: Principal, user: User) -> None:
    """Forget a person's TOTP (a lost phone): they enrol again at their next login."""
    identity.set_totp_secret(session, user, None)
    identity.revoke_all_sessions(session, user.id, "MFA reset")
    identity.revoke_all_tokens(session, user.id)
    audit.record(session, action="person.mfa_reset", actor=actor, object_type="person", object_id=user.id)


def revoke_sessions(session: Session, *, actor: Principal, user: User) -> int:
    count = identity.revoke_all_sessions(session, user.id, "revoked by administrator")
    audit.record(session, action="person.sessions_revoked", actor=actor, object_type="person",
                 object_id=user.id, details={"count": count})
    events.publish(session, f"user:{user.id}", "session.revoked", {})
    return count


# Roles -------------------------------------------------------------------------------------------------------


def _clean_role(org: Organization, role: Role | str) -> Role:
    try:
        role = Role(role)
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise ValidationFailed("role", _("must be one of %(values)s", values=roles)) from None
    if not role_allowed(OrgKind(org.kind), role):
        label = i18n.gettext(ROLE_LABELS[role])
        raise ValidationFailed("role", _("this kind of organization has no %(role)s role", role=label))
    return role


def grant_role(session: Session, *, actor: Principal | Actor, user: User, org: Organization,
               role: Role | str) -> Membership:
    role = _clean_role(org, role)
    existing = session.scalars(select(Membership).where(Membership.user_id == user.id,
                                                        Membership.org_id == org.id,
                                                        Membership.role == role)).first()
    if existing is not None:
        return existing
    membership = Membership(user_id=user.id, org_id=org.id, role=role)
    session.add(membership)
    session.flush()
    audit.record(session, action="membership.grant", actor=actor, object_type="person", object_id=user.id,
                 details={"org": str(org.id), "role": role.value}, org_id=org.id)
    events.publish(session, f"user:{user.id}", "membership.changed", {"org": str(org.id)})
    return membership


def revoke_role(session: Session, *, actor: Principal, membership: Membership) -> None:
    org = session.get(Organization, membership.org_id)
    assert org is not None
    if org.kind == OrgKind.secretariat and membership.role == Role.admin:
        _guard_last_secretariat_admin(session, membership.user_id)
    audit.record(session, action="membership.revoke", actor=actor, object_type="person",
                 object_id=membership.user_id, details={"org": str(org.id), "role": Role(membership.role).value},
                 org_id=org.id)
    events.publish(session, f"user:{membership.user_id}", "membership.changed", {"org": str(org.id)})
    session.delete(membership)
    session.flush()


def _guard_last_secretariat_admin(session: Session, user_id: uuid.UUID) -> None:
    # Lock the secretariat first: two administrators removing each other at once must not both pass.
    lock = select(Organization.id).where(Organization.kind == OrgKind.secretariat)
    if db_dialect(session) == "postgresql":
        lock = lock.with_for_update()
    session.execute(lock).all()
    admins = session.scalars(
        select(Membership.user_id).join(Organization).join(User, User.id == Membership.user_id)
        .where(Organization.kind == OrgKind.secretariat, Membership.role == Role.admin, User.active.is_(True))
    ).all()
    if set(admins) == {user_id}:
        raise Conflict(_("This is the last active administrator of the secretariat; appoint another first"))


def accessible_membership(session: Session, principal: Principal, membership_id: uuid.UUID) -> Membership:
    membership = session.get(Membership, membership_id)
    if membership is None or membership.user_id == principal.user_id:  # one's own roles: ask another admin
        raise policy.NotFound()
    org = session.get(Organization, membership.org_id)
    if not policy.can(principal, "membership.manage", org):
        raise policy.NotFound()
    return membership


def switch_org(session: Session, *, principal: Principal, org_id: uuid.UUID) -> None:
    if not any(o.org_id == org_id for o in principal.orgs) or principal.session_id is None:
        raise policy.NotFound()
    row = session.get(identity.UserSession, principal.session_id)
    assert row is not None
    row.active_org_id = org_id

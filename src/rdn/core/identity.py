"""Who you are: users, passwords (argon2id), TOTP, server-side sessions and API tokens.

* Sessions live in the database; the cookie holds a random token whose SHA-256 is stored. A session expires
  after ``session_idle_minutes`` without use and ``session_absolute_hours`` after login, whichever comes
  first, and can be revoked one by one or all at once ("log out everywhere").
* Login is two steps for anyone whose organization requires MFA: password, then a TOTP code (a code is
  accepted once: replays are refused). Without a confirmed TOTP such a user must enrol before going on.
* API tokens (``rdn_<prefix>_<secret>``) are stored hashed, act for one user in one organization, and carry
  scopes (``read``, ``write``, ``admin``).
* Rights are loaded on every request, so a change of roles takes effect on the next request.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import BigInteger, ForeignKey, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from rdn.config import get_settings, settings_cache
from rdn.core import clock
from rdn.core.crypto import Keyring, SensitiveFields, sealed
from rdn.core.i18n import gettext as _
from rdn.core.tenancy import MFA_REQUIRED_KINDS, Membership, Organization, OrgKind, Role
from rdn.db import Base, new_id

PENDING_LOGIN_MINUTES = 10
SCOPES = ("read", "write", "admin")
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256
_COMMON_PASSWORDS = {
    "password1234", "123456789012", "qwertyuiop12", "passwordpassword", "iloveyou1234", "letmein12345",
    "welcome12345", "administrator", "changeme1234", "password123!", "resettlement", "refugees2026",
}


class SessionStage(StrEnum):
    mfa = "mfa"  # password accepted, waiting for a TOTP code
    enrol = "enrol"  # password accepted, must enrol TOTP before going on
    active = "active"


class User(SensitiveFields, Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    totp_secret: Mapped[bytes | None] = sealed()
    totp_confirmed_at: Mapped[datetime | None]
    totp_last_counter: Mapped[int | None] = mapped_column(BigInteger)
    locale: Mapped[str | None] = mapped_column(String(8))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)
    password_changed_at: Mapped[datetime | None]

    memberships: Mapped[list[Membership]] = relationship(viewonly=True, lazy="select")  # loaded when used

    @property
    def mfa_enrolled(self) -> bool:
        return self.totp_confirmed_at is not None


class UserSession(Base):
    __tablename__ = "user_sessions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    stage: Mapped[str] = mapped_column(String(16))
    active_org_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="SET NULL")
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    last_seen_at: Mapped[datetime] = mapped_column(default=clock.now)
    expires_at: Mapped[datetime]
    mfa_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(60))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]]
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class PasswordToken(Base):
    """A single-use link to set a password: an invitation, or a reset the user asked for."""

    __tablename__ = "password_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(16))  # invite | reset
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


# Principal ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrgRoles:
    org_id: uuid.UUID
    name: str
    short_name: str
    kind: OrgKind
    country: str | None
    roles: frozenset[Role]


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request, acting in one organization."""

    user_id: uuid.UUID
    email: str
    full_name: str
    locale: str | None
    org: OrgRoles | None
    orgs: tuple[OrgRoles, ...]
    via: str  # "session" | "token"
    session_id: uuid.UUID | None = None
    token_id: uuid.UUID | None = None
    token_name: str | None = None
    scopes: frozenset[str] | None = None  # None: a browser session, every scope
    mfa_at: datetime | None = None
    csrf_token: str | None = None
    #: Authenticated without writing (``authenticate(touch=False)``) when the session's "last seen" or the
    #: token's "last used" was due to be written: :func:`record_use` writes it.
    use_due: bool = False

    @property
    def org_id(self) -> uuid.UUID | None:
        return self.org.org_id if self.org else None

    @property
    def org_kind(self) -> OrgKind | None:
        return self.org.kind if self.org else None

    @property
    def roles(self) -> frozenset[Role]:
        return self.org.roles if self.org else frozenset()

    def has_role(self, *roles: Role) -> bool:
        return bool(self.roles.intersection(roles))

    @property
    def is_secretariat_admin(self) -> bool:
        return self.org_kind == OrgKind.secretariat and Role.admin in self.roles

    def has_scope(self, scope: str) -> bool:
        return self.scopes is None or scope in self.scopes

    @property
    def audit_label(self) -> str:
        return f"{self.email} (token {self.token_name})" if self.via == "token" else self.email

    def mfa_recent(self, minutes: int = 10) -> bool:
        return self.mfa_at is not None and clock.now() - self.mfa_at <= timedelta(minutes=minutes)


# Passwords ---------------------------------------------------------------------------------------------------


@settings_cache
def _hasher() -> PasswordHasher:
    s = get_settings()
    return PasswordHasher(time_cost=s.password_hash_time_cost, memory_cost=s.password_hash_memory_kib,
                          parallelism=1)


@settings_cache
def _dummy_hash() -> str:
    return _hasher().hash(secrets.token_urlsafe(16))


def normalise_email(email: str) -> str:
    return email.strip().lower()


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None. (ASVS: length, not common; no composition rules.)"""
    if len(password) < MIN_PASSWORD_LENGTH:
        return _("at least %(n)s characters", n=MIN_PASSWORD_LENGTH)
    if len(password) > MAX_PASSWORD_LENGTH:
        return _("at most %(n)s characters", n=MAX_PASSWORD_LENGTH)
    if password.lower() in _COMMON_PASSWORDS or len(set(password)) < 4:
        return _("too common or too simple")
    return None


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def set_password(user: User, password: str) -> None:
    user.password_hash = hash_password(password)
    user.password_changed_at = clock.now()


def check_password(user: User | None, password: str) -> bool:
    """Constant work whether or not the user exists; upgrades the hash if parameters changed."""
    hasher = _hasher()
    if user is None or not user.password_hash or len(password) > MAX_PASSWORD_LENGTH:
        with contextlib.suppress(VerificationError, InvalidHashError):
            hasher.verify(_dummy_hash(), password[:MAX_PASSWORD_LENGTH])  # the same work as a real check
        return False
    try:
        hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)
    return True


# TOTP --------------------------------------------------------------------------------------------------------


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(user: User, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name="RDN")


def get_totp_secret(session: Session, user: User) -> str | None:
    return user.unseal("totp_secret", keyring=Keyring.of(session))


def set_totp_secret(session: Session, user: User, secret: str | None) -> None:
    user.seal("totp_secret", secret, keyring=Keyring.of(session))
    user.totp_confirmed_at = None
    user.totp_last_counter = None


def confirm_totp(session: Session, user: User, secret: str) -> None:
    """Keep ``secret`` as the person's second factor (after a code from it was verified)."""
    counter = user.totp_last_counter
    set_totp_secret(session, user, secret)
    user.totp_last_counter = counter
    user.totp_confirmed_at = clock.now()


def verify_totp(session: Session, user: User, code: str, *, secret: str | None = None) -> bool:
    """Accept a code from the previous, current or next 30-second step, once only. ``secret``: check a
    secret being enrolled instead of the stored one."""
    secret = secret or get_totp_secret(session, user)
    code = "".join(ch for ch in code if ch.isdigit())
    if not secret or len(code) != 6:
        return False
    totp = pyotp.TOTP(secret)
    now = clock.now()
    current = totp.timecode(now)
    for counter in (current - 1, current, current + 1):
        if user.totp_last_counter is not None and counter <= user.totp_last_counter:
            continue
        if secrets.compare_digest(totp.generate_otp(counter), code):
            user.totp_last_counter = counter
            return True
    return False


def mfa_required(session: Session, user_id: uuid.UUID) -> bool:
    kinds = session.scalars(
        select(Organization.kind).join(Membership).where(Membership.user_id == user_id)
    ).all()
    return any(kind in MFA_REQUIRED_KINDS for kind in kinds)


# Sessions ----------------------------------------------------------------------------------------------------


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(session: Session, user: User, *, ip: str | None, user_agent: str | None
                  ) -> tuple[str, UserSession]:
    """A new session after a correct password; its stage says whether a TOTP step is still due."""
    if user.mfa_enrolled:
        stage = SessionStage.mfa
    elif mfa_required(session, user.id):
        stage = SessionStage.enrol
    else:
        stage = SessionStage.active
    token = secrets.token_urlsafe(32)
    now = clock.now()
    lifetime = (timedelta(hours=get_settings().session_absolute_hours) if stage == SessionStage.active
                else timedelta(minutes=PENDING_LOGIN_MINUTES))
    row = UserSession(
        token_hash=token_hash(token), user_id=user.id, stage=stage, csrf_token=secrets.token_urlsafe(32),
        created_at=now, last_seen_at=now, expires_at=now + lifetime,
        ip=(ip or "")[:64] or None, user_agent=(user_agent or "")[:300] or None,
        active_org_id=default_org_id(session, user.id),
    )
    session.add(row)
    session.flush()
    return token, row


def activate_session(row: UserSession, *, mfa: bool) -> None:
    now = clock.now()
    row.stage = SessionStage.active
    row.created_at = now
    row.expires_at = now + timedelta(hours=get_settings().session_absolute_hours)
    if mfa:
        row.mfa_at = now


def default_org_id(session: Session, user_id: uuid.UUID) -> uuid.UUID | None:
    return session.scalars(
        select(Organization.id).join(Membership)
        .where(Membership.user_id == user_id, Organization.active.is_(True))
        .order_by(Organization.name).limit(1)
    ).first()


SEEN_EVERY = timedelta(seconds=30)  # a session's "last seen" is written at most this often


def find_session(session: Session, token: str | None, *, touch: bool = True) -> UserSession | None:
    """The live session for a cookie token, or None if unknown, revoked, idle too long or expired."""
    if not token or len(token) > 128:
        return None
    row = session.scalars(select(UserSession).where(UserSession.token_hash == token_hash(token))).first()
    if row is None or row.revoked_at is not None:
        return None
    now = clock.now()
    idle = timedelta(minutes=get_settings().session_idle_minutes)
    if now >= row.expires_at or now - row.last_seen_at > idle:
        return None
    if touch and now - row.last_seen_at > SEEN_EVERY:
        row.last_seen_at = now
    return row


def revoke_session(row: UserSession, reason: str) -> None:
    if row.revoked_at is None:
        row.revoked_at = clock.now()
        row.revoked_reason = reason


def revoke_all_sessions(session: Session, user_id: uuid.UUID, reason: str,
                        except_id: uuid.UUID | None = None) -> int:
    count = 0
    for row in session.scalars(select(UserSession).where(UserSession.user_id == user_id,
                                                         UserSession.revoked_at.is_(None))):
        if row.id != except_id:
            revoke_session(row, reason)
            count += 1
    return count


def live_sessions(session: Session, user_id: uuid.UUID) -> list[UserSession]:
    now = clock.now()
    idle = timedelta(minutes=get_settings().session_idle_minutes)
    rows = session.scalars(
        select(UserSession).where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None),
                                  UserSession.expires_at > now, UserSession.stage == SessionStage.active)
        .order_by(UserSession.last_seen_at.desc())
    ).all()
    return [r for r in rows if now - r.last_seen_at <= idle]


# API tokens --------------------------------------------------------------------------------------------------


def create_token(session: Session, *, user: User, org_id: uuid.UUID, name: str, scopes: list[str],
                 expires_at: datetime | None = None) -> tuple[str, ApiToken]:
    """Create a token; the plaintext is returned once and never stored."""
    bad = [s for s in scopes if s not in SCOPES]
    if bad or not scopes:
        raise ValueError(f"scopes must be some of {', '.join(SCOPES)}")
    prefix = secrets.token_hex(4)
    plaintext = f"rdn_{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiToken(user_id=user.id, org_id=org_id, name=name.strip()[:100], prefix=prefix,
                   token_hash=token_hash(plaintext), scopes=sorted(set(scopes)), expires_at=expires_at)
    session.add(row)
    session.flush()
    return plaintext, row


def revoke_token(row: ApiToken) -> bool:
    """Revoke a token; False if it already was (nothing changes then)."""
    if row.revoked_at is not None:
        return False
    row.revoked_at = clock.now()
    return True


def revoke_all_tokens(session: Session, user_id: uuid.UUID) -> int:
    rows = session.scalars(select(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None)))
    return sum(revoke_token(row) for row in rows)


# Password links ----------------------------------------------------------------------------------------------


def issue_password_token(session: Session, user: User, purpose: str, *, hours: int) -> str:
    """A new single-use link token (plaintext returned once); earlier unused ones stop working."""
    now = clock.now()
    for old in session.scalars(select(PasswordToken).where(PasswordToken.user_id == user.id,
                                                           PasswordToken.used_at.is_(None))):
        old.used_at = now
    plaintext = secrets.token_urlsafe(32)
    session.add(PasswordToken(user_id=user.id, token_hash=token_hash(plaintext), purpose=purpose,
                              created_at=now, expires_at=now + timedelta(hours=hours)))
    session.flush()
    return plaintext


def find_password_token(session: Session, plaintext: str | None) -> PasswordToken | None:
    if not plaintext or len(plaintext) > 128:
        return None
    row = session.scalars(select(PasswordToken).where(PasswordToken.token_hash == token_hash(plaintext))).first()
    if row is None or row.used_at is not None or clock.now() >= row.expires_at:
        return None
    return row


# Building the principal --------------------------------------------------------------------------------------


def org_roles(session: Session, user_id: uuid.UUID) -> tuple[OrgRoles, ...]:
    rows = session.execute(
        select(Organization, Membership.role).join(Membership)
        .where(Membership.user_id == user_id, Organization.active.is_(True))
        .order_by(Organization.name)
    ).all()
    grouped: dict[uuid.UUID, tuple[Organization, set[Role]]] = {}
    for org, role in rows:
        grouped.setdefault(org.id, (org, set()))[1].add(Role(role))
    return tuple(
        OrgRoles(org.id, org.name, org.short_name, OrgKind(org.kind), org.country, frozenset(roles))
        for org, roles in grouped.values()
    )


def principal_for(session: Session, user: User, *, org_id: uuid.UUID | None, via: str,
                  session_row: UserSession | None = None, token: ApiToken | None = None) -> Principal:
    orgs = org_roles(session, user.id)
    chosen = next((o for o in orgs if o.org_id == org_id), None)
    if chosen is None and token is None:
        chosen = orgs[0] if orgs else None
    if token is not None:
        orgs = (chosen,) if chosen else ()  # a token acts in its organization and knows of no other
    return Principal(
        user_id=user.id, email=user.email, full_name=user.full_name, locale=user.locale,
        org=chosen, orgs=orgs, via=via,
        session_id=session_row.id if session_row else None,
        token_id=token.id if token else None, token_name=token.name if token else None,
        scopes=frozenset(token.scopes) if token else None,
        mfa_at=session_row.mfa_at if session_row else None,
        csrf_token=session_row.csrf_token if session_row else None,
    )


def _token_principal(session: Session, plaintext: str, *, touch: bool = True) -> Principal | None:
    """The caller of an API token, in one query (every API call makes it): the token (unknown, revoked or
    expired: None), its user (inactive: None), and the user's roles in the token's organization (a token acts
    there only, and only while its user still belongs to it and it is active). "Last used" is written at
    most once a minute."""
    if not plaintext.startswith("rdn_") or len(plaintext) > 128:
        return None
    rows = session.execute(
        select(ApiToken.id, ApiToken.name, ApiToken.scopes, ApiToken.revoked_at, ApiToken.expires_at,
               ApiToken.last_used_at, User.id.label("user_id"), User.email, User.full_name, User.locale,
               User.active, Organization.id.label("org_id"), Organization.name.label("org_name"),
               Organization.short_name, Organization.kind, Organization.country, Membership.role)
        .join(User, User.id == ApiToken.user_id)
        .outerjoin(Membership, (Membership.user_id == ApiToken.user_id) & (Membership.org_id == ApiToken.org_id))
        .outerjoin(Organization, (Organization.id == Membership.org_id) & Organization.active.is_(True))
        .where(ApiToken.token_hash == token_hash(plaintext))
    ).all()
    now = clock.now()
    if not rows:
        return None
    row = rows[0]
    if row.revoked_at is not None or (row.expires_at is not None and now >= row.expires_at):
        return None
    due = row.last_used_at is None or now - row.last_used_at > timedelta(seconds=60)
    if due and touch:
        session.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
    if not row.active or row.org_id is None:
        return None
    org = OrgRoles(row.org_id, row.org_name, row.short_name, OrgKind(row.kind), row.country,
                   frozenset(Role(r.role) for r in rows if r.role is not None))
    return Principal(user_id=row.user_id, email=row.email, full_name=row.full_name, locale=row.locale, org=org,
                     orgs=(org,), via="token", token_id=row.id, token_name=row.name, scopes=frozenset(row.scopes),
                     use_due=due and not touch)


def authenticate(session: Session, *, bearer: str | None, cookie: str | None, touch: bool = True
                 ) -> Principal | None:
    """Resolve the caller from a bearer token or a session cookie (an active session only). With ``touch``
    false nothing is written: the principal says whether "last seen" or "last used" was due
    (``use_due``), for :func:`record_use` to write in a transaction of its own."""
    if bearer is not None:
        return _token_principal(session, bearer, touch=touch)
    return _session_principal(session, cookie, touch=touch)


def _session_principal(session: Session, cookie: str | None, *, touch: bool) -> Principal | None:
    """The caller of a browser session, in one query (every page makes it): the session (unknown, revoked,
    idle too long, expired or not past sign-in: None), its user (inactive: None) and the user's roles in each
    active organization. The same answer as :func:`find_session` then :func:`principal_for`."""
    if not cookie or len(cookie) > 128:
        return None
    rows = session.execute(
        select(UserSession.id, UserSession.stage, UserSession.active_org_id, UserSession.csrf_token,
               UserSession.last_seen_at, UserSession.expires_at, UserSession.mfa_at, UserSession.revoked_at,
               User.id.label("user_id"), User.email, User.full_name, User.locale, User.active,
               Organization.id.label("org_id"), Organization.name.label("org_name"), Organization.short_name,
               Organization.kind, Organization.country, Membership.role)
        .join(User, User.id == UserSession.user_id)
        .outerjoin(Membership, Membership.user_id == UserSession.user_id)
        .outerjoin(Organization, (Organization.id == Membership.org_id) & Organization.active.is_(True))
        .where(UserSession.token_hash == token_hash(cookie))
        .order_by(Organization.name, Organization.id)
    ).all()
    if not rows:
        return None
    row = rows[0]
    now = clock.now()
    idle = timedelta(minutes=get_settings().session_idle_minutes)
    if row.revoked_at is not None or now >= row.expires_at or now - row.last_seen_at > idle:
        return None
    if row.stage != SessionStage.active or not row.active:
        return None
    grouped: dict[uuid.UUID, tuple[Any, set[Role]]] = {}
    for r in rows:
        if r.org_id is not None and r.role is not None:
            grouped.setdefault(r.org_id, (r, set()))[1].add(Role(r.role))
    orgs = tuple(OrgRoles(r.org_id, r.org_name, r.short_name, OrgKind(r.kind), r.country, frozenset(roles))
                 for r, roles in grouped.values())
    chosen = next((o for o in orgs if o.org_id == row.active_org_id), None) or (orgs[0] if orgs else None)
    if chosen is not None and chosen.kind in MFA_REQUIRED_KINDS and row.mfa_at is None:
        # Given a role that needs MFA after signing in without it: sign in again (and enrol).
        return None
    due = now - row.last_seen_at > SEEN_EVERY
    if due and touch:
        session.execute(update(UserSession).where(UserSession.id == row.id).values(last_seen_at=now))
    return Principal(user_id=row.user_id, email=row.email, full_name=row.full_name, locale=row.locale, org=chosen,
                     orgs=orgs, via="session", session_id=row.id, mfa_at=row.mfa_at, csrf_token=row.csrf_token,
                     use_due=due and not touch)


def record_use(session: Session, principal: Principal) -> None:
    """Write the "last seen" of the principal's session, or the "last used" of its token (now)."""
    now = clock.now()
    if principal.token_id is not None:
        session.execute(update(ApiToken).where(ApiToken.id == principal.token_id).values(last_used_at=now))
    elif principal.session_id is not None:
        session.execute(update(UserSession).where(UserSession.id == principal.session_id,
                                                  UserSession.last_seen_at < now).values(last_seen_at=now))

"""Sign-in (password, then TOTP), MFA enrolment, password links, and the account page."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import timedelta
from typing import Annotated
from urllib.parse import quote

import segno
from fastapi import Form, Query, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from rdn.config import get_settings
from rdn.core import audit, clock, i18n, identity, policy, ratelimit
from rdn.core.audit import Actor
from rdn.core.context import client_ip_var
from rdn.core.crypto import same_secret
from rdn.core.errors import ValidationFailed
from rdn.core.identity import SessionStage, User, UserSession
from rdn.core.modules import page_router
from rdn.core.web import (
    LOCALE_COOKIE,
    CurrentPrincipal,
    DbSession,
    OptionalPrincipal,
    redirect,
    render,
    safe_next,
    session_cookie_name,
)
from rdn.network import service as network

router = page_router()

NOTICES = {
    "password": i18n.N_("Your password was changed. Your other sessions were ended."),
    "password-set": i18n.N_("Your password is set. You can sign in now."),
    "revoked": i18n.N_("The session was ended."),
    "revoked-all": i18n.N_("All your other sessions were ended."),
    "token-revoked": i18n.N_("The token was revoked."),
    "profile": i18n.N_("Your profile was saved."),
    "reset-sent": i18n.N_("If that address belongs to an account, a reset link is on its way."),
    "signed-out": i18n.N_("You have signed out."),
    "mfa": i18n.N_("Two-step verification is on."),
}
MFA_FAILURES = 10
MFA_WINDOW = timedelta(hours=1)
PASSWORD_CHECKS = 5


def _notice(key: str | None) -> str | None:
    return i18n.gettext(NOTICES[key]) if key in NOTICES else None


def _set_session_cookie(response: Response, token: str, *, max_age: int | None = None) -> None:
    response.set_cookie(session_cookie_name(), token, httponly=True, samesite="lax",
                        secure=get_settings().secure_cookies, path="/", max_age=max_age)


def _set_locale_cookie(response: Response, locale: str) -> None:
    response.set_cookie(LOCALE_COOKIE, locale, samesite="lax", path="/", max_age=365 * 86400,
                        secure=get_settings().secure_cookies)


def _pending(db: Session, request: Request) -> UserSession | None:
    row = identity.find_session(db, request.cookies.get(session_cookie_name()))
    if row is not None:
        request.state.csrf_session_token = row.csrf_token
    return row


def _rate_keys(email: str) -> tuple[str, str]:
    ip = client_ip_var.get() or "unknown"
    return (f"login:email:{hashlib.sha256(email.encode()).hexdigest()}", f"login:ip:{ip}")


# Sign in -----------------------------------------------------------------------------------------------------


@router.get("/login")
def login_form(request: Request, principal: OptionalPrincipal, next: str | None = None,
               notice: str | None = None) -> Response:
    if principal is not None:
        return redirect(safe_next(next))
    return render(request, "accounts/login.html", {"next": safe_next(next), "email": "", "error": None,
                                                    "notice": _notice(notice)})


@router.post("/login")
def login(
    request: Request, db: DbSession,
    email: Annotated[str, Form(max_length=254)] = "", password: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    settings = get_settings()
    email = identity.normalise_email(email)
    window = timedelta(minutes=settings.login_window_minutes)
    email_key, ip_key = _rate_keys(email)
    # Count the attempt before checking it (an atomic upsert), so parallel guesses cannot slip past the
    # limit; a correct password takes its count back.
    within = ratelimit.hit(db, email_key, limit=settings.login_max_failures, window=window)
    within = ratelimit.hit(db, ip_key, limit=settings.login_max_failures * 4, window=window) and within
    if not within:
        audit.record(db, action="login.throttled", actor=Actor("anonymous"))
        return render(request, "accounts/login.html", {
            "next": safe_next(next), "email": email, "notice": None,
            "error": i18n.gettext("Too many attempts. Please wait a few minutes before trying again."),
        }, status=429, headers={"Retry-After": str(int(window.total_seconds()))})
    user = db.scalars(select(User).where(User.email == email)).first()
    if not identity.check_password(user, password) or user is None or not user.active:
        audit.record(db, action="login.failed", actor=Actor("anonymous"))
        return render(request, "accounts/login.html", {
            "next": safe_next(next), "email": email, "notice": None,
            "error": i18n.gettext("The email or password is not right."),
        }, status=400)
    ratelimit.reset(db, email_key)
    ratelimit.unhit(db, ip_key, window=window)
    token, row = identity.start_session(db, user, ip=client_ip_var.get(),
                                        user_agent=request.headers.get("user-agent"))
    audit.record(db, action="login.password", actor=Actor(user.email, user.id), object_type="person",
                 object_id=user.id, details={"stage": row.stage})
    target = {SessionStage.mfa: "/login/mfa", SessionStage.enrol: "/mfa/enrol"}.get(SessionStage(row.stage))
    response = redirect(f"{target}?next={quote(safe_next(next), safe='')}" if target else safe_next(next))
    _set_session_cookie(response, token)
    if user.locale:
        _set_locale_cookie(response, user.locale)
    return response


@router.get("/login/mfa")
def mfa_form(request: Request, db: DbSession, next: str | None = None) -> Response:
    row = _pending(db, request)
    if row is None or row.stage != SessionStage.mfa:
        return redirect("/login")
    return render(request, "accounts/mfa.html", {"next": safe_next(next), "error": None})


def _mfa_locked(db: Session, user: User) -> bool:
    return ratelimit.exceeded(db, f"mfa:user:{user.id}", limit=MFA_FAILURES, window=MFA_WINDOW)


def _mfa_failure(db: Session, row: UserSession, user: User) -> bool:
    """Count a wrong code against the person (not the session: a new password login gives no new guesses);
    after too many, end the pending session. True if it was ended."""
    key = f"mfa:user:{user.id}"
    ok = ratelimit.hit(db, key, limit=MFA_FAILURES - 1, window=MFA_WINDOW)  # the MFA_FAILURES-th ends it
    audit.record(db, action="login.mfa_failed", actor=Actor(user.email, user.id), object_type="person",
                 object_id=user.id)
    if not ok:
        identity.revoke_session(row, "too many wrong codes")
        return True
    return False


@router.post("/login/mfa")
def mfa(request: Request, db: DbSession, code: Annotated[str, Form(max_length=20)] = "",
        next: Annotated[str, Form(max_length=2000)] = "/") -> Response:
    row = _pending(db, request)
    if row is None or row.stage != SessionStage.mfa:
        return redirect("/login")
    user = db.get(User, row.user_id)
    assert user is not None
    if _mfa_locked(db, user) or not identity.verify_totp(db, user, code):
        if _mfa_failure(db, row, user):
            return redirect("/login")
        return render(request, "accounts/mfa.html", {
            "next": safe_next(next), "error": i18n.gettext("That code is not right. Use the newest code."),
        }, status=400)
    return _complete_login(request, db, row, user, next)


def _complete_login(request: Request, db: Session, row: UserSession, user: User, next: str) -> Response:
    identity.activate_session(row, mfa=True)
    # A new token once fully signed in: a token seen before the second step is worthless afterwards.
    token = secrets.token_urlsafe(32)
    row.token_hash = identity.token_hash(token)
    audit.record(db, action="login.success", actor=Actor(user.email, user.id, row.active_org_id),
                 object_type="person", object_id=user.id)
    response = redirect(safe_next(next))
    _set_session_cookie(response, token)
    return response


def _seal_pending(secret: str, row_id: uuid.UUID) -> str:
    """A new TOTP secret travels in the form, signed for this session, until a code proves it: no GET
    ever changes a person's second factor."""
    mac = hmac.new(get_settings().secret_key.encode(), f"rdn-totp:{row_id}:{secret}".encode(),
                   hashlib.sha256).hexdigest()
    return f"{secret}.{mac}"


def _open_pending(value: str, row_id: uuid.UUID) -> str | None:
    secret, _, mac = value.partition(".")
    expected = _seal_pending(secret, row_id).partition(".")[2]
    return secret if secret and same_secret(mac, expected) else None


def _enrol_page(request: Request, user: User, secret: str, row_id: uuid.UUID, next: str, error: str | None,
                action: str = "/mfa/enrol", ask_password: bool = False) -> Response:
    uri = identity.totp_uri(user, secret)
    qr = segno.make(uri, error="m").svg_data_uri(scale=5, border=2)
    grouped = " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))
    return render(request, "accounts/enrol.html", {
        "qr": qr, "secret": grouped, "pending": _seal_pending(secret, row_id), "next": next, "error": error,
        "action": action, "ask_password": ask_password, "required": action == "/mfa/enrol",
    }, status=400 if error else 200)


WRONG_NEW_CODE = i18n.N_("That code is not right. Check the time on your phone and try the newest code.")


@router.get("/mfa/enrol")
def enrol_form(request: Request, db: DbSession, next: str | None = None) -> Response:
    row = _pending(db, request)
    if row is None or row.stage != SessionStage.enrol:
        return redirect("/login")
    user = db.get(User, row.user_id)
    assert user is not None
    return _enrol_page(request, user, identity.new_totp_secret(), row.id, safe_next(next), None)


@router.post("/mfa/enrol")
def enrol(request: Request, db: DbSession, code: Annotated[str, Form(max_length=20)] = "",
          pending: Annotated[str, Form(max_length=200)] = "",
          next: Annotated[str, Form(max_length=2000)] = "/") -> Response:
    row = _pending(db, request)
    if row is None or row.stage != SessionStage.enrol:
        return redirect("/login")
    user = db.get(User, row.user_id)
    assert user is not None
    secret = _open_pending(pending, row.id)
    if secret is None:
        return redirect("/mfa/enrol")
    if _mfa_locked(db, user) or not identity.verify_totp(db, user, code, secret=secret):
        if _mfa_failure(db, row, user):
            return redirect("/login")
        return _enrol_page(request, user, secret, row.id, safe_next(next), i18n.gettext(WRONG_NEW_CODE))
    identity.confirm_totp(db, user, secret)
    audit.record(db, action="mfa.enrolled", actor=Actor(user.email, user.id), object_type="person",
                 object_id=user.id)
    return _complete_login(request, db, row, user, next)


@router.post("/logout")
def logout(request: Request, db: DbSession) -> Response:
    row = identity.find_session(db, request.cookies.get(session_cookie_name()), touch=False)
    if row is not None:
        identity.revoke_session(row, "signed out")
        user = db.get(User, row.user_id)
        audit.record(db, action="logout", actor=Actor(user.email if user else "unknown", row.user_id),
                     object_type="person", object_id=row.user_id)
    response = redirect("/login?notice=signed-out")
    # A __Host- cookie is only replaced (here: cleared) by one with the same Secure attribute.
    response.delete_cookie(session_cookie_name(), path="/", secure=get_settings().secure_cookies, httponly=True,
                           samesite="lax")
    return response


# Password links ----------------------------------------------------------------------------------------------


@router.get("/password/forgot")
def forgot_form(request: Request) -> Response:
    return render(request, "accounts/forgot.html", {"error": None})


@router.post("/password/forgot")
def forgot(request: Request, db: DbSession, email: Annotated[str, Form(max_length=254)] = "") -> Response:
    ip = client_ip_var.get() or "unknown"
    email_key = "reset:email:" + hashlib.sha256(identity.normalise_email(email).encode()).hexdigest()
    within = ratelimit.hit(db, f"reset:ip:{ip}", limit=10, window=timedelta(hours=1))
    within = ratelimit.hit(db, email_key, limit=3, window=timedelta(hours=1)) and within  # no mail bombing
    if not within:
        return render(request, "accounts/forgot.html", {
            "error": i18n.gettext("Too many attempts. Please wait a few minutes before trying again.")}, status=429)
    network.request_password_reset(db, email=email)
    return redirect("/login?notice=reset-sent")


@router.get("/password/set")
def set_password_form(request: Request, db: DbSession, token: Annotated[str, Query(max_length=128)] = "") -> Response:
    valid = identity.find_password_token(db, token) is not None
    return render(request, "accounts/set_password.html", {"token": token, "valid": valid, "errors": {}},
                  status=200 if valid else 404)


@router.post("/password/set")
def set_password(request: Request, db: DbSession, token: Annotated[str, Form(max_length=128)] = "",
                 password: Annotated[str, Form(max_length=1024)] = "",
                 confirm: Annotated[str, Form(max_length=1024)] = "") -> Response:
    try:
        if password != confirm:
            raise ValidationFailed("confirm", i18n.gettext("The two passwords differ"))
        network.set_password_with_token(db, token=token, password=password)
    except ValidationFailed as exc:
        db.rollback()
        errors = {e.field: e.message for e in exc.errors}
        valid = identity.find_password_token(db, token) is not None
        return render(request, "accounts/set_password.html", {"token": token, "valid": valid, "errors": errors},
                      status=422)
    return redirect("/login?notice=password-set")


# The account page --------------------------------------------------------------------------------------------


def _account_context(db: Session, principal: identity.Principal) -> dict[str, object]:
    user = db.get(User, principal.user_id)
    tokens = db.scalars(select(identity.ApiToken).where(identity.ApiToken.user_id == principal.user_id,
                                                        identity.ApiToken.revoked_at.is_(None))
                        .order_by(identity.ApiToken.created_at.desc())).all()
    return {"user": user, "sessions": identity.live_sessions(db, principal.user_id), "tokens": tokens,
            "scopes": identity.SCOPES, "errors": {}, "new_token": None,
            "scope_labels": {"read": i18n.gettext("Read"), "write": i18n.gettext("Change"),
                             "admin": i18n.gettext("Administer")}}


@router.get("/account")
def account(request: Request, db: DbSession, principal: CurrentPrincipal, notice: str | None = None) -> Response:
    return render(request, "accounts/account.html", {**_account_context(db, principal), "notice": _notice(notice)})


@router.post("/account/profile")
def update_profile(request: Request, db: DbSession, principal: CurrentPrincipal,
                   full_name: Annotated[str, Form(max_length=400)] = "",
                   locale: Annotated[str, Form(max_length=8)] = "") -> Response:
    user = db.get(User, principal.user_id)
    assert user is not None
    try:
        network.update_person(db, actor=principal, user=user, full_name=full_name, locale=locale or None)
    except ValidationFailed as exc:
        db.rollback()
        ctx = _account_context(db, principal)
        ctx["errors"] = {e.field: e.message for e in exc.errors}
        return render(request, "accounts/account.html", {**ctx, "notice": None}, status=422)
    response = redirect("/account?notice=profile")
    if locale in i18n.LOCALES:
        _set_locale_cookie(response, locale)
    return response


@router.post("/account/password")
def change_password(request: Request, db: DbSession, principal: CurrentPrincipal,
                    current_password: Annotated[str, Form(max_length=1024)] = "",
                    new_password: Annotated[str, Form(max_length=1024)] = "") -> Response:
    # The counter is committed at once: a refused attempt below rolls back, and must still count.
    allowed_attempt = ratelimit.hit(db, f"pwcheck:{principal.user_id}", limit=PASSWORD_CHECKS, window=MFA_WINDOW)
    db.commit()
    try:
        if not allowed_attempt:
            raise ValidationFailed("current_password",
                                   i18n.gettext("Too many attempts. Please wait a few minutes before trying again."))
        network.change_password(db, principal=principal, current=current_password, new=new_password)
    except ValidationFailed as exc:
        db.rollback()
        ctx = _account_context(db, principal)
        ctx["errors"] = {e.field: e.message for e in exc.errors}
        return render(request, "accounts/account.html", {**ctx, "notice": None}, status=422)
    return redirect("/account?notice=password")


@router.post("/account/sessions/{session_id}/revoke")
def revoke_session(request: Request, session_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    row = db.get(UserSession, session_id)
    if row is None or row.user_id != principal.user_id:
        raise policy.NotFound()
    identity.revoke_session(row, "ended by its owner")
    audit.record(db, action="session.revoke", actor=principal, object_type="session", object_id=row.id)
    if row.id == principal.session_id:
        return redirect("/login?notice=signed-out")
    return redirect("/account?notice=revoked")


@router.post("/account/sessions/revoke-all")
def revoke_all(request: Request, db: DbSession, principal: CurrentPrincipal) -> Response:
    """Log out everywhere else (this browser stays signed in)."""
    count = identity.revoke_all_sessions(db, principal.user_id, "logged out everywhere",
                                         except_id=principal.session_id)
    audit.record(db, action="session.revoke_all", actor=principal, object_type="person",
                 object_id=principal.user_id, details={"count": count})
    return redirect("/account?notice=revoked-all")


@router.post("/account/tokens")
def create_token(request: Request, db: DbSession, principal: CurrentPrincipal,
                 name: Annotated[str, Form(max_length=100)] = "",
                 scopes: Annotated[list[str] | None, Form()] = None,
                 days: Annotated[int, Form(ge=0, le=3650)] = 90) -> Response:
    policy.require(principal, "token.create")
    policy.require_step_up(principal)
    errors = {}
    if not 2 <= len(name.strip()) <= 100:
        errors["name"] = i18n.gettext("Give the token a name of 2 to 100 characters")
    chosen = [s for s in scopes or [] if s in identity.SCOPES]
    if not chosen:
        errors["scopes"] = i18n.gettext("Choose at least one scope")
    if errors:
        ctx = _account_context(db, principal)
        ctx["errors"] = errors
        return render(request, "accounts/account.html", {**ctx, "notice": None}, status=422)
    user = db.get(User, principal.user_id)
    assert user is not None and principal.org_id is not None
    plaintext, row = identity.create_token(db, user=user, org_id=principal.org_id, name=name, scopes=chosen,
                                           expires_at=clock.now() + timedelta(days=days) if days else None)
    audit.record(db, action="token.create", actor=principal, object_type="api_token", object_id=row.id,
                 details={"scopes": chosen})
    ctx = _account_context(db, principal)
    ctx["new_token"] = plaintext
    return render(request, "accounts/account.html", {**ctx, "notice": None})


@router.post("/account/tokens/{token_id}/revoke")
def revoke_token(request: Request, token_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    row = db.get(identity.ApiToken, token_id)
    if row is None or row.user_id != principal.user_id or row.revoked_at is not None:
        raise policy.NotFound()
    identity.revoke_token(row)
    audit.record(db, action="token.revoke", actor=principal, object_type="api_token", object_id=row.id)
    return redirect("/account?notice=token-revoked")


def _user(db: Session, principal: identity.Principal) -> User:
    user = db.get(User, principal.user_id)
    assert user is not None
    return user


@router.get("/account/mfa")
def mfa_setup_form(request: Request, db: DbSession, principal: CurrentPrincipal) -> Response:
    """Turn on, or move to a new phone, two-step verification (a renewal needs the current code first)."""
    user = _user(db, principal)
    if user.mfa_enrolled:
        policy.require_step_up(principal)
    if principal.session_id is None:
        raise policy.NotFound()
    return _enrol_page(request, user, identity.new_totp_secret(), principal.session_id, "/account", None,
                       action="/account/mfa", ask_password=not user.mfa_enrolled)


@router.post("/account/mfa")
def mfa_setup(request: Request, db: DbSession, principal: CurrentPrincipal,
              code: Annotated[str, Form(max_length=20)] = "",
              pending: Annotated[str, Form(max_length=200)] = "",
              password: Annotated[str, Form(max_length=1024)] = "") -> Response:
    user = _user(db, principal)
    if principal.session_id is None:
        raise policy.NotFound()
    if user.mfa_enrolled:
        policy.require_step_up(principal)  # moving to a new phone: the current code first
    secret = _open_pending(pending, principal.session_id)
    if secret is None:
        return redirect("/account/mfa")
    first = not user.mfa_enrolled
    if first:
        # A first second factor binds the account to a phone: a borrowed session alone must not do it.
        allowed_attempt = ratelimit.hit(db, f"pwcheck:{user.id}", limit=PASSWORD_CHECKS, window=MFA_WINDOW)
        db.commit()
        if not allowed_attempt or not identity.check_password(user, password):
            return _enrol_page(request, user, secret, principal.session_id, "/account",
                               i18n.gettext("Your password is not right."), action="/account/mfa", ask_password=True)
    if not identity.verify_totp(db, user, code, secret=secret):
        return _enrol_page(request, user, secret, principal.session_id, "/account", i18n.gettext(WRONG_NEW_CODE),
                           action="/account/mfa", ask_password=first)
    identity.confirm_totp(db, user, secret)
    row = db.get(UserSession, principal.session_id)
    if row is not None:
        row.mfa_at = clock.now()
    audit.record(db, action="mfa.enrolled", actor=principal, object_type="person", object_id=user.id)
    return redirect("/account?notice=mfa")


@router.get("/account/step-up")
def step_up_form(request: Request, principal: CurrentPrincipal, next: str | None = None) -> Response:
    return render(request, "accounts/step_up.html", {"next": safe_next(next, "/account"), "error": None})


@router.post("/account/step-up")
def step_up(request: Request, db: DbSession, principal: CurrentPrincipal,
            code: Annotated[str, Form(max_length=20)] = "",
            next: Annotated[str, Form(max_length=2000)] = "/account") -> Response:
    user = _user(db, principal)
    row = db.get(UserSession, principal.session_id) if principal.session_id else None
    if row is None:
        raise policy.NotFound()
    if not user.mfa_enrolled:
        return redirect("/account/mfa")
    if _mfa_locked(db, user) or not identity.verify_totp(db, user, code):
        if _mfa_failure(db, row, user):
            return redirect("/login")
        return render(request, "accounts/step_up.html", {
            "next": safe_next(next, "/account"), "error": i18n.gettext("That code is not right. Use the newest code."),
        }, status=400)
    row.mfa_at = clock.now()
    audit.record(db, action="login.step_up", actor=principal, object_type="person", object_id=user.id)
    return redirect(safe_next(next, "/account"))


# Switching organization and language -------------------------------------------------------------------------


@router.post("/session/org")
def switch_org(request: Request, db: DbSession, principal: CurrentPrincipal,
               org_id: Annotated[str, Form(max_length=40)] = "",
               next: Annotated[str, Form(max_length=2000)] = "/") -> Response:
    try:
        target = uuid.UUID(org_id)
    except ValueError:
        raise policy.NotFound() from None
    network.switch_org(db, principal=principal, org_id=target)
    audit.record(db, action="session.switch_org", actor=principal, object_type="organization", object_id=target)
    return redirect(safe_next(next))


@router.post("/locale")
def switch_locale(request: Request, db: DbSession, principal: OptionalPrincipal,
                  locale: Annotated[str, Form(max_length=8)] = "",
                  next: Annotated[str, Form(max_length=2000)] = "/") -> Response:
    if locale not in i18n.LOCALES:
        raise ValidationFailed("locale", i18n.gettext("must be one of %(values)s", values=", ".join(i18n.LOCALES)))
    if principal is not None:
        user = db.get(User, principal.user_id)
        if user is not None and user.locale != locale:
            user.locale = locale
            audit.record(db, action="person.locale", actor=principal, object_type="person", object_id=user.id)
    response = redirect(safe_next(next))
    _set_locale_cookie(response, locale)
    return response

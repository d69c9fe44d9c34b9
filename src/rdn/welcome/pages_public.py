"""Welcome's public pages, for people without an account: citizens form a sponsor group on a programme's sign-up
page (the rules in plain words first, then the form; on success, what the group still needs and the email that
invites its contact person to set a password), and anyone offers an item for the programme's families.

Mobile-first and usable without JavaScript. Forms carry the CSRF token of anonymous forms (a signed nonce in a
cookie, as the sign-in page does) and a honeypot field; each address may send a limited number of forms an hour
(counted in the database, so every app server counts the same). A form with errors is shown again with every
error named and nothing stored. Unknown or closed programmes are a 404.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from rdn.config import get_settings
from rdn.core import policy, ratelimit
from rdn.core.context import client_ip_var
from rdn.core.errors import TooManyRequests, ValidationFailed
from rdn.core.i18n import N_
from rdn.core.i18n import gettext as _
from rdn.core.identity import Principal
from rdn.core.modules import page_router
from rdn.core.web import DbSession, OptionalPrincipal, PostedForm, redirect, render
from rdn.welcome import service
from rdn.welcome.models import Programme
from rdn.welcome.pages import error_map, group_data, labels, language_choices, rules_of, text

router = page_router()

HONEYPOT = "website"
#: Forms one address may send in an hour (sign-ups and donations each).
ATTEMPTS = (20, timedelta(hours=1))
DONOR_FIELDS = ("donor_name", "donor_email", "kind", "description", "condition", "quantity", "city")
NOTICES = {"thanks": N_("Thank you: your offer is recorded. A sponsor group will contact you when a family needs it.")}


def _address_key(purpose: str) -> str:
    ip = client_ip_var.get() or "unknown"
    digest = hmac.new(get_settings().secret_key.encode(), f"rdn-welcome:{ip}".encode(), hashlib.sha256)
    return f"welcome:{purpose}:{digest.hexdigest()[:32]}"


def _count_attempt(db: Session, purpose: str) -> None:
    limit, window = ATTEMPTS
    if not ratelimit.hit(db, _address_key(purpose), limit=limit, window=window):
        raise TooManyRequests(_("Too many forms were sent from your connection. Please try again in an hour."),
                              retry_after=int(window.total_seconds()))


def _programme(db: Session, slug: str) -> Programme:
    return service.public_programme(db, slug[:40])


def _join_page(request: Request, programme: Programme, *, values: dict[str, Any] | None = None,
               errors: dict[str, str] | None = None, message: str | None = None, status: int = 200,
               headers: dict[str, str] | None = None) -> Response:
    shown = values or {"min_size": 1, "max_size": 6, "capacity": 4, "stream": "matched"}
    return render(request, "welcome/join.html", {
        "programme": programme, "rules": rules_of(programme), "labels": labels(), "values": shown,
        "languages": language_choices(shown.get("languages") or []), "errors": errors or {}, "message": message,
        "honeypot": HONEYPOT}, status=status, headers=headers)


@router.get("/welcome/join/{programme_slug}")
def join_form(request: Request, programme_slug: str, db: DbSession, principal: OptionalPrincipal) -> Response:
    return _join_page(request, _programme(db, programme_slug))


@router.post("/welcome/join/{programme_slug}")
def join(request: Request, programme_slug: str, db: DbSession, principal: OptionalPrincipal,
         form: PostedForm) -> Response:
    programme = _programme(db, programme_slug)
    data = group_data(form)
    data.update(your_name=text(form, "your_name", 300), your_email=text(form, "your_email", 400))
    shown = {**data, "languages_other": text(form, "languages_other", 200)}
    try:
        _count_attempt(db, "join")
    except TooManyRequests as exc:
        return _join_page(request, programme, values=shown, message=exc.detail, status=429,
                          headers={"Retry-After": str(exc.retry_after)})
    if form.get(HONEYPOT) not in (None, ""):
        return _join_page(request, programme, values=shown, status=400,
                          message=_("The form could not be sent. Please try again."))
    try:
        with db.begin_nested():
            group = service.sign_up(db, programme=programme, data=data)
    except ValidationFailed as exc:
        return _join_page(request, programme, values=shown, errors=error_map(exc), status=422,
                          message=_("Some answers need attention. Please look at the messages below."))
    missing = service.eligibility(programme, group, service.members_of(db, group))
    return render(request, "welcome/joined.html", {
        "programme": programme, "group": group, "missing": missing, "email": data["your_email"].strip().lower(),
        "rules": rules_of(programme), "labels": labels()})


def _give_page(request: Request, programme: Programme, *, values: dict[str, Any] | None = None,
               errors: dict[str, str] | None = None, message: str | None = None, notice: str | None = None,
               status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return render(request, "welcome/give.html", {
        "programme": programme, "labels": labels(), "values": values or {"quantity": 1, "condition": "good"},
        "errors": errors or {}, "message": message, "notice": notice, "honeypot": HONEYPOT},
        status=status, headers=headers)


@router.get("/welcome/give/{programme_slug}")
def give_form(request: Request, programme_slug: str, db: DbSession, principal: OptionalPrincipal,
              notice: str | None = None) -> Response:
    return _give_page(request, _programme(db, programme_slug),
                      notice=_(NOTICES[notice]) if notice in NOTICES else None)


@router.post("/welcome/give/{programme_slug}")
def give(request: Request, programme_slug: str, db: DbSession, principal: OptionalPrincipal,
         form: PostedForm) -> Response:
    programme = _programme(db, programme_slug)
    data = {k: text(form, k, 600) for k in DONOR_FIELDS}
    try:
        _count_attempt(db, "give")
    except TooManyRequests as exc:
        return _give_page(request, programme, values=data, message=exc.detail, status=429,
                          headers={"Retry-After": str(exc.retry_after)})
    if form.get(HONEYPOT) not in (None, ""):
        return _give_page(request, programme, values=data, status=400,
                          message=_("The form could not be sent. Please try again."))
    try:
        with db.begin_nested():
            service.offer_donation(db, programme=programme, data=data, actor=_actor(principal))
    except ValidationFailed as exc:
        return _give_page(request, programme, values=data, errors=error_map(exc), status=422,
                          message=_("Some answers need attention. Please look at the messages below."))
    return redirect(f"/welcome/give/{programme.slug}?notice=thanks")


def _actor(principal: Principal | None) -> Principal | None:
    """Who is offering, if signed in (the audit names them); else the public."""
    return principal if principal is not None and policy.can(principal, "welcome.programme.read") else None

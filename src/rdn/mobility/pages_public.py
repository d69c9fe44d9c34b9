"""The public Safe Mobility pages, for refugees and migrants, without an account: the offices and who may register
at each, the registration form (mobile-first, no JavaScript needed, under 100 KB with its CSS), and the status
page opened with the reference and PIN (or the emailed link), where the registrant books an interview, updates
how to reach them or withdraws.

Every page is in the registrant's language (``?lang=``, then the ``rdn_public_lang`` cookie, then the browser's
preference), with a menu of the eight languages. Forms carry the CSRF token of anonymous forms (a signed nonce in
a cookie, as the sign-in page does), a honeypot field hidden by CSS and a signed time of issue: a form sent back
within 3 seconds (a robot) or after 2 hours is refused, with a clear message and the answers kept. After a right
PIN the registrant stays signed in to their own registration for 30 minutes through a signed cookie (not a
staff session). Failures are pages with a clear message in the registrant's language, never a server error.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException

from rdn.config import get_settings
from rdn.core import clock
from rdn.core.context import client_ip_var
from rdn.core.errors import ProblemError, TooManyRequests, ValidationFailed
from rdn.core.web import CsrfFailed, DbSession, PostedForm, UnitOfWorkRoute, redirect, render
from rdn.mobility import public_i18n, registration, sealed
from rdn.mobility.models import Office, Registration, RegistrationStatus
from rdn.mobility.public_i18n import PUBLIC_LOCALES, t

LANG_COOKIE = "rdn_public_lang"
SIGN_IN_COOKIE = "rdn_sm_status"
MIN_SECONDS = 3  # a person does not fill in the form faster
MAX_AGE = timedelta(hours=2)
START_ROWS = 3  # empty household rows shown at first; "more members" adds more
MORE_ROWS = 3
HONEYPOT = "website"
MEMBER_FIELD = re.compile(r"^members\[(\d{1,4})\]\.(relationship|given_name|family_name|birth_date|sex|nationality)$")


class PublicRoute(UnitOfWorkRoute):
    """The unit of work of every route, with the failures a stranger's browser can cause (an expired form, a
    form too large to read) answered by a public page in the registrant's language."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        inner = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await inner(request)
            except CsrfFailed:
                _language(request)
                return _message(request, 403, t("The form had expired"),
                                t("Please go back, reload the page and send the form again."))
            except StarletteHTTPException as exc:
                _language(request)
                if exc.status_code == 404:
                    return _message(request, 404, t("Page not found"), t("There is nothing at this address."))
                if exc.status_code == 405:
                    return _message(request, 405, t("This page cannot be used that way"),
                                    t("Please use the links and buttons on the page."))
                return _message(request, 400, t("The form could not be read"),
                                t("It may be too long. Please check what you entered and try again."))
            except TooManyRequests as exc:
                _language(request)
                return _message(request, 429, t("Too many attempts"), exc.detail,
                                headers={"Retry-After": str(exc.retry_after)})

        return handler


router = APIRouter(route_class=PublicRoute, include_in_schema=False)


# Language and pages --------------------------------------------------------------------------------------------



def _digits(text: str, most: int = 12) -> bool:
    """ASCII digits only (``str.isdigit`` also accepts "²", which ``int`` refuses)."""
    return bool(re.fullmatch(rf"[0-9]{{1,{most}}}", text or ""))

def _language(request: Request) -> str:
    asked = request.query_params.get("lang")
    code = public_i18n.pick(asked, request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))
    public_i18n.set_current(code)
    request.state.public_lang = code
    request.state.public_lang_asked = asked in PUBLIC_LOCALES
    return code


def _page(request: Request, template: str, context: dict[str, Any] | None = None, *, status: int = 200,
          headers: dict[str, str] | None = None, here: str | None = None) -> HTMLResponse:
    lang = getattr(request.state, "public_lang", None) or _language(request)
    ctx = {"lang": lang, "locale": lang, "dir": public_i18n.direction(lang), "here": here or request.url.path,
           "status_code": status, "field_id": field_id}
    ctx.update(context or {})
    response = render(request, f"mobility/public/{template}", ctx, status=status, headers=headers)
    response.headers["Content-Language"] = lang
    if getattr(request.state, "public_lang_asked", False):
        response.set_cookie(LANG_COOKIE, lang, samesite="lax", path="/", max_age=365 * 86400,
                            secure=get_settings().secure_cookies)
    return response


def _message(request: Request, status: int, title: str, text: str, *,
             headers: dict[str, str] | None = None) -> HTMLResponse:
    return _page(request, "message.html", {"title": title, "text": text}, status=status, headers=headers,
                 here="/safe-mobility")


def _ip() -> str | None:
    return client_ip_var.get()


def _office_or_404(request: Request, db: Session, office_slug: str) -> Office | HTMLResponse:
    office = registration.office_by_slug(db, office_slug)
    if office is None:
        return _message(request, 404, t("Office not found"),
                        t("There is no Safe Mobility office at this address. See the list of offices."))
    return office


# The offices ---------------------------------------------------------------------------------------------------


@router.get("/safe-mobility")
def offices(request: Request, db: DbSession) -> Response:
    _language(request)
    rows = [{"office": o, "who": registration.who_may_register(o),
             "country": registration.country_name(o.country)} for o in registration.public_offices(db)]
    return _page(request, "offices.html", {"offices": rows})


# Registration --------------------------------------------------------------------------------------------------


def _stamp(office: Office, at: int | None = None) -> str:
    at = int(clock.now().timestamp()) if at is None else at
    return f"{at}.{_mac('form', office.slug, at)}"


def _mac(purpose: str, *parts: object) -> str:
    key = get_settings().secret_key.encode()
    text = f"rdn-mobility-{purpose}:" + ":".join(str(p) for p in parts)
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()[:32]


def _stamp_problem(office: Office, value: Any) -> str | None:
    """Why the form's time of issue refuses it, or None."""
    text = value if isinstance(value, str) else ""
    at_text, _, mac = text[:80].partition(".")
    if not _digits(at_text) or not hmac.compare_digest(mac, _mac("form", office.slug, int(at_text))):
        return t("The form could not be checked. Please check your answers and send it again.")
    elapsed = clock.now().timestamp() - int(at_text)
    if elapsed < MIN_SECONDS:
        return t("The form was sent back faster than a person can fill it in. Please check your answers and "
                 "send it again.")
    if elapsed > MAX_AGE.total_seconds():
        return t("The form was open for more than 2 hours. Please check your answers and send it again.")
    return None


def form_to_data(form: FormData) -> tuple[dict[str, Any], int]:
    """The registration's fields from a posted form (the same shape the API takes), and how many household rows
    the form showed."""
    data: dict[str, Any] = {}
    for key in ("given_name", "family_name", "birth_date", "sex", "nationality", "arrived_on", "phone", "email",
                "whatsapp", "consent_screening", "consent_contact", "consent_share"):
        value = form.get(key)
        if isinstance(value, str):
            data[key] = value
    rows: dict[int, dict[str, str]] = {}
    highest = -1
    answers: dict[str, str] = {}
    for key, value in form.multi_items():
        if not isinstance(value, str):
            continue
        match = MEMBER_FIELD.match(key)
        if match:
            index = int(match.group(1))
            highest = max(highest, index)
            if index < registration.MAX_MEMBER_ROWS:
                rows.setdefault(index, {})[match.group(2)] = value
        elif key.startswith("answers.") and len(answers) < registration.MAX_ANSWERS:
            answers[key[8:]] = value
    count = min(highest + 1, registration.MAX_MEMBER_ROWS + 1)
    data["members"] = [rows.get(i, {}) for i in range(count)]
    data["ties"] = [v for v in form.getlist("ties")[:registration.MAX_TIES * 3 + 1] if isinstance(v, str)]
    data["answers"] = answers
    shown = form.get("rows")
    shown_rows = int(shown) if isinstance(shown, str) and _digits(shown, 2) else START_ROWS
    return data, max(START_ROWS, min(max(shown_rows, count), registration.MAX_MEMBERS))


def _questions(db: Session, office: Office, lang: str) -> list[dict[str, Any]]:
    from rdn.mobility import screening

    shown = []
    for q in screening.questions_for(db, office.id):
        item = {"key": q.get("key"), "type": q.get("type"), "text": screening.question_text(q, lang)}
        if q.get("type") == "choice":
            item["options"] = screening.choice_options(q, lang)
        shown.append(item)
    return shown


def _nationality_options(office: Office) -> list[tuple[str, str]]:
    if office.nationalities:
        options = sorted(((c, registration.country_name(c)) for c in office.nationalities), key=lambda o: o[1])
        return [*options, ("other", t("Another nationality"))]
    from rdn.core import i18n

    return list(i18n.countries(registration._babel_countries()))


def _countries() -> list[tuple[str, str]]:
    from rdn.core import i18n

    return list(i18n.countries(registration._babel_countries()))


def field_id(name: str) -> str:
    """The id of a field's input from its error name: ``members[2].birth_date`` -> ``f-members-2-birth_date``."""
    return "f-" + re.sub(r"[^A-Za-z0-9_]+", "-", name).strip("-")


def _form_page(request: Request, db: Session, office: Office, *, values: dict[str, Any] | None = None,
               rows: int = START_ROWS, errors: list[tuple[str, str]] | None = None, message: str | None = None,
               status: int = 200, stamp: str | None = None, headers: dict[str, str] | None = None) -> HTMLResponse:
    lang = request.state.public_lang
    values = values or {}
    members = list(values.get("members") or [])
    members += [{}] * (rows - len(members))
    ties = list(values.get("ties") or [])
    ties += [""] * (3 - len(ties))
    by_field = {}
    for name, text in errors or []:
        by_field.setdefault(name, text)
    return _page(request, "register.html", {
        "office": office, "who": registration.who_may_register(office), "values": values,
        "members": members[:registration.MAX_MEMBERS], "ties": ties[:registration.MAX_TIES],
        "answers": values.get("answers") or {}, "questions": _questions(db, office, lang),
        "errors": by_field, "error_list": [(n, m, field_id(n)) for n, m in errors or []], "message": message,
        "rows": min(len(members), registration.MAX_MEMBERS), "can_add": len(members) < registration.MAX_MEMBERS,
        "stamp": stamp or _stamp(office), "nationalities": _nationality_options(office), "countries": _countries(),
        "field_id": field_id, "max_members": registration.MAX_MEMBERS,
        "office_country": registration.country_name(office.country),
    }, status=status, headers=headers, here=f"/safe-mobility/{office.slug}/register")


@router.get("/safe-mobility/status")
def status_page(request: Request, db: DbSession, notice: str | None = None) -> Response:
    _language(request)
    reg = _signed_in(request, db)
    if reg is None:
        return _page(request, "lookup.html", {"error": None, "reference": "", "notice": _notice(notice)})
    return _status(request, db, reg, notice=_notice(notice))


@router.post("/safe-mobility/status")
def status_lookup(request: Request, db: DbSession, form: PostedForm) -> Response:
    _language(request)
    reference, pin = form.get("reference"), form.get("pin")
    reference = reference[:40] if isinstance(reference, str) else ""
    try:
        reg = registration.lookup(db, reference=reference, pin=pin if isinstance(pin, str) else "", ip=_ip())
    except TooManyRequests as exc:
        return _page(request, "lookup.html", {"error": exc.detail, "reference": reference, "notice": None},
                     status=429, headers={"Retry-After": str(exc.retry_after)})
    if reg is None:
        return _page(request, "lookup.html", {
            "error": t("The reference or the PIN is not right. Check them and try again."),
            "reference": reference, "notice": None}, status=400)
    response = redirect("/safe-mobility/status")
    _sign_in(response, reg)
    return response


@router.get("/safe-mobility/status/{reference}")
def status_link(request: Request, db: DbSession, reference: str, token: str = "") -> Response:
    _language(request)
    reg = registration.from_token(db, reference[:40], token[:100], ip=_ip())
    if reg is None:
        return _page(request, "lookup.html", {
            "error": t("This link has expired or is not complete. Enter your reference and PIN instead."),
            "reference": sealed.normal_reference(reference[:40]), "notice": None}, status=400,
            here="/safe-mobility/status")
    response = redirect(f"/safe-mobility/status?lang={request.state.public_lang}")
    _sign_in(response, reg)
    return response


@router.get("/safe-mobility/{office_slug}")
def office_page(request: Request, office_slug: str) -> Response:
    return redirect(f"/safe-mobility/{office_slug[:40]}/register")


@router.get("/safe-mobility/{office_slug}/register")
def register_form(request: Request, db: DbSession, office_slug: str) -> Response:
    _language(request)
    office = _office_or_404(request, db, office_slug)
    if isinstance(office, HTMLResponse):
        return office
    if not office.accepting:
        return _page(request, "not_eligible.html", {"office": office,
                                                    "result": registration.eligibility(office, None, None)})
    return _form_page(request, db, office)


@router.post("/safe-mobility/{office_slug}/register")
def register(request: Request, db: DbSession, office_slug: str, form: PostedForm) -> Response:
    lang = _language(request)
    office = _office_or_404(request, db, office_slug)
    if isinstance(office, HTMLResponse):
        return office
    data, rows = form_to_data(form)
    data["language"] = lang
    stamp = form.get("issued")
    if form.get("more"):
        # "More members": the same form again with more empty rows (nothing is checked or stored).
        kept = stamp if isinstance(stamp, str) and len(stamp) <= 80 else None
        return _form_page(request, db, office, values=data, rows=min(rows + MORE_ROWS, registration.MAX_MEMBERS),
                          stamp=kept)
    try:
        honeypot = form.get(HONEYPOT)
        problem = (t("The form could not be sent. Please try again.")
                   if honeypot not in (None, "") else _stamp_problem(office, stamp))
        if problem:
            registration.check_attempt(db, _ip())
            return _form_page(request, db, office, values=data, rows=rows, message=problem, status=400)
        done = registration.register(db, office=office, data=data, language=lang, ip=_ip())
    except registration.NotEligible as exc:
        return _page(request, "not_eligible.html", {"office": office, "result": exc.eligibility},
                     here=f"/safe-mobility/{office.slug}/register")
    except TooManyRequests as exc:
        return _form_page(request, db, office, values=data, rows=rows, message=exc.detail, status=429,
                          headers={"Retry-After": str(exc.retry_after)})
    except ValidationFailed as exc:
        errors = [(e.field, e.message) for e in exc.errors]
        return _form_page(request, db, office, values=data, rows=rows, errors=errors, status=422,
                          message=t("Some answers need attention. Please look at the messages below."))
    reg = done.registration
    response = _page(request, "registered.html", {
        "office": office, "reference": reg.reference, "pin": done.pin, "pathways": _pathways(db, reg),
        "email_sent": bool(reg.consent_contact and sealed.contact_of(db, reg).get("email")),
    }, here="/safe-mobility/status")
    _sign_in(response, reg)
    return response


# Status --------------------------------------------------------------------------------------------------------


NOTICES = ("booked", "contact", "withdrawn", "signed_out", "expired")


def _notice(key: str | None) -> str | None:
    texts = {
        "booked": t("Your interview is booked. You will find the date, time and address below."),
        "contact": t("Your contact details were saved."),
        "withdrawn": t("Your registration is withdrawn."),
        "signed_out": t("You have left your registration's page."),
        "expired": t("For your safety, please enter your reference and PIN again."),
    }
    return texts.get(key or "")


def _sign_in(response: Response, reg: Registration) -> None:
    response.set_cookie(SIGN_IN_COOKIE, registration.sign_in_value(reg), httponly=True, samesite="lax", path="/",
                        max_age=registration.SIGN_IN_MINUTES * 60, secure=get_settings().secure_cookies)


def _signed_in(request: Request, db: Session) -> Registration | None:
    reg = registration.from_sign_in(db, request.cookies.get(SIGN_IN_COOKIE))
    return registration.followed(db, reg) if reg is not None else None


def _pathways(db: Session, reg: Registration) -> list[dict[str, Any]]:
    from rdn.mobility import screening

    shown = []
    for result, rule in screening.results_of(db, reg):
        if not result.qualifies:
            continue
        checks = [screening.describe_public(c, questions=rule.questions) for c in result.checks or []
                  if isinstance(c, dict) and c.get("held")]
        shown.append({"name": rule.name, "destination": registration.country_name(rule.destination),
                      "checks": checks})
    return shown


def _status(request: Request, db: Session, reg: Registration, *, notice: str | None = None,
            errors: dict[str, str] | None = None, status: int = 200, contact: dict[str, Any] | None = None,
            message: str | None = None) -> HTMLResponse:
    from rdn.mobility import appointments

    lang = request.state.public_lang
    office = db.get(Office, reg.office_id)
    assert office is not None
    current = appointments.current_appointment(db, reg)
    appointment = None
    if current is not None:
        slot = current[1]
        appointment = {"when": appointments.when_text(slot, office, lang),
                       "where": slot.location or office.address or office.name}
    state = RegistrationStatus(registration.registration_status_value(reg.status))
    can_book = current is None and state in (RegistrationStatus.received, RegistrationStatus.screened)
    slots = []
    if can_book:
        slots = [{"id": s.id, "when": appointments.when_text(s, office, lang)}
                 for s in appointments.open_slots(db, office, limit=10)]
    stored = sealed.contact_of(db, reg)
    response = _page(request, "status.html", {
        "reg": reg, "office": office, "status_name": registration.status_name(state), "state": state.value,
        "steps": registration.timeline(db, reg), "pathways": _pathways(db, reg), "appointment": appointment,
        "slots": slots, "can_book": can_book, "notice": notice, "message": message, "errors": errors or {},
        "contact": contact if contact is not None else {
            "phone": stored.get("phone") or "", "email": stored.get("email") or "",
            "whatsapp": stored.get("whatsapp") or "", "consent_contact": reg.consent_contact is not None},
        "open": state in registration.OPEN_STATUSES,
    }, status=status, here="/safe-mobility/status")
    _sign_in(response, reg)  # 30 more minutes from each page
    return response


def _registrant_or_redirect(request: Request, db: Session) -> Registration | Response:
    _language(request)
    reg = _signed_in(request, db)
    if reg is None:
        return redirect("/safe-mobility/status?notice=expired")
    return reg


@router.post("/safe-mobility/status/book")
def book(request: Request, db: DbSession, form: PostedForm) -> Response:
    from rdn.mobility import appointments

    reg = _registrant_or_redirect(request, db)
    if isinstance(reg, Response):
        return reg
    slot_id = form.get("slot")
    try:
        parsed = uuid.UUID(slot_id) if isinstance(slot_id, str) and len(slot_id) <= 40 else None
    except ValueError:
        parsed = None
    if parsed is None:
        return _status(request, db, reg, message=t("Choose one of the times offered."), status=422)
    try:
        with db.begin_nested():
            appointments.book(db, registration=reg, slot_id=parsed, by="registrant")
    except ProblemError as exc:
        text = "; ".join(e.message for e in exc.errors) or exc.detail
        return _status(request, db, reg, message=text, status=exc.status)
    return redirect("/safe-mobility/status?notice=booked")


@router.post("/safe-mobility/status/contact")
def update_contact(request: Request, db: DbSession, form: PostedForm) -> Response:
    reg = _registrant_or_redirect(request, db)
    if isinstance(reg, Response):
        return reg
    data = {k: form.get(k) for k in ("phone", "email", "whatsapp", "consent_contact")}
    data = {k: v for k, v in data.items() if isinstance(v, str)}
    try:
        with db.begin_nested():
            registration.update_contact(db, registration=reg, data=data)
    except ValidationFailed as exc:
        errors = {}
        for e in exc.errors:
            errors.setdefault(e.field, e.message)
        shown = {**{k: data.get(k, "") for k in ("phone", "email", "whatsapp")},
                 "consent_contact": bool(data.get("consent_contact"))}
        return _status(request, db, reg, errors=errors, contact=shown, status=422,
                       message=t("Some answers need attention. Please look at the messages below."))
    return redirect("/safe-mobility/status?notice=contact")


@router.post("/safe-mobility/status/withdraw")
def withdraw(request: Request, db: DbSession, form: PostedForm) -> Response:
    reg = _registrant_or_redirect(request, db)
    if isinstance(reg, Response):
        return reg
    if form.get("confirm") not in ("yes", "on"):
        return _status(request, db, reg, errors={"confirm": t("Tick the box to confirm that you want to withdraw.")},
                       status=422, message=t("Some answers need attention. Please look at the messages below."))
    reason = form.get("reason")
    try:
        with db.begin_nested():
            registration.withdraw(db, registration=reg, reason=reason if isinstance(reason, str) else "")
    except ProblemError as exc:
        return _status(request, db, reg, message=exc.detail, status=exc.status)
    return redirect("/safe-mobility/status?notice=withdrawn")


@router.post("/safe-mobility/status/leave")
def leave(request: Request) -> Response:
    _language(request)
    response = redirect("/safe-mobility/status?" + urlencode({"notice": "signed_out"}))
    response.delete_cookie(SIGN_IN_COOKIE, path="/")
    return response

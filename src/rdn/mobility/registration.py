"""Public registration at a Safe Mobility office, and what a registrant can do afterwards with their reference and
PIN (or the signed link in their email): see where they stand, update how to reach them, withdraw.

* ``eligibility`` says who may register at an office (nationality, in the country by the cut-off date, the office
  taking registrations) and, when not, why and where else to look, in the registrant's language.
* ``clean`` checks everything a form or the API sends, field by field, with hard caps on every size: wrong types
  give field errors (``members[2].birth_date``), never exceptions.
* ``register`` stores a registration (names and contact sealed, keyed hashes for duplicates), screens it, audits
  it and, with consent, emails the reference and a status link (never the PIN). Floods from one address are
  limited; a second registration of the same person is kept, linked to the first, for staff to merge; the
  registrant is never told that someone else registered.
* ``lookup`` and ``from_token`` open a registration for its registrant; wrong PINs are limited per reference and
  per address, and an unknown reference looks exactly like a wrong PIN.

Services never commit; the request's unit of work does.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import statistics
import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from rdn.config import get_settings
from rdn.core import audit, clock, i18n, policy, ratelimit
from rdn.core.audit import Actor
from rdn.core.errors import Conflict, FieldError, TooManyRequests, ValidationFailed
from rdn.core.identity import Principal
from rdn.mobility import messages, sealed
from rdn.mobility.models import OPEN_STATUSES, Office, Registration, RegistrationStatus
from rdn.mobility.public_i18n import PUBLIC_LOCALES, t, tn, using

# Sizes ---------------------------------------------------------------------------------------------------------

MAX_MEMBERS = 15  # others in the household, besides the person registering
MAX_MEMBER_ROWS = 60  # entries looked at at all (blank rows of a form included); more is refused outright
MAX_TIES = 10
MAX_NAME = 100
MAX_EMAIL = 254
MAX_PHONE_TEXT = 30
MAX_ANSWERS = 100
MAX_ANSWER_TEXT = 200
MAX_REASON = 500
MAX_AGE_YEARS = 120
RELATIONSHIPS = ("spouse", "child", "parent", "sibling", "other")
SEXES = ("f", "m", "x")
TRUE_WORDS = frozenset({"on", "yes", "true", "1"})
FALSE_WORDS = frozenset({"", "off", "no", "false", "0"})

# Limits --------------------------------------------------------------------------------------------------------

#: Submissions of the form or the API from one address (valid or not): floods of garbage stop here.
ATTEMPTS = (30, timedelta(minutes=10))
#: Registrations stored from one address (families share a shelter's connection: not too tight).
REGISTRATIONS_SHORT = (5, timedelta(minutes=10))
REGISTRATIONS_DAY = (20, timedelta(days=1))
#: Wrong PINs (or links) per reference, and per address.
PIN_PER_REFERENCE = (5, timedelta(minutes=15))
PIN_PER_ADDRESS = (30, timedelta(hours=1))

TOKEN_DAYS = 30
SIGN_IN_MINUTES = 30
#: Roughly how long the steps take when the office has too few referrals to measure it (honest, plain).
DEFAULT_WEEKS_TO_INTERVIEW = 4
DEFAULT_WEEKS_TO_REFERRAL = 12
DEFAULT_MONTHS_DECISION = 6

PUBLIC = Actor("public registration")


# Eligibility ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Eligibility:
    eligible: bool
    reasons: list[str] = field(default_factory=list)  # in the registrant's language
    elsewhere: str = ""  # the office's advice on where else to look


class NotEligible(ValidationFailed):
    """Someone the office cannot register: nothing is stored; ``eligibility`` says why."""

    def __init__(self, result: Eligibility) -> None:
        super().__init__(errors=[FieldError("eligibility", r) for r in result.reasons])
        self.eligibility = result



def _digits(text: str, most: int = 12) -> bool:
    """ASCII digits only (``str.isdigit`` also accepts "²", which ``int`` refuses)."""
    return bool(re.fullmatch(rf"[0-9]{{1,{most}}}", text or ""))

def country_name(code: str, lang: str | None = None) -> str:
    return i18n.country_name(code, _babel_countries(lang))


def _babel_countries(lang: str | None = None) -> str:
    from rdn.mobility.public_i18n import current

    code = lang or current()
    return {"prs": "fa_AF", "ht": "fr"}.get(code, code)


def format_day(value: date, lang: str | None = None) -> str:
    return i18n.format_date(value, _babel_countries(lang), fmt="long")


def eligibility(office: Office, nationality: str | None, arrived_on: date | None) -> Eligibility:
    """Whether someone of ``nationality``, in the office's country since ``arrived_on``, may register there."""
    reasons = []
    if not office.accepting:
        reasons.append(t("This office is not taking new registrations at the moment."))
    if office.nationalities and (nationality or "").upper() not in office.nationalities:
        names = i18n.format_list(sorted(country_name(c) for c in office.nationalities), _babel_countries())
        reasons.append(t("This office registers people of these nationalities only: %(names)s.", names=names))
    if office.presence_cutoff is not None and arrived_on is not None and arrived_on > office.presence_cutoff:
        reasons.append(t("This office registers people who were already in %(country)s on %(date)s or before.",
                         country=country_name(office.country), date=format_day(office.presence_cutoff)))
    return Eligibility(not reasons, reasons, office.elsewhere or "")


def who_may_register(office: Office) -> str:
    """One plain sentence: who may register at ``office``."""
    if office.nationalities:
        names = i18n.format_list(sorted(country_name(c) for c in office.nationalities), _babel_countries())
        who = t("People of these nationalities: %(names)s.", names=names)
    else:
        who = t("People of any nationality.")
    if office.presence_cutoff is not None:
        who += " " + t("You must have been in %(country)s on %(date)s or before.",
                       country=country_name(office.country), date=format_day(office.presence_cutoff))
    return who


# Cleaning ------------------------------------------------------------------------------------------------------


class _Errors:
    def __init__(self) -> None:
        self.items: list[FieldError] = []

    def add(self, name: str, message: str) -> None:
        self.items.append(FieldError(name, message))

    def has(self, name: str) -> bool:
        return any(e.field == name for e in self.items)


def _text(errors: _Errors, data: Mapping[str, Any], key: str, name: str, *, cap: int,
          required: bool = False) -> str | None:
    """A string field, stripped and NFC-normalised; None (and an error) when wrong."""
    value = data.get(key)
    if value is None:
        value = ""
    if not isinstance(value, str):
        errors.add(name, t("Please enter text here."))
        return None
    if len(value) > cap * 4:
        errors.add(name, t("This is too long: at most %(max)s characters.", max=cap))
        return None
    value = unicodedata.normalize("NFC", value).strip()
    if len(value) > cap:
        errors.add(name, t("This is too long: at most %(max)s characters.", max=cap))
        return None
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co") and c not in "\u200c\u200d" for c in value):
        errors.add(name, t("This contains characters that cannot be used."))
        return None
    if required and not value:
        errors.add(name, t("Please fill this in."))
        return None
    return value


_NAME_PUNCT = frozenset(" -'\u2019.")  # the typographic apostrophe too


def _name(errors: _Errors, data: Mapping[str, Any], key: str, name: str, *, required: bool) -> str:
    value = _text(errors, data, key, name, cap=MAX_NAME, required=required)
    if not value:
        return ""
    value = " ".join(value.split())
    ok = all(c.isalpha() or c in _NAME_PUNCT or unicodedata.category(c).startswith("M") or c in "\u200c\u200d"
             for c in value)
    if not ok or not any(c.isalpha() for c in value):
        errors.add(name, t("Please use letters only (spaces, hyphens and apostrophes are fine)."))
        return ""
    return value


def _date(errors: _Errors, data: Mapping[str, Any], key: str, name: str, *, required: bool = True,
          earliest: date | None = None) -> date | None:
    value = data.get(key)
    if isinstance(value, datetime):
        value = value.date()
    if value is None or value == "":
        if required:
            errors.add(name, t("Please give a date."))
        return None
    if isinstance(value, str) and len(value) <= 10 and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        try:
            value = date.fromisoformat(value.strip())
        except ValueError:
            value = None
    if not isinstance(value, date):
        errors.add(name, t("Please give a date as year-month-day, for example 1990-05-17."))
        return None
    today = clock.now().date()
    if value > today:
        errors.add(name, t("This date is in the future."))
        return None
    if value < (earliest or date(today.year - MAX_AGE_YEARS, 1, 1)):
        errors.add(name, t("Please check this date: it is too far in the past."))
        return None
    return value


@cache
def _country_names() -> dict[str, str]:
    """Folded country names in every public language (and English) -> code."""
    names: dict[str, str] = {}
    for lang in (*PUBLIC_LOCALES, "en"):
        for code, name in i18n.countries(_babel_countries(lang)):
            names.setdefault(sealed._fold(name), code)
    return names


def _country(errors: _Errors, value: Any, name: str, *, required: bool = True) -> str | None:
    if value is None or value == "":
        if required:
            errors.add(name, t("Please choose a country."))
        return None
    if not isinstance(value, str) or len(value) > 80:
        errors.add(name, t("Please choose a country from the list."))
        return None
    text = value.strip()
    if len(text) == 2 and i18n.is_country(text.upper()):
        return text.upper()
    code = _country_names().get(sealed._fold(text))
    if code is None:
        errors.add(name, t("Please choose a country from the list."))
    return code


def _choice(errors: _Errors, data: Mapping[str, Any], key: str, name: str, allowed: tuple[str, ...],
            *, required: bool) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        if required:
            errors.add(name, t("Please choose one."))
        return None
    if not isinstance(value, str) or value not in allowed:
        errors.add(name, t("Please choose one of the options."))
        return None
    return value


def _flag(errors: _Errors, data: Mapping[str, Any], key: str) -> bool:
    value = data.get(key)
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and len(value) <= 10 and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    errors.add(key, t("Please tick the box, or leave it empty."))
    return False


def _phone(errors: _Errors, data: Mapping[str, Any], key: str) -> str:
    value = _text(errors, data, key, key, cap=MAX_PHONE_TEXT)
    if not value:
        return ""
    if not re.fullmatch(r"\+?[\d\s().\-]+", value):
        errors.add(key, t("Please use digits only, for example +506 8888 1234."))
        return ""
    digits = re.sub(r"\D", "", value)
    if not 7 <= len(digits) <= 15:
        errors.add(key, t("A phone number has 7 to 15 digits."))
        return ""
    return ("+" if value.startswith("+") else "") + digits


_EMAIL = re.compile(r"^[^@\s<>\"'(),;:\\\[\]]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+$")


def _email(errors: _Errors, data: Mapping[str, Any]) -> str:
    value = _text(errors, data, "email", "email", cap=MAX_EMAIL)
    if not value:
        return ""
    if not _EMAIL.match(value):
        errors.add("email", t("Please check the email address, for example name@example.org."))
        return ""
    return value


def _answers(errors: _Errors, data: Any, questions: list[dict[str, Any]]) -> dict[str, Any]:
    if data is None or data == "":
        return {}
    if not isinstance(data, Mapping) or len(data) > MAX_ANSWERS:
        errors.add("answers", t("Please answer the questions with the options given."))
        return {}
    answers: dict[str, Any] = {}
    for q in questions:
        key = q.get("key")
        if not isinstance(key, str) or key not in data:
            continue
        value, name = data[key], f"answers.{key}"
        if value is None or value == "":
            continue
        kind = q.get("type")
        if kind == "yes_no":
            if isinstance(value, bool):
                answers[key] = value
            elif isinstance(value, str) and value.strip().lower() in ("yes", "no", "true", "false"):
                answers[key] = value.strip().lower() in ("yes", "true")
            else:
                errors.add(name, t("Please answer yes or no."))
        elif kind == "number":
            number: int | None = None
            if isinstance(value, int) and not isinstance(value, bool):
                number = value
            elif ((isinstance(value, float) and value.is_integer())
                  or (isinstance(value, str) and re.fullmatch(r"\s*\d{1,6}\s*", value))):
                number = int(value)
            if number is None or not 0 <= number <= 100_000:
                errors.add(name, t("Please give a whole number."))
            else:
                answers[key] = number
        elif kind == "choice":
            allowed = [choice_value(c) for c in q.get("choices") or []]
            if isinstance(value, str) and len(value) <= MAX_ANSWER_TEXT and value in allowed:
                answers[key] = value
            else:
                errors.add(name, t("Please choose one of the options."))
    return answers


def choice_value(choice: Any) -> str:
    """A question's choice: a plain string, or ``{"value": ..., "text": {...}}``."""
    if isinstance(choice, Mapping):
        return str(choice.get("value", choice.get("key", "")))
    return str(choice)


def _member(errors: _Errors, raw: Any, i: int, principal_nationality: str | None,
            arrived_on: date | None) -> dict[str, Any] | None:
    prefix = f"members[{i}]"
    if not isinstance(raw, Mapping):
        errors.add(prefix, t("Please fill in this person's details."))
        return None
    if all(v is None or (isinstance(v, str) and not v.strip()) for v in raw.values()):
        return None  # an empty row of the form
    before = len(errors.items)
    member = {
        "relationship": _choice(errors, raw, "relationship", f"{prefix}.relationship", RELATIONSHIPS,
                                required=True),
        "given_name": _name(errors, raw, "given_name", f"{prefix}.given_name", required=True),
        "family_name": _name(errors, raw, "family_name", f"{prefix}.family_name", required=False),
        "birth_date": _date(errors, raw, "birth_date", f"{prefix}.birth_date"),
        "sex": _choice(errors, raw, "sex", f"{prefix}.sex", SEXES, required=False),
        "nationality": _country(errors, raw.get("nationality"), f"{prefix}.nationality", required=False)
        or principal_nationality,
    }
    return member if len(errors.items) == before else None


def clean(office: Office, data: Mapping[str, Any], *, questions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """What a registration form or API call sent, checked: the fields as Python values, or ``ValidationFailed``
    naming every wrong field (messages in the registrant's language)."""
    errors = _Errors()
    if not isinstance(data, Mapping):
        raise ValidationFailed("request", t("Please send the registration's fields."))
    out: dict[str, Any] = {
        "given_name": _name(errors, data, "given_name", "given_name", required=True),
        "family_name": _name(errors, data, "family_name", "family_name", required=False),
        "birth_date": _date(errors, data, "birth_date", "birth_date"),
        "sex": _choice(errors, data, "sex", "sex", SEXES, required=True),
        "nationality": _country(errors, data.get("nationality"), "nationality"),
    }
    out["arrived_on"] = _date(errors, data, "arrived_on", "arrived_on", earliest=date(1950, 1, 1))
    if out["arrived_on"] and out["birth_date"] and out["arrived_on"] < out["birth_date"]:
        errors.add("arrived_on", t("The date you arrived cannot be before your birth date."))
    members = data.get("members")
    out["members"] = []
    if members is not None and members != "":
        if not isinstance(members, list):
            errors.add("members", t("Please list the people in your household."))
        elif len(members) > MAX_MEMBER_ROWS:
            errors.add("members", t("At most %(max)s people can register with you.", max=MAX_MEMBERS))
        else:
            for i, raw in enumerate(members):
                member = _member(errors, raw, i, out["nationality"], out["arrived_on"])
                if member is not None:
                    out["members"].append(member)
            filled = sum(1 for raw in members if isinstance(raw, Mapping) and any(
                not (v is None or (isinstance(v, str) and not v.strip())) for v in raw.values()))
            if filled > MAX_MEMBERS:
                errors.add("members", t("At most %(max)s people can register with you.", max=MAX_MEMBERS))
    ties = data.get("ties")
    out["ties"] = []
    if ties is not None and ties != "":
        if not isinstance(ties, list) or len(ties) > MAX_TIES * 3:
            errors.add("ties", t("Please choose at most %(max)s countries.", max=MAX_TIES))
        else:
            for i, value in enumerate(ties):
                if value is None or value == "":
                    continue
                code = _country(errors, value, f"ties[{i}]")
                if code and code not in out["ties"]:
                    out["ties"].append(code)
            if len(out["ties"]) > MAX_TIES:
                errors.add("ties", t("Please choose at most %(max)s countries.", max=MAX_TIES))
    out["phone"] = _phone(errors, data, "phone")
    out["whatsapp"] = _phone(errors, data, "whatsapp")
    out["email"] = _email(errors, data)
    out["consent_screening"] = _flag(errors, data, "consent_screening")
    out["consent_contact"] = _flag(errors, data, "consent_contact")
    out["consent_share"] = _flag(errors, data, "consent_share")
    if not out["consent_screening"] and not errors.has("consent_screening"):
        errors.add("consent_screening", t("We can only register you if you agree to be screened for pathways."))
    if (out["consent_contact"] and not (out["phone"] or out["email"] or out["whatsapp"])
            and not any(errors.has(k) for k in ("phone", "email", "whatsapp"))):
        errors.add("phone", t("Give at least one way to reach you, or leave the box about contacting you "
                              "unticked."))
    out["answers"] = _answers(errors, data.get("answers"), questions or [])
    language = data.get("language") or "es"
    if not isinstance(language, str) or language not in PUBLIC_LOCALES:
        errors.add("language", t("Please choose one of the languages offered."))
        language = "es"
    out["language"] = language
    if errors.items:
        raise ValidationFailed(errors=errors.items)
    return out


def _eligibility_first(office: Office, data: Mapping[str, Any]) -> None:
    """Someone not eligible hears so before anything else about the form."""
    if not isinstance(data, Mapping):
        return
    errors = _Errors()
    nationality = data.get("nationality")
    code = "other" if nationality == "other" else _country(errors, nationality, "nationality")
    arrived_on = _date(errors, data, "arrived_on", "arrived_on", earliest=date(1950, 1, 1))
    if not office.accepting or (code and arrived_on and not errors.items):
        result = eligibility(office, code, arrived_on)
        if not result.eligible:
            raise NotEligible(result)
    if code == "other":
        result = eligibility(office, "other", arrived_on)
        if not result.eligible:
            raise NotEligible(result)


# Registering ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Registered:
    registration: Registration
    pin: str  # shown once, never stored in clear


def _limit_message(window: timedelta) -> str:
    minutes = max(1, int(window.total_seconds() // 60))
    if minutes >= 120:
        return t("Too many attempts from your connection today. Please try again tomorrow.")
    return t("Too many attempts from your connection. Please wait %(minutes)s minutes and try again.",
             minutes=minutes)


def check_attempt(session: Session, ip: str | None) -> None:
    """Count one submission of the form (or the API) from ``ip``; TooManyRequests past the limit."""
    limit, window = ATTEMPTS
    if not ratelimit.hit(session, f"mobility:try:{sealed.ip_key(ip)}", limit=limit, window=window):
        raise TooManyRequests(_limit_message(window), retry_after=int(window.total_seconds()))


def _check_registrations(session: Session, ip: str | None) -> None:
    key = sealed.ip_key(ip)
    for name, (limit, window) in (("short", REGISTRATIONS_SHORT), ("day", REGISTRATIONS_DAY)):
        if not ratelimit.hit(session, f"mobility:reg:{name}:{key}", limit=limit, window=window):
            raise TooManyRequests(_limit_message(window), retry_after=int(window.total_seconds()))


def find_duplicate(session: Session, office: Office, *, person_key: str, phone_key: str | None,
                   email_key: str | None, birth_date: date | None) -> Registration | None:
    """The earliest registration at ``office`` of the same person (same name and birth date), or with the same
    phone or email and the same birth date."""
    same_contact = [Registration.phone_key == phone_key] if phone_key else []
    if email_key:
        same_contact.append(Registration.email_key == email_key)
    conditions = [Registration.person_key == person_key]
    if same_contact and birth_date is not None:
        conditions.append(or_(*same_contact) & (Registration.birth_date == birth_date))
    return session.scalars(
        select(Registration).where(Registration.office_id == office.id, or_(*conditions),
                                   Registration.status != RegistrationStatus.merged)
        .order_by(Registration.created_at, Registration.id).limit(1)
    ).first()


def _history(registration: Registration, status: str, by: str, **extra: Any) -> None:
    entry = {"at": clock.now().isoformat(), "status": status, "by": by, **extra}
    registration.history = [*(registration.history or []), entry]


def _new_reference(session: Session, country: str) -> str:
    for _ in range(10):
        reference = sealed.new_reference(country)
        if session.scalar(select(Registration.id).where(Registration.reference == reference)) is None:
            return reference
    raise RuntimeError("no free reference after 10 tries")  # 32^8 references: never in practice


def register(session: Session, *, office: Office, data: Mapping[str, Any], language: str | None = None,
             ip: str | None) -> Registered:
    """Store a registration made by the registrant (the form or the API). Raises ``NotEligible`` (nothing
    stored), ``ValidationFailed`` naming the fields, ``TooManyRequests``."""
    from rdn.mobility import screening

    check_attempt(session, ip)
    if isinstance(data, Mapping) and language and not data.get("language"):
        data = {**data, "language": language}
    _eligibility_first(office, data)
    questions = screening.questions_for(session, office.id)
    cleaned = clean(office, data, questions=questions)
    result = eligibility(office, cleaned["nationality"], cleaned["arrived_on"])
    if not result.eligible:
        raise NotEligible(result)
    _check_registrations(session, ip)

    now = clock.now()
    pin = sealed.new_pin()
    keys = {
        "person_key": sealed.person_key(cleaned["given_name"], cleaned["family_name"], cleaned["birth_date"],
                                        cleaned["nationality"]),
        "phone_key": sealed.phone_key(cleaned["phone"] or cleaned["whatsapp"]),
        "email_key": sealed.email_key(cleaned["email"]),
    }
    original = find_duplicate(session, office, birth_date=cleaned["birth_date"], **keys)
    members = [{"relationship": "principal", "sex": cleaned["sex"], "birth_date": cleaned["birth_date"].isoformat(),
                "nationality": cleaned["nationality"]}]
    names = [{"given_name": cleaned["given_name"], "family_name": cleaned["family_name"]}]
    for m in cleaned["members"]:
        members.append({"relationship": m["relationship"], "sex": m["sex"], "birth_date": m["birth_date"].isoformat(),
                        "nationality": m["nationality"]})
        names.append({"given_name": m["given_name"], "family_name": m["family_name"]})
    with session.begin_nested():
        row = Registration(
            office_id=office.id, org_id=office.org_id, reference=_new_reference(session, office.country),
            pin_hash=sealed.pin_hash(pin), status=RegistrationStatus.received, status_since=now,
            language=cleaned["language"], nationality=cleaned["nationality"], birth_date=cleaned["birth_date"],
            arrived_on=cleaned["arrived_on"], household_size=len(members),
            profile={"members": members, "ties": cleaned["ties"], "categories": []}, answers=cleaned["answers"],
            consent_screening=now, consent_contact=now if cleaned["consent_contact"] else None,
            consent_share=now if cleaned["consent_share"] else None,
            duplicate_of_id=original.id if original is not None else None,
            source_ip_key=sealed.ip_key(ip), history=[], created_at=now, updated_at=now, **keys)
        _history(row, RegistrationStatus.received, "registrant")
        session.add(row)
        session.flush()
        sealed.seal_identity(session, row, {"members": names})
        sealed.seal_contact(session, row, {"phone": cleaned["phone"], "email": cleaned["email"],
                                           "whatsapp": cleaned["whatsapp"]})
        session.flush()
        screening.screen_registration(session, row)
        audit.record(session, action="mobility.registration.create", actor=PUBLIC, object_type="mobility_registration",
                     object_id=row.id, org_id=office.org_id,
                     details={"office": office.slug, "household_size": row.household_size,
                              "duplicate": original is not None, "language": row.language,
                              "consents": sorted(k for k in ("screening", "contact", "share")
                                                 if cleaned[f"consent_{k}"])})
        if cleaned["consent_contact"] and cleaned["email"]:
            _confirmation_email(session, office, row, cleaned["email"])
    return Registered(row, pin)


def status_link(registration: Registration) -> str:
    base = get_settings().base_url.rstrip("/")
    return (f"{base}/safe-mobility/status/{registration.reference}?token={status_token(registration)}"
            f"&lang={registration.language}")


def _confirmation_email(session: Session, office: Office, registration: Registration, email: str) -> None:
    with using(registration.language):
        subject = t("Your Safe Mobility registration %(reference)s", reference=registration.reference)
        text = "\n\n".join([
            t("Thank you. You are registered at the %(office)s.", office=office.name),
            t("Your reference: %(reference)s", reference=registration.reference),
            t("Keep your reference and your PIN. We never send the PIN by email, and no one may ask you to pay "
              "for registering: it is free."),
            t("See where your registration stands, book an interview, update how to reach you or withdraw "
              "(this link works for %(days)s days):", days=TOKEN_DAYS) + "\n" + status_link(registration),
        ])
    messages.email_registrant(session, registration, subject=subject, text=text,
                              dedupe_key=f"mobility-confirm:{registration.id}")


# Finding one's registration ------------------------------------------------------------------------------------


def _sign(purpose: str, *parts: object) -> str:
    key = get_settings().secret_key.encode()
    message = f"rdn-mobility-{purpose}:" + ":".join(str(p) for p in parts)
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()[:40]


def _ref_key(reference: str) -> str:
    return "mobility:pin:ref:" + hashlib.sha256(reference.encode()).hexdigest()[:32]


def _guess_limits(session: Session, reference: str, ip: str | None) -> tuple[str, str]:
    ref_key, ip_key = _ref_key(reference), f"mobility:pin:ip:{sealed.ip_key(ip)}"
    within = ratelimit.hit(session, ref_key, limit=PIN_PER_REFERENCE[0], window=PIN_PER_REFERENCE[1])
    within = ratelimit.hit(session, ip_key, limit=PIN_PER_ADDRESS[0], window=PIN_PER_ADDRESS[1]) and within
    if not within:
        raise TooManyRequests(t("Too many wrong attempts. Please wait 15 minutes and try again."),
                              retry_after=int(PIN_PER_REFERENCE[1].total_seconds()))
    return ref_key, ip_key


def lookup(session: Session, *, reference: str, pin: str, ip: str | None) -> Registration | None:
    """The registration with this reference and PIN; None (the same for an unknown reference and a wrong PIN).
    Past 5 wrong PINs for a reference in 15 minutes, or 30 from one address in an hour: TooManyRequests."""
    ref = sealed.normal_reference(reference if isinstance(reference, str) else "")
    pin = pin.strip()[:12] if isinstance(pin, str) else ""
    ref_key, ip_key = _guess_limits(session, ref, ip)
    row = None
    if sealed.REFERENCE.match(ref):
        row = session.scalars(select(Registration).where(Registration.reference == ref)).first()
    if row is None:
        sealed.pin_hash(pin)  # the same work as a wrong PIN
        return None
    if not sealed.pin_matches(row, pin):
        return None
    ratelimit.unhit(session, ref_key, window=PIN_PER_REFERENCE[1])
    ratelimit.unhit(session, ip_key, window=PIN_PER_ADDRESS[1])
    return row


def status_token(registration: Registration) -> str:
    """The token of the emailed status link: valid ``TOKEN_DAYS`` days."""
    expires = int((clock.now() + timedelta(days=TOKEN_DAYS)).timestamp())
    return f"{expires}.{_sign('link', registration.id.hex, registration.reference, expires)}"


def from_token(session: Session, reference: str, token: str, *, ip: str | None = None) -> Registration | None:
    ref = sealed.normal_reference(reference if isinstance(reference, str) else "")
    text = token if isinstance(token, str) else ""
    expires_text, _, mac = text[:80].partition(".")
    if not (sealed.REFERENCE.match(ref) and _digits(expires_text) and mac):
        return None
    if int(expires_text) < clock.now().timestamp():
        return None
    row = session.scalars(select(Registration).where(Registration.reference == ref)).first()
    if row is None or not hmac.compare_digest(mac, _sign("link", row.id.hex, row.reference, int(expires_text))):
        if ip is not None:
            _guess_limits(session, ref, ip)
        return None
    return row


def sign_in_value(registration: Registration, *, minutes: int = SIGN_IN_MINUTES) -> str:
    """A signed cookie value holding the registration's id and an expiry: the registrant, signed in to their own
    registration only (not a staff session)."""
    expires = int((clock.now() + timedelta(minutes=minutes)).timestamp())
    return f"{registration.id.hex}.{expires}.{_sign('signin', registration.id.hex, expires)}"


def from_sign_in(session: Session, value: str | None) -> Registration | None:
    if not value or len(value) > 200:
        return None
    parts = value.split(".")
    if len(parts) != 3 or not _digits(parts[1]):
        return None
    reg_id, expires, mac = parts
    if int(expires) < clock.now().timestamp() or not hmac.compare_digest(mac, _sign("signin", reg_id, int(expires))):
        return None
    try:
        return session.get(Registration, uuid.UUID(hex=reg_id))
    except ValueError:
        return None


def followed(session: Session, registration: Registration) -> Registration:
    """The registration that carries on for a merged duplicate (its registrant's reference keeps working)."""
    seen = {registration.id}
    while registration.status == RegistrationStatus.merged and registration.merged_into_id is not None:
        nxt = session.get(Registration, registration.merged_into_id)
        if nxt is None or nxt.id in seen:
            break
        seen.add(nxt.id)
        registration = nxt
    return registration


# Where they stand ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    text: str
    state: str  # done | current | next | stopped
    when: str = ""  # when it happened, or roughly when it should


def status_name(status: RegistrationStatus) -> str:
    names = {
        RegistrationStatus.received: t("Received"),
        RegistrationStatus.screened: t("Screened"),
        RegistrationStatus.not_qualified: t("No pathway found for now"),
        RegistrationStatus.interview: t("Interview booked"),
        RegistrationStatus.interviewed: t("Interviewed"),
        RegistrationStatus.referred: t("Referred to a country"),
        RegistrationStatus.closed: t("Closed"),
        RegistrationStatus.withdrawn: t("Withdrawn"),
        RegistrationStatus.merged: t("Combined with your other registration"),
    }
    return names[RegistrationStatus(registration_status_value(status))]


def registration_status_value(status: Any) -> str:
    return str(getattr(status, "value", status))


def weeks_to_referral(session: Session, office_id: uuid.UUID) -> int:
    """Roughly how many weeks from registration to referral at the office: the median of the past year's
    referrals when there are at least ten, else a cautious default."""
    since = clock.now() - timedelta(days=365)
    rows = session.execute(
        select(Registration.created_at, Registration.referred_at)
        .where(Registration.office_id == office_id, Registration.referred_at.is_not(None),
               Registration.referred_at >= since).limit(2000)).all()
    days = [(r.referred_at - r.created_at).days for r in rows if r.referred_at and r.created_at]
    if len(days) < 10:
        return DEFAULT_WEEKS_TO_REFERRAL
    return max(1, round(statistics.median(days) / 7))


def _when(value: datetime | date | None) -> str:
    if value is None:
        return ""
    return format_day(value.date() if isinstance(value, datetime) else value)


def _status_reached(registration: Registration, status: str) -> datetime | None:
    for entry in reversed(registration.history or []):
        if entry.get("status") == status and not entry.get("event"):
            try:
                return datetime.fromisoformat(entry["at"])
            except (KeyError, TypeError, ValueError):
                return None
    return None


def timeline(session: Session, registration: Registration) -> list[Step]:
    """What happened, what comes next and roughly when, in the registrant's language."""
    from rdn.mobility import appointments

    status = RegistrationStatus(registration_status_value(registration.status))
    steps = [Step("registered", t("Registration received"),
                  t("Your registration is with the office. Registration is free."), "done",
                  _when(registration.created_at))]
    if status in (RegistrationStatus.withdrawn, RegistrationStatus.closed):
        text = (t("You withdrew your registration. If you change your mind, you can register again.")
                if status == RegistrationStatus.withdrawn else
                t("The office closed your registration. If you think this is a mistake, contact the office."))
        steps.append(Step("stopped", status_name(status), text, "stopped", _when(registration.status_since)))
        return steps
    screened = status != RegistrationStatus.received
    if screened:
        text = (t("We did not find a pathway for you at this time. Rules change: we keep your registration and "
                  "screen it again when they do.") if status == RegistrationStatus.not_qualified else
                t("We checked your registration against the pathways this office works with. You may qualify for "
                  "the pathways listed below. This is not yet a decision."))
        steps.append(Step("screening", t("Screening"), text, "done",
                          _when(_status_reached(registration, "screened")
                                or _status_reached(registration, "not_qualified"))))
    else:
        steps.append(Step("screening", t("Screening"),
                          t("We check your registration against the pathways this office works with."), "current",
                          t("Usually within a few days")))
    current = appointments.current_appointment(session, registration)
    weeks = weeks_to_referral(session, registration.office_id)
    if status in (RegistrationStatus.interviewed, RegistrationStatus.referred):
        steps.append(Step("interview", t("Interview"), t("You had your interview at the office."), "done",
                          _when(_status_reached(registration, "interviewed"))))
    elif current is not None:
        steps.append(Step("interview", t("Interview"),
                          t("Come to the office at the time below with identity documents for every person "
                            "registered."), "current", ""))
    elif status == RegistrationStatus.not_qualified:
        steps.append(Step("interview", t("Interview"),
                          t("An interview is offered when a pathway may fit. We will contact you if that changes."),
                          "next", ""))
    else:
        steps.append(Step("interview", t("Interview"),
                          t("Book an interview from the times offered below, or the office will offer you one."),
                          "current" if screened else "next",
                          tn("Usually within %(num)s week", "Usually within %(num)s weeks",
                             DEFAULT_WEEKS_TO_INTERVIEW)))
    if status == RegistrationStatus.referred:
        steps.append(Step("referral", t("Referral"),
                          t("Your file was sent to a country for a decision. That country decides; the office "
                            "will tell you when it hears back."), "done", _when(registration.referred_at)))
        steps.append(Step("decision", t("The country's decision"),
                          t("Decisions often take several months. We will contact you."), "current",
                          tn("Often %(num)s month or more", "Often %(num)s months or more", DEFAULT_MONTHS_DECISION)))
    else:
        steps.append(Step("referral", t("Decision on referral"),
                          t("After the interview, the office decides whether to send your file to a country. Being "
                            "referred is not a promise of acceptance."), "next",
                          tn("Usually about %(num)s week after registering",
                             "Usually about %(num)s weeks after registering", weeks)))
    return steps


# Changes by the registrant -------------------------------------------------------------------------------------


def update_contact(session: Session, *, registration: Registration, data: Mapping[str, Any]) -> None:
    """New phone, email or WhatsApp number, and the consent to be contacted (the registrant's own change)."""
    errors = _Errors()
    if not isinstance(data, Mapping):
        raise ValidationFailed("request", t("Please send the registration's fields."))
    phone, whatsapp, email = _phone(errors, data, "phone"), _phone(errors, data, "whatsapp"), _email(errors, data)
    consent = _flag(errors, data, "consent_contact")
    if consent and not (phone or email or whatsapp) and not errors.items:
        errors.add("phone", t("Give at least one way to reach you, or leave the box about contacting you "
                              "unticked."))
    if errors.items:
        raise ValidationFailed(errors=errors.items)
    before = sealed.contact_of(session, registration)
    changed = sorted(k for k, v in (("phone", phone), ("email", email), ("whatsapp", whatsapp))
                     if (before.get(k) or "") != v)
    sealed.seal_contact(session, registration, {"phone": phone, "email": email, "whatsapp": whatsapp})
    registration.phone_key = sealed.phone_key(phone or whatsapp)
    registration.email_key = sealed.email_key(email)
    if consent and registration.consent_contact is None:
        registration.consent_contact = clock.now()
        changed.append("consent_contact")
    elif not consent and registration.consent_contact is not None:
        registration.consent_contact = None
        changed.append("consent_contact")
    registration.updated_at = clock.now()
    _history(registration, registration_status_value(registration.status), "registrant", event="contact")
    audit.record(session, action="mobility.registration.contact", actor=PUBLIC, object_type="mobility_registration",
                 object_id=registration.id, org_id=registration.org_id, details={"fields": changed})


def _set_status(registration: Registration, status: RegistrationStatus, by: str) -> None:
    registration.status = status
    registration.status_since = registration.updated_at = clock.now()
    _history(registration, status, by)


def withdraw(session: Session, *, registration: Registration, reason: str = "") -> None:
    """The registrant withdraws: a booked appointment is cancelled; the office keeps the record, closed."""
    from rdn.mobility import appointments

    if RegistrationStatus(registration_status_value(registration.status)) not in OPEN_STATUSES:
        raise Conflict(t("This registration can no longer be withdrawn here. Please contact the office."))
    reason = reason if isinstance(reason, str) else ""
    current = appointments.current_appointment(session, registration)
    if current is not None:
        appointments.cancel(session, appointment=current[0], by="registrant")
    registration.closed_reason = " ".join(reason.split())[:MAX_REASON]
    _set_status(registration, RegistrationStatus.withdrawn, "registrant")
    audit.record(session, action="mobility.registration.withdraw", actor=PUBLIC, object_type="mobility_registration",
                 object_id=registration.id, org_id=registration.org_id,
                 details={"reason_given": bool(registration.closed_reason),
                          "appointment_cancelled": current is not None})


def merge(session: Session, *, actor: Principal, keep: Registration, duplicate: Registration) -> Registration:
    """Staff: ``duplicate`` is the same household as ``keep``; it is closed as merged into it (its registrant's
    reference and PIN keep working and show ``keep``'s progress)."""
    from rdn.mobility import appointments

    policy.require(actor, "mobility.registration.handle", keep)
    policy.require(actor, "mobility.registration.handle", duplicate)
    if keep.id == duplicate.id or keep.office_id != duplicate.office_id:
        raise Conflict(i18n.gettext("Only two different registrations at the same office can be merged."))
    if keep.status == RegistrationStatus.merged or duplicate.status == RegistrationStatus.merged:
        raise Conflict(i18n.gettext("A registration already merged cannot be merged again."))
    if duplicate.status not in OPEN_STATUSES or duplicate.case_id is not None:
        # A referred, closed or withdrawn registration has a history of its own: it is not merged away.
        raise Conflict(i18n.gettext("Only a registration still in the office's hands can be merged into another."))
    current = appointments.current_appointment(session, duplicate)
    if current is not None:
        appointments.cancel(session, appointment=current[0], by="staff", actor=actor)
    duplicate.merged_into_id = keep.id
    duplicate.duplicate_of_id = duplicate.duplicate_of_id or keep.id
    _set_status(duplicate, RegistrationStatus.merged, "staff")
    audit.record(session, action="mobility.registration.merge", actor=actor, object_type="mobility_registration",
                 object_id=duplicate.id, org_id=duplicate.org_id,
                 details={"into": str(keep.id), "appointment_cancelled": current is not None})
    return keep


def public_offices(session: Session) -> list[Office]:
    return list(session.scalars(select(Office).order_by(Office.name)))


def office_by_slug(session: Session, slug: str) -> Office | None:
    if not isinstance(slug, str) or not re.fullmatch(r"[a-z0-9-]{1,40}", slug):
        return None
    return session.scalars(select(Office).where(Office.slug == slug)).first()

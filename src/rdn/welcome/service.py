"""Welcome's business logic: programmes and their rules, sponsor groups (sign-up, members, checks, funds, the
welcome plan) and their eligibility, matches with arriving families, the arrival notice and the core services of
the first months (due dates, reminders, escalation), outcomes, donations and the programme's figures.

Keyword-only functions that never commit (the request's or the job's unit of work does). Every write is audited.
Authorization: each function that acts for someone checks the rule with ``rdn.core.policy``; objects are reached
through the scoped queries of ``rdn.welcome.policy`` by the callers (the same 404 for missing and not yours).
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from rdn.cases.models import Case, Member, Referral, ReferralStatus
from rdn.cases.pipeline import Stage
from rdn.cases.policy import Section, access_case
from rdn.core import audit, clock, i18n, mail, outbox, policy
from rdn.core.audit import Actor
from rdn.core.context import locale_var
from rdn.core.errors import Conflict, FieldError, ValidationFailed
from rdn.core.i18n import N_
from rdn.core.i18n import gettext as _
from rdn.core.identity import Principal, User
from rdn.core.tenancy import Membership, Organization, OrgKind, Role
from rdn.welcome import matching
from rdn.welcome.models import (
    GROUP_STATUS_NAMES,
    OPEN_MATCHES,
    SPONSOR_FIELDS,
    CheckStatus,
    Donation,
    DonationKind,
    DonationStatus,
    GroupStatus,
    Match,
    MatchStatus,
    Programme,
    ServiceTask,
    SponsorGroup,
    SponsorMember,
    Stream,
)

PUBLIC = Actor("public sign-up")
#: What a new programme lets sponsors see unless it says otherwise (the Welcome Corps' practice).
DEFAULT_SPONSOR_FIELDS = ("given_names", "size", "arrival", "languages", "needs")
SYSTEM = Actor("welcome")

#: The core services of the domain guide, due relative to arrival (days). ``per_person``: one task per person.
CORE_SERVICES: list[dict[str, Any]] = [
    {"code": "airport", "label": N_("Airport reception"), "due_days": 0, "per_person": False},
    {"code": "housing", "label": N_("Housing secured and furnished"), "due_days": 0, "per_person": False},
    {"code": "first_meal", "label": N_("A first meal, groceries and seasonal clothing"), "due_days": 1,
     "per_person": False},
    {"code": "contacts", "label": N_("Emergency contacts and a working phone"), "due_days": 2, "per_person": False},
    {"code": "interpretation", "label": N_("Interpretation arranged"), "due_days": 2, "per_person": False},
    {"code": "identity_numbers", "label": N_("Identity and social security numbers applied for"), "due_days": 10,
     "per_person": True},
    {"code": "benefits", "label": N_("Benefits and health insurance"), "due_days": 14, "per_person": False},
    {"code": "doctor", "label": N_("Family doctor and dentist"), "due_days": 30, "per_person": False},
    {"code": "school", "label": N_("School enrolment"), "due_days": 30, "per_person": False},
    {"code": "language", "label": N_("Language classes"), "due_days": 30, "per_person": False},
    {"code": "bank", "label": N_("Bank account"), "due_days": 30, "per_person": False},
    {"code": "orientation", "label": N_("Transport and community orientation"), "due_days": 30,
     "per_person": False},
    {"code": "employment", "label": N_("Help towards employment"), "due_days": 60, "per_person": False},
]

#: The outcomes recorded at the end of the support period.
OUTCOMES: dict[str, str] = {
    "housing_stable": N_("Housing is stable"),
    "children_in_school": N_("The children are in school"),
    "adults_working_or_learning": N_("The adults are employed or in language classes"),
}

NEEDS: dict[str, str] = {
    "wheelchair": N_("Wheelchair access"),
    "medical": N_("Regular medical care"),
    "large_housing": N_("Housing for a large family"),
    "infant": N_("A baby's needs"),
    "dietary": N_("Dietary needs"),
}

#: Stages of an arriving family: approved by the destination, not yet arrived (or arrived, not yet welcomed).
ARRIVING_STAGES = (Stage.approved, Stage.medical_exam, Stage.cultural_orientation, Stage.placement,
                   Stage.travel_booking, Stage.departed)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CODE2 = re.compile(r"^[A-Z]{2}$")
_LANG = re.compile(r"^[a-z]{2,3}$")
MAX_MEMBERS = 40
ARRIVAL_WINDOW_DAYS = 5 * 366  # an arrival date further away is a typing error (and would overflow the due dates)
MAX_TEXT = 500


def today_() -> date:
    """Today (UTC), from the one clock (tests move it)."""
    return clock.now().date()


# Validation helpers ---------------------------------------------------------------------------------------------


def _text(data: Mapping[str, Any], name: str, errors: list[FieldError], *, required: bool = False,
          limit: int = 200) -> str:
    value = data.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        errors.append(FieldError(name, _("must be text")))
        return ""
    value = value.strip()
    if required and not value:
        errors.append(FieldError(name, _("is required")))
    elif len(value) > limit:
        errors.append(FieldError(name, _("at most %(n)s characters", n=limit)))
    return value[:limit]


def _int(data: Mapping[str, Any], name: str, errors: list[FieldError], *, default: int, low: int, high: int) -> int:
    value = data.get(name, default)
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        errors.append(FieldError(name, _("must be a whole number")))
        return default
    if not low <= number <= high:
        errors.append(FieldError(name, _("must be between %(low)s and %(high)s", low=low, high=high)))
    return number


def _money(data: Mapping[str, Any], name: str, errors: list[FieldError], *, default: float = 0.0) -> float:
    value = data.get(name, default)
    if value in (None, ""):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        errors.append(FieldError(name, _("must be an amount")))
        return default
    if not 0 <= number <= 10_000_000 or number != number:  # NaN
        errors.append(FieldError(name, _("must be between 0 and 10,000,000")))
        return default
    return round(number, 2)


def _codes(data: Mapping[str, Any], name: str, errors: list[FieldError], *, pattern: re.Pattern[str],
           upper: bool, limit: int = 30, allowed: Iterable[str] | None = None) -> list[str]:
    value = data.get(name, [])
    if value in (None, ""):
        return []
    if isinstance(value, str):
        value = [v for v in re.split(r"[\s,]+", value) if v]
    if not isinstance(value, list | tuple):
        errors.append(FieldError(name, _("must be a list")))
        return []
    if len(value) > limit:
        errors.append(FieldError(name, _("at most %(n)s items", n=limit)))
        return []
    out: list[str] = []
    allowed_set = set(allowed) if allowed is not None else None
    for item in value:
        code = str(item).strip()
        code = code.upper() if upper else code.lower()
        if not pattern.match(code) or (allowed_set is not None and code not in allowed_set):
            errors.append(FieldError(name, _("%(value)s is not a known code", value=str(item)[:20])))
            continue
        if code not in out:
            out.append(code)
    return out


def _email(data: Mapping[str, Any], name: str, errors: list[FieldError], *, required: bool = True) -> str:
    value = _text(data, name, errors, required=required, limit=320).lower()
    if value and not _EMAIL.match(value):
        errors.append(FieldError(name, _("is not an email address")))
    return value


def _fail(errors: list[FieldError]) -> None:
    if errors:
        raise ValidationFailed(errors=errors)


def _date(value: Any, name: str, errors: list[FieldError]) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        errors.append(FieldError(name, _("is not a date (YYYY-MM-DD)")))
        return None


# Programmes -----------------------------------------------------------------------------------------------------


def programme_values(data: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """Validated programme fields (every error at once)."""
    errors: list[FieldError] = []
    out: dict[str, Any] = {}

    def has(name: str) -> bool:
        return not partial or name in data

    if has("name"):
        out["name"] = _text(data, "name", errors, required=True)
    if has("description"):
        out["description"] = _text(data, "description", errors, limit=5000)
    if has("streams"):
        out["streams"] = _codes(data, "streams", errors, pattern=re.compile(r"^[a-z]+$"), upper=False,
                                allowed=[s.value for s in Stream]) or [Stream.matched.value]
    if has("min_adults"):
        out["min_adults"] = _int(data, "min_adults", errors, default=5, low=1, high=50)
    for flag in ("checks_required", "training_required", "accepting"):
        if has(flag):
            out[flag] = bool(data.get(flag, True)) and data.get(flag) not in ("false", "0", "off")
    if has("funds_per_person"):
        out["funds_per_person"] = _money(data, "funds_per_person", errors)
    if has("currency"):
        currency = _text(data, "currency", errors, limit=3).upper() or "USD"
        if not re.match(r"^[A-Z]{3}$", currency):
            errors.append(FieldError("currency", _("three letters (ISO 4217)")))
        out["currency"] = currency
    if has("cash_share"):
        share = _money(data, "cash_share", errors)
        if share > 1:
            errors.append(FieldError("cash_share", _("a share between 0 and 1")))
        out["cash_share"] = share
    if has("support_days"):
        out["support_days"] = _int(data, "support_days", errors, default=90, low=7, high=1100)
    if has("staff_after_days"):
        out["staff_after_days"] = _int(data, "staff_after_days", errors, default=7, low=1, high=120)
    if has("sponsor_fields"):
        out["sponsor_fields"] = _codes(data, "sponsor_fields", errors, pattern=re.compile(r"^[a-z_]+$"),
                                       upper=False, allowed=SPONSOR_FIELDS) \
            if (partial or data.get("sponsor_fields") is not None) else list(DEFAULT_SPONSOR_FIELDS)
    if has("services"):
        out["services"] = _services(data.get("services") or CORE_SERVICES, errors)
    _fail(errors)
    return out


def _services(value: Any, errors: list[FieldError]) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value or len(value) > 60:
        errors.append(FieldError("services", _("a list of 1 to 60 services")))
        return []
    out, seen = [], set()
    for n, item in enumerate(value):
        where = f"services.{n}"
        if not isinstance(item, Mapping):
            errors.append(FieldError(where, _("must be an object with code, label and due_days")))
            continue
        code = str(item.get("code", "")).strip().lower()
        if not re.match(r"^[a-z0-9_]{1,40}$", code) or code in seen:
            errors.append(FieldError(f"{where}.code", _("1 to 40 letters, digits or _, each once")))
            continue
        seen.add(code)
        label = str(item.get("label", "")).strip()[:200] or code
        sub: list[FieldError] = []
        due = _int(item, "due_days", sub, default=0, low=0, high=1100)
        errors.extend(FieldError(f"{where}.{e.field}", e.message) for e in sub)
        out.append({"code": code, "label": label, "due_days": due, "per_person": bool(item.get("per_person"))})
    return out


def create_programme(session: Session, *, actor: Principal, data: Mapping[str, Any]) -> Programme:
    """A government's programme (its administrators and officers); ``slug`` names its public pages."""
    policy.require(actor, "welcome.programme.create")
    values = programme_values(data)
    errors: list[FieldError] = []
    slug = _text(data, "slug", errors, required=True, limit=40).lower()
    if slug and not re.match(r"^[a-z0-9][a-z0-9-]{1,39}$", slug):
        errors.append(FieldError("slug", _("2 to 40 lowercase letters, digits or hyphens")))
    elif slug and session.scalar(select(func.count()).where(Programme.slug == slug)):
        errors.append(FieldError("slug", _("is already used by another programme")))
    _fail(errors)
    org = session.get(Organization, actor.org_id)
    assert org is not None and org.country
    programme = Programme(org_id=org.id, slug=slug, country=org.country, **values)
    session.add(programme)
    session.flush()
    audit.record(session, action="welcome.programme.create", actor=actor, object_type="welcome_programme",
                 object_id=programme.id, details={"slug": slug}, org_id=org.id)
    return programme


def update_programme(session: Session, *, actor: Principal, programme: Programme,
                     changes: Mapping[str, Any]) -> Programme:
    policy.require(actor, "welcome.programme.manage", programme)
    values = programme_values(changes, partial=True)
    for name, value in values.items():
        setattr(programme, name, value)
    programme.updated_at = clock.now()
    audit.record(session, action="welcome.programme.update", actor=actor, object_type="welcome_programme",
                 object_id=programme.id, details={"fields": sorted(values)}, org_id=programme.org_id)
    # A rule changed: each group's eligibility follows at once.
    for group in session.scalars(select(SponsorGroup).where(SponsorGroup.programme_id == programme.id)):
        refresh_status(session, group, programme=programme)
    return programme


def public_programme(session: Session, slug: str) -> Programme:
    """A programme open to sign-up, by its public address (404 otherwise)."""
    programme = session.scalars(select(Programme).where(Programme.slug == slug.lower()[:40])).first()
    if programme is None or not programme.accepting:
        raise policy.NotFound()
    return programme


def service_label(item: Mapping[str, Any]) -> str:
    """A service's label in the reader's language when it is one of the core services."""
    return _(item["label"]) if item.get("code") in {s["code"] for s in CORE_SERVICES} else str(item["label"])


def _task_label(task: ServiceTask) -> str:
    return service_label({"code": task.code, "label": task.label})


# Eligibility ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Missing:
    """One rule of the programme that the group does not meet yet, in words the group can act on."""

    code: str
    text: str


def eligibility(programme: Programme, group: SponsorGroup, members: Sequence[SponsorMember]) -> list[Missing]:
    """What stands between the group and eligibility under the programme's rules (empty: eligible)."""
    missing: list[Missing] = []
    adults = [m for m in members if m.adult]
    if len(adults) < programme.min_adults:
        missing.append(Missing("adults", _("%(have)s of the %(need)s adults the programme asks for",
                                          have=len(adults), need=programme.min_adults)))
    if programme.checks_required:
        unchecked = [m for m in adults if m.check_status != CheckStatus.passed]
        if unchecked:
            missing.append(Missing("checks", _("background checks not passed yet: %(names)s",
                                              names=i18n.format_list([m.full_name for m in unchecked]))))
    if programme.training_required:
        untrained = [m for m in adults if m.trained_on is None]
        if untrained:
            missing.append(Missing("training", _("training not completed yet: %(names)s",
                                                names=i18n.format_list([m.full_name for m in untrained]))))
    need = funds_needed(programme, group)
    if group.funds_pledged < need:
        missing.append(Missing("funds", _("%(have)s %(cur)s pledged of the %(need)s %(cur)s needed for %(n)s people",
                                         have=i18n.format_number(group.funds_pledged), need=i18n.format_number(need),
                                         cur=programme.currency, n=group.capacity)))
    elif programme.cash_share > 0 and group.funds_cash + 0.005 < programme.cash_share * need:
        missing.append(Missing("cash", _("at least %(share)s%% of the funds in cash (%(need)s %(cur)s)",
                                         share=round(programme.cash_share * 100),
                                         need=i18n.format_number(round(programme.cash_share * need, 2)),
                                         cur=programme.currency)))
    if need > 0 and group.funds_verified_at is None and group.funds_pledged >= need:
        missing.append(Missing("funds_verified", _("the programme has not verified the funds yet")))
    planned = {p.get("service") for p in group.plan if p.get("member_id")}
    unplanned = [s for s in programme.services if s["code"] not in planned]
    if unplanned:
        missing.append(Missing("plan", _("the welcome plan names no one for: %(services)s",
                                        services=i18n.format_list([service_label(s) for s in unplanned]))))
    if group.stream == Stream.named and not group.named_family:
        missing.append(Missing("named_family", _("name the family the group will welcome")))
    if group.stream.value not in (programme.streams or [Stream.matched.value]):
        missing.append(Missing("stream", _("the programme does not run this stream")))
    return missing


def funds_needed(programme: Programme, group: SponsorGroup) -> float:
    return round(programme.funds_per_person * max(1, group.capacity), 2)


def members_of(session: Session, group: SponsorGroup) -> list[SponsorMember]:
    transient = getattr(group, "transient_members", None)
    if transient is not None:  # a sign-up that created nothing (see _known_address)
        return list(transient)
    return list(session.scalars(select(SponsorMember).where(SponsorMember.group_id == group.id)
                                .order_by(SponsorMember.created_at, SponsorMember.id)))


def refresh_status(session: Session, group: SponsorGroup, *, programme: Programme | None = None) -> list[Missing]:
    """Move a forming group to eligible when every rule holds, and an eligible one back when one no longer does
    (later states are left alone: a group welcoming a family keeps doing so)."""
    programme = programme or session.get(Programme, group.programme_id)
    assert programme is not None
    missing = eligibility(programme, group, members_of(session, group))
    if group.status == GroupStatus.forming and not missing:
        group.status, group.eligible_since = GroupStatus.eligible, clock.now()
        audit.record(session, action="welcome.group.eligible", actor=SYSTEM, object_type="welcome_group",
                     object_id=group.id, org_id=group.org_id)
    elif group.status == GroupStatus.eligible and missing:
        group.status, group.eligible_since = GroupStatus.forming, None
        audit.record(session, action="welcome.group.forming", actor=SYSTEM, object_type="welcome_group",
                     object_id=group.id, details={"missing": [m.code for m in missing]}, org_id=group.org_id)
    return missing


# Sponsor groups -------------------------------------------------------------------------------------------------


def group_values(data: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
    errors: list[FieldError] = []
    out: dict[str, Any] = {}

    def has(name: str) -> bool:
        return not partial or name in data

    if has("name"):
        out["name"] = _text(data, "name", errors, required=True)
    if has("city"):
        out["city"] = _text(data, "city", errors, required=not partial, limit=120)
    if has("contact_email"):
        out["contact_email"] = _email(data, "contact_email", errors)
    if has("stream"):
        try:
            out["stream"] = Stream(str(data.get("stream") or Stream.matched.value))
        except ValueError:
            errors.append(FieldError("stream", _("matched or named")))
    if has("named_family"):
        out["named_family"] = _text(data, "named_family", errors, limit=MAX_TEXT)
    if has("languages"):
        out["languages"] = _codes(data, "languages", errors, pattern=_LANG, upper=False)
    if has("nationalities"):
        out["nationalities"] = _codes(data, "nationalities", errors, pattern=_CODE2, upper=True,
                                      allowed=dict(i18n.countries()).keys())
    if has("supports"):
        out["supports"] = _codes(data, "supports", errors, pattern=re.compile(r"^[a-z_]+$"), upper=False,
                                 allowed=NEEDS)
    if has("min_size"):
        out["min_size"] = _int(data, "min_size", errors, default=1, low=1, high=20)
    if has("max_size"):
        out["max_size"] = _int(data, "max_size", errors, default=6, low=1, high=20)
    if has("capacity"):
        out["capacity"] = _int(data, "capacity", errors, default=4, low=1, high=20)
    if has("funds_pledged"):
        out["funds_pledged"] = _money(data, "funds_pledged", errors)
    if has("funds_cash"):
        out["funds_cash"] = _money(data, "funds_cash", errors)
    if "min_size" in out and "max_size" in out and out["min_size"] > out["max_size"]:
        errors.append(FieldError("max_size", _("must not be below the smallest family size")))
    if "funds_cash" in out and "funds_pledged" in out and out["funds_cash"] > out["funds_pledged"]:
        errors.append(FieldError("funds_cash", _("cannot be more than the funds pledged")))
    _fail(errors)
    return out


def _org_short_name(session: Session, name: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", i18n_ascii(name).lower()).strip("-")[:28] or "group"
    base = base if len(base) >= 2 else f"group-{base}"
    while True:
        candidate = f"{base}-{secrets.token_hex(3)}"
        if not session.scalar(select(func.count()).where(Organization.short_name == candidate)):
            return candidate


def i18n_ascii(text: str) -> str:
    from anyascii import anyascii

    return str(anyascii(text))


def sign_up(session: Session, *, programme: Programme, data: Mapping[str, Any]) -> SponsorGroup:
    """Citizens form a group on the programme's public page: the group (an organization of its own), its first
    member (the contact person, invited by email to set a password) and their preferences. Nothing is kept if
    any field is wrong."""
    if not programme.accepting:
        raise policy.NotFound()
    errors: list[FieldError] = []
    lead_name = _text(data, "your_name", errors, required=True)
    lead_email = _email(data, "your_email", errors)
    try:
        values = group_values({**data, "contact_email": data.get("your_email", "")})
    except ValidationFailed as exc:
        errors.extend(exc.errors)
        values = {}
    if values.get("stream", Stream.matched).value not in (programme.streams or [Stream.matched.value]):
        errors.append(FieldError("stream", _("the programme does not run this stream")))
    _fail(errors)
    if session.scalar(select(func.count()).where(User.email == lead_email)):
        return _known_address(session, programme, values, lead_name, lead_email)
    from rdn.network import service as network

    org = network.create_organization(session, actor=PUBLIC, name=values["name"],
                                      short_name=_org_short_name(session, values["name"]),
                                      kind=OrgKind.sponsor_group, country=programme.country)
    try:
        user = network.create_person(session, actor=PUBLIC, email=lead_email, full_name=lead_name, org=org,
                                     role=Role.sponsor, locale=locale_var.get())
    except ValidationFailed as exc:  # the network's own checks, named as this form names its fields
        names = {"email": "your_email", "full_name": "your_name"}
        raise ValidationFailed(errors=[FieldError(names.get(e.field, e.field), e.message)
                                       for e in exc.errors]) from None
    group = SponsorGroup(programme_id=programme.id, org_id=org.id, government_org_id=programme.org_id,
                         country=programme.country, **values)
    session.add(group)
    session.flush()
    session.add(SponsorMember(group_id=group.id, user_id=user.id, full_name=lead_name, email=lead_email,
                              adult=True))
    session.flush()
    audit.record(session, action="welcome.group.sign_up", actor=PUBLIC, object_type="welcome_group",
                 object_id=group.id, details={"programme": programme.slug}, org_id=org.id)
    refresh_status(session, group, programme=programme)
    return group


def _known_address(session: Session, programme: Programme, values: Mapping[str, Any], lead_name: str,
                   lead_email: str) -> SponsorGroup:
    """A sign-up with the address of someone who already has an account: nothing is created, the address's owner
    is told by email, and the page answers as for anyone (so the form tells no one who has an account here).
    The group returned is not stored; its members (the lead alone) are what a new group would have."""
    group = SponsorGroup(programme_id=programme.id, country=programme.country, status=GroupStatus.forming, plan=[],
                         funds_pledged=0.0, funds_cash=0.0, **{k: v for k, v in values.items()
                                                               if k not in ("funds_pledged", "funds_cash")})
    group.transient_members = [SponsorMember(full_name=lead_name, email=lead_email, adult=True,  # type: ignore[attr-defined]
                                             check_status=CheckStatus.pending)]
    mail.send_email(session, to=lead_email, org_id=programme.org_id,
                    subject=_("A sponsor group sign-up with your address"),
                    text=_("Someone, perhaps you, tried to register the sponsor group %(group)s with %(programme)s "
                           "using this address, which already has an account in RDN. Nothing was created. Sign in "
                           "to RDN to see your groups; if this was not you, you need do nothing.",
                           group=values.get("name", ""), programme=programme.name))
    audit.record(session, action="welcome.group.sign_up_known_address", actor=PUBLIC,
                 object_type="welcome_programme", object_id=programme.id, org_id=programme.org_id)
    return group


def update_group(session: Session, *, actor: Principal, group: SponsorGroup,
                 changes: Mapping[str, Any]) -> list[Missing]:
    """Preferences, funds pledged and the welcome plan, by the group or the programme's staff. Pledges changed
    after verification need verifying again."""
    policy.require(actor, "welcome.group.edit", group)
    if group.status in (GroupStatus.completed, GroupStatus.withdrawn):
        raise Conflict(_("This group's sponsorship has ended."))
    values = group_values(changes, partial=True)
    merged = {"min_size": group.min_size, "max_size": group.max_size, "funds_cash": group.funds_cash,
              "funds_pledged": group.funds_pledged, **values}
    if merged["min_size"] > merged["max_size"]:
        raise ValidationFailed("max_size", _("must not be below the smallest family size"))
    if merged["funds_cash"] > merged["funds_pledged"]:
        raise ValidationFailed("funds_cash", _("cannot be more than the funds pledged"))
    if "plan" in changes:
        values["plan"] = _plan(session, group, changes["plan"])
    if ("funds_pledged" in values and values["funds_pledged"] != group.funds_pledged) or \
            ("funds_cash" in values and values["funds_cash"] != group.funds_cash):
        group.funds_verified_at = None
    for name, value in values.items():
        setattr(group, name, value)
    group.updated_at = clock.now()
    audit.record(session, action="welcome.group.update", actor=actor, object_type="welcome_group",
                 object_id=group.id, details={"fields": sorted(values)}, org_id=group.org_id)
    return refresh_status(session, group)


def _plan(session: Session, group: SponsorGroup, value: Any) -> list[dict[str, Any]]:
    """``{service code: member id}`` (or a list of ``{"service", "member_id"}``), checked against the programme's
    services and the group's members."""
    programme = session.get(Programme, group.programme_id)
    assert programme is not None
    codes = {s["code"] for s in programme.services}
    members = {str(m.id) for m in members_of(session, group)}
    pairs = value.items() if isinstance(value, Mapping) else (
        (i.get("service"), i.get("member_id")) for i in value if isinstance(i, Mapping)) \
        if isinstance(value, list) else None
    if pairs is None:
        raise ValidationFailed("plan", _("who does what: a service code for each member id"))
    errors: list[FieldError] = []
    out = []
    for service, member_id in pairs:
        if not member_id:
            continue
        if service not in codes:
            errors.append(FieldError(f"plan.{str(service)[:40]}", _("not a service of the programme")))
        elif str(member_id) not in members:
            errors.append(FieldError(f"plan.{service}", _("not a member of the group")))
        else:
            out.append({"service": service, "member_id": str(member_id)})
    _fail(errors)
    return out


def _open(group: SponsorGroup) -> None:
    if group.status in (GroupStatus.completed, GroupStatus.withdrawn):
        raise Conflict(_("This group's sponsorship has ended."))


def add_member(session: Session, *, actor: Principal, group: SponsorGroup, data: Mapping[str, Any]) -> SponsorMember:
    policy.require(actor, "welcome.group.edit", group)
    _open(group)
    errors: list[FieldError] = []
    name = _text(data, "full_name", errors, required=True)
    email = _email(data, "email", errors, required=False)
    adult = data.get("adult", True) not in (False, "false", "0", "off", "")
    if session.scalar(select(func.count()).where(SponsorMember.group_id == group.id)) >= MAX_MEMBERS:
        errors.append(FieldError("full_name", _("a group has at most %(n)s members", n=MAX_MEMBERS)))
    _fail(errors)
    member = SponsorMember(group_id=group.id, full_name=name, email=email, adult=adult)
    session.add(member)
    session.flush()
    audit.record(session, action="welcome.member.add", actor=actor, object_type="welcome_member",
                 object_id=member.id, details={"group": str(group.id)}, org_id=group.org_id)
    refresh_status(session, group)
    return member


def remove_member(session: Session, *, actor: Principal, group: SponsorGroup, member: SponsorMember) -> None:
    policy.require(actor, "welcome.group.edit", group)
    _open(group)
    if member.group_id != group.id:
        raise policy.NotFound()
    if member.user_id is not None and session.scalar(select(func.count()).where(
            SponsorMember.group_id == group.id, SponsorMember.user_id.is_not(None))) <= 1:
        raise Conflict(_("The group's last member who signs in cannot be removed."))
    group.plan = [p for p in group.plan if p.get("member_id") != str(member.id)]
    _end_access(session, actor, group, member)
    session.delete(member)
    session.flush()
    audit.record(session, action="welcome.member.remove", actor=actor, object_type="welcome_member",
                 object_id=member.id, details={"group": str(group.id)}, org_id=group.org_id)
    refresh_status(session, group)


def record_check(session: Session, *, actor: Principal, group: SponsorGroup, member: SponsorMember,
                 check: str | None = None, trained_on: Any = None) -> list[Missing]:
    """The programme's staff record a member's background check and training."""
    policy.require(actor, "welcome.group.verify", group)
    if member.group_id != group.id:
        raise policy.NotFound()
    errors: list[FieldError] = []
    status = None
    if check is not None:
        try:
            status = CheckStatus(check)
        except ValueError:
            errors.append(FieldError("check", _("pending, passed or failed")))
    trained = _date(trained_on, "trained_on", errors) if trained_on not in (None, "") else None
    if trained is not None and trained > today_():
        errors.append(FieldError("trained_on", _("cannot be in the future")))
    _fail(errors)  # nothing changes unless every field is right
    if status is not None:
        member.check_status = status
        member.checked_on = today_() if status != CheckStatus.pending else None
        if status == CheckStatus.failed:
            _end_access(session, actor, group, member)
    if trained_on is not None:
        member.trained_on = trained
    audit.record(session, action="welcome.member.check", actor=actor, object_type="welcome_member",
                 object_id=member.id, details={"check": member.check_status.value,
                                               "trained": member.trained_on is not None}, org_id=group.org_id)
    return refresh_status(session, group)


def _end_access(session: Session, actor: Principal, group: SponsorGroup, member: SponsorMember) -> None:
    """A member removed from the group, or whose background check failed, loses their account's roles in the
    group's organization at once: nothing of the group or its family stays within their reach."""
    if member.user_id is None:
        return
    from rdn.network import service as network

    for membership in session.scalars(select(Membership).where(Membership.user_id == member.user_id,
                                                               Membership.org_id == group.org_id)):
        network.revoke_role(session, actor=actor, membership=membership)
    member.user_id = None


def verify_funds(session: Session, *, actor: Principal, group: SponsorGroup) -> list[Missing]:
    policy.require(actor, "welcome.group.verify", group)
    group.funds_verified_at = clock.now()
    audit.record(session, action="welcome.group.funds_verified", actor=actor, object_type="welcome_group",
                 object_id=group.id, details={"pledged": str(group.funds_pledged), "cash": str(group.funds_cash)},
                 org_id=group.org_id)
    return refresh_status(session, group)


def withdraw_group(session: Session, *, actor: Principal, group: SponsorGroup, reason: str = "") -> None:
    policy.require(actor, "welcome.group.edit", group)
    _open(group)
    if session.scalar(select(func.count()).where(Match.group_id == group.id, Match.status == MatchStatus.active)):
        raise Conflict(_("The group is welcoming a family: the programme's staff end the match first."))
    for match in session.scalars(select(Match).where(Match.group_id == group.id,
                                                     Match.status == MatchStatus.proposed)):
        match.status, match.declined_reason = MatchStatus.declined, _("the group withdrew")
        audit.record(session, action="welcome.match.withdrawn", actor=actor, object_type="welcome_match",
                     object_id=match.id, org_id=group.government_org_id)
    group.status = GroupStatus.withdrawn
    audit.record(session, action="welcome.group.withdraw", actor=actor, object_type="welcome_group",
                 object_id=group.id, details={"reason": reason[:200]}, org_id=group.org_id)


# Matches --------------------------------------------------------------------------------------------------------


def arriving_cases(session: Session, actor: Principal, programme: Programme, *, limit: int = 20_000) -> list[Case]:
    """Families on their way to the programme's country (accepted for resettlement by its government, or its own
    cases) with no open match: those a group may welcome."""
    policy.require(actor, "welcome.match.propose", programme)
    accepted = select(Referral.case_id).where(Referral.recipient_org_id == programme.org_id,
                                              Referral.status == ReferralStatus.accepted)
    open_match = select(Match.case_id).where(Match.status.in_(OPEN_MATCHES))
    stmt = (policy.scoped(actor, Case)
            .where(or_(Case.owner_org_id == programme.org_id, Case.id.in_(accepted)),
                   Case.stage.in_([s.value for s in ARRIVING_STAGES]), Case.id.not_in(open_match))
            .order_by(Case.priority_rank, Case.opened_at, Case.id).limit(limit))
    return list(session.scalars(stmt))


def _household(session: Session, case: Case) -> list[Member]:
    return list(session.scalars(select(Member).where(Member.case_id == case.id).order_by(Member.position)))


def family_needs(case: Case, members: Sequence[Member]) -> matching.FamilyNeeds:
    languages = frozenset(lang for m in members for lang in m.languages)
    needs = frozenset(n for n in (case.preferences or {}).get("welcome_needs", []) if n in NEEDS)
    city = str((case.preferences or {}).get("city", ""))
    return matching.FamilyNeeds(id=case.id, country="", size=max(1, case.size or len(members)),
                                languages=languages, nationality=case.nationality, city=city, needs=needs)


def group_prefs(group: SponsorGroup) -> matching.GroupPrefs:
    return matching.GroupPrefs(id=group.id, country=group.country, city=group.city,
                               languages=frozenset(group.languages), nationalities=frozenset(group.nationalities),
                               min_size=group.min_size, max_size=group.max_size, capacity=group.capacity,
                               supports=frozenset(group.supports))


def _shared_snapshot(session: Session, actor: Principal, programme: Programme, case_id: Any,
                     shared_needs: Iterable[str]) -> tuple[Case, dict[str, Any]]:
    """What the group may know of the family, taken from the case by staff who may see it, limited to the
    programme's sponsor fields. The read of the household is audited like any read of a case's identity."""
    access = access_case(session, actor, case_id)
    case = access.case
    if not (access.owner or access.accepted_for_resettlement):
        raise Conflict(_("Only a family accepted for resettlement by your government can be matched."))
    fields = set(programme.sponsor_fields)
    members = _household(session, case)
    shared: dict[str, Any] = {}
    if "given_names" in fields and access.sees(Section.identity):
        shared["given_names"] = [m.given_name for m in members]
        audit.record(session, action="welcome.match.shared_names", actor=actor, object_type="case",
                     object_id=case.id, purpose="sponsorship", org_id=actor.org_id)
    if "size" in fields:
        shared["size"] = case.size or len(members)
    if "languages" in fields:
        shared["languages"] = sorted({lang for m in members for lang in m.languages})
    if "ages" in fields:
        year = today_().year
        shared["ages"] = [max(0, year - m.birth_year) for m in members if m.birth_year]
    if "needs" in fields:
        shared["needs"] = [n for n in shared_needs if n in NEEDS]
    return case, shared


def propose(session: Session, *, actor: Principal, group: SponsorGroup, case_id: Any,
            shared_needs: Iterable[str] = (), proposed_by: str = "staff", score: float | None = None,
            reasons: Iterable[str] = ()) -> Match:
    """Propose a group for a family: both must accept. A group takes one family at a time; a family one group."""
    programme = session.get(Programme, group.programme_id)
    assert programme is not None
    policy.require(actor, "welcome.match.propose", programme)
    _lock(session, group)
    if group.status != GroupStatus.eligible:
        raise Conflict(_("Only an eligible group can be matched; this one is %(status)s.",
                             status=_(GROUP_STATUS_NAMES[group.status])))
    case, shared = _shared_snapshot(session, actor, programme, case_id, shared_needs)
    if case.stage not in {s.value for s in ARRIVING_STAGES}:
        raise Conflict(_("Only a family approved for resettlement and not yet arrived can be matched."))
    if session.scalar(select(func.count()).where(Match.case_id == case.id, Match.status.in_(OPEN_MATCHES))):
        raise Conflict(_("This family already has a group proposed or accepted."))
    match = Match(programme_id=programme.id, group_id=group.id, case_id=case.id, stream=group.stream,
                  proposed_by=proposed_by, score=score, reasons=list(reasons), shared=shared)
    session.add(match)
    group.status = GroupStatus.matched
    session.flush()
    audit.record(session, action="welcome.match.propose", actor=actor, object_type="welcome_match",
                 object_id=match.id, details={"group": str(group.id), "case": str(case.id), "by": proposed_by},
                 org_id=programme.org_id)
    _tell_group(session, group, subject=_("A family has been proposed to your group"),
                text=_("The programme proposes that your group welcome a family. Sign in to RDN to see what the "
                       "family agreed to share and to accept or decline."), key=f"welcome.proposed:{match.id}")
    return match


def run_matching(session: Session, *, actor: Principal, programme: Programme) -> matching.MatchResult:
    """The algorithm proposes a group for each arriving family it can, by preferences and capacity, among the
    programme's eligible groups of the matched stream. Staff see every proposal and its reasons."""
    policy.require(actor, "welcome.match.propose", programme)
    groups = list(session.scalars(select(SponsorGroup).where(SponsorGroup.programme_id == programme.id,
                                                             SponsorGroup.status == GroupStatus.eligible,
                                                             SponsorGroup.stream == Stream.matched)))
    cases = arriving_cases(session, actor, programme)
    families = [replace(family_needs(c, _household(session, c)), country=programme.country) for c in cases]
    result = matching.match([group_prefs(g) for g in groups], families)
    by_id = {g.id: g for g in groups}
    for proposal in result.proposals:
        propose(session, actor=actor, group=by_id[proposal.group_id], case_id=proposal.family_id,
                proposed_by="algorithm", score=proposal.score,
                reasons=[r.text for r in proposal.reasons])
    audit.record(session, action="welcome.match.run", actor=actor, object_type="welcome_programme",
                 object_id=programme.id, details={"groups": len(groups), "families": len(families),
                                                   "proposed": len(result.proposals)}, org_id=programme.org_id)
    return result


def respond_as_group(session: Session, *, actor: Principal, match: Match, accept: bool, reason: str = "") -> Match:
    group = session.get(SponsorGroup, match.group_id)
    assert group is not None
    policy.require(actor, "welcome.match.respond", group)
    _lock(session, match)
    if match.status != MatchStatus.proposed or match.group_accepted_at is not None:
        raise Conflict(_("This proposal has already been answered."))
    if accept:
        match.group_accepted_at = clock.now()
    else:
        _decline(match, group, reason or _("the group declined"))
    _settle(session, match, group)
    audit.record(session, action="welcome.match.group_answer", actor=actor, object_type="welcome_match",
                 object_id=match.id, details={"accept": accept}, org_id=group.org_id)
    return match


def record_family_answer(session: Session, *, actor: Principal, match: Match, accept: bool,
                         reason: str = "") -> Match:
    """The family's answer, as the programme's staff heard it."""
    programme = session.get(Programme, match.programme_id)
    group = session.get(SponsorGroup, match.group_id)
    assert programme is not None and group is not None
    policy.require(actor, "welcome.match.propose", programme)
    _lock(session, match)
    if match.status != MatchStatus.proposed or match.family_accepted_at is not None:
        raise Conflict(_("This proposal has already been answered."))
    if accept:
        match.family_accepted_at = clock.now()
    else:
        _decline(match, group, reason or _("the family declined"))
    _settle(session, match, group)
    audit.record(session, action="welcome.match.family_answer", actor=actor, object_type="welcome_match",
                 object_id=match.id, details={"accept": accept}, org_id=programme.org_id)
    return match


def _lock(session: Session, obj: Any) -> None:
    """Read ``obj`` again under a row lock (PostgreSQL): two people answering at once are taken one after the
    other, each seeing what the other did."""
    if session.get_bind().dialect.name == "postgresql":
        session.refresh(obj, with_for_update=True)


def _decline(match: Match, group: SponsorGroup, reason: str) -> None:
    match.status, match.declined_reason = MatchStatus.declined, reason[:500]
    if group.status == GroupStatus.matched:
        group.status = GroupStatus.eligible


def _settle(session: Session, match: Match, group: SponsorGroup) -> None:
    if match.status == MatchStatus.declined:
        refresh_status(session, group)  # back to eligible only if every rule still holds
    if match.status == MatchStatus.proposed and match.group_accepted_at and match.family_accepted_at:
        programme = session.get(Programme, match.programme_id)
        assert programme is not None
        missing = eligibility(programme, group, members_of(session, group))
        if missing:  # pledges or members changed since the proposal
            raise Conflict(_("The group no longer meets the programme's rules: %(missing)s",
                             missing="; ".join(m.text for m in missing)))
        match.status = MatchStatus.active
        _make_tasks(session, programme, match)
        _tell_group(session, group, subject=_("Your match is confirmed"),
                    text=_("The family and your group have both accepted. The arrival notice will follow."),
                    key=f"welcome.active:{match.id}")
    match.updated_at = clock.now()


def cancel_match(session: Session, *, actor: Principal, match: Match, reason: str) -> Match:
    programme = session.get(Programme, match.programme_id)
    group = session.get(SponsorGroup, match.group_id)
    assert programme is not None and group is not None
    policy.require(actor, "welcome.match.propose", programme)
    if match.status not in OPEN_MATCHES:
        raise Conflict(_("This match is no longer open."))
    match.status, match.declined_reason = MatchStatus.cancelled, reason[:500]
    if group.status in (GroupStatus.matched, GroupStatus.welcoming):
        group.status = GroupStatus.eligible
        refresh_status(session, group, programme=programme)
    audit.record(session, action="welcome.match.cancel", actor=actor, object_type="welcome_match",
                 object_id=match.id, org_id=programme.org_id)
    return match


# Arrival and core services --------------------------------------------------------------------------------------


def _make_tasks(session: Session, programme: Programme, match: Match) -> None:
    """One task per core service (per person where the service is per person), owned as the welcome plan says,
    due from the arrival date once it is known."""
    group = session.get(SponsorGroup, match.group_id)
    assert group is not None
    owners = {p["service"]: uuid.UUID(p["member_id"]) for p in group.plan if p.get("member_id")}
    known = {m.id for m in members_of(session, group)}
    people = _distinct(match.shared.get("given_names") or [
        _("Person %(n)s", n=n + 1) for n in range(int(match.shared.get("size") or 1))])
    for item in programme.services:
        for person in (people if item.get("per_person") else [""]):
            owner = owners.get(item["code"])
            session.add(ServiceTask(match_id=match.id, code=item["code"], label=item["label"], person=person[:120],
                                    due_days=int(item["due_days"]),
                                    due_on=_due(match.arrival_on, int(item["due_days"])),
                                    owner_member_id=owner if owner in known else None))
    session.flush()


def _distinct(names: list[str]) -> list[str]:
    """People of a household told apart where first names repeat (a father and son both Mohammad): "Mohammad",
    "Mohammad (2)". Each person's task is one row."""
    seen: Counter[str] = Counter()
    out = []
    for name in names:
        name = str(name).strip()[:110] or "?"
        seen[name] += 1
        out.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return out


def _due(arrival: date | None, days: int) -> date | None:
    return arrival + timedelta(days=days) if arrival is not None else None


def set_arrival(session: Session, *, actor: Principal, match: Match, arrival_on: Any,
                notice: Mapping[str, Any] | None = None) -> Match:
    """The arrival notice (date, itinerary, languages, needs): every task's due date follows the arrival date,
    and the notice reaches the group (once per date)."""
    programme = session.get(Programme, match.programme_id)
    group = session.get(SponsorGroup, match.group_id)
    assert programme is not None and group is not None
    policy.require(actor, "welcome.match.propose", programme)
    if match.status != MatchStatus.active:
        raise Conflict(_("The arrival is recorded once both sides have accepted."))
    errors: list[FieldError] = []
    when = _date(arrival_on, "arrival_on", errors)
    if when is None and not errors:
        errors.append(FieldError("arrival_on", _("is required")))
    clean: dict[str, str] = {}
    for key in ("flight", "airport", "time", "notes"):
        clean[key] = _text(notice or {}, key, errors, limit=MAX_TEXT)
    _fail(errors)
    assert when is not None
    if abs((when - today_()).days) > ARRIVAL_WINDOW_DAYS:
        raise ValidationFailed("arrival_on", _("must be within five years of today"))
    match.arrival_on, match.arrival_notice = when, clean
    for task in session.scalars(select(ServiceTask).where(ServiceTask.match_id == match.id)):
        task.due_on = _due(when, task.due_days)
        if task.done_on is None:  # a new date: a new chance before any reminder
            task.reminded_at = task.escalated_at = None
    if when <= today_():
        group.status = GroupStatus.welcoming
    match.notice_sent_at = clock.now()
    audit.record(session, action="welcome.match.arrival", actor=actor, object_type="welcome_match",
                 object_id=match.id, details={"arrival_on": when.isoformat()}, org_id=programme.org_id)
    lines = [_("Arrival: %(date)s", date=i18n.format_date(when))]
    if "arrival" in programme.sponsor_fields:
        lines += [f"{label}: {clean[key]}" for key, label in (("flight", _("Flight")), ("airport", _("Airport")),
                                                               ("time", _("Time")), ("notes", _("Notes")))
                  if clean[key]]
    _tell_group(session, group, subject=_("Arrival notice"), text="\n".join(lines),
                key=f"welcome.arrival:{match.id}:{when.isoformat()}")
    return match


def tasks_of(session: Session, match: Match) -> list[ServiceTask]:
    return list(session.scalars(select(ServiceTask).where(ServiceTask.match_id == match.id)
                                .order_by(ServiceTask.due_days, ServiceTask.code, ServiceTask.person)))


def update_task(session: Session, *, actor: Principal, match: Match, task: ServiceTask,
                changes: Mapping[str, Any]) -> ServiceTask:
    """The group (or the staff) records who does it, that it is done (with evidence) and notes."""
    group = session.get(SponsorGroup, match.group_id)
    assert group is not None
    policy.require(actor, "welcome.task.update", group)
    if task.match_id != match.id:
        raise policy.NotFound()
    if match.status != MatchStatus.active:
        raise Conflict(_("This match is not active."))
    errors: list[FieldError] = []
    if "owner_member_id" in changes:
        owner = changes.get("owner_member_id") or None
        members = {str(m.id): m.id for m in members_of(session, group)}
        if owner is not None and str(owner) not in members:
            errors.append(FieldError("owner_member_id", _("not a member of the group")))
        else:
            task.owner_member_id = members.get(str(owner)) if owner else None
    if "done_on" in changes:
        done = _date(changes.get("done_on"), "done_on", errors)
        if done is not None and done > today_():
            errors.append(FieldError("done_on", _("cannot be in the future")))
        task.done_on = done
    if "evidence" in changes:
        task.evidence = _text(changes, "evidence", errors, limit=2000)
    if "notes" in changes:
        task.notes = _text(changes, "notes", errors, limit=2000)
    _fail(errors)
    task.updated_at = clock.now()
    audit.record(session, action="welcome.task.update", actor=actor, object_type="welcome_task", object_id=task.id,
                 details={"code": task.code, "done": task.done_on is not None, "fields": sorted(changes)},
                 org_id=group.org_id)
    return task


def overdue(task: ServiceTask, today: date | None = None) -> bool:
    return task.done_on is None and task.due_on is not None and task.due_on < (today or today_())


def send_due_reminders(session: Session, *, today: date | None = None) -> tuple[int, int]:
    """Overdue services: one reminder to the group when a task passes its due date, and one notice to the
    programme's staff when it is still open ``staff_after_days`` later. Each is marked in the same transaction
    as the email is queued, so a second run sends nothing more. Returns (reminded, escalated)."""
    today = today or today_()
    reminded = escalated = 0
    rows = session.execute(
        select(ServiceTask, Match, SponsorGroup, Programme)
        .join(Match, Match.id == ServiceTask.match_id)
        .join(SponsorGroup, SponsorGroup.id == Match.group_id)
        .join(Programme, Programme.id == Match.programme_id)
        .where(Match.status == MatchStatus.active, ServiceTask.done_on.is_(None), ServiceTask.due_on < today,
               or_(ServiceTask.reminded_at.is_(None), ServiceTask.escalated_at.is_(None)))
        .order_by(ServiceTask.due_on, ServiceTask.id)).all()
    for task, _match, group, programme in rows:
        if task.reminded_at is None:
            owner = session.get(SponsorMember, task.owner_member_id) if task.owner_member_id else None
            to = sorted({group.contact_email, *([owner.email] if owner and owner.email else [])})
            with i18n.using(i18n.DEFAULT_LOCALE):
                mail.send_email(session, to=to, org_id=group.org_id,
                                subject=_("Overdue: %(service)s", service=_task_label(task)),
                                text=_("%(service)s%(person)s was due on %(date)s. Record it in RDN when it is done.",
                                       service=_task_label(task),
                                       person=f" ({task.person})" if task.person else "",
                                       date=i18n.format_date(task.due_on)),
                                dedupe_key=f"welcome.overdue:{task.id}:{task.due_on}")
            task.reminded_at = clock.now()
            reminded += 1
        if task.escalated_at is None and task.due_on is not None and \
                task.due_on + timedelta(days=programme.staff_after_days) < today:
            staff = _programme_staff_emails(session, programme)
            if staff:
                with i18n.using(i18n.DEFAULT_LOCALE):
                    mail.send_email(session, to=staff, org_id=programme.org_id,
                                    subject=_("A sponsor group is late: %(group)s", group=group.name),
                                    text=_("%(service)s for the family welcomed by %(group)s was due on %(date)s "
                                           "and is not recorded as done.",
                                           service=_task_label(task), group=group.name,
                                           date=i18n.format_date(task.due_on)),
                                    dedupe_key=f"welcome.escalated:{task.id}:{task.due_on}")
            task.escalated_at = clock.now()
            escalated += 1
    if reminded or escalated:
        audit.record(session, action="welcome.reminders", actor=SYSTEM,
                     details={"reminded": reminded, "escalated": escalated})
    session.flush()
    return reminded, escalated


def _programme_staff_emails(session: Session, programme: Programme) -> list[str]:
    rows = session.scalars(select(User.email).join(Membership, Membership.user_id == User.id)
                           .where(Membership.org_id == programme.org_id, User.active.is_(True),
                                  Membership.role.in_([Role.admin, Role.officer])))
    return sorted(set(rows))


@outbox.periodic("welcome.reminders", timedelta(hours=1))
def _reminders_job(ctx: outbox.JobContext) -> None:
    send_due_reminders(ctx.session)
    # Families whose arrival date has come: their group is now welcoming.
    for group in ctx.session.scalars(
            select(SponsorGroup).join(Match, Match.group_id == SponsorGroup.id)
            .where(SponsorGroup.status == GroupStatus.matched, Match.status == MatchStatus.active,
                   Match.arrival_on <= today_())):
        group.status = GroupStatus.welcoming
        audit.record(ctx.session, action="welcome.group.welcoming", actor=SYSTEM, object_type="welcome_group",
                     object_id=group.id, org_id=group.government_org_id)


def record_outcomes(session: Session, *, actor: Principal, match: Match, outcomes: Mapping[str, Any],
                    complete: bool = False) -> Match:
    """Outcomes at the end of the support period; ``complete`` ends the match and the group's sponsorship."""
    programme = session.get(Programme, match.programme_id)
    group = session.get(SponsorGroup, match.group_id)
    assert programme is not None and group is not None
    policy.require(actor, "welcome.task.update", group)
    if match.status != MatchStatus.active:
        raise Conflict(_("This match is not active."))
    clean: dict[str, Any] = {}
    for key in OUTCOMES:
        if key in outcomes:
            value = outcomes[key]
            clean[key] = None if value in (None, "") else value in (True, "true", "yes", "1", "on")
    clean["notes"] = str(outcomes.get("notes", match.outcomes.get("notes", "")))[:2000]
    match.outcomes = {**match.outcomes, **clean}
    if complete:
        policy.require(actor, "welcome.match.propose", programme)
        match.status, match.completed_at = MatchStatus.completed, clock.now()
        group.status = GroupStatus.completed
    match.updated_at = clock.now()
    audit.record(session, action="welcome.match.outcomes", actor=actor, object_type="welcome_match",
                 object_id=match.id, details={"complete": complete, "fields": sorted(clean)},
                 org_id=group.org_id)
    return match


# What a sponsor sees ----------------------------------------------------------------------------------------------


def sponsor_view(programme: Programme, match: Match) -> dict[str, Any]:
    """The family as the group may know it: the shared snapshot (only the programme's sponsor fields), the
    arrival notice, and the match's state. Nothing here comes from the case."""
    fields = set(programme.sponsor_fields)
    view: dict[str, Any] = {k: v for k, v in match.shared.items() if k in fields}
    # The date always: the group receives the family and every service is due from it. The itinerary (flight,
    # airport, time, notes) only where the programme shares it.
    view["arrival_on"] = match.arrival_on.isoformat() if match.arrival_on else None
    if "arrival" in fields:
        view["arrival_notice"] = dict(match.arrival_notice)
    view["status"] = match.status.value
    view["stream"] = match.stream.value
    return view


def _tell_group(session: Session, group: SponsorGroup, *, subject: str, text: str, key: str) -> None:
    emails = sorted({group.contact_email, *(m.email for m in members_of(session, group) if m.email)})
    if emails:
        mail.send_email(session, to=emails, subject=subject, text=text, org_id=group.org_id, dedupe_key=key)


# Donations ------------------------------------------------------------------------------------------------------


def offer_donation(session: Session, *, programme: Programme, data: Mapping[str, Any],
                   actor: Principal | None = None, group: SponsorGroup | None = None) -> Donation:
    """Anyone offers an item to the programme's families (the public page), or a group offers one."""
    errors: list[FieldError] = []
    donor = _text(data, "donor_name", errors, required=group is None) or (group.name if group else "")
    email = _email(data, "donor_email", errors, required=group is None)
    try:
        kind = DonationKind(str(data.get("kind", "")))
    except ValueError:
        errors.append(FieldError("kind", _("food, clothing, furniture, household or other")))
        kind = DonationKind.other
    description = _text(data, "description", errors, required=True, limit=MAX_TEXT)
    condition = str(data.get("condition") or "good")
    if condition not in ("new", "good", "fair"):
        errors.append(FieldError("condition", _("new, good or fair")))
    quantity = _int(data, "quantity", errors, default=1, low=1, high=1000)
    city = _text(data, "city", errors, required=True, limit=120)
    _fail(errors)
    donation = Donation(programme_id=programme.id, donor_name=donor, donor_email=email,
                        donor_group_id=group.id if group else None, kind=kind, description=description,
                        condition=condition, quantity=quantity, city=city)
    session.add(donation)
    session.flush()
    audit.record(session, action="welcome.donation.offer", actor=actor or PUBLIC, object_type="welcome_donation",
                 object_id=donation.id, details={"kind": kind.value}, org_id=programme.org_id)
    return donation


def claim_donation(session: Session, *, actor: Principal, group: SponsorGroup, donation: Donation) -> Donation:
    policy.require(actor, "welcome.task.update", group)
    if donation.programme_id != group.programme_id:
        raise policy.NotFound()
    if donation.status != DonationStatus.offered:
        raise Conflict(_("This item has already been claimed."))
    _open(group)
    if not session.scalar(select(func.count()).where(Match.group_id == group.id, Match.status.in_(OPEN_MATCHES))):
        raise Conflict(_("A group claims items once it has a family to welcome."))
    donation.status, donation.claimed_by_group_id, donation.claimed_at = DonationStatus.claimed, group.id, clock.now()
    audit.record(session, action="welcome.donation.claim", actor=actor, object_type="welcome_donation",
                 object_id=donation.id, org_id=group.org_id)
    return donation


def give_donation(session: Session, *, actor: Principal, group: SponsorGroup, donation: Donation,
                  on: Any = None) -> Donation:
    """The ledger: the claimed item reached the group's family."""
    policy.require(actor, "welcome.task.update", group)
    if donation.claimed_by_group_id != group.id or donation.status != DonationStatus.claimed:
        raise Conflict(_("Only an item your group claimed can be recorded as given."))
    match = session.scalars(select(Match).where(Match.group_id == group.id, Match.status == MatchStatus.active)
                            ).first()
    if match is None:
        raise Conflict(_("Your group has no family to give it to yet."))
    errors: list[FieldError] = []
    when = _date(on, "given_on", errors) or today_()
    _fail(errors)
    donation.status, donation.given_to_match_id, donation.given_on = DonationStatus.given, match.id, when
    audit.record(session, action="welcome.donation.give", actor=actor, object_type="welcome_donation",
                 object_id=donation.id, org_id=group.org_id)
    return donation


def release_donation(session: Session, *, actor: Principal, group: SponsorGroup, donation: Donation) -> Donation:
    """A claimed item the group no longer needs goes back on offer."""
    policy.require(actor, "welcome.task.update", group)
    if donation.claimed_by_group_id != group.id or donation.status != DonationStatus.claimed:
        raise Conflict(_("Only an item your group claimed can be released."))
    donation.status, donation.claimed_by_group_id, donation.claimed_at = DonationStatus.offered, None, None
    audit.record(session, action="welcome.donation.release", actor=actor, object_type="welcome_donation",
                 object_id=donation.id, org_id=group.org_id)
    return donation


# The programme's figures ----------------------------------------------------------------------------------------


def dashboard(session: Session, *, actor: Principal, programme: Programme, today: date | None = None
              ) -> dict[str, Any]:
    """Groups by status, families welcomed, services on time, outcomes and funds."""
    policy.require(actor, "welcome.dashboard", programme)
    today = today or today_()
    groups = Counter(dict(session.execute(
        select(SponsorGroup.status, func.count()).where(SponsorGroup.programme_id == programme.id)
        .group_by(SponsorGroup.status)).all()))
    matches = Counter(dict(session.execute(
        select(Match.status, func.count()).where(Match.programme_id == programme.id).group_by(Match.status)).all()))
    tasks = session.execute(
        select(ServiceTask.due_on, ServiceTask.done_on).join(Match, Match.id == ServiceTask.match_id)
        .where(Match.programme_id == programme.id, Match.status.in_([MatchStatus.active, MatchStatus.completed]),
               ServiceTask.due_on.is_not(None))).all()
    due = [(d, done) for d, done in tasks if d < today or done is not None]
    on_time = sum(1 for d, done in due if done is not None and done <= d)
    late_done = sum(1 for d, done in due if done is not None and done > d)
    open_overdue = sum(1 for d, done in due if done is None and d < today)
    outcomes: Counter[str] = Counter()
    ended = 0
    for (values,) in session.execute(select(Match.outcomes).where(Match.programme_id == programme.id,
                                                                  Match.status == MatchStatus.completed)):
        ended += 1
        for key in OUTCOMES:
            if (values or {}).get(key):
                outcomes[key] += 1
    funds = session.execute(select(func.coalesce(func.sum(SponsorGroup.funds_pledged), 0),
                                   func.coalesce(func.sum(SponsorGroup.funds_cash), 0))
                            .where(SponsorGroup.programme_id == programme.id,
                                   SponsorGroup.status != GroupStatus.withdrawn)).one()
    verified = session.scalar(select(func.coalesce(func.sum(SponsorGroup.funds_pledged), 0))
                              .where(SponsorGroup.programme_id == programme.id,
                                     SponsorGroup.funds_verified_at.is_not(None),
                                     SponsorGroup.status != GroupStatus.withdrawn))
    welcomed = session.scalar(select(func.count()).where(
        Match.programme_id == programme.id, Match.arrival_on.is_not(None), Match.arrival_on <= today,
        Match.status.in_([MatchStatus.active, MatchStatus.completed])))
    return {
        "groups": {s.value: int(groups.get(s, 0)) for s in GroupStatus},
        "matches": {s.value: int(matches.get(s, 0)) for s in MatchStatus},
        "families_welcomed": int(welcomed or 0),
        "services": {"due": len(due), "on_time": on_time, "late": late_done, "overdue": open_overdue,
                     "on_time_share": round(on_time / len(due), 3) if due else None},
        "outcomes": {"completed": ended, **{k: int(outcomes.get(k, 0)) for k in OUTCOMES}},
        "funds": {"pledged": float(funds[0]), "cash": float(funds[1]), "verified": float(verified or 0),
                  "currency": programme.currency},
    }



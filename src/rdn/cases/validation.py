"""One set of checks for case and member fields, whether they come from a form, the API or a spreadsheet.

Each ``clean_*`` takes loosely typed values (strings from forms and files, or typed values from the API),
returns the normalised values and a list of :class:`FieldError` naming each bad field; callers prefix the
field with where it came from (``members[2].birth_year``, ``row 12, column birth_year``). Nothing here
touches the database, so an import of a million rows validates at full speed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from enum import StrEnum
from functools import lru_cache
from typing import Any

from babel import Locale

from rdn.cases.models import Category, Education, Priority, Relationship, Sex, SpecificNeed
from rdn.core import clock
from rdn.core.errors import FieldError
from rdn.core.i18n import EXTRA_LANGUAGES, countries
from rdn.core.i18n import gettext as _

_LIST_SPLIT = re.compile(r"\s*[;|,]\s*")
_DOB = re.compile(r"^(\d{4})(?:-(\d{2})-(\d{2}))?$")
MIN_YEAR = 1900


@lru_cache(maxsize=1)
def country_codes() -> frozenset[str]:
    return frozenset(code for code, _name in countries())


@lru_cache(maxsize=1)
def language_codes() -> frozenset[str]:
    known = {code for code in Locale("en").languages if code.isalpha() and code.islower() and len(code) in (2, 3)}
    return frozenset(known | set(EXTRA_LANGUAGES))


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def as_list(value: Any) -> list[str]:
    """A list from a list, or from text separated by semicolons, bars or commas."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [s for s in (_text(v) for v in value) if s]
    return [s for s in _LIST_SPLIT.split(_text(value)) if s]


def _choice(kind: type[StrEnum], value: Any, field: str, errors: list[FieldError], *,
            required: bool = True, default: StrEnum | None = None) -> Any:
    text = _text(value).lower() if kind is not Category else _text(value).upper()
    if not text:
        if required:
            errors.append(FieldError(field, _("is required")))
        return default
    try:
        return kind(text)
    except ValueError:
        errors.append(FieldError(field, _("must be one of %(values)s", values=", ".join(m.value for m in kind))))
        return default


def _country(value: Any, field: str, errors: list[FieldError], *, required: bool) -> str | None:
    code = _text(value).upper()
    if not code:
        if required:
            errors.append(FieldError(field, _("is required")))
        return None
    if code not in country_codes():
        errors.append(FieldError(field, _("is not an ISO 3166 country code (two letters, such as AF or SY)")))
        return None
    return code


def _limited(value: Any, field: str, errors: list[FieldError], *, high: int, required: bool = False) -> str:
    text = _text(value)
    if required and not text:
        errors.append(FieldError(field, _("is required")))
    elif len(text) > high:
        errors.append(FieldError(field, _("must be at most %(high)s characters", high=high)))
        text = text[:high]
    return text


def clean_birth(value: Any, field: str, errors: list[FieldError]) -> tuple[int | None, date | None]:
    """``1987`` or ``1987-04-12`` (the year alone is common: many refugees know only that)."""
    if isinstance(value, date):
        return value.year, value
    if isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    else:
        text = _text(value)
        if text.endswith(".0") and text[:-2].isdigit():  # a year read from a spreadsheet as a number
            text = text[:-2]
        if len(text) > 10 and text[10] in " T" and text[11:].strip("0: ") == "":  # a date-time at midnight
            text = text[:10]
    if not text:
        errors.append(FieldError(field, _("is required (a year such as 1987, or a date such as 1987-04-12)")))
        return None, None
    match = _DOB.match(text)
    if not match:
        errors.append(FieldError(field, _("must be a year such as 1987 or a date such as 1987-04-12")))
        return None, None
    year = int(match.group(1))
    full: date | None = None
    if match.group(2):
        try:
            full = date(year, int(match.group(2)), int(match.group(3)))
        except ValueError:
            errors.append(FieldError(field, _("is not a real date")))
            return None, None
    today = clock.now().date()
    if year < MIN_YEAR or year > today.year or (full is not None and full > today):
        errors.append(FieldError(field, _("must be between %(low)s and today", low=MIN_YEAR)))
        return None, None
    return year, full


def clean_member(raw: Mapping[str, Any], prefix: str = "") -> tuple[dict[str, Any], list[FieldError]]:
    errors: list[FieldError] = []
    f = (lambda name: f"{prefix}{name}") if prefix else (lambda name: name)
    out: dict[str, Any] = {
        "relationship": _choice(Relationship, raw.get("relationship"), f("relationship"), errors),
        "given_name": _limited(raw.get("given_name"), f("given_name"), errors, high=120, required=True),
        "family_name": _limited(raw.get("family_name"), f("family_name"), errors, high=120),
        "sex": _choice(Sex, raw.get("sex"), f("sex"), errors),
        "occupation": _limited(raw.get("occupation"), f("occupation"), errors, high=120),
        "education": _choice(Education, raw.get("education"), f("education"), errors, required=False,
                             default=Education.unknown),
    }
    other_names = as_list(raw.get("other_names"))
    if len(other_names) > 10 or any(len(n) > 120 for n in other_names):
        errors.append(FieldError(f("other_names"), _("at most 10 names of at most 120 characters each")))
    out["other_names"] = other_names[:10]
    if "date_of_birth" in raw:
        out["birth_year"], out["birth_date"] = clean_birth(raw.get("date_of_birth"), f("date_of_birth"), errors)
    else:
        out["birth_year"], out["birth_date"] = clean_birth(raw.get("birth_date") or raw.get("birth_year"),
                                                           f("birth_year"), errors)
    stateless = raw.get("stateless")
    out["stateless"] = stateless if isinstance(stateless, bool) else _text(stateless).lower() in {
        "1", "true", "yes", "on", "y"}
    out["nationality"] = _country(raw.get("nationality"), f("nationality"), errors, required=False)
    if out["nationality"] is None and not out["stateless"] and not any(e.field == f("nationality") for e in errors):
        errors.append(FieldError(f("nationality"), _("is required (or mark the person stateless)")))
    if out["stateless"] and out["nationality"]:
        errors.append(FieldError(f("nationality"), _("a stateless person has no nationality")))
    languages = [code.lower() for code in as_list(raw.get("languages"))]
    bad = [code for code in languages if code not in language_codes()]
    if bad:
        errors.append(FieldError(f("languages"), _("not ISO 639 language codes: %(codes)s", codes=", ".join(bad))))
    out["languages"] = list(dict.fromkeys(code for code in languages if code not in bad))
    needs = [n.lower() for n in as_list(raw.get("specific_needs"))]
    bad = [n for n in needs if n not in SpecificNeed.__members__]
    if bad:
        errors.append(FieldError(f("specific_needs"), _("unknown specific needs: %(codes)s", codes=", ".join(bad))))
    out["specific_needs"] = list(dict.fromkeys(n for n in needs if n not in bad))
    return out, errors


CASE_FIELDS = ("current_country", "current_location", "category_primary", "category_secondary",
               "processing_priority", "submission_priority")


def clean_case(raw: Mapping[str, Any], prefix: str = "") -> tuple[dict[str, Any], list[FieldError]]:
    errors: list[FieldError] = []
    f = (lambda name: f"{prefix}{name}") if prefix else (lambda name: name)
    out = {
        "current_country": _country(raw.get("current_country"), f("current_country"), errors, required=True),
        "current_location": _limited(raw.get("current_location"), f("current_location"), errors, high=200),
        "category_primary": _choice(Category, raw.get("category_primary"), f("category_primary"), errors),
        "category_secondary": _choice(Category, raw.get("category_secondary"), f("category_secondary"), errors),
        "processing_priority": _choice(Priority, raw.get("processing_priority"), f("processing_priority"), errors),
        "submission_priority": _choice(Priority, raw.get("submission_priority"), f("submission_priority"), errors),
    }
    if out["category_primary"] and out["category_primary"] == out["category_secondary"]:
        errors.append(FieldError(f("category_secondary"), _("must differ from the primary category")))
    return out, errors


def check_household(members: list[dict[str, Any]], prefix: str = "members") -> list[FieldError]:
    """A household has exactly one principal applicant and at most 60 people."""
    errors: list[FieldError] = []
    if not members:
        return [FieldError(prefix, _("a case needs at least its principal applicant"))]
    principals = [i for i, m in enumerate(members) if m.get("relationship") == Relationship.principal]
    if len(principals) != 1:
        errors.append(FieldError(prefix, _("a case needs exactly one principal applicant (found %(n)s)",
                                           n=len(principals))))
    if len(members) > 60:
        errors.append(FieldError(prefix, _("at most %(high)s people in one case", high=60)))
    return errors


def clean_ties(raw: list[Mapping[str, Any]], prefix: str = "family_ties") -> tuple[list[dict[str, Any]],
                                                                                  list[FieldError]]:
    errors: list[FieldError] = []
    out = []
    for i, tie in enumerate(raw[:20]):
        p = f"{prefix}[{i}]."
        out.append({
            "country": _country(tie.get("country"), p + "country", errors, required=True),
            "city": _limited(tie.get("city"), p + "city", errors, high=120),
            "relationship": _limited(tie.get("relationship"), p + "relationship", errors, high=60, required=True),
            "note": _limited(tie.get("note"), p + "note", errors, high=300),
        })
    if len(raw) > 20:
        errors.append(FieldError(prefix, _("at most %(high)s family ties", high=20)))
    return out, errors


def clean_preferences(raw: Mapping[str, Any], prefix: str = "preferences") -> tuple[dict[str, Any],
                                                                                   list[FieldError]]:
    errors: list[FieldError] = []
    wanted = [c.upper() for c in as_list(raw.get("countries"))]
    avoided = [c.upper() for c in as_list(raw.get("avoid"))]
    for name, codes in (("countries", wanted), ("avoid", avoided)):
        bad = [c for c in codes if c not in country_codes()]
        if bad:
            errors.append(FieldError(f"{prefix}.{name}", _("not ISO 3166 country codes: %(codes)s",
                                                           codes=", ".join(bad))))
    both = set(wanted) & set(avoided)
    if both:
        errors.append(FieldError(f"{prefix}.avoid", _("a country cannot be both wanted and avoided: %(codes)s",
                                                      codes=", ".join(sorted(both)))))
    setting = _text(raw.get("setting")).lower() or "any"
    if setting not in {"any", "urban", "rural"}:
        errors.append(FieldError(f"{prefix}.setting", _("must be one of %(values)s", values="any, urban, rural")))
    note = _limited(raw.get("note"), f"{prefix}.note", errors, high=500)
    return {"countries": list(dict.fromkeys(wanted))[:10], "avoid": list(dict.fromkeys(avoided))[:10],
            "setting": setting, "note": note}, errors

"""Screening rules as data: a small condition language that staff edit, the facts of a registration it reads,
versioned rules per office, and screening (one registration, or all of an office's open registrations at once).

A rule's ``conditions`` is a JSON list that must ALL hold. Each item is ``{"field": F, "op": OP, "value": V}`` or
``{"any": [items...]}`` (at least one holds)::

    [{"field": "nationality", "op": "in", "value": ["VE", "NI"]},
     {"field": "arrived_on", "op": "on_or_before", "value": "2023-06-12"},
     {"any": [{"field": "ties", "op": "contains", "value": "ES"},
              {"field": "answer.trade_experience", "op": "is_true"}]}]

Fields (the facts of a registration, :func:`facts_of`): ``nationality`` (the principal applicant's ISO code),
``age`` (the principal's age in whole years today), ``arrived_on`` (ISO date), ``household_size``,
``members.nationalities`` (list), ``members.min_age``, ``members.max_age``, ``has_children`` (any member under
18), ``ties`` (countries where close family lives), ``categories`` (list), ``office`` (the office's country) and
``answer.<key>`` (the answer to one of the rule's questions). Operators: ``in``, ``not_in`` (a list), ``eq``,
``ne``, ``gte``, ``lte``, ``gt``, ``lt`` (numbers, or ISO dates for dates), ``before``, ``on_or_before``,
``after`` (dates), ``contains`` (a list fact holds the value), ``contains_any`` (a list fact shares an item with
the value list), ``is_true``, ``is_false``, ``exists`` (no value). A fact that is missing (no birth date, a
question not answered) makes its condition not hold; evaluating never raises.

Every save of a rule is a new version of the same ``rule_key`` (the previous one retired) and re-screens the
office's open registrations for that rule, so each current result names the version that decided it. Before
saving, :func:`preview_rule` tells how many current registrations the change would move, computed exactly as the
save computes what it moves (and writing nothing): "before" is the stored current result of the version being
replaced (for a new rule, not qualifying), "after" the new version evaluated today.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.orm import Session, object_session
from sqlalchemy.orm.util import identity_key

from rdn.core import audit, clock, i18n, policy
from rdn.core.audit import Actor
from rdn.core.errors import Conflict, FieldError, ValidationFailed
from rdn.core.i18n import gettext as _
from rdn.core.identity import Principal
from rdn.db import new_id
from rdn.mobility import public_i18n
from rdn.mobility.models import (
    OPEN_STATUSES,
    Office,
    Registration,
    RegistrationStatus,
    RuleStatus,
    ScreeningResult,
    ScreeningRule,
)
from rdn.pathways.models import Pathway

# The language ---------------------------------------------------------------------------------------------------

#: field -> kind of fact (``answer.<key>`` takes the kind of its question).
FIELDS: dict[str, str] = {
    "nationality": "country",
    "age": "number",
    "arrived_on": "date",
    "household_size": "number",
    "members.nationalities": "countries",
    "members.min_age": "number",
    "members.max_age": "number",
    "has_children": "bool",
    "ties": "countries",
    "categories": "list",
    "office": "country",
}
ANSWER_PREFIX = "answer."
VALUE_OPS = ("in", "not_in", "eq", "ne", "gte", "lte", "gt", "lt", "before", "on_or_before", "after", "contains",
             "contains_any")
BARE_OPS = ("is_true", "is_false", "exists")  # take no value
OPS = VALUE_OPS + BARE_OPS
LIST_OPS = frozenset({"in", "not_in", "contains_any"})  # the value is a list
#: kind -> the operators that make sense for it.
OPS_BY_KIND: dict[str, tuple[str, ...]] = {
    "country": ("in", "not_in", "eq", "ne", "exists"),
    "number": ("in", "not_in", "eq", "ne", "gte", "lte", "gt", "lt", "exists"),
    "date": ("eq", "ne", "gte", "lte", "gt", "lt", "before", "on_or_before", "after", "exists"),
    "bool": ("is_true", "is_false", "eq", "ne", "exists"),
    "countries": ("contains", "contains_any", "exists"),
    "list": ("contains", "contains_any", "exists"),
    "text": ("in", "not_in", "eq", "ne", "exists"),
    "any": OPS,  # an answer whose question is not known here (checked against the rule's questions by clean_rule)
}
QUESTION_KINDS = {"yes_no": "bool", "number": "number", "choice": "text"}
QUESTION_TYPES = tuple(QUESTION_KINDS)
QUESTION_KEY = re.compile(r"^[a-z0-9_]{1,40}$")
ANSWER_FIELD = re.compile(r"^answer\.([a-z0-9_]{1,40})$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MAX_CONDITIONS = 50
MAX_ANY = 20
MAX_DEPTH = 3
MAX_LIST = 250  # items in a value list
MAX_QUESTIONS = 30
MAX_CHOICES = 30
MAX_JSON = 50_000  # characters of JSON text in a form
MAX_TEXT = 500
ADULT = 18
#: Registration statuses that screening moves (the others keep theirs: an interview is booked, and so on).
SCREENABLE = frozenset({RegistrationStatus.received, RegistrationStatus.screened, RegistrationStatus.not_qualified})

_TRUE = frozenset({"yes", "true", "1", "y", "si", "sí", "wi"})
_FALSE = frozenset({"no", "false", "0", "n", "non"})


def kind_of(field: str, questions: Mapping[str, Mapping[str, Any]] | None = None) -> str | None:
    """The kind of fact ``field`` names (None: no such field)."""
    if field in FIELDS:
        return FIELDS[field]
    match = ANSWER_FIELD.match(field) if isinstance(field, str) else None
    if match is None:
        return None
    if questions is None:
        return "any"
    question = questions.get(match.group(1))
    return QUESTION_KINDS.get(str(question.get("type"))) if question else None


# Facts ----------------------------------------------------------------------------------------------------------


def age_on(birth: date | None, today: date) -> int | None:
    if birth is None:
        return None
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def _iso(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and ISO_DATE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _facts(nationality: str | None, birth_date: date | None, arrived_on: date | None, household_size: int | None,
           profile: Mapping[str, Any] | None, answers: Mapping[str, Any] | None, office_country: str | None,
           today: date) -> dict[str, Any]:
    profile = profile or {}
    members = [m for m in profile.get("members") or [] if isinstance(m, Mapping)]
    ages: list[int] = []
    unknown_age = False
    nationalities: list[str] = []
    for m in members:
        age = age_on(_iso(m.get("birth_date")), today)
        if age is None:
            unknown_age = True
        else:
            ages.append(age)
        code = m.get("nationality")
        if code and code not in nationalities:
            nationalities.append(str(code))
    if nationality and nationality not in nationalities:
        nationalities.insert(0, nationality)
    children = any(a < ADULT for a in ages)
    facts: dict[str, Any] = {
        "nationality": nationality or None,
        "age": age_on(birth_date, today),
        "arrived_on": arrived_on,
        "household_size": household_size,
        "members.nationalities": nationalities,
        "members.min_age": min(ages) if ages else None,
        "members.max_age": max(ages) if ages else None,
        # Unknown when no member is known to be a child but some members' ages are not known.
        "has_children": True if children else (None if unknown_age or not members else False),
        "ties": [str(c) for c in profile.get("ties") or []],
        "categories": [str(c) for c in profile.get("categories") or []],
        "office": office_country or None,
    }
    for key, value in (answers or {}).items():
        facts[ANSWER_PREFIX + str(key)] = value
    return facts


def facts_of(registration: Registration, today: date, *, office: Office | None = None) -> dict[str, Any]:
    """What the condition language reads of ``registration`` on ``today`` (the office's country comes from
    ``office``, else from the registration's session, else from its reference ``SM-CR-...``)."""
    country = office.country if office is not None else None
    if country is None:
        session = object_session(registration)
        found = session.get(Office, registration.office_id) if session is not None else None
        if found is not None:
            country = found.country
        elif registration.reference and registration.reference.startswith("SM-"):
            country = registration.reference[3:5]
    return _facts(registration.nationality, registration.birth_date, registration.arrived_on,
                  registration.household_size, registration.profile, registration.answers, country, today)


# Evaluating -----------------------------------------------------------------------------------------------------


def _as_number(value: Any) -> float | int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value) if value in (0, 1) else None
    if isinstance(value, str):
        text = value.strip().casefold()
        return True if text in _TRUE else (False if text in _FALSE else None)
    return None


def _present(value: Any) -> bool:
    return value is not None and value != "" and value != []


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "gte": lambda a, b: a >= b, "lte": lambda a, b: a <= b, "gt": lambda a, b: a > b, "lt": lambda a, b: a < b,
    "before": lambda a, b: a < b, "on_or_before": lambda a, b: a <= b, "after": lambda a, b: a > b,
}


def _scalar_coercer(value: Any, date_field: bool) -> tuple[Any, Callable[[Any], Any]]:
    """The value as compared, and how to read a fact to compare with it (None: cannot compare)."""
    if isinstance(value, bool):
        return value, _as_bool
    if isinstance(value, int | float):
        return value, _as_number
    as_date = _iso(value)
    if as_date is not None and (date_field or isinstance(value, str)):
        return as_date, _iso
    return ("" if value is None else str(value)), (lambda x: None if x is None else str(x))


def _predicate(field: str, op: str, value: Any) -> Callable[[Any], bool]:
    """A test of one fact (the fact may be missing, or of an unexpected type: the test then fails)."""
    date_field = FIELDS.get(field) == "date"
    if op == "exists":
        return _present
    if op == "is_true":
        return lambda x: _as_bool(x) is True
    if op == "is_false":
        return lambda x: _as_bool(x) is False
    if op in ("contains", "contains_any"):
        wanted = set(map(str, value)) if op == "contains_any" and isinstance(value, list) else {str(value)}

        def contains(x: Any) -> bool:
            if x is None:
                return False
            items = x if isinstance(x, list | tuple | set) else [x]
            return any(str(i) in wanted for i in items)
        return contains
    if op in ("in", "not_in"):
        values = value if isinstance(value, list) else [value]
        if all(isinstance(v, str) and _iso(v) is None for v in values):
            wanted = frozenset(values)

            def one(item: Any) -> bool:
                return item is not None and str(item) in wanted
        else:
            tests = [_predicate(field, "eq", v) for v in values]

            def one(item: Any) -> bool:
                return any(test(item) for test in tests)

        def member(x: Any) -> bool:
            if x is None:
                return False
            items = x if isinstance(x, list | tuple) else [x]
            if not items:
                return False
            hits = [one(i) for i in items]
            return all(hits) if op == "in" else not any(hits)
        return member
    target, read = _scalar_coercer(value, date_field)
    if op in ("eq", "ne"):
        def equal(x: Any) -> bool:
            got = read(x)
            if got is None:
                return False
            return (got == target) if op == "eq" else (got != target)
        return equal
    compare = _ORDER.get(op)
    if compare is None:
        return lambda x: False

    def ordered(x: Any) -> bool:
        got = read(x)
        if got is None or isinstance(got, bool) or isinstance(target, bool) or isinstance(got, str):
            return False
        try:
            return bool(compare(got, target))
        except TypeError:
            return False
    return ordered


#: A compiled condition: the facts -> True/False for a plain condition, (held, (sub patterns...)) for an "any".
Test = Callable[[Mapping[str, Any]], Any]


def _held(pattern: Any) -> bool:
    return pattern if pattern.__class__ is bool else pattern[0]


def _compile_one(item: Any, depth: int = 0) -> Test:
    if isinstance(item, Mapping) and "any" in item:
        parts = [_compile_one(i, depth + 1) for i in (item.get("any") or [])] if depth < MAX_DEPTH else []

        def any_of(facts: Mapping[str, Any]) -> tuple[bool, tuple[Any, ...]]:
            subs = tuple(part(facts) for part in parts)
            return any(_held(s) for s in subs), subs
        return any_of
    if not isinstance(item, Mapping):
        return lambda facts: False
    field, op, value = item.get("field"), item.get("op"), item.get("value")
    try:
        test = _predicate(str(field), str(op), value) if op in OPS else (lambda x: False)
    except Exception:  # a malformed stored value: the condition simply does not hold
        def test(x: Any) -> bool:
            return False

    def leaf(facts: Mapping[str, Any]) -> bool:
        try:
            return bool(test(facts.get(field)))  # type: ignore[arg-type]
        except Exception:
            return False
    return leaf


def _check(item: Any, pattern: Any) -> dict[str, Any]:
    if isinstance(item, Mapping) and "any" in item:
        held, subs = pattern
        items = item.get("any") or []
        return {"any": [_check(i, p) for i, p in zip(items, subs, strict=False)], "held": held}
    if not isinstance(item, Mapping):
        return {"field": None, "op": None, "value": None, "held": False}
    return {"field": item.get("field"), "op": item.get("op"), "value": item.get("value"), "held": pattern}


class CompiledRule:
    """A rule's conditions made into functions of the facts, for screening many registrations against one rule:
    :meth:`pattern` says which conditions held (a tuple), and the checks of each distinct pattern are built once
    (:meth:`checks`, and with :meth:`stored` the value as the database stores it)."""

    def __init__(self, conditions: Sequence[Any]) -> None:
        self.conditions = list(conditions or [])
        self.tests = [_compile_one(c) for c in self.conditions]
        self._stored: dict[tuple[Any, ...], Any] = {}

    def pattern(self, facts: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple([test(facts) for test in self.tests])

    @staticmethod
    def qualifies(pattern: tuple[Any, ...]) -> bool:
        return all(_held(p) for p in pattern)

    def checks(self, pattern: tuple[Any, ...]) -> list[dict[str, Any]]:
        return [_check(item, p) for item, p in zip(self.conditions, pattern, strict=True)]

    def stored(self, pattern: tuple[Any, ...], process: Callable[[Any], Any]) -> Any:
        """The checks of ``pattern`` through ``process`` (a column's bind processor), once per pattern."""
        found = self._stored.get(pattern)
        if found is None:
            found = self._stored[pattern] = process(self.checks(pattern))
        return found

    def __call__(self, facts: Mapping[str, Any]) -> tuple[bool, list[dict[str, Any]]]:
        pattern = self.pattern(facts)
        return self.qualifies(pattern), self.checks(pattern)


def compile_conditions(conditions: Sequence[Any]) -> CompiledRule:
    """``conditions`` made into a function of the facts giving ``(qualifies, checks)``."""
    return CompiledRule(conditions)


def evaluate(conditions: list[dict[str, Any]], facts: dict[str, Any]) -> tuple[bool, list[dict[str, Any]]]:
    """Whether every condition holds for ``facts``, and one check per top-level condition: ``{"field", "op",
    "value", "held"}``, or ``{"any": [sub checks], "held"}``. A missing fact makes its condition not hold."""
    return compile_conditions(conditions)(facts)


# Describing -----------------------------------------------------------------------------------------------------


def _staff_phrases() -> dict[str, str]:
    return {
        "in": _("%(field)s is one of %(values)s"),
        "not_in": _("%(field)s is none of %(values)s"),
        "eq": _("%(field)s is %(value)s"),
        "ne": _("%(field)s is not %(value)s"),
        "gte": _("%(field)s is at least %(value)s"),
        "lte": _("%(field)s is at most %(value)s"),
        "gt": _("%(field)s is more than %(value)s"),
        "lt": _("%(field)s is less than %(value)s"),
        "date_gte": _("%(field)s is on or after %(value)s"),
        "date_lte": _("%(field)s is on or before %(value)s"),
        "date_gt": _("%(field)s is after %(value)s"),
        "date_lt": _("%(field)s is before %(value)s"),
        "contains": _("%(field)s include %(value)s"),
        "contains_any": _("%(field)s include any of %(values)s"),
        "is_true": _("%(field)s: yes"),
        "is_false": _("%(field)s: no"),
        "exists": _("%(field)s is known"),
        "any": _("At least one of: %(items)s"),
        "yes": _("yes"),
        "no": _("no"),
        "ties.contains": _("Close family lives in %(value)s"),
        "ties.contains_any": _("Close family lives in one of %(values)s"),
        "ties.exists": _("Has close family in another country"),
        "members.nationalities.contains": _("Someone in the household is from %(value)s"),
        "members.nationalities.contains_any": _("Someone in the household is from one of %(values)s"),
        "has_children.is_true": _("Has children under 18"),
        "has_children.is_false": _("Has no children under 18"),
        "f.nationality": _("Nationality"),
        "f.age": _("Age"),
        "f.arrived_on": _("Date of arrival"),
        "f.household_size": _("Household size"),
        "f.members.nationalities": _("Nationalities in the household"),
        "f.members.min_age": _("Age of the youngest in the household"),
        "f.members.max_age": _("Age of the oldest in the household"),
        "f.has_children": _("Children under 18 in the household"),
        "f.ties": _("Countries where close family lives"),
        "f.categories": _("Categories"),
        "f.office": _("Country of the office"),
        "f.answer": _("The answer to “%(question)s”"),
        "f.unknown": _("“%(question)s”"),
    }


def _public_phrases() -> dict[str, str]:
    t = public_i18n.t
    return {
        "in": t("%(field)s is one of %(values)s"),
        "not_in": t("%(field)s is none of %(values)s"),
        "eq": t("%(field)s is %(value)s"),
        "ne": t("%(field)s is not %(value)s"),
        "gte": t("%(field)s is at least %(value)s"),
        "lte": t("%(field)s is at most %(value)s"),
        "gt": t("%(field)s is more than %(value)s"),
        "lt": t("%(field)s is less than %(value)s"),
        "date_gte": t("%(field)s is on or after %(value)s"),
        "date_lte": t("%(field)s is on or before %(value)s"),
        "date_gt": t("%(field)s is after %(value)s"),
        "date_lt": t("%(field)s is before %(value)s"),
        "contains": t("%(field)s include %(value)s"),
        "contains_any": t("%(field)s include any of %(values)s"),
        "is_true": t("%(field)s: yes"),
        "is_false": t("%(field)s: no"),
        "exists": t("%(field)s is known"),
        "any": t("At least one of: %(items)s"),
        "yes": t("yes"),
        "no": t("no"),
        "ties.contains": t("Close family lives in %(value)s"),
        "ties.contains_any": t("Close family lives in one of %(values)s"),
        "ties.exists": t("Has close family in another country"),
        "members.nationalities.contains": t("Someone in the household is from %(value)s"),
        "members.nationalities.contains_any": t("Someone in the household is from one of %(values)s"),
        "has_children.is_true": t("Has children under 18"),
        "has_children.is_false": t("Has no children under 18"),
        "f.nationality": t("Nationality"),
        "f.age": t("Age"),
        "f.arrived_on": t("Date of arrival"),
        "f.household_size": t("Household size"),
        "f.members.nationalities": t("Nationalities in the household"),
        "f.members.min_age": t("Age of the youngest in the household"),
        "f.members.max_age": t("Age of the oldest in the household"),
        "f.has_children": t("Children under 18 in the household"),
        "f.ties": t("Countries where close family lives"),
        "f.categories": t("Categories"),
        "f.office": t("Country of the office"),
        "f.answer": t("The answer to “%(question)s”"),
        "f.unknown": t("“%(question)s”"),
    }


#: Where Babel has no country names or dates in a registrant's language, those of a close one.
_PUBLIC_FALLBACK = {"ht": "fr"}


@dataclass(frozen=True)
class _Voice:
    phrases: dict[str, str]
    language: str  # to pick a question's text
    country: Callable[[str], str]
    day: Callable[[date], str]
    number: Callable[[Any], str]


def _staff_voice() -> _Voice:
    locale = i18n.locale_var.get()
    return _Voice(_staff_phrases(), locale, lambda c: i18n.country_name(c), lambda d: i18n.format_date(d),
                  lambda n: i18n.format_number(n))


def _public_voice() -> _Voice:
    code = public_i18n.current()
    babel = _PUBLIC_FALLBACK.get(code, public_i18n.babel_code(code))

    def country(c: str) -> str:
        name = i18n.country_name(c, babel)
        return name if name != c else i18n.country_name(c, "en")

    return _Voice(_public_phrases(), code, country, lambda d: i18n.format_date(d, babel),
                  lambda n: i18n.format_number(n, babel))


def question_text(question: Mapping[str, Any], language: str) -> str:
    """A question's text in ``language``, else Spanish, else English, else any, else its key."""
    texts = question.get("text") or {}
    if isinstance(texts, Mapping):
        for code in (language, public_i18n.DEFAULT, "en", *texts):
            if texts.get(code):
                return str(texts[code])
    return str(question.get("key", ""))


def choice_options(question: Mapping[str, Any], language: str) -> list[tuple[str, str]]:
    """A choice question's choices as (value, label in ``language``): a choice is a string, or ``{"value",
    "text": {language: label}}``."""
    options = []
    for choice in question.get("choices") or []:
        if isinstance(choice, Mapping):
            options.append((str(choice.get("value", "")), question_text({"text": choice.get("text"),
                                                                          "key": choice.get("value", "")}, language)))
        else:
            options.append((str(choice), str(choice)))
    return options


def _label(field: str, voice: _Voice, questions: Mapping[str, Mapping[str, Any]] | None) -> str:
    match = ANSWER_FIELD.match(field or "")
    if match:
        key = match.group(1)
        question = (questions or {}).get(key)
        return voice.phrases["f.answer"] % {"question": question_text(question, voice.language) if question
                                            else key}
    return voice.phrases.get(f"f.{field}") or voice.phrases["f.unknown"] % {"question": field}


def _value_text(field: str, value: Any, voice: _Voice, questions: Mapping[str, Mapping[str, Any]] | None) -> str:
    kind = FIELDS.get(field)
    if isinstance(value, bool):
        return voice.phrases["yes" if value else "no"]
    if kind in ("country", "countries") and isinstance(value, str):
        return voice.country(value)
    day = _iso(value)
    if day is not None and (kind == "date" or isinstance(value, str)):
        return voice.day(day)
    if isinstance(value, int | float):
        return voice.number(value)
    match = ANSWER_FIELD.match(field or "")
    if match and questions and match.group(1) in questions:
        labels = dict(choice_options(questions[match.group(1)], voice.language))
        return labels.get(str(value), str(value))
    return str(value)


def _describe(check: Mapping[str, Any], voice: _Voice, questions: Mapping[str, Mapping[str, Any]] | None) -> str:
    if "any" in check:
        items = [_describe(c, voice, questions) for c in check.get("any") or [] if isinstance(c, Mapping)]
        return voice.phrases["any"] % {"items": "; ".join(items)}
    field, op, value = str(check.get("field") or ""), str(check.get("op") or ""), check.get("value")
    special = voice.phrases.get(f"{field}.{op}")
    values = value if isinstance(value, list) else [value]
    variables = {"field": _label(field, voice, questions),
                 "value": _value_text(field, value, voice, questions) if not isinstance(value, list) else
                 ", ".join(_value_text(field, v, voice, questions) for v in values),
                 "values": ", ".join(_value_text(field, v, voice, questions) for v in values)}
    if special:
        return special % variables
    is_date = FIELDS.get(field) == "date" or (isinstance(value, str) and _iso(value) is not None)
    key = {"before": "date_lt", "on_or_before": "date_lte", "after": "date_gt"}.get(op, op)
    if is_date and key in ("gte", "lte", "gt", "lt"):
        key = f"date_{key}"
    template = voice.phrases.get(key)
    if template is None:
        return f"{variables['field']} {op} {variables['value']}".strip()
    return template % variables


def _by_key(questions: Iterable[Any] | None) -> dict[str, Mapping[str, Any]]:
    return {str(q.get("key")): q for q in questions or [] if isinstance(q, Mapping)}


def describe(check: Mapping[str, Any], *, questions: Iterable[Any] | None = None) -> str:
    """A condition (or a check) in words, in the staff member's language: "Nationality is one of Venezuela,
    Nicaragua". With the rule's ``questions``, an answer's condition quotes its question."""
    return _describe(check, _staff_voice(), _by_key(questions))


def describe_public(check: Mapping[str, Any], *, questions: Iterable[Any] | None = None) -> str:
    """The same in the registrant's language (``rdn.mobility.public_i18n``)."""
    return _describe(check, _public_voice(), _by_key(questions))


# Cleaning -------------------------------------------------------------------------------------------------------


def _json_list(value: Any, name: str, errors: list[FieldError]) -> list[Any] | None:
    """A list, or JSON text of one (empty text: an empty list); None after an error."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        if len(text) > MAX_JSON:
            errors.append(FieldError(name, _("at most %(high)s characters", high=MAX_JSON)))
            return None
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            errors.append(FieldError(name, _("is not valid JSON: %(problem)s at line %(line)s, column %(column)s",
                                             problem=exc.msg, line=exc.lineno, column=exc.colno)))
            return None
    if isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, list):
        errors.append(FieldError(name, _("must be a list, written [ ... ]")))
        return None
    return value


def _country_code(value: Any) -> str | None:
    if isinstance(value, str) and i18n.is_country(value.strip().upper()):
        return value.strip().upper()
    return None


def _clean_scalar(kind: str, value: Any, name: str, errors: list[FieldError],
                  choices: list[str] | None = None) -> Any:
    """One value of a condition for a fact of ``kind``, normalised; an error (and None) when of the wrong type."""
    if kind in ("country", "countries"):
        code = _country_code(value)
        if code is None:
            errors.append(FieldError(name, _("must be an ISO 3166 country code such as VE (got %(got)s)",
                                             got=_shown(value))))
        return code
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            errors.append(FieldError(name, _("must be a number (got %(got)s)", got=_shown(value))))
            return None
        return value
    if kind == "date":
        if not isinstance(value, str) or _iso(value) is None:
            errors.append(FieldError(name, _("must be a date such as 2023-06-12 (got %(got)s)", got=_shown(value))))
            return None
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            errors.append(FieldError(name, _("must be true or false (got %(got)s)", got=_shown(value))))
            return None
        return value
    if kind in ("list", "text"):
        if not isinstance(value, str) or not value.strip() or len(value) > 100:
            errors.append(FieldError(name, _("must be a text of 1 to 100 characters (got %(got)s)",
                                             got=_shown(value))))
            return None
        if choices is not None and value not in choices:
            errors.append(FieldError(name, _("must be one of the question's choices: %(choices)s",
                                             choices=", ".join(choices))))
            return None
        return value
    # "any": an answer to a question not known here: a plain JSON scalar
    if value is None or isinstance(value, list | dict) or (isinstance(value, str) and len(value) > 100):
        errors.append(FieldError(name, _("must be a number, a text or true or false (got %(got)s)",
                                         got=_shown(value))))
        return None
    return value


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _clean_condition(item: Any, name: str, questions: Mapping[str, Mapping[str, Any]] | None,
                     errors: list[FieldError], depth: int = 0) -> dict[str, Any] | None:
    if not isinstance(item, Mapping):
        errors.append(FieldError(name, _('must be an object such as {"field": "nationality", "op": "in", '
                                         '"value": ["VE"]} or {"any": [...]}')))
        return None
    if "any" in item:
        extra = sorted(set(item) - {"any"})
        if extra:
            errors.append(FieldError(name, _("an “any” takes nothing else (found %(keys)s)", keys=", ".join(extra))))
        if depth >= MAX_DEPTH:
            errors.append(FieldError(name, _("“any” may be nested at most %(high)s deep", high=MAX_DEPTH)))
            return None
        parts = item["any"]
        if not isinstance(parts, list) or not parts:
            errors.append(FieldError(f"{name}.any", _("must be a list of at least one condition")))
            return None
        if len(parts) > MAX_ANY:
            errors.append(FieldError(f"{name}.any", _("at most %(high)s conditions", high=MAX_ANY)))
            return None
        cleaned = [_clean_condition(p, f"{name}.any[{k}]", questions, errors, depth + 1) for k, p in enumerate(parts)]
        return {"any": cleaned}
    extra = sorted(set(item) - {"field", "op", "value"})
    if extra:
        errors.append(FieldError(name, _("unknown keys: %(keys)s (a condition has field, op and value)",
                                         keys=", ".join(map(str, extra)))))
    field, op = item.get("field"), item.get("op")
    kind = kind_of(field, questions) if isinstance(field, str) else None
    choices: list[str] | None = None
    if kind is None:
        match = ANSWER_FIELD.match(field) if isinstance(field, str) else None
        if match:
            errors.append(FieldError(f"{name}.field", _("“%(key)s” is not a question of this rule",
                                                        key=match.group(1))))
        else:
            errors.append(FieldError(f"{name}.field", _("unknown field %(got)s; the fields are %(fields)s and "
                                                        "answer.<question key>", got=_shown(field),
                                                        fields=", ".join(FIELDS))))
    elif questions is not None and kind == "text":
        key = ANSWER_FIELD.match(field).group(1)  # type: ignore[union-attr]
        choices = [v for v, _label in choice_options(questions[key], "en")] or None
    if op not in OPS:
        errors.append(FieldError(f"{name}.op", _("unknown operator %(got)s; the operators are %(ops)s",
                                                 got=_shown(op), ops=", ".join(OPS))))
        return None
    if kind is None:
        return None
    if op not in OPS_BY_KIND[kind]:
        errors.append(FieldError(f"{name}.op", _("“%(op)s” does not apply to %(field)s; use one of %(ops)s",
                                                 op=op, field=field, ops=", ".join(OPS_BY_KIND[kind]))))
        return None
    out: dict[str, Any] = {"field": field, "op": op}
    if op in BARE_OPS:
        if item.get("value") not in (None, True, False):
            errors.append(FieldError(f"{name}.value", _("“%(op)s” takes no value", op=op)))
        return out
    if "value" not in item:
        errors.append(FieldError(f"{name}.value", _("is required")))
        return None
    value = item["value"]
    element = kind
    if op in LIST_OPS:
        if not isinstance(value, list) or not value:
            errors.append(FieldError(f"{name}.value", _("must be a list of at least one value, such as "
                                                        "[\"VE\", \"NI\"]")))
            return None
        if len(value) > MAX_LIST:
            errors.append(FieldError(f"{name}.value", _("at most %(high)s values", high=MAX_LIST)))
            return None
        before = len(errors)
        cleaned = [_clean_scalar(element, v, f"{name}.value[{k}]", errors, choices) for k, v in enumerate(value)]
        if len(errors) > before:
            return None
        out["value"] = list(dict.fromkeys(cleaned))
        return out
    cleaned_value = _clean_scalar(element, value, f"{name}.value", errors, choices)
    if cleaned_value is None:
        return None
    out["value"] = cleaned_value
    return out


def clean_conditions(value: Any, *, questions: Iterable[Any] | None = None, name: str = "conditions",
                     errors: list[FieldError] | None = None) -> list[dict[str, Any]]:
    """Conditions (a list, or its JSON text) checked and normalised (country codes in capitals, repeated values
    once); raises ValidationFailed naming each bad item (``conditions[2].op``) unless ``errors`` collects them.
    With ``questions``, every ``answer.<key>`` must name one of them and fit its type."""
    collect = errors if errors is not None else []
    before = len(collect)
    items = _json_list(value, name, collect)
    cleaned: list[dict[str, Any]] = []
    if items is not None:
        if not items:
            collect.append(FieldError(name, _("at least one condition is needed (a rule without conditions would "
                                              "qualify everyone)")))
        elif len(items) > MAX_CONDITIONS:
            collect.append(FieldError(name, _("at most %(high)s conditions", high=MAX_CONDITIONS)))
        else:
            known = _by_key(questions) if questions is not None else None
            cleaned = [c for k, item in enumerate(items)
                       if (c := _clean_condition(item, f"{name}[{k}]", known, collect)) is not None]
    if errors is None and len(collect) > before:
        raise ValidationFailed(errors=collect)
    return cleaned


def _clean_texts(value: Any, name: str, errors: list[FieldError]) -> dict[str, str]:
    if not isinstance(value, Mapping) or not value:
        errors.append(FieldError(name, _('must be an object of texts by language, such as {"es": "¿...?", '
                                         '"en": "...?"}')))
        return {}
    texts: dict[str, str] = {}
    for code, text in value.items():
        if code not in public_i18n.PUBLIC_LOCALES:
            errors.append(FieldError(f"{name}.{code}", _("unknown language; the languages are %(codes)s",
                                                         codes=", ".join(public_i18n.PUBLIC_LOCALES))))
        elif not isinstance(text, str) or not text.strip():
            errors.append(FieldError(f"{name}.{code}", _("must be a text")))
        elif len(text) > MAX_TEXT:
            errors.append(FieldError(f"{name}.{code}", _("at most %(high)s characters", high=MAX_TEXT)))
        else:
            texts[code] = text.strip()
    if not errors and not ("en" in texts or "es" in texts):
        errors.append(FieldError(name, _("needs at least the Spanish (es) or English (en) text")))
    return texts


def _clean_question(item: Any, name: str, errors: list[FieldError]) -> dict[str, Any] | None:
    if not isinstance(item, Mapping):
        errors.append(FieldError(name, _('must be an object such as {"key": "worked_abroad", "type": "yes_no", '
                                         '"text": {"es": "...", "en": "..."}}')))
        return None
    before = len(errors)
    extra = sorted(set(item) - {"key", "type", "text", "choices"})
    if extra:
        errors.append(FieldError(name, _("unknown keys: %(keys)s (a question has key, type, text and choices)",
                                         keys=", ".join(map(str, extra)))))
    key, kind = item.get("key"), item.get("type")
    if not isinstance(key, str) or not QUESTION_KEY.match(key):
        errors.append(FieldError(f"{name}.key", _("must be 1 to 40 small letters, digits or _ (got %(got)s)",
                                                  got=_shown(key))))
    if kind not in QUESTION_TYPES:
        errors.append(FieldError(f"{name}.type", _("must be one of %(values)s", values=", ".join(QUESTION_TYPES))))
    texts = _clean_texts(item.get("text"), f"{name}.text", sub := [])
    errors.extend(sub)
    out: dict[str, Any] = {"key": key, "type": kind, "text": texts}
    choices = item.get("choices")
    if kind == "choice":
        if not isinstance(choices, list) or len(choices) < 2 or len(choices) > MAX_CHOICES:
            errors.append(FieldError(f"{name}.choices", _("a choice question needs 2 to %(high)s choices",
                                                          high=MAX_CHOICES)))
        else:
            cleaned: list[Any] = []
            values: list[str] = []
            for k, choice in enumerate(choices):
                where = f"{name}.choices[{k}]"
                if isinstance(choice, str) and choice.strip() and len(choice) <= 100:
                    cleaned.append(choice.strip())
                    values.append(choice.strip())
                elif isinstance(choice, Mapping) and set(choice) <= {"value", "text"} \
                        and isinstance(choice.get("value"), str) and choice["value"].strip() \
                        and len(choice["value"]) <= 100:
                    sub = []
                    texts_c = _clean_texts(choice.get("text"), f"{where}.text", sub)
                    errors.extend(sub)
                    cleaned.append({"value": choice["value"].strip(), "text": texts_c})
                    values.append(choice["value"].strip())
                else:
                    errors.append(FieldError(where, _('must be a text, or {"value": ..., "text": {"es": ...}}')))
            if len(set(values)) != len(values):
                errors.append(FieldError(f"{name}.choices", _("each choice may appear once")))
            out["choices"] = cleaned
    elif choices not in (None, []):
        errors.append(FieldError(f"{name}.choices", _("only a choice question has choices")))
    return out if len(errors) == before else None


def clean_questions(value: Any, *, name: str = "questions",
                    errors: list[FieldError] | None = None) -> list[dict[str, Any]]:
    """Questions (a list, or its JSON text) checked; raises ValidationFailed unless ``errors`` collects."""
    collect = errors if errors is not None else []
    before = len(collect)
    items = _json_list(value, name, collect)
    cleaned: list[dict[str, Any]] = []
    if items is not None:
        if len(items) > MAX_QUESTIONS:
            collect.append(FieldError(name, _("at most %(high)s questions", high=MAX_QUESTIONS)))
        else:
            seen: set[str] = set()
            for k, item in enumerate(items):
                question = _clean_question(item, f"{name}[{k}]", collect)
                if question is None:
                    continue
                if question["key"] in seen:
                    collect.append(FieldError(f"{name}[{k}].key", _("“%(key)s” is used by another question",
                                                                    key=question["key"])))
                    continue
                seen.add(question["key"])
                cleaned.append(question)
    if errors is None and len(collect) > before:
        raise ValidationFailed(errors=collect)
    return cleaned


def clean_rule(data: Mapping[str, Any]) -> dict[str, Any]:
    """A rule's fields checked and normalised: ``name`` (required, at most 200 characters), ``destination`` (an
    ISO country), ``pathway_id`` (optional; that it names a pathway of the catalog is checked on saving),
    ``questions`` and ``conditions`` (lists or their JSON text). Raises ValidationFailed naming every bad field
    (``questions[1].key``, ``conditions[2].op``)."""
    errors: list[FieldError] = []
    name = str(data.get("name") or "").strip()
    if not name:
        errors.append(FieldError("name", _("is required")))
    elif len(name) > 200:
        errors.append(FieldError("name", _("at most %(high)s characters", high=200)))
    destination = _country_code(data.get("destination"))
    if destination is None:
        errors.append(FieldError("destination", _("is required") if not data.get("destination")
                                 else _("not an ISO 3166 country code")))
    pathway_id: uuid.UUID | None = None
    raw_pathway = data.get("pathway_id")
    if isinstance(raw_pathway, uuid.UUID):
        pathway_id = raw_pathway
    elif raw_pathway not in (None, ""):
        try:
            pathway_id = uuid.UUID(str(raw_pathway).strip())
        except ValueError:
            errors.append(FieldError("pathway_id", _("not a pathway of the catalog")))
    before = len(errors)
    questions = clean_questions(data.get("questions"), errors=errors)
    questions_ok = len(errors) == before
    conditions = clean_conditions(data.get("conditions"), questions=questions if questions_ok else None,
                                  errors=errors)
    if errors:
        raise ValidationFailed(errors=errors)
    return {"name": name, "destination": destination, "pathway_id": pathway_id, "questions": questions,
            "conditions": conditions}


def rule_values(rule: ScreeningRule) -> dict[str, Any]:
    return {"name": rule.name, "destination": rule.destination, "pathway_id": rule.pathway_id,
            "questions": rule.questions, "conditions": rule.conditions}


# Reading rules --------------------------------------------------------------------------------------------------


def active_rules(session: Session, office_id: uuid.UUID) -> list[ScreeningRule]:
    """The office's rules in force (one version of each), by name."""
    return list(session.scalars(select(ScreeningRule).where(
        ScreeningRule.office_id == office_id, ScreeningRule.status == RuleStatus.active,
    ).order_by(ScreeningRule.name, ScreeningRule.rule_key)))


def questions_for(session: Session, office_id: uuid.UUID) -> list[dict[str, Any]]:
    """The questions the public form asks for the office: those of its active rules, in rule order, each key
    once (the first rule asking it gives its text)."""
    seen: dict[str, dict[str, Any]] = {}
    for rule in active_rules(session, office_id):
        for question in rule.questions or []:
            key = question.get("key") if isinstance(question, Mapping) else None
            if key and key not in seen:
                seen[key] = dict(question)
    return list(seen.values())


def versions(session: Session, principal: Principal, rule_key: uuid.UUID) -> list[ScreeningRule]:
    """Every version of a rule the caller may read, newest first (NotFound when none)."""
    rows = list(session.scalars(policy.scoped(principal, ScreeningRule).where(ScreeningRule.rule_key == rule_key)
                                .order_by(ScreeningRule.version.desc())))
    if not rows:
        raise policy.NotFound()
    office = session.get(Office, rows[0].office_id)
    policy.require(principal, "mobility.rules.read", office)
    return rows


def results_of(session: Session, registration: Registration) -> list[tuple[ScreeningResult, ScreeningRule]]:
    """A registration's current results with the rule version of each, those that qualify first."""
    rows = session.execute(select(ScreeningResult, ScreeningRule).join(
        ScreeningRule, ScreeningRule.id == ScreeningResult.rule_id).where(
        ScreeningResult.registration_id == registration.id, ScreeningResult.current.is_(True),
    ).order_by(ScreeningResult.qualifies.desc(), ScreeningRule.name, ScreeningRule.id)).all()
    return [(result, rule) for result, rule in rows]


# Screening ------------------------------------------------------------------------------------------------------


def office_today(office: Office | None) -> date:
    """Today where the office is (ages and dates are the office's)."""
    now = clock.now()
    try:
        return now.astimezone(ZoneInfo(office.timezone)).date() if office is not None else now.date()
    except (KeyError, ValueError):
        return now.date()


def _status_entry(status: RegistrationStatus, now: datetime) -> dict[str, Any]:
    return {"at": now.isoformat(), "status": status.value, "by": "screening"}


def _mark_not_current(session: Session, registration_ids: Sequence[uuid.UUID],
                      rule_ids: Sequence[uuid.UUID] | None = None) -> None:
    """One UPDATE: these registrations' current results (of ``rule_ids`` only, if given) are no longer
    current (objects already loaded follow)."""
    if not registration_ids or (rule_ids is not None and not rule_ids):
        return
    stmt = update(ScreeningResult).where(ScreeningResult.registration_id.in_(registration_ids),
                                         ScreeningResult.current.is_(True))
    if rule_ids is not None:
        stmt = stmt.where(ScreeningResult.rule_id.in_(rule_ids))
    session.execute(stmt.values(current=False), execution_options={"synchronize_session": "evaluate"})


def screen_registration(session: Session, registration: Registration, *,
                        today: date | None = None) -> list[ScreeningResult]:
    """Screen one registration against every active rule of its office at once: its earlier results stop being
    current, new current ones are added (one per rule, each with the checks that held or not). A registration
    received, screened or not qualified becomes screened (it qualifies for at least one) or not qualified."""
    office = session.get(Office, registration.office_id)
    today = today or office_today(office)
    now = clock.now()
    facts = facts_of(registration, today, office=office)
    rules = active_rules(session, registration.office_id)
    session.flush()
    _mark_not_current(session, [registration.id])
    results = []
    for rule in rules:
        qualifies, checks = evaluate(rule.conditions, facts)
        results.append(ScreeningResult(id=new_id(), registration_id=registration.id, rule_id=rule.id,
                                       qualifies=qualifies, checks=checks, current=True, created_at=now))
    session.add_all(results)
    if registration.status in SCREENABLE and rules:  # no rule yet: not screened
        status = RegistrationStatus.screened if any(r.qualifies for r in results) \
            else RegistrationStatus.not_qualified
        if status != registration.status:
            registration.status = status
            registration.status_since = now
            registration.history = [*(registration.history or []), _status_entry(status, now)]
            registration.updated_at = now
    session.flush()
    return results


#: What screening reads of a registration (never the sealed sections).
_READ = (Registration.id, Registration.status, Registration.nationality, Registration.birth_date,
         Registration.arrived_on, Registration.household_size, Registration.profile, Registration.answers)


def _open_batches(session: Session, office_id: uuid.UUID, batch: int) -> Iterator[list[Row[Any]]]:
    """The office's open registrations, ``batch`` at a time, in id order (keyset: screening changes statuses only
    within the open ones, so no row is skipped or seen twice)."""
    last: uuid.UUID | None = None
    while True:
        stmt = select(*_READ).where(Registration.office_id == office_id, Registration.status.in_(OPEN_STATUSES))
        if last is not None:
            stmt = stmt.where(Registration.id > last)
        rows = list(session.execute(stmt.order_by(Registration.id).limit(batch)))
        if not rows:
            return
        yield rows
        last = rows[-1].id
        if len(rows) < batch:
            return


def _row_facts(row: Row[Any], country: str, today: date) -> dict[str, Any]:
    return _facts(row.nationality, row.birth_date, row.arrived_on, row.household_size, row.profile, row.answers,
                  country, today)


@dataclass
class _Pass:
    """One pass of screening over batches of registrations: the rules evaluated (and written), the rule versions
    whose current results they replace, and the other active rules whose stored results still count."""

    rules: list[ScreeningRule]
    replace: list[uuid.UUID] | None  # None: every current result of the registration
    others: list[uuid.UUID]
    today: date
    now: datetime

    def __post_init__(self) -> None:
        self.compiled = [(rule.id, compile_conditions(rule.conditions)) for rule in self.rules]

    def patterns(self, facts: dict[str, Any]) -> list[tuple[Any, ...]]:
        return [compiled.pattern(facts) for _rid, compiled in self.compiled]

    def write(self, session: Session, rows: Sequence[Row[Any]], facts: Sequence[dict[str, Any]],
              outcomes: Sequence[list[tuple[Any, ...]]] | None = None) -> None:
        """Evaluate (unless given the patterns), replace results, and move statuses; bulk statements only."""
        if not rows:
            return
        ids = [row.id for row in rows]
        if outcomes is None:
            outcomes = [self.patterns(f) for f in facts]
        qualifying_elsewhere: set[uuid.UUID] = set()
        if self.replace is not None and self.others:
            qualifying_elsewhere = set(session.scalars(select(ScreeningResult.registration_id).where(
                ScreeningResult.registration_id.in_(ids), ScreeningResult.current.is_(True),
                ScreeningResult.qualifies.is_(True), ScreeningResult.rule_id.in_(self.others))))
        _mark_not_current(session, ids, self.replace)
        writer = _ResultWriter(session)
        new = iter(writer.new_ids(len(rows) * len(self.compiled))).__next__
        p_bool, p_checks = writer.process["qualifies"], writer.process["checks"]
        rules = [(writer.process["rule_id"](rule_id), compiled) for rule_id, compiled in self.compiled]
        true, false = p_bool(True), p_bool(False)
        now = writer.process["created_at"](self.now)
        values = []
        moved = []
        for row, outcome in zip(rows, outcomes, strict=True):
            registration = writer.process["registration_id"](row.id)
            qualifies_any = False
            for (rule_id, compiled), pattern in zip(rules, outcome, strict=True):
                qualifies = compiled.qualifies(pattern)
                qualifies_any = qualifies_any or qualifies
                values.append((new(), registration, rule_id, true if qualifies else false,
                               compiled.stored(pattern, p_checks), true, now))
            if row.status in SCREENABLE and (self.compiled or self.replace is not None):
                any_ = qualifies_any or row.id in qualifying_elsewhere
                status = RegistrationStatus.screened if any_ else RegistrationStatus.not_qualified
                if status != row.status:
                    moved.append((row.id, status))
        writer.insert(values)
        if moved:
            _move_statuses(session, moved, self.now)


class _ResultWriter:
    """Results inserted in bulk without the ORM: each value through its column's bind processor once where it
    repeats (a rule's id, a registration's id, the time, the checks of each pattern of held conditions), then
    COPY on PostgreSQL (psycopg), a plain ``executemany`` on SQLite, Core's ``insert`` elsewhere."""

    COLUMNS = ("id", "registration_id", "rule_id", "qualifies", "checks", "current", "created_at")

    def __init__(self, session: Session) -> None:
        self.connection = session.connection()
        dialect = self.connection.dialect
        table = ScreeningResult.__table__
        if dialect.name == "postgresql" and dialect.driver == "psycopg":
            self.mode = "copy"
        elif dialect.name == "sqlite":
            self.mode = "sqlite"
        else:
            self.mode = "core"
        self.process: dict[str, Callable[[Any], Any]] = {}
        for name in self.COLUMNS:
            processor = None
            if self.mode == "sqlite":
                column_type = table.c[name].type
                processor = column_type.dialect_impl(dialect).bind_processor(dialect)
            elif self.mode == "copy":  # the text format of COPY
                processor = _COPY_TEXT[name]
            self.process[name] = processor or _same
        # New ids as the column stores them (SQLite keeps a UUID as 32 hex digits; PostgreSQL reads them as well).
        self.new_ids: Callable[[int], list[Any]] = _uuid4_many if self.mode == "core" else _uuid4_hex

    def insert(self, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        names = ", ".join(self.COLUMNS)
        if self.mode == "copy":
            raw = self.connection.connection.driver_connection
            with raw.cursor() as cursor, cursor.copy(  # type: ignore[union-attr]
                    f"COPY {ScreeningResult.__tablename__} ({names}) FROM STDIN") as copy:
                for start in range(0, len(rows), 10_000):
                    copy.write("".join(["\t".join(row) + "\n" for row in rows[start:start + 10_000]]))
        elif self.mode == "sqlite":
            marks = ", ".join("?" * len(self.COLUMNS))
            self.connection.exec_driver_sql(f"INSERT INTO {ScreeningResult.__tablename__} ({names}) VALUES ({marks})",
                                            rows)  # type: ignore[arg-type]
        else:
            self.connection.execute(insert(ScreeningResult.__table__), [dict(zip(self.COLUMNS, row, strict=True))
                                                                        for row in rows])


def _uuid4_hex(count: int) -> list[str]:
    """``count`` random (version 4) UUIDs as 32 hex digits each, from one read of the system's randomness."""
    raw = bytearray(os.urandom(16 * count))
    raw[6::16] = bytes((b & 0x0F) | 0x40 for b in raw[6::16])
    raw[8::16] = bytes((b & 0x3F) | 0x80 for b in raw[8::16])
    text = raw.hex()
    return [text[k:k + 32] for k in range(0, 32 * count, 32)]


def _uuid4_many(count: int) -> list[uuid.UUID]:
    return [uuid.uuid4() for _ in range(count)]


def _copy_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


_COPY_TEXT: dict[str, Callable[[Any], str]] = {
    "id": str, "registration_id": lambda v: v.hex, "rule_id": lambda v: v.hex,
    "qualifies": lambda v: "t" if v else "f", "current": lambda v: "t" if v else "f",
    "checks": lambda v: _copy_escape(json.dumps(v, ensure_ascii=False)),
    "created_at": lambda v: v.isoformat(),
}


def _same(value: Any) -> Any:
    return value


def _move_statuses(session: Session, moved: list[tuple[uuid.UUID, RegistrationStatus]], now: datetime) -> None:
    """New statuses for registrations (each with its history entry), by primary key in one statement."""
    histories = {row.id: row.history for row in session.execute(select(Registration.id, Registration.history)
                                                                .where(Registration.id.in_([i for i, _s in moved])))}
    session.execute(update(Registration), [
        {"id": rid, "status": status, "status_since": now, "updated_at": now,
         "history": [*(histories.get(rid) or []), _status_entry(status, now)]} for rid, status in moved])
    for rid, _status in moved:  # objects already loaded read the new values on next access
        loaded = session.identity_map.get(identity_key(Registration, rid))
        if loaded is not None:
            session.expire(loaded)


def screen_many(session: Session, office_id: uuid.UUID, *, today: date | None = None, batch: int = 1000) -> int:
    """Screen every open registration of an office against all its active rules (as :func:`screen_registration`
    does one by one, in bulk: rules compiled once, results inserted ``batch`` registrations at a time, earlier
    results made not current with one UPDATE per batch). Returns how many registrations were screened."""
    office = session.get(Office, office_id)
    if office is None:
        raise policy.NotFound()
    session.flush()
    work = _Pass(active_rules(session, office_id), None, [], today or office_today(office), clock.now())
    count = 0
    for rows in _open_batches(session, office_id, batch):
        work.write(session, rows, [_row_facts(row, office.country, work.today) for row in rows])
        count += len(rows)
    return count


# Versions and what a change moves ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RulePreview:
    """What saving a rule would do to the office's open registrations (for this rule only)."""

    total: int  # open registrations
    gained: int  # would qualify, did not before
    lost: int  # qualified before, would not
    unchanged: int

    @property
    def moved(self) -> int:
        return self.gained + self.lost


def _qualifying_before(session: Session, rule: ScreeningRule | None, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    if rule is None or not ids:
        return set()
    return set(session.scalars(select(ScreeningResult.registration_id).where(
        ScreeningResult.rule_id == rule.id, ScreeningResult.current.is_(True), ScreeningResult.qualifies.is_(True),
        ScreeningResult.registration_id.in_(ids))))


def _check_for_office(session: Session, office: Office, values: dict[str, Any],
                      rule: ScreeningRule | None) -> None:
    """What cleaning alone cannot check: the pathway is in the catalog and leads to the destination; a question
    another rule of the office also asks has the same type; ``rule`` is the office's latest version."""
    errors: list[FieldError] = []
    if values["pathway_id"] is not None:
        pathway = session.get(Pathway, values["pathway_id"])
        if pathway is None:
            errors.append(FieldError("pathway_id", _("not a pathway of the catalog")))
        elif pathway.country != values["destination"]:
            errors.append(FieldError("destination", _("the pathway leads to %(country)s",
                                                      country=i18n.country_name(pathway.country))))
    asked = {}
    for other in active_rules(session, office.id):
        if rule is not None and other.rule_key == rule.rule_key:
            continue
        for q in other.questions or []:
            asked.setdefault(q.get("key"), (q.get("type"), other.name))
    for k, question in enumerate(values["questions"]):
        kind, other_name = asked.get(question["key"], (question["type"], ""))
        if kind != question["type"]:
            errors.append(FieldError(f"questions[{k}].type", _("the rule “%(rule)s” asks “%(key)s” as %(type)s",
                                                               rule=other_name, key=question["key"], type=kind)))
    if errors:
        raise ValidationFailed(errors=errors)
    if rule is not None:
        if rule.office_id != office.id:
            raise policy.NotFound()
        latest = session.scalar(select(func.max(ScreeningRule.version)).where(ScreeningRule.rule_key == rule.rule_key))
        if latest != rule.version:
            raise Conflict(_("A newer version of this rule was saved: open it again to change it."))


def _allowed(actor: Principal | Actor, action: str, office: Office) -> None:
    """Staff go through the policy; an ``Actor`` (the demo, the command line: never a request) is trusted."""
    if not isinstance(actor, Actor):
        policy.require(actor, action, office)


def preview_rule(session: Session, *, actor: Principal | Actor, office: Office, data: Mapping[str, Any],
                 rule: ScreeningRule | None = None, today: date | None = None, batch: int = 1000) -> RulePreview:
    """How many of the office's open registrations saving ``data`` (as a new rule, or a new version of
    ``rule``) would move, computed as :func:`save_rule` computes it, writing nothing."""
    _allowed(actor, "mobility.rules.manage", office)
    values = clean_rule(data)
    _check_for_office(session, office, values, rule)
    today = today or office_today(office)
    run = compile_conditions(values["conditions"])
    total = gained = lost = 0
    for rows in _open_batches(session, office.id, batch):
        before = _qualifying_before(session, rule, [row.id for row in rows])
        for row in rows:
            now_qualifies = run.qualifies(run.pattern(_row_facts(row, office.country, today)))
            was = row.id in before
            gained += now_qualifies and not was
            lost += was and not now_qualifies
        total += len(rows)
    return RulePreview(total=total, gained=gained, lost=lost, unchanged=total - gained - lost)


def _rescreen(session: Session, office: Office, *, new: ScreeningRule | None, old: ScreeningRule | None,
              today: date, batch: int) -> RulePreview:
    """Results follow a rule's change (``new`` replaces ``old``; either may be None) for every open registration
    of the office; a registration never screened (received) is screened against every rule. Returns the moves."""
    now = clock.now()
    active = active_rules(session, office.id)
    others = [r.id for r in active if new is None or r.id != new.id]
    partial = _Pass([new] if new is not None else [], [old.id] if old is not None else [], others, today, now)
    full = _Pass(active, None, [], today, now)
    total = gained = lost = 0
    for rows in _open_batches(session, office.id, batch):
        before = _qualifying_before(session, old, [row.id for row in rows])
        facts = [_row_facts(row, office.country, today) for row in rows]
        fresh = [k for k, row in enumerate(rows) if row.status == RegistrationStatus.received]
        rest = [k for k, row in enumerate(rows) if row.status != RegistrationStatus.received]
        outcomes = [partial.patterns(f) for f in facts]
        for row, outcome in zip(rows, outcomes, strict=True):
            now_qualifies = bool(outcome) and CompiledRule.qualifies(outcome[0])
            was = row.id in before
            gained += now_qualifies and not was
            lost += was and not now_qualifies
        total += len(rows)
        partial.write(session, [rows[k] for k in rest], [facts[k] for k in rest], [outcomes[k] for k in rest])
        full.write(session, [rows[k] for k in fresh], [facts[k] for k in fresh])
    return RulePreview(total=total, gained=gained, lost=lost, unchanged=total - gained - lost)


def save_rule(session: Session, *, actor: Principal | Actor, office: Office, data: Mapping[str, Any],
              rule: ScreeningRule | None = None, today: date | None = None, batch: int = 1000) -> ScreeningRule:
    """Save a new rule (version 1 of a new ``rule_key``) or a new version of ``rule`` (the same key, the next
    version; ``rule`` is retired), then re-screen the office's open registrations so that their results follow
    the new version. Audited with what it moved."""
    return save_rule_moving(session, actor=actor, office=office, data=data, rule=rule, today=today, batch=batch)[0]


def save_rule_moving(session: Session, *, actor: Principal | Actor, office: Office, data: Mapping[str, Any],
                     rule: ScreeningRule | None = None, today: date | None = None,
                     batch: int = 1000) -> tuple[ScreeningRule, RulePreview]:
    """:func:`save_rule`, also telling what it moved (as :func:`preview_rule` foretold)."""
    _allowed(actor, "mobility.rules.manage", office)
    values = clean_rule(data)
    _check_for_office(session, office, values, rule)
    now = clock.now()
    if rule is not None:
        rule.status = RuleStatus.retired
        session.flush()  # the retired version first: (rule_key, version) stays unique at every step
    saved = ScreeningRule(id=new_id(), rule_key=rule.rule_key if rule is not None else new_id(),
                          version=rule.version + 1 if rule is not None else 1, office_id=office.id,
                          status=RuleStatus.active, created_by_user_id=getattr(actor, "user_id", None),
                          created_at=now, **values)
    session.add(saved)
    session.flush()
    moves = _rescreen(session, office, new=saved, old=rule, today=today or office_today(office), batch=batch)
    audit.record(session, action="mobility.rule.save", actor=actor, object_type="mobility_rule", object_id=saved.id,
                 org_id=office.org_id, details={
                     "rule_key": str(saved.rule_key), "version": saved.version, "name": saved.name,
                     "destination": saved.destination, "replaces": str(rule.id) if rule is not None else None,
                     "open": moves.total, "gained": moves.gained, "lost": moves.lost})
    return saved, moves


def retire_rule(session: Session, *, actor: Principal | Actor, rule: ScreeningRule, today: date | None = None,
                batch: int = 1000) -> RulePreview:
    """Switch a rule off: it no longer screens anyone, its results stop being current and the office's open
    registrations are re-screened without it. Returns what it moved (all losses)."""
    office = session.get(Office, rule.office_id)
    if office is None:
        raise policy.NotFound()
    _allowed(actor, "mobility.rules.manage", office)
    if rule.status != RuleStatus.active:
        raise Conflict(_("This version of the rule is no longer in force."))
    rule.status = RuleStatus.retired
    session.flush()
    moves = _rescreen(session, office, new=None, old=rule, today=today or office_today(office), batch=batch)
    audit.record(session, action="mobility.rule.retire", actor=actor, object_type="mobility_rule",
                 object_id=rule.id, org_id=office.org_id, details={
                     "rule_key": str(rule.rule_key), "version": rule.version, "name": rule.name,
                     "open": moves.total, "lost": moves.lost})
    return moves

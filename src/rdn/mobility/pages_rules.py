"""Pages of an office's screening rules: the rules in force, described in words; a form to add a rule or change
one (questions and conditions as JSON, with an example) that shows how many current registrations the change
would move before it can be saved; switching a rule off; a rule's versions.

Saving needs a preview of exactly what is saved: the form carries a fingerprint of the previewed rule, and a
save whose fields changed since (or that was never previewed) shows the new preview instead of saving.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rdn.core import i18n, policy
from rdn.core.errors import Conflict, FieldError, ValidationFailed
from rdn.core.i18n import gettext as _
from rdn.core.identity import Principal
from rdn.core.modules import page_router
from rdn.core.web import CurrentPrincipal, DbSession, PostedForm, redirect, render
from rdn.mobility import screening
from rdn.mobility.models import Office, RuleStatus, ScreeningResult, ScreeningRule
from rdn.pathways.models import Pathway

router = page_router()

MAX_PATHWAYS = 500  # offered in the form's list
FORM_FIELDS = ("name", "destination", "pathway_id", "questions", "conditions")
EXAMPLE_QUESTIONS = [{"key": "trade_experience", "type": "yes_no",
                      "text": {"es": "¿Tiene experiencia en un oficio?", "en": "Do you have experience in a trade?"}},
                     {"key": "sector", "type": "choice", "text": {"es": "Sector", "en": "Sector"},
                      "choices": ["health", "building", "farming"]}]
EXAMPLE_CONDITIONS = [{"field": "nationality", "op": "in", "value": ["VE", "NI"]},
                      {"field": "arrived_on", "op": "on_or_before", "value": "2023-06-12"},
                      {"field": "age", "op": "gte", "value": 18},
                      {"any": [{"field": "ties", "op": "contains", "value": "ES"},
                               {"field": "answer.trade_experience", "op": "is_true"}]}]


def _pretty(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


def own_office(db: Session, principal: Principal, action: str = "mobility.rules.read") -> Office:
    """The signed-in person's office, if they may read (or change) its rules; 403 otherwise (no object is named
    in the address)."""
    office = db.scalars(policy.scoped(principal, Office).where(Office.org_id == principal.org_id)).first()
    if office is None or not policy.can(principal, action, office):
        raise policy.Forbidden()
    return office


def _rule(db: Session, principal: Principal, rule_id: uuid.UUID) -> tuple[Office, ScreeningRule]:
    """A rule version of the caller's office (404 for another office's, as for a missing one)."""
    rule = policy.access(db, principal, ScreeningRule, rule_id)
    office = db.get(Office, rule.office_id)
    if office is None or not policy.can(principal, "mobility.rules.read", office):
        raise policy.NotFound()
    return office, rule


def _pathways(db: Session) -> dict[uuid.UUID, Any]:
    rows = db.execute(select(Pathway.id, Pathway.country, Pathway.name).order_by(Pathway.country, Pathway.name)
                      .limit(MAX_PATHWAYS))
    return {row.id: row for row in rows}


def _described(rule: ScreeningRule) -> dict[str, Any]:
    locale = i18n.locale_var.get()
    return {"rule": rule,
            "questions": [{"key": q.get("key"), "type": q.get("type"), "text": screening.question_text(q, locale),
                           "choices": [label for _v, label in screening.choice_options(q, locale)]}
                          for q in rule.questions or [] if isinstance(q, dict)],
            "conditions": [screening.describe(c, questions=rule.questions) for c in rule.conditions or []]}


# The rules in force ----------------------------------------------------------------------------------------------


@router.get("/mobility/rules")
def rules(request: Request, db: DbSession, principal: CurrentPrincipal, notice: str | None = None,
          gained: Annotated[int | None, Query(ge=0)] = None,
          lost: Annotated[int | None, Query(ge=0)] = None) -> Response:
    office = own_office(db, principal)
    active = screening.active_rules(db, office.id)
    qualifying = dict(db.execute(select(ScreeningResult.rule_id, func.count()).where(
        ScreeningResult.rule_id.in_([r.id for r in active]), ScreeningResult.current.is_(True),
        ScreeningResult.qualifies.is_(True)).group_by(ScreeningResult.rule_id)).all()) if active else {}
    message = None
    if notice == "saved":
        message = _("The rule was saved and the office's open registrations were screened again: %(gained)s newly "
                    "qualify, %(lost)s no longer.", gained=i18n.format_number(gained or 0),
                    lost=i18n.format_number(lost or 0))
    elif notice == "retired":
        message = _("The rule was switched off: %(lost)s open registrations no longer qualify through it.",
                    lost=i18n.format_number(lost or 0))
    return render(request, "mobility/rules.html", {
        "office": office, "rules": [_described(r) for r in active], "pathways": _pathways(db),
        "qualifying": qualifying, "notice": message,
        "can_manage": policy.can(principal, "mobility.rules.manage", office)})


@router.get("/mobility/rules/{rule_key}/history")
def history(request: Request, rule_key: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    rows = screening.versions(db, principal, rule_key)
    office = db.get(Office, rows[0].office_id)
    return render(request, "mobility/rules_history.html", {
        "office": office, "versions": [_described(r) for r in rows], "pathways": _pathways(db),
        "latest": rows[0], "can_manage": policy.can(principal, "mobility.rules.manage", office)})


# Adding and changing ---------------------------------------------------------------------------------------------


def _values(rule: ScreeningRule | None) -> dict[str, str]:
    if rule is None:
        return {"name": "", "destination": "", "pathway_id": "", "questions": "[]", "conditions": ""}
    return {"name": rule.name, "destination": rule.destination,
            "pathway_id": str(rule.pathway_id) if rule.pathway_id else "",
            "questions": _pretty(rule.questions or []), "conditions": _pretty(rule.conditions or [])}


def _posted(form: Any) -> dict[str, str]:
    return {k: str(form.get(k, "") or "") for k in FORM_FIELDS}


def fingerprint(values: dict[str, Any], rule: ScreeningRule | None) -> str:
    """What a preview was of: the cleaned rule, and the version it replaces."""
    text = json.dumps({**values, "pathway_id": str(values.get("pathway_id") or ""),
                       "replaces": str(rule.id) if rule is not None else ""}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _grouped(errors: list[FieldError]) -> dict[str, list[str]]:
    """Errors by form field: those of a row of the JSON fields go to their field, naming the row."""
    out: dict[str, list[str]] = {}
    for e in errors:
        base = e.field.split("[")[0].split(".")[0]
        field = base if base in FORM_FIELDS else "form"
        out.setdefault(field, []).append(e.message if e.field == field else f"{e.field}: {e.message}")
    return out


def _form(request: Request, db: Session, office: Office, rule: ScreeningRule | None, values: dict[str, str], *,
          errors: dict[str, list[str]] | None = None, preview: screening.RulePreview | None = None,
          previewed: str = "", message: str | None = None, status: int = 200) -> Response:
    pathways = _pathways(db)
    return render(request, "mobility/rules_form.html", {
        "office": office, "rule": rule, "values": values, "errors": errors or {}, "preview": preview,
        "previewed": previewed, "message": message,
        "action": f"/mobility/rules/{rule.id}/edit" if rule is not None else "/mobility/rules/new",
        "countries": i18n.countries(i18n.locale_var.get()),
        "pathway_options": [(str(p.id), f"{i18n.country_name(p.country)} · {p.name}") for p in pathways.values()],
        "fields": list(screening.FIELDS), "ops": screening.OPS, "question_types": screening.QUESTION_TYPES,
        "example_questions": _pretty(EXAMPLE_QUESTIONS), "example_conditions": _pretty(EXAMPLE_CONDITIONS)},
        status=status)


def _submit(request: Request, db: Session, principal: Principal, office: Office, rule: ScreeningRule | None,
            form: Any) -> Response:
    values = _posted(form)
    try:
        cleaned = screening.clean_rule(values)
        print_ = fingerprint(cleaned, rule)
        if form.get("action") == "save" and form.get("previewed") == print_:
            saved, moves = screening.save_rule_moving(db, actor=principal, office=office, data=values, rule=rule)
            return redirect(f"/mobility/rules?notice=saved&gained={moves.gained}&lost={moves.lost}"
                            f"#rule-{saved.rule_key}")
        preview = screening.preview_rule(db, actor=principal, office=office, data=values, rule=rule)
    except ValidationFailed as exc:
        db.rollback()
        return _form(request, db, office, rule, values, errors=_grouped(exc.errors) or {"form": [exc.detail]},
                     status=422)
    except Conflict as exc:
        db.rollback()
        return _form(request, db, office, rule, values, errors={"form": [exc.detail]}, status=409)
    message = None
    if form.get("action") == "save":
        message = _("The rule changed since its preview (or was not previewed): check what it would do, then "
                    "save it.")
    return _form(request, db, office, rule, values, preview=preview, previewed=print_, message=message)


@router.get("/mobility/rules/new")
def new_rule(request: Request, db: DbSession, principal: CurrentPrincipal) -> Response:
    office = own_office(db, principal, "mobility.rules.manage")
    return _form(request, db, office, None, _values(None))


@router.post("/mobility/rules/new")
def create_rule(request: Request, db: DbSession, principal: CurrentPrincipal, form: PostedForm) -> Response:
    office = own_office(db, principal, "mobility.rules.manage")
    return _submit(request, db, principal, office, None, form)


def _editable(db: Session, principal: Principal, rule_id: uuid.UUID) -> tuple[Office, ScreeningRule]:
    office, rule = _rule(db, principal, rule_id)
    if not policy.can(principal, "mobility.rules.manage", office):
        raise policy.Forbidden()
    return office, rule


@router.get("/mobility/rules/{rule_id}/edit")
def edit_rule(request: Request, rule_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    office, rule = _editable(db, principal, rule_id)
    return _form(request, db, office, rule, _values(rule))


@router.post("/mobility/rules/{rule_id}/edit")
def update_rule(request: Request, rule_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
                form: PostedForm) -> Response:
    office, rule = _editable(db, principal, rule_id)
    return _submit(request, db, principal, office, rule, form)


@router.post("/mobility/rules/{rule_id}/retire")
def retire_rule(rule_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    _office, rule = _editable(db, principal, rule_id)
    if rule.status != RuleStatus.active:
        raise Conflict(_("This version of the rule is no longer in force."))
    moves = screening.retire_rule(db, actor=principal, rule=rule)
    return redirect(f"/mobility/rules?notice=retired&lost={moves.lost}")

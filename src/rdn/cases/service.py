"""Cases: opening, editing, members, sensitive sections, the pipeline and its checklist, the access log.

Keyword-only functions, no HTTP, never commit. Every write is audited in the caller's transaction under
``object_type="case"`` (so the case's access log shows it), and every read of a sensitive section too.
Sharing (agreements, consent, referrals, transfers) lives in ``rdn.cases.sharing``; lists and name search
in ``rdn.cases.search``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from rdn.cases import names, pipeline
from rdn.cases.models import (
    CASE_SEALED,
    CHECKLIST_NAMES,
    SECTION_NAMES,
    SENSITIVE,
    Case,
    CaseCounter,
    CaseLink,
    ChecklistEntry,
    ChecklistItem,
    ChecklistStatus,
    ConfidentialNote,
    FamilyTie,
    Member,
    Priority,
    Relationship,
    Section,
    StageEvent,
)
from rdn.cases.pipeline import STAGE_NAMES, Stage
from rdn.cases.policy import CaseAccess, case_access
from rdn.cases.validation import (
    CASE_FIELDS,
    check_household,
    clean_case,
    clean_member,
    clean_preferences,
    clean_ties,
)
from rdn.core import audit, clock, policy
from rdn.core.audit import AuditEntry
from rdn.core.crypto import Keyring
from rdn.core.errors import Conflict, FieldError, ValidationFailed
from rdn.core.i18n import gettext as _
from rdn.core.identity import Principal
from rdn.core.pagination import Page, paginate
from rdn.core.tenancy import Organization

MEMBER_FIELDS = ("relationship", "given_name", "family_name", "other_names", "sex", "birth_year", "birth_date",
                 "nationality", "stateless", "languages", "education", "occupation", "specific_needs")
#: What each sealed section holds (all text, except the medical conditions' yes/no answers).
SENSITIVE_SHAPES: dict[Section, dict[str, type]] = {
    Section.protection: {"narrative": str},
    Section.medical: {"diagnosis": str, "treatment_unavailable": bool, "prognosis": str, "informed_consent": bool,
                      "narrative": str},
    Section.sogi: {"narrative": str},
    Section.svt: {"narrative": str},
}
MAX_SENSITIVE_TEXT = 20_000


def _audit(session: Session, actor: Principal, case: Case | uuid.UUID, action: str,
           details: dict[str, Any] | None = None, purpose: str | None = None) -> AuditEntry:
    case_id = case.id if isinstance(case, Case) else case
    return audit.record(session, action=action, actor=actor, object_type="case", object_id=case_id,
                        details=details, purpose=purpose)


def _check_version(case: Case, version: int | None) -> None:
    """Optimistic concurrency: refuse before changing anything if the case moved on since the caller saw it."""
    if version is not None and version != case.version:
        raise Conflict(_("This case was changed by someone else since you opened it: reload it and try again"))


def _touch(case: Case, version: int | None = None) -> None:
    """Check the version the caller saw (optimistic concurrency) and move it on."""
    _check_version(case, version)
    case.version += 1
    case.updated_at = clock.now()


def _fail(errors: list[FieldError]) -> None:
    if errors:
        raise ValidationFailed(errors=errors)


# Numbers ------------------------------------------------------------------------------------------------------


def reserve_numbers(session: Session, org: Organization, count: int = 1) -> list[str]:
    """``count`` new case numbers of ``org`` for this year: ``UNHCR-26-000123`` (per owner, never reused)."""
    year = clock.now().year
    row = session.scalars(select(CaseCounter).where(CaseCounter.org_id == org.id, CaseCounter.year == year)
                          .with_for_update()).first()
    if row is None:
        row = CaseCounter(org_id=org.id, year=year, last=0)
        session.add(row)
        session.flush()
    first = row.last + 1
    row.last += count
    prefix = f"{org.short_name.upper()}-{year % 100:02d}-"
    return [f"{prefix}{n:06d}" for n in range(first, first + count)]


# Derived fields -----------------------------------------------------------------------------------------------


def recompute_clocks(case: Case) -> None:
    stage = Stage(case.stage)
    case.stage_due_at = pipeline.stage_due(stage, case.stage_since, Priority(case.processing_priority))
    case.target_submission_on, case.target_departure_on = pipeline.targets(
        case.opened_at, case.submitted_at, Priority(case.processing_priority), Priority(case.submission_priority))
    case.due_at = pipeline.due_at(stage, case.stage_due_at, case.target_submission_on, case.target_departure_on)


def is_overdue(case: Case, now: datetime | None = None) -> bool:
    return case.due_at is not None and case.due_at < (now or clock.now())


def _refresh_household(session: Session, case: Case) -> list[Member]:
    members = list(session.scalars(select(Member).where(Member.case_id == case.id).order_by(Member.position)))
    principal = next((m for m in members if m.relationship == Relationship.principal), None)
    case.size = len(members)
    case.principal_name = principal.full_name if principal else ""
    case.nationality = principal.nationality if principal else None
    return members


def index_names(members: Iterable[Member]) -> None:
    """(Re)compute the name-search keys and the look-alike key of ``members``."""
    for m in members:
        m.look_alike_key = names.look_alike_key(m.given_name, m.family_name)
        m.name_keys = sorted(names.member_keys(m.given_name, m.family_name, m.other_names))


# Similar people -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Similar:
    """A person being added looks like someone already on a case the user can see."""

    index: int  # which of the new people
    case_id: uuid.UUID
    case_number: str
    member_id: uuid.UUID
    name: str
    birth_year: int


def similar_people(session: Session, actor: Principal, people: Sequence[Mapping[str, Any]],
                   exclude_case: uuid.UUID | None = None) -> list[Similar]:
    """People on visible cases whose given and family names share skeletons with a new person's and whose
    birth years are within one year (only where the user may see identities)."""
    found: list[Similar] = []
    checked: dict[uuid.UUID, bool] = {}
    for index, person in enumerate(people):
        year = person.get("birth_year")
        key = names.look_alike_key(str(person.get("given_name") or ""), str(person.get("family_name") or ""))
        if key is None or not isinstance(year, int):
            continue
        stmt = (select(Member, Case.number).join(Case, Case.id == Member.case_id)
                .where(Member.look_alike_key == key, Member.birth_year.between(year - 1, year + 1),
                       Case.id.in_(policy.scoped(actor, Case).with_only_columns(Case.id)))
                .limit(10))
        if exclude_case is not None:
            stmt = stmt.where(Case.id != exclude_case)
        for member, number in session.execute(stmt):
            if member.case_id not in checked:
                case = session.get(Case, member.case_id)
                checked[member.case_id] = case is not None and case_access(session, actor, case).sees(Section.identity)
            if checked[member.case_id]:
                found.append(Similar(index, member.case_id, number, member.id, member.full_name, member.birth_year))
    return found


# Opening and changing a case ----------------------------------------------------------------------------------


def _member_row(case: Case, data: Mapping[str, Any], position: int) -> Member:
    now = clock.now()
    return Member(case_id=case.id, position=position, created_at=now, updated_at=now,
                  **{k: data[k] for k in MEMBER_FIELDS})


def _ordered(members: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The principal applicant first, the others in the order given."""
    return sorted(members, key=lambda m: m.get("relationship") != Relationship.principal)


def create_case(session: Session, *, actor: Principal, case: Mapping[str, Any],
                members: Sequence[Mapping[str, Any]], family_ties: Sequence[Mapping[str, Any]] = (),
                preferences: Mapping[str, Any] | None = None, note: str = "") -> Case:
    """Open a case for the actor's organization, at the first stage (``referred``)."""
    policy.require(actor, "case.create")
    assert actor.org_id is not None
    org = session.get(Organization, actor.org_id)
    assert org is not None
    case_data, errors = clean_case(case)
    cleaned: list[dict[str, Any]] = []
    for i, raw in enumerate(members):
        data, member_errors = clean_member(raw, prefix=f"members[{i}].")
        cleaned.append(data)
        errors += member_errors
    errors += check_household(cleaned)
    ties, tie_errors = clean_ties(list(family_ties))
    prefs, pref_errors = clean_preferences(preferences or {})
    _fail(errors + tie_errors + pref_errors)

    now = clock.now()
    row = Case(id=uuid.uuid4(), owner_org_id=org.id, number=reserve_numbers(session, org)[0], stage=Stage.referred,
               stage_since=now, opened_at=now, created_at=now, updated_at=now, preferences=prefs,
               created_by_user_id=actor.user_id, version=1, **case_data)
    recompute_clocks(row)
    session.add(row)
    session.flush()
    rows = [_member_row(row, data, i) for i, data in enumerate(_ordered(cleaned))]
    index_names(rows)
    session.add_all(rows)
    for tie in ties:
        session.add(FamilyTie(case_id=row.id, **tie))
    session.flush()
    _refresh_household(session, row)
    session.add(StageEvent(case_id=row.id, from_stage=None, to_stage=Stage.referred, note=note[:2000],
                           actor_user_id=actor.user_id, actor_org_id=actor.org_id, actor_label=actor.full_name,
                           at=now))
    _audit(session, actor, row, "case.create", {"number": row.number, "members": len(rows)})
    return row


def update_case(session: Session, *, actor: Principal, access: CaseAccess, changes: Mapping[str, Any],
                version: int | None = None) -> Case:
    """Change the case's own fields (location, categories, priorities), ties and preferences."""
    policy.require(actor, "case.update", access)
    case = access.case
    current = {f: getattr(case, f) for f in CASE_FIELDS}
    merged = {**current, **{k: v for k, v in changes.items() if k in CASE_FIELDS}}
    data, errors = clean_case(merged)
    ties = prefs = None
    if "family_ties" in changes:
        ties, more = clean_ties(list(changes["family_ties"] or []))
        errors += more
    if "preferences" in changes:
        prefs, more = clean_preferences(changes["preferences"] or {})
        errors += more
    _fail(errors)
    _check_version(case, version)
    changed = sorted(k for k, v in data.items() if v != current[k])
    for key in changed:
        setattr(case, key, data[key])
    if ties is not None:
        session.execute(delete(FamilyTie).where(FamilyTie.case_id == case.id))
        session.add_all(FamilyTie(case_id=case.id, **tie) for tie in ties)
        changed.append("family_ties")
    if prefs is not None and prefs != case.preferences:
        case.preferences = prefs
        changed.append("preferences")
    if not changed:
        return case
    _touch(case, version)
    if {"processing_priority", "submission_priority"} & set(changed):
        recompute_clocks(case)
    _audit(session, actor, case, "case.update", {"fields": changed})
    return case


def get_member(session: Session, access: CaseAccess, member_id: uuid.UUID) -> Member:
    member = session.get(Member, member_id)
    if member is None or member.case_id != access.case.id or not access.sees(Section.identity):
        raise policy.NotFound()
    return member


def add_member(session: Session, *, actor: Principal, access: CaseAccess, data: Mapping[str, Any],
               version: int | None = None) -> Member:
    policy.require(actor, "case.update", access)
    case = access.case
    cleaned, errors = clean_member(data)
    if cleaned.get("relationship") == Relationship.principal:
        errors.append(FieldError("relationship", _("the case already has a principal applicant")))
    _fail(errors)
    position = (session.scalar(select(func.max(Member.position)).where(Member.case_id == case.id)) or 0) + 1
    if case.size >= 60:
        raise ValidationFailed("members", _("at most %(high)s people in one case", high=60))
    _check_version(case, version)
    member = _member_row(case, cleaned, position)
    session.add(member)
    session.flush()
    _refresh_household(session, case)
    index_names([member])
    _touch(case, version)
    _audit(session, actor, case, "case.member.add", {"member": str(member.id)})
    return member


def update_member(session: Session, *, actor: Principal, access: CaseAccess, member: Member,
                  changes: Mapping[str, Any], version: int | None = None) -> Member:
    policy.require(actor, "case.update", access)
    current: dict[str, Any] = {f: getattr(member, f) for f in MEMBER_FIELDS}
    current["date_of_birth"] = member.birth_date or member.birth_year
    merged = {**current, **{k: v for k, v in changes.items() if k in (*MEMBER_FIELDS, "date_of_birth")}}
    if "date_of_birth" not in changes and ("birth_year" in changes or "birth_date" in changes):
        merged["date_of_birth"] = changes.get("birth_date") or changes.get("birth_year")
    merged.pop("birth_year", None)
    merged.pop("birth_date", None)
    cleaned, errors = clean_member(merged)
    was_principal = member.relationship == Relationship.principal
    if was_principal != (cleaned.get("relationship") == Relationship.principal):
        errors.append(FieldError("relationship", _(
            "who is the principal applicant is changed with \"Make principal applicant\", not here")))
    _fail(errors)
    changed = sorted(k for k in MEMBER_FIELDS if cleaned[k] != current[k])
    if not changed:
        return member
    _check_version(access.case, version)
    for key in changed:
        setattr(member, key, cleaned[key])
    member.updated_at = clock.now()
    session.flush()
    _refresh_household(session, access.case)
    if {"given_name", "family_name", "other_names"} & set(changed):
        index_names([member])
    _touch(access.case, version)
    _audit(session, actor, access.case, "case.member.update", {"member": str(member.id), "fields": changed})
    return member


def make_principal(session: Session, *, actor: Principal, access: CaseAccess, member: Member,
                   previous_becomes: Relationship | str, version: int | None = None) -> Member:
    """Make ``member`` the principal applicant; the previous one takes the relationship ``previous_becomes``
    (to the new principal). Other members' relationships are the caseworker's to review."""
    policy.require(actor, "case.update", access)
    try:
        becomes = Relationship(previous_becomes)
    except ValueError:
        raise ValidationFailed("previous_becomes", _("must be one of %(values)s",
                                                     values=", ".join(r.value for r in Relationship))) from None
    if becomes == Relationship.principal:
        raise ValidationFailed("previous_becomes", _("must not be the principal applicant"))
    if member.relationship == Relationship.principal:
        return member
    _check_version(access.case, version)
    previous = session.scalars(select(Member).where(Member.case_id == access.case.id,
                                                    Member.relationship == Relationship.principal)).first()
    if previous is not None:
        previous.relationship, previous.position = becomes, member.position
    member.relationship, member.position = Relationship.principal, 0
    session.flush()
    _refresh_household(session, access.case)
    _touch(access.case, version)
    _audit(session, actor, access.case, "case.member.principal", {"member": str(member.id)})
    return member


def remove_member(session: Session, *, actor: Principal, access: CaseAccess, member: Member,
                  version: int | None = None) -> None:
    policy.require(actor, "case.update", access)
    if member.relationship == Relationship.principal:
        raise Conflict(_("The principal applicant cannot be removed from the case"))
    _check_version(access.case, version)
    session.delete(member)
    session.flush()
    _refresh_household(session, access.case)
    _touch(access.case, version)
    _audit(session, actor, access.case, "case.member.remove", {"member": str(member.id)})


def link_cases(session: Session, *, actor: Principal, access: CaseAccess, other: CaseAccess,
               reason: str = "") -> CaseLink:
    policy.require(actor, "case.update", access)
    if other.case.id == access.case.id:
        raise ValidationFailed("linked_case", _("a case cannot be linked to itself"))
    if not other.sees(Section.family):
        raise policy.NotFound()
    existing = session.scalars(select(CaseLink).where(or_(
        (CaseLink.case_id == access.case.id) & (CaseLink.linked_case_id == other.case.id),
        (CaseLink.case_id == other.case.id) & (CaseLink.linked_case_id == access.case.id)))).first()
    if existing is not None:
        return existing
    link = CaseLink(case_id=access.case.id, linked_case_id=other.case.id, reason=reason.strip()[:200])
    session.add(link)
    session.flush()
    _touch(access.case)
    _audit(session, actor, access.case, "case.link", {"linked_case": str(other.case.id)})
    return link


def unlink_cases(session: Session, *, actor: Principal, access: CaseAccess, link_id: uuid.UUID) -> None:
    policy.require(actor, "case.update", access)
    link = session.get(CaseLink, link_id)
    if link is None or access.case.id not in (link.case_id, link.linked_case_id):
        raise policy.NotFound()
    session.delete(link)
    _touch(access.case)
    _audit(session, actor, access.case, "case.unlink", {"link": str(link_id)})


def linked_cases(session: Session, actor: Principal, case: Case) -> list[tuple[CaseLink, Case | None]]:
    """The case's links, each with the other case if the actor may see it (else None: shown as hidden)."""
    links = session.scalars(select(CaseLink).where(or_(CaseLink.case_id == case.id,
                                                       CaseLink.linked_case_id == case.id))).all()
    out = []
    for link in links:
        other_id = link.linked_case_id if link.case_id == case.id else link.case_id
        other = session.scalars(policy.scoped(actor, Case).where(Case.id == other_id)).first()
        out.append((link, other))
    return out


# Sensitive sections -------------------------------------------------------------------------------------------


def _refuse_tokens(actor: Principal) -> None:
    """Sealed sections are for people in a browser session: an API token, whatever it may see, gets a 403."""
    if actor.via != "session":
        raise policy.Forbidden()


def require_fresh(actor: Principal) -> None:
    """A browser session that confirmed its TOTP code in the last few minutes: API tokens never qualify."""
    if actor.via != "session":
        raise policy.Forbidden()
    policy.require_step_up(actor)


def read_sensitive(session: Session, *, actor: Principal, access: CaseAccess, sections: Iterable[Section | str],
                   purpose: str | None = None) -> dict[Section, Any]:
    """Open sealed sections the actor may see, after a step-up; the read is audited (names, not values).

    ``confidential`` gives the member-confidential notes: ``[{member_id, body, created_at, author}]``.
    """
    wanted = [Section(s) for s in sections]
    if any(s not in SENSITIVE for s in wanted):
        raise ValidationFailed("sections", _("only sensitive sections are read this way"))
    _refuse_tokens(actor)
    if any(not access.sees(s) for s in wanted):
        raise policy.NotFound()
    require_fresh(actor)
    ring = Keyring.of(session)
    case = access.case
    out: dict[Section, Any] = {}
    for section in wanted:
        if section == Section.confidential:
            notes = session.scalars(select(ConfidentialNote).where(ConfidentialNote.case_id == case.id)
                                    .order_by(ConfidentialNote.created_at)).all()
            out[section] = [{"id": n.id, "member_id": n.member_id, "body": n.unseal("body", keyring=ring),
                             "created_at": n.created_at, "created_by_user_id": n.created_by_user_id}
                            for n in notes]
        else:
            out[section] = case.unseal(section.value, keyring=ring)
    audit.record_read(session, actor=actor, object_type="case", object_id=case.id,
                      fields=[s.value for s in wanted], purpose=purpose)
    return out


def clean_sensitive(section: Section, value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    shape = SENSITIVE_SHAPES[section]
    if value is None:
        return None
    unknown = sorted(set(value) - set(shape))
    if unknown:
        raise ValidationFailed(f"{section.value}.{unknown[0]}", _("is not a field of this section"))
    out: dict[str, Any] = {}
    for key, kind in shape.items():
        raw = value.get(key)
        if kind is bool:
            out[key] = raw if isinstance(raw, bool) else str(raw or "").lower() in {"1", "true", "yes", "on"}
        else:
            text = str(raw or "").strip()
            if len(text) > MAX_SENSITIVE_TEXT:
                raise ValidationFailed(f"{section.value}.{key}", _("must be at most %(high)s characters",
                                                                   high=MAX_SENSITIVE_TEXT))
            out[key] = text
    if not any(v for v in out.values()):
        return None  # an empty form clears the section
    return out


def write_sensitive(session: Session, *, actor: Principal, access: CaseAccess, section: Section | str,
                    value: Mapping[str, Any] | None, version: int | None = None) -> None:
    """Set (or clear, with None or an empty value) one sealed section of the case."""
    section = Section(section)
    if section not in CASE_SEALED:
        raise ValidationFailed("section", _("is not a sealed section of the case"))
    _refuse_tokens(actor)
    policy.require(actor, "case.sensitive.write", access)
    require_fresh(actor)
    cleaned = clean_sensitive(section, value)
    _check_version(access.case, version)
    access.case.seal(section.value, cleaned, keyring=Keyring.of(session))
    _touch(access.case, version)
    _audit(session, actor, access.case, "case.sensitive.write", {"section": section.value,
                                                                 "cleared": cleaned is None})


def add_confidential_note(session: Session, *, actor: Principal, access: CaseAccess, member: Member,
                          body: str) -> ConfidentialNote:
    _refuse_tokens(actor)
    policy.require(actor, "case.confidential.write", access)
    require_fresh(actor)
    text = (body or "").strip()
    if not 1 <= len(text) <= 5000:
        raise ValidationFailed("body", _("must be %(low)s to %(high)s characters", low=1, high=5000))
    note = ConfidentialNote(id=uuid.uuid4(), case_id=access.case.id, member_id=member.id,
                            owner_org_id=access.case.owner_org_id, created_by_user_id=actor.user_id,
                            created_at=clock.now())
    note.seal("body", text, keyring=Keyring.of(session))
    session.add(note)
    session.flush()
    _audit(session, actor, access.case, "case.confidential.add", {"member": str(member.id)})
    return note


def sealed_sections_present(case: Case) -> list[Section]:
    return [s for s in CASE_SEALED if getattr(case, s.value) is not None]


# The pipeline -------------------------------------------------------------------------------------------------


def checklist(session: Session, case: Case) -> list[ChecklistEntry]:
    """Every item of the case's pre-departure checklist, in order. An item nobody has touched is pending and
    has no row (rows are written when an item changes: a bulk import writes none)."""
    rows = {ChecklistItem(r.item): r
            for r in session.scalars(select(ChecklistEntry).where(ChecklistEntry.case_id == case.id))}
    return [rows.get(item) or untouched(case, item) for item in ChecklistItem]


def untouched(case: Case, item: ChecklistItem) -> ChecklistEntry:
    """An item as it is before anyone touches it (not in the session: nothing is written)."""
    return ChecklistEntry(case_id=case.id, item=item, status=ChecklistStatus.pending, note="", obstacle_id=None,
                          updated_by_user_id=None, updated_at=case.opened_at)


def checklist_entry(session: Session, case: Case, item: ChecklistItem) -> ChecklistEntry:
    """The stored row of ``item``, made on first change. The case's row is locked first, so two first changes
    of one item at once wait for each other instead of both inserting it."""
    session.execute(select(Case.id).where(Case.id == case.id).with_for_update())
    entry = session.scalars(select(ChecklistEntry).where(ChecklistEntry.case_id == case.id,
                                                         ChecklistEntry.item == item)).one_or_none()
    if entry is None:
        entry = untouched(case, item)
        session.add(entry)
    return entry


def move(session: Session, *, actor: Principal, access: CaseAccess, to: Stage | str, note: str = "",
         version: int | None = None) -> StageEvent:
    """Move the case to the next stage, if the transition table allows it and the actor may make it."""
    try:
        target = Stage(to)
    except ValueError:
        raise ValidationFailed("to", _("must be one of %(values)s", values=", ".join(s.value for s in Stage))) \
            from None
    policy.require(actor, "case.stage", access)
    case = access.case
    current = Stage(case.stage)
    if not pipeline.allowed(current, target):
        raise Conflict(_("A case cannot go from %(old)s to %(new)s", old=_(STAGE_NAMES[current]),
                         new=_(STAGE_NAMES[target])))
    if not access.owner and (current, target) not in pipeline.STATE_MOVES:
        raise policy.Forbidden()
    if len(note) > 2000:
        raise ValidationFailed("note", _("must be at most %(high)s characters", high=2000))
    if target in pipeline.NEEDS_CHECKLIST:
        unfinished = [_(CHECKLIST_NAMES[ChecklistItem(e.item)]) for e in checklist(session, case)
                      if e.status not in (ChecklistStatus.done, ChecklistStatus.not_needed)]
        if unfinished:
            raise Conflict(_("The pre-departure checklist is not complete: %(items)s",
                             items=", ".join(unfinished)))
    _check_version(case, version)
    now = clock.now()
    case.stage, case.stage_since = target, now
    if target == Stage.submitted:
        case.submitted_at = now
    elif target == Stage.departed:
        case.departed_at = now
    elif target == Stage.arrived:
        case.arrived_at = now
    case.closed_at = now if target in (Stage.closed,) else None
    recompute_clocks(case)
    _touch(case, version)
    event = StageEvent(case_id=case.id, from_stage=current, to_stage=target, note=note.strip(),
                       actor_user_id=actor.user_id, actor_org_id=actor.org_id, actor_label=actor.full_name, at=now)
    session.add(event)
    session.flush()
    _audit(session, actor, case, "case.stage", {"from": current.value, "to": target.value})
    return event


#: Called with (session, entry) after every checklist change: other domains keep what hangs on an item in step
#: (pathways releases an obstacle's block when the item stops being blocked). Cases import no other domain.
CHECKLIST_HOOKS: list[Callable[[Session, ChecklistEntry], None]] = []


def set_checklist(session: Session, *, actor: Principal, access: CaseAccess, item: ChecklistItem | str,
                  status: ChecklistStatus | str, note: str = "") -> ChecklistEntry:
    policy.require(actor, "case.checklist", access)
    try:
        item = ChecklistItem(item)
    except ValueError:
        raise ValidationFailed("item", _("must be one of %(values)s",
                                         values=", ".join(i.value for i in ChecklistItem))) from None
    try:
        status = ChecklistStatus(status)
    except ValueError:
        raise ValidationFailed("status", _("must be one of %(values)s",
                                           values=", ".join(s.value for s in ChecklistStatus))) from None
    if len(note) > 500:
        raise ValidationFailed("note", _("must be at most %(high)s characters", high=500))
    entry = checklist_entry(session, access.case, item)
    entry.status, entry.note = status, note.strip()
    entry.updated_by_user_id, entry.updated_at = actor.user_id, clock.now()
    for hook in CHECKLIST_HOOKS:
        hook(session, entry)
    _touch(access.case)
    _audit(session, actor, access.case, "case.checklist", {"item": item.value, "status": status.value})
    return entry


def history(session: Session, case: Case) -> list[StageEvent]:
    return list(session.scalars(select(StageEvent).where(StageEvent.case_id == case.id).order_by(StageEvent.at)))


# Reading ------------------------------------------------------------------------------------------------------


def members_of(session: Session, case: Case) -> list[Member]:
    return list(session.scalars(select(Member).where(Member.case_id == case.id).order_by(Member.position)))


def ties_of(session: Session, case: Case) -> list[FamilyTie]:
    return list(session.scalars(select(FamilyTie).where(FamilyTie.case_id == case.id).order_by(FamilyTie.country)))


def record_view(session: Session, *, actor: Principal, access: CaseAccess, via: str = "page") -> None:
    """Audit that the actor opened the case (which sections they could see): the owner's access log shows it."""
    _audit(session, actor, access.case, "case.view",
           {"sections": sorted(s.value for s in access.sections - SENSITIVE), "via": via})


def access_log(session: Session, *, actor: Principal, access: CaseAccess, page: int = 1,
               per_page: int = 50) -> Page[AuditEntry]:
    """Who viewed or changed what, when: the audit entries about this case, newest first."""
    policy.require(actor, "case.log", access)
    stmt = (select(AuditEntry).where(AuditEntry.object_type == "case",
                                     AuditEntry.object_id == str(access.case.id))
            .order_by(AuditEntry.seq.desc()))
    return paginate(session, stmt, page=page, per_page=per_page)


def section_label(section: Section | str) -> str:
    return _(SECTION_NAMES[Section(section)])


def reassign_owner(session: Session, case: Case, org: Organization) -> None:
    """Give ``case`` to ``org``: a new number in its series, the sealed sections sealed again with its key,
    the name index following. Called by an accepted transfer (``rdn.cases.sharing``)."""
    ring = Keyring.of(session)
    opened = {s: case.unseal(s.value, keyring=ring) for s in CASE_SEALED}
    notes = session.scalars(select(ConfidentialNote).where(ConfidentialNote.case_id == case.id)).all()
    bodies = {n.id: n.unseal("body", keyring=ring) for n in notes}
    case.previous_numbers = [*case.previous_numbers, case.number]
    case.owner_org_id = org.id
    case.number = reserve_numbers(session, org)[0]
    for section, value in opened.items():
        case.seal(section.value, value, keyring=ring)
    for note in notes:
        note.owner_org_id = org.id
        note.seal("body", bodies[note.id], keyring=ring)
    _touch(case)

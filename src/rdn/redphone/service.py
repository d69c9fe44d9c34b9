"""Crises and the crisis room: declaring, the lifecycle, messages, decisions, pledges, actions, reports.

Business rules only: no HTTP, no commits. Every change is audited in the caller's transaction and
announced on the crisis's event channel (``crisis:<id>``) after commit; governments' own systems receive
crisis events by webhook.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import Enum
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rdn.core import audit, clock, events, i18n, outbox, webhooks
from rdn.core.audit import SYSTEM
from rdn.core.errors import Conflict, ValidationFailed
from rdn.core.i18n import N_
from rdn.core.i18n import gettext as _
from rdn.core.identity import Principal, User
from rdn.core.mail import send_email
from rdn.core.tenancy import Membership, Organization, OrgKind, Role
from rdn.redphone import escalation
from rdn.redphone.models import (
    ACTION_TRANSITIONS,
    CRISIS_TRANSITIONS,
    PLEDGE_TRANSITIONS,
    Action,
    ActionStatus,
    ActivationLevel,
    Crisis,
    CrisisStatus,
    Decision,
    DecisionStatus,
    EscalationRun,
    Message,
    Participant,
    ParticipantRole,
    Pledge,
    PledgeStatus,
    RunStatus,
)

STATUS_NAMES = {CrisisStatus.declared: N_("Declared"), CrisisStatus.active: N_("Active"),
                CrisisStatus.stabilised: N_("Stabilised"), CrisisStatus.closed: N_("Closed")}
ROLE_NAMES = {ParticipantRole.chair: N_("Chair"), ParticipantRole.member: N_("Member"),
              ParticipantRole.rapporteur: N_("Rapporteur"), ParticipantRole.observer: N_("Observer")}
PLEDGE_NAMES = {PledgeStatus.proposed: N_("Proposed"), PledgeStatus.confirmed: N_("Confirmed"),
                PledgeStatus.fulfilled: N_("Fulfilled"), PledgeStatus.withdrawn: N_("Withdrawn")}
ACTION_NAMES = {ActionStatus.open: N_("Open"), ActionStatus.in_progress: N_("In progress"),
                ActionStatus.done: N_("Done"), ActionStatus.cancelled: N_("Cancelled")}
CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
#: Organizations that take part in crisis coordination, and the role they get by default.
DEFAULT_ROLES = {OrgKind.government: ParticipantRole.member, OrgKind.secretariat: ParticipantRole.rapporteur,
                 OrgKind.observer: ParticipantRole.observer, OrgKind.agency: ParticipantRole.observer}


def _text(value: str | None, field: str, *, low: int, high: int) -> str:
    value = (value or "").strip()
    if not low <= len(value) <= high:
        raise ValidationFailed(field, _("must be %(low)s to %(high)s characters", low=low, high=high))
    return value


def _countries(values: list[str] | None) -> list[str]:
    result = []
    for value in values or []:
        code = value.strip().upper()
        if not i18n.is_country(code):
            raise ValidationFailed("countries", _("%(value)s is not an ISO 3166-1 country code", value=value))
        if code not in result:
            result.append(code)
    return result


def _positive(value: int | None, field: str, *, high: int = 50_000_000) -> int | None:
    if value is None:
        return None
    if not 0 <= value <= high:
        raise ValidationFailed(field, _("must be between 0 and %(high)s", high=high))
    return value


def _next_reference(session: Session, exercise: bool) -> str:
    year = clock.now().year
    prefix = f"{'EX' if exercise else 'RP'}-{year}-"
    count = session.scalar(select(func.count()).select_from(Crisis).where(Crisis.reference.startswith(prefix)))
    return f"{prefix}{(count or 0) + 1:03d}"


def _announce(session: Session, crisis: Crisis, event: str, data: dict[str, Any] | None = None) -> None:
    """On the crisis's own channel (its room), and to each participant organization's channel (their lists)."""
    body = {"crisis_id": str(crisis.id), "reference": crisis.reference, **(data or {})}
    events.publish(session, f"crisis:{crisis.id}", event, body)
    if event.startswith("crisis."):
        for org_id in session.scalars(select(Participant.org_id).where(Participant.crisis_id == crisis.id)):
            events.publish(session, f"org:{org_id}", event, body)


def _system_message(session: Session, crisis: Crisis, text: str) -> None:
    session.add(Message(crisis_id=crisis.id, client_id=f"system-{uuid.uuid4().hex}", kind="system", body=text,
                        created_at=clock.now()))


def participant_orgs(session: Session, org_ids: list[uuid.UUID] | None = None) -> list[Organization]:
    stmt = select(Organization).where(Organization.active.is_(True),
                                      Organization.kind.in_(list(DEFAULT_ROLES)))
    if org_ids is not None:
        stmt = stmt.where(Organization.id.in_(org_ids) | Organization.kind.in_([OrgKind.secretariat]))
    return list(session.scalars(stmt.order_by(Organization.name)))


def declare(session: Session, *, actor: Principal, title: str, summary: str = "", region: str = "",
            countries: list[str] | None = None, displaced_population: int | None = None,
            target_places: int | None = None, activation_level: ActivationLevel | str = ActivationLevel.monitoring,
            exercise: bool = False, government_ids: list[uuid.UUID] | None = None) -> Crisis:
    """Declare a crisis (or start a drill): every member government's chain is paged at once.

    ``government_ids`` limits a drill to some governments; a real crisis always pages all of them.
    """
    try:
        level = ActivationLevel(activation_level)
    except ValueError:
        raise ValidationFailed("activation_level", _("must be one of %(values)s",
                                                     values=", ".join(a.value for a in ActivationLevel))) from None
    if government_ids is not None and not exercise:
        raise ValidationFailed("government_ids", _("a real crisis pages every member government"))
    assert actor.org_id is not None
    crisis = Crisis(
        reference=_next_reference(session, exercise), title=_text(title, "title", low=3, high=200),
        summary=_text(summary, "summary", low=0, high=5000), region=_text(region, "region", low=0, high=120),
        countries=_countries(countries), displaced_population=_positive(displaced_population, "displaced_population",
                                                                        high=200_000_000),
        target_places=_positive(target_places, "target_places"), activation_level=level,
        status=CrisisStatus.declared, exercise=exercise, declared_by_user_id=actor.user_id,
        declared_by_org_id=actor.org_id, declared_at=clock.now(),
    )
    session.add(crisis)
    session.flush()
    governments = None
    if government_ids is not None:
        known = set(escalation.target_governments(session))
        governments = [g for g in dict.fromkeys(government_ids) if g in known]
        if not governments:
            raise ValidationFailed("government_ids", _("choose at least one member government"))
    for org in participant_orgs(session, governments):
        role = ParticipantRole.chair if org.id == actor.org_id else DEFAULT_ROLES[OrgKind(org.kind)]
        session.add(Participant(crisis_id=crisis.id, org_id=org.id, role=role))
    _system_message(session, crisis, _("%(org)s declared the crisis (%(level)s).", org=actor.org.name if actor.org
                                       else "?", level=_(escalation.LEVEL_NAMES[level])))
    audit.record(session, action="crisis.declare", actor=actor, object_type="crisis", object_id=crisis.id,
                 details={"exercise": exercise, "level": level.value, "reference": crisis.reference})
    escalation.start_round(session, crisis=crisis, trigger="declared", org_ids=governments)
    _announce(session, crisis, "crisis.declared", {"title": crisis.title, "exercise": exercise})
    for org_id in governments or escalation.target_governments(session):
        webhooks.emit(session, org_id=org_id, event_type="crisis.declared",
                      data={"crisis_id": str(crisis.id), "reference": crisis.reference, "title": crisis.title,
                            "activation_level": level.value, "exercise": exercise})
    return crisis


def change(session: Session, *, actor: Principal, crisis: Crisis, status: CrisisStatus | str | None = None,
           activation_level: ActivationLevel | str | None = None, summary: str | None = None,
           target_places: Any = ..., displaced_population: Any = ...) -> Crisis:
    """Move the crisis through its lifecycle or change its level; raising the level pages again."""
    changed: list[str] = []
    repage = None
    if status is not None:
        try:
            new = CrisisStatus(status)
        except ValueError:
            raise ValidationFailed("status", _("must be one of %(values)s",
                                               values=", ".join(s.value for s in CrisisStatus))) from None
        old = CrisisStatus(crisis.status)
        if new != old:
            if new not in CRISIS_TRANSITIONS[old]:
                raise Conflict(_("A %(old)s crisis cannot become %(new)s", old=_(STATUS_NAMES[old]),
                                 new=_(STATUS_NAMES[new])))
            crisis.status = new
            changed.append("status")
            if new == CrisisStatus.closed:
                crisis.closed_at = clock.now()
                escalation.cancel_runs(session, crisis)
            elif old == CrisisStatus.closed:
                crisis.closed_at = None
                repage = "reopened"
            _system_message(session, crisis, _("%(org)s set the crisis to %(status)s.",
                                               org=actor.org.name if actor.org else "?", status=_(STATUS_NAMES[new])))
    if activation_level is not None:
        try:
            level = ActivationLevel(activation_level)
        except ValueError:
            raise ValidationFailed("activation_level", _("must be one of %(values)s",
                                                         values=", ".join(a.value for a in ActivationLevel))) from None
        old_level = ActivationLevel(crisis.activation_level)
        if level != old_level:
            if CrisisStatus(crisis.status) == CrisisStatus.closed:
                raise Conflict(_("Reopen the crisis before changing its activation level"))
            crisis.activation_level = level
            changed.append("activation_level")
            if level.rank > old_level.rank:
                repage = repage or "level_raised"
            _system_message(session, crisis, _("%(org)s changed the activation level to %(level)s.",
                                               org=actor.org.name if actor.org else "?",
                                               level=_(escalation.LEVEL_NAMES[level])))
    if summary is not None and summary.strip() != crisis.summary:
        crisis.summary = _text(summary, "summary", low=0, high=5000)
        changed.append("summary")
    if target_places is not ...:
        crisis.target_places = _positive(target_places, "target_places")
        changed.append("target_places")
    if displaced_population is not ...:
        crisis.displaced_population = _positive(displaced_population, "displaced_population", high=200_000_000)
        changed.append("displaced_population")
    if not changed:
        return crisis
    audit.record(session, action="crisis.update", actor=actor, object_type="crisis", object_id=crisis.id,
                 details={"fields": changed, "status": CrisisStatus(crisis.status).value,
                          "level": ActivationLevel(crisis.activation_level).value})
    if repage:
        governments = list(session.scalars(select(EscalationRun.org_id).where(
            EscalationRun.crisis_id == crisis.id).distinct())) if crisis.exercise else None
        escalation.start_round(session, crisis=crisis, trigger=repage, org_ids=governments)
    _announce(session, crisis, "crisis.updated", {"fields": changed})
    for participant in session.scalars(select(Participant).where(Participant.crisis_id == crisis.id)):
        webhooks.emit(session, org_id=participant.org_id, event_type="crisis.updated",
                      data={"crisis_id": str(crisis.id), "fields": changed,
                            "status": CrisisStatus(crisis.status).value,
                            "activation_level": ActivationLevel(crisis.activation_level).value})
    return crisis


def participant(session: Session, crisis_id: uuid.UUID, org_id: uuid.UUID | None) -> Participant | None:
    if org_id is None:
        return None
    return session.scalars(select(Participant).where(Participant.crisis_id == crisis_id,
                                                     Participant.org_id == org_id)).first()


def set_participant_role(session: Session, *, actor: Principal, crisis: Crisis, org_id: uuid.UUID,
                         role: ParticipantRole | str) -> Participant:
    try:
        role = ParticipantRole(role)
    except ValueError:
        raise ValidationFailed("role", _("must be one of %(values)s",
                                         values=", ".join(r.value for r in ParticipantRole))) from None
    org = session.get(Organization, org_id)
    if org is None or OrgKind(org.kind) not in DEFAULT_ROLES:
        raise ValidationFailed("org_id", _("this organization does not take part in crisis coordination"))
    if role in (ParticipantRole.member, ParticipantRole.chair) and OrgKind(org.kind) not in (
            OrgKind.government, OrgKind.secretariat):
        raise ValidationFailed("role", _("only member governments and the secretariat can be members or chair"))
    row = participant(session, crisis.id, org_id)
    if row is None:
        row = Participant(crisis_id=crisis.id, org_id=org_id, role=role)
        session.add(row)
    else:
        row.role = role
    session.flush()
    audit.record(session, action="crisis.participant", actor=actor, object_type="crisis", object_id=crisis.id,
                 details={"org": str(org_id), "role": role.value})
    _announce(session, crisis, "crisis.participants", {})
    return row


# The room ------------------------------------------------------------------------------------------------------


def post_message(session: Session, *, actor: Principal, crisis: Crisis, client_id: str, body: str) -> Message:
    """Post to the room. ``client_id`` is chosen by the sender: sending the same message again returns it."""
    if not CLIENT_ID.match(client_id or ""):
        raise ValidationFailed("client_id", _("8 to 64 letters, digits, hyphens or underscores"))
    existing = session.scalars(select(Message).where(Message.crisis_id == crisis.id,
                                                     Message.client_id == client_id)).first()
    if existing is not None:
        if existing.author_user_id != actor.user_id:
            raise Conflict(_("This message identifier is already used"))
        return existing
    message = Message(crisis_id=crisis.id, client_id=client_id, kind="message", author_user_id=actor.user_id,
                      author_org_id=actor.org_id, body=_text(body, "body", low=1, high=4000), created_at=clock.now())
    session.add(message)
    session.flush()
    audit.record(session, action="crisis.message", actor=actor, object_type="crisis", object_id=crisis.id,
                 details={"message": str(message.id)})
    _announce(session, crisis, "room.message", {"message_id": str(message.id)})
    return message


def record_decision(session: Session, *, actor: Principal, crisis: Crisis, text: str,
                    supersedes: Decision | None = None) -> Decision:
    decision = Decision(crisis_id=crisis.id, text=_text(text, "text", low=3, high=4000),
                        status=DecisionStatus.recorded, recorded_by_user_id=actor.user_id,
                        recorded_by_org_id=actor.org_id, recorded_at=clock.now())
    session.add(decision)
    session.flush()
    if supersedes is not None:
        if supersedes.crisis_id != crisis.id or DecisionStatus(supersedes.status) != DecisionStatus.recorded:
            raise Conflict(_("Only a recorded decision of this crisis can be superseded"))
        supersedes.status = DecisionStatus.superseded
        supersedes.superseded_by_id = decision.id
        supersedes.superseded_at = clock.now()
    audit.record(session, action="crisis.decision", actor=actor, object_type="crisis", object_id=crisis.id,
                 details={"decision": str(decision.id),
                          "supersedes": str(supersedes.id) if supersedes else None})
    _announce(session, crisis, "room.decision", {"decision_id": str(decision.id)})
    return decision


def pledge(session: Session, *, actor: Principal, crisis: Crisis, places: int, population: str = "",
           time_frame: str = "", note: str = "") -> Pledge:
    if CrisisStatus(crisis.status) == CrisisStatus.closed:
        raise Conflict(_("The crisis is closed"))
    if not 1 <= places <= 1_000_000:
        raise ValidationFailed("places", _("must be between 1 and %(high)s", high=1_000_000))
    assert actor.org_id is not None
    row = Pledge(crisis_id=crisis.id, org_id=actor.org_id, places=places,
                 population=_text(population, "population", low=0, high=120),
                 time_frame=_text(time_frame, "time_frame", low=0, high=120), note=_text(note, "note", low=0, high=500),
                 status=PledgeStatus.proposed, created_by_user_id=actor.user_id, created_at=clock.now())
    session.add(row)
    session.flush()
    audit.record(session, action="crisis.pledge", actor=actor, object_type="pledge", object_id=row.id,
                 details={"crisis": str(crisis.id), "places": places})
    _announce(session, crisis, "room.pledge", {"pledge_id": str(row.id)})
    return row


_E = TypeVar("_E", bound=Enum)


def _status(kind: type[_E], value: object) -> _E:
    """Parse a status from a form or API body, naming the field when it is not one of the allowed values."""
    try:
        return kind(value)
    except ValueError:
        raise ValidationFailed("status", _("must be one of %(values)s",
                                           values=", ".join(s.value for s in kind))) from None


def change_pledge(session: Session, *, actor: Principal, row: Pledge, status: PledgeStatus | str) -> Pledge:
    new = _status(PledgeStatus, status)
    old = PledgeStatus(row.status)
    if new != old and new not in PLEDGE_TRANSITIONS[old]:
        raise Conflict(_("A %(old)s pledge cannot become %(new)s", old=_(PLEDGE_NAMES[old]),
                         new=_(PLEDGE_NAMES[new])))
    row.status = new
    audit.record(session, action="pledge.update", actor=actor, object_type="pledge", object_id=row.id,
                 details={"status": new.value})
    crisis = session.get(Crisis, row.crisis_id)
    assert crisis is not None
    _announce(session, crisis, "room.pledge", {"pledge_id": str(row.id)})
    return row


def add_action(session: Session, *, actor: Principal, crisis: Crisis, title: str, owner_org_id: uuid.UUID,
               due_on: date) -> Action:
    owner = participant(session, crisis.id, owner_org_id)
    if owner is None:
        raise ValidationFailed("owner_org_id", _("the owner must take part in the crisis"))
    if due_on < clock.now().date() - timedelta(days=1):
        raise ValidationFailed("due_on", _("the due date is in the past"))
    action = Action(crisis_id=crisis.id, title=_text(title, "title", low=3, high=300), owner_org_id=owner_org_id,
                    due_on=due_on, status=ActionStatus.open, created_by_user_id=actor.user_id, created_at=clock.now())
    session.add(action)
    session.flush()
    audit.record(session, action="crisis.action", actor=actor, object_type="crisis_action", object_id=action.id,
                 details={"crisis": str(crisis.id), "owner": str(owner_org_id)})
    _announce(session, crisis, "room.action", {"action_id": str(action.id)})
    return action


def change_action(session: Session, *, actor: Principal, action: Action, status: ActionStatus | str) -> Action:
    new = _status(ActionStatus, status)
    old = ActionStatus(action.status)
    if new != old and new not in ACTION_TRANSITIONS[old]:
        raise Conflict(_("An action that is %(old)s cannot become %(new)s", old=_(ACTION_NAMES[old]),
                         new=_(ACTION_NAMES[new])))
    action.status = new
    action.completed_at = clock.now() if new == ActionStatus.done else None
    audit.record(session, action="action.update", actor=actor, object_type="crisis_action", object_id=action.id,
                 details={"status": new.value})
    crisis = session.get(Crisis, action.crisis_id)
    assert crisis is not None
    _announce(session, crisis, "room.action", {"action_id": str(action.id)})
    return action


@outbox.periodic("redphone-action-reminders", timedelta(hours=1))
def _remind_overdue_actions(ctx: outbox.JobContext) -> None:
    """Once a day per overdue action, email the owner government's senior officials."""
    session = ctx.session
    today = clock.now().date()
    overdue = session.scalars(select(Action).join(Crisis, Crisis.id == Action.crisis_id).where(
        Action.status.in_([ActionStatus.open, ActionStatus.in_progress]), Action.due_on < today,
        Crisis.status != CrisisStatus.closed)).all()
    for action in overdue:
        if action.last_reminded_on == today:
            continue
        action.last_reminded_on = today
        crisis = session.get(Crisis, action.crisis_id)
        assert crisis is not None
        people = session.scalars(select(User).join(Membership, Membership.user_id == User.id).where(
            Membership.org_id == action.owner_org_id, Membership.role.in_([Role.senior_official, Role.officer]),
            User.active.is_(True)).distinct()).all()
        for person in people:
            with i18n.using(person.locale):
                send_email(session, to=person.email, org_id=action.owner_org_id,
                           subject=_("Overdue action: %(title)s", title=action.title[:120]),
                           text=_("The action \"%(title)s\" of the crisis %(crisis)s was due on %(due)s and is "
                                  "not done.\n\nCrisis room: %(link)s",
                                  title=action.title, crisis=crisis.title, due=action.due_on.isoformat(),
                                  link=escalation.room_link(crisis)),
                           dedupe_key=f"action-reminder:{action.id}:{person.id}:{today.isoformat()}")
        audit.record(session, action="action.reminded", actor=SYSTEM, object_type="crisis_action",
                     object_id=action.id, details={"people": len(people)})


# Reading the room ----------------------------------------------------------------------------------------------


@dataclass
class GovernmentPaging:
    org: Organization
    run: EscalationRun | None
    acknowledged_by: str | None = None
    level_name: str | None = None
    pages: int = 0


@dataclass
class Room:
    crisis: Crisis
    participants: list[tuple[Participant, Organization]]
    paging: list[GovernmentPaging]
    messages: list[tuple[Message, str, str]]  # message, author name, organization name
    decisions: list[Decision]
    pledges: list[tuple[Pledge, Organization]]
    actions: list[tuple[Action, Organization]]
    totals: dict[str, int] = field(default_factory=dict)

    @property
    def acknowledged(self) -> int:
        return sum(1 for g in self.paging if g.run and RunStatus(g.run.status) == RunStatus.acknowledged)


def room(session: Session, crisis: Crisis, *, messages: int = 200) -> Room:
    orgs = {o.id: o for o in session.scalars(select(Organization))}
    parts = [(p, orgs[p.org_id]) for p in session.scalars(select(Participant).where(
        Participant.crisis_id == crisis.id)) if p.org_id in orgs]
    parts.sort(key=lambda item: (list(ParticipantRole).index(ParticipantRole(item[0].role)), item[1].name))
    latest: dict[uuid.UUID, EscalationRun] = {}
    for run in session.scalars(select(EscalationRun).where(EscalationRun.crisis_id == crisis.id)
                               .order_by(EscalationRun.round)):
        latest[run.org_id] = run
    users = {}
    acked = [r.acknowledged_by_user_id for r in latest.values() if r.acknowledged_by_user_id]
    if acked:
        users = {u.id: u.full_name for u in session.scalars(select(User).where(User.id.in_(acked)))}
    paging = []
    for org_id, run in latest.items():
        levels = run.snapshot["levels"]
        paging.append(GovernmentPaging(
            orgs[org_id], run, users.get(run.acknowledged_by_user_id) if run.acknowledged_by_user_id else None,
            levels[run.level]["name"] if 0 <= run.level < len(levels) else None))
    paging.sort(key=lambda g: g.org.name)
    message_rows = session.execute(
        select(Message, User.full_name, Organization.name)
        .join(User, User.id == Message.author_user_id, isouter=True)
        .join(Organization, Organization.id == Message.author_org_id, isouter=True)
        .where(Message.crisis_id == crisis.id).order_by(Message.created_at.desc()).limit(messages)
    ).all()
    pledges = [(p, orgs[p.org_id]) for p in session.scalars(select(Pledge).where(Pledge.crisis_id == crisis.id)
                                                            .order_by(Pledge.created_at))]
    totals = {s.value: sum(p.places for p, _o in pledges if PledgeStatus(p.status) == s) for s in PledgeStatus}
    totals["active"] = totals["proposed"] + totals["confirmed"] + totals["fulfilled"]
    return Room(
        crisis=crisis, participants=parts, paging=paging,
        messages=[(m, name or "RDN", org or "") for m, name, org in reversed(message_rows)],
        decisions=list(session.scalars(select(Decision).where(Decision.crisis_id == crisis.id)
                                       .order_by(Decision.recorded_at))),
        pledges=pledges,
        actions=[(a, orgs[a.owner_org_id]) for a in session.scalars(
            select(Action).where(Action.crisis_id == crisis.id).order_by(Action.due_on))],
        totals=totals,
    )


def situation_report(session: Session, crisis: Crisis) -> str:
    """The situation report as Markdown (the printable page renders the same content)."""
    r = room(session, crisis)
    c = crisis
    exercise = f" · **{_('Exercise')}**" if c.exercise else ""
    lines = [f"# {_('Situation report')}: {c.title} ({c.reference})", "",
             f"*{_('Prepared')} {i18n.format_datetime(clock.now())}*{exercise}",
             "", f"- **{_('Status')}:** {_(STATUS_NAMES[CrisisStatus(c.status)])}",
             f"- **{_('Activation level')}:** {_(escalation.LEVEL_NAMES[ActivationLevel(c.activation_level)])}",
             f"- **{_('Declared')}:** {i18n.format_datetime(c.declared_at)}"]
    if c.region:
        lines.append(f"- **{_('Region')}:** {c.region}")
    if c.countries:
        lines.append(f"- **{_('Countries')}:** {i18n.format_list([i18n.country_name(x) for x in c.countries])}")
    if c.displaced_population is not None:
        lines.append(f"- **{_('Displaced people')}:** {i18n.format_number(c.displaced_population)}")
    target = f" / {i18n.format_number(c.target_places)}" if c.target_places else ""
    lines.append(f"- **{_('Places pledged')}:** {i18n.format_number(r.totals['active'])}{target}")
    if c.summary:
        lines += ["", c.summary]
    lines += ["", f"## {_('Acknowledgements')} ({r.acknowledged}/{len(r.paging)})", "",
              f"| {_('Government')} | {_('Status')} |", "|---|---|"]
    for g in r.paging:
        lines.append(f"| {g.org.name} | {paging_text(g)} |")
    lines += ["", f"## {_('Pledges')}", ""]
    if r.pledges:
        lines += [f"| {_('Government')} | {_('Places')} | {_('Population')} | {_('Time frame')} | {_('Status')} |",
                  "|---|---:|---|---|---|"]
        lines += [f"| {o.name} | {p.places} | {p.population} | {p.time_frame} "
                  f"| {_(PLEDGE_NAMES[PledgeStatus(p.status)])} |" for p, o in r.pledges]
    else:
        lines.append(_("No pledges yet."))
    lines += ["", f"## {_('Decisions')}", ""]
    current = [d for d in r.decisions if DecisionStatus(d.status) == DecisionStatus.recorded]
    lines += [f"{i}. {d.text} ({i18n.format_datetime(d.recorded_at)})" for i, d in enumerate(current, 1)] or \
        [_("No decisions yet.")]
    lines += ["", f"## {_('Open actions')}", ""]
    open_actions = [(a, o) for a, o in r.actions if ActionStatus(a.status) in (ActionStatus.open,
                                                                               ActionStatus.in_progress)]
    due, overdue = _("due"), _("overdue")
    lines += [f"- {a.title} — {o.name}, {due} {a.due_on.isoformat()}"
              + (f" **({overdue})**" if a.due_on < clock.now().date() else "") for a, o in open_actions] or \
        [_("No open actions.")]
    return "\n".join(lines) + "\n"


def paging_text(g: GovernmentPaging) -> str:
    if g.run is None:
        return _("Not paged")
    status = RunStatus(g.run.status)
    if status == RunStatus.acknowledged:
        return _("Acknowledged by %(name)s", name=g.acknowledged_by or "?")
    if status == RunStatus.exhausted:
        return _("No answer: every level was paged")
    if status == RunStatus.cancelled:
        return _("Paging stopped")
    return _("Paging: %(level)s", level=g.level_name or "…")


def overview(session: Session, crisis_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, int]]:
    """Acknowledged and paged governments, and pledged places, per crisis (for lists)."""
    result: dict[uuid.UUID, dict[str, int]] = {cid: {"acked": 0, "paged": 0, "places": 0} for cid in crisis_ids}
    if not crisis_ids:
        return result
    latest: dict[tuple[uuid.UUID, uuid.UUID], EscalationRun] = {}
    for run in session.scalars(select(EscalationRun).where(EscalationRun.crisis_id.in_(crisis_ids))
                               .order_by(EscalationRun.round)):
        latest[(run.crisis_id, run.org_id)] = run
    for (cid, _org), run in latest.items():
        result[cid]["paged"] += 1
        result[cid]["acked"] += RunStatus(run.status) == RunStatus.acknowledged
    for cid, places in session.execute(
        select(Pledge.crisis_id, func.sum(Pledge.places)).where(
            Pledge.crisis_id.in_(crisis_ids), Pledge.status != PledgeStatus.withdrawn).group_by(Pledge.crisis_id)
    ):
        result[cid]["places"] = int(places or 0)
    return result


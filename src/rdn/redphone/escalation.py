"""Paging and escalation: one run per government per paging round, stepped by fenced outbox jobs.

* A round starts when a crisis is declared (and again when its activation level is raised, or it is
  reopened): each member government gets a run holding a *copy* of its chain as it stood then.
* A run advances by ``redphone.step`` jobs. Each job carries the run's ``fence``; the step locks the run,
  does nothing unless the fence still matches, and bumps it. A step's work (time out the pages of the level
  just finished, page the next level, schedule the next step) commits together with the job, so a worker
  killed at any point neither skips a step nor does one twice; a watchdog re-drives overdue runs.
* Each page is delivered by one ``redphone.deliver`` job per verified contact method (email, SMS, the
  government's own system), each with a stable identity (Message-ID, webhook-id), every attempt recorded.
* An acknowledgement by anyone in a government's chain ends that government's run (the fence moves, so
  scheduled steps fall away) and tells the rest of the chain; other governments' runs go on. After the
  last level the run starts over ``repeat_count`` times, then is exhausted and the secretariat alerted.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from rdn import db
from rdn.config import get_settings
from rdn.core import audit, clock, events, i18n, outbox, webhooks
from rdn.core.audit import SYSTEM, Actor
from rdn.core.crypto import Keyring, same_secret
from rdn.core.i18n import N_
from rdn.core.i18n import gettext as _
from rdn.core.identity import Principal, User
from rdn.core.mail import build_message, message_id_for, message_payload, send_email, send_now_rollback_unsafe
from rdn.core.tenancy import Membership, Organization, OrgKind, Role
from rdn.redphone import chains, sms
from rdn.redphone.models import (
    ActivationLevel,
    ContactKind,
    ContactMethod,
    Crisis,
    DeliveryAttempt,
    EscalationRun,
    Page,
    PageStatus,
    RunStatus,
)

log = logging.getLogger("rdn.redphone")
OPEN_PAGE = (PageStatus.pending, PageStatus.sent, PageStatus.delivered)
LEVEL_NAMES = {ActivationLevel.monitoring: i18n.N_("Monitoring"),
               ActivationLevel.information_sharing: i18n.N_("Information sharing"),
               ActivationLevel.full_activation: i18n.N_("Full activation")}


def _lock_run(session: Session, run_id: uuid.UUID) -> EscalationRun | None:
    stmt = select(EscalationRun).where(EscalationRun.id == run_id)
    if db.dialect_name(session) == "postgresql":
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def _schedule_step(session: Session, run: EscalationRun, *, key: str | None = None) -> None:
    outbox.enqueue(session, "redphone.step", {"run_id": str(run.id), "fence": run.fence},
                   run_at=run.next_step_at, dedupe_key=key or f"step:{run.id}:{run.fence}", priority=5,
                   org_id=run.org_id)


# Rounds --------------------------------------------------------------------------------------------------------


def target_governments(session: Session) -> list[uuid.UUID]:
    return list(session.scalars(select(Organization.id).where(Organization.kind == OrgKind.government,
                                                              Organization.active.is_(True))
                                .order_by(Organization.name)))


def start_round(session: Session, *, crisis: Crisis, trigger: str,
                org_ids: list[uuid.UUID] | None = None) -> list[EscalationRun]:
    """Page every member government (or ``org_ids``) from a snapshot of its chain; replaces live runs."""
    now = clock.now()
    previous = session.scalar(select(func.max(EscalationRun.round)).where(EscalationRun.crisis_id == crisis.id))
    round_no = (previous or 0) + 1
    live = session.scalars(select(EscalationRun).where(EscalationRun.crisis_id == crisis.id,
                                                       EscalationRun.status == RunStatus.active)).all()
    for run in live:
        _end(run, RunStatus.cancelled, now)
    runs = []
    for org_id in org_ids if org_ids is not None else target_governments(session):
        snap, repeats = chains.snapshot(session, org_id)
        run = EscalationRun(crisis_id=crisis.id, org_id=org_id, round=round_no, trigger=trigger, snapshot=snap,
                            repeat_count=repeats, status=RunStatus.active, cycle=0, level=-1, fence=0,
                            started_at=now, next_step_at=now)
        session.add(run)
        session.flush()
        runs.append(run)
        if not any(level["people"] for level in snap["levels"]):
            _exhaust(session, run, crisis, reason=N_("no one is in the contact chain"))
        else:
            _schedule_step(session, run)
    events.publish(session, f"crisis:{crisis.id}", "paging.round", {"round": round_no, "trigger": trigger})
    return runs


def cancel_runs(session: Session, crisis: Crisis) -> int:
    now = clock.now()
    runs = session.scalars(select(EscalationRun).where(EscalationRun.crisis_id == crisis.id,
                                                       EscalationRun.status == RunStatus.active)).all()
    for run in runs:
        _end(run, RunStatus.cancelled, now)
    return len(runs)


def _end(run: EscalationRun, status: RunStatus, now: datetime) -> None:
    run.status = status
    run.ended_at = now
    run.next_step_at = None
    run.fence += 1  # every scheduled step of this run is now stale


# Steps ---------------------------------------------------------------------------------------------------------


def _next_position(run: EscalationRun) -> tuple[int, int] | None:
    levels = run.snapshot["levels"]
    level, cycle = run.level, run.cycle
    for _attempt in range(len(levels) * (run.repeat_count + 2) + 1):
        level += 1
        if level >= len(levels):
            level, cycle = 0, cycle + 1
        if cycle > run.repeat_count:
            return None
        if levels[level]["people"]:
            return level, cycle
    return None


def step(session: Session, run_id: uuid.UUID, fence: int) -> bool:
    """Advance one run by one step if ``fence`` is still its fence. Returns whether it did anything."""
    run = _lock_run(session, run_id)
    if run is None or run.status != RunStatus.active or run.fence != fence:
        return False
    now = clock.now()
    if run.next_step_at is not None and now < run.next_step_at:
        return False  # early (clock skew between machines): the scheduled job or the watchdog comes back
    crisis = session.get(Crisis, run.crisis_id)
    assert crisis is not None
    if run.level >= 0:
        session.execute(
            update(Page).where(Page.run_id == run.id, Page.cycle == run.cycle, Page.level == run.level,
                               Page.status.in_(OPEN_PAGE))
            .values(status=PageStatus.timed_out, timed_out_at=now).execution_options(synchronize_session=False)
        )
    position = _next_position(run)
    if position is None:
        _exhaust(session, run, crisis, reason=N_("every level was paged without an acknowledgement"))
        return True
    run.level, run.cycle = position
    level = run.snapshot["levels"][run.level]
    pages = [Page(run_id=run.id, crisis_id=crisis.id, org_id=run.org_id, user_id=uuid.UUID(person["user_id"]),
                  cycle=run.cycle, level=run.level, status=PageStatus.pending,
                  short_code=f"{secrets.randbelow(10**6):06d}", created_at=now)
             for person in level["people"]]
    session.add_all(pages)
    session.flush()
    for page in pages:
        _enqueue_deliveries(session, page, now)
    run.fence += 1
    run.next_step_at = now + timedelta(minutes=int(level["wait_minutes"]))
    _schedule_step(session, run)
    events.publish(session, f"crisis:{crisis.id}", "paging.level",
                   {"org_id": str(run.org_id), "level": run.level, "cycle": run.cycle, "name": level["name"]})
    return True


def _enqueue_deliveries(session: Session, page: Page, now: datetime) -> None:
    methods = chains.verified_methods(session, page.user_id)
    if not methods:
        page.status = PageStatus.failed
        page.failed_at = now
        session.add(DeliveryAttempt(page_id=page.id, kind=ContactKind.email, hint="—", outcome="failed",
                                    detail="no verified contact method", created_at=now))
    for method in methods:
        if ContactKind(method.kind) == ContactKind.sms and not sms.enabled():
            session.add(DeliveryAttempt(page_id=page.id, method_id=method.id, kind=ContactKind.sms, hint=method.hint,
                                        outcome="skipped", detail="SMS is not configured (RDN_SMS_URL)",
                                        created_at=now))
            continue
        outbox.enqueue(session, "redphone.deliver", {"page_id": str(page.id), "method_id": str(method.id)},
                       dedupe_key=f"deliver:{page.id}:{method.id}", priority=10, org_id=page.org_id)
    events.publish(session, f"user:{page.user_id}", "page.created",
                   {"page_id": str(page.id), "crisis_id": str(page.crisis_id)})


@outbox.handler("redphone.step", priority=5, max_attempts=50)
def _step_job(ctx: outbox.JobContext) -> None:
    step(ctx.session, uuid.UUID(ctx.payload["run_id"]), int(ctx.payload["fence"]))


@outbox.periodic("redphone-watchdog", timedelta(minutes=1))
def _watchdog(ctx: outbox.JobContext) -> None:
    """Re-drive runs whose next step is overdue (its job lost its way, or ran early on a skewed clock)."""
    now = clock.now()
    overdue = ctx.session.scalars(select(EscalationRun).where(
        EscalationRun.status == RunStatus.active, EscalationRun.next_step_at < now - timedelta(seconds=30))).all()
    slot = int(now.timestamp() // 60)
    for run in overdue:
        log.warning("watchdog: run %s is overdue since %s; re-driving it", run.id, run.next_step_at)
        outbox.enqueue(ctx.session, "redphone.step", {"run_id": str(run.id), "fence": run.fence},
                       dedupe_key=f"step:{run.id}:{run.fence}:watchdog:{slot}", priority=5)


def _exhaust(session: Session, run: EscalationRun, crisis: Crisis, *, reason: str) -> None:
    _end(run, RunStatus.exhausted, clock.now())
    org = session.get(Organization, run.org_id)
    audit.record(session, action="paging.exhausted", actor=SYSTEM, object_type="escalation_run",
                 object_id=run.id, org_id=run.org_id, details={"crisis": str(crisis.id), "reason": reason})
    events.publish(session, f"crisis:{crisis.id}", "paging.exhausted", {"org_id": str(run.org_id)})
    events.publish(session, "ops", "paging.exhausted", {"crisis_id": str(crisis.id), "org_id": str(run.org_id)})
    for person in secretariat_contacts(session):
        with i18n.using(person.locale):
            send_email(
                session, to=person.email, priority=10,
                subject=_("Red phone: %(org)s has not answered (%(title)s)", org=org.name if org else "?",
                          title=crisis.title),
                text=_("Nobody in %(org)s's contact chain acknowledged the page for %(title)s (%(reason)s). "
                       "Please reach the government by other means.\n\nCrisis room: %(link)s",
                       org=org.name if org else "?", title=crisis.title, reason=_(reason),
                       link=room_link(crisis)),
                dedupe_key=f"exhausted:{run.id}:{person.id}")


def secretariat_contacts(session: Session) -> list[User]:
    return list(session.scalars(
        select(User).join(Membership, Membership.user_id == User.id).join(Organization)
        .where(Organization.kind == OrgKind.secretariat, Membership.role.in_([Role.admin, Role.senior_official]),
               User.active.is_(True)).distinct()
    ))


# Delivering pages ----------------------------------------------------------------------------------------------


def room_link(crisis: Crisis) -> str:
    return f"{get_settings().base_url}/crises/{crisis.id}"


def ack_token(page_id: uuid.UUID) -> str:
    mac = hmac.new(get_settings().secret_key.encode(), f"rdn-ack:{page_id.hex}".encode(), hashlib.sha256)
    return f"{page_id.hex}.{mac.hexdigest()[:40]}"


def page_from_token(token: str) -> uuid.UUID | None:
    page_hex, _, _mac = token.partition(".")
    try:
        page_id = uuid.UUID(hex=page_hex)
    except ValueError:
        return None
    return page_id if same_secret(ack_token(page_id), token) else None


def ack_link(page_id: uuid.UUID) -> str:
    return f"{get_settings().base_url}/ack/{ack_token(page_id)}"


def page_text(crisis: Crisis, org_name: str, page: Page, wait_minutes: int) -> tuple[str, str, str]:
    """Subject, email text and SMS text of a page, in the current locale."""
    prefix = _("[EXERCISE] ") if crisis.exercise else ""
    subject = prefix + _("RDN red phone: %(title)s — please acknowledge", title=crisis.title)
    text = prefix + _(
        "%(org)s is paged about a crisis in the Resettlement Diplomacy Network.\n\n%(title)s\n"
        "Activation: %(level)s. Region: %(region)s.\n%(summary)s\n\n"
        "Acknowledge now (no sign-in needed): %(ack)s\nOr reply %(code)s to an SMS page.\n"
        "Crisis room (sign-in needed): %(room)s\n\n"
        "If nobody at %(org)s acknowledges within %(wait)s minutes, the next level of your chain is paged.",
        org=org_name, title=crisis.title, level=_(LEVEL_NAMES[ActivationLevel(crisis.activation_level)]),
        region=crisis.region or "—", summary=crisis.summary[:1500], ack=ack_link(page.id), code=page.short_code,
        room=room_link(crisis), wait=wait_minutes)
    sms_text = prefix + _("RDN red phone: %(title)s. Reply %(code)s to acknowledge for %(org)s, or open %(ack)s",
                          title=crisis.title[:60], code=page.short_code, org=org_name, ack=ack_link(page.id))
    return subject, text, sms_text


def _record_attempt(page_id: uuid.UUID, method: dict[str, Any], outcome: str, detail: str, *,
                    session: Session, reference: str | None = None) -> None:
    """Record one delivery attempt and move the page's status, in ``session``."""
    def write(s: Session) -> None:
        now = clock.now()
        s.add(DeliveryAttempt(page_id=page_id, method_id=method["id"], kind=method["kind"], hint=method["hint"],
                              outcome=outcome, detail=detail[:300], reference=reference, created_at=now))
        page = s.get(Page, page_id)
        if page is None:
            return
        if outcome == "sent" and page.status == PageStatus.pending:
            page.status, page.sent_at = PageStatus.sent, now
        elif outcome == "delivered" and page.status in (PageStatus.pending, PageStatus.sent):
            page.status, page.delivered_at = PageStatus.delivered, now
            page.sent_at = page.sent_at or now
        elif outcome == "failed" and page.status == PageStatus.pending:
            page.status, page.failed_at = PageStatus.failed, now

    write(session)


@outbox.handler("redphone.deliver", priority=10, max_attempts=8)
def _deliver_job(ctx: outbox.JobContext) -> None:
    page_id, method_id = uuid.UUID(ctx.payload["page_id"]), uuid.UUID(ctx.payload["method_id"])
    ctx.relaxed = True  # attempts are a record of what was sent: a lost one means an identical resend
    with ctx.read() as s:
        row = s.execute(
            select(Page, EscalationRun, Crisis, User, Organization, ContactMethod)
            .join(EscalationRun, EscalationRun.id == Page.run_id).join(Crisis, Crisis.id == Page.crisis_id)
            .join(User, User.id == Page.user_id).join(Organization, Organization.id == Page.org_id)
            .join(ContactMethod, ContactMethod.id == method_id)
            .where(Page.id == page_id)
        ).first()  # one query for everything a delivery needs: a page goes out fast
        if row is None:
            return
        page, run, crisis, user, org, method = row
        info = {"id": method.id, "kind": ContactKind(method.kind), "hint": method.hint}
        if run.status in (RunStatus.acknowledged, RunStatus.cancelled) or page.status == PageStatus.acknowledged:
            skip = "the page was answered or withdrawn before it went out"
        elif not method.active or method.verified_at is None:
            skip = "the contact method was removed"
        else:
            skip = None
        if skip is None:
            address = method.unseal("address", keyring=Keyring.of(s))
            wait = int(run.snapshot["levels"][page.level]["wait_minutes"])
            page_created = page.created_at  # the email's Date: the same on every attempt
            with i18n.using(user.locale if user else None):
                subject, text, sms_text = page_text(crisis, org.name, page, wait)
        kind = ContactKind(method.kind)
        if skip is None and kind == ContactKind.webhook:
            data = {"page_id": str(page.id), "crisis_id": str(crisis.id), "title": crisis.title,
                    "exercise": crisis.exercise, "recipient": address, "level": page.level, "cycle": page.cycle,
                    "short_code": page.short_code, "ack_url": ack_link(page.id), "room_url": room_link(crisis)}
            results = chains.deliver_to_system_rollback_unsafe(
                s, org_id=page.org_id, event_type="page.created", data=data,
                msg_id=f"msg_page_{page.id.hex}_{method.id.hex[:12]}")
    # The read session is closed: nothing holds a lock while the outside world is called or attempts written.
    if skip is not None:
        _record_attempt(page_id, info, "skipped", skip, session=ctx.session)
        return
    try:
        if kind == ContactKind.email:
            payload = message_payload(message_id=message_id_for(f"page-{page_id.hex}-{method_id.hex[:12]}"),
                                      to=address, subject=subject, text=text, date=page_created,
                                      headers={"X-Priority": "1", "Auto-Submitted": "auto-generated"})
            send_now_rollback_unsafe(build_message(payload))
            _record_attempt(page_id, info, "sent", "handed to the mail server", session=ctx.session)
        elif kind == ContactKind.sms:
            reference = sms.send_rollback_unsafe(address, sms_text, reference=f"page-{page_id.hex[:16]}")
            _record_attempt(page_id, info, "sent", "handed to the SMS provider", reference=reference,
                            session=ctx.session)
        else:
            accepted = [url for url, status in results if isinstance(status, int) and 200 <= status < 300]
            if not results:
                raise outbox.PermanentError("the government has no endpoint taking page.created")
            if not accepted:
                raise outbox.TransientError(f"no endpoint accepted the page: {results}")
            _record_attempt(page_id, info, "delivered", f"accepted by {len(accepted)} endpoint(s)",
                            session=ctx.session)
    except outbox.PermanentError as exc:
        detail = str(exc)
        ctx.on_failure(lambda session: _record_attempt(page_id, info, "failed", detail, session=session))
        raise
    except outbox.TransientError as exc:
        detail = str(exc)
        ctx.on_failure(lambda session: _record_attempt(page_id, info, "retrying", detail, session=session))
        raise


# Acknowledging -------------------------------------------------------------------------------------------------


def current_run(session: Session, crisis_id: uuid.UUID, org_id: uuid.UUID) -> EscalationRun | None:
    return session.scalars(select(EscalationRun).where(EscalationRun.crisis_id == crisis_id,
                                                       EscalationRun.org_id == org_id)
                           .order_by(EscalationRun.round.desc()).limit(1)).first()


def in_chain(run: EscalationRun, user_id: uuid.UUID) -> bool:
    return any(p["user_id"] == str(user_id) for level in run.snapshot["levels"] for p in level["people"])


def acknowledge(session: Session, *, run: EscalationRun, user: User, via: str, actor: Principal | Actor,
                page: Page | None = None) -> tuple[EscalationRun, bool]:
    """End a government's escalation. Returns (the run, whether it had already been acknowledged)."""
    locked = _lock_run(session, run.id)
    assert locked is not None
    run = locked
    if run.status == RunStatus.cancelled:
        newer = current_run(session, run.crisis_id, run.org_id)
        if newer is not None and newer.id != run.id:
            run = _lock_run(session, newer.id) or newer
    if run.status == RunStatus.acknowledged or run.status == RunStatus.cancelled:
        return run, True
    now = clock.now()
    if page is not None and page.status != PageStatus.acknowledged:
        page.status, page.acknowledged_at = PageStatus.acknowledged, now
    _end(run, RunStatus.acknowledged, now)
    run.acknowledged_at, run.acknowledged_by_user_id, run.acknowledged_via = now, user.id, via
    crisis = session.get(Crisis, run.crisis_id)
    org = session.get(Organization, run.org_id)
    assert crisis is not None and org is not None
    audit.record(session, action="page.acknowledge", actor=actor, object_type="escalation_run", object_id=run.id,
                 org_id=run.org_id, details={"crisis": str(crisis.id), "via": via,
                                             "page": str(page.id) if page else None})
    data = {"crisis_id": str(crisis.id), "org_id": str(org.id), "org": org.name, "by": user.full_name,
            "via": via, "at": now.isoformat()}
    events.publish(session, f"crisis:{crisis.id}", "paging.acknowledged", data)
    webhooks.emit(session, org_id=org.id, event_type="page.acknowledged", data=data)
    others = {uuid.UUID(p["user_id"]) for level in run.snapshot["levels"] for p in level["people"]} - {user.id}
    for person in session.scalars(select(User).where(User.id.in_(others), User.active.is_(True))):
        events.publish(session, f"user:{person.id}", "page.acknowledged", data)
        with i18n.using(person.locale):
            send_email(
                session, to=person.email, priority=10, org_id=org.id,
                subject=_("Red phone: %(name)s acknowledged for %(org)s (%(title)s)", name=user.full_name,
                          org=org.name, title=crisis.title),
                text=_("%(name)s acknowledged the red phone page for %(org)s at %(time)s. Paging of %(org)s "
                       "has stopped; you need not answer.\n\nCrisis room: %(link)s",
                       name=user.full_name, org=org.name, time=i18n.format_datetime(now), link=room_link(crisis)),
                dedupe_key=f"acked:{run.id}:{person.id}")
    return run, False


def acknowledge_by_sms(session: Session, *, sender: str, text: str) -> EscalationRun | None:
    """An SMS reply carrying a page's code, from a number of the paged person's, acknowledges it."""
    try:
        sender = sms.normalise_phone(sender)
    except sms.SmsError:
        return None
    codes = {word for word in text.replace(",", " ").split() if word.isdigit() and len(word) == 6}
    if not codes:
        return None
    pages = session.scalars(select(Page).where(Page.short_code.in_(codes), Page.status.in_(OPEN_PAGE))
                            .order_by(Page.created_at.desc()).limit(20)).all()
    ring = Keyring.of(session)
    for page in pages:
        for method in chains.verified_methods(session, page.user_id):
            if ContactKind(method.kind) == ContactKind.sms and method.unseal("address", keyring=ring) == sender:
                run = session.get(EscalationRun, page.run_id)
                user = session.get(User, page.user_id)
                assert run is not None and user is not None
                acknowledged, _already = acknowledge(session, run=run, user=user, via="sms",
                                                     actor=Actor(f"sms:{method.hint}", user.id), page=page)
                return acknowledged
    return None


def sms_receipt(session: Session, *, reference: str, status: str) -> bool:
    attempt = session.scalars(select(DeliveryAttempt).where(DeliveryAttempt.reference == reference)
                              .order_by(DeliveryAttempt.created_at.desc()).limit(1)).first()
    if attempt is None or status not in ("delivered", "failed"):
        return False
    method = {"id": attempt.method_id, "kind": ContactKind(attempt.kind), "hint": attempt.hint}
    _record_attempt(attempt.page_id, method, status, f"receipt from the SMS provider: {status}", reference=reference,
                    session=session)
    return True

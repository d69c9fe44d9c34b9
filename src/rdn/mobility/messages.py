"""Emails to registrants, through the outbox, without their address leaving the sealed contact.

A queued job names the registration, not the address: the worker opens the sealed contact when it sends, so the
outbox (which keeps delivered jobs for a while) never holds a registrant's email address in clear, and nothing
goes out if the registrant withdrew, was merged into another registration, or took back consent to be contacted
since the message was queued. (SMS works the same way: ``rdn.mobility.appointments.queue_sms``.)
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from rdn.core import outbox
from rdn.core.mail import (
    EmailError,
    build_message,
    check_address,
    message_id_for,
    message_payload,
    send_now_rollback_unsafe,
)
from rdn.db import new_id
from rdn.mobility import sealed
from rdn.mobility.models import Registration, RegistrationStatus

PLACEHOLDER = "registrant@rdn.invalid"
#: Registrations that are no longer written to.
SILENT = frozenset({RegistrationStatus.withdrawn, RegistrationStatus.merged})


def email_registrant(session: Session, registration: Registration, *, subject: str, text: str,
                     attachments: list[dict[str, Any]] | None = None, dedupe_key: str | None = None) -> outbox.Job:
    """Queue an email to the registrant (whether it goes is decided when it is sent)."""
    job_id = new_id()
    payload = message_payload(message_id=message_id_for(job_id.hex), to=PLACEHOLDER, subject=subject, text=text,
                              attachments=attachments)
    payload["to"] = []  # filled in by the worker, from the sealed contact
    payload["registration_id"] = str(registration.id)
    return outbox.enqueue(session, "mobility.email", payload, job_id=job_id, org_id=registration.org_id,
                          dedupe_key=dedupe_key)


def address_of(session: Session, registration: Registration) -> str:
    """The registrant's email address, if they may be written to now (else "")."""
    if registration.consent_contact is None or registration.status in SILENT:
        return ""
    return str(sealed.contact_of(session, registration).get("email") or "").strip()


@outbox.handler("mobility.email", priority=100)
def _email_job(ctx: outbox.JobContext) -> None:
    with ctx.read() as session:
        registration = session.get(Registration, uuid.UUID(ctx.payload["registration_id"]))
        to = address_of(session, registration) if registration is not None else ""
    if not to:
        return  # withdrawn, merged, consent taken back or the address removed since the message was queued
    try:
        check_address(to, "to")
    except EmailError as exc:
        raise outbox.PermanentError("the registration's email address cannot be written to") from exc
    send_now_rollback_unsafe(build_message({**ctx.payload, "to": [to]}))

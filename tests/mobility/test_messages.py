"""Emails to registrants: the outbox holds the registration, not the address, which is opened from the sealed
contact when the message is sent; nothing goes to someone who withdrew, was merged or took back consent."""

from __future__ import annotations

from sqlalchemy import select

from rdn.core import outbox
from rdn.core.outbox import Job
from rdn.mobility import messages, sealed
from rdn.mobility.models import RegistrationStatus
from tests.factories import mail_text


def _queue(w, registration, subject: str = "Hola") -> Job:
    job = messages.email_registrant(w.session, registration, subject=subject, text="Texto de prueba",
                                    attachments=[{"filename": "a.ics", "content_type": "text/calendar",
                                                  "data": b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"}])
    w.session.commit()
    return job


def test_the_email_reaches_the_registrant_with_no_address_kept_in_the_outbox(mobility_world, mailbox):
    w = mobility_world
    registration = w.registration(email="rosa@example.org")
    job = _queue(w, registration)
    stored = w.session.scalars(select(Job).where(Job.id == job.id)).one()
    assert stored.kind == "mobility.email" and stored.payload["to"] == []
    assert "rosa@example.org" not in repr(stored.payload)
    outbox.Worker().run_until_idle()
    [msg] = mailbox.to("rosa@example.org")
    assert msg["Subject"] == "Hola" and "Texto de prueba" in mail_text(msg)
    assert [p.get_filename() for p in msg.walk() if p.get_filename()] == ["a.ics"]


def test_nothing_goes_to_those_who_withdrew_were_merged_or_took_back_consent(mobility_world, mailbox):
    w = mobility_world
    withdrawn, merged, silent, changed = (w.registration(email=f"p{n}@example.org") for n in range(4))
    for registration in (withdrawn, merged, silent, changed):
        _queue(w, registration)
    # After queueing, before sending: each situation changes.
    withdrawn.status = RegistrationStatus.withdrawn
    merged.status = RegistrationStatus.merged
    silent.consent_contact = None
    sealed.seal_contact(w.session, changed, {"phone": "", "email": "new@example.org", "whatsapp": ""})
    w.session.commit()
    outbox.Worker().run_until_idle()
    assert mailbox.to("p0@example.org") == mailbox.to("p1@example.org") == mailbox.to("p2@example.org") == []
    assert mailbox.to("p3@example.org") == [] and len(mailbox.to("new@example.org")) == 1  # the address now


def test_a_malformed_stored_address_is_a_permanent_failure_not_a_retry_loop(mobility_world, mailbox):
    w = mobility_world
    registration = w.registration()
    sealed.seal_contact(w.session, registration, {"phone": "", "email": "not an address\r\nBcc: x@y.z",
                                                  "whatsapp": ""})
    job = _queue(w, registration)
    outbox.Worker().run_until_idle()
    w.session.expire_all()
    assert w.session.get(Job, job.id).status == outbox.JobStatus.dead
    assert mailbox.messages == []

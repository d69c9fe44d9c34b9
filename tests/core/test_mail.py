"""Email through the outbox, delivered to a real SMTP server (aiosmtpd in this process)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.utils import format_datetime

import pytest
from aiosmtpd.controller import Controller

from rdn.config import load_settings, set_settings
from rdn.core import clock, mail, outbox
from rdn.core.outbox import Job, JobStatus
from tests.conftest import free_port, rdn_environ

T0 = datetime(2026, 11, 28, 14, 30, tzinfo=UTC)

ICS = (
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//RDN//tests//EN\r\nBEGIN:VEVENT\r\n"
    b"UID:bravo-1@rdn.test\r\nDTSTAMP:20261128T143000Z\r\nDTSTART:20261201T090000Z\r\n"
    b"SUMMARY:Caf\xc3\xa9 briefing\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


@pytest.fixture(autouse=True)
def _no_kept_smtp_connection() -> Iterator[None]:
    """The delivery code keeps one SMTP connection per thread; start and end each test without one so that
    the settings a test switches to are the ones used."""
    mail._drop_connection()
    yield
    mail._drop_connection()


@pytest.fixture
def switch_settings(settings):  # type: ignore[no-untyped-def]
    """Switch to settings built from the test environment plus overrides; the originals come back after."""

    def switch(**extra: str) -> None:
        mail._drop_connection()
        set_settings(load_settings(environ=rdn_environ(settings.database_url, settings.smtp_port, **extra)))

    yield switch
    mail._drop_connection()
    set_settings(settings)


def fresh(session, job_id) -> Job:  # type: ignore[no-untyped-def]
    session.expire_all()
    job = session.get(Job, job_id)
    assert job is not None
    return job


def test_send_email_delivers_over_smtp(session, mailbox):
    with clock.frozen(T0):
        job = mail.send_email(
            session, to=["ada@rdn.test", "Bob Example <bob@rdn.test>"], subject="Briefing on Tuesday",
            text="Plain text body\n", html="<p>HTML <b>body</b></p>",
            attachments=[{"filename": "briefing.ics", "content_type": "text/calendar", "data": ICS}],
        )
        session.commit()
        message_id = job.payload["message_id"]
        assert message_id.startswith("<") and message_id.endswith("@rdn.example>")
        assert mailbox.messages == []  # nothing leaves before the worker runs
        clock.advance(timedelta(minutes=3))  # delivered later: the Date is when it was written
        outbox.Worker().run_until_idle()

    assert len(mailbox.messages) == 1
    msg = mailbox.messages[0]
    assert msg["To"] == "ada@rdn.test, Bob Example <bob@rdn.test>"
    assert msg["Subject"] == "Briefing on Tuesday"
    assert msg["Date"] == format_datetime(T0)
    assert msg["Message-ID"] == message_id
    assert "no-reply@rdn.example" in msg["From"]

    parts = {}
    attachments = []
    for part in msg.walk():
        if part.get_content_disposition() == "attachment":
            attachments.append(part)
        elif part.get_content_type() in ("text/plain", "text/html"):
            parts[part.get_content_type()] = part.get_payload(decode=True).decode(part.get_content_charset())
    assert parts["text/plain"].replace("\r\n", "\n") == "Plain text body\n"  # SMTP lines end in CRLF
    assert "<p>HTML <b>body</b></p>" in parts["text/html"]
    assert len(attachments) == 1
    assert attachments[0].get_filename() == "briefing.ics"
    assert attachments[0].get_content_type() == "text/calendar"
    assert attachments[0].get_payload(decode=True) == ICS
    assert fresh(session, job.id).status == JobStatus.done


def test_rolled_back_email_is_never_sent(session, mailbox):
    mail.send_email(session, to="ada@rdn.test", subject="Never", text="x")
    session.rollback()
    outbox.Worker().run_until_idle()
    assert mailbox.messages == []


def test_unreachable_server_is_transient_then_one_delivery_with_the_same_message_id(session, mailbox,
                                                                                   switch_settings, settings):
    with clock.frozen(T0):
        job = mail.send_email(session, to="ada@rdn.test", subject="Eventually", text="hello")
        session.commit()
        message_id = job.payload["message_id"]

        switch_settings(RDN_SMTP_PORT=str(free_port()), RDN_SMTP_TIMEOUT_SECONDS="2")  # nobody listens there
        outbox.Worker().run_until_idle()
        row = fresh(session, job.id)
        assert row.status == JobStatus.pending
        assert row.attempts == 1
        assert row.last_error.startswith("transient: SMTP server unreachable")
        assert row.run_at > clock.now()
        assert mailbox.messages == []

        set_settings(settings)  # the server is back
        mail._drop_connection()
        outbox.Worker().run_until_idle()
        assert mailbox.messages == []  # still backing off

        clock.advance(timedelta(minutes=5))
        outbox.Worker().run_until_idle()
        outbox.Worker().run_until_idle()

    assert len(mailbox.messages) == 1
    assert mailbox.messages[0]["Message-ID"] == message_id
    assert mailbox.messages[0]["Date"] == format_datetime(T0)
    row = fresh(session, job.id)
    assert row.status == JobStatus.done
    assert row.attempts == 2


class _Refusing:
    """An SMTP server that refuses one recipient with 550 and accepts everything else."""

    def __init__(self, refused: str) -> None:
        self.refused = refused
        self.rcpt_attempts: list[str] = []
        self.delivered: list[bytes] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        self.rcpt_attempts.append(address)
        if address == self.refused:
            return "550 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.delivered.append(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


@pytest.fixture
def refusing_server(switch_settings) -> Iterator[_Refusing]:  # type: ignore[no-untyped-def]
    handler = _Refusing("ghost@rdn.test")
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    switch_settings(RDN_SMTP_PORT=str(port))
    try:
        yield handler
    finally:
        mail._drop_connection()
        controller.stop()


def test_refused_recipient_is_permanent_and_not_retried(session, refusing_server):
    with clock.frozen(T0):
        ok = mail.send_email(session, to="real@rdn.test", subject="Fine", text="hello")
        bad = mail.send_email(session, to="ghost@rdn.test", subject="Nobody", text="hello")
        session.commit()
        outbox.Worker().run_until_idle()

        row = fresh(session, bad.id)
        assert row.status == JobStatus.dead
        assert row.attempts == 1
        assert row.last_error.startswith("permanent:")
        assert "550" in row.last_error
        assert fresh(session, ok.id).status == JobStatus.done

        clock.advance(timedelta(days=1))
        outbox.Worker().run_until_idle()

    assert refusing_server.rcpt_attempts.count("ghost@rdn.test") == 1
    assert len(refusing_server.delivered) == 1
    assert message_from_bytes(refusing_server.delivered[0])["Message-ID"] == ok.payload["message_id"]
    assert fresh(session, bad.id).attempts == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        pytest.param({"to": "ada@rdn.test", "subject": "Hello\r\nBcc: victim@rdn.test"}, "subject", id="crlf-subject"),
        pytest.param({"to": "ada@rdn.test", "subject": "Hello\nthere"}, "subject", id="lf-subject"),
        pytest.param({"to": "not an address", "subject": "Hello"}, "to", id="not-an-address"),
        pytest.param({"to": ["ada@rdn.test", "nobody"], "subject": "Hello"}, "to", id="one-bad-of-two"),
        pytest.param({"to": "ada@rdn.test\r\nBcc: victim@rdn.test", "subject": "Hello"}, "to", id="crlf-to"),
        pytest.param({"to": [], "subject": "Hello"}, "to", id="no-recipient"),
        pytest.param({"to": "ada@rdn.test, eve@rdn.test", "subject": "Hello"}, "to", id="two-addresses-in-one"),
        pytest.param({"to": "ada@rdn.test", "subject": "Hello", "reply_to": "nope"}, "reply_to", id="reply-to"),
        pytest.param({"to": "ada@rdn.test", "subject": "Hello", "headers": {"X-Tag": "a\r\nBcc: victim@rdn.test"}},
                     "headers", id="crlf-header"),
    ],
)
def test_invalid_input_is_refused_naming_the_field(session, kwargs, field):
    with pytest.raises(mail.EmailError) as caught:
        mail.send_email(session, text="body", **kwargs)
    assert str(caught.value).startswith(f"{field}:")
    session.commit()
    assert outbox.counts(session)["pending"] == 0


def test_files_transport_writes_one_eml_per_message_id(session, switch_settings, tmp_path, mailbox):
    switch_settings(RDN_MAIL_TRANSPORT="files", RDN_MAIL_DIR=str(tmp_path))
    first = mail.send_email(session, to="ada@rdn.test", subject="First", text="one",
                            attachments=[{"filename": "a.ics", "content_type": "text/calendar", "data": ICS}])
    session.commit()
    outbox.Worker().run_until_idle()

    files = sorted(tmp_path.glob("*.eml"))
    assert len(files) == 1
    written = message_from_bytes(files[0].read_bytes())
    assert written["Message-ID"] == first.payload["message_id"]
    assert written["Subject"] == "First"
    name = files[0].name

    # The same message again (a job run twice) overwrites its file.
    row = fresh(session, first.id)
    assert row.status == JobStatus.done
    outbox.retry(session, row)
    session.commit()
    outbox.Worker().run_until_idle()
    assert fresh(session, first.id).attempts == 1
    files = sorted(tmp_path.glob("*.eml"))
    assert len(files) == 1
    assert files[0].name == name
    assert message_from_bytes(files[0].read_bytes())["Message-ID"] == first.payload["message_id"]
    assert list(tmp_path.glob("*.tmp")) == []

    # Another message gets a file of its own.
    second = mail.send_email(session, to="bob@rdn.test", subject="Second", text="two")
    session.commit()
    outbox.Worker().run_until_idle()
    ids = {message_from_bytes(f.read_bytes())["Message-ID"] for f in tmp_path.glob("*.eml")}
    assert ids == {first.payload["message_id"], second.payload["message_id"]}
    assert mailbox.messages == []  # nothing went over SMTP

"""Email through the outbox.

``send_email`` only enqueues; the worker delivers over SMTP after the caller's transaction commits. The
Message-ID is fixed when the email is enqueued, so a delivery repeated after a worker crash is the same
message (mail stores and clients recognise it), never a second, different one.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import smtplib
import ssl
import threading
import uuid
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, parseaddr
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from rdn.config import get_settings
from rdn.core import clock, outbox
from rdn.db import new_id


class EmailError(ValueError):
    """An email that cannot be sent as given (the message names the field)."""


PROTECTED_HEADERS = frozenset({
    "from", "to", "cc", "bcc", "subject", "date", "message-id", "reply-to", "sender", "return-path",
    "content-type", "content-transfer-encoding", "mime-version",
})
_HEADER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,75}$")


def check_address(address: str, field: str) -> str:
    """One address per entry (a comma must not smuggle in a second recipient), no line breaks."""
    if not isinstance(address, str) or any(c in address for c in "\r\n"):
        raise EmailError(f"{field}: {address!r} is not an email address")
    found = getaddresses([address])
    if len(found) != 1 or "@" not in found[0][1] or found[0][1] != parseaddr(address)[1]:
        raise EmailError(f"{field}: {address!r} is not one email address")
    return address


def _check_headers(headers: dict[str, str]) -> dict[str, str]:
    for name, value in headers.items():
        if not _HEADER_NAME.match(name) or name.lower() in PROTECTED_HEADERS:
            raise EmailError(f"headers: {name!r} cannot be set")
        if not isinstance(value, str) or any(c in value for c in "\r\n"):
            raise EmailError(f"headers: the value of {name} must be one line")
    return headers


def message_payload(
    *,
    message_id: str,
    to: list[str] | str,
    subject: str,
    text: str,
    html: str | None = None,
    reply_to: str | None = None,
    attachments: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    date: datetime | None = None,
) -> dict[str, Any]:
    """A checked, JSON-serialisable email (what an email job carries). ``message_id`` fixes its identity and
    ``date`` its Date header (now, by default): building the payload again with the same values gives the
    same message, byte for byte, so a repeat is recognisable."""
    recipients = [to] if isinstance(to, str) else list(to)
    if not recipients:
        raise EmailError("to: at least one recipient is needed")
    for address in recipients:
        check_address(address, "to")
    if reply_to:
        check_address(reply_to, "reply_to")
    if any(c in subject for c in "\r\n"):
        raise EmailError("subject: must be one line")
    return {
        "message_id": message_id,
        "date": format_datetime(date or clock.now()),
        "to": recipients,
        "subject": subject,
        "text": text,
        "html": html,
        "reply_to": reply_to,
        "headers": _check_headers(dict(headers or {})),
        "attachments": [
            {"filename": a["filename"], "content_type": a.get("content_type", "application/octet-stream"),
             "data": base64.b64encode(a["data"]).decode()}
            for a in attachments or []
        ],
    }


def message_id_for(key: str) -> str:
    """A Message-ID derived from a stable key (a job id, a page and a contact method)."""
    domain = parseaddr(get_settings().mail_from)[1].rpartition("@")[2] or "rdn.example"
    return f"<{key}@{domain}>"


def send_email(
    session: Session,
    *,
    to: list[str] | str,
    subject: str,
    text: str,
    html: str | None = None,
    reply_to: str | None = None,
    attachments: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    org_id: uuid.UUID | None = None,
    priority: int | None = None,
    dedupe_key: str | None = None,
) -> outbox.Job:
    """Enqueue an email in the caller's transaction.

    ``attachments``: ``[{"filename": ..., "content_type": "text/calendar", "data": bytes}]``.
    """
    job_id = new_id()
    payload = message_payload(message_id=message_id_for(job_id.hex), to=to, subject=subject, text=text, html=html,
                              reply_to=reply_to, attachments=attachments, headers=headers)
    return outbox.enqueue(session, "email", payload, job_id=job_id, org_id=org_id, priority=priority,
                          dedupe_key=dedupe_key)


def build_message(payload: dict[str, Any]) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = get_settings().mail_from
    msg["To"] = ", ".join(payload["to"])
    msg["Subject"] = payload["subject"]
    msg["Date"] = payload["date"]
    msg["Message-ID"] = payload["message_id"]
    if payload.get("reply_to"):
        msg["Reply-To"] = payload["reply_to"]
    for name, value in (payload.get("headers") or {}).items():
        msg[name] = value
    msg.set_content(payload["text"])
    if payload.get("html"):
        msg.add_alternative(payload["html"], subtype="html")
    for att in payload.get("attachments") or []:
        maintype, _, subtype = att["content_type"].partition("/")
        msg.add_attachment(base64.b64decode(att["data"]), maintype=maintype, subtype=subtype or "octet-stream",
                           filename=att["filename"])
    return msg


# Delivery ----------------------------------------------------------------------------------------------------

_local = threading.local()


def _connect() -> smtplib.SMTP:
    s = get_settings()
    timeout = s.smtp_timeout_seconds
    if s.smtp_security == "tls":
        conn: smtplib.SMTP = smtplib.SMTP_SSL(s.smtp_host, s.smtp_port, timeout=timeout,
                                              context=ssl.create_default_context())
    else:
        conn = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=timeout)
        if s.smtp_security == "starttls":
            conn.starttls(context=ssl.create_default_context())
    if s.smtp_username:
        conn.login(s.smtp_username, s.smtp_password)
    return conn


def _drop_connection() -> None:
    conn = getattr(_local, "conn", None)
    _local.conn = None
    if conn is not None:
        with contextlib.suppress(Exception):  # closing a broken connection
            conn.close()


def deliver_rollback_unsafe(msg: EmailMessage) -> None:
    """Hand one message to the SMTP server, reusing this thread's connection. Talks to the outside world:
    never call it inside a transaction that may still roll back."""
    for attempt in (1, 2):
        conn = getattr(_local, "conn", None)
        try:
            if conn is None:
                conn = _local.conn = _connect()
            refused = conn.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            # The codes, never the addresses (operators read these errors; addresses are personal data).
            codes = sorted(code for code, _ in exc.recipients.values())
            if all(500 <= c < 600 for c in codes):
                raise outbox.PermanentError(f"{len(codes)} recipient(s) refused: SMTP {codes}") from exc
            raise outbox.TransientError(f"{len(codes)} recipient(s) deferred: SMTP {codes}") from exc
        except smtplib.SMTPResponseException as exc:
            _drop_connection()
            if 500 <= exc.smtp_code < 600 and exc.smtp_code not in (503, 554):
                raise outbox.PermanentError(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from exc
            raise outbox.TransientError(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from exc
        except (TimeoutError, smtplib.SMTPServerDisconnected, ConnectionError, OSError) as exc:
            _drop_connection()
            if attempt == 1 and conn is not None:
                continue  # the kept connection had gone stale: one fresh try
            raise outbox.TransientError(f"SMTP server unreachable: {exc}") from exc
        if refused:
            raise outbox.PermanentError(f"{len(refused)} recipient(s) refused: SMTP "
                                        f"{sorted(code for code, _ in refused.values())}")
        return


def write_file_rollback_unsafe(msg: EmailMessage) -> Path:
    """The "files" transport: one .eml file per message, named by its Message-ID (a repeat overwrites it)."""
    folder = Path(get_settings().mail_dir)
    folder.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(str(msg["Message-ID"]).encode()).hexdigest()[:24] + ".eml"
    tmp = folder / (name + ".tmp")
    tmp.write_bytes(msg.as_bytes())
    tmp.replace(folder / name)
    return folder / name


def send_now_rollback_unsafe(msg: EmailMessage) -> None:
    """Hand a message to the configured transport (SMTP, or files). Talks to the outside world."""
    if get_settings().mail_transport == "files":
        write_file_rollback_unsafe(msg)
    else:
        deliver_rollback_unsafe(msg)


@outbox.handler("email", priority=100)
def _email_job(ctx: outbox.JobContext) -> None:
    send_now_rollback_unsafe(build_message(ctx.payload))


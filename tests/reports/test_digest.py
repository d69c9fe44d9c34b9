"""The weekly digest: each member government's senior officials get one email a week with their government's and
the network's figures, through the outbox to a real SMTP server, in their own language; the daily job running
again and again in the same week sends nothing more; the next week sends again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header
from email.message import Message

from sqlalchemy import select

from rdn.core import clock, outbox
from rdn.core.tenancy import Membership, Role
from rdn.reports import figures, service
from tests.factories import mail_text

MONDAY = datetime(2031, 3, 3, 7, tzinfo=UTC)  # a Monday


def subject(msg: Message) -> str:
    return str(make_header(decode_header(msg["Subject"])))


def digests(mailbox, address: str) -> list[Message]:  # type: ignore[no-untyped-def]
    return [m for m in mailbox.to(address) if "RDN" in subject(m) and "2031-W" in subject(m)]


def run_jobs() -> int:
    return outbox.Worker().run_until_idle(periodic=True)


def test_each_senior_official_gets_one_digest_a_week(session, network, mailbox) -> None:  # type: ignore[no-untyped-def]
    spain = network.orgs["spain"]
    network.people["minister_spain"].locale = "es"
    # Canada gets a senior official too; its officer (not a senior official) gets nothing.
    session.add(Membership(user_id=network.people["admin_canada"].id, org_id=network.orgs["canada"].id,
                           role=Role.senior_official))
    session.commit()
    officials = {"minister_spain@rdn.test", "minister_germany@rdn.test", "admin_canada@rdn.test"}
    with clock.frozen(MONDAY):
        run_jobs()
        for _ in range(3):  # the job runs every day; the rest of the week sends nothing more
            clock.advance(timedelta(days=1, minutes=1))
            run_jobs()
        for address in officials:
            assert len(digests(mailbox, address)) == 1, address
        assert digests(mailbox, "officer_canada@rdn.test") == []
        assert digests(mailbox, "caseworker_unhcr@rdn.test") == []
        # The figures are the government's picture; Spain's minister reads it in Spanish.
        mine = service.picture(session, period=figures.year_period(2031), government=spain.id)
        body = mail_text(digests(mailbox, "minister_spain@rdn.test")[0])
        assert "/reports/members/spain" in body
        assert str(mine["headline"]["places"]) in body
        assert "Spain" in subject(digests(mailbox, "minister_spain@rdn.test")[0])
        jobs = session.scalars(select(outbox.Job).where(outbox.Job.dedupe_key.like("reports.digest:%"))).all()
        assert len(jobs) == 3 and all(j.status == outbox.JobStatus.done for j in jobs)

    with clock.frozen(MONDAY + timedelta(days=7, hours=1)):  # the next week: again, once
        run_jobs()
        run_jobs()
        for address in officials:
            assert len(digests(mailbox, address)) == 2, address


def test_a_government_without_senior_officials_gets_none(session, network, mailbox) -> None:  # type: ignore[no-untyped-def]
    with clock.frozen(MONDAY + timedelta(days=21)):
        assert service.send_digests(session) == 2  # Spain's and Germany's ministers
        assert service.send_digests(session) == 0  # the same week: nothing more
        session.commit()
        run_jobs()
    assert digests(mailbox, "admin_canada@rdn.test") == []

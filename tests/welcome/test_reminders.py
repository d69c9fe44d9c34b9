"""Overdue services: the reminder and the notice to the staff go through the outbox to a real SMTP server, once
each, however often the periodic job runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header
from email.message import Message

from rdn.core import clock, outbox
from rdn.welcome import service
from tests.factories import mail_text
from tests.welcome.conftest import WelcomeWorld

ARRIVAL = "2030-03-10"


def run_jobs() -> int:
    return outbox.Worker().run_until_idle(periodic=True)


def subject(msg: Message) -> str:
    return str(make_header(decode_header(msg["Subject"])))


def overdue(mailbox, address: str) -> list[Message]:  # type: ignore[no-untyped-def]
    return [m for m in mailbox.to(address) if subject(m).startswith("Overdue: ")]


def late(mailbox, address: str) -> list[Message]:  # type: ignore[no-untyped-def]
    return [m for m in mailbox.to(address) if subject(m).startswith("A sponsor group is late")]


def test_overdue_reminders_reach_the_group_once_and_the_staff_once(ww: WelcomeWorld, mailbox) -> None:
    s = ww.session
    with clock.frozen(datetime(2030, 3, 1, 9, tzinfo=UTC)):
        match, _case = ww.active_match()
        service.set_arrival(s, actor=ww.p("officer_canada"), match=match, arrival_on=ARRIVAL,
                            notice={"flight": "AC 849", "airport": "YOW"})
        s.commit()
        run_jobs()
        notice = [m for m in mailbox.to("circle@maple.test") if subject(m) == "Arrival notice"]
        assert len(notice) == 1 and "AC 849" in mail_text(notice[0])
        assert overdue(mailbox, "circle@maple.test") == []  # nothing is due before the arrival

    with clock.frozen(datetime(2030, 3, 12, 9, tzinfo=UTC)):
        airport = next(t for t in service.tasks_of(s, match) if t.code == "airport")
        service.update_task(s, actor=ww.p("sponsor_group_a"), match=match, task=airport,
                            changes={"done_on": ARRIVAL, "evidence": "Met at the gate"})
        s.commit()
        run_jobs()
        for _ in range(3):  # the periodic job runs again and again (each hour): nothing more is sent
            clock.advance(timedelta(hours=1, minutes=1))
            run_jobs()
        reminders = overdue(mailbox, "circle@maple.test")
        # Housing (due on arrival) and the first meal (the day after) are overdue; the airport was done.
        assert sorted(subject(m) for m in reminders) == [
            "Overdue: A first meal, groceries and seasonal clothing", "Overdue: Housing secured and furnished"]
        assert late(mailbox, "officer_canada@rdn.test") == []

    with clock.frozen(datetime(2030, 3, 18, 9, tzinfo=UTC)):  # housing: a week past its date
        run_jobs()
        clock.advance(timedelta(hours=1, minutes=1))
        run_jobs()
        staff = late(mailbox, "officer_canada@rdn.test")
        assert len(staff) == 1 and "Housing secured and furnished" in mail_text(staff[0])
        assert len(late(mailbox, "admin_canada@rdn.test")) == 1  # the same message, to both
        assert len(overdue(mailbox, "circle@maple.test")) == 4  # + contacts and interpretation (due the 12th)

"""Public registration as a service: eligibility, checking what is sent, storing (sealed, keyed, screened),
duplicates and their merge, finding one's registration with the reference and PIN (and the lockout), the emailed
link, changing contact details and withdrawing."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text

from rdn.core import clock, policy
from rdn.core.audit import AuditEntry
from rdn.core.errors import Conflict, TooManyRequests, ValidationFailed
from rdn.core.outbox import Job
from rdn.mobility import registration, sealed
from rdn.mobility.models import Registration, RegistrationStatus, RuleStatus, ScreeningRule, Slot
from rdn.mobility.public_i18n import using


def add_rule(session, office, name="Spain resettlement", destination="ES", conditions=None, questions=None):
    rule = ScreeningRule(office_id=office.id, name=name, destination=destination,
                         conditions=conditions if conditions is not None else
                         [{"field": "nationality", "op": "in", "value": ["VE", "NI"]}],
                         questions=questions or [], status=RuleStatus.active)
    session.add(rule)
    session.flush()
    return rule


def form(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "given_name": "José Luis", "family_name": "Pérez Ávila", "birth_date": "1988-02-03", "sex": "m",
        "nationality": "VE", "arrived_on": "2023-01-15",
        "members": [{"relationship": "child", "given_name": "Ana", "family_name": "Pérez",
                     "birth_date": "2015-07-01", "sex": "f", "nationality": ""}],
        "ties": ["ES"], "phone": "+506 8888 0000", "email": "jose@example.org", "whatsapp": "",
        "consent_screening": True, "consent_contact": True, "consent_share": False, "language": "es",
    }
    data.update(over)
    return data


def count(session) -> int:
    return session.scalar(select(func.count()).select_from(Registration))


# Eligibility -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("office", "nationality", "arrived_on", "accepting", "eligible", "says"), [
    ("cr", "VE", date(2023, 6, 12), True, True, None),  # on the cut-off day
    ("cr", "NI", date(2020, 1, 1), True, True, None),
    ("cr", "VE", date(2023, 6, 13), True, False, "June 12, 2023"),  # a day late
    ("cr", "CU", date(2022, 1, 1), True, False, "Nicaragua and Venezuela"),
    ("co", "CU", date(2023, 6, 11), True, True, None),
    ("co", "HT", date(2023, 6, 12), True, False, "June 11, 2023"),
    ("co", "NI", date(2023, 6, 12), True, False, "Cuba, Haiti, and Venezuela"),  # and late: two reasons
    ("cr", "VE", date(2023, 1, 1), False, False, "not taking new registrations"),
])
def test_eligibility_table(mobility_world, office, nationality, arrived_on, accepting, eligible, says):
    o = mobility_world.offices[office]
    o.accepting = accepting
    with using("en"):
        result = registration.eligibility(o, nationality, arrived_on)
    assert result.eligible is eligible
    if says:
        assert any(says in r for r in result.reasons), result.reasons
    else:
        assert result.reasons == []
    if office == "co" and nationality == "NI":
        assert len(result.reasons) == 2
    assert result.elsewhere == o.elsewhere


def test_eligibility_reasons_in_the_registrants_language(mobility_world):
    with using("es"):
        result = registration.eligibility(mobility_world.offices["cr"], "CU", date(2024, 1, 1))
    assert any("Nicaragua" in r and "Venezuela" in r for r in result.reasons)
    assert all("This office" not in r for r in result.reasons)


def test_an_office_open_to_any_nationality_and_any_date(mobility_world):
    o = mobility_world.offices["co"]
    o.nationalities, o.presence_cutoff = [], None
    assert registration.eligibility(o, "AF", date(2026, 1, 1)).eligible


# Cleaning ----------------------------------------------------------------------------------------------------


def errors_of(office, data) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as exc:
        registration.clean(office, data)
    return {e.field: e.message for e in exc.value.errors}


def test_clean_accepts_a_household_and_fills_defaults(mobility_world, frozen_now):
    out = registration.clean(mobility_world.offices["cr"], form(ties=["Spain", "ES", "Canadá"]))
    assert out["birth_date"] == date(1988, 2, 3) and out["nationality"] == "VE"
    assert out["members"][0]["nationality"] == "VE"  # empty: the same as the principal's
    assert out["ties"] == ["ES", "CA"]  # names in any language, once each
    assert out["phone"] == "+50688880000"


def test_clean_names_every_wrong_field(mobility_world, frozen_now):
    errors = errors_of(mobility_world.offices["cr"], form(
        given_name="", birth_date="2030-01-01", sex="q", nationality="XX", arrived_on="yesterday",
        members=[{"relationship": "child", "given_name": "Ana", "birth_date": "not a date"},
                 {}, {"relationship": "cousin", "given_name": "B4d", "birth_date": "2010-01-01"}],
        email="not-an-email", phone="12", consent_screening=False, language="de"))
    assert set(errors) >= {"given_name", "birth_date", "sex", "nationality", "arrived_on", "members[0].birth_date",
                           "members[2].relationship", "members[2].given_name", "email", "phone",
                           "consent_screening", "language"}
    assert "members[1].given_name" not in errors  # an empty row is no one


def test_clean_needs_a_contact_only_with_consent_to_contact(mobility_world, frozen_now):
    office = mobility_world.offices["cr"]
    assert "phone" in errors_of(office, form(phone="", email="", whatsapp=""))
    out = registration.clean(office, form(phone="", email="", whatsapp="", consent_contact=False))
    assert out["consent_contact"] is False


def test_clean_answers_are_typed(mobility_world, frozen_now):
    questions = [{"key": "worked_abroad", "type": "yes_no", "text": {"en": "?"}},
                 {"key": "years", "type": "number", "text": {"en": "?"}},
                 {"key": "trade", "type": "choice", "text": {"en": "?"}, "choices": ["nurse", "welder"]}]
    office = mobility_world.offices["cr"]
    out = registration.clean(office, form(answers={"worked_abroad": "yes", "years": "4", "trade": "nurse",
                                                   "unknown": "x"}), questions=questions)
    assert out["answers"] == {"worked_abroad": True, "years": 4, "trade": "nurse"}
    with pytest.raises(ValidationFailed) as exc:
        registration.clean(office, form(answers={"worked_abroad": "maybe", "years": [1], "trade": "pilot"}),
                           questions=questions)
    assert {e.field for e in exc.value.errors} == {"answers.worked_abroad", "answers.years", "answers.trade"}


# Registering -------------------------------------------------------------------------------------------------


def test_register_stores_sealed_names_keys_and_screening(mobility_world, session, frozen_now):
    office = mobility_world.offices["cr"]
    add_rule(session, office)
    add_rule(session, office, name="Canada labour", destination="CA",
             conditions=[{"field": "answer.trade", "op": "is_true"}])
    done = registration.register(session, office=office, data=form(), language="es", ip="10.0.0.1")
    reg = done.registration
    assert sealed.REFERENCE.match(reg.reference) and reg.reference.startswith("SM-CR-")
    assert len(done.pin) == 6 and sealed.pin_matches(reg, done.pin)
    assert reg.status == RegistrationStatus.screened  # qualifies for one rule of two
    assert reg.household_size == 2 and reg.profile["members"][1] == {
        "relationship": "child", "sex": "f", "birth_date": "2015-07-01", "nationality": "VE"}
    assert reg.profile["ties"] == ["ES"]
    assert sealed.full_name(session, reg) == "José Luis Pérez Ávila"
    assert sealed.identity_of(session, reg)["members"][1]["given_name"] == "Ana"
    assert reg.person_key == sealed.person_key("José Luis", "Pérez Ávila", date(1988, 2, 3), "VE")
    assert reg.email_key == sealed.email_key("jose@example.org") and reg.phone_key
    assert reg.consent_screening and reg.consent_contact and reg.consent_share is None
    # The raw row holds no name, phone or email in clear.
    raw = session.execute(text("SELECT * FROM mobility_registrations WHERE id = :id"),
                          {"id": reg.id if session.bind.dialect.name == "postgresql" else reg.id.hex}).one()
    dump = repr(tuple(raw))
    for secret in ("José", "Pérez", "Ana", "jose@example.org", "8888"):
        assert secret not in dump
    from rdn.mobility import screening

    results = screening.results_of(session, reg)
    assert [(res.qualifies, rule.name) for res, rule in results] == [(True, "Spain resettlement"),
                                                                   (False, "Canada labour")]
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "mobility.registration.create",
                                                     AuditEntry.object_id == str(reg.id))).one()
    assert "José" not in repr(entry.details) and entry.details["household_size"] == 2
    email = session.scalars(select(Job).where(Job.kind == "mobility.email",
                                              Job.dedupe_key == f"mobility-confirm:{reg.id}")).one()
    # The queued job names the registration, not the address (opened from the sealed contact when sent).
    assert email.payload["to"] == [] and email.payload["registration_id"] == str(reg.id)
    assert "jose@example.org" not in repr(email.payload) and reg.reference in email.payload["text"]
    assert done.pin not in email.payload["text"]  # the link, never the PIN
    assert "Tu referencia" in email.payload["text"] or "referencia" in email.payload["text"]


def test_no_email_without_consent_to_contact(mobility_world, session, frozen_now):
    reg = registration.register(session, office=mobility_world.offices["cr"], data=form(consent_contact=False),
                                ip="10.0.0.2").registration
    assert session.scalars(select(Job).where(Job.dedupe_key == f"mobility-confirm:{reg.id}")).first() is None
    assert reg.consent_contact is None


def test_not_eligible_stores_nothing(mobility_world, session, frozen_now):
    before = count(session)
    with using("en"), pytest.raises(registration.NotEligible) as exc:
        registration.register(session, office=mobility_world.offices["cr"],
                              data=form(arrived_on="2024-01-01", email="bad"), ip="10.0.0.3")
    assert any("June 12, 2023" in r for r in exc.value.eligibility.reasons)
    assert count(session) == before


def test_registrations_from_one_address_are_limited(mobility_world, session, frozen_now):
    office = mobility_world.offices["cr"]
    for i in range(registration.REGISTRATIONS_SHORT[0]):
        registration.register(session, office=office, data=form(given_name=f"Persona {'abcde'[i]}"), ip="10.0.0.4")
    before = count(session)
    with pytest.raises(TooManyRequests) as exc:
        registration.register(session, office=office, data=form(given_name="Otra"), ip="10.0.0.4")
    assert "minutes" in exc.value.detail or "minutos" in exc.value.detail
    assert count(session) == before
    registration.register(session, office=office, data=form(given_name="Otra"), ip="10.0.0.5")  # another address


# Duplicates --------------------------------------------------------------------------------------------------


def test_duplicates_are_flagged_without_telling_and_merged_by_staff(mobility_world, session, frozen_now):
    office = mobility_world.offices["cr"]
    first = registration.register(session, office=office, data=form(), ip="10.1.0.1").registration
    # The same person, written differently.
    again = registration.register(session, office=office, data=form(given_name="jose luis", family_name="PEREZ AVILA",
                                                                    email="", phone="", consent_contact=False),
                                   ip="10.1.0.2")
    # Someone else with the same phone and birth date.
    same_phone = registration.register(session, office=office, data=form(given_name="Pedro", email=""),
                                       ip="10.1.0.3").registration
    # The same phone, another birth date: not a duplicate.
    other = registration.register(session, office=office, data=form(given_name="Pedro", email="",
                                                                     birth_date="1990-01-01"), ip="10.1.0.4")
    assert first.duplicate_of_id is None
    assert again.registration.duplicate_of_id == first.id and again.registration.reference != first.reference
    assert sealed.pin_matches(again.registration, again.pin)  # their own reference and PIN
    assert same_phone.duplicate_of_id == first.id
    assert other.registration.duplicate_of_id is None
    # Another office: not a duplicate there.
    co = registration.register(session, office=mobility_world.offices["co"], data=form(arrived_on="2023-01-01"),
                               ip="10.1.0.5")
    assert co.registration.duplicate_of_id is None

    with pytest.raises(policy.AuthError):
        registration.merge(session, actor=mobility_world.p("caseworker_co"), keep=first, duplicate=again.registration)
    registration.merge(session, actor=mobility_world.p("caseworker_cr"), keep=first, duplicate=again.registration)
    assert again.registration.status == RegistrationStatus.merged
    assert again.registration.merged_into_id == first.id
    assert session.scalars(select(AuditEntry).where(AuditEntry.action == "mobility.registration.merge")).one()
    with pytest.raises(Conflict):
        registration.merge(session, actor=mobility_world.p("caseworker_cr"), keep=first, duplicate=again.registration)
    # The merged registrant's reference and PIN still work, and show the registration that carries on.
    found = registration.lookup(session, reference=again.registration.reference, pin=again.pin, ip="10.1.0.9")
    assert found is not None and registration.followed(session, found).id == first.id


# Finding one's registration ----------------------------------------------------------------------------------


def test_lookup_with_the_right_and_wrong_pin_and_the_lockout(mobility_world, session, frozen_now):
    reg = mobility_world.registration(pin="482913")
    assert registration.lookup(session, reference=reg.reference.lower(), pin=" 482913 ", ip="10.2.0.1") == reg
    assert registration.lookup(session, reference=reg.reference, pin="000000", ip="10.2.0.1") is None
    assert registration.lookup(session, reference="SM-CR-ZZZZZZZZ", pin="482913", ip="10.2.0.1") is None
    assert registration.lookup(session, reference="<script>", pin=["x"], ip="10.2.0.1") is None  # type: ignore[arg-type]
    for _ in range(registration.PIN_PER_REFERENCE[0] - 1):
        assert registration.lookup(session, reference=reg.reference, pin="111111", ip="10.2.0.2") is None
    # Five wrong PINs for this reference: even the right one waits now.
    with pytest.raises(TooManyRequests):
        registration.lookup(session, reference=reg.reference, pin="482913", ip="10.2.0.3")
    clock.advance(registration.PIN_PER_REFERENCE[1])
    assert registration.lookup(session, reference=reg.reference, pin="482913", ip="10.2.0.3") == reg


def test_one_address_guessing_many_references_is_stopped(mobility_world, session, frozen_now):
    limit = registration.PIN_PER_ADDRESS[0]
    for i in range(limit):
        assert registration.lookup(session, reference=f"SM-CR-AAAAAA{i:02d}", pin="1", ip="10.3.0.1") is None
    with pytest.raises(TooManyRequests):
        registration.lookup(session, reference="SM-CR-BBBBBBBB", pin="1", ip="10.3.0.1")


def test_status_link_token(mobility_world, session, frozen_now):
    reg = mobility_world.registration()
    other = mobility_world.registration(given_name="Otra")
    token = registration.status_token(reg)
    assert registration.from_token(session, reg.reference, token) == reg
    assert registration.from_token(session, other.reference, token) is None
    assert registration.from_token(session, reg.reference, token[:-2] + "00") is None
    assert registration.from_token(session, reg.reference, "garbage") is None
    clock.advance(timedelta(days=registration.TOKEN_DAYS, seconds=1))
    assert registration.from_token(session, reg.reference, token) is None


def test_sign_in_cookie_value(mobility_world, session, frozen_now):
    reg = mobility_world.registration()
    value = registration.sign_in_value(reg)
    assert registration.from_sign_in(session, value) == reg
    assert registration.from_sign_in(session, value.replace(".", ".9", 1)) is None
    clock.advance(timedelta(minutes=registration.SIGN_IN_MINUTES, seconds=1))
    assert registration.from_sign_in(session, value) is None


# Changes -----------------------------------------------------------------------------------------------------


def test_update_contact(mobility_world, session, frozen_now):
    reg = mobility_world.registration()
    with pytest.raises(ValidationFailed) as exc:
        registration.update_contact(session, registration=reg, data={"email": "nope", "phone": ["1"]})
    assert {e.field for e in exc.value.errors} == {"email", "phone"}
    registration.update_contact(session, registration=reg, data={"phone": "", "email": "new@example.org",
                                                                  "consent_contact": "yes"})
    assert sealed.contact_of(session, reg) == {"phone": "", "email": "new@example.org", "whatsapp": ""}
    assert reg.email_key == sealed.email_key("new@example.org") and reg.phone_key is None
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "mobility.registration.contact")).one()
    assert entry.details == {"fields": ["email", "phone"]}
    registration.update_contact(session, registration=reg, data={"phone": "", "email": "", "consent_contact": ""})
    assert reg.consent_contact is None


def test_withdraw_cancels_the_booked_interview(mobility_world, session, frozen_now):
    from rdn.mobility import appointments

    office = mobility_world.offices["cr"]
    reg = mobility_world.registration(status=RegistrationStatus.screened)
    slot = Slot(office_id=office.id, starts_at=frozen_now + timedelta(days=3),
                ends_at=frozen_now + timedelta(days=3, minutes=30), capacity=2)
    session.add(slot)
    session.flush()
    appointments.book(session, registration=reg, slot_id=slot.id, by="registrant")
    assert appointments.current_appointment(session, reg) is not None
    registration.withdraw(session, registration=reg, reason="  found work  ")
    assert reg.status == RegistrationStatus.withdrawn and reg.closed_reason == "found work"
    assert appointments.current_appointment(session, reg) is None
    session.refresh(slot)
    assert slot.booked == 0
    with pytest.raises(Conflict):
        registration.withdraw(session, registration=reg)
    steps = registration.timeline(session, reg)
    assert steps[-1].state == "stopped"


def test_timeline_says_what_comes_next(mobility_world, session, frozen_now):
    reg = mobility_world.registration(status=RegistrationStatus.screened)
    with using("en"):
        steps = registration.timeline(session, reg)
    keys = [s.key for s in steps]
    assert keys == ["registered", "screening", "interview", "referral"]
    assert steps[0].state == "done" and steps[2].state == "current"
    assert "weeks" in steps[3].when
    with using("es"):
        spanish = registration.timeline(session, reg)
    assert spanish[0].title != steps[0].title


def test_another_nationality_at_an_office_open_to_any_is_a_field_error(mobility_world, session, frozen_now):
    office = mobility_world.offices["co"]
    office.nationalities = []
    with pytest.raises(ValidationFailed) as exc:
        registration.register(session, office=office, data=form(nationality="other", arrived_on="2023-01-01"),
                              ip="10.4.0.1")
    assert not isinstance(exc.value, registration.NotEligible)
    assert "nationality" in {e.field for e in exc.value.errors}

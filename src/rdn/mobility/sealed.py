"""What identifies a registrant, and how it is kept: references and PINs, keyed hashes for finding duplicates,
and the sealed sections (names, contact) opened with the office's data key.

References are random (``SM-CR-7K3P9Q2M``: office country, then eight characters of an alphabet without look-alikes)
so that one registrant's reference says nothing about another's. PINs are six digits, stored as an HMAC with the
server's secret (a stolen database alone does not give them); guessing is stopped by rate limits where they are
checked (``rdn.mobility.registration``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from rdn.config import get_settings
from rdn.core.crypto import Keyring
from rdn.mobility.models import Registration

ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I
REFERENCE = re.compile(r"^SM-[A-Z]{2}-[2-9A-HJ-NP-Z]{8}$")


def _keyed(purpose: str, value: str) -> str:
    key = get_settings().secret_key.encode()
    return hmac.new(key, f"rdn-mobility:{purpose}:".encode() + value.encode(), hashlib.sha256).hexdigest()


def new_reference(country: str) -> str:
    return f"SM-{country.upper()}-" + "".join(secrets.choice(ALPHABET) for _ in range(8))


def normal_reference(text: str) -> str:
    """What a registrant typed, tidied: upper case, no spaces, O read as 0 is not in the alphabet anyway."""
    return re.sub(r"\s+", "", text or "").upper()[:20]


def new_pin() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


def pin_hash(pin: str) -> str:
    return _keyed("pin", pin)


def pin_matches(registration: Registration, pin: str) -> bool:
    return hmac.compare_digest(registration.pin_hash, pin_hash((pin or "").strip()))


def _fold(text: str) -> str:
    """Lower case, accents removed, spaces collapsed: "José  Pérez" and "jose perez" are one name."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w\s]", " ", bare.casefold()).split())


def person_key(given_name: str, family_name: str, birth_date: date | None, nationality: str) -> str:
    return _keyed("person", "|".join((_fold(given_name), _fold(family_name),
                                      birth_date.isoformat() if birth_date else "", nationality.upper())))


def phone_key(phone: str | None) -> str | None:
    digits = re.sub(r"\D", "", phone or "")
    return _keyed("phone", digits[-9:]) if len(digits) >= 7 else None  # the last nine: with or without +506


def email_key(email: str | None) -> str | None:
    text = (email or "").strip().casefold()
    return _keyed("email", text) if "@" in text else None


def ip_key(ip: str | None) -> str:
    return _keyed("ip", ip or "unknown")[:32]


def seal_identity(session: Session, registration: Registration, identity: dict[str, Any]) -> None:
    registration.seal("identity", identity, keyring=Keyring.of(session))


def identity_of(session: Session, registration: Registration) -> dict[str, Any]:
    """``{"members": [{"given_name", "family_name"}, ...]}`` in the order of ``profile["members"]``."""
    return registration.unseal("identity", keyring=Keyring.of(session)) or {"members": []}


def seal_contact(session: Session, registration: Registration, contact: dict[str, Any]) -> None:
    registration.seal("contact", contact, keyring=Keyring.of(session))


def contact_of(session: Session, registration: Registration) -> dict[str, Any]:
    """``{"phone", "email", "whatsapp"}`` (each possibly empty)."""
    return registration.unseal("contact", keyring=Keyring.of(session)) or {}


def full_name(session: Session, registration: Registration) -> str:
    members = identity_of(session, registration).get("members") or [{}]
    first = members[0]
    return f"{first.get('given_name', '')} {first.get('family_name', '')}".strip()

"""Envelope encryption of sensitive fields (AES-256-GCM).

* Each owner (an organization, or ``system`` for platform secrets such as TOTP seeds) has data keys.
  A data key is random, stored only *wrapped* (encrypted) by the master key from configuration.
* A sealed value is ``0x01 | data key id (16 bytes) | nonce (12 bytes) | ciphertext+tag``. The table, record
  id and field name are bound as associated data, so a ciphertext copied to another record or field fails to
  open.
* ``rdn keys rotate`` re-wraps every data key under the current master key while servers keep running: they
  can unwrap with the current key and every key in ``RDN_PREVIOUS_MASTER_KEYS``.

Models with sensitive columns use :class:`SensitiveFields` and declare columns with :data:`SealedColumn`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any, ClassVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import LargeBinary, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from rdn.config import get_settings
from rdn.core import clock
from rdn.db import Base, new_id

FORMAT_V1 = b"\x01"
SYSTEM_OWNER = "system"


class CryptoError(RuntimeError):
    """A value could not be sealed or opened (wrong key, tampered data, wrong record)."""


class DataKey(Base):
    __tablename__ = "data_keys"
    __table_args__ = (UniqueConstraint("owner", "version"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    owner: Mapped[str] = mapped_column(String(40), index=True)  # organization id, or "system"
    version: Mapped[int]
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    master_key_id: Mapped[str] = mapped_column(String(16), index=True)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    rewrapped_at: Mapped[datetime | None]


def same_secret(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two strings from the outside world (any characters; None never matches)."""
    if a is None or b is None:
        return False
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))


def master_key_id(key: bytes) -> str:
    return hashlib.sha256(b"rdn-master-key-id:" + key).hexdigest()[:16]


def new_master_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def _master_keys() -> dict[str, bytes]:
    settings = get_settings()
    keys = {master_key_id(k): k for k in settings.previous_master_key_bytes}
    current = settings.master_key_bytes
    keys[master_key_id(current)] = current
    return keys


def _current_master() -> tuple[str, bytes]:
    key = get_settings().master_key_bytes
    return master_key_id(key), key


def _wrap_aad(data_key_id: uuid.UUID, owner: str) -> bytes:
    return f"rdn:data-key:{data_key_id}:{owner}".encode()


def _wrap(raw: bytes, data_key_id: uuid.UUID, owner: str) -> tuple[str, bytes]:
    kid, master = _current_master()
    nonce = os.urandom(12)
    return kid, nonce + AESGCM(master).encrypt(nonce, raw, _wrap_aad(data_key_id, owner))


def _unwrap(dk: DataKey) -> bytes:
    master = _master_keys().get(dk.master_key_id)
    if master is None:
        raise CryptoError(
            f"data key {dk.id} is wrapped by master key {dk.master_key_id}, which is not configured "
            "(add it to RDN_PREVIOUS_MASTER_KEYS)"
        )
    try:
        return AESGCM(master).decrypt(dk.wrapped[:12], dk.wrapped[12:], _wrap_aad(dk.id, dk.owner))
    except InvalidTag as exc:
        raise CryptoError(f"data key {dk.id} failed to unwrap (tampered or wrong master key)") from exc


def owner_of(org_id: uuid.UUID | None) -> str:
    return SYSTEM_OWNER if org_id is None else str(org_id)


class Keyring:
    """Unwrapped data keys for the span of one unit of work (never cached across requests)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._keys: dict[uuid.UUID, bytes] = {}
        self._active: dict[str, uuid.UUID] = {}

    @classmethod
    def of(cls, session: Session) -> Keyring:
        ring = session.info.get("rdn_keyring")
        if ring is None:
            ring = session.info["rdn_keyring"] = cls(session)
        return ring

    def active_key(self, owner: str) -> tuple[uuid.UUID, bytes]:
        if owner in self._active:
            kid = self._active[owner]
            return kid, self._keys[kid]
        dk = self.session.scalars(
            select(DataKey).where(DataKey.owner == owner, DataKey.active.is_(True))
            .order_by(DataKey.version.desc()).limit(1)
        ).first()
        if dk is None:
            dk, raw = create_data_key(self.session, owner)
        else:
            raw = _unwrap(dk)
        self._keys[dk.id] = raw
        self._active[owner] = dk.id
        return dk.id, raw

    def key(self, data_key_id: uuid.UUID) -> bytes:
        raw = self._keys.get(data_key_id)
        if raw is None:
            dk = self.session.get(DataKey, data_key_id)
            if dk is None:
                raise CryptoError(f"unknown data key {data_key_id}")
            raw = self._keys[data_key_id] = _unwrap(dk)
        return raw

    def seal(self, owner: str, value: Any, aad: str) -> bytes:
        kid, key = self.active_key(owner)
        nonce = os.urandom(12)
        plaintext = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        return FORMAT_V1 + kid.bytes + nonce + AESGCM(key).encrypt(nonce, plaintext, aad.encode())

    def open(self, blob: bytes, aad: str) -> Any:
        if not blob or blob[:1] != FORMAT_V1 or len(blob) < 1 + 16 + 12 + 16:
            raise CryptoError("not a sealed value")
        kid = uuid.UUID(bytes=bytes(blob[1:17]))
        nonce = bytes(blob[17:29])
        try:
            plaintext = AESGCM(self.key(kid)).decrypt(nonce, bytes(blob[29:]), aad.encode())
        except InvalidTag as exc:
            raise CryptoError("sealed value failed to open (tampered, or moved to another record)") from exc
        return json.loads(plaintext)


def create_data_key(session: Session, owner: str) -> tuple[DataKey, bytes]:
    """A new active data key for ``owner``; earlier keys stay for reading what they sealed."""
    latest = session.scalars(
        select(DataKey).where(DataKey.owner == owner).order_by(DataKey.version.desc()).limit(1)
    ).first()
    for dk in session.scalars(select(DataKey).where(DataKey.owner == owner, DataKey.active.is_(True))):
        dk.active = False
    raw = os.urandom(32)
    dk_id = new_id()
    kid, wrapped = _wrap(raw, dk_id, owner)
    dk = DataKey(id=dk_id, owner=owner, version=(latest.version + 1) if latest else 1, wrapped=wrapped,
                 master_key_id=kid, active=True)
    session.add(dk)
    session.flush()
    return dk, raw


def rewrap_batches(session_factory: Any, batch: int = 200) -> Iterator[tuple[int, int]]:
    """Re-wrap every data key not under the current master key; yields (done, total) after each batch.

    Each batch commits on its own, so running servers never wait on a long transaction.
    """
    current, _ = _current_master()
    with session_factory() as session:
        total = session.query(DataKey).filter(DataKey.master_key_id != current).count()
    done = 0
    yield done, total
    while True:
        with session_factory() as session:
            rows = session.scalars(
                select(DataKey).where(DataKey.master_key_id != current).limit(batch)
            ).all()
            if not rows:
                break
            for dk in rows:
                raw = _unwrap(dk)
                dk.master_key_id, dk.wrapped = _wrap(raw, dk.id, dk.owner)
                dk.rewrapped_at = clock.now()
            session.commit()
            done += len(rows)
        yield done, total


# The typed column helper -------------------------------------------------------------------------------

def sealed() -> Any:
    """Declare a sensitive column: ``medical: Mapped[bytes | None] = sealed()``."""
    return mapped_column(LargeBinary, nullable=True, deferred=False, info={"rdn_sensitive": True})


class SensitiveFields:
    """Mixin for models with sealed columns.

    ``__sensitive_owner__`` names the attribute holding the owning organization's id (``None`` selects the
    system key). Values are any JSON-serialisable data; ``seal``/``unseal`` bind table, id and field.
    """

    __sensitive_owner__: ClassVar[str | None] = None

    def _aad(self, field: str) -> str:
        if getattr(self, "id", None) is None:
            self.id = new_id()  # type: ignore[attr-defined]
        return f"{self.__tablename__}|{self.id}|{field}"  # type: ignore[attr-defined]

    def _owner(self) -> str:
        attr = self.__sensitive_owner__
        return owner_of(getattr(self, attr) if attr else None)

    def seal(self, field: str, value: Any, *, keyring: Keyring) -> None:
        column = self.__table__.columns[field]  # type: ignore[attr-defined]
        if not column.info.get("rdn_sensitive"):
            raise CryptoError(f"{field} is not a sealed column")
        setattr(self, field, None if value is None else keyring.seal(self._owner(), value, self._aad(field)))

    def unseal(self, field: str, *, keyring: Keyring) -> Any:
        blob = getattr(self, field)
        return None if blob is None else keyring.open(blob, self._aad(field))


def sensitive_columns() -> list[tuple[str, str]]:
    """(table, column) of every sealed column: what a canary test and a re-encryption must cover."""
    return [
        (table.name, column.name)
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if column.info.get("rdn_sensitive")
    ]

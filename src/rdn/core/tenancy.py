"""Organizations and memberships: who belongs to which organization, in which roles.

This is the tenancy kernel the policy needs; the network domain (``rdn.network``) builds its pages, admin and
directory on it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Enum, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rdn.core import clock
from rdn.db import Base, new_id


class OrgKind(StrEnum):
    government = "government"  # member government
    observer = "observer"
    agency = "agency"  # referring agency (UNHCR- or IOM-like)
    ngo = "ngo"
    mobility_office = "mobility_office"  # Safe Mobility office
    sponsor_group = "sponsor_group"
    secretariat = "secretariat"


class Role(StrEnum):
    admin = "admin"
    senior_official = "senior_official"
    officer = "officer"
    caseworker = "caseworker"
    analyst = "analyst"
    sponsor = "sponsor"


#: Which roles an organization of each kind can give.
ROLES_BY_KIND: dict[OrgKind, frozenset[Role]] = {
    OrgKind.government: frozenset(
        {Role.admin, Role.senior_official, Role.officer, Role.caseworker, Role.analyst}
    ),
    OrgKind.observer: frozenset({Role.admin, Role.senior_official, Role.officer, Role.analyst}),
    OrgKind.agency: frozenset({Role.admin, Role.senior_official, Role.officer, Role.caseworker, Role.analyst}),
    OrgKind.ngo: frozenset({Role.admin, Role.officer, Role.caseworker, Role.analyst}),
    OrgKind.mobility_office: frozenset({Role.admin, Role.officer, Role.caseworker, Role.analyst}),
    OrgKind.sponsor_group: frozenset({Role.admin, Role.sponsor}),
    OrgKind.secretariat: frozenset({Role.admin, Role.senior_official, Role.officer, Role.analyst}),
}

#: Kinds whose people handle other people's data or speak for a government: MFA is compulsory there.
MFA_REQUIRED_KINDS = frozenset(
    {OrgKind.government, OrgKind.observer, OrgKind.agency, OrgKind.ngo, OrgKind.mobility_office,
     OrgKind.secretariat}
)


def _enum(cls: type[StrEnum], name: str) -> Enum:
    # Stored as strings (never positional integers), checked by the database where it can.
    return Enum(cls, name=name, native_enum=False, length=32, validate_strings=True,
                values_callable=lambda e: [m.value for m in e])


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    short_name: Mapped[str] = mapped_column(String(40), unique=True)
    kind: Mapped[OrgKind] = mapped_column(_enum(OrgKind, "org_kind"), index=True)
    country: Mapped[str | None] = mapped_column(String(2), index=True)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)

    memberships: Mapped[list[Membership]] = relationship(back_populates="organization")

    def __repr__(self) -> str:
        return f"<Organization {self.short_name}>"


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "org_id", "role"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    role: Mapped[Role] = mapped_column(_enum(Role, "role"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    organization: Mapped[Organization] = relationship(back_populates="memberships")


def role_allowed(kind: OrgKind, role: Role) -> bool:
    return role in ROLES_BY_KIND[kind]


def enum_column(cls: type[StrEnum], name: str) -> Enum:
    """The column type for a string enum, for domains' models."""
    return _enum(cls, name)

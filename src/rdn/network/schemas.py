"""JSON shapes of organizations, people and roles."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from rdn.core.schemas import Out, StrictIn
from rdn.core.tenancy import OrgKind, Role


class OrganizationOut(Out):
    id: uuid.UUID
    name: str
    short_name: str
    kind: OrgKind
    country: str | None
    active: bool
    created_at: datetime


class OrganizationCreate(StrictIn):
    name: str = Field(min_length=2, max_length=200)
    short_name: str = Field(min_length=2, max_length=40)
    kind: OrgKind
    country: str | None = Field(default=None, min_length=2, max_length=2)


class OrganizationUpdate(StrictIn):
    name: str | None = Field(default=None, min_length=2, max_length=200)
    country: str | None = Field(default=None, min_length=2, max_length=2)
    active: bool | None = None


class MembershipOut(Out):
    id: uuid.UUID
    org_id: uuid.UUID
    role: Role


class PersonOut(Out):
    id: uuid.UUID
    email: str
    full_name: str
    active: bool
    locale: str | None
    mfa_enrolled: bool
    created_at: datetime


class PersonDetailOut(PersonOut):
    memberships: list[MembershipOut]


class PersonCreate(StrictIn):
    email: str = Field(min_length=3, max_length=254)
    full_name: str = Field(min_length=2, max_length=200)
    org_id: uuid.UUID
    role: Role
    locale: str | None = Field(default=None, max_length=8)


class PersonUpdate(StrictIn):
    full_name: str | None = Field(default=None, min_length=2, max_length=200)
    active: bool | None = None
    locale: str | None = Field(default=None, max_length=8)


class MembershipCreate(StrictIn):
    org_id: uuid.UUID
    role: Role


class WebhookOut(Out):
    id: uuid.UUID
    url: str
    description: str
    event_types: list[str]
    active: bool
    disabled_reason: str | None
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="The signing secret (whsec_...), shown only in this response")


class WebhookCreate(StrictIn):
    url: str = Field(min_length=8, max_length=500)
    description: str = Field(default="", max_length=200)
    event_types: list[str] = Field(default_factory=lambda: ["*"], max_length=50)

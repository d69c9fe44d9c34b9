"""JSON API: who am I, and my API tokens."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import Response
from pydantic import Field
from sqlalchemy import select

from rdn.core import audit, identity, policy
from rdn.core.modules import api_router
from rdn.core.schemas import Out
from rdn.core.tenancy import OrgKind, Role
from rdn.core.web import CurrentPrincipal, DbSession

router = api_router(prefix="/api/v1", tags=["account"])


class OrgRolesOut(Out):
    org_id: uuid.UUID
    name: str
    short_name: str
    kind: OrgKind
    country: str | None
    roles: list[Role]


class MeOut(Out):
    user_id: uuid.UUID
    email: str
    full_name: str
    locale: str | None
    acting_for: OrgRolesOut | None = Field(description="The organization this request acts in")
    organizations: list[OrgRolesOut]
    via: str
    scopes: list[str] | None


class TokenOut(Out):
    id: uuid.UUID
    name: str
    prefix: str
    org_id: uuid.UUID
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None


def _org_out(o: identity.OrgRoles) -> OrgRolesOut:
    return OrgRolesOut(org_id=o.org_id, name=o.name, short_name=o.short_name, kind=o.kind, country=o.country,
                       roles=sorted(o.roles))


@router.get("/me", response_model=MeOut, summary="Who the caller is, and in which organization it acts")
def me(principal: CurrentPrincipal) -> MeOut:
    policy.require(principal, "account.read")
    return MeOut(user_id=principal.user_id, email=principal.email, full_name=principal.full_name,
                 locale=principal.locale, acting_for=_org_out(principal.org) if principal.org else None,
                 organizations=[_org_out(o) for o in principal.orgs], via=principal.via,
                 scopes=sorted(principal.scopes) if principal.scopes is not None else None)


@router.get("/tokens", response_model=list[TokenOut], summary="Your live API tokens")
def list_tokens(db: DbSession, principal: CurrentPrincipal) -> list[identity.ApiToken]:
    policy.require(principal, "account.read")
    stmt = select(identity.ApiToken).where(identity.ApiToken.user_id == principal.user_id,
                                           identity.ApiToken.revoked_at.is_(None))
    if principal.via == "token":
        stmt = stmt.where(identity.ApiToken.org_id == principal.org_id)
    return list(db.scalars(stmt))




@router.delete("/tokens/{token_id}", status_code=204, summary="Revoke one of your API tokens")
def revoke_token(token_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    row = db.get(identity.ApiToken, token_id)
    if (row is None or row.user_id != principal.user_id or row.revoked_at is not None
            or (principal.via == "token" and row.org_id != principal.org_id)):
        raise policy.NotFound()
    policy.require(principal, "account.manage")
    identity.revoke_token(row)
    audit.record(db, action="token.revoke", actor=principal, object_type="api_token", object_id=row.id)
    return Response(status_code=204)

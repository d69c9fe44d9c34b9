"""JSON API: organizations, people, roles and webhook endpoints."""

from __future__ import annotations

import uuid

from fastapi import Query, Response
from sqlalchemy import select

from rdn.core import audit, policy
from rdn.core.errors import ValidationFailed
from rdn.core.identity import User
from rdn.core.modules import api_router
from rdn.core.schemas import PageMeta, PageOut
from rdn.core.tenancy import Membership, Organization
from rdn.core.web import CurrentPrincipal, DbSession
from rdn.core.webhooks import WebhookEndpoint, WebhookError, create_endpoint
from rdn.network import service
from rdn.network.schemas import (
    MembershipCreate,
    MembershipOut,
    OrganizationCreate,
    OrganizationOut,
    OrganizationUpdate,
    PersonCreate,
    PersonDetailOut,
    PersonOut,
    PersonUpdate,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
)

router = api_router(prefix="/api/v1", tags=["network"])


@router.get("/organizations", response_model=PageOut[OrganizationOut], summary="List organizations")
def list_organizations(
    db: DbSession, principal: CurrentPrincipal,
    q: str | None = Query(None, max_length=100), kind: str | None = None,
    country: str | None = Query(None, max_length=2),
    page: int = Query(1, ge=1), per_page: int = Query(25, ge=1, le=100),
) -> PageOut[OrganizationOut]:
    policy.require(principal, "org.read")
    result = service.list_organizations(db, principal, q=q, kind=kind, country=country, page=page,
                                        per_page=per_page)
    return PageOut(items=[OrganizationOut.model_validate(o) for o in result.items], meta=PageMeta(**result.meta()))


@router.post("/organizations", response_model=OrganizationOut, status_code=201, summary="Create an organization")
def create_organization(body: OrganizationCreate, db: DbSession, principal: CurrentPrincipal) -> Organization:
    policy.require(principal, "org.manage")
    return service.create_organization(db, actor=principal, name=body.name, short_name=body.short_name,
                                       kind=body.kind, country=body.country)


@router.get("/organizations/{org_id}", response_model=OrganizationOut, summary="One organization")
def get_organization(org_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Organization:
    return policy.access(db, principal, Organization, org_id, "org.read")


@router.patch("/organizations/{org_id}", response_model=OrganizationOut, summary="Change an organization")
def update_organization(org_id: uuid.UUID, body: OrganizationUpdate, db: DbSession,
                        principal: CurrentPrincipal) -> Organization:
    org = policy.access(db, principal, Organization, org_id, "org.read")
    policy.require(principal, "org.manage")
    fields = body.model_dump(exclude_unset=True)
    return service.update_organization(db, actor=principal, org=org, name=fields.get("name"),
                                       country=fields.get("country", ...),
                                       active=fields.get("active"))


def _person_out(db: DbSession, user: User) -> PersonDetailOut:
    memberships = db.scalars(select(Membership).where(Membership.user_id == user.id)).all()
    return PersonDetailOut(
        **PersonOut.model_validate(user).model_dump(),
        memberships=[MembershipOut.model_validate(m) for m in memberships],
    )


@router.get("/people", response_model=PageOut[PersonOut], summary="List people you administer")
def list_people(
    db: DbSession, principal: CurrentPrincipal, q: str | None = Query(None, max_length=100),
    org_id: uuid.UUID | None = None, page: int = Query(1, ge=1), per_page: int = Query(25, ge=1, le=100),
) -> PageOut[PersonOut]:
    policy.require(principal, "person.list")
    result = service.list_people(db, principal, q=q, org_id=org_id, page=page, per_page=per_page)
    return PageOut(items=[PersonOut.model_validate(u) for u in result.items], meta=PageMeta(**result.meta()))


@router.post("/people", response_model=PersonDetailOut, status_code=201,
             summary="Create a person (an invitation email is sent)")
def create_person(body: PersonCreate, db: DbSession, principal: CurrentPrincipal) -> PersonDetailOut:
    policy.require(principal, "person.manage")
    org = policy.access(db, principal, Organization, body.org_id, "org.read")
    if not policy.can(principal, "membership.manage", org):
        raise ValidationFailed("org_id", "you cannot give roles in this organization")
    user = service.create_person(db, actor=principal, email=body.email, full_name=body.full_name, org=org,
                                 role=body.role, locale=body.locale)
    return _person_out(db, user)


@router.get("/people/{user_id}", response_model=PersonDetailOut, summary="One person")
def get_person(user_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> PersonDetailOut:
    user = policy.access(db, principal, User, user_id, "person.read")
    return _person_out(db, user)


@router.patch("/people/{user_id}", response_model=PersonDetailOut, summary="Change a person")
def update_person(user_id: uuid.UUID, body: PersonUpdate, db: DbSession,
                  principal: CurrentPrincipal) -> PersonDetailOut:
    user = policy.access(db, principal, User, user_id, "person.manage")
    fields = body.model_dump(exclude_unset=True)
    service.update_person(db, actor=principal, user=user, full_name=fields.get("full_name"),
                          active=fields.get("active"), locale=fields.get("locale", ...))
    return _person_out(db, user)


@router.post("/people/{user_id}/memberships", response_model=MembershipOut, status_code=201,
             summary="Give a person a role in an organization")
def grant_role(user_id: uuid.UUID, body: MembershipCreate, db: DbSession,
               principal: CurrentPrincipal) -> Membership:
    user = policy.access(db, principal, User, user_id, "person.roles")
    org = policy.access(db, principal, Organization, body.org_id, "membership.manage")
    return service.grant_role(db, actor=principal, user=user, org=org, role=body.role)


@router.delete("/memberships/{membership_id}", status_code=204, summary="Take a role away")
def revoke_role(membership_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    membership = service.accessible_membership(db, principal, membership_id)
    service.revoke_role(db, actor=principal, membership=membership)
    return Response(status_code=204)


@router.get("/webhooks", response_model=list[WebhookOut], summary="Your organization's webhook endpoints")
def list_webhooks(db: DbSession, principal: CurrentPrincipal) -> list[WebhookEndpoint]:
    policy.require(principal, "webhook.manage")
    return list(db.scalars(policy.scoped(principal, WebhookEndpoint).order_by(WebhookEndpoint.created_at)))


@router.post("/webhooks", response_model=WebhookCreated, status_code=201,
             summary="Add a webhook endpoint (the signing secret is shown once)")
def create_webhook(body: WebhookCreate, db: DbSession, principal: CurrentPrincipal) -> WebhookCreated:
    policy.require(principal, "webhook.manage")
    assert principal.org_id is not None
    try:
        endpoint, secret = create_endpoint(db, org_id=principal.org_id, url=body.url,
                                           event_types=body.event_types, description=body.description)
    except WebhookError as exc:
        field, _, message = str(exc).partition(": ")
        raise ValidationFailed(field, message) from None
    audit.record(db, action="webhook.create", actor=principal, object_type="webhook", object_id=endpoint.id,
                 details={"event_types": endpoint.event_types})
    return WebhookCreated(**WebhookOut.model_validate(endpoint).model_dump(), secret=secret)


@router.delete("/webhooks/{webhook_id}", status_code=204, summary="Remove a webhook endpoint")
def delete_webhook(webhook_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    endpoint = policy.access(db, principal, WebhookEndpoint, webhook_id, "webhook.manage")
    endpoint.active = False
    endpoint.disabled_reason = "removed"
    audit.record(db, action="webhook.delete", actor=principal, object_type="webhook", object_id=endpoint.id)
    return Response(status_code=204)

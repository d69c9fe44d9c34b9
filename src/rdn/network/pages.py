"""Pages: the network directory, and administration of organizations, people and roles."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Form, Query, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from rdn.core import i18n, identity, policy
from rdn.core.errors import Conflict, ValidationFailed
from rdn.core.identity import User
from rdn.core.modules import page_router
from rdn.core.tenancy import Membership, Organization, OrgKind, Role
from rdn.core.web import CurrentPrincipal, DbSession, redirect, render
from rdn.network import service

router = page_router()

NOTICES = {
    "created": i18n.N_("Saved. The new record is below."),
    "saved": i18n.N_("Your changes were saved."),
    "invited": i18n.N_("An invitation email is on its way."),
    "role-added": i18n.N_("The role was given."),
    "role-removed": i18n.N_("The role was taken away."),
    "sessions-revoked": i18n.N_("All of this person's sessions were ended."),
    "mfa-reset": i18n.N_("Two-step verification was reset; they will enrol again at their next sign-in."),
}


def _notice(key: str | None) -> str | None:
    return i18n.gettext(NOTICES[key]) if key in NOTICES else None


def _kinds() -> list[tuple[str, str]]:
    return [(k.value, i18n.gettext(service.KIND_LABELS[k])) for k in OrgKind]


def _roles() -> list[tuple[str, str]]:
    return [(r.value, i18n.gettext(service.ROLE_LABELS[r])) for r in Role]


def _form_errors(db: Session, exc: ValidationFailed | Conflict) -> dict[str, str]:
    db.rollback()  # nothing of a refused form is kept
    return {e.field: e.message for e in exc.errors} or {"form": exc.detail}


def _labels() -> dict[str, dict[str, str]]:
    return {"kind": dict(_kinds()), "role": dict(_roles())}


# Organizations -----------------------------------------------------------------------------------------------


@router.get("/organizations")
def organizations(
    request: Request, db: DbSession, principal: CurrentPrincipal,
    q: Annotated[str | None, Query(max_length=100)] = None, kind: str | None = None,
    country: Annotated[str | None, Query(max_length=2)] = None, page: Annotated[int, Query(ge=1)] = 1,
) -> Response:
    policy.require(principal, "org.read")
    kind = kind if kind in {k.value for k in OrgKind} else None
    result = service.list_organizations(db, principal, q=q, kind=kind, country=country or None, page=page)
    return render(request, "network/organizations.html", {
        "page": result, "q": q or "", "kind": kind or "", "country": country or "", "kinds": _kinds(),
        "labels": _labels(), "countries": i18n.countries(i18n.locale_var.get()),
    })


@router.get("/organizations/new")
def new_organization(request: Request, principal: CurrentPrincipal) -> Response:
    policy.require(principal, "org.manage")
    return render(request, "network/organization_form.html", {
        "org": None, "values": {}, "errors": {}, "kinds": _kinds(), "countries": i18n.countries(i18n.locale_var.get()),
    })


@router.post("/organizations/new")
def create_organization(
    request: Request, db: DbSession, principal: CurrentPrincipal,
    name: Annotated[str, Form(max_length=400)] = "", short_name: Annotated[str, Form(max_length=80)] = "",
    kind: Annotated[str, Form(max_length=40)] = "", country: Annotated[str, Form(max_length=2)] = "",
) -> Response:
    policy.require(principal, "org.manage")
    try:
        org = service.create_organization(db, actor=principal, name=name, short_name=short_name, kind=kind,
                                          country=country or None)
    except ValidationFailed as exc:
        return render(request, "network/organization_form.html", {
            "org": None, "values": {"name": name, "short_name": short_name, "kind": kind, "country": country},
            "errors": _form_errors(db, exc), "kinds": _kinds(), "countries": i18n.countries(i18n.locale_var.get()),
        }, status=422)
    return redirect(f"/organizations/{org.id}?notice=created")


@router.get("/organizations/{org_id}")
def organization(request: Request, org_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
                 notice: str | None = None) -> Response:
    org = policy.access(db, principal, Organization, org_id, "org.read")
    members = service.members_of(db, org) if policy.can(principal, "org.members.read", org) else None
    return render(request, "network/organization.html", {
        "org": org, "members": members, "labels": _labels(), "notice": _notice(notice),
        "can_manage": policy.can(principal, "org.manage", org),
        "can_add_people": policy.can(principal, "membership.manage", org),
    })


@router.get("/organizations/{org_id}/edit")
def edit_organization(request: Request, org_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    org = policy.access(db, principal, Organization, org_id, "org.manage")
    return render(request, "network/organization_form.html", {
        "org": org, "values": {"name": org.name, "short_name": org.short_name, "kind": org.kind,
                               "country": org.country or "", "active": org.active},
        "errors": {}, "kinds": _kinds(), "countries": i18n.countries(i18n.locale_var.get()),
    })


@router.post("/organizations/{org_id}/edit")
def update_organization(
    request: Request, org_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
    name: Annotated[str, Form(max_length=400)] = "", country: Annotated[str, Form(max_length=2)] = "",
    active: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    org = policy.access(db, principal, Organization, org_id, "org.manage")
    try:
        service.update_organization(db, actor=principal, org=org, name=name, country=country or None,
                                    active=active == "on")
    except (ValidationFailed, Conflict) as exc:
        errors = _form_errors(db, exc)
        return render(request, "network/organization_form.html", {
            "org": org, "values": {"name": name, "short_name": org.short_name, "kind": org.kind,
                                   "country": country, "active": active == "on"},
            "errors": errors, "kinds": _kinds(), "countries": i18n.countries(i18n.locale_var.get()),
        }, status=422)
    return redirect(f"/organizations/{org.id}?notice=saved")


# People ------------------------------------------------------------------------------------------------------


def _manageable_orgs(db: Session, principal: identity.Principal) -> list[Organization]:
    stmt = select(Organization).where(Organization.active.is_(True)).order_by(Organization.name)
    if not principal.is_secretariat_admin:
        stmt = stmt.where(Organization.id == principal.org_id)
    return [o for o in db.scalars(stmt) if policy.can(principal, "membership.manage", o)]


@router.get("/people")
def people(
    request: Request, db: DbSession, principal: CurrentPrincipal,
    q: Annotated[str | None, Query(max_length=100)] = None, org: uuid.UUID | None = None,
    status: str | None = None, page: Annotated[int, Query(ge=1)] = 1,
) -> Response:
    policy.require(principal, "person.list")
    active = {"active": True, "inactive": False}.get(status or "")
    result = service.list_people(db, principal, q=q, org_id=org, active=active, page=page)
    return render(request, "network/people.html", {
        "page": result, "q": q or "", "org": str(org) if org else "", "status": status or "",
        "orgs": _manageable_orgs(db, principal),
    })


@router.get("/people/new")
def new_person(request: Request, db: DbSession, principal: CurrentPrincipal, org: uuid.UUID | None = None) -> Response:
    policy.require(principal, "person.manage")
    return render(request, "network/person_form.html", {
        "values": {"org_id": str(org or principal.org_id or "")}, "errors": {},
        "orgs": _manageable_orgs(db, principal), "roles": _roles(), "locales": i18n.LOCALES
    })


@router.post("/people/new")
def create_person(
    request: Request, db: DbSession, principal: CurrentPrincipal,
    email: Annotated[str, Form(max_length=254)] = "", full_name: Annotated[str, Form(max_length=400)] = "",
    org_id: Annotated[str, Form(max_length=40)] = "", role: Annotated[str, Form(max_length=40)] = "",
    locale: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    policy.require(principal, "person.manage")
    values = {"email": email, "full_name": full_name, "org_id": org_id, "role": role, "locale": locale}
    try:
        try:
            org = policy.access(db, principal, Organization, uuid.UUID(org_id), "membership.manage")
        except (ValueError, policy.NotFound):
            raise ValidationFailed("org_id", i18n.gettext("Choose an organization you administer")) from None
        user = service.create_person(db, actor=principal, email=email, full_name=full_name, org=org, role=role,
                                     locale=locale or None)
    except ValidationFailed as exc:
        return render(request, "network/person_form.html", {
            "values": values, "errors": _form_errors(db, exc), "orgs": _manageable_orgs(db, principal),
            "roles": _roles(), "locales": i18n.LOCALES
        }, status=422)
    return redirect(f"/people/{user.id}?notice=invited")


@router.get("/people/{user_id}")
def person(request: Request, user_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
           notice: str | None = None) -> Response:
    user = policy.access(db, principal, User, user_id, "person.read")
    memberships = db.execute(
        select(Membership, Organization).join(Organization).where(Membership.user_id == user.id)
        .order_by(Organization.name)
    ).all()
    return render(request, "network/person.html", {
        "person": user, "memberships": memberships, "labels": _labels(), "notice": _notice(notice),
        "can_manage": policy.can(principal, "person.manage", user),
        "can_roles": policy.can(principal, "person.roles", user),
        "grant_orgs": _manageable_orgs(db, principal), "roles": _roles(),
        "sessions": len(identity.live_sessions(db, user.id)),
        "can_remove": lambda org: policy.can(principal, "membership.manage", org),
    })


@router.post("/people/{user_id}/edit")
def update_person(
    request: Request, user_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
    full_name: Annotated[str, Form(max_length=400)] = "", active: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    user = policy.access(db, principal, User, user_id, "person.manage")
    service.update_person(db, actor=principal, user=user, full_name=full_name, active=active == "on")
    return redirect(f"/people/{user.id}?notice=saved")


@router.post("/people/{user_id}/roles")
def grant_role(
    request: Request, user_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal,
    org_id: Annotated[str, Form(max_length=40)] = "", role: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    user = policy.access(db, principal, User, user_id, "person.roles")
    try:
        org = policy.access(db, principal, Organization, uuid.UUID(org_id), "membership.manage")
    except ValueError:
        raise ValidationFailed("org_id", i18n.gettext("is not an organization")) from None
    service.grant_role(db, actor=principal, user=user, org=org, role=role)
    return redirect(f"/people/{user.id}?notice=role-added")


@router.post("/people/{user_id}/roles/{membership_id}/remove")
def revoke_role(request: Request, user_id: uuid.UUID, membership_id: uuid.UUID, db: DbSession,
                principal: CurrentPrincipal) -> Response:
    user = policy.access(db, principal, User, user_id, "person.roles")
    membership = service.accessible_membership(db, principal, membership_id)
    if membership.user_id != user.id:
        raise policy.NotFound()
    service.revoke_role(db, actor=principal, membership=membership)
    return redirect(f"/people/{user.id}?notice=role-removed")


@router.post("/people/{user_id}/sessions/revoke")
def revoke_sessions(request: Request, user_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    user = policy.access(db, principal, User, user_id, "person.manage")
    service.revoke_sessions(db, actor=principal, user=user)
    return redirect(f"/people/{user.id}?notice=sessions-revoked")


@router.post("/people/{user_id}/mfa/reset")
def reset_mfa(request: Request, user_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    user = policy.access(db, principal, User, user_id, "person.manage")
    policy.require_step_up(principal)
    service.reset_mfa(db, actor=principal, user=user)
    return redirect(f"/people/{user.id}?notice=mfa-reset")


@router.post("/people/{user_id}/invite")
def resend_invitation(request: Request, user_id: uuid.UUID, db: DbSession, principal: CurrentPrincipal) -> Response:
    user = policy.access(db, principal, User, user_id, "person.manage")
    org = db.scalars(select(Organization).join(Membership).where(Membership.user_id == user.id)
                     .order_by(Organization.name)).first()
    if org is None or user.password_hash is not None:
        raise Conflict(i18n.gettext("This person has already set a password"))
    service.send_invitation(db, user=user, org=org)
    return redirect(f"/people/{user.id}?notice=invited")

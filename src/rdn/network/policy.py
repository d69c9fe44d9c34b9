"""Who may see and manage organizations, people and roles (registered with ``rdn.core.policy``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, exists, false, select, true

from rdn.core import policy
from rdn.core.identity import Principal, User
from rdn.core.tenancy import Membership, Organization, OrgKind, Role
from rdn.core.webhooks import WebhookEndpoint


def _org_admin_of(p: Principal, org_id: Any) -> bool:
    return p.org_id == org_id and Role.admin in p.roles


# Organizations: the directory of the network is visible to every signed-in member.
@policy.scope_filter(Organization)
def _orgs_visible(p: Principal) -> ColumnElement[bool]:
    return true()


@policy.rule("org.read", scope="read")
def _org_read(p: Principal, org: Any) -> bool:
    """Every member of the network sees the directory of organizations."""
    return True


@policy.rule("org.manage", scope="admin")
def _org_manage(p: Principal, org: Any) -> bool:
    """Only the secretariat's administrators create and edit organizations."""
    return p.is_secretariat_admin


@policy.rule("org.members.read", scope="read")
def _org_members(p: Principal, org: Any) -> bool:
    """An organization's people are listed to its administrators and the secretariat's."""
    if org is None:
        return p.is_secretariat_admin or Role.admin in p.roles
    return p.is_secretariat_admin or _org_admin_of(p, org.id)


# People: the secretariat's administrators see everyone; an organization's administrators see its people;
# everyone sees themselves.
@policy.scope_filter(User)
def _people_visible(p: Principal) -> ColumnElement[bool]:
    if p.is_secretariat_admin:
        return true()
    if Role.admin in p.roles and p.org_id is not None:
        member = exists(select(Membership.id).where(Membership.user_id == User.id,
                                                    Membership.org_id == p.org_id))
        return member | (User.id == p.user_id)
    return User.id == p.user_id


@policy.rule("person.list", scope="read")
def _person_list(p: Principal, _obj: Any) -> bool:
    """Administrators list the people they manage."""
    return p.is_secretariat_admin or Role.admin in p.roles


@policy.rule("person.read", scope="read")
def _person_read(p: Principal, user: Any) -> bool:
    """Seeing a person's record (reached through the scoped query)."""
    return p.is_secretariat_admin or Role.admin in p.roles or (user is not None and user.id == p.user_id)


@policy.rule("person.manage", scope="admin")
def _person_manage(p: Principal, user: Any) -> bool:
    """Creating people, and what acts on their whole account (name, access, MFA, sessions): administrators,
    never on themselves through the admin pages (self-service is on the account page). A person who also
    belongs to another organization is managed by the secretariat: one organization's administrator must not
    lock them out of the others."""
    if not (p.is_secretariat_admin or Role.admin in p.roles):
        return False
    if user is None:
        return True
    if user.id == p.user_id:
        return False
    return p.is_secretariat_admin or all(m.org_id == p.org_id for m in user.memberships)


@policy.rule("person.roles", scope="admin")
def _person_roles(p: Principal, user: Any) -> bool:
    """Giving or taking roles in one's own organization (the organization is checked separately with
    membership.manage), for anyone one can see, never oneself."""
    return (p.is_secretariat_admin or Role.admin in p.roles) and user is not None and user.id != p.user_id


@policy.rule("membership.manage", scope="admin")
def _membership_manage(p: Principal, org: Any) -> bool:
    """Giving and taking roles in an organization: its administrators, or the secretariat's."""
    if org is None:
        return p.is_secretariat_admin or Role.admin in p.roles
    return p.is_secretariat_admin or _org_admin_of(p, org.id)


# Webhook endpoints: an organization's administrators manage their own.
@policy.scope_filter(WebhookEndpoint)
def _webhooks_visible(p: Principal) -> ColumnElement[bool]:
    if Role.admin in p.roles and p.org_id is not None and p.org_kind != OrgKind.sponsor_group:
        return WebhookEndpoint.org_id == p.org_id
    return false()


@policy.rule("webhook.manage", scope="admin")
def _webhook_manage(p: Principal, endpoint: Any) -> bool:
    """An organization's administrators manage the webhooks its own systems receive."""
    return (Role.admin in p.roles and p.org_id is not None and p.org_kind != OrgKind.sponsor_group
            and (endpoint is None or endpoint.org_id == p.org_id))

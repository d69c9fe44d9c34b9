"""Who may operate the platform: the secretariat's administrators, and each organization's own for its log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, false, true

from rdn.core import policy
from rdn.core.audit import AuditEntry
from rdn.core.identity import Principal
from rdn.core.outbox import Job
from rdn.core.tenancy import Role


@policy.scope_filter(Job)
def _jobs_visible(p: Principal) -> ColumnElement[bool]:
    return true() if p.is_secretariat_admin else false()


@policy.rule("jobs.manage", scope="admin")
def _jobs_manage(p: Principal, _obj: Any) -> bool:
    """The outbox (pending, dead letters, retries) is run by the secretariat's administrators."""
    return p.is_secretariat_admin


@policy.scope_filter(AuditEntry)
def _audit_visible(p: Principal) -> ColumnElement[bool]:
    if p.is_secretariat_admin:
        return true()
    if Role.admin in p.roles and p.org_id is not None:
        return AuditEntry.org_id == p.org_id
    return false()


@policy.rule("audit.read", scope="admin")
def _audit_read(p: Principal, _obj: Any) -> bool:
    """The secretariat's administrators read the whole log; an organization's administrators its part."""
    return p.is_secretariat_admin or Role.admin in p.roles


@policy.rule("audit.verify", scope="admin")
def _audit_verify(p: Principal, _obj: Any) -> bool:
    """Verifying the whole chain reads every entry: the secretariat's administrators."""
    return p.is_secretariat_admin


@policy.rule("events.subscribe", scope="read")
def _events(p: Principal, _obj: Any) -> bool:
    """Everyone signed in receives live events on their own channels."""
    return True


def channels_for(p: Principal) -> list[str]:
    """The event channels a principal may listen to: their own, their organization's, the network's."""
    channels = [f"user:{p.user_id}", "network"]
    if p.org_id is not None:
        channels.append(f"org:{p.org_id}")
    if p.is_secretariat_admin:
        channels.append("ops")
    return channels

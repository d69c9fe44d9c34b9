"""Rules for one's own account."""

from __future__ import annotations

from typing import Any

from rdn.core import policy
from rdn.core.identity import Principal
from rdn.core.tenancy import OrgKind, Role


@policy.rule("account.read", scope="read")
def _account_read(p: Principal, _obj: Any) -> bool:
    """Everyone signed in sees their own account."""
    return True


@policy.rule("token.create", scope="admin")
def _token_create(p: Principal, _obj: Any) -> bool:
    """API tokens are for staff acting in an organization (a browser session, never another token);
    sponsors, who are citizens, have no API access."""
    return (p.via == "session" and p.org is not None and p.org_kind != OrgKind.sponsor_group
            and bool(p.roles - {Role.sponsor}))


@policy.rule("account.manage", scope="write")
def _account_manage(p: Principal, _obj: Any) -> bool:
    """Changing one's own account (revoking one's tokens through the API) needs the write scope."""
    return True

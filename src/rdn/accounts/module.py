"""Accounts as a module: sign-in pages, the account page, the "me" API, the security card."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from rdn.accounts import policy as _policy  # noqa: F401 - registers the rules
from rdn.accounts.api import router as api
from rdn.accounts.pages import router as pages
from rdn.core import identity
from rdn.core.identity import Principal, User
from rdn.core.modules import Module
from rdn.core.web import Card


def _security_card(session: Session, principal: Principal) -> dict[str, Any]:
    user = session.get(User, principal.user_id)
    return {"mfa": bool(user and user.mfa_enrolled),
            "sessions": len(identity.live_sessions(session, principal.user_id)),
            "mfa_required": identity.mfa_required(session, principal.user_id)}


module = Module(name="accounts", pages=pages, api=api,
                cards=[Card("cards/security.html", _security_card, order=90)])

"""Operations as a module: outbox and audit pages and API, live events, the operations card."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rdn.core.audit import AuditHead
from rdn.core.i18n import N_
from rdn.core.identity import Principal
from rdn.core.modules import Module
from rdn.core.outbox import counts
from rdn.core.web import Card, NavItem
from rdn.ops import policy as _policy  # noqa: F401 - registers the rules
from rdn.ops.api import router as api
from rdn.ops.pages import router as pages


def _ops_card(session: Session, principal: Principal) -> dict[str, Any]:
    head = session.scalar(select(func.max(AuditHead.seq)))
    return {"counts": counts(session), "audit_entries": head or 0}


module = Module(
    name="ops", pages=pages, api=api,
    nav=[NavItem(N_("Outbox"), "/admin/jobs", action="jobs.manage", order=900),
         NavItem(N_("Audit log"), "/admin/audit", action="audit.read", order=910)],
    cards=[Card("cards/ops.html", _ops_card, action="jobs.manage", order=80)],
)

"""The one decision point for authorization: deny by default.

* An *action* (``"org.update"``, ``"case.read"``) is allowed only if a rule was registered for it and the
  rule says yes. Unknown actions are denied. Each rule names the token scope it needs (``read``, ``write``,
  ``admin``); browser sessions hold every scope, API tokens only theirs.
* Reads are scoped by construction: :func:`scoped` starts a query already filtered to what the caller may
  see, and :func:`access` fetches one object through it, raising :class:`NotFound` whether the object is
  missing or not the caller's (the same 404 either way).
* Domains register their rules and scopes from their own ``policy.py``; this module imports no domain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, false, select
from sqlalchemy.orm import Session

from rdn.core.identity import Principal

T = TypeVar("T")
Rule = Callable[[Principal, Any], bool]
ScopeFilter = Callable[[Principal], ColumnElement[bool]]


class AuthError(Exception):
    """Base of the authorization failures; the web layer maps them to responses."""


class NotAuthenticated(AuthError):
    """No valid credentials: 401 for the API, a redirect to the login page for pages."""


class NotFound(AuthError):
    """Missing *or* not yours: always the same 404."""


class Forbidden(AuthError):
    """A capability the caller does not have (no object involved): 403."""


class StepUpRequired(AuthError):
    """The action needs a fresh TOTP confirmation."""


@dataclass(frozen=True)
class _Registered:
    rule: Rule
    scope: str
    description: str


_rules: dict[str, _Registered] = {}
_scopes: dict[type, ScopeFilter] = {}


def rule(action: str, *, scope: str, description: str = "") -> Callable[[Rule], Rule]:
    """Register the rule deciding ``action``; one rule per action."""
    if scope not in {"read", "write", "admin"}:
        raise ValueError(f"unknown scope {scope!r}")

    def decorate(fn: Rule) -> Rule:
        if action in _rules and _rules[action].rule is not fn:
            raise RuntimeError(f"a rule for {action!r} is already registered")
        _rules[action] = _Registered(fn, scope, description or (fn.__doc__ or "").strip())
        return fn

    return decorate


def scope_filter(model: type) -> Callable[[ScopeFilter], ScopeFilter]:
    """Register the filter that limits ``model`` rows to what a principal may see."""

    def decorate(fn: ScopeFilter) -> ScopeFilter:
        _scopes[model] = fn
        return fn

    return decorate


def can(principal: Principal | None, action: str, obj: Any = None) -> bool:
    if principal is None:
        return False
    registered = _rules.get(action)
    if registered is None or not principal.has_scope(registered.scope):
        return False
    return bool(registered.rule(principal, obj))


def require(principal: Principal | None, action: str, obj: Any = None) -> None:
    """Raise unless allowed: NotAuthenticated without a principal, NotFound for an object, else Forbidden."""
    if principal is None:
        raise NotAuthenticated()
    if not can(principal, action, obj):
        raise NotFound() if obj is not None else Forbidden()


def scoped(principal: Principal | None, model: type[T]) -> Select[tuple[T]]:
    """``select(model)`` limited to the rows ``principal`` may see (none without a registered filter)."""
    stmt = select(model)
    filt = _scopes.get(model)
    if principal is None or filt is None:
        return stmt.where(false())
    return stmt.where(filt(principal))


def access(session: Session, principal: Principal | None, model: type[T], object_id: Any,
           action: str | None = None) -> T:
    """Fetch one object the caller may see (and act on, if ``action``), or raise NotFound."""
    if principal is None:
        raise NotAuthenticated()
    pk = model.__mapper__.primary_key[0]  # type: ignore[attr-defined]
    obj = session.scalars(scoped(principal, model).where(pk == object_id)).first()
    if obj is None or (action is not None and not can(principal, action, obj)):
        raise NotFound()
    return obj


def require_step_up(principal: Principal, minutes: int = 10) -> None:
    if principal.via == "session" and not principal.mfa_recent(minutes):
        raise StepUpRequired()


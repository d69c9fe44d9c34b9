"""How a domain plugs into the platform: its routers, navigation, dashboard cards, demo data and jobs.

Each domain package defines ``module = Module(...)`` in its ``module.py``; ``rdn.modules`` lists the installed
ones. The application, the CLI and the worker load them from there, so adding a domain is one line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter
from sqlalchemy.orm import Session

from rdn.core.web import Card, NavItem, UnitOfWorkRoute


def page_router(**kwargs: Any) -> APIRouter:
    """A router for HTML pages (left out of the OpenAPI document)."""
    return APIRouter(route_class=UnitOfWorkRoute, include_in_schema=False, **kwargs)


def api_router(**kwargs: Any) -> APIRouter:
    """A router for the JSON API under /api/v1."""
    return APIRouter(route_class=UnitOfWorkRoute, **kwargs)


@dataclass
class DemoContext:
    """What the demo seeders share: the session, what earlier seeders created, and the output."""

    session: Session
    orgs: dict[str, Any] = field(default_factory=dict)  # short_name -> Organization
    people: dict[str, Any] = field(default_factory=dict)  # persona key -> User
    personas: list[dict[str, str]] = field(default_factory=list)  # printed at the end
    say: Callable[[str], None] = print


@dataclass
class Module:
    name: str
    pages: APIRouter | None = None
    api: APIRouter | None = None
    nav: list[NavItem] = field(default_factory=list)
    cards: list[Card] = field(default_factory=list)
    demo: Callable[[DemoContext], None] | None = None
    demo_order: int = 100

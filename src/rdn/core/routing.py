"""A path index in front of the application's routers.

FastAPI (0.160 and later) keeps each included router as one entry of the application's routes and, for every
request, asks each entry in turn whether one of its routes matches: a linear scan over every route of every
module (some 400), through several layers of calls per route. With every module's pages and API included, that
scan was about a tenth of a page's CPU time and grew with each module.

``index_routers`` gives each included router a set of the literal path prefixes its routes start with (up to
three segments, stopping at the first parameter: ``/api/v1/pathways/{id}`` gives ``api/v1/pathways``). A request
whose path starts with none of a router's prefixes is answered "no match" by that router without looking at its
routes; the others are asked as before, in the same order. Routes whose path starts with a parameter give an
empty prefix, which every path starts with, so such a router is always asked. The order in which routes are
tried, and so which route answers, is unchanged: a router is skipped only when none of its routes could match.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.routing import BaseRoute, Match, Mount, get_route_path

DEPTH = 3  # path segments per prefix


def literal_prefix(path: str) -> tuple[str, ...]:
    """The first segments of a route's path up to its first parameter (at most DEPTH)."""
    prefix: list[str] = []
    for segment in path.strip("/").split("/"):
        if not segment or "{" in segment or len(prefix) == DEPTH:
            break
        prefix.append(segment)
    return tuple(prefix)


def _segments(path: str) -> tuple[str, ...]:
    return tuple(s for s in path.split("/", DEPTH + 1)[1:DEPTH + 1] if s)


class PrefixFilter:
    """``matches`` for one included router: NONE at once for a path none of its routes could match."""

    def __init__(self, route: BaseRoute, prefixes: Iterable[tuple[str, ...]]) -> None:
        self.inner = route.matches
        self.prefixes = frozenset(prefixes)

    def could_match(self, path: str) -> bool:
        segments = _segments(path)
        return any(segments[:k] in self.prefixes for k in range(len(segments) + 1))

    def __call__(self, scope: Any) -> tuple[Match, dict[str, Any]]:
        if scope.get("type") in ("http", "websocket") and not self.could_match(get_route_path(scope)):
            return Match.NONE, {}
        return self.inner(scope)  # type: ignore[no-any-return]


def _route_paths(route: BaseRoute) -> list[str] | None:
    """The full paths of the routes an included router holds, or None if this FastAPI does not say."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI before 0.160 copies included routes into the application's own list
        return None
    paths = []
    for context in iter_route_contexts([route]):
        path = getattr(context, "path", None)
        if not isinstance(path, str):
            return None
        if isinstance(context.original_route, Mount):
            path = path.rstrip("/") + "/{path}"
        paths.append(path)
    return paths


def index_routers(routes: list[BaseRoute]) -> int:
    """Put a PrefixFilter on every included router among ``routes``; returns how many were indexed."""
    indexed = 0
    for route in routes:
        if not hasattr(route, "effective_route_contexts") or isinstance(route.matches, PrefixFilter):
            continue
        paths = _route_paths(route)
        if not paths:
            continue
        route.matches = PrefixFilter(route, {literal_prefix(p) for p in paths})  # type: ignore[method-assign]
        indexed += 1
    return indexed

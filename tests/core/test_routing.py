"""The path index in front of the routers answers exactly as the unindexed scan would."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute
from starlette.routing import Match

from rdn.core.routing import PrefixFilter, literal_prefix


def test_literal_prefix_stops_at_the_first_parameter_or_depth():
    assert literal_prefix("/api/v1/pathways/{pathway_id}") == ("api", "v1", "pathways")
    assert literal_prefix("/cases/{case_id}/notes") == ("cases",)
    assert literal_prefix("/{slug}") == ()
    assert literal_prefix("/") == ()
    assert literal_prefix("/a/b/c/d/e") == ("a", "b", "c")


class _Fake:
    def __init__(self):
        self.asked = 0

    def matches(self, scope):
        self.asked += 1
        return Match.FULL, {}


def test_a_router_is_asked_only_for_paths_its_routes_could_match():
    inner = _Fake()
    f = PrefixFilter(inner, [("pathways",), ("api", "v1", "pathways")])  # type: ignore[arg-type]
    for path in ("/pathways", "/pathways/", "/pathways/new", "/api/v1/pathways/x/y/z"):
        assert f({"type": "http", "path": path, "root_path": ""})[0] == Match.FULL, path
    for path in ("/", "/cases", "/pathwaysX", "/api/v1/cases", "/api/v2/pathways"):
        assert f({"type": "http", "path": path, "root_path": ""}) == (Match.NONE, {}), path
    assert inner.asked == 4
    # A router holding a route that starts with a parameter is asked for everything.
    open_filter = PrefixFilter(_Fake(), [()])  # type: ignore[arg-type]
    assert open_filter({"type": "http", "path": "/anything/at/all", "root_path": ""})[0] == Match.FULL


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "00000000-0000-0000-0000-000000000001", path)


def _first(routes, scope, *, indexed: bool):
    for route in routes:
        matcher = route.matches if indexed or not isinstance(route.matches, PrefixFilter) else route.matches.inner
        match, _child = matcher(dict(scope))
        if match == Match.FULL:
            return route
    return None


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_every_route_is_found_by_the_same_router_with_and_without_the_index(app, method):
    from fastapi.routing import iter_route_contexts

    routes = app.router.routes
    assert sum(isinstance(r.matches, PrefixFilter) for r in routes) >= 10, "the routers are indexed"
    paths = {ctx.path for ctx in iter_route_contexts(routes)
             if isinstance(ctx.original_route, APIRoute) and method in ctx.original_route.methods}
    assert len(paths) > 50
    for path in [*sorted(paths), "/no/such/page", "/api/v1/no-such-thing"]:
        scope = {"type": "http", "path": _concrete(path), "root_path": "", "method": method, "headers": [],
                 "query_string": b""}
        assert _first(routes, scope, indexed=True) is _first(routes, scope, indexed=False), path

"""The shell's own routes: home dashboard, health checks, API documentation (served locally)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import text

from rdn import db, migrate
from rdn.config import get_settings
from rdn.core import policy
from rdn.core.modules import page_router
from rdn.core.web import CurrentPrincipal, DbSession, render, shell, static_url

router = page_router()


@router.get("/")
def home(request: Request, db_session: DbSession, principal: CurrentPrincipal) -> Response:
    cards = []
    for card in sorted(shell.cards, key=lambda c: c.order):
        if card.action and not policy.can(principal, card.action):
            continue
        ctx = card.context(db_session, principal)
        if ctx is not None:
            cards.append({"template": card.template, "ctx": ctx})
    return render(request, "layout/home.html", {"cards": cards})


@router.get("/healthz")
def healthz() -> JSONResponse:
    """The process is up (for load balancers' liveness checks)."""
    return JSONResponse({"status": "ok"})


@router.get("/readyz")
def readyz() -> JSONResponse:
    """The database answers and its schema is at the code's migration head."""
    try:
        with db.new_session() as session:
            conn = session.connection()
            conn.execute(text("SELECT 1"))
            current = migrate.current_revision(conn)
    except Exception as exc:
        return JSONResponse({"status": "unavailable", "database": f"unreachable: {type(exc).__name__}"},
                            status_code=503)
    head = migrate.head_revision()
    if current != head:
        return JSONResponse({"status": "unavailable", "database": "reachable", "migrations":
                             f"at {current}, code expects {head}: run `rdn db upgrade`"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "reachable", "migrations": current})


_DOCS = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>RDN API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="{icon}" type="image/svg+xml">
<link rel="stylesheet" href="{rdn_css}"><link rel="stylesheet" href="{css}"></head>
<body><main><h1 class="visually-hidden">RDN API</h1><div id="swagger-ui"></div></main>
<script src="{bundle}"></script><script src="{init}"></script></body></html>"""


@router.get("/api/docs")
def api_docs() -> Response:
    if not get_settings().docs_enabled:
        raise policy.NotFound()
    return HTMLResponse(_DOCS.format(css=static_url("vendor/swagger-ui/swagger-ui.css"),
                                     rdn_css=static_url("css/rdn.css"), icon=static_url("img/logo.svg"),
                                     bundle=static_url("vendor/swagger-ui/swagger-ui-bundle.js"),
                                     init=static_url("js/swagger-init.js")))


@router.get("/api/openapi.json")
def openapi(request: Request) -> Response:
    if not get_settings().docs_enabled:
        raise policy.NotFound()
    return JSONResponse(request.app.openapi())

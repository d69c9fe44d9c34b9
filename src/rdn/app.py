"""The application factory: mounts every installed module's routes, static files and error handlers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from rdn import __version__, modules
from rdn.config import Mode, Settings, get_settings, set_settings
from rdn.core import events, outbox, routing
from rdn.core.context import request_id_var
from rdn.core.web import STATIC_DIR, RequestContextMiddleware, install_error_handlers, shell, templates

API_DESCRIPTION = """The JSON API of RDN. Authenticate with `Authorization: Bearer <token>` (create tokens on
your account page or with `rdn token create`). Every POST accepts an `Idempotency-Key` header. Errors are
RFC 9457 `application/problem+json` documents whose `errors` name the offending fields."""


class RequestIdFilter(logging.Filter):
    """Every log line carries the request id (``-`` outside a request), to find a user's reference."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get() or "-"
        return True


class AccessLogFilter(logging.Filter):
    """Access log lines without query strings: password links carry their token there."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (*args[:2], args[2].split("?", 1)[0] + "?…", *args[3:])
        return True


def configure_logging() -> None:
    level = getattr(logging, get_settings().log_level)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"))
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("uvicorn.access").addFilter(AccessLogFilter())
    # Alembic announces itself at INFO on every readiness probe; its warnings and errors still show.
    logging.getLogger("alembic").setLevel(max(level, logging.WARNING))


def create_app(settings: Settings | None = None, *, start_worker: bool = False) -> FastAPI:
    if settings is not None:
        set_settings(settings)
    settings = get_settings()
    installed = modules.installed()
    modules.load_job_handlers()
    # Templates are read once, outside development (checking every file's date on each page costs ~1 ms).
    templates.env.auto_reload = settings.mode == Mode.dev

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        events.broker.start()
        worker = outbox.start_inprocess_worker() if start_worker else None
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()
            events.broker.stop()

    app = FastAPI(title="RDN", version=__version__, description=API_DESCRIPTION, docs_url=None,
                  redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    shell.nav.clear()
    shell.cards.clear()
    # API routes first, then pages: a request is matched against the routes in order, and the API's clients
    # are the ones that call many times a second (the pages' paths never start with /api/).
    for module in installed:
        if module.api is not None:
            app.include_router(module.api)
    for module in installed:
        if module.pages is not None:
            app.include_router(module.pages)
        shell.nav.extend(module.nav)
        shell.cards.extend(module.cards)
    # Each included router is asked only for paths its routes start with (rdn.core.routing).
    routing.index_routers(app.router.routes)
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware)
    app.state.settings = settings
    return app

"""The web layer's shared machinery, used by every domain's ``api.py`` and ``pages.py``.

* :class:`UnitOfWorkRoute`: every route commits its session once, after the handler returned and before the
  response leaves; an exception rolls everything back. It also checks CSRF on unsafe requests made with a
  session cookie, and applies ``Idempotency-Key`` on POSTs of the JSON API.
* Typed dependencies: ``DbSession``, ``OptionalPrincipal``, ``CurrentPrincipal``, ``allowed("action")``.
* :func:`render` for pages (layout context, CSRF token, navigation), problem+json (RFC 9457) for the API.
* :class:`RequestContextMiddleware`: request id, locale, client address, security headers, ``no-store``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import uuid
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

import jinja2
from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rdn import db
from rdn.config import get_settings
from rdn.core import clock, i18n, idempotency, identity, policy
from rdn.core.context import client_ip_var, locale_var, request_id_var
from rdn.core.crypto import same_secret
from rdn.core.errors import ProblemError, TooManyRequests
from rdn.core.identity import Principal

log = logging.getLogger("rdn.web")

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
TEMPLATE_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"
LOCALE_COOKIE = "rdn_locale"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def session_cookie_name() -> str:
    return "__Host-rdn_session" if get_settings().secure_cookies else "rdn_session"


def csrf_cookie_name() -> str:
    return "__Host-rdn_csrf" if get_settings().secure_cookies else "rdn_csrf"


# Who is calling ----------------------------------------------------------------------------------------------


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def resolve_principal(request: Request) -> Principal | None:
    """Authenticate once per request (in a short transaction of its own) and remember the result."""
    state = request.state
    if hasattr(state, "principal"):
        return state.principal  # type: ignore[no-any-return]
    # Tokens are for the API; pages answer to browser sessions only (a token's scopes mean nothing there).
    bearer = _bearer(request) if request.url.path.startswith("/api/") else None
    cookie = None if bearer is not None else request.cookies.get(session_cookie_name())
    principal = None
    if not (bearer or cookie):
        pass
    elif db.dialect_name(get_db(request)) == "postgresql":
        # On PostgreSQL the check reads in the request's own transaction (no second connection, BEGIN and
        # COMMIT of its own on the busiest paths).
        principal = identity.authenticate(get_db(request), bearer=bearer, cookie=cookie, touch=False)
    else:
        # A transaction of its own, even inside a route's unit of work: on SQLite every transaction takes the
        # write lock at BEGIN, so a request session opened here would lock out the other transactions some
        # handlers open (idempotency keys, a live room's access check) until the request ends. The check only
        # reads, in a transaction that takes no lock, so concurrent requests do not queue for it.
        with db.read_only() as session:
            principal = identity.authenticate(session, bearer=bearer, cookie=cookie, touch=False)
    if principal is not None and principal.use_due:
        # "Last seen" or "last used", at most every 30 or 60 seconds, in a short transaction of its own (so
        # that it holds whatever the request's own unit of work does).
        with db.transaction() as session:
            identity.record_use(session, principal)
    state.principal = principal
    return principal


def still_entitled(request: Request, check: Callable[[Principal], bool] | None = None) -> Callable[[], bool]:
    """For long-lived responses: re-authenticates with the request's credentials (bypassing the per-request
    cache) and applies ``check`` to the fresh principal."""
    user_id = getattr(getattr(request.state, "principal", None), "user_id", None)

    def recheck() -> bool:
        bearer = _bearer(request) if request.url.path.startswith("/api/") else None
        cookie = None if bearer is not None else request.cookies.get(session_cookie_name())
        with db.transaction() as session:
            fresh = identity.authenticate(session, bearer=bearer, cookie=cookie)
            return fresh is not None and fresh.user_id == user_id and (check is None or check(fresh))

    return recheck


def get_db(request: Request) -> Session:
    """The request's session (made on first ask, connected on first use)."""
    session = getattr(request.state, "db", None)
    if session is None:
        session = request.state.db = db.new_session()
    return session


def optional_principal(request: Request) -> Principal | None:
    return resolve_principal(request)


def current_principal(request: Request) -> Principal:
    principal = resolve_principal(request)
    if principal is None:
        raise policy.NotAuthenticated()
    return principal


async def posted_form(request: Request) -> FormData:
    """The request's form, parsed once (for forms whose fields repeat, such as a household's members)."""
    return await request.form()


async def _request_db(request: Request) -> Session:
    """``get_db`` as a dependency: async, so that handing out the session (no I/O) takes no trip through the
    thread pool that sync dependencies and handlers run in."""
    return get_db(request)


DbSession = Annotated[Session, Depends(_request_db)]
PostedForm = Annotated[FormData, Depends(posted_form)]
OptionalPrincipal = Annotated[Principal | None, Depends(optional_principal)]
CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def allowed(action: str) -> Any:
    """A dependency: the caller, if ``action`` (with no object) is allowed; 401/403 otherwise."""

    def dependency(request: Request) -> Principal:
        principal = current_principal(request)
        policy.require(principal, action)
        return principal

    dependency.__name__ = f"allowed_{action.replace('.', '_')}"
    return Depends(dependency)


# CSRF --------------------------------------------------------------------------------------------------------


class CsrfFailed(Exception):
    pass


def _sign_nonce(nonce: str) -> str:
    key = get_settings().secret_key.encode()
    return hmac.new(key, b"rdn-csrf:" + nonce.encode(), hashlib.sha256).hexdigest()


def csrf_token(request: Request) -> str:
    """The token forms on this page must carry: the session's, or one signed for this browser's cookie."""
    pending = getattr(request.state, "csrf_session_token", None)
    if pending:
        return str(pending)
    principal = getattr(request.state, "principal", None)
    if principal is not None and principal.csrf_token:
        return str(principal.csrf_token)
    nonce = request.cookies.get(csrf_cookie_name())
    if not nonce or len(nonce) > 64:
        nonce = getattr(request.state, "new_csrf_nonce", None) or secrets.token_urlsafe(24)
        request.state.new_csrf_nonce = nonce
    return _sign_nonce(nonce)


def _expected_csrf(request: Request) -> list[str]:
    expected = []
    nonce = request.cookies.get(csrf_cookie_name())
    if nonce and len(nonce) <= 64:
        expected.append(_sign_nonce(nonce))
    cookie = request.cookies.get(session_cookie_name())
    if cookie:
        with db.transaction() as session:
            row = identity.find_session(session, cookie, touch=False)
            if row is not None:
                expected.append(row.csrf_token)
    return expected


async def check_csrf(request: Request) -> None:
    if request.method not in UNSAFE_METHODS:
        return
    if request.url.path.startswith("/api/") and (request.headers.get("authorization")
                                                 or session_cookie_name() not in request.cookies):
        # API calls carrying a bearer token (a browser never sends one on its own), or no session at all
        # (a signed call from another system, such as the SMS provider): nothing a forged form could ride on.
        return
    site = request.headers.get("sec-fetch-site")
    if site and site not in ("same-origin", "none"):
        raise CsrfFailed()
    provided = request.headers.get("x-csrf-token")
    if not provided:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get("csrf_token")
            provided = value if isinstance(value, str) else None
    if not provided:
        raise CsrfFailed()
    expected = await run_in_threadpool(_expected_csrf, request)
    if not any(same_secret(provided, e) for e in expected):
        raise CsrfFailed()


# The unit of work --------------------------------------------------------------------------------------------


def _finish_session(request: Request, *, commit: bool) -> None:
    session: Session | None = getattr(request.state, "db", None)
    if session is None:
        return
    try:
        if commit:
            session.commit()
        else:
            session.rollback()
    finally:
        session.close()
        request.state.db = None


def _idempotency_scope(request: Request) -> str:
    principal = resolve_principal(request)
    if principal is None:
        client = client_ip_var.get() or "unknown"
        return "anon:" + hashlib.sha256(client.encode()).hexdigest()[:32]
    if principal.token_id is not None:
        return f"token:{principal.token_id}"
    return f"user:{principal.user_id}:{principal.org_id}"


async def _idempotency_begin(request: Request) -> uuid.UUID | Response:
    try:
        key = idempotency.check_key(request.headers[idempotency.HEADER])
    except idempotency.InvalidKey as exc:
        return problem(request, 422, "validation", "The request has invalid fields",
                       f"Idempotency-Key: {exc}", errors=[{"field": "header.Idempotency-Key",
                                                           "detail": str(exc)}])
    body = await request.body()
    req_hash = idempotency.request_hash(request.method, request.url.path, body)
    scope = await run_in_threadpool(_idempotency_scope, request)
    outcome = await run_in_threadpool(idempotency.begin, scope, key, req_hash)
    if outcome.action == "proceed":
        assert outcome.row_id is not None
        return outcome.row_id
    if outcome.action == "replay":
        response = Response(outcome.body or b"", status_code=outcome.status or 200,
                            media_type=outcome.content_type)
        response.headers["Idempotent-Replayed"] = "true"
        return response
    if outcome.action == "mismatch":
        return problem(request, 422, "idempotency-key-reused", "Idempotency key reused",
                       "Idempotency-Key: this key was used with a different request body",
                       errors=[{"field": "header.Idempotency-Key", "detail": "used with a different body"}])
    return problem(request, 409, "idempotency-in-progress", "Request in progress",
                   "Idempotency-Key: a request with this key is still being processed; retry shortly")


def internal_error(request: Request) -> Response:
    if is_api(request):
        return problem(request, 500, "internal", "Internal error",
                       "An unexpected error occurred; it has been logged with the request id")
    return error_page(request, 500)


class UnitOfWorkRoute(APIRoute):
    """Commit once at the boundary; CSRF on cookie-authenticated writes; idempotency keys on API POSTs."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            await check_csrf(request)
            idem: uuid.UUID | None = None
            if (request.method == "POST" and request.url.path.startswith("/api/")
                    and idempotency.HEADER in request.headers):
                try:
                    begun = await _idempotency_begin(request)
                except BaseException:
                    # Its scope may have authenticated in the request's session (an API token on PostgreSQL).
                    await run_in_threadpool(_finish_session, request, commit=False)
                    raise
                if isinstance(begun, Response):
                    await run_in_threadpool(_finish_session, request, commit=False)
                    return begun
                idem = begun
            try:
                try:
                    response = await original(request)
                except EXPECTED_ERRORS:
                    raise
                except Exception:
                    # Rendered here, inside the request's context (its id, language, security headers),
                    # rather than by Starlette's outermost handler, where all of that is already gone.
                    log.exception("unhandled error on %s %s", request.method, request.url.path)
                    await run_in_threadpool(_finish_session, request, commit=False)
                    if idem is not None:
                        await run_in_threadpool(idempotency.release, idem)
                    return internal_error(request)
                if idem is not None:
                    body = bytes(getattr(response, "body", b"") or b"")
                    session = await run_in_threadpool(get_db, request)
                    await run_in_threadpool(idempotency.complete, session, idem, response.status_code, body,
                                            response.headers.get("content-type"))
                await run_in_threadpool(_finish_session, request, commit=True)
            except BaseException:
                await run_in_threadpool(_finish_session, request, commit=False)
                if idem is not None:
                    await run_in_threadpool(idempotency.release, idem)
                raise
            return response

        return handler


# Pages -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NavItem:
    label: str  # a msgid, marked with N_()
    path: str
    action: str | None = None  # shown only if this policy action is allowed
    order: int = 100
    icon: str = ""


@dataclass(frozen=True)
class Card:
    """A home-dashboard card: ``context(session, principal)`` returns the template's variables, or None to
    hide the card."""

    template: str
    context: Callable[[Session, Principal], dict[str, Any] | None]
    action: str | None = None
    order: int = 100


@dataclass
class ShellRegistry:
    nav: list[NavItem] = field(default_factory=list)
    cards: list[Card] = field(default_factory=list)


shell = ShellRegistry()


def _static_hashes() -> dict[str, str]:
    hashes = {}
    for path in STATIC_DIR.rglob("*"):
        if path.is_file():
            hashes[path.relative_to(STATIC_DIR).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    return hashes


_STATIC_HASHES: dict[str, str] | None = None


def static_url(path: str) -> str:
    global _STATIC_HASHES
    if _STATIC_HASHES is None:
        _STATIC_HASHES = _static_hashes()
    version = _STATIC_HASHES.get(path, "0")
    return f"/static/{path}?v={version}"


@lru_cache(maxsize=16)
def _country_options_html(locale: str) -> str:
    return "".join(f'<option value="{code}">{escape(name)}</option>' for code, name in i18n.countries(locale))


def country_options(selected: str | Iterable[str] | None = None) -> Markup:
    """The ``<option>`` of every country, by name in the page's language, ``selected`` (a code, or several)
    marked: built once per language (a page with two country lists spent a third of its rendering on them)."""
    html = _country_options_html(locale_var.get())
    for code in [selected] if isinstance(selected, str) else (selected or ()):
        if isinstance(code, str) and len(code) == 2 and code.isalpha():
            html = html.replace(f'<option value="{code}">', f'<option value="{code}" selected>', 1)
    return Markup(html)  # noqa: S704 - names escaped above; codes are two letters


class ReleasingTemplate(jinja2.Template):
    """A template whose render lets go of its variables as soon as the page is written.

    Macros imported ``with context`` hold the context they were imported in, which holds every variable of the
    page (a search's rows, their ids, ...), and the context holds the macros: a reference cycle, freed only by
    the garbage collector. Each page left several hundred objects for it, and a young collection every few
    dozen pages took 30-50 ms, during which every request in the process waited. Emptying the contexts after
    rendering leaves the collector a few small objects per page; the variables go at once."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        ctx = self.new_context(dict(*args, **kwargs))
        try:
            return self.environment.concat(self.root_render_func(ctx))  # type: ignore[attr-defined,no-any-return]
        except Exception:
            self.environment.handle_exception()
        finally:
            release_context(ctx)


def release_context(ctx: jinja2.runtime.Context) -> None:
    """Empty a finished render's context and those of the macros it imported with context."""
    contexts = [ctx]
    for value in ctx.vars.values():
        func = getattr(value, "_func", None) if isinstance(value, jinja2.runtime.Macro) else None
        for cell in getattr(func, "__closure__", None) or ():
            try:
                inner = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            if isinstance(inner, jinja2.runtime.Context) and inner is not ctx:
                contexts.append(inner)
    for context in contexts:
        context.vars.clear()
        context.exported_vars.clear()
        context.parent = {}


def _make_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.template_class = ReleasingTemplate
    templates = Jinja2Templates(env=env)
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(
        static_url=static_url,
        country_name=i18n.country_name,
        country_options=country_options,
        locales=i18n.LOCALES,
        can=policy.can,
    )
    env.filters["datetime"] = i18n.format_datetime
    env.filters["number"] = i18n.format_number
    env.filters["date"] = i18n.format_date
    env.filters["language"] = i18n.language_name
    env.filters["country"] = i18n.country_name
    env.filters["and_list"] = i18n.format_list
    env.filters["countries"] = i18n.format_countries
    env.filters["days"] = i18n.format_days
    env.filters["urlquote"] = lambda value: quote(str(value), safe="")
    return templates


templates = _make_templates()


def nav_for(principal: Principal | None, path: str) -> list[dict[str, Any]]:
    items = []
    for item in sorted(shell.nav, key=lambda i: i.order):
        if principal is None or (item.action and not policy.can(principal, item.action)):
            continue
        current = path == item.path or (item.path != "/" and path.startswith(item.path))
        items.append({"label": i18n.gettext(item.label), "path": item.path, "current": current})
    return items


def render(request: Request, template: str, context: dict[str, Any] | None = None, *, status: int = 200,
           headers: dict[str, str] | None = None) -> HTMLResponse:
    principal = getattr(request.state, "principal", None)
    locale = locale_var.get()
    ctx: dict[str, Any] = {
        "principal": principal,
        "csrf_token": csrf_token(request),
        "nav": nav_for(principal, request.url.path),
        "locale": locale,
        "dir": i18n.direction(locale),
        "path": request.url.path,
        "query": str(request.url.query),
        "request_id": request_id_var.get(),
        "now": clock.now(),
    }
    ctx.update(context or {})
    response = templates.TemplateResponse(request, template, ctx, status_code=status, headers=headers)
    set_new_csrf_cookie(request, response)
    return response


def set_new_csrf_cookie(request: Request, response: Response) -> None:
    nonce = getattr(request.state, "new_csrf_nonce", None)
    if nonce:
        response.set_cookie(csrf_cookie_name(), nonce, httponly=True, samesite="lax",
                            secure=get_settings().secure_cookies, path="/")


def redirect(url: str, status: int = 303) -> RedirectResponse:
    return RedirectResponse(url, status_code=status)


def safe_next(value: str | None, default: str = "/") -> str:
    """Only same-site paths are followed after login (no open redirects)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return default


def _same_site_referer(request: Request) -> str | None:
    referer = request.headers.get("referer")
    if not referer:
        return None
    parts = urlsplit(referer)
    if parts.netloc and parts.netloc != request.url.netloc:
        return None
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return safe_next(path, "") or None


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


# Problems and error pages ------------------------------------------------------------------------------------


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def problem(request: Request, status: int, slug: str, title: str, detail: str, *,
            errors: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": f"/problems/{slug}", "title": title, "status": status, "detail": detail,
                            "instance": request.url.path}
    rid = request_id_var.get()
    if rid:
        body["request_id"] = rid
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)


_CHECK = i18n.N_("Please check what you entered and try again.")
ERROR_TEXT = {
    400: (i18n.N_("This request could not be understood"), _CHECK),
    401: (i18n.N_("Please sign in"), i18n.N_("You need to sign in to see this page.")),
    403: (i18n.N_("Not allowed"),
          i18n.N_("Your role does not allow this. Ask your organization's administrator if you need it.")),
    404: (i18n.N_("Page not found"), i18n.N_("There is nothing here, or it is not shared with you.")),
    405: (i18n.N_("This request could not be understood"), _CHECK),
    409: (i18n.N_("That could not be done"),
          i18n.N_("Someone may have changed this in the meantime. Reload the page and try again.")),
    422: (i18n.N_("Some fields need attention"), _CHECK),
    429: (i18n.N_("Too many attempts"), i18n.N_("Please wait a few minutes before trying again.")),
    500: (i18n.N_("Something went wrong"),
          i18n.N_("The error has been recorded. Please try again; if it persists, give the support team the "
                  "reference below.")),
}


def error_page(request: Request, status: int, detail: str | None = None,
               headers: dict[str, str] | None = None) -> HTMLResponse:
    title, message = ERROR_TEXT.get(status, ERROR_TEXT[500] if status >= 500 else ERROR_TEXT[400])
    return render(request, "errors/error.html",
                  {"status": status, "title": i18n.gettext(title), "message": i18n.gettext(message),
                   "detail": detail}, status=status, headers=headers)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        where = loc[0] if loc else "body"
        path = loc[1:] if loc and loc[0] in ("body", "query", "path", "header", "cookie") else loc
        name = ".".join(path) or where
        errors.append({"field": name, "in": where, "pointer": "#/" + "/".join(path),
                       "detail": err.get("msg", "is invalid")})
    return errors


def install_error_handlers(app: Any) -> None:
    @app.exception_handler(policy.NotAuthenticated)
    async def _unauthenticated(request: Request, exc: Exception) -> Response:
        if is_api(request):
            return problem(request, 401, "unauthenticated", "Authentication required",
                           "Send a valid API token as 'Authorization: Bearer ...'",
                           headers={"WWW-Authenticate": "Bearer"})
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return redirect(f"/login?next={quote(target, safe='')}")

    @app.exception_handler(policy.NotFound)
    async def _not_found(request: Request, exc: Exception) -> Response:
        if is_api(request):
            return problem(request, 404, "not-found", "Not found", "No such resource, or it is not shared with you")
        return error_page(request, 404)

    @app.exception_handler(policy.Forbidden)
    async def _forbidden(request: Request, exc: Exception) -> Response:
        if is_api(request):
            return problem(request, 403, "forbidden", "Forbidden", "Your role or token scope does not allow this")
        return error_page(request, 403)

    @app.exception_handler(policy.StepUpRequired)
    async def _step_up(request: Request, exc: Exception) -> Response:
        if is_api(request):
            return problem(request, 403, "step-up-required", "Recent MFA required",
                           "Confirm a TOTP code again before this action")
        if request.method == "GET":
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        else:
            # A refused form cannot be replayed by a redirect: go back to the page it came from.
            target = _same_site_referer(request) or "/"
        return redirect(f"/account/step-up?next={quote(target, safe='')}")

    @app.exception_handler(CsrfFailed)
    async def _csrf(request: Request, exc: Exception) -> Response:
        if is_api(request):
            return problem(request, 403, "csrf", "Cross-site request refused",
                           "X-CSRF-Token: missing or invalid for a request made with a session cookie")
        return error_page(request, 403, i18n.gettext("The form had expired. Go back, reload the page and try again."))

    @app.exception_handler(TooManyRequests)
    async def _too_many(request: Request, exc: TooManyRequests) -> Response:
        headers = {"Retry-After": str(exc.retry_after)}
        if is_api(request):
            return problem(request, 429, exc.slug, exc.title, exc.detail, headers=headers)
        return error_page(request, 429, headers=headers)

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> Response:
        errors = [{"field": e.field, "detail": e.message} for e in exc.errors] or None
        if is_api(request):
            return problem(request, exc.status, exc.slug, exc.title, exc.detail, errors=errors)
        # People read the messages (translated where raised), not the internal field names.
        return error_page(request, exc.status, "; ".join(e.message for e in exc.errors) or exc.detail)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = _validation_errors(exc)
        first = errors[0] if errors else {"field": "request", "detail": "is invalid"}
        detail = f"{first['field']}: {first['detail']}"
        if is_api(request):
            return problem(request, 422, "validation", "The request has invalid fields", detail, errors=errors)
        return error_page(request, 400)

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> Response:
        # The constraint's name, never the message (PostgreSQL's carries the conflicting values).
        diag = getattr(exc.orig, "diag", None)
        log.warning("integrity error: %s", getattr(diag, "constraint_name", None) or type(exc.orig).__name__)
        if is_api(request):
            return problem(request, 409, "conflict", "Conflict", "The change conflicts with existing data")
        return error_page(request, 409)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if is_api(request):
            return problem(request, exc.status_code, "http", str(exc.detail), str(exc.detail),
                           headers=getattr(exc, "headers", None))
        return error_page(request, exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:  # outside any route (a middleware)
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return internal_error(request)


#: Errors the application answers on purpose (see install_error_handlers); anything else is a bug.
EXPECTED_ERRORS = (policy.AuthError, CsrfFailed, ProblemError, RequestValidationError, IntegrityError,
                   StarletteHTTPException)


# Middleware --------------------------------------------------------------------------------------------------


class RequestContextMiddleware:
    """Request id, locale and client address for the request; security and caching headers on responses."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        incoming = headers.get("x-request-id", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        cookies = _cookies(headers.get("cookie", ""))
        settings = get_settings()
        locale = i18n.negotiate(cookies.get(LOCALE_COOKIE), headers.get("accept-language"),
                                settings.default_locale)
        # Behind a proxy, uvicorn (proxy_headers, forwarded_allow_ips) has already put the real client here,
        # trusting X-Forwarded-For only from the proxies named in RDN_FORWARDED_ALLOW_IPS.
        client = scope.get("client")
        ip = client[0] if client else None
        tokens = (request_id_var.set(request_id), locale_var.set(locale), client_ip_var.set(ip))
        path: str = scope["path"]
        secure = settings.secure_cookies

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                h = MutableHeaders(scope=message)
                h["X-Request-ID"] = request_id
                h["X-Content-Type-Options"] = "nosniff"
                h["Referrer-Policy"] = "same-origin"
                h["X-Frame-Options"] = "DENY"
                h["Cross-Origin-Opener-Policy"] = "same-origin"
                h["Cross-Origin-Resource-Policy"] = "same-origin"
                h["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), payment=()"
                if "content-security-policy" not in h:
                    h["Content-Security-Policy"] = CSP
                if secure:
                    h["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
                if path.startswith("/static/") and message["status"] in (200, 304):
                    h["Cache-Control"] = "public, max-age=31536000, immutable"
                else:
                    h["Cache-Control"] = "no-store"
                    h["Content-Language"] = locale
                    h.append("Vary", "Cookie")
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            for var, token in zip((request_id_var, locale_var, client_ip_var), tokens, strict=True):
                var.reset(token)


def _cookies(header: str) -> dict[str, str]:
    result = {}
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name:
            result[name] = value
    return result


"""The public JSON API of Safe Mobility, for partners' apps and kiosks that register people on their behalf: the
offices (who may register where) and registrations, with the same fields, checks and limits as the form.

No account is needed. ``Idempotency-Key`` works as on every POST of the API (a retried request returns the first
response, reference and PIN included, without registering twice). Errors are problem+json naming the fields
(``members[2].birth_date``), in the language the call names (``language``)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from pydantic import Field

from rdn.core.context import client_ip_var
from rdn.core.errors import TooManyRequests, ValidationFailed
from rdn.core.modules import api_router
from rdn.core.schemas import Out
from rdn.core.web import DbSession, problem
from rdn.mobility import public_i18n, registration
from rdn.mobility.public_i18n import PUBLIC_LOCALES

router = api_router(prefix="/api/v1/mobility", tags=["mobility (public)"])

MAX_BODY = 64 * 1024  # bytes: a household of 16 with every field at its longest fits many times over


class OfficeOut(Out):
    slug: str
    name: str
    country: str = Field(description="where the office is (ISO 3166)")
    nationalities: list[str] = Field(description="who may register (ISO 3166); empty: any")
    presence_cutoff: date | None = Field(description="registrants must have been in the country on or before it")
    accepting: bool
    address: str
    elsewhere: str = Field(description="where else to look, for those the office cannot register")


class RegisteredOut(Out):
    reference: str
    pin: str = Field(description="shown once: give it to the registrant, never store it")
    status: str
    status_url: str = Field(description="the public status page")


@router.get("/offices", response_model=list[OfficeOut], summary="The Safe Mobility offices and who may register")
def list_offices(db: DbSession) -> list[Any]:
    return [OfficeOut.model_validate(o) for o in registration.public_offices(db)]


def _problem_of(request: Request, exc: ValidationFailed) -> JSONResponse:
    errors = [{"field": e.field, "detail": e.message} for e in exc.errors]
    if isinstance(exc, registration.NotEligible):
        return problem(request, 422, "not-eligible", "Not eligible at this office",
                       "; ".join(exc.eligibility.reasons), errors=errors)
    return problem(request, 422, "validation", "The request has invalid fields", exc.detail, errors=errors)


@router.post("/offices/{office_slug}/registrations", response_model=RegisteredOut, status_code=201,
             summary="Register a household at an office (no account needed)")
async def create_registration(office_slug: str, request: Request, db: DbSession) -> Response:
    body = await request.body()
    return await _register(office_slug, request, db, body)


async def _register(office_slug: str, request: Request, db: Any, body: bytes) -> Response:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(_register_sync, office_slug, request, db, body)


def _register_sync(office_slug: str, request: Request, db: Any, body: bytes) -> Response:
    office = registration.office_by_slug(db, office_slug)
    if office is None:
        return problem(request, 404, "not-found", "Not found", "No Safe Mobility office at this address")
    if len(body) > MAX_BODY:
        return problem(request, 413, "too-large", "Request too large", f"At most {MAX_BODY} bytes")
    try:
        data = json.loads(body or b"null")
    except (ValueError, RecursionError):
        return problem(request, 422, "validation", "The request has invalid fields", "body: not valid JSON",
                       errors=[{"field": "body", "detail": "not valid JSON"}])
    language = data.get("language") if isinstance(data, dict) else None
    with public_i18n.using(language if isinstance(language, str) and language in PUBLIC_LOCALES else "en"):
        try:
            done = registration.register(db, office=office, data=data, ip=client_ip_var.get())
        except TooManyRequests:
            raise
        except ValidationFailed as exc:
            # Answered, not raised: the attempt stays counted against the address (floods of bad requests).
            return _problem_of(request, exc)
    reg = done.registration
    out = RegisteredOut(reference=reg.reference, pin=done.pin, status=str(reg.status.value),
                        status_url=f"/safe-mobility/status?lang={reg.language}")
    return JSONResponse(out.model_dump(mode="json"), status_code=201)

"""Errors services raise for the web layer to answer: RFC 9457 problems for the API, pages for people."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    field: str  # dotted path of the offending field, or "row 12, column name" for imports
    message: str


class ProblemError(Exception):
    """A request that cannot be done as asked. Nothing it started is kept (the transaction rolls back)."""

    status = 400
    slug = "bad-request"
    title = "Bad request"

    def __init__(self, detail: str, *, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class ValidationFailed(ProblemError):
    status = 422
    slug = "validation"
    title = "The request has invalid fields"

    def __init__(self, field: str | None = None, message: str | None = None, *,
                 errors: list[FieldError] | None = None) -> None:
        errors = list(errors or [])
        if field is not None:
            errors.insert(0, FieldError(field, message or "is invalid"))
        first = errors[0] if errors else FieldError("request", message or "is invalid")
        super().__init__(f"{first.field}: {first.message}", errors=errors)


class Conflict(ProblemError):
    status = 409
    slug = "conflict"
    title = "The request conflicts with the current state"


class TooManyRequests(ProblemError):
    status = 429
    slug = "rate-limited"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int = 60) -> None:
        super().__init__(detail)
        self.retry_after = retry_after

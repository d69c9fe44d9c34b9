"""Per-request context (request id, locale, client address) carried in context variables.

Starlette copies the context into the thread that runs a synchronous endpoint, so services and the audit
log can read these without threading them through every call.
"""

from __future__ import annotations

from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("rdn_request_id", default=None)
locale_var: ContextVar[str] = ContextVar("rdn_locale", default="en")
client_ip_var: ContextVar[str | None] = ContextVar("rdn_client_ip", default=None)

"""Configuration: environment variables prefixed ``RDN_``, parsed strictly.

* Every ``RDN_*`` variable must name a known setting: a typo stops start-up with a message naming it.
* Booleans accept only ``true/false/1/0/yes/no/on/off``; numbers must be numbers.
* Secrets may come from files: ``RDN_SECRET_KEY_FILE=/run/secrets/key`` (not both forms at once).
* Outside dev and test mode the platform refuses to start with a default secret or master key.
"""

from __future__ import annotations

import base64
import binascii
import os
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET_KEY = "dev-only-secret-key-do-not-use-in-production-0000000000"  # noqa: S105
# 32 zero-ish bytes, base64: a well-known key that only dev and test mode accept.
DEV_MASTER_KEY = base64.b64encode(b"rdn-dev-master-key-not-secret!!!").decode()

#: Settings that may be read from ``RDN_<NAME>_FILE``.
SECRET_FIELDS = ("secret_key", "master_key", "previous_master_keys", "database_url", "smtp_password", "sms_token",
                 "sms_inbound_secret")

#: Environment names with the RDN_ prefix that are not settings but are used by the tooling.
TOOLING_VARIABLES = {"RDN_TEST_DATABASE_URL", "RDN_REQUIRE_BROWSER", "RDN_BENCH_DATABASE_URL"}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class Mode(StrEnum):
    dev = "dev"
    test = "test"
    production = "production"


class ConfigError(RuntimeError):
    """A setting is missing, malformed or unsafe; the message names it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RDN_", extra="forbid", validate_default=True)

    mode: Mode = Mode.dev
    database_url: str = "sqlite:///rdn.sqlite3"
    secret_key: str = DEV_SECRET_KEY
    master_key: str = DEV_MASTER_KEY
    previous_master_keys: str = ""
    base_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # Pages and API
    api_docs: bool | None = None  # default: on except in production
    default_locale: str = "en"
    trust_proxy_headers: bool = False
    forwarded_allow_ips: str = "127.0.0.1"  # the proxies whose X-Forwarded-For is believed
    # Sessions and login
    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    session_absolute_hours: int = Field(default=12, ge=1, le=24 * 7)
    login_max_failures: int = Field(default=5, ge=1, le=1000)
    login_window_minutes: int = Field(default=15, ge=1, le=24 * 60)
    password_hash_memory_kib: int = Field(default=65536, ge=8, le=4 * 1024 * 1024)
    password_hash_time_cost: int = Field(default=3, ge=1, le=50)
    # Mail: "smtp" in production; "files" writes each email as an .eml file (demos, air-gapped trials)
    mail_transport: str = "smtp"
    mail_dir: str = "var/mail"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_security: str = "none"  # none | starttls | tls
    smtp_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    mail_from: str = "RDN <no-reply@rdn.example>"
    # SMS through an HTTP provider (empty URL: SMS is off). See docs/operations.md for the protocol.
    sms_url: str = ""
    sms_token: str = ""
    sms_from: str = "RDN"
    sms_inbound_secret: str = ""
    sms_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # Worker and outbox
    inprocess_worker: bool = True
    worker_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    worker_lease_seconds: float = Field(default=120.0, gt=0, le=3600)
    worker_batch: int = Field(default=10, ge=1, le=1000)
    job_max_attempts: int = Field(default=10, ge=1, le=100)
    job_backoff_base_seconds: float = Field(default=10.0, gt=0, le=3600)
    job_backoff_max_seconds: float = Field(default=3600.0, gt=0, le=7 * 86400)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    webhook_allow_private: bool | None = None  # default: allowed in dev and test (local receivers), not in production
    sse_max_seconds: float = Field(default=300.0, gt=0, le=86400)  # streams end; browsers reconnect and replay
    # The network picture (rdn.reports): the public transparency page is off unless a deployment turns it on;
    # counts under the threshold are shown as "<threshold" there. Figures are recomputed every few minutes.
    public_figures: bool = False
    public_figures_threshold: int = Field(default=10, ge=2, le=1000)
    report_refresh_minutes: int = Field(default=10, ge=1, le=24 * 60)
    # Retention of operational tables
    event_retention_hours: int = Field(default=24, ge=1)
    idempotency_retention_hours: int = Field(default=24, ge=1)
    log_level: str = "INFO"

    @field_validator(
        "api_docs", "trust_proxy_headers", "inprocess_worker", "webhook_allow_private", "public_figures", mode="before"
    )
    @classmethod
    def _strict_bool(cls, value: Any) -> Any:
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            if lowered == "":
                return None
            raise ValueError(f"expected true or false, got {value!r}")
        return value

    @field_validator("mail_transport")
    @classmethod
    def _mail_transport(cls, value: str) -> str:
        if value not in {"smtp", "files"}:
            raise ValueError("expected smtp or files")
        return value

    @field_validator("smtp_security")
    @classmethod
    def _smtp_security(cls, value: str) -> str:
        if value not in {"none", "starttls", "tls"}:
            raise ValueError("expected none, starttls or tls")
        return value

    @field_validator("default_locale")
    @classmethod
    def _locale(cls, value: str) -> str:
        from rdn.core.i18n import LOCALES

        if value not in LOCALES:
            raise ValueError(f"expected one of {', '.join(LOCALES)}")
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("expected DEBUG, INFO, WARNING or ERROR")
        return value

    @field_validator("master_key")
    @classmethod
    def _master_key(cls, value: str) -> str:
        _decode_key(value)
        return value

    @field_validator("previous_master_keys")
    @classmethod
    def _previous_keys(cls, value: str) -> str:
        for part in filter(None, (p.strip() for p in value.split(","))):
            _decode_key(part)
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not (value.startswith("sqlite") or value.startswith("postgresql")):
            raise ValueError("expected a sqlite:/// or postgresql:// URL")
        return value

    @model_validator(mode="after")
    def _safe_outside_dev(self) -> Settings:
        if self.mode == Mode.production:
            if self.secret_key == DEV_SECRET_KEY:
                raise ValueError("RDN_SECRET_KEY is the development default; set a secret of your own")
            if len(self.secret_key) < 32:
                raise ValueError("RDN_SECRET_KEY must be at least 32 characters")
            if self.master_key == DEV_MASTER_KEY:
                raise ValueError("RDN_MASTER_KEY is the development default; generate one with `rdn keys new`")
        return self

    # Derived values -------------------------------------------------------------------------------------
    @property
    def docs_enabled(self) -> bool:
        return self.api_docs if self.api_docs is not None else self.mode != Mode.production

    @property
    def webhooks_may_reach_private(self) -> bool:
        return self.webhook_allow_private if self.webhook_allow_private is not None else self.mode != Mode.production

    @property
    def secure_cookies(self) -> bool:
        return self.mode == Mode.production or self.base_url.startswith("https://")

    @property
    def master_key_bytes(self) -> bytes:
        return _decode_key(self.master_key)

    @property
    def previous_master_key_bytes(self) -> list[bytes]:
        return [_decode_key(p.strip()) for p in self.previous_master_keys.split(",") if p.strip()]


def _decode_key(value: str) -> bytes:
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("must be base64 (generate one with `rdn keys new`)") from exc
    if len(raw) != 32:
        raise ValueError(f"must decode to 32 bytes, got {len(raw)}")
    return raw


def _file_overrides(environ: dict[str, str]) -> dict[str, str]:
    overrides: dict[str, str] = {}
    for name in SECRET_FIELDS:
        env = f"RDN_{name.upper()}"
        file_env = f"{env}_FILE"
        if file_env in environ:
            if env in environ:
                raise ConfigError(f"{env} and {file_env} are both set; set only one")
            path = Path(environ[file_env])
            try:
                overrides[name] = path.read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise ConfigError(f"{file_env}: cannot read {path}: {exc.strerror}") from exc
    return overrides


def _check_unknown(environ: dict[str, str]) -> None:
    known = {f"RDN_{name.upper()}" for name in Settings.model_fields}
    known |= {f"RDN_{name.upper()}_FILE" for name in SECRET_FIELDS}
    known |= TOOLING_VARIABLES
    unknown = sorted(k for k in environ if k.startswith("RDN_") and k not in known)
    if unknown:
        raise ConfigError(f"unknown setting {unknown[0]} (known settings are listed in README.md)")


def load_settings(environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Read and validate the settings; raise ConfigError with a message naming the bad setting."""
    env = dict(os.environ if environ is None else environ)
    _check_unknown(env)
    fields = {
        name: env[f"RDN_{name.upper()}"] for name in Settings.model_fields if f"RDN_{name.upper()}" in env
    }
    try:
        return _from_mapping({**fields, **_file_overrides(env), **overrides})
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "RDN_" + str(first["loc"][0]).upper() if first["loc"] else "settings"
        raise ConfigError(f"{name}: {first['msg']}") from None


class _ExplicitSettings(Settings):
    """Settings read only from the values given (the environment has been read by load_settings)."""

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, *args, **kwargs):  # type: ignore[override]
        return (init_settings,)


def _from_mapping(values: dict[str, Any]) -> Settings:
    return _ExplicitSettings(**values)


_settings: Settings | None = None


def get_settings() -> Settings:
    global _settings
    if _settings is None:
        _settings = load_settings()
    return _settings


def set_settings(settings: Settings | None) -> None:
    """Replace the process-wide settings (tests, CLI options)."""
    global _settings
    _settings = settings
    _cached_clear()


def _cached_clear() -> None:
    for fn in _CACHES:
        fn.cache_clear()


_CACHES: list[Any] = []


def settings_cache(fn):  # type: ignore[no-untyped-def]
    """An lru_cache that is cleared whenever the settings are replaced."""
    cached = lru_cache(maxsize=None)(fn)
    _CACHES.append(cached)
    return cached

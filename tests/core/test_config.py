"""Configuration: strict parsing, secrets from files, production safety, and the command's exit status."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from rdn.config import DEV_MASTER_KEY, DEV_SECRET_KEY, ConfigError, Mode, load_settings
from rdn.core.crypto import new_master_key
from tests.conftest import run_rdn

GOOD_SECRET = "s" * 40


def _load(**env: str):  # type: ignore[no-untyped-def]
    return load_settings(environ={"RDN_MODE": "test", **env})


def test_defaults_load_in_test_mode():
    settings = _load()
    assert settings.mode == Mode.test
    assert settings.port == 8000
    assert settings.secret_key == DEV_SECRET_KEY
    assert len(settings.master_key_bytes) == 32


def test_the_environment_is_read_only_through_environ():
    # Other variables are ignored; RDN_ tooling variables are allowed.
    settings = load_settings(environ={"HOME": "/nowhere", "RDN_TEST_DATABASE_URL": "whatever", "RDN_PORT": "9000"})
    assert settings.port == 9000


@pytest.mark.parametrize("name", ["RDN_DATABSE_URL", "RDN_SECRETKEY", "RDN_PORT_FILE", "RDN_X"])
def test_an_unknown_rdn_variable_is_refused_by_name(name):
    with pytest.raises(ConfigError, match=name):
        _load(**{name: "1"})


@pytest.mark.parametrize(("value", "expected"), [
    ("true", True), ("false", False), ("1", True), ("0", False), ("TRUE", True), ("False", False),
    ("yes", True), ("off", False),
])
def test_booleans_accept_the_usual_words(value, expected):
    settings = _load(RDN_INPROCESS_WORKER=value, RDN_TRUST_PROXY_HEADERS=value)
    assert settings.inprocess_worker is expected
    assert settings.trust_proxy_headers is expected


@pytest.mark.parametrize("value", ["maybe", "2", "t", "y", "enabled"])
def test_booleans_refuse_anything_else_naming_the_setting(value):
    with pytest.raises(ConfigError, match="RDN_TRUST_PROXY_HEADERS") as info:
        _load(RDN_TRUST_PROXY_HEADERS=value)
    assert repr(value) in str(info.value)


@pytest.mark.parametrize("value", ["abc", "80a", "", "8000.5"])
def test_a_non_numeric_port_is_refused(value):
    with pytest.raises(ConfigError, match="RDN_PORT"):
        _load(RDN_PORT=value)


@pytest.mark.parametrize("value", ["0", "65536", "-1"])
def test_a_port_out_of_range_is_refused(value):
    with pytest.raises(ConfigError, match="RDN_PORT"):
        _load(RDN_PORT=value)


def test_numbers_of_other_settings_are_checked_too():
    with pytest.raises(ConfigError, match="RDN_WORKER_POLL_SECONDS"):
        _load(RDN_WORKER_POLL_SECONDS="soon")
    with pytest.raises(ConfigError, match="RDN_SMTP_PORT"):
        _load(RDN_SMTP_PORT="smtp")


def test_a_secret_is_read_from_a_file(tmp_path: Path):
    path = tmp_path / "secret_key"
    path.write_text(GOOD_SECRET + "\n", encoding="utf-8")
    settings = _load(RDN_SECRET_KEY_FILE=str(path))
    assert settings.secret_key == GOOD_SECRET

    key = new_master_key()
    key_file = tmp_path / "master_key"
    key_file.write_text(key + "\r\n", encoding="utf-8")
    settings = _load(RDN_MASTER_KEY_FILE=str(key_file), RDN_SECRET_KEY_FILE=str(path), RDN_MODE="production")
    assert settings.master_key == key
    assert settings.master_key_bytes == base64.b64decode(key)


def test_a_missing_secret_file_is_refused_by_name(tmp_path: Path):
    with pytest.raises(ConfigError, match="RDN_SECRET_KEY_FILE"):
        _load(RDN_SECRET_KEY_FILE=str(tmp_path / "absent"))


def test_a_setting_and_its_file_together_are_refused(tmp_path: Path):
    path = tmp_path / "secret_key"
    path.write_text(GOOD_SECRET, encoding="utf-8")
    with pytest.raises(ConfigError, match="RDN_SECRET_KEY and RDN_SECRET_KEY_FILE"):
        _load(RDN_SECRET_KEY=GOOD_SECRET, RDN_SECRET_KEY_FILE=str(path))


def test_production_refuses_the_default_secret_key():
    with pytest.raises(ConfigError, match="RDN_SECRET_KEY"):
        _load(RDN_MODE="production", RDN_MASTER_KEY=new_master_key())
    with pytest.raises(ConfigError, match="RDN_SECRET_KEY"):
        _load(RDN_MODE="production", RDN_MASTER_KEY=new_master_key(), RDN_SECRET_KEY=DEV_SECRET_KEY)


def test_production_refuses_a_short_secret_key():
    with pytest.raises(ConfigError, match=r"RDN_SECRET_KEY.*32"):
        _load(RDN_MODE="production", RDN_MASTER_KEY=new_master_key(), RDN_SECRET_KEY="too-short-secret")


def test_production_refuses_the_default_master_key():
    with pytest.raises(ConfigError, match="RDN_MASTER_KEY"):
        _load(RDN_MODE="production", RDN_SECRET_KEY=GOOD_SECRET)
    with pytest.raises(ConfigError, match="RDN_MASTER_KEY"):
        _load(RDN_MODE="production", RDN_SECRET_KEY=GOOD_SECRET, RDN_MASTER_KEY=DEV_MASTER_KEY)


def test_production_starts_with_secrets_of_its_own():
    key = new_master_key()
    settings = _load(RDN_MODE="production", RDN_SECRET_KEY=GOOD_SECRET, RDN_MASTER_KEY=key)
    assert settings.mode == Mode.production
    assert settings.master_key_bytes == base64.b64decode(key)
    assert settings.secure_cookies and not settings.docs_enabled


def test_dev_and_test_modes_accept_the_defaults():
    for mode in ("dev", "test"):
        settings = _load(RDN_MODE=mode)
        assert settings.secret_key == DEV_SECRET_KEY and settings.master_key == DEV_MASTER_KEY


@pytest.mark.parametrize("value", [
    "not base64 at all!",
    base64.b64encode(b"sixteen bytes!!!").decode(),  # valid base64, 16 bytes
    base64.b64encode(b"x" * 33).decode(),  # 33 bytes
    "",
])
def test_an_invalid_master_key_is_refused(value):
    with pytest.raises(ConfigError, match="RDN_MASTER_KEY"):
        _load(RDN_MASTER_KEY=value)


def test_an_invalid_previous_master_key_is_refused():
    good = new_master_key()
    assert _load(RDN_PREVIOUS_MASTER_KEYS=f"{good}, {new_master_key()}").previous_master_key_bytes[0] == \
        base64.b64decode(good)
    with pytest.raises(ConfigError, match="RDN_PREVIOUS_MASTER_KEYS"):
        _load(RDN_PREVIOUS_MASTER_KEYS=f"{good},short")


@pytest.mark.parametrize(("name", "value"), [
    ("RDN_MODE", "staging"),
    ("RDN_DATABASE_URL", "mysql://localhost/rdn"),
    ("RDN_SMTP_SECURITY", "ssl"),
    ("RDN_LOG_LEVEL", "LOUD"),
    ("RDN_DEFAULT_LOCALE", "xx"),
])
def test_other_malformed_settings_are_refused_by_name(name, value):
    with pytest.raises(ConfigError, match=name):
        _load(**{name: value})


# The command -------------------------------------------------------------------------------------------------



@pytest.mark.parametrize(("env", "named"), [
    ({"RDN_PORT": "eighty"}, "RDN_PORT"),
    ({"RDN_INPROCESS_WORKER": "maybe"}, "RDN_INPROCESS_WORKER"),
    ({"RDN_DATABSE_URL": "sqlite:///x.sqlite3"}, "RDN_DATABSE_URL"),
    ({"RDN_MODE": "production"}, "RDN_SECRET_KEY"),
])
def test_the_command_exits_2_naming_a_bad_setting(tmp_path: Path, env, named):
    result = run_rdn(["keys", "status"],
                     {"RDN_MODE": "test", "RDN_DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}", **env})
    assert result.returncode == 2, result.stdout + result.stderr
    message = " ".join(result.stderr.split())
    assert "Configuration error" in message
    assert named in message
    assert "Traceback" not in result.stderr

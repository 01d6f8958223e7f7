"""Settings: development starts on a fresh clone; anything else refuses weak secrets."""

from __future__ import annotations

import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from triggerpath.config import DEV_SECRETS_FILE, Settings, default_data_dir, load_settings
from triggerpath.errors import InvalidInput

#: A generated secret (secrets.token_urlsafe(48)), written out so the test is repeatable.
STRONG = "Hq3vZ8pL0xWm2Rt7YbN4cK9sD1fG6jA5eU-oI_yTnVwXrQzPlMkJhBgFdSaE3uC7"
#: Production also needs the CDS fhirServer allowlist (issue 14 §9).
PROD: dict[str, Any] = {"cds_fhir_server_allowlist": "https://ehr.example.org/fhir/"}


def test_development_defaults_are_local(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TRIGGERPATH_ENV", raising=False)
    monkeypatch.delenv("TRIGGERPATH_DATABASE_URL", raising=False)
    monkeypatch.setenv("TRIGGERPATH_DATA_DIR", str(tmp_path))
    s = load_settings()
    assert s.env == "development" and s.host == "127.0.0.1"
    assert s.db_url == f"sqlite:///{tmp_path / 'triggerpath.db'}"
    # secrets generated once, kept private, and reused on the next start
    path = tmp_path / DEV_SECRETS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_settings()
    assert again.secret("secret_key") == s.secret("secret_key")
    assert len(s.secret("jwt_signing_key")) >= 32


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="XDG is for Linux and BSD")
def test_data_dir_follows_xdg(tmp_path: Path) -> None:
    assert default_data_dir({"XDG_DATA_HOME": str(tmp_path)}) == tmp_path / "triggerpath"
    home_default = Path.home() / ".local" / "share" / "triggerpath"
    assert default_data_dir({}) == home_default
    # the XDG spec says to ignore a relative XDG_DATA_HOME
    assert default_data_dir({"XDG_DATA_HOME": "relative/dir"}) == home_default


@pytest.mark.parametrize("env", ["production", "staging", "test"])
def test_non_development_refuses_missing_secrets_naming_the_variable(
    env: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TRIGGERPATH_ENV", env)
    monkeypatch.setenv("TRIGGERPATH_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("TRIGGERPATH_SECRET_KEY", raising=False)
    monkeypatch.delenv("TRIGGERPATH_JWT_SIGNING_KEY", raising=False)
    with pytest.raises(InvalidInput) as exc:
        load_settings()
    fields = {p.field for p in exc.value.problems} - {"TRIGGERPATH_CDS_FHIR_SERVER_ALLOWLIST"}
    assert fields == {"TRIGGERPATH_SECRET_KEY", "TRIGGERPATH_JWT_SIGNING_KEY"}
    assert not (tmp_path / DEV_SECRETS_FILE).exists()  # nothing generated outside development


@pytest.mark.parametrize(
    ("value", "why"),
    [("changethis", "default"), ("short-secret", "too short"), ("", "missing")],
)
def test_default_or_short_secret_is_refused(value: str, why: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        Settings(env="production", secret_key=value, jwt_signing_key=STRONG, **PROD)
    (problem,) = exc.value.problems
    assert problem.field == "TRIGGERPATH_SECRET_KEY" and why in problem.reason


def test_production_with_strong_secrets_starts() -> None:
    s = Settings(env="production", secret_key=STRONG, jwt_signing_key=STRONG[::-1], **PROD)
    assert not s.development and s.cookie_secure


def test_insecure_cookie_only_in_development() -> None:
    with pytest.raises(InvalidInput, match="TRIGGERPATH_COOKIE_SECURE"):
        Settings(env="production", secret_key=STRONG, jwt_signing_key=STRONG, cookie_secure=False)
    assert Settings(cookie_secure=False).cookie_secure is False


def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIGGERPATH_PORT", "99999")
    with pytest.raises(InvalidInput) as exc:
        load_settings()
    assert [p.field for p in exc.value.problems] == ["TRIGGERPATH_PORT"]

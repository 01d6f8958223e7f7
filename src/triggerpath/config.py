"""Service settings: one ``Settings`` object, built once by an entry point and injected.

Every variable has the prefix ``TRIGGERPATH_`` (``TRIGGERPATH_DATABASE_URL``,
``TRIGGERPATH_ENV`` ...). Nothing here runs at import time: the CLI builds the settings
with :func:`load_settings` and hands them to ``create_app`` or to the command.

``TRIGGERPATH_ENV=development`` (the default, so ``triggerpath serve`` works on a fresh
clone) binds to 127.0.0.1 and generates any missing secret once, keeping it in the data
directory. Every other environment (``production``, ``staging``, ``test`` ...) refuses to
start when a secret is missing, short, of low entropy or a well-known default, and says
which variable.

``TRIGGERPATH_ENV=production`` is stricter still (security review, ASVS V14): the CDS
``fhirServer`` allowlist must be set (https origins ending in ``/``), ``/docs`` is off
unless ``TRIGGERPATH_PUBLIC_DOCS=true``, and the app refuses to start while development
accounts are active or the SQLite file is readable by others
(:func:`triggerpath.entrypoints.api.app.startup_problems`).
"""

from __future__ import annotations

import json
import math
import os
import secrets
import sys
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from triggerpath.domain.validation import problems_from
from triggerpath.errors import FieldProblem, InvalidInput

ENV_PREFIX = "TRIGGERPATH_"
DEVELOPMENT = "development"
PRODUCTION = "production"
MIN_SECRET_LENGTH = 32
#: Shannon entropy a secret must carry, estimated from its own characters (bits).
MIN_SECRET_BITS = 100
#: Values that must never be used as a secret outside development (compared case-insensitively).
DEFAULT_SECRETS = frozenset(
    {"changethis", "change-me", "changeme", "secret", "dev", "development", "triggerpath"}
)
#: The secrets a non-development start requires, by field name.
SECRET_FIELDS = ("secret_key", "jwt_signing_key")
DEV_SECRETS_FILE = "dev-secrets.json"


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The platform's per-user data directory for TriggerPath: the one default.

    Every entry point uses it unless ``TRIGGERPATH_DATA_DIR`` says otherwise: the CLI,
    ``triggerpath serve`` and ``scripts/run`` (which no longer sets its own), so the users
    and patients created by one are seen by the others.

    Linux/BSD: ``$XDG_DATA_HOME/triggerpath`` or ``~/.local/share/triggerpath``;
    macOS: ``~/Library/Application Support/triggerpath``; Windows: ``%LOCALAPPDATA%``.
    """
    env = os.environ if environ is None else environ
    if sys.platform == "win32":
        base = env.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "TriggerPath"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "triggerpath"
    xdg = env.get("XDG_DATA_HOME")
    base_dir = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base_dir / "triggerpath"


def env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


class Settings(BaseSettings):
    """Everything the service reads from its environment, validated once."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    env: str = Field(
        default=DEVELOPMENT,
        pattern=r"^[a-z][a-z0-9_-]{0,31}$",
        description="development allows a local single-user start; anything else is strict",
    )
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="where the SQLite database, backups and development secrets live",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default: SQLite file triggerpath.db in the data dir (WAL)",
    )
    secret_key: SecretStr | None = Field(
        default=None, description="key for session and API-key digests (>= 32 characters)"
    )
    jwt_signing_key: SecretStr | None = Field(
        default=None, description="HS256 key for bearer JWTs (>= 32 characters)"
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_request_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576)
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    jwt_minutes: int = Field(default=60, ge=1, le=24 * 60)
    cookie_secure: bool = Field(
        default=True, description="Secure flag on the session cookie (only off in development)"
    )
    # security (issue 14)
    session_idle_minutes: int = Field(
        default=15, ge=1, le=24 * 60, description="a web session unused this long ends"
    )
    public_docs: bool = Field(
        default=False, description="serve /docs and /openapi.json in production too"
    )
    cors_allow_origins: str = Field(
        default="", description="comma-separated origins allowed cross-origin (default: none)"
    )
    max_concurrent_hashes: int = Field(
        default=4, ge=1, le=64, description="password hashes (64 MiB each) run at once"
    )
    cds_fhir_server_allowlist: str = Field(
        default="",
        description="comma-separated URL prefixes a CDS fhirServer must start with; "
        "required in production (the EHR's access token goes only there)",
    )

    # ---- CDS Hooks (owned by the CDS work; see docs/cds.md)
    cds_max_request_bytes: int = Field(
        default=16 * 1_048_576,
        ge=1024,
        le=256 * 1_048_576,
        description="largest CDS Hooks request body (prefetch of a whole record); others: "
        "max_request_bytes",
    )
    cds_trusted_clients: str | None = Field(
        default=None,
        description='EHRs allowed to call, JSON {"<iss>": {"jwks": {...}} | {"jwks_url": "https://..."}}',
    )
    cds_public_base_url: str | None = Field(
        default=None, description="base URL the EHR calls (the JWT aud); default: the request's"
    )
    cds_fhir_timeout_seconds: float = Field(default=2.0, gt=0, le=30)
    web_base_url: str | None = Field(
        default=None, description="TriggerPath web view base URL for links on cards"
    )

    @property
    def development(self) -> bool:
        return self.env == DEVELOPMENT

    @property
    def production(self) -> bool:
        return self.env == PRODUCTION

    @property
    def docs_public(self) -> bool:
        """Are /docs and /openapi.json served? Always outside production."""
        return not self.production or self.public_docs

    @property
    def cors_origins(self) -> tuple[str, ...]:
        return _csv(self.cors_allow_origins)

    @property
    def fhir_server_allowlist(self) -> tuple[str, ...]:
        return _csv(self.cds_fhir_server_allowlist)

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "triggerpath.db"

    @property
    def db_url(self) -> str:
        """The database to use: ``TRIGGERPATH_DATABASE_URL`` or the SQLite file."""
        return self.database_url or f"sqlite:///{self.sqlite_path}"

    def secret(self, field: str) -> str:
        value: SecretStr | None = getattr(self, field)
        if value is None:
            raise InvalidInput.single(env_name(field), "is not set")
        return value.get_secret_value()

    @model_validator(mode="after")
    def _refuse_weak_secrets(self) -> Settings:
        """Outside development, refuse to exist with a missing, short or default secret.

        Raises ``InvalidInput`` (not a ``ValueError``, so pydantic lets it through) with
        one problem per variable at fault.
        """
        if self.development:
            return self
        problems = [
            FieldProblem(env_name(name), f"{why} (TRIGGERPATH_ENV={self.env})")
            for name in SECRET_FIELDS
            if (why := secret_problem(getattr(self, name))) is not None
        ]
        if not self.cookie_secure:
            problems.append(
                FieldProblem(env_name("cookie_secure"), "must stay true outside development")
            )
        if self.production:
            problems.extend(allowlist_problems(self.fhir_server_allowlist))
        if problems:
            raise InvalidInput(problems)
        return self


def secret_problem(value: SecretStr | None) -> str | None:
    """Why a secret is unacceptable outside development, or None when it is fine."""
    if value is None or not value.get_secret_value():
        return "is missing; set a random value of at least 32 characters"
    raw = value.get_secret_value()
    if raw.strip().lower() in DEFAULT_SECRETS:
        return "is a well-known default; set a random value"
    if len(raw) < MIN_SECRET_LENGTH:
        return f"is too short ({len(raw)} characters; at least {MIN_SECRET_LENGTH})"
    bits = entropy_bits(raw)
    if bits < MIN_SECRET_BITS or _repetitive(raw):
        return (
            f"has too little entropy (about {bits:.0f} bits; at least {MIN_SECRET_BITS}): "
            "generate it, e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )
    return None


def entropy_bits(value: str) -> float:
    """Shannon entropy of ``value`` estimated from its own character frequencies, in bits.

    A conservative estimate for generated secrets (``token_urlsafe(48)`` scores about
    360 bits) that catches long but patterned ones (``abcd`` * 8 scores 64).
    """
    if not value:
        return 0.0
    counts: dict[str, int] = {}
    for ch in value:
        counts[ch] = counts.get(ch, 0) + 1
    n = len(value)
    per_char = -sum(c / n * math.log2(c / n) for c in counts.values())
    return per_char * n


def _repetitive(value: str) -> bool:
    """Patterned (it compresses well: ``0123456789`` * 4), however many symbols it uses."""
    raw = value.encode()
    return len(zlib.compress(raw, 9)) < 0.75 * len(raw)


def _csv(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def allowlist_problems(allow: tuple[str, ...]) -> list[FieldProblem]:
    """Production: the CDS fhirServer allowlist is set, https, and ends each origin with /."""
    name = env_name("cds_fhir_server_allowlist")
    if not allow:
        return [
            FieldProblem(
                name,
                "is required in production: the EHR's access token is only ever sent to "
                "these FHIR servers (comma-separated https URL prefixes ending in /)",
            )
        ]
    return [
        FieldProblem(name, f"{a!r} must be an https URL prefix ending in /")
        for a in allow
        if not (a.startswith("https://") and a.endswith("/"))
    ]


def _dev_secrets(data_dir: Path) -> dict[str, str]:
    """Development only: secrets generated once and kept (mode 0600) in the data dir."""
    path = data_dir / DEV_SECRETS_FILE
    stored: dict[str, str] = {}
    if path.exists():
        loaded: Any = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(loaded, dict):
            stored = {str(k): str(v) for k, v in loaded.items()}
    missing = [f for f in SECRET_FIELDS if not stored.get(f)]
    if missing:
        stored.update({f: secrets.token_urlsafe(48) for f in missing})
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(stored, fh)
    return stored


def load_settings(**overrides: Any) -> Settings:
    """Build the settings from the environment (plus ``overrides``), or say what is wrong.

    Raises ``InvalidInput`` naming each ``TRIGGERPATH_*`` variable at fault. In
    development, missing secrets are filled from (or generated into) the data dir.
    """
    try:
        settings = Settings(**overrides)
    except ValidationError as err:
        raise InvalidInput(
            FieldProblem(env_name(p.field.split(".")[0].split("[")[0]), p.reason)
            for p in problems_from(err)
        ) from None
    if settings.development and any(getattr(settings, f) is None for f in SECRET_FIELDS):
        generated = _dev_secrets(settings.data_dir)
        settings = settings.model_copy(
            update={
                f: SecretStr(generated[f]) for f in SECRET_FIELDS if getattr(settings, f) is None
            }
        )
    return settings

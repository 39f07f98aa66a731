"""What every process checks before it starts: production mode's refusals and the metadata
DB's revision.

Production mode (PIPELINE_OPS_ENV=prod) refuses the setups that run fine on one laptop and
break, silently, on several hosts: each refusal is one line of one message, so an operator
fixes them all in one go. Nothing is created before the checks pass (no DB file, no var
directory, no master key file), so a refused start leaves the host as it found it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy.exc import SQLAlchemyError

from credentials.errors import MasterKeyError
from credentials.keys import parse_keys
from pipeline.observability.redact import display_url
from pipeline.settings import Settings
from pipeline.storage.db import SchemaNotCurrentError, normalize_url, require_current

# An admin key guessable in a day of tries is no key; 32 characters of `secrets.token_urlsafe`
# (what the README's example generates) is ~190 bits.
MIN_ADMIN_KEY_CHARS = 32


class StartupRefused(RuntimeError):
    """The process must not start; the message says every reason and what to do."""


def production_problems(settings: Settings) -> list[str]:
    """Every reason production mode refuses `settings` (empty outside production)."""
    if settings.env != "prod":
        return []
    problems: list[str] = []
    if normalize_url(settings.database_url).startswith("sqlite"):
        problems.append(
            "DATABASE_URL is SQLite, a file on one host: set it to PostgreSQL "
            "(postgresql://user:password@host:5432/db)"
        )
    if settings.warehouse_url.startswith("duckdb") and not settings.allow_embedded:
        problems.append(
            "WAREHOUSE_URL is a DuckDB file, which one host at a time can write: set it to "
            "bigquery://<project>, or PIPELINE_OPS_ALLOW_EMBEDDED=1 if web and workers "
            "really run on this one host"
        )
    if not settings.master_key:
        problems.append(
            "PIPELINE_OPS_MASTER_KEY is not set: each host would make its own var/master.key "
            "and not decrypt the others' credentials; set the same key on every host "
            '(python -c "import base64,os; print(base64.b64encode(os.urandom(32)).decode())")'
        )
    else:
        try:
            parse_keys(settings.master_key, "PIPELINE_OPS_MASTER_KEY")
        except MasterKeyError as exc:
            problems.append(f"{exc}: it must be base64 of 32 bytes")
    if not settings.admin_key:
        problems.append(
            "PIPELINE_OPS_ADMIN_KEY is not set: the admin API would be closed to everyone; "
            f"set at least {MIN_ADMIN_KEY_CHARS} random characters"
        )
    elif len(settings.admin_key) < MIN_ADMIN_KEY_CHARS:
        problems.append(
            f"PIPELINE_OPS_ADMIN_KEY is {len(settings.admin_key)} characters: use at least "
            f"{MIN_ADMIN_KEY_CHARS} random ones "
            '(python -c "import secrets; print(secrets.token_urlsafe(32))")'
        )
    if urlsplit(settings.public_base_url).scheme != "https":
        problems.append(
            f"PIPELINE_OPS_PUBLIC_URL is {settings.public_base_url!r}: links in notifications "
            "and API responses must be https://"
        )
    return problems


def refusal(problems: list[str]) -> str:
    lines = "\n".join(f"  - {p}" for p in problems)
    return (
        f"refusing to start in production mode (PIPELINE_OPS_ENV=prod), "
        f"{len(problems)} problem(s):\n{lines}"
    )


def unreachable_db(settings: Settings, exc: Exception) -> str:
    cause = getattr(exc, "orig", None) or exc
    detail = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    return f"cannot reach the metadata DB at {display_url(settings.database_url)}: {detail}"


def preflight(settings: Settings, *, schema: bool = True) -> None:
    """Raise StartupRefused unless this process may start: production mode's checks first
    (nothing touched), then, with `schema`, that the metadata DB is at this code's revision
    (read only: processes never migrate by themselves)."""
    problems = production_problems(settings)
    if problems:
        raise StartupRefused(refusal(problems))
    if schema:
        try:
            require_current(settings.database_url)
        except SchemaNotCurrentError as exc:
            raise StartupRefused(str(exc)) from None
        except SQLAlchemyError as exc:
            raise StartupRefused(unreachable_db(settings, exc)) from None

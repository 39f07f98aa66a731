"""Where a BigQuery backend points and how it authenticates; builds clients, holds none.

`WAREHOUSE_URL=bigquery://PROJECT?location=US` uses Application Default Credentials.
`&endpoint=http://127.0.0.1:PORT` points at an emulator (bqemulator) instead: credentials
are then anonymous and the emulator workarounds switch on (see sql.py, backend.py).
An org's own service account comes in as its JSON key (`service_account_credentials`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pipeline_ops_core.errors import TerminalError
from warehouse.bigquery.sql import check_project

BIGQUERY_SCOPES = ("https://www.googleapis.com/auth/bigquery",)
_SERVICE_ACCOUNT_KEYS = ("client_email", "private_key", "token_uri")


@dataclass(frozen=True)
class BigQueryConfig:
    project: str
    location: str
    endpoint: str | None = None

    @property
    def emulator(self) -> bool:
        return self.endpoint is not None

    @classmethod
    def from_url(cls, url: str) -> BigQueryConfig:
        parts = urlsplit(url)
        if parts.scheme != "bigquery" or not parts.netloc or parts.path not in ("", "/"):
            raise TerminalError(f"invalid BigQuery URL {url!r}: expected bigquery://PROJECT?...")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = sorted(set(query) - {"location", "endpoint"})
        if unknown:
            raise TerminalError(f"unknown BigQuery URL option(s): {', '.join(unknown)}")
        location = query.get("location", "").strip()
        if not location:
            raise TerminalError(
                f"BigQuery URL {url!r} needs a location, e.g. bigquery://PROJECT?location=US"
            )
        endpoint = query.get("endpoint") or None
        if endpoint is not None and urlsplit(endpoint).scheme not in ("http", "https"):
            raise TerminalError(f"BigQuery endpoint must be an http(s) URL, got {endpoint!r}")
        return cls(project=check_project(parts.netloc), location=location, endpoint=endpoint)


def make_client(config: BigQueryConfig, credentials: Any | None = None) -> Any:
    """A client for `config`; default credentials unless given, anonymous on an emulator."""
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    options = ClientOptions(api_endpoint=config.endpoint) if config.endpoint else None
    if credentials is None and config.emulator:
        credentials = AnonymousCredentials()
    return bigquery.Client(
        project=config.project,
        credentials=credentials,
        location=config.location,
        client_options=options,
    )


def service_account_credentials(info: Mapping[str, Any]) -> Any:
    """Credentials from a service-account JSON key. Builds locally; nothing is fetched yet.

    Errors never quote the key: messages name the missing or bad field only.
    """
    from google.oauth2 import service_account

    if info.get("type") != "service_account":
        raise TerminalError(
            "credential is not a service-account key (type must be service_account)"
        )
    missing = [k for k in _SERVICE_ACCOUNT_KEYS if not info.get(k)]
    if missing:
        raise TerminalError(f"service-account key lacks {', '.join(missing)}")
    try:
        return service_account.Credentials.from_service_account_info(
            dict(info), scopes=list(BIGQUERY_SCOPES)
        )
    except (ValueError, TypeError, IndexError):
        raise TerminalError(
            f"service-account key for {info.get('client_email')} is malformed"
        ) from None

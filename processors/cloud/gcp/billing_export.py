"""cloud.gcp_billing_export: the customer's Cloud Billing export (BigQuery) into raw rows.

Reads `project.dataset.gcp_billing_export[_resource]_v1_<ACCOUNT>` in the customer's
project with the org's own service account (cross-project read; jobs run in the key's
project), for the run's usage dates, and writes `gcp_billing_export_raw` once (replace per
usage date), with credits flattened into rows of their own (gcp_export_rows).

Config:
  billing_table: the export table (else the credential's `billing_table`)
  destination_table: default gcp_billing_export_raw (sp_focus_gcp reads that name)
  partition_filter: partitiontime (default) | usage_start_time
      partitiontime prunes on the ingestion-time partitions, `_PARTITIONTIME >= start -
      margin_days`, plus the usage window; usage_start_time filters on the usage window
      only (for copies partitioned on usage_start_time, or views).
  margin_days: default 3
  lookback_days: default 0. Reads (and replaces) the N days before the run's start too,
      so a daily schedule re-reads them and picks up late corrections: rows for an old
      usage time that the export adds later, with a newer export_time.

Credential: a service-account JSON key (type service_account, ...) at the top level or as
`service_account`, plus `billing_table`, optional `job_project`, `location` and
`api_endpoint` (an emulator, where credentials may be anonymous). The key's token_uri and
the api_endpoint pass the egress policy (pipeline_ops_core/egress.py): Google's hosts, or the
operator's
allow-list; every SDK connection is checked again when it is opened.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, ClassVar, cast

import pyarrow as pa
import requests
from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc

from pipeline_ops_core.egress import host_matches, policy, split_url
from pipeline_ops_core.errors import PipelineOpsError, TerminalError, TransientError
from processors.base import StepContext, StepResult
from processors.cloud.gcp.export_rows import (
    PARTITION_FILTERS,
    ExportTable,
    PartitionFilter,
    Window,
    export_query,
    flatten,
    net_cost,
    parse_table_name,
    watermark,
)
from processors.generic.http_extract import mask_secrets
from processors.sdk_egress import guarded
from warehouse.bigquery import (
    TERMINAL_REASONS,
    TRANSIENT_REASONS,
    BigQueryConfig,
    check_project,
    classify,
    make_client,
    service_account_credentials,
)

RAW_TABLE = "gcp_billing_export_raw"
SECRET_FIELDS = ("private_key", "private_key_id", "catalog_api_key")
# The client retries transient errors itself; keep that short so the step's own retry
# (with backoff and a run-log line) takes over instead of a silent 10-minute wait.
CLIENT_RETRY_SECONDS = 30.0


# -- the credential --------------------------------------------------------------------------


def service_account_info(credential: Mapping[str, Any]) -> dict[str, Any] | None:
    """The service-account key: the credential itself, or its `service_account` field."""
    if credential.get("type") == "service_account":
        return dict(credential)
    nested = credential.get("service_account")
    if isinstance(nested, str) and nested.strip():
        try:
            nested = json.loads(nested)
        except ValueError:
            raise TerminalError("credential field service_account is not JSON") from None
    if nested is None:
        return None
    if not isinstance(nested, Mapping):
        raise TerminalError("credential field service_account must be a JSON object")
    return dict(nested)


def secrets_of(credential: Mapping[str, Any]) -> list[str]:
    """Every secret string of the credential (and of the key's PEM, line by line)."""
    found: list[str] = []
    sources = [credential, service_account_info(credential) or {}]
    for source in sources:
        for name in SECRET_FIELDS:
            value = source.get(name)
            if isinstance(value, str) and value:
                found.append(value)
                found += [line for line in value.splitlines() if len(line.strip()) >= 16]
    return sorted(set(found), key=len, reverse=True)


# Where each Google endpoint may point without the operator's allow-list
# (pipeline_ops_core/egress.py).
TOKEN_HOSTS = ("oauth2.googleapis.com", "accounts.google.com", "www.googleapis.com")
GOOGLE_API_HOSTS = ("*.googleapis.com",)


def checked_url(value: object, field: str, hosts: tuple[str, ...]) -> str:
    """A Google endpoint from the credential, passed by the egress policy (https on Google's
    hosts, or a host the operator allow-listed); else EgressRefused naming the field."""
    text = value.strip() if isinstance(value, str) else ""
    policy().check_url(text, f"credential {field}", hosts)
    return text.rstrip("/")


def check_token_uri(info: Mapping[str, Any]) -> None:
    """A key's token_uri gets the key's signed assertion and answers with a token: it must
    be Google's unless the operator allow-listed another."""
    checked_url(info.get("token_uri"), "token_uri", TOKEN_HOSTS)


@contextmanager
def google_egress(credential: Mapping[str, Any]) -> Iterator[bool]:
    """Every connection the Google SDKs open inside (token refresh, BigQuery) passes the
    egress policy. Yields whether an endpoint was overridden: what those answer is then
    never quoted back to the tenant."""
    info = service_account_info(credential)
    overridden = bool(credential.get("api_endpoint"))
    if info is not None:
        check_token_uri(info)
        token_host = split_url(str(info["token_uri"]), "credential token_uri")[1]
        overridden = overridden or not any(host_matches(token_host, h) for h in TOKEN_HOSTS)
    with guarded("credential api_endpoint or token_uri", (*GOOGLE_API_HOSTS, *TOKEN_HOSTS)):
        yield overridden


def export_table(ctx: StepContext, credential: Mapping[str, Any]) -> ExportTable:
    name = ctx.config.get("billing_table") or credential.get("billing_table")
    if not name:
        raise TerminalError(
            "no billing export table: set billing_table in the credential or the step config"
        )
    return parse_table_name(name)


def bigquery_client(credential: Mapping[str, Any], table: ExportTable) -> tuple[Any, str]:
    """(client, who) acting as the credential's service account; `who` names it in errors."""
    info = service_account_info(credential)
    endpoint = credential.get("api_endpoint")
    endpoint = checked_url(endpoint, "api_endpoint", GOOGLE_API_HOSTS) if endpoint else None
    if info is None and endpoint is None:
        raise TerminalError(
            "GCP credential needs a service-account key (type service_account) "
            "to read the billing export"
        )
    creds = service_account_credentials(info) if info is not None else None
    who = str(info.get("client_email")) if info is not None else "anonymous (emulator)"
    project = credential.get("job_project") or (info or {}).get("project_id") or table.project
    config = BigQueryConfig(
        project=check_project(str(project)),
        location=str(credential.get("location") or "US"),
        endpoint=endpoint,
    )
    return make_client(config, creds), who


# -- errors ----------------------------------------------------------------------------------


def translate(
    exc: BaseException, table: str, who: str, secrets: list[str], echo: bool = True
) -> PipelineOpsError:
    """A client error as TerminalError/TransientError naming the table, secrets masked.

    Google's own answer is quoted (masked, at most 300 characters) only when `echo`: an
    overridden endpoint's answer is the tenant's view of that host and never comes back.
    Auth errors are never quoted: google-auth puts the token endpoint's answer in them.
    "Not found" and "access denied" read alike, so an error can't tell which tables exist.
    """
    transient, reason = classify(exc)
    status = getattr(exc, "code", None)
    shown = reason if reason in KNOWN_REASONS else (f"HTTP {status}" if status else "error")
    detail = f": {mask_secrets(_first_line(exc), secrets)[:300]}" if echo else f" ({shown})"
    if isinstance(exc, auth_exc.GoogleAuthError):
        if isinstance(exc, auth_exc.TransportError):
            return TransientError(
                f"{who} could not reach the key's token_uri to read GCP billing export table "
                f"{table}",
                retry_after=30.0,
            )
        return TerminalError(
            f"{who} could not authenticate to read GCP billing export table {table}: the key's "
            "token_uri refused the key or answered without a token"
        )
    if transient:
        return TransientError(
            f"BigQuery unavailable reading GCP billing export table {table} ({shown}){detail}",
            retry_after=30.0,
        )
    if isinstance(exc, gexc.NotFound | gexc.Forbidden) or reason in ("notFound", "accessDenied"):
        return TerminalError(
            f"GCP billing export table {table} not found or not readable as {who}"
            f"{detail if echo else ''} (grant it BigQuery Data Viewer on the export dataset "
            "and BigQuery Job User in the job project)"
        )
    return TerminalError(f"reading GCP billing export table {table} failed ({shown}){detail}")


KNOWN_REASONS = TRANSIENT_REASONS | TERMINAL_REASONS


def _first_line(exc: BaseException) -> str:
    errors = getattr(exc, "errors", None) or []
    for error in errors:
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    text = str(getattr(exc, "message", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


_TRANSLATED = (gexc.GoogleAPIError, auth_exc.GoogleAuthError, ConnectionError, TimeoutError)


@contextmanager
def read_errors(table: str, who: str, secrets: list[str], echo: bool = True) -> Iterator[None]:
    try:
        yield
    except PipelineOpsError as exc:
        if mask_secrets(str(exc), secrets) != str(exc):  # ours never quote a key; make sure of it
            raise TerminalError(mask_secrets(str(exc), secrets)) from None
        raise
    except (*_TRANSLATED, requests.RequestException) as exc:
        raise translate(exc, table, who, secrets, echo) from None


# -- reading -----------------------------------------------------------------------------------


def read_export(
    client: Any, table: ExportTable, window: Window, mode: PartitionFilter, log: Any
) -> tuple[pa.Table, PartitionFilter]:
    """The query result for the window, and the partition filter actually used."""
    from google.cloud import bigquery
    from google.cloud.bigquery.retry import DEFAULT_JOB_RETRY, DEFAULT_RETRY

    retry = DEFAULT_RETRY.with_timeout(CLIENT_RETRY_SECONDS)
    job_retry = DEFAULT_JOB_RETRY.with_timeout(4 * CLIENT_RETRY_SECONDS)
    meta = client.get_table(table.name, retry=retry)
    if mode == "partitiontime" and not _ingestion_time_partitioned(meta):
        # Only ingestion-time partitioned tables have _PARTITIONTIME; the query would fail.
        log.warning(
            f"{table.name} is not ingestion-time partitioned: filtering on usage_start_time"
        )
        mode = "usage_start_time"
    params = [
        bigquery.ScalarQueryParameter("start_ts", "TIMESTAMP", window.start_ts),
        bigquery.ScalarQueryParameter("end_ts", "TIMESTAMP", window.end_ts),
    ]
    if mode == "partitiontime":
        params.append(
            bigquery.ScalarQueryParameter("partition_floor", "TIMESTAMP", window.partition_floor)
        )
    job = client.query(
        export_query(table, meta.schema, mode),
        job_config=bigquery.QueryJobConfig(query_parameters=params),
        location=getattr(meta, "location", None) or client.location,
        retry=retry,
        job_retry=job_retry,
    )
    result = job.result(retry=retry, job_retry=job_retry).to_arrow(create_bqstorage_client=False)
    return result, mode


def _ingestion_time_partitioned(meta: Any) -> bool:
    partitioning = getattr(meta, "time_partitioning", None)
    return (
        getattr(meta, "table_type", "TABLE") == "TABLE"
        and partitioning is not None
        and not partitioning.field
    )


def _partition_filter(value: object) -> PartitionFilter:
    mode = str(value or "partitiontime")
    if mode not in PARTITION_FILTERS:
        raise TerminalError(
            f"partition_filter must be one of {', '.join(PARTITION_FILTERS)}, got {value!r}"
        )
    return cast(PartitionFilter, mode)


def _days(config: Mapping[str, Any], name: str, default: int) -> int:
    value = config.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 60:
        raise TerminalError(f"{name} must be a whole number of days from 0 to 60, got {value!r}")
    return value


class ExternalBqExtractor:
    ps_type: ClassVar[str] = "cloud.gcp_billing_export"

    def run(self, ctx: StepContext) -> StepResult:
        mode = _partition_filter(ctx.config.get("partition_filter"))
        margin = _days(ctx.config, "margin_days", 3)
        lookback = _days(ctx.config, "lookback_days", 0)
        destination = str(ctx.config.get("destination_table") or RAW_TABLE)
        credential = ctx.credential()
        secrets = secrets_of(credential)
        table = export_table(ctx, credential)
        window = Window(ctx.start_date - timedelta(days=lookback), ctx.end_date, margin)
        who = "the service account"
        with read_errors(table.name, who, secrets), google_egress(credential) as overridden:
            client, who = bigquery_client(credential, table)
            ctx.log.info(
                f"reading {table.name} as {who}: usage {window.start}..{window.end}"
                + (f" (lookback {lookback} days)" if lookback else "")
            )
            with read_errors(table.name, who, secrets, echo=not overridden):
                result, mode = read_export(client, table, window, mode, ctx.log)
        rows = flatten(result, table.name)
        newest = watermark(rows)
        credits = rows.num_rows - result.num_rows
        ctx.log.info(
            f"{table.name}: {result.num_rows} export rows, {credits} credits, "
            f"net {net_cost(rows):.2f} (partition filter {mode}); export_time watermark "
            f"{newest.isoformat() if newest else 'none (no rows)'}"
        )
        if not rows.num_rows:
            ctx.log.warning(f"{table.name} has no rows for {window.start}..{window.end}")
        # With a look-back the write replaces from the window's start, not the run's.
        written = ctx.write(destination, rows, date_column="usage_date", start_date=window.start)
        return StepResult(
            rows_written=written.rows_written,
            tables=[written.table],
            metrics={
                "source_table": table.name,
                "export_rows": result.num_rows,
                "credit_rows": credits,
                "net_cost": round(net_cost(rows), 6),
                "export_time_watermark": newest.isoformat() if newest else None,
                "partition_filter": mode,
                "window_start": window.start.isoformat(),
                "window_end": window.end.isoformat(),
            },
        )

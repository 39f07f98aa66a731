"""generic.http_extract: GET JSON rows from an HTTP endpoint into a table.

For simple internal APIs and exports served over HTTP. Config:
  url: http(s) URL returning a JSON list of objects, or an object with `data`
  destination_table: table to write (replace)
  date_column: optional DATE column (ISO strings) that keys each row's run date
  timeout_seconds: request timeout (default 30)

The url is the operator's (a pipeline file; run params never reach templates), so any
host may be named, but the answer is read with the egress caps: a total deadline
(PIPELINE_OPS_HTTP_DEADLINE_SECONDS), a body cap, no redirects, no metadata addresses.

Auth: when the run's credential has an `api_key`, it is sent as
`Authorization: Bearer <api_key>`; the `default` credential sends nothing.

Error messages quote a short excerpt of the response body (providers explain
failures there). Any header value we sent is masked in it first, since servers
may echo it; the engine's redactor then masks every decrypted credential value.

429 and 5xx and timeouts are TransientError (honouring Retry-After); other
4xx are TerminalError.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import httpx
import pyarrow as pa
import pyarrow.compute as pc

from pipeline_ops_core.egress import EgressClient, EgressPolicy, Fetched, HostPattern
from pipeline_ops_core.errors import TerminalError, TransientError
from processors.base import StepContext, StepResult


def retry_after_seconds(response: httpx.Response | Fetched) -> float | None:
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None


ERROR_EXCERPT_CHARS = 300
MASK = "[REDACTED]"


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret of 6 or more characters replaced by MASK, longest first."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 6:
            text = text.replace(secret, MASK)
    return text


def error_excerpt(response: httpx.Response | Fetched, sent: dict[str, str] | None = None) -> str:
    """` (response: ...)` with the body's start, or "" for an empty body.

    Values of the headers we sent are masked before the cut, so a truncation can
    never leave part of an echoed secret behind.
    """
    secrets = {part for value in (sent or {}).values() for part in (value, *value.split()[-1:])}
    text = " ".join(mask_secrets(response.text, secrets).split())[:ERROR_EXCERPT_CHARS]
    return f" (response: {text})" if text else ""


def operator_client(timeout: float) -> EgressClient:
    """A client for a URL the operator wrote in a pipeline file (no tenant chose it): any
    host, any scheme, but the same caps and deadline, and never a metadata address."""
    return EgressClient(
        "the step's url",
        None,
        egress=EgressPolicy((HostPattern("*", None),)),
        timeout=timeout,
    )


def get_json(
    url: str,
    timeout: float,
    headers: dict[str, str] | None = None,
    params: list[tuple[str, str]] | None = None,
    auth_hint: str = "",
    client: EgressClient | None = None,
) -> Any:
    """GET `url` and decode JSON, mapping failures onto the two error roots.

    `params` are query parameters (a list, so array params like `group_by[]` can repeat);
    `auth_hint` is appended to the 401/403 message to say what credential is expected.
    `client` goes through the egress policy for the URL's field; without one the URL is
    the operator's. A client with `echo` off (a tenant-chosen endpoint) never quotes the
    answer: errors carry the status and a fixed message.
    """
    if not url.startswith(("http://", "https://")):
        raise TerminalError("only http(s) URLs are allowed")
    owned = client is None
    client = client or operator_client(timeout)
    shown = url if client.echo else f"the endpoint in {client.where}"
    try:
        response = client.get(url, headers=headers or {}, params=params)
    except httpx.TimeoutException as exc:
        raise TransientError(f"timeout after {timeout}s calling {shown}") from exc
    except httpx.TransportError as exc:
        raise TransientError(f"connection error calling {shown}: {type(exc).__name__}") from exc
    finally:
        if owned:
            client.close()
    excerpt = error_excerpt(response, headers) if client.echo else ""
    status = response.status_code
    if status == 429 or status >= 500:
        raise TransientError(
            f"HTTP {status} from {shown}{excerpt}", retry_after=retry_after_seconds(response)
        )
    if status in (401, 403):
        raise TerminalError(f"HTTP {status} from {shown}: credentials rejected{auth_hint}{excerpt}")
    if 300 <= status < 400:
        raise TerminalError(f"HTTP {status} from {shown}: redirects are not followed")
    if status >= 400:
        raise TerminalError(f"HTTP {status} from {shown}{excerpt}")
    try:
        return response.json()
    except ValueError as exc:
        raise TerminalError(f"response from {shown} is not JSON") from exc


class HttpExtractProcessor:
    ps_type: ClassVar[str] = "generic.http_extract"

    def run(self, ctx: StepContext) -> StepResult:
        url, table = ctx.config.get("url"), ctx.config.get("destination_table")
        if not url or not table:
            raise TerminalError("http_extract needs url and destination_table")
        api_key = ctx.credential().get("api_key")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        payload = get_json(str(url), float(ctx.config.get("timeout_seconds", 30)), headers)
        records = payload.get("data") if isinstance(payload, dict) else payload
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise TerminalError("expected a JSON list of objects (or {data: [...]})")
        rows = pa.Table.from_pylist(records)
        date_column = ctx.config.get("date_column")
        if date_column and rows.num_rows:
            dates = pc.cast(rows.column(date_column), pa.date32())
            rows = rows.set_column(rows.column_names.index(date_column), date_column, dates)
        ctx.log.info(f"fetched {rows.num_rows} rows from {url}")
        result = ctx.write(table, rows, date_column=date_column)
        return StepResult(rows_written=result.rows_written, tables=[result.table])

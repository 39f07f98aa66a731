"""OCI FOCUS cost reports from Object Storage via the `oci` SDK (cloud.oci_cost_report).

The reports sit in Oracle's tenancy (namespace `bling`, bucket = the customer's tenancy OCID);
the customer reads them with an API key whose user is in a group endorsed by the
cross-tenancy policy (see oci_reports.ENDORSE_POLICY). Config keys (all optional):
`destination_table`, `lookahead_days` (default 3), `namespace`, `bucket`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any, BinaryIO, ClassVar

import oci
import pyarrow as pa

from pipeline_ops_core.egress import Limits, page_tokens, policy, spool
from pipeline_ops_core.errors import TerminalError
from processors.base import StepContext
from processors.cloud.exports.processor import FocusExportProcessor
from processors.cloud.oci.reports import (
    REPORTS_ROOT,
    FolderRange,
    ReportLocation,
    drop_redelivered,
    lookahead_days,
    map_request_error,
    map_service_error,
    report_location,
    sdk_config,
)
from processors.providers import endpoint_hosts
from processors.sdk_egress import refusal_in

LIST_FIELDS = "name,size,timeCreated"
CHUNK_BYTES = 1024 * 1024
# (connect, read) seconds; a report is a few MB at most.
TIMEOUT = (10.0, 120.0)


class OciReportSource:
    """The FOCUS report files of one run, listed and fetched through ObjectStorageClient."""

    def __init__(
        self,
        client: oci.object_storage.ObjectStorageClient,
        where: ReportLocation,
        folders: FolderRange,
        endpoint: str,
        log: Any,
    ) -> None:
        self.client = client
        self.where = where
        self.folders = folders
        self.endpoint = endpoint
        self.log = log
        self.limits = Limits.from_env()

    def list_files(self, months: list[date]) -> list[str]:
        """The report files of the run's day folders plus the lookahead, oldest first.

        The base class thinks in months; OCI's folders are days, so the run's own dates (which
        those months cover) and the late-file lookahead bound one paged listing. Files are
        returned oldest first so that, of a re-delivered line item, the original is kept.
        """
        found: list[tuple[str, str]] = []
        skipped = 0
        start: str | None = self.folders.list_start
        pages = 0
        # A listing that repeats its next token, or never ends, stops with an error.
        next_page = page_tokens(self.limits, f"listing {self.folders.describe()}")
        while start is not None:
            response = self._call(
                lambda s=start: self.client.list_objects(
                    self.where.namespace,
                    self.where.bucket,
                    prefix=REPORTS_ROOT,
                    start=s,
                    end=self.folders.list_end,
                    fields=LIST_FIELDS,
                )
            )
            pages += 1
            for item in response.data.objects or []:
                if self.folders.holds(item.name):
                    created = item.time_created.isoformat() if item.time_created else ""
                    found.append((created, item.name))
                else:
                    skipped += 1
            start = response.data.next_start_with
            if not next_page(start):
                break
        if not found:
            raise TerminalError(
                f"no OCI FOCUS report files under prefix {self.folders.describe()} in "
                f"{self.where.describe()}: is the FOCUS report enabled for this tenancy, and "
                "has Oracle delivered a report for these dates yet?"
            )
        other = f"; skipped {skipped} other object(s)" if skipped else ""
        self.log.info(
            f"listed {len(found)} report file(s) in {pages} page(s) under "
            f"{self.folders.describe()}{other}"
        )
        return [name for _, name in sorted(found)]

    def fetch(self, name: str) -> BinaryIO:
        """The report, streamed into a local file of at most max_object_bytes."""
        response = self._call(
            lambda: self.client.get_object(self.where.namespace, self.where.bucket, name),
            object_name=name,
        )
        stream = response.data
        try:
            size = response.headers.get("content-length")
            return self._call(
                lambda: spool(
                    stream.iter_content(CHUNK_BYTES),
                    self.limits,
                    name,
                    size=int(size) if size and size.isdigit() else None,
                ),
                object_name=name,
            )
        finally:
            stream.close()

    def _call(self, call: Any, *, object_name: str | None = None) -> Any:
        try:
            return call()
        except oci.exceptions.ServiceError as exc:
            raise map_service_error(exc, self.where, object_name=object_name) from None
        except (oci.exceptions.RequestException, oci.exceptions.ConnectTimeout) as exc:
            raise refusal_in(exc) or map_request_error(exc, self.endpoint) from None


class OciCostReportProcessor(FocusExportProcessor):
    ps_type: ClassVar[str] = "cloud.oci_cost_report"
    provider: ClassVar[str] = "oci"
    default_table: ClassVar[str] = "oci_focus_report_raw"
    endpoint_field: ClassVar[str] = "service_endpoint"
    # OCI's 1.0-preview names not covered by the built-in renames: none are needed today
    # (ChargeSubcategory has no 1.3 column; it stays in x_extensions for sp_focus_oci).
    renames: ClassVar[dict[str, str]] = {}

    def source(self, ctx: StepContext) -> OciReportSource:
        credential = ctx.credential()
        config = sdk_config(credential)
        where = report_location(credential, ctx.config)
        folders = FolderRange.for_run(ctx.start_date, ctx.end_date, lookahead_days(ctx.config))
        endpoint = str(credential.get("service_endpoint") or "")
        if endpoint:
            hosts = endpoint_hosts(self.provider, self.endpoint_field)
            policy().check_url(endpoint, "credential service_endpoint", hosts)
        client = _client(config, endpoint or None)
        shown = endpoint or f"region {config['region']}"
        return OciReportSource(client, where, folders, shown, ctx.log)

    def post_process(self, rows: pa.Table, ctx: StepContext) -> pa.Table:
        kept, dropped = drop_redelivered(rows)
        if dropped:
            ctx.log.info(f"dropped {dropped} re-delivered report row(s) (same oci_ReferenceNumber)")
        return kept


def _client(
    config: Mapping[str, Any], endpoint: str | None
) -> oci.object_storage.ObjectStorageClient:
    try:
        return oci.object_storage.ObjectStorageClient(
            dict(config),
            service_endpoint=endpoint,
            timeout=TIMEOUT,
            # The step's own retry policy handles TransientError; SDK retries (up to 8, with
            # backoff) inside each attempt would multiply with it and hide the cause.
            retry_strategy=oci.retry.NoneRetryStrategy(),
            # The breaker is process-wide state; a worker serving many orgs must not let one
            # org's failures short-circuit another's calls.
            circuit_breaker_strategy=oci.circuit_breaker.NoCircuitBreakerStrategy(),
        )
    except oci.exceptions.MissingPrivateKeyPassphrase:
        raise TerminalError(
            "OCI credential is invalid: key_content is encrypted and pass_phrase is missing"
        ) from None
    except (oci.exceptions.InvalidPrivateKey, ValueError, TypeError):
        # The SDK's own messages are fixed text, but a cryptography ValueError might quote
        # input; say only which field is wrong.
        raise TerminalError(
            "OCI credential is invalid: key_content is not a PEM private key "
            "(or pass_phrase does not open it)"
        ) from None

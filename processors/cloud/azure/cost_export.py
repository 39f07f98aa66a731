"""cloud.azure_cost_export: an Azure Cost Management FocusCost export, from Blob storage.

Credential (JSON): `connection_string`, or `account_url` with `account_key` (optional
`account_name` when the URL does not name the account) or `sas_token`. `container`,
`root_folder` and `export_name` come from the step config, else from the credential.

Each billing month is read from ONE run of the export: the `<YYYYMMDD-YYYYMMDD>` folder
covering the month, and in it the manifest.json with the latest runInfo.submittedTime (see
azure_export_manifest); only the files that manifest lists are read. Only FocusCost exports
(FOCUS 1.0, 1.0r2, 1.2-preview) are read; an ActualCost/AmortizedCost manifest is refused.

Blob errors become TerminalError (missing container/manifest/file, access denied) or
TransientError (throttling, 5xx, connection trouble). Messages name the container, blob and
account, never the key, SAS token or connection string.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, BinaryIO, ClassVar
from urllib.parse import urlparse

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobServiceClient, ContainerClient, ExponentialRetry

from pipeline_ops_core.egress import Limits, page_tokens, policy, spool
from pipeline_ops_core.errors import PipelineOpsError, TerminalError, TransientError
from processors.base import RunLog, StepContext
from processors.cloud.azure.manifest import (
    MANIFEST_SUFFIX,
    ExportBlob,
    blob_candidates,
    check_manifest,
    connection_string_endpoint,
    export_prefix,
    folder_for_month,
    latest_run,
    month_bounds,
    parse_manifest,
)
from processors.cloud.exports.processor import FocusExportProcessor
from processors.providers import endpoint_hosts

# The SDK retries throttling, 5xx and dropped connections itself first (its default waits
# 15 s and more between tries); the step's own retry comes after.
_RETRY = {"initial_backoff": 2, "increment_base": 2, "retry_total": 2}
_TIMEOUTS = {"connection_timeout": 20, "read_timeout": 120}
# Codes Azure Storage answers when the key/SAS is wrong, expired or lacks a permission.
_REJECTED_CODES = {"AuthenticationFailed", "AuthorizationFailure", "InvalidAuthenticationInfo"}
_DENIED_CODES = {
    "AuthorizationPermissionMismatch",
    "AuthorizationResourceTypeMismatch",
    "AuthorizationServiceMismatch",
    "AuthorizationProtocolMismatch",
    "AuthorizationSourceIPMismatch",
    "InsufficientAccountPermissions",
    "AccountIsDisabled",
}
_TRANSIENT_CODES = {"ServerBusy", "InternalError", "OperationTimedOut"}
_KNOWN_CODES = (
    _REJECTED_CODES | _DENIED_CODES | _TRANSIENT_CODES
    | {"ContainerNotFound", "BlobNotFound", "ResourceNotFound", "InvalidResourceName",
       "OutOfRangeInput", "InvalidQueryParameterValue", "InvalidUri", "UnsupportedHeader",
       "ConditionNotMet", "InvalidRange", "AccountBeingCreated"}
)  # fmt: skip
PROVIDER, ACCOUNT_URL = "azure", "account_url"


@dataclass(frozen=True)
class AzureExportSettings:
    connection_string: str | None
    account_url: str | None
    account_name: str | None
    account_key: str | None
    sas_token: str | None
    container: str
    root_folder: str
    export_name: str

    def __repr__(self) -> str:  # the dataclass default would print the secrets
        return (
            f"AzureExportSettings(container={self.container!r}, "
            f"root_folder={self.root_folder!r}, export_name={self.export_name!r})"
        )

    @classmethod
    def from_step(
        cls, credential: Mapping[str, Any], config: Mapping[str, Any]
    ) -> AzureExportSettings:
        def setting(name: str) -> str | None:
            value = config.get(name)
            if value in (None, ""):
                value = credential.get(name)
            return _text(value, name)

        conn = _text(credential.get("connection_string"), "connection_string")
        url = _text(credential.get("account_url"), "account_url")
        key = _text(credential.get("account_key"), "account_key")
        sas = _text(credential.get("sas_token"), "sas_token")
        if conn is None and url is None:
            raise TerminalError(
                "the Azure credential needs connection_string, or account_url with "
                "account_key or sas_token"
            )
        if conn is not None:
            check_connection_string(conn)
        else:
            url = check_account_url(url)
            if (key is None) == (sas is None):
                raise TerminalError(
                    "the Azure credential with account_url needs exactly one of "
                    "account_key and sas_token"
                )
            if key is not None:
                check_account_key(key)
        container, export_name = setting("container"), setting("export_name")
        if not container or not export_name:
            raise TerminalError(
                "the Azure export needs container and export_name "
                "(in the step config or the credential)"
            )
        return cls(
            connection_string=conn,
            account_url=url if conn is None else None,
            account_name=_text(credential.get("account_name"), "account_name"),
            account_key=key if conn is None else None,
            sas_token=sas.lstrip("?") if sas and conn is None else None,
            container=container.strip("/"),
            root_folder=(setting("root_folder") or "").strip("/"),
            export_name=export_name.strip("/"),
        )


def _text(value: Any, name: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise TerminalError(f"Azure export setting {name!r} must be text")
    return value.strip() or None


def check_account_url(value: str | None) -> str:
    """An http(s) blob endpoint without a query string (a SAS belongs in sas_token), on
    Azure's blob hosts or a host the operator allow-listed (pipeline_ops_core/egress.py)."""
    parsed = urlparse(value or "")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise TerminalError("account_url must be an http:// or https:// blob endpoint URL")
    if parsed.query or parsed.fragment:
        # Not echoed: a query string here is where a SAS token would be.
        raise TerminalError("account_url must not carry a query string; put a SAS in sas_token")
    policy().check_url(str(value), "credential account_url", endpoint_hosts(PROVIDER, ACCOUNT_URL))
    return str(value).rstrip("/")


def check_connection_string(conn: str) -> None:
    """Refuse a connection string that would make anonymous requests; never echo it."""
    fields = {}
    for part in conn.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            fields[name.strip().lower()] = value.strip()
    if not fields.get("accountkey") and not fields.get("sharedaccesssignature"):
        raise TerminalError(
            "the Azure credential's connection_string has neither AccountKey nor "
            "SharedAccessSignature"
        )
    if fields.get("accountkey"):
        check_account_key(fields["accountkey"], "connection_string's AccountKey")
    # The string names its endpoint; it is held to account_url's hosts.
    endpoint = connection_string_endpoint(conn)
    if endpoint is not None:
        where = "credential connection_string's blob endpoint"
        policy().check_url(endpoint, where, endpoint_hosts(PROVIDER, ACCOUNT_URL))


def check_account_key(key: str, field: str = "account_key") -> None:
    try:
        base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raise TerminalError(f"the Azure credential's {field} is not valid base64") from None


def _code(exc: HttpResponseError) -> str:
    code = getattr(exc, "error_code", None)
    return str(getattr(code, "value", code) or "")


def azure_error(
    exc: AzureError, *, target: str, container: str, account: str, missing: str | None = None
) -> PipelineOpsError:
    """Map an azure-storage-blob error on `target` (a container/blob path) to our errors.

    Only the error code and status reach the message: the SDK's own text is not needed
    and the key, SAS or connection string never appear in either.
    """
    if isinstance(exc, HttpResponseError):
        code, status = _code(exc), int(exc.status_code or 0)
        # Only codes of Azure Storage's documented vocabulary are repeated; anything else an
        # endpoint says stays out of tenant-visible text.
        code = code if code in _KNOWN_CODES else ""
        if code == "ContainerNotFound":
            return TerminalError(f"container '{container}' does not exist in {account}")
        if code in ("InvalidResourceName", "OutOfRangeInput"):
            return TerminalError(
                f"'{target}' is not a valid container or blob name in {account} ({code})"
            )
        if code in ("BlobNotFound", "ResourceNotFound") or status == 404:
            return TerminalError(missing or f"'{target}' does not exist in {account}")
        if code in _REJECTED_CODES or isinstance(exc, ClientAuthenticationError):
            return TerminalError(
                f"access denied reading '{target}' in {account} ({code or status}): "
                "the account key or SAS token was rejected (wrong, expired or revoked)"
            )
        if code in _DENIED_CODES or status in (401, 403):
            return TerminalError(
                f"access denied reading '{target}' in {account} ({code or status}): the "
                "credential needs Read and List permission on the container"
            )
        if code in _TRANSIENT_CODES or status in (408, 429) or status >= 500:
            return TransientError(
                f"Azure Blob storage is unavailable or throttling reading '{target}' in "
                f"{account} ({code or status})"
            )
        return TerminalError(f"Azure Blob error reading '{target}' in {account}: {code or status}")
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return TransientError(
            f"cannot reach Azure Blob storage for {account} reading '{target}' "
            f"({type(exc).__name__})"
        )
    return TerminalError(f"Azure SDK error reading '{target}' in {account} ({type(exc).__name__})")


def make_client(settings: AzureExportSettings) -> BlobServiceClient:
    kwargs: dict[str, Any] = {"retry_policy": ExponentialRetry(**_RETRY), **_TIMEOUTS}
    try:
        if settings.connection_string is not None:
            return BlobServiceClient.from_connection_string(settings.connection_string, **kwargs)
        assert settings.account_url is not None
        credential: Any = settings.sas_token
        if settings.account_key is not None:
            credential = settings.account_key
            if settings.account_name:
                credential = {"account_name": settings.account_name, "account_key": credential}
        return BlobServiceClient(settings.account_url, credential=credential, **kwargs)
    except ValueError:
        # The SDK's message may quote the connection string: say which field, nothing more.
        field = "connection_string" if settings.connection_string else "account_url"
        raise TerminalError(f"the Azure credential's {field} is malformed") from None


class BlobExportSource:
    """Reads one export's manifests and data files from one container."""

    def __init__(self, settings: AzureExportSettings, log: RunLog) -> None:
        self.settings = settings
        self.log = log
        self.limits = Limits.from_env()
        service = make_client(settings)
        self.account = f"storage account '{service.account_name or service.primary_hostname}'"
        self._container: ContainerClient = service.get_container_client(settings.container)
        # `<container>/<blob>` -> (blob, manifest path, manifest entry)
        self._expected: dict[str, tuple[str, str, ExportBlob]] = {}

    def _path(self, name: str) -> str:
        return f"{self.settings.container}/{name}"

    def _error(self, exc: AzureError, name: str, missing: str | None = None) -> PipelineOpsError:
        return azure_error(
            exc,
            target=self._path(name),
            container=self.settings.container,
            account=self.account,
            missing=missing,
        )

    def _list(self, prefix: str, *, folders: bool) -> dict[str, int]:
        """Names under `prefix` with their sizes; with `folders`, its sub-folders (size 0).

        Read page by page: a repeated continuation token or too many pages ends it."""
        found: dict[str, int] = {}
        try:
            if folders:
                pager = self._container.walk_blobs(name_starts_with=prefix, delimiter="/")
            else:
                pager = self._container.list_blobs(prefix)
            pages = pager.by_page()
            next_page = page_tokens(self.limits, f"listing '{self._path(prefix)}'")
            for page in pages:
                for item in page:
                    if not folders:
                        found[item.name] = int(item.size or 0)
                    elif item.name.endswith("/"):
                        found[item.name] = 0
                if not next_page(pages.continuation_token):
                    break
        except AzureError as exc:
            raise self._error(exc, prefix) from None
        return found

    def _get(self, name: str, missing: str | None = None) -> BinaryIO:
        """The blob, streamed into a local file of at most max_object_bytes."""
        try:
            download = self._container.download_blob(name)
            return spool(download.chunks(), self.limits, self._path(name), size=download.size)
        except AzureError as exc:
            raise self._error(exc, name, missing) from None

    def list_files(self, months: list[date]) -> list[str]:
        s = self.settings
        prefix = export_prefix(s.root_folder, s.export_name)
        self.log.info(f"reading Cost Management export '{self._path(prefix)}' in {self.account}")
        folders = self._list(prefix, folders=True)
        names: list[str] = []
        for month in months:
            for name in self._month_files(prefix, list(folders), month):
                if name not in names:  # one wide custom-range folder may serve two months
                    names.append(name)
        return names

    def _month_files(self, prefix: str, folders: list[str], month: date) -> list[str]:
        period, (first, last) = month.strftime("%Y-%m"), month_bounds(month)
        folder = folder_for_month(folders, month)
        if folder is None:
            raise TerminalError(
                f"no export for {period} under '{self._path(prefix)}' in {self.account}: "
                f"expected a folder {first:%Y%m%d}-{last:%Y%m%d} (has the export run for this "
                "period? are container, root_folder and export_name right?)"
            )
        run_prefix = f"{prefix}{folder.name}/"
        listed = self._list(run_prefix, folders=False)
        manifest_names = sorted(n for n in listed if n.endswith(MANIFEST_SUFFIX))
        if not manifest_names:
            raise TerminalError(
                f"no manifest.json for {period} under '{self._path(run_prefix)}' in "
                f"{self.account}: the export has no completed run for this period"
            )
        runs = [parse_manifest(self._path(n), self._read(n)) for n in manifest_names]
        chosen = latest_run(runs)
        check_manifest(chosen)
        self.log.info(
            f"{period}: run {chosen.run_id or '?'} of {chosen.submitted:%Y-%m-%d %H:%M} UTC "
            f"({chosen.export_type} {chosen.data_version}, {len(chosen.blobs)} file(s)); "
            f"{len(runs) - 1} older run(s) superseded"
        )
        files = []
        for entry in chosen.blobs:
            candidates = blob_candidates(entry.name, self.settings.container)
            blob = next((c for c in candidates if c in listed), candidates[0])
            # Names are `<container>/<blob>`: they end up in errors and x_source_file.
            self._expected[self._path(blob)] = (blob, chosen.path, entry)
            files.append(self._path(blob))
        return files

    def _read(self, name: str) -> bytes:
        with self._get(name) as handle:
            return handle.read()

    def fetch(self, name: str) -> BinaryIO:
        if name not in self._expected:
            raise TerminalError(f"'{name}' is not a file of the export's manifests")
        blob, manifest, entry = self._expected[name]
        data = self._get(
            blob,
            missing=f"data file '{name}' is listed in manifest '{manifest}' but does not "
            f"exist in {self.account}",
        )
        size = data.seek(0, 2)
        data.seek(0)
        if entry.byte_count is not None and entry.byte_count != size:
            data.close()
            # A run replaced while we read it; the next attempt reads the new manifest.
            raise TransientError(
                f"data file '{name}' has {size} bytes but manifest '{manifest}' says "
                f"{entry.byte_count}: the export is being rewritten"
            )
        return data


class AzureCostExportProcessor(FocusExportProcessor):
    ps_type: ClassVar[str] = "cloud.azure_cost_export"
    provider: ClassVar[str] = "azure"
    default_table: ClassVar[str] = "azure_focus_export_raw"
    endpoint_field: ClassVar[str] = ACCOUNT_URL
    # FocusCost 1.0 names (ProviderName, PublisherName, InvoiceIssuerName, ...) are handled by
    # normalize_focus_export's built-in renames; Microsoft's x_ columns go to x_extensions.
    renames: ClassVar[dict[str, str]] = {}

    def source(self, ctx: StepContext) -> BlobExportSource:
        settings = AzureExportSettings.from_step(ctx.credential(), ctx.config)
        return BlobExportSource(settings, ctx.log)

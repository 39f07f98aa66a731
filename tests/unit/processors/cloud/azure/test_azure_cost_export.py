"""cloud.azure_cost_export without a server: settings from credential and config, error mapping."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from pipeline_ops_core.errors import TerminalError, TransientError
from processors.cloud.azure.cost_export import (
    AzureCostExportProcessor,
    AzureExportSettings,
    azure_error,
    make_client,
)
from processors.registry import get_processor

KEY = "c2VjcmV0LWtleS1ieXRlcw=="  # base64 of "secret-key-bytes"
SAS = "sv=2025-01-05&sp=rl&sig=c2lnbmF0dXJl"
WHERE = {"container": "costs", "export_name": "daily"}


def settings(credential: dict[str, Any], config: dict[str, Any] | None = None) -> Any:
    return AzureExportSettings.from_step(credential, config or {})


def test_registered() -> None:
    processor = get_processor("cloud.azure_cost_export")
    assert isinstance(processor, AzureCostExportProcessor)
    assert (processor.provider, processor.default_table) == ("azure", "azure_focus_export_raw")


def test_config_overrides_the_credential() -> None:
    credential = {"account_url": "https://acct.blob.core.windows.net/", "account_key": KEY}
    credential |= {**WHERE, "root_folder": "/exports/focus/"}
    s = settings(credential, {"export_name": "monthly", "container": ""})
    assert (s.container, s.root_folder, s.export_name) == ("costs", "exports/focus", "monthly")
    assert s.account_url == "https://acct.blob.core.windows.net"
    assert KEY not in repr(s) and "acct" not in repr(s)


def test_sas_token_loses_its_question_mark() -> None:
    s = settings(
        {"account_url": "https://a.blob.core.windows.net", "sas_token": "?" + SAS, **WHERE}
    )
    assert s.sas_token == SAS and s.account_key is None
    assert SAS not in repr(s)


@pytest.mark.parametrize(
    ("credential", "message"),
    [
        ({**WHERE}, "needs connection_string, or account_url with account_key or sas_token"),
        ({"account_url": "https://a.blob.core.windows.net", **WHERE}, "exactly one of"),
        (
            {"account_url": "https://a.blob.core.windows.net", "account_key": KEY, "sas_token": SAS}
            | WHERE,
            "exactly one of",
        ),
        ({"account_url": "ftp://a", "account_key": KEY, **WHERE}, "http:// or https://"),
        (
            {"account_url": f"https://a.blob.core.windows.net/?{SAS}", "account_key": KEY} | WHERE,
            "must not carry a query string",
        ),
        (
            {"account_url": "https://a.blob.core.windows.net", "account_key": "not base64!"}
            | WHERE,
            "account_key is not valid base64",
        ),
        ({"connection_string": f"AccountKey={KEY}", "container": "costs"}, "needs container and"),
        ({"connection_string": 5, **WHERE}, "'connection_string' must be text"),
    ],
)
def test_bad_settings(credential: dict[str, Any], message: str) -> None:
    with pytest.raises(TerminalError, match=message) as caught:
        settings(credential)
    for secret in (SAS, "sig=", "not base64!"):
        assert secret not in str(caught.value)


@pytest.mark.parametrize(
    ("conn", "message"),
    [
        ("AccountName=acct", "connection_string has neither AccountKey nor SharedAccessSignature"),
        ("AccountName=acct;AccountKey=sec ret!", "connection_string's AccountKey is not valid"),
    ],
)
def test_connection_string_needs_a_secret(conn: str, message: str) -> None:
    with pytest.raises(TerminalError, match=message) as caught:
        settings({"connection_string": conn, **WHERE})
    assert "sec ret!" not in str(caught.value)


def test_malformed_connection_string_is_not_echoed() -> None:
    conn = f"SharedAccessSignature={SAS}"  # no endpoint, no account: the SDK refuses it
    with pytest.raises(TerminalError) as caught:
        make_client(settings({"connection_string": conn, **WHERE}))
    assert str(caught.value) == "the Azure credential's connection_string is malformed"


def http_error(status: int, code: str, cls: type[HttpResponseError] = HttpResponseError) -> Any:
    exc = cls(message=f"server text with sig={SAS}")
    exc.status_code, exc.error_code = status, code
    return exc


def mapped(exc: Exception, missing: str | None = None) -> Exception:
    return azure_error(
        exc,  # type: ignore[arg-type]
        target="costs/r/daily/manifest.json",
        container="costs",
        account="storage account 'acct'",
        missing=missing,
    )


@pytest.mark.parametrize(
    ("exc", "kind", "message"),
    [
        (
            http_error(404, "ContainerNotFound", ResourceNotFoundError),
            TerminalError,
            "container 'costs' does not exist in storage account 'acct'",
        ),
        (
            http_error(404, "BlobNotFound", ResourceNotFoundError),
            TerminalError,
            "'costs/r/daily/manifest.json' does not exist in storage account 'acct'",
        ),
        (
            http_error(403, "AuthenticationFailed", ClientAuthenticationError),
            TerminalError,
            "access denied reading 'costs/r/daily/manifest.json' in storage account 'acct' "
            "(AuthenticationFailed): the account key or SAS token was rejected",
        ),
        (
            http_error(403, "AuthorizationPermissionMismatch"),
            TerminalError,
            "access denied reading 'costs/r/daily/manifest.json' in storage account 'acct' "
            "(AuthorizationPermissionMismatch): the credential needs Read and List permission",
        ),
        (http_error(403, ""), TerminalError, "access denied reading"),
        (
            http_error(400, "InvalidResourceName"),
            TerminalError,
            "'costs/r/daily/manifest.json' is not a valid container or blob name",
        ),
        (http_error(503, "ServerBusy"), TransientError, "unavailable or throttling"),
        (http_error(500, "InternalError"), TransientError, "(InternalError)"),
        (http_error(429, ""), TransientError, "(429)"),
        (http_error(400, "InvalidQueryParameterValue"), TerminalError, "Azure Blob error"),
        (ServiceRequestError("connection refused"), TransientError, "cannot reach Azure Blob"),
        (ServiceResponseError("reset"), TransientError, "(ServiceResponseError)"),
    ],
)
def test_error_mapping(exc: Exception, kind: type, message: str) -> None:
    got = mapped(exc)
    assert type(got) is kind
    assert message in str(got)
    assert "sig=" not in str(got) and "server text" not in str(got)


def test_missing_blob_message_is_the_callers() -> None:
    got = mapped(http_error(404, "BlobNotFound"), missing="data file 'x' is listed but gone")
    assert str(got) == "data file 'x' is listed but gone"

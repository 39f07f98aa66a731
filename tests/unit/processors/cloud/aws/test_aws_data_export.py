"""AWS export settings and the mapping of boto3/botocore errors to our two error classes.

The errors are botocore's own exception classes, built the way botocore builds them from a
response; the live path (moto) is covered in tests/integration/test_cloud_aws.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from pipeline_ops_core.errors import TerminalError, TransientError
from processors.cloud.aws.data_export import (
    AwsExportSettings,
    _session_name,
    aws_error,
    check_endpoint_url,
)

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
CRED = {"access_key_id": "AKIAEXAMPLE", "secret_access_key": SECRET}
URI = "s3://billing/cur/x/data/BILLING_PERIOD=2026-10/x-00001.parquet"


def client_error(code: str, status: int, op: str = "GetObject") -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": "from AWS"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, op)


def mapped(exc: Exception, missing: str | None = None) -> Exception:
    return aws_error(exc, target=URI, bucket="billing", missing=missing)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "status", "kind", "text"),
    [
        ("NoSuchBucket", 404, TerminalError, "S3 bucket 'billing' does not exist"),
        ("NoSuchKey", 404, TerminalError, f"{URI} does not exist"),
        ("404", 404, TerminalError, f"{URI} does not exist"),  # HEAD-style, no body
        ("AccessDenied", 403, TerminalError, f"access denied to {URI} (AccessDenied)"),
        ("AllAccessDisabled", 403, TerminalError, f"access denied to {URI}"),
        ("403", 403, TerminalError, f"access denied to {URI} (403)"),
        ("InvalidAccessKeyId", 403, TerminalError, "its access_key_id is not known to AWS"),
        ("SignatureDoesNotMatch", 403, TerminalError, "wrong secret_access_key"),
        ("ExpiredToken", 400, TerminalError, "its session_token has expired"),
        ("InvalidToken", 400, TerminalError, "its session_token is not valid"),
        ("SlowDown", 503, TransientError, f"throttling reading {URI} (SlowDown)"),
        ("Throttling", 400, TransientError, "(Throttling)"),
        ("InternalError", 500, TransientError, "(InternalError)"),
        ("ServiceUnavailable", 503, TransientError, "(ServiceUnavailable)"),
        ("BadGateway", 502, TransientError, "(BadGateway)"),
        ("", 429, TransientError, "(429)"),
        ("InvalidObjectState", 403, TerminalError, f"AWS error reading {URI}: InvalidObjectState"),
        ("", 403, TerminalError, f"access denied to {URI} (403)"),
        ("InvalidRequest", 400, TerminalError, f"AWS error reading {URI}: InvalidRequest"),
    ],
)
def test_client_errors(code: str, status: int, kind: type, text: str) -> None:
    err = mapped(client_error(code, status))
    assert type(err) is kind
    assert text in str(err)


def test_a_missing_object_gets_the_callers_message() -> None:
    err = mapped(client_error("NoSuchKey", 404), missing="no manifest for billing period 2026-10")
    assert str(err) == "no manifest for billing period 2026-10"


@pytest.mark.parametrize(
    "exc",
    [
        EndpointConnectionError(endpoint_url="http://127.0.0.1:9/billing"),
        ConnectTimeoutError(endpoint_url="http://127.0.0.1:9/billing"),
        ReadTimeoutError(endpoint_url="http://127.0.0.1:9/billing"),
        ResponseStreamingError(error="connection reset"),
    ],
)
def test_connection_trouble_is_transient(exc: Exception) -> None:
    err = mapped(exc)
    assert isinstance(err, TransientError)
    assert f"cannot reach AWS reading {URI} ({type(exc).__name__})" == str(err)


def test_sdk_misuse_is_terminal() -> None:
    assert isinstance(mapped(ParamValidationError(report="Invalid bucket name")), TerminalError)
    err = mapped(NoCredentialsError())
    assert isinstance(err, TerminalError) and "NoCredentialsError" in str(err)


def test_settings_take_the_step_config_before_the_credential() -> None:
    cred = {**CRED, "bucket": "cred-bucket", "prefix": "p", "export_name": "cred-export"}
    s = AwsExportSettings.from_step(cred, {"bucket": "cfg-bucket", "prefix": "/q/r/"})
    assert (s.bucket, s.prefix, s.export_name) == ("cfg-bucket", "q/r", "cred-export")
    assert s.region == "us-east-1" and s.role_arn is None and s.endpoint_url is None
    assert s.session_token is None
    s = AwsExportSettings.from_step(
        {
            **cred,
            "region": "eu-west-1",
            "session_token": "tok",
            "role_arn": "arn:aws:iam::1:role/r",
        },
        {},
    )
    assert (s.region, s.session_token, s.role_arn) == ("eu-west-1", "tok", "arn:aws:iam::1:role/r")


def test_settings_never_print_the_secret() -> None:
    s = AwsExportSettings.from_step({**CRED, "bucket": "b", "export_name": "e"}, {})
    assert SECRET not in repr(s) and SECRET not in str(s)


@pytest.mark.parametrize(
    ("cred", "config", "text"),
    [
        (
            {"access_key_id": "AKIA"},
            {"bucket": "b", "export_name": "e"},
            "access_key_id and secret",
        ),
        ({"secret_access_key": SECRET}, {"bucket": "b", "export_name": "e"}, "access_key_id and"),
        (CRED, {"bucket": "b"}, "needs bucket and export_name"),
        (CRED, {"export_name": "e"}, "needs bucket and export_name"),
        (CRED, {"bucket": ["b"], "export_name": "e"}, "setting 'bucket' must be text"),
        ({**CRED, "role_arn": 5}, {"bucket": "b", "export_name": "e"}, "'role_arn' must be text"),
    ],
)
def test_incomplete_settings_are_terminal(
    cred: dict[str, Any], config: dict[str, Any], text: str
) -> None:
    with pytest.raises(TerminalError) as err:
        AwsExportSettings.from_step(cred, config)
    assert text in str(err.value)
    assert SECRET not in str(err.value)


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://127.0.0.1/", "127.0.0.1:9000", "http://", 42]
)
def test_endpoint_url_must_be_http(url: object) -> None:
    with pytest.raises(TerminalError, match="endpoint_url must be an http:// or https:// URL"):
        check_endpoint_url(url)


def test_endpoint_url_accepted() -> None:
    # 127.0.0.1 is on the test session's allow-list; AWS's own hosts need none.
    assert check_endpoint_url("http://127.0.0.1:5000/") == "http://127.0.0.1:5000"
    assert check_endpoint_url("https://s3.eu-west-1.amazonaws.com") == (
        "https://s3.eu-west-1.amazonaws.com"
    )
    assert check_endpoint_url(None) is None and check_endpoint_url("") is None


@pytest.mark.parametrize(
    "url", ["https://s3.example.internal", "https://minio.example.com", "http://10.0.0.5:9000"]
)
def test_other_endpoints_need_the_operators_allow_list(url: str) -> None:
    with pytest.raises(TerminalError, match="credential endpoint_url"):
        check_endpoint_url(url)


def test_role_session_names_keep_to_what_sts_allows() -> None:
    assert _session_name("pipeline-ops-acme") == "pipeline-ops-acme"
    assert _session_name("pipeline-ops-a c/m:e") == "pipeline-ops-a-c-m-e"
    assert len(_session_name("x" * 100)) == 64
    assert _session_name("") == "pipeline-ops"

"""cloud.aws_data_export: the AWS Data Exports "FOCUS 1.2 with AWS columns" export, from S3.

Credential (JSON): access_key_id, secret_access_key, optional session_token, region
(default us-east-1), optional role_arn (assumed through STS first), optional endpoint_url
(an S3-compatible endpoint; the tests point it at moto). bucket, prefix and export_name
come from the step config, else from the credential.

Each billing period's manifest (see aws_manifest) names the files that hold the period now;
only those are read. CUR 2.0 is deliberately not read: the FOCUS export already carries the
amortized EffectiveCost and the commitment-discount columns that would otherwise have to be
rebuilt from CUR's line-item types, and it maps to FOCUS 1.3 almost one to one.

S3 and STS errors become TerminalError (missing bucket/manifest/file, access denied, a
rejected credential) or TransientError (throttling, 5xx, connection trouble). Messages name
the s3:// object and the error code, never a key or a secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, BinaryIO, ClassVar
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    IncompleteReadError,
    ParamValidationError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from pipeline_ops_core.egress import Limits, policy, spool
from pipeline_ops_core.errors import PipelineOpsError, TerminalError, TransientError
from processors.base import RunLog, StepContext
from processors.cloud.aws.manifest import (
    billing_period,
    manifest_key,
    parse_manifest,
    s3_uri,
)
from processors.cloud.exports.processor import FocusExportProcessor
from processors.providers import endpoint_hosts
from processors.sdk_egress import refusal_in

DEFAULT_REGION = "us-east-1"
CHUNK_BYTES = 1024 * 1024
# botocore retries throttling and 5xx itself first; the step's own retry comes after.
_BOTO_CONFIG = Config(
    retries={"max_attempts": 3, "mode": "standard"},
    connect_timeout=10,
    read_timeout=120,
)
_CREDENTIAL_CODES = {
    "InvalidAccessKeyId": "its access_key_id is not known to AWS",
    "InvalidClientTokenId": "its access_key_id is not known to AWS",
    "SignatureDoesNotMatch": "the request signature does not match: wrong secret_access_key",
    "InvalidToken": "its session_token is not valid",
    "ExpiredToken": "its session_token has expired",
    "TokenRefreshRequired": "its session_token has expired",
}
_DENIED_CODES = {"AccessDenied", "AllAccessDisabled", "AccountProblem", "Forbidden", "403"}
_TRANSIENT_CODES = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "ServiceUnavailable",
    "503",
    "500",
}
_KNOWN_CODES = (
    set(_CREDENTIAL_CODES) | _DENIED_CODES | _TRANSIENT_CODES
    | {"NoSuchBucket", "NoSuchKey", "NotFound", "InvalidRequest", "InvalidArgument",
       "InvalidBucketName", "InvalidObjectState", "PermanentRedirect", "MalformedXML",
       "AuthorizationHeaderMalformed", "InvalidRange", "MethodNotAllowed"}
)  # fmt: skip


@dataclass(frozen=True)
class AwsExportSettings:
    access_key_id: str
    secret_access_key: str
    session_token: str | None
    region: str
    role_arn: str | None
    endpoint_url: str | None
    bucket: str
    prefix: str
    export_name: str

    def __repr__(self) -> str:  # the dataclass default would print the secret
        return f"AwsExportSettings(bucket={self.bucket!r}, export_name={self.export_name!r})"

    @classmethod
    def from_step(
        cls, credential: Mapping[str, Any], config: Mapping[str, Any]
    ) -> AwsExportSettings:
        def setting(name: str) -> str | None:
            value = config.get(name)
            if value in (None, ""):
                value = credential.get(name)
            if value is None:
                return None
            if not isinstance(value, str):
                raise TerminalError(f"AWS export setting {name!r} must be text")
            return value.strip() or None

        key_id, secret = credential.get("access_key_id"), credential.get("secret_access_key")
        if not isinstance(key_id, str) or not key_id or not isinstance(secret, str) or not secret:
            raise TerminalError("the AWS credential needs access_key_id and secret_access_key")
        token = credential.get("session_token")
        bucket, export_name = setting("bucket"), setting("export_name")
        if not bucket or not export_name:
            raise TerminalError(
                "the AWS export needs bucket and export_name (in the step config or the credential)"
            )
        return cls(
            access_key_id=key_id.strip(),
            secret_access_key=secret.strip(),
            session_token=token.strip() if isinstance(token, str) and token.strip() else None,
            region=str(credential.get("region") or DEFAULT_REGION).strip(),
            role_arn=_text(credential.get("role_arn"), "role_arn"),
            endpoint_url=check_endpoint_url(credential.get("endpoint_url")),
            bucket=bucket,
            prefix=(setting("prefix") or "").strip("/"),
            export_name=export_name.strip("/"),
        )


def _text(value: Any, name: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise TerminalError(f"AWS credential field {name!r} must be text")
    return value.strip() or None


def check_endpoint_url(value: Any) -> str | None:
    """An http(s) URL or None; anything else (file:, bare hosts) is refused up front, and
    the egress policy decides the host (AWS's own, or the operator's allow-list)."""
    if value is None or value == "":
        return None
    parsed = urlparse(value) if isinstance(value, str) else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise TerminalError("endpoint_url must be an http:// or https:// URL")
    policy().check_url(value, "credential endpoint_url", endpoint_hosts("aws", "endpoint_url"))
    return str(value).rstrip("/")


def aws_error(
    exc: ClientError | BotoCoreError, *, target: str, bucket: str, missing: str | None = None
) -> PipelineOpsError:
    """Map an S3/STS SDK error on `target` (an s3:// URI or role ARN) to our error classes.

    `missing` is the message for a missing object (NoSuchKey), which means different things
    for a manifest and for a data file.
    """
    refused = refusal_in(exc)
    if refused is not None:
        return refused
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "")
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code == "NoSuchBucket":
            return TerminalError(f"S3 bucket '{bucket}' does not exist")
        if code in ("NoSuchKey", "404", "NotFound"):
            return TerminalError(missing or f"{target} does not exist")
        if code in _CREDENTIAL_CODES:
            return TerminalError(
                f"AWS rejected the credential reading {target}: {_CREDENTIAL_CODES[code]} ({code})"
            )
        if code in _DENIED_CODES or (status == 403 and not code):
            return TerminalError(
                f"access denied to {target} ({code or status}): the credential's IAM policy "
                "must allow s3:GetObject on the export's objects"
                if target.startswith("s3://")
                else f"access denied to {target} ({code or status})"
            )
        if code in _TRANSIENT_CODES or status == 429 or status >= 500:
            return TransientError(
                f"AWS is unavailable or throttling reading {target} ({code or status})"
            )
        # Only codes of AWS's documented vocabulary are repeated; anything else an endpoint
        # says stays out of tenant-visible text.
        shown = code if code in _KNOWN_CODES else f"HTTP {status}"
        return TerminalError(f"AWS error reading {target}: {shown}")
    if isinstance(exc, (BotoConnectionError, HTTPClientError, IncompleteReadError)):
        return TransientError(f"cannot reach AWS reading {target} ({type(exc).__name__})")
    if isinstance(exc, ParamValidationError):
        return TerminalError(f"invalid AWS request for {target}: {exc}")
    return TerminalError(f"AWS SDK error reading {target} ({type(exc).__name__})")


def _session_name(name: str) -> str:
    # STS allows [\w+=,.@-]{2,64} in a session name; an org slug may hold anything else.
    cleaned = re.sub(r"[^\w+=,.@-]", "-", name)[:64]
    return cleaned if len(cleaned) >= 2 else "pipeline-ops"


class S3ExportSource:
    """Reads one export's manifests and data files from one bucket."""

    def __init__(self, settings: AwsExportSettings, log: RunLog, session_name: str) -> None:
        self.settings = settings
        self.log = log
        self.limits = Limits.from_env()
        self._s3 = self._client(session_name)

    def _client(self, session_name: str) -> Any:
        s = self.settings
        session = boto3.session.Session(
            aws_access_key_id=s.access_key_id,
            aws_secret_access_key=s.secret_access_key,
            aws_session_token=s.session_token,
            region_name=s.region,
        )
        if s.role_arn is not None:
            session = self._assume_role(session, session_name)
        config = _BOTO_CONFIG
        if s.endpoint_url:
            # A custom endpoint (moto, MinIO) needs path-style addressing: virtual-host
            # style would put the bucket into the endpoint's host name.
            config = config.merge(Config(s3={"addressing_style": "path"}))
        return session.client("s3", endpoint_url=s.endpoint_url, config=config)

    def _assume_role(self, session: boto3.session.Session, name: str) -> boto3.session.Session:
        s = self.settings
        sts = session.client("sts", endpoint_url=s.endpoint_url, config=_BOTO_CONFIG)
        try:
            creds = sts.assume_role(RoleArn=s.role_arn, RoleSessionName=_session_name(name))[
                "Credentials"
            ]
        except (ClientError, BotoCoreError) as exc:
            raise aws_error(exc, target=f"role {s.role_arn}", bucket=s.bucket) from None
        return boto3.session.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=s.region,
        )

    def _get(self, key: str, missing: str) -> BinaryIO:
        """The object, streamed into a local file of at most max_object_bytes."""
        uri = s3_uri(self.settings.bucket, key)
        try:
            response = self._s3.get_object(Bucket=self.settings.bucket, Key=key)
            body = response["Body"]
            try:
                size = response.get("ContentLength")
                return spool(body.iter_chunks(CHUNK_BYTES), self.limits, uri, size=size)
            finally:
                body.close()
        except (ClientError, BotoCoreError) as exc:
            raise aws_error(
                exc,
                target=s3_uri(self.settings.bucket, key),
                bucket=self.settings.bucket,
                missing=missing,
            ) from None

    def list_files(self, months: list[date]) -> list[str]:
        s = self.settings
        keys: list[str] = []
        manifests: list[str] = []
        for month in months:
            key = manifest_key(s.prefix, s.export_name, month)
            uri = s3_uri(s.bucket, key)
            manifests.append(uri)
            with self._get(
                key,
                missing=f"no manifest for billing period {billing_period(month)} at {uri} "
                "(has the export delivered this period? are bucket, prefix and export_name right?)",
            ) as handle:
                listed = parse_manifest(handle.read(), bucket=s.bucket, manifest_uri=uri)
            self.log.info(f"manifest {uri}: {len(listed)} data file(s)")
            keys.extend(k for k in listed if k not in keys)
        if not keys:
            raise TerminalError(f"the manifest(s) list no data files: {', '.join(manifests)}")
        return keys

    def fetch(self, name: str) -> BinaryIO:
        uri = s3_uri(self.settings.bucket, name)
        return self._get(
            name, missing=f"data file {uri} is listed in the manifest but does not exist"
        )


class AwsDataExportProcessor(FocusExportProcessor):
    ps_type: ClassVar[str] = "cloud.aws_data_export"
    provider: ClassVar[str] = "aws"
    default_table: ClassVar[str] = "aws_focus_export_raw"
    endpoint_field: ClassVar[str] = "endpoint_url"
    # FOCUS 1.2 names already match 1.3; ProviderName fills ServiceProviderName and
    # HostProviderName in normalize_focus_export, and the x_ columns land in x_extensions.
    renames: ClassVar[dict[str, str]] = {}

    def source(self, ctx: StepContext) -> S3ExportSource:
        settings = AwsExportSettings.from_step(ctx.credential(), ctx.config)
        return S3ExportSource(settings, ctx.log, session_name=f"pipeline-ops-{ctx.org_slug}")

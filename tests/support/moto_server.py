"""moto in server mode, with real IAM enforcement, for the AWS integration tests.

`python -m moto.server` runs as a subprocess on a free loopback port: S3, IAM and STS all
answer on that one endpoint, and boto3 talks to it over HTTP exactly as it would to AWS.

moto only checks signatures and IAM policies once its "no-auth" request budget
(INITIAL_NO_AUTH_ACTION_COUNT, default infinite) is spent. The fixture starts the server with
the default budget, creates IAM users (an admin for seeding, a reader for the pipeline, an
outsider allowed S3 only on another bucket), then POSTs 0 to /moto-api/reset-auth. From then
on every request must be signed with one of those users' keys: a wrong secret fails with
SignatureDoesNotMatch, an unknown key with InvalidAccessKeyId and the outsider with
AccessDenied, all decided by moto, not by the test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.support.servers import Server, free_port, wait_for

REGION = "us-east-1"
# Keys used only while moto is still in no-auth mode (moto accepts anything then).
_BOOTSTRAP = {"access_key_id": "bootstrap", "secret_access_key": "bootstrap"}


def start_moto(timeout: float = 60) -> Server:
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="po-moto-"))
    log_path = workdir / "moto.log"
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "inf"}
    cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with open(log_path, "wb") as log:
        # A new session so Server.stop() can signal the whole process group.
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    server = Server("moto", proc, url, workdir, log_path)

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"moto exited:\n{server.log()}")
        with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=1) as resp:
            return bool(resp.status == 200)

    try:
        wait_for(up, timeout, "moto server")
    except Exception:
        server.stop()
        raise
    return server


@dataclass
class MotoAws:
    """A running moto server plus the IAM users the tests sign with."""

    server: Server
    users: dict[str, dict[str, str]] = field(default_factory=dict)
    enforcing: bool = False

    @property
    def url(self) -> str:
        return self.server.url

    def client(self, service: str, creds: Mapping[str, str] | None = None) -> Any:
        creds = creds or (self.users["admin"] if self.enforcing else _BOOTSTRAP)
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=creds["access_key_id"],
            aws_secret_access_key=creds["secret_access_key"],
            aws_session_token=creds.get("session_token"),
        )

    def add_user(self, name: str, statements: list[dict[str, Any]]) -> dict[str, str]:
        """Create an IAM user with an inline policy; returns its credential fields."""
        iam = self.client("iam")
        iam.create_user(UserName=name)
        policy = {"Version": "2012-10-17", "Statement": statements}
        iam.put_user_policy(
            UserName=name, PolicyName=f"{name}-policy", PolicyDocument=json.dumps(policy)
        )
        key = iam.create_access_key(UserName=name)["AccessKey"]
        creds = {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}
        self.users[name] = creds
        return creds

    def add_role(self, name: str, trusted_user: str, statements: list[dict[str, Any]]) -> str:
        """Create a role `trusted_user` may assume, with an inline policy; returns its ARN."""
        iam = self.client("iam")
        user_arn = iam.get_user(UserName=trusted_user)["User"]["Arn"]
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": user_arn}, "Action": "sts:AssumeRole"}
            ],
        }
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"][
            "Arn"
        ]
        policy = {"Version": "2012-10-17", "Statement": statements}
        iam.put_role_policy(
            RoleName=name, PolicyName=f"{name}-policy", PolicyDocument=json.dumps(policy)
        )
        return str(arn)

    def enforce_iam(self) -> None:
        """Switch moto to checking every request's signature and IAM policy."""
        request = urllib.request.Request(
            f"{self.url}/moto-api/reset-auth",
            data=b"0",
            method="POST",
            # moto reads the raw body; a form content type would make Flask consume it.
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            resp.read()
        self.enforcing = True


def s3_statements(*buckets: str, actions: tuple[str, ...] = ("s3:*",)) -> list[dict[str, Any]]:
    resources = [arn for b in buckets for arn in (f"arn:aws:s3:::{b}", f"arn:aws:s3:::{b}/*")]
    return [{"Effect": "Allow", "Action": list(actions), "Resource": resources}]


@pytest.fixture(scope="module")
def moto_aws() -> Iterator[MotoAws]:
    """moto with IAM users admin (everything), reader (s3:* anywhere), outsider (S3 only on
    bucket 'someone-elses-bucket') and IAM enforced from the first test on."""
    server = start_moto()
    try:
        aws = MotoAws(server)
        aws.add_user("admin", [{"Effect": "Allow", "Action": "*", "Resource": "*"}])
        # The reader may read any bucket, so a missing bucket is NoSuchBucket, not AccessDenied.
        aws.add_user(
            "reader",
            [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*"}],
        )
        aws.add_user("outsider", s3_statements("someone-elses-bucket"))
        aws.enforce_iam()
        yield aws
    finally:
        server.stop()

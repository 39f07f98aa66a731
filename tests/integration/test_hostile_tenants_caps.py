"""Hostile tenants against the resource caps, on a live stack (redis-server, one Celery
worker process, moto's S3, loopback providers): a gzip bomb and an oversized export file fail
with a cap error while the worker process's peak memory barely moves, and a provider that
trickles its answer ends at the total HTTP deadline, not at the step's timeout.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from pipeline.runs.service import RunRequest
from tests.integration.conftest import Stack, make_stack
from tests.integration.test_cloud_aws import (  # noqa: F401 - export is a fixture
    BUCKET,
    EXPORT,
    ROOT,
    Export,
    export,
    manifest,
)
from tests.integration.test_engine_e2e import table_rows
from tests.support.hostile import TrickleServer
from tests.support.moto_server import MotoAws, moto_aws  # noqa: F401 - fixture
from tests.support.provider_api import ProviderAPIServer, serve_openai
from tests.support.servers import Server, port_of

MiB = 1024 * 1024
OBJECT_CAP = 32 * MiB
DEADLINE_SECONDS = 3
ORG, OTHER = "caps_org", "caps_other"


@dataclass
class Rig:
    stack: Stack
    export: Export
    api: ProviderAPIServer
    trickle: TrickleServer

    def run(self, org: str, path: str, start: str, end: str, credential: str) -> dict[str, Any]:
        parts = path.split("/")
        request = RunRequest(
            org, *parts, date.fromisoformat(start), date.fromisoformat(end), credential
        )
        run_id = str(self.stack.services.runs.start(request).run_id)
        return self.stack.wait(run_id, timeout=180)

    def peak_rss_mib(self) -> float:
        """The largest peak resident size (VmHWM) among the worker's pool processes."""
        assert self.stack.worker.proc is not None
        pid = self.stack.worker.proc.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        peaks = [_vm_hwm_kib(int(child)) for child in children]
        assert peaks, "the worker has no pool process"
        return max(peaks) / 1024


def _vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for {pid}")


@pytest.fixture(scope="module")
def rig(
    tmp_path_factory: pytest.TempPathFactory,
    redis_server: Server,
    test_configs_dir: Any,
    export: Export,  # noqa: F811 - the imported fixture
) -> Iterator[Rig]:
    api, trickle = ProviderAPIServer(), TrickleServer(interval=1.0, seconds=60)
    allow = " ".join(f"127.0.0.1:{port_of(u)}" for u in (export.aws.url, api.url, trickle.url))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PIPELINE_OPS_EGRESS_ALLOW", allow)
        patch.setenv("PIPELINE_OPS_MAX_OBJECT_BYTES", str(OBJECT_CAP))
        patch.setenv("PIPELINE_OPS_HTTP_DEADLINE_SECONDS", str(DEADLINE_SECONDS))
        tmp = tmp_path_factory.mktemp("stack-caps")
        # One pool process, so its peak memory is the step's.
        stack, stop = make_stack("sqlite", tmp, redis_server, None, test_configs_dir, concurrency=1)
        for org in (ORG, OTHER):
            stack.services.orgs.create(org)
            stack.services.credentials.add(
                org, "aws", "export", export.credential(), credential_id="aws_export"
            )
        try:
            yield Rig(stack, export, api, trickle)
        finally:
            stop()
            api.close()
            trickle.close()


def put_period(target: Export, period: str, name: str, body: bytes) -> None:
    key = f"{ROOT}/data/BILLING_PERIOD={period}/{name}"
    target.put(key, body)
    manifest_key = f"{ROOT}/metadata/BILLING_PERIOD={period}/{EXPORT}-Manifest.json"
    target.put(manifest_key, manifest(f"s3://{BUCKET}/{key}"))


def gzip_bomb(inflated: int) -> bytes:
    """A gzipped CSV: a header, then `inflated` bytes of zeros, compressed as a stream."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b"0" * MiB
    parts = [packer.compress(b"BilledCost,ChargePeriodStart\n")]
    parts += [packer.compress(chunk) for _ in range(inflated // len(chunk))]
    return b"".join(parts) + packer.flush()


def test_a_gzip_bomb_and_an_oversized_file_fail_on_a_cap_without_the_memory(rig: Rig) -> None:
    # Warm-up: a real export through the same code, so the baseline has every import loaded.
    ok = rig.run(ORG, "aws/cost/billing", "2026-10-01", "2026-10-31", "aws_export")
    assert ok.status == "completed", ok.error_message
    baseline = rig.peak_rss_mib()

    bomb = gzip_bomb(640 * MiB)
    assert len(bomb) < 1024 * 1024  # ~0.6 MiB on the wire, 640 MiB inflated
    put_period(rig.export, "2026-09", f"{EXPORT}-00001.csv.gz", bomb)
    run = rig.run(ORG, "aws/cost/billing", "2026-09-01", "2026-09-30", "aws_export")
    assert run.status == "failed"
    assert "decompression ratio" in run.error_message
    assert "PIPELINE_OPS_MAX_INFLATE_RATIO" in run.error_message

    put_period(rig.export, "2026-08", f"{EXPORT}-00001.snappy.parquet", b"\0" * (OBJECT_CAP + 1))
    run = rig.run(ORG, "aws/cost/billing", "2026-08-01", "2026-08-31", "aws_export")
    assert run.status == "failed"
    assert "PIPELINE_OPS_MAX_OBJECT_BYTES" in run.error_message

    grown = rig.peak_rss_mib() - baseline
    print(f"worker peak RSS: baseline {baseline:.0f} MiB, grown by {grown:.1f} MiB")
    assert grown < 150, f"the worker's peak RSS grew by {grown:.0f} MiB"
    # Nothing of either month was written: the raw table holds the October run only.
    raw = table_rows(rig.stack, f"{ORG}_dev.aws_focus_export_raw", ORG).to_pylist()
    assert raw and {r["charge_date"].month for r in raw} == {10}
    # The pool still serves another org.
    other = rig.run(OTHER, "aws/cost/billing", "2026-10-01", "2026-10-31", "aws_export")
    assert other.status == "completed", other.error_message


def test_a_trickling_provider_ends_at_the_total_deadline(rig: Rig) -> None:
    rig.stack.services.credentials.add(
        ORG, "openai", "slow proxy",
        {"admin_key": "sk-admin-slow-0123456789", "base_url": rig.trickle.url},
        credential_id="slow",
    )  # fmt: skip
    run = rig.run(ORG, "genai/payg/openai", "2026-01-01", "2026-01-01", "slow")
    assert run.status == "failed"
    assert rig.trickle.started  # it was reached, and answered 200 a byte at a time
    assert "the HTTP call's total time exceeds the cap of 3.0 s" in run.error_message
    assert "PIPELINE_OPS_HTTP_DEADLINE_SECONDS" in run.error_message
    # (The extract step's timeout_seconds is 600: the run ended on the deadline's error,
    # within this test's 180 s wait.)
    # And the worker serves the next run.
    rig.stack.services.credentials.add(
        OTHER, "openai", "proxy",
        {"admin_key": "sk-admin-ok-0123456789", "base_url": rig.api.url},
        credential_id="ok",
    )  # fmt: skip
    serve_openai(rig.api, [date(2026, 1, 1), date(2026, 1, 2)])
    ok = rig.run(OTHER, "genai/payg/openai", "2026-01-01", "2026-01-02", "ok")
    assert ok.status == "completed", ok.error_message

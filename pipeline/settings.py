"""Every setting, read from the environment in one place.

With no variable set, everything falls back to the embedded defaults under
`./var` (SQLite metadata DB, DuckDB warehouse, a local Redis).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc


def _positive(env: dict[str, str], name: str, default: int) -> int:
    value = _int(env, name, default)
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return value


@dataclass(frozen=True)
class Settings:
    var_dir: Path
    database_url: str
    redis_url: str
    warehouse_url: str
    configs_dir: Path
    env: str = "dev"
    admin_key: str | None = None
    master_key: str | None = None
    supabase_url: str | None = None
    supabase_service_role_key: str | None = None
    public_base_url: str = "http://127.0.0.1:8001"
    # SMTP relay for e-mail notifications: smtp[s]://[user:pass@]host[:port]?from=ADDR
    smtp_url: str | None = None
    # Seconds a running step may go without a heartbeat before the reaper fails its run.
    heartbeat_timeout: int = 120
    heartbeat_interval: int = 10
    # Seconds a run may wait in the queue (between steps, or before its first) before reaping.
    queue_timeout: int = 3600
    # Added to a step's timeout_seconds to form Celery's hard time_limit.
    time_limit_grace: int = 30
    max_body_bytes: int = 1024 * 1024
    # A step attempt whose worker process died this many times (OOM-killed, SIGKILL) fails
    # instead of being redelivered again.
    max_lost_workers: int = 3
    # Longest error message, log line or transition reason stored (bytes of UTF-8); longer
    # text is cut with a note of how much was dropped.
    max_stored_text: int = 4096
    # When set, GET /metrics needs `Authorization: Bearer <token>`.
    metrics_token: str | None = None
    # Seconds one process reuses the /metrics page it built (0: rebuilt on every scrape).
    metrics_cache_seconds: int = 5
    # Requests per minute one org may make to the org API (0: no limit).
    org_rate_limit: int = 600
    # Quota (quota/): off makes every run admitted (AllowAllGate).
    quota_enabled: bool = True
    # Seconds a plan read from its source (Supabase or the DB) is reused.
    plan_cache_seconds: int = 30
    # Seconds a quota lease lives without renewal before it frees its slot by itself. It
    # must outlast the longest a live run goes without a heartbeat: queued, waiting for
    # a retry (celeryconfig.MAX_RETRY_COUNTDOWN, 3600) or between steps. Dead workers are
    # caught sooner by the heartbeat deadline (heartbeat_timeout) through the reaper.
    quota_lease_seconds: int = 3600 + 3600 + 120
    # The plan of an org with no plan row.
    default_daily_limit: int = 1000
    default_monthly_limit: int = 25000
    default_concurrent_limit: int = 20
    # A worker process whose resident memory passed this (MiB) after a task is replaced by
    # a fresh one (Celery's worker_max_memory_per_child), so memory a task left behind
    # (fragmentation, caches) can't pile up until the OOM killer steps in.
    worker_max_memory_mb: int = 4096
    # Signs the web console's session cookies (and its CSRF tokens); None: a random key
    # per process, so sessions don't survive a restart and gunicorn workers disagree.
    session_key: str | None = None
    # Seconds a console sign-in lasts.
    session_seconds: int = 8 * 3600
    # Failed console sign-ins one client address may make per minute.
    signin_rate_limit: int = 10
    # Ended runs older than this many days are deleted daily by beat (None: kept forever).
    retention_days: int | None = None
    eager: bool = False
    log_level: str = "INFO"
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        var_dir = Path(env.get("PIPELINE_OPS_VAR_DIR") or ROOT / "var").resolve()
        pipeline_env = env.get("PIPELINE_OPS_ENV", "dev")
        if pipeline_env not in ("dev", "stage", "prod"):
            raise ValueError(f"PIPELINE_OPS_ENV must be dev, stage or prod, got {pipeline_env!r}")
        heartbeat_timeout = _int(env, "PIPELINE_OPS_HEARTBEAT_TIMEOUT", 120)
        heartbeat_interval = _int(env, "PIPELINE_OPS_HEARTBEAT_INTERVAL", 10)
        queue_timeout = _int(env, "PIPELINE_OPS_QUEUE_TIMEOUT", 3600)
        return cls(
            var_dir=var_dir,
            database_url=env.get("DATABASE_URL") or f"sqlite:///{var_dir / 'pipeline_ops.db'}",
            redis_url=env.get("REDIS_URL") or "redis://127.0.0.1:6379/0",
            warehouse_url=env.get("WAREHOUSE_URL") or f"duckdb:///{var_dir / 'warehouse.duckdb'}",
            configs_dir=Path(env.get("PIPELINE_OPS_CONFIGS_DIR") or ROOT / "configs").resolve(),
            env=pipeline_env,
            admin_key=env.get("PIPELINE_OPS_ADMIN_KEY") or None,
            master_key=env.get("PIPELINE_OPS_MASTER_KEY") or None,
            supabase_url=env.get("SUPABASE_URL") or None,
            supabase_service_role_key=env.get("SUPABASE_SERVICE_ROLE_KEY") or None,
            public_base_url=(env.get("PIPELINE_OPS_PUBLIC_URL") or "http://127.0.0.1:8001").rstrip(
                "/"
            ),
            smtp_url=env.get("PIPELINE_OPS_SMTP_URL") or None,
            heartbeat_timeout=heartbeat_timeout,
            heartbeat_interval=heartbeat_interval,
            queue_timeout=queue_timeout,
            time_limit_grace=_int(env, "PIPELINE_OPS_TIME_LIMIT_GRACE", 30),
            max_body_bytes=_int(env, "PIPELINE_OPS_MAX_BODY_BYTES", 1024 * 1024),
            max_lost_workers=_positive(env, "PIPELINE_OPS_MAX_LOST_WORKERS", 3),
            max_stored_text=_positive(env, "PIPELINE_OPS_MAX_STORED_TEXT", 4096),
            metrics_token=env.get("PIPELINE_OPS_METRICS_TOKEN") or None,
            metrics_cache_seconds=_int(env, "PIPELINE_OPS_METRICS_CACHE_SECONDS", 5),
            org_rate_limit=_int(env, "PIPELINE_OPS_ORG_RATE_LIMIT", 600),
            quota_enabled=env.get("PIPELINE_OPS_QUOTA", "on").lower() not in ("off", "0", "false"),
            plan_cache_seconds=_int(env, "PIPELINE_OPS_PLAN_CACHE_SECONDS", 30),
            quota_lease_seconds=_int(
                env, "PIPELINE_OPS_QUOTA_LEASE_SECONDS", queue_timeout + 3600 + heartbeat_timeout
            ),
            default_daily_limit=_int(env, "PIPELINE_OPS_DEFAULT_DAILY_LIMIT", 1000),
            default_monthly_limit=_int(env, "PIPELINE_OPS_DEFAULT_MONTHLY_LIMIT", 25000),
            default_concurrent_limit=_int(env, "PIPELINE_OPS_DEFAULT_CONCURRENT_LIMIT", 20),
            worker_max_memory_mb=_int(env, "PIPELINE_OPS_WORKER_MAX_MEMORY_MB", 4096),
            session_key=env.get("PIPELINE_OPS_SESSION_KEY") or None,
            session_seconds=_positive(env, "PIPELINE_OPS_SESSION_SECONDS", 8 * 3600),
            signin_rate_limit=_int(env, "PIPELINE_OPS_SIGNIN_RATE_LIMIT", 10),
            retention_days=_positive(env, "PIPELINE_OPS_RETENTION_DAYS", 1)
            if env.get("PIPELINE_OPS_RETENTION_DAYS")
            else None,
            eager=env.get("PIPELINE_OPS_EAGER", "").lower() in ("1", "true", "yes"),
            log_level=env.get("PIPELINE_OPS_LOG_LEVEL", "INFO").upper(),
        )

    def org_dataset(self, org_slug: str) -> str:
        return f"{org_slug}_{self.env}"

    @property
    def project_id(self) -> str:
        """The BigQuery project of WAREHOUSE_URL, or `local` for the embedded DuckDB."""
        if self.warehouse_url.startswith("bigquery://"):
            return self.warehouse_url[len("bigquery://") :].split("?", 1)[0].split("/", 1)[0]
        return "local"

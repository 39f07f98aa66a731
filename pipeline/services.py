"""The service graph, built from Settings by one factory (no module-level clients)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

from credentials.base import CredentialProvider
from credentials.keys import key_provider
from credentials.vault import VaultCredentialProvider
from pipeline.catalog import PipelineCatalog
from pipeline.db import make_engine
from pipeline.db_time import DATABASE_TIME, DbTime
from pipeline.execution import StepExecutor
from pipeline.notifications import NotificationQueue, NotificationService, NullNotificationQueue
from pipeline.orgs import OrgService
from pipeline.redact import register_decrypted, register_process_secrets
from pipeline.runs import Dispatcher, RunService
from pipeline.settings import Settings
from pipeline.store import Clock, RunStore, utcnow
from quota.base import QuotaGate
from quota.factory import build_gate
from warehouse import from_url


@dataclass
class Services:
    settings: Settings
    store: RunStore
    catalog: PipelineCatalog
    gate: QuotaGate
    runs: RunService
    orgs: OrgService
    executor: StepExecutor
    credentials: CredentialProvider
    notifications: NotificationService | None = field(default=None)


def build_services(
    settings: Settings,
    dispatcher: Dispatcher,
    *,
    gate: QuotaGate | None = None,
    credentials: CredentialProvider | None = None,
    clock: Clock = utcnow,
    db_time: DbTime | None = None,
    notifications: NotificationQueue | None = None,
) -> Services:
    # Secrets from the environment are masked in everything this process logs or stores.
    register_process_secrets(
        [settings.admin_key, settings.supabase_service_role_key, settings.metrics_token]
        + [k.strip() for k in (settings.master_key or "").split(",")]
    )
    store = RunStore(
        make_engine(settings.database_url),
        clock=clock,
        db_time=db_time or DATABASE_TIME,
        text_limit=settings.max_stored_text,
    )
    catalog = PipelineCatalog(settings.configs_dir)
    # Plan limits + SQL ledger + Redis mirror; PIPELINE_OPS_QUOTA=off admits everything.
    gate = gate or build_gate(settings, store.engine, clock)
    # The vault; `default` with nothing stored still means "no secret" (see credentials/vault.py).
    keys = key_provider(settings.master_key, settings.var_dir)
    credentials = credentials or VaultCredentialProvider(
        store.engine, keys, clock=clock, on_decrypt=register_decrypted
    )
    # Without a queue (tests, read-only tools) runs end without notifications.
    notifier = NotificationService(
        settings, store, notifications or NullNotificationQueue(), keys=keys
    )
    runs = RunService(
        settings,
        store,
        catalog,
        gate,
        dispatcher,
        on_end=notifier.run_ended,
        credentials=credentials,
    )
    executor = StepExecutor(
        settings, store, runs, partial(from_url, settings.warehouse_url), credentials
    )
    return Services(
        settings=settings,
        store=store,
        catalog=catalog,
        gate=gate,
        runs=runs,
        orgs=OrgService(store),
        executor=executor,
        credentials=credentials,
        notifications=notifier,
    )

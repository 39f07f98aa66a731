"""The composition root: the one place the service graph is built, from Settings.

Every entry point gets its services here and builds none itself:

- `web_services()`: the API (`app.create_app`, in each gunicorn worker);
- `worker_services()`: the Celery tasks of this process (tasks/runtime.py), built on
  first use, after the fork;
- `cli_services()`: the `pipeline-ops` commands and `make demo`, on a metadata DB at this
  code's revision (`migrate=True`: `db upgrade` and `bootstrap` bring it there); with
  --local (PIPELINE_OPS_EAGER) this process's tasks use the same services;
- `build_services()`: the assembly the three share. Tests call it with doubles (a
  recording dispatcher, a hand-moved clock, a refusing quota gate).

tests/unit/test_bootstrap.py fails when a module of app/, tasks/, pipeline/ or scripts/
other than this one constructs a store, an engine, a quota gate, the vault or a service.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from credentials.base import CredentialVault
from credentials.keys import KeyProvider, key_provider
from credentials.vault import VaultCredentialProvider
from pipeline.definition.catalog import PipelineCatalog
from pipeline.notifications import NotificationQueue, NotificationService, NullNotificationQueue
from pipeline.observability.redact import register_decrypted, register_process_secrets
from pipeline.orgs.service import OrgService
from pipeline.preflight import preflight
from pipeline.queue import CeleryDispatcher, CeleryNotificationQueue
from pipeline.runs.execution import StepExecutor
from pipeline.runs.service import Dispatcher, RunService
from pipeline.schedules.dispatch import ScheduleDispatcher
from pipeline.schedules.service import ScheduleService
from pipeline.settings import Settings
from pipeline.storage.db import make_engine, upgrade
from pipeline.storage.db_time import DATABASE_TIME, DbTime
from pipeline.storage.run_store import SqlRunStore
from pipeline.storage.statements import Clock, utcnow
from pipeline.subscriptions import SubscriptionService
from quota.base import PlanAdmin, QuotaGate
from quota.factory import build_ledger_gate, build_quota
from warehouse import from_url
from warehouse.base import Warehouse


@dataclass
class Services:
    settings: Settings
    store: SqlRunStore
    catalog: PipelineCatalog
    # What runs pass (AllowAllGate with PIPELINE_OPS_QUOTA=off) ...
    gate: QuotaGate
    # ... and where operators set limits and read usage (always the enforcing ledger).
    plans: PlanAdmin
    runs: RunService
    orgs: OrgService
    executor: StepExecutor
    # The vault: runs read credentials through it, operators administer it.
    credentials: CredentialVault
    # The master keys that seal the vault's data keys and the notification secrets.
    keys: KeyProvider
    notifications: NotificationService
    schedules: ScheduleService
    schedule_dispatcher: ScheduleDispatcher
    subscriptions: SubscriptionService
    # A client of WAREHOUSE_URL; each call makes a new one (a step's keeps its own state).
    warehouse: Callable[..., Warehouse]


def build_services(
    settings: Settings,
    dispatcher: Dispatcher,
    *,
    gate: QuotaGate | None = None,
    clock: Clock = utcnow,
    db_time: DbTime | None = None,
    notifications: NotificationQueue | None = None,
) -> Services:
    # Secrets from the environment are masked in everything this process logs or stores.
    register_process_secrets(
        [
            settings.admin_key,
            settings.supabase_service_role_key,
            settings.metrics_token,
            settings.session_key,
        ]
        + [k.strip() for k in (settings.master_key or "").split(",")]
    )
    store = SqlRunStore(
        make_engine(settings.database_url),
        clock=clock,
        db_time=db_time or DATABASE_TIME,
        text_limit=settings.max_stored_text,
    )
    catalog = PipelineCatalog(settings.configs_dir)
    # Plan limits + SQL ledger + Redis mirror; PIPELINE_OPS_QUOTA=off admits everything.
    if gate is None:
        gate, plans = build_quota(settings, store.engine, clock)
    else:
        plans = build_ledger_gate(settings, store.engine, clock)
    # The vault; `default` with nothing stored still means "no secret" (see credentials/vault.py).
    keys = key_provider(settings.master_key, settings.var_dir)
    vault = VaultCredentialProvider(store.engine, keys, clock=clock, on_decrypt=register_decrypted)
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
        credentials=vault,
    )
    warehouse = partial(from_url, settings.warehouse_url)
    return Services(
        settings=settings,
        store=store,
        catalog=catalog,
        gate=gate,
        plans=plans,
        runs=runs,
        orgs=OrgService(store),
        executor=StepExecutor(settings, store, runs, warehouse, vault),
        credentials=vault,
        keys=keys,
        notifications=notifier,
        schedules=ScheduleService(store, catalog),
        schedule_dispatcher=ScheduleDispatcher.for_runs(runs),
        subscriptions=SubscriptionService(store.engine),
        warehouse=warehouse,
    )


def _on_celery(settings: Settings) -> Services:
    """Runs are enqueued on Celery (in this process with eager settings), and a run's end
    queues its notifications there."""
    return build_services(
        settings, CeleryDispatcher(eager=settings.eager), notifications=CeleryNotificationQueue()
    )


def web_services(settings: Settings | None = None) -> Services:
    """The API's services, once production mode's checks pass and the metadata DB is at
    this code's revision (else StartupRefused: the web process never migrates)."""
    settings = settings or Settings.from_env()
    preflight(settings)
    return _on_celery(settings)


def diagnostic_services(settings: Settings) -> Services:
    """The services as `pipeline-ops doctor` inspects them: built without the checks
    web_services() and cli_services() make, since reporting those is its job."""
    return _on_celery(settings)


def process_preflight() -> None:
    """The checks a worker or beat makes as it starts (StartupRefused)."""
    preflight(Settings.from_env())


_lock = threading.Lock()
_worker: Services | None = None


def worker_services() -> Services:
    """The services of the Celery tasks run by this process, built once on first use.

    Never inherited across a fork: the worker resets them in each prefork child
    (tasks/celery_app.py), since database pools and clients must not cross it.
    """
    global _worker
    with _lock:
        if _worker is None:
            _worker = _on_celery(Settings.from_env())
        return _worker


def use_worker_services(services: Services | None) -> None:
    """Make `services` the ones this process's tasks use (the CLI's with --local, a test's);
    None builds them afresh on next use."""
    global _worker
    with _lock:
        _worker = services


def cli_services(settings: Settings | None = None, *, migrate: bool = False) -> Services:
    """The services of `pipeline-ops` and `make demo`. Tasks this process runs itself
    (--local) use them too.

    The metadata DB must be at this code's revision (StartupRefused otherwise): only
    `migrate=True` (`db upgrade`, `bootstrap`) changes the schema, so a read command never
    migrates a database behind another host's back."""
    settings = settings or Settings.from_env()
    if migrate:
        preflight(settings, schema=False)
        upgrade(settings.database_url)
    else:
        preflight(settings)
    services = _on_celery(settings)
    use_worker_services(services)
    return services

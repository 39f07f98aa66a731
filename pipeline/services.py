"""The service graph, built from Settings by one factory (no module-level clients)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from credentials.base import CredentialProvider, NoCredentials
from pipeline.catalog import PipelineCatalog
from pipeline.db import make_engine
from pipeline.execution import StepExecutor
from pipeline.orgs import OrgService
from pipeline.runs import Dispatcher, RunService
from pipeline.settings import Settings
from pipeline.store import Clock, RunStore, utcnow
from quota.base import AllowAllGate, QuotaGate
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


def build_services(
    settings: Settings,
    dispatcher: Dispatcher,
    *,
    gate: QuotaGate | None = None,
    credentials: CredentialProvider | None = None,
    clock: Clock = utcnow,
) -> Services:
    store = RunStore(make_engine(settings.database_url), clock=clock)
    catalog = PipelineCatalog(settings.configs_dir)
    gate = gate or AllowAllGate()
    credentials = credentials or NoCredentials()
    runs = RunService(settings, store, catalog, gate, dispatcher)
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
    )

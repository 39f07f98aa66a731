"""BigQuery: the warehouse backend (`BigQueryWarehouse`, chosen by a `bigquery://` URL), and
what readers of an org's own BigQuery data use (the GCP billing export and Gemini
processors): a client factory, the service-account key check, error classification.

Code outside warehouse/ imports this module only; its submodules are the backend's own
(client, errors, jobs, sql, types, write, backend), checked by import-linter.
"""

from __future__ import annotations

from pipeline_ops_core.extras import require

require("bigquery", "BigQuery (the bigquery:// warehouse, GCP billing export, Gemini usage)")

from warehouse.bigquery.backend import BigQueryWarehouse
from warehouse.bigquery.client import BigQueryConfig, make_client, service_account_credentials
from warehouse.bigquery.errors import TERMINAL_REASONS, TRANSIENT_REASONS, classify
from warehouse.bigquery.sql import check_project

__all__ = [
    "TERMINAL_REASONS",
    "TRANSIENT_REASONS",
    "BigQueryConfig",
    "BigQueryWarehouse",
    "check_project",
    "classify",
    "make_client",
    "service_account_credentials",
]

"""genai.payg_usage: provider usage (and provider-reported cost) into the normalized raw tables.

Config:
  provider: a key of configs/system/providers.yml (openai, anthropic, gemini, deepseek, ...)
  source: api (openai, anthropic) | billing_export (gemini) | export (any; CSV/JSONL file)
          default: api for openai/anthropic, billing_export for gemini, export otherwise
  destination_table: default genai_payg_usage_raw
  provider_costs_table: default genai_payg_provider_costs
  request_timeout_seconds: per HTTP request (default 60)
  endpoints: OpenAI usage endpoints (default [completions, embeddings])
  provider_costs: also fetch provider-reported money (default true)
  billing_table / path: gemini billing export table (else the credential's billing_table),
                        or an export file (source export, or gemini)
  format, columns: export file format and column mapping (see processors/genai/export_file.py)

The run's date range is fetched as whole UTC days. Every page of every endpoint is read
before anything is written, so a failure part-way (a 429 on page 3) writes nothing and the
retry starts clean. Both tables are replaced for the slice, even with no rows, so a re-run
also removes rows the provider no longer reports.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pipeline_ops_core.errors import TerminalError
from processors.base import SourceRead, StepContext, StepResult
from processors.genai import anthropic_api, export_file, gemini_billing, openai_api
from processors.genai.rows import (
    PROVIDER_COSTS_TABLE,
    USAGE_TABLE,
    provider_costs_table,
    usage_table,
)
from processors.providers import api_endpoint, provider_info

DEFAULT_SOURCE = {"openai": "api", "anthropic": "api", "gemini": "billing_export"}
Rows = list[dict[str, Any]]


class PaygUsageProcessor:
    ps_type: ClassVar[str] = "genai.payg_usage"

    def run(self, ctx: StepContext) -> StepResult:
        cfg = ctx.config
        provider = str(cfg.get("provider") or "")
        provider_info(provider)  # an unregistered provider is a config error
        source = str(cfg.get("source") or DEFAULT_SOURCE.get(provider, "export"))
        usage, costs, read = self._extract(ctx, provider, source)
        ctx.log.info(
            f"{provider}: extracted {len(usage)} usage rows and {len(costs)} provider cost rows "
            f"for {ctx.start_date}..{ctx.end_date} (source {source})"
        )
        # Only now, with the whole slice in hand, is anything written.
        usage_table_name = str(cfg.get("destination_table") or USAGE_TABLE)
        costs_table_name = str(cfg.get("provider_costs_table") or PROVIDER_COSTS_TABLE)
        written = ctx.write(usage_table_name, usage_table(usage), date_column="usage_date")
        cost_written = ctx.write(
            costs_table_name, provider_costs_table(costs), date_column="usage_date"
        )
        return StepResult(
            rows_written=written.rows_written,
            tables=[written.table, cost_written.table],
            metrics={
                "usage_rows": written.rows_written,
                "provider_cost_rows": cost_written.rows_written,
                "source": source,
            },
            read=read,
        )

    def _extract(
        self, ctx: StepContext, provider: str, source: str
    ) -> tuple[Rows, Rows, SourceRead]:
        """(usage rows, provider cost rows, what was read) for the run's dates."""
        usage, costs, label, total = self._fetch(ctx, provider, source)
        days = [row["usage_date"] for row in usage]
        read = SourceRead(
            label,
            rows_read=len(usage) if total is None else total,
            rows_kept=len(usage),
            first_date=min(days, default=None) if total is None else None,
            last_date=max(days, default=None) if total is None else None,
        )
        return usage, costs, read

    def _fetch(
        self, ctx: StepContext, provider: str, source: str
    ) -> tuple[Rows, Rows, str, int | None]:
        """(usage, costs, what was read, rows in it before the date filter when that was
        a file read whole; None when the source was asked for the run's dates only)."""
        cfg = ctx.config
        start, end = ctx.start_date, ctx.end_date
        timeout = float(cfg.get("request_timeout_seconds", 60))
        with_costs = bool(cfg.get("provider_costs", True))
        if source == "api" and provider == "openai":
            credential = ctx.credential()
            key = openai_api.admin_key(credential)
            endpoints = tuple(cfg.get("endpoints") or openai_api.DEFAULT_ENDPOINTS)
            api = api_endpoint(provider, credential, ctx.log, timeout)
            with api.client:
                usage = openai_api.fetch_usage(
                    api.url, key, start, end, timeout, endpoints, api.client
                )
                costs = (
                    openai_api.fetch_costs(api.url, key, start, end, timeout, api.client)
                    if with_costs
                    else []
                )
            return usage, costs, "the OpenAI usage API", None
        if source == "api" and provider == "anthropic":
            credential = ctx.credential()
            headers = anthropic_api.headers(credential)
            api = api_endpoint(provider, credential, ctx.log, timeout)
            with api.client:
                usage = anthropic_api.fetch_usage(api.url, headers, start, end, timeout, api.client)
                costs = (
                    anthropic_api.fetch_costs(api.url, headers, start, end, timeout, api.client)
                    if with_costs
                    else []
                )
            return usage, costs, "the Anthropic usage API", None
        if source == "billing_export":
            # The export table is per billing account, so the credential may name it.
            credential = (
                {} if cfg.get("path") and not cfg.get("billing_table") else ctx.credential()
            )
            table = cfg.get("billing_table") or (
                None if cfg.get("path") else credential.get("billing_table")
            )
            if table:
                raw = gemini_billing.query_rows(credential, str(table), start, end)
                label, total = f"the billing export {table}", None
            elif cfg.get("path"):
                path = export_file.resolve_path(str(cfg["path"]))
                raw = gemini_billing.file_rows(path)
                label, total = path.name, len(raw)
            else:
                raise TerminalError("source billing_export needs billing_table or path")
            return (*gemini_billing.normalize(raw, start, end), label, total)
        if source == "export":
            if not cfg.get("path"):
                raise TerminalError("source export needs path (a CSV or JSONL usage file)")
            path = export_file.resolve_path(str(cfg["path"]))
            records = export_file.read_records(path, cfg.get("format"))
            mapping = cfg.get("columns") or {}
            if not isinstance(mapping, dict):
                raise TerminalError("columns must map raw-table columns to file columns")
            usage, costs = export_file.normalize(
                records, provider, mapping, start, end, f"export:{path.name}"
            )
            return usage, costs, path.name, len(records)
        raise TerminalError(f"source {source!r} is not available for provider {provider!r}")

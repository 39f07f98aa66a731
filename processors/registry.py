"""ps_type -> processor class. A plain dict with a typed error for unknown names.

Entries are import paths, so validating a pipeline never imports a processor's
dependencies. A new processor is one module plus one line here.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from pipeline_ops_core.errors import UnknownProcessorError
from pipeline_ops_core.extras import require
from processors.base import Processor

REGISTRY: dict[str, str] = {
    "generic.noop": "processors.generic.noop:NoopProcessor",
    "generic.file_extract": "processors.generic.file_extract:FileExtractProcessor",
    "generic.http_extract": "processors.generic.http_extract:HttpExtractProcessor",
    "generic.procedure_executor": "processors.generic.procedure_executor:ProcedureExecutor",
    "genai.payg_usage": "processors.genai.payg_usage:PaygUsageProcessor",
    "genai.payg_cost": "processors.genai.payg_cost:PaygCostProcessor",
    "subscription.amortize": "processors.subscription.amortize:SubscriptionAmortizeProcessor",
    "cloud.gcp_billing_export": "processors.cloud.gcp.billing_export:ExternalBqExtractor",
    "cloud.gcp_sku_prices": "processors.cloud.gcp.catalog:GcpApiExtractor",
    "cloud.aws_data_export": "processors.cloud.aws.data_export:AwsDataExportProcessor",
    "cloud.azure_cost_export": "processors.cloud.azure.cost_export:AzureCostExportProcessor",
    "cloud.oci_cost_report": "processors.cloud.oci.cost_report:OciCostReportProcessor",
}


# ps_type -> the extra of the package its processor's SDK comes from (see
# pipeline_ops_core.extras); absent: needs nothing beyond the base install.
NEEDS_EXTRA: dict[str, str] = {
    "cloud.gcp_billing_export": "bigquery",
    "cloud.gcp_sku_prices": "bigquery",
    "cloud.aws_data_export": "aws",
    "cloud.azure_cost_export": "azure",
    "cloud.oci_cost_report": "oci",
}


def check_extras(ps_types: Iterable[str]) -> None:
    """MissingExtraError naming the extra to install if a processor of `ps_types` can't
    import its SDK here. Checked without importing it, so it is cheap at admission."""
    for ps_type in ps_types:
        extra = NEEDS_EXTRA.get(ps_type)
        if extra is not None:
            require(extra, ps_type)


def known_types() -> list[str]:
    return sorted(REGISTRY)


def is_known(ps_type: str) -> bool:
    return ps_type in REGISTRY


def get_processor(ps_type: str) -> Processor:
    """Instantiate the processor registered under `ps_type`."""
    try:
        target = REGISTRY[ps_type]
    except KeyError:
        raise UnknownProcessorError(
            f"unknown ps_type {ps_type!r}; known: {', '.join(known_types())}"
        ) from None
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls()

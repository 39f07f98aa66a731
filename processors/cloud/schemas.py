"""Step config schemas of the cloud billing processors (see processors/config_schema.py).

Where the export is (bucket, prefix, container, ...) may be set on the step or in the
credential; the step wins.
"""

from __future__ import annotations

from marshmallow import fields, validate

from processors.config_schema import StepConfig, Text, Whole, one_of, table_name

_DAYS = validate.Range(min=0, max=60)


class GcpBillingExportConfig(StepConfig):
    billing_table = Text()
    destination_table = table_name()
    partition_filter = one_of("partitiontime", "usage_start_time")
    margin_days = Whole(validate=_DAYS)
    lookback_days = Whole(validate=_DAYS)


class GcpSkuPricesConfig(StepConfig):
    source_table = table_name()
    destination_table = table_name()
    service_ids = fields.List(fields.String())
    currency = Text(validate=validate.Regexp(r"^[A-Z]{3}$", error="a currency code like USD"))
    timeout_seconds = Whole(validate=validate.Range(min=1, max=600))


class AwsDataExportConfig(StepConfig):
    destination_table = table_name()
    bucket = Text()
    prefix = Text()
    export_name = Text()


class AzureCostExportConfig(StepConfig):
    destination_table = table_name()
    container = Text()
    root_folder = Text()
    export_name = Text()


class OciCostReportConfig(StepConfig):
    destination_table = table_name()
    namespace = Text()
    bucket = Text()
    lookahead_days = Whole(validate=validate.Range(min=0, max=31))

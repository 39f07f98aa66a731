"""AWS Data Exports (FOCUS 1.2 with AWS columns) from S3: cloud.aws_data_export."""

from __future__ import annotations

from pipeline_ops_core.extras import require

require("aws", "cloud.aws_data_export (AWS Data Exports)")

"""OCI FOCUS cost reports from Object Storage: cloud.oci_cost_report."""

from __future__ import annotations

from pipeline_ops_core.extras import require

require("oci", "cloud.oci_cost_report (OCI cost reports)")

"""Azure Cost Management FocusCost exports from Blob storage: cloud.azure_cost_export."""

from __future__ import annotations

from pipeline_ops_core.extras import require

require("azure", "cloud.azure_cost_export (Azure cost exports)")

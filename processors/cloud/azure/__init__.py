"""Azure Cost Management FocusCost exports from Blob storage: cloud.azure_cost_export."""

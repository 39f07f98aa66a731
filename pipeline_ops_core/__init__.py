"""pipeline_ops_core."""

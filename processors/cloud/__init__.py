"""processors/cloud."""

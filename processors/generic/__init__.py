"""processors/generic."""

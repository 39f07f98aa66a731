"""processors/subscription."""

"""Per-org pipeline schedules: their tables, the operator API and the dispatcher beat runs."""

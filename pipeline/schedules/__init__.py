"""Per-org pipeline schedules: the operator API (service) and the dispatcher beat runs."""

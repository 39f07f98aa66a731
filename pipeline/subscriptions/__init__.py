"""Per-org SaaS subscriptions: their table and the service behind the CLI, the admin API and
the subscription processor."""

"""Structured logs, secret redaction and warehouse lock-wait reports."""

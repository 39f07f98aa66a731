"""PostgreSQL URL options the engine factory hands to psycopg rather than libpq."""

from __future__ import annotations

from pipeline.storage.db import postgres_connect_args


def test_prepare_threshold_on_a_postgres_url_goes_to_psycopg() -> None:
    url, args = postgres_connect_args(
        "postgresql+psycopg://u:p@pooler.example.test:6543/postgres?sslmode=require"
        "&prepare_threshold=none"
    )

    assert args == {"prepare_threshold": None}
    assert url == "postgresql+psycopg://u:p@pooler.example.test:6543/postgres?sslmode=require"
    assert postgres_connect_args("postgresql+psycopg://u:p@h/db") == (
        "postgresql+psycopg://u:p@h/db",
        {},
    )

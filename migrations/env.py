"""Alembic environment: the URL comes from the caller (pipeline.storage.db.upgrade) or
DATABASE_URL; the models are every table of pipeline/storage/tables.py, on one MetaData."""

from __future__ import annotations

from alembic import context

from pipeline.settings import Settings
from pipeline.storage.db import COMPARE_OPTIONS, make_engine, normalize_url
from pipeline.storage.tables import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url") or normalize_url(Settings.from_env().database_url)


def run_migrations_offline() -> None:
    context.configure(url=url, target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=True,
            **COMPARE_OPTIONS,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

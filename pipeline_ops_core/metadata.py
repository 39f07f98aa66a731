"""The one SQLAlchemy `MetaData` every table of the metadata database is defined on.

The run records (pipeline/), the quota ledger (quota/), the vault (credentials/), the
notification settings (notify/) and the schedules and subscriptions all live in one
database, created by one chain of Alembic migrations. Alembic compares the models with
that database through a single MetaData (migrations/env.py gets it from
pipeline/storage/tables.py, which imports every table module): a table defined on a
MetaData of its own would look like a table to drop.

It lives in this leaf package so that quota/, credentials/ and notify/ can put their
tables on it without importing pipeline/.
"""

from __future__ import annotations

from sqlalchemy import MetaData

metadata = MetaData()

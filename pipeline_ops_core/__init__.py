"""The leaf every package may import, and which imports nothing of the project: the error
taxonomy (errors), the egress policy (egress), the identifier patterns (identifiers) and
the one SQLAlchemy MetaData of the metadata database (metadata)."""

"""Pipeline definitions: the YAML files, their templates and DAG, the catalog that finds
them, the provider registry, and `pipeline-ops validate`."""

"""Framework-free core: settings, config, DAG planning, run service and store."""

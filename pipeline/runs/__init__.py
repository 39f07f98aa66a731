"""Runs: the run service (admit, plan, enqueue, cancel, end, reap), step execution, the
write fence and lineage."""

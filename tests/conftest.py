"""Session-wide test environment: nothing touches ./var or a developer's Redis.

The broker URL must be fixed before the Celery app is first configured, so the
port of the integration redis-server is chosen here and the server itself is
started lazily by the `redis_server` fixture (tests/integration/conftest.py).
"""

from __future__ import annotations

import os
import tempfile

from tests.support.leaks import pytest_fixture_setup, pytest_sessionfinish
from tests.support.servers import LOOPBACK_ALLOW, free_port
from tests.support.tools import CACHE_DIR

# The leak check's hooks (tests/support/leaks.py): a server started by a test or a
# fixture and still running when the session ends fails the run.
__all__ = ["pytest_fixture_setup", "pytest_sessionfinish"]


def pytest_configure(config: object) -> None:
    var_dir = tempfile.mkdtemp(prefix="po-test-var-")
    os.environ["PIPELINE_OPS_VAR_DIR"] = var_dir
    os.environ.setdefault("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    # Hypothesis keeps its caches, and the examples `make soak` saw fail, out of the repo.
    os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(CACHE_DIR / "hypothesis"))
    os.environ.pop("PIPELINE_OPS_EAGER", None)
    # The egress policy stays on in tests: only the loopback stand-ins are allow-listed
    # (hostile-tenant tests narrow it further, to the ports of their legitimate servers).
    os.environ["PIPELINE_OPS_EGRESS_ALLOW"] = LOOPBACK_ALLOW
    for name in ("DATABASE_URL", "WAREHOUSE_URL", "SUPABASE_URL", "PIPELINE_OPS_ADMIN_KEY"):
        os.environ.pop(name, None)

"""Session-wide test environment: nothing touches ./var or a developer's Redis.

The broker URL must be fixed before the Celery app is first configured, so the
port of the integration redis-server is chosen here and the server itself is
started lazily by the `redis_server` fixture (tests/integration/conftest.py).
"""

from __future__ import annotations

import os
import tempfile

from tests.support.servers import LOOPBACK_ALLOW, free_port


def pytest_configure(config: object) -> None:
    var_dir = tempfile.mkdtemp(prefix="po-test-var-")
    os.environ["PIPELINE_OPS_VAR_DIR"] = var_dir
    os.environ.setdefault("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    os.environ.pop("PIPELINE_OPS_EAGER", None)
    # The egress policy stays on in tests: only the loopback stand-ins are allow-listed
    # (hostile-tenant tests narrow it further, to the ports of their legitimate servers).
    os.environ["PIPELINE_OPS_EGRESS_ALLOW"] = LOOPBACK_ALLOW
    for name in ("DATABASE_URL", "WAREHOUSE_URL", "SUPABASE_URL", "PIPELINE_OPS_ADMIN_KEY"):
        os.environ.pop(name, None)

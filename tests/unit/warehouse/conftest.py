"""Test setup for the warehouse tests.

No `__init__.py` here on purpose: it would make this folder a package named `warehouse`
and shadow the real one.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:  # so plain `pytest` finds the packages without an install
    sys.path.insert(0, str(ROOT))

"""Helpers shared by the tests.

The local stack's package (``scripts/mlops_stack``) is importable from here on: the tests share its
process-group helpers (``mlops_stack.processes``) and its REST client (``mlops_stack.rest``).
"""

from __future__ import annotations

import sys
from pathlib import Path

SCRIPTS = str(Path(__file__).resolve().parents[2] / "scripts")
if SCRIPTS not in sys.path:
    sys.path.insert(0, SCRIPTS)

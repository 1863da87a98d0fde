"""``python scripts/mlops_stack [command] [options]``: run the stack's command line (see ``cli``)."""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a folder: import the package from scripts/, not its modules as top-level
    _here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if str(Path(p or ".").resolve()) != _here]
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlops_stack.cli import main

if __name__ == "__main__":
    sys.exit(main())

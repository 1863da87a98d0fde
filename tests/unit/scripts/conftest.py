"""The local stack's package (``scripts/mlops_stack``) on sys.path for its unit tests."""

from __future__ import annotations

import os

import pytest

import tests.support  # noqa: F401  (puts scripts/ on sys.path)


@pytest.fixture(autouse=True)
def _keep_umask():
    """The command line sets umask 077 for everything the stack creates; give the test process its own back."""
    umask = os.umask(0o022)
    os.umask(umask)
    yield
    os.umask(umask)

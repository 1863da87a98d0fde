"""Integration fixtures: one real stack (MLflow + Airflow, ``python scripts/mlops_stack up``) for the whole session."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.support.live_stack import LiveStack

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="session")
def live_stack(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[LiveStack]:
    """A running stack on free loopback ports, state in a temporary home, shared by the session.

    Started lazily by the first test that asks for it, healthy when yielded (polled with a deadline),
    always stopped at the end of the session (SIGINT, then SIGKILL of its process groups by PID).
    Its server logs are printed when a test of the session failed.
    """
    home = tmp_path_factory.mktemp("live-stack") / "stack"
    stack = LiveStack.start(home)
    print(
        f"\nlive stack up in {stack.boot_seconds:.1f} s "
        f"(up reports {stack.state.get('boot_seconds')} s): Airflow {stack.airflow_url}, "
        f"MLflow {stack.mlflow_url}, data root {stack.data_root}"
    )
    try:
        yield stack
    finally:
        stack.stop(dump_logs=request.session.testsfailed > 0)

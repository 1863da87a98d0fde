"""The stack's port probe: a port in TIME_WAIT after a server stopped is free; a listening one is not."""

from __future__ import annotations

import socket
import sys

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.unit

sys.path.insert(0, str(REPO_ROOT / "scripts"))
import stack  # noqa: E402


def _server_closed_first() -> int:
    """A loopback port whose server closed a connection first (TIME_WAIT on it), then stopped.

    The server sets SO_REUSEADDR, as uvicorn, gunicorn and Airflow's servers do.
    """
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((stack.HOST, 0))
    server.listen()
    port = server.getsockname()[1]
    client = socket.create_connection((stack.HOST, port))
    accepted, _ = server.accept()
    accepted.close()  # the server side closes first: its end of the connection enters TIME_WAIT
    client.recv(1)
    client.close()
    server.close()
    return port


def test_a_port_in_time_wait_is_free_and_a_listening_port_is_not():
    port = _server_closed_first()
    plain = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(OSError, match="in use"):  # the probe without SO_REUSEADDR: it looked busy
            plain.bind((stack.HOST, port))
    finally:
        plain.close()
    assert stack.port_is_free(port)

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listening:
        listening.bind((stack.HOST, 0))
        listening.listen()
        assert not stack.port_is_free(listening.getsockname()[1])

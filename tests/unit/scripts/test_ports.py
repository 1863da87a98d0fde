"""The stack's ports: a port in TIME_WAIT after a server stopped is free, a listening one is not; choices."""

from __future__ import annotations

import socket

import pytest
from mlops_stack.errors import StackError
from mlops_stack.ports import HOST, pick_ports, port_is_free

pytestmark = pytest.mark.unit


def _server_closed_first() -> int:
    """A loopback port whose server closed a connection first (TIME_WAIT on it), then stopped.

    The server sets SO_REUSEADDR, as uvicorn, gunicorn and Airflow's servers do.
    """
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((HOST, 0))
    server.listen()
    port = server.getsockname()[1]
    client = socket.create_connection((HOST, port))
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
            plain.bind((HOST, port))
    finally:
        plain.close()
    assert port_is_free(port)

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listening:
        listening.bind((HOST, 0))
        listening.listen()
        assert not port_is_free(listening.getsockname()[1])


@pytest.fixture
def busy_port():
    """A port something listens on for the duration of the test."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listening:
        listening.bind((HOST, 0))
        listening.listen()
        yield listening.getsockname()[1]


def test_a_busy_default_falls_back_to_a_free_port_and_zero_means_any(busy_port):
    chosen = pick_ports({"airflow": None, "mlflow": 0}, {"airflow": busy_port, "mlflow": busy_port})
    assert chosen["airflow"] != busy_port
    assert chosen["mlflow"] != busy_port
    assert chosen["airflow"] != chosen["mlflow"]
    assert all(port_is_free(port) for port in chosen.values())


def test_a_free_default_is_kept_and_a_busy_requested_port_is_an_error(busy_port):
    free = _server_closed_first()
    assert pick_ports({"airflow": None}, {"airflow": free}) == {"airflow": free}
    with pytest.raises(StackError, match=f"port {busy_port} for mlflow is in use"):
        pick_ports({"mlflow": busy_port}, {"mlflow": 5000})

"""The loopback ports of the stack's servers: probe and choose."""

from __future__ import annotations

import socket

from mlops_stack.errors import StackError

HOST = "127.0.0.1"


def port_is_free(port: int) -> bool:
    """Whether a server could listen on ``port`` on the loopback address right now.

    Probed with SO_REUSEADDR, as the servers themselves bind: connections of a stopped server that
    linger in TIME_WAIT do not make its port look busy (a restart right after ``down`` keeps its ports).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def pick_ports(requested: dict[str, int | None], defaults: dict[str, int]) -> dict[str, int]:
    """Choose a loopback port per server.

    ``None``: the default port, or any free port if it is busy. ``0``: any free port. Another number:
    exactly that port, or an error if it is busy. Chosen ports are held open together so that two
    "any free port" choices never collide.
    """
    chosen: dict[str, int] = {}
    held: list[socket.socket] = []
    try:
        for name, want in requested.items():
            if want:
                if not port_is_free(want):
                    raise StackError(f"port {want} for {name} is in use (pass 0 for any free port)")
                chosen[name] = want
                continue
            taken = {*chosen.values(), *(p for p in requested.values() if p)}
            if want is None and defaults[name] not in taken and port_is_free(defaults[name]):
                chosen[name] = defaults[name]
                continue
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            held.append(sock)
            chosen[name] = sock.getsockname()[1]
    finally:
        for sock in held:
            sock.close()
    return chosen

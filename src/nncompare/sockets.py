"""Filling a buffer from a stream socket: the one loop the Spark wire, the floor and the micro-benchmarks share.

A module of its own, free of engine imports: the floor must run where pyspark is not installed,
and importing anything under ``nncompare.engines.spark`` imports pyspark.
"""

from __future__ import annotations

import socket


def recv_into(sock: socket.socket, view: memoryview) -> None:
    """Fill ``view`` from ``sock``; ``ConnectionError`` if the peer closes first."""
    got = 0
    while got < view.nbytes:
        n = sock.recv_into(view[got:])
        if n == 0:
            raise ConnectionError("connection closed by peer")
        got += n


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    """The next ``n`` bytes from ``sock``."""
    data = bytearray(n)
    recv_into(sock, memoryview(data))
    return bytes(data)

"""What Spark would refuse only after its JVM started, checked before it starts: one line, in seconds.

Spark finds a bad master, too little memory or a missing YARN or Kubernetes prerequisite
only inside its JVM, after 3 to 60 s, and says so in a Java trace. Each check here reads
the same settings Spark would and says the same thing in one line, with what to do.
"""

from __future__ import annotations

import os
import re
import socket
import struct
from collections.abc import Mapping
from urllib.parse import urlparse

from nncompare.errors import EngineError, UsageError

MASTER = re.compile(r"^(local(\[.*\])?|spark://.+|yarn|k8s://.+|mesos://.+)$")
#: Seconds a TCP connect to a standalone master may take before it counts as unreachable. Spark
#: itself retries registration three times 20 s apart, then prints its stack traces.
REACH_S = 5.0
#: Seconds a standalone master's port has to answer a Spark RPC request before it counts as not Spark.
ANSWER_S = 10.0
#: Spark's smallest heap for a driver or an executor: 1.5 x its reserved 300 MiB
#: (``UnifiedMemoryManager``; "Executor memory ... must be at least 471859200").
MIN_MEMORY_BYTES = 471859200
_UNITS = {"b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40, "p": 2**50}
#: Spark's network frames (``org.apache.spark.network.protocol``): StreamRequest, StreamResponse, StreamFailure.
_STREAM_REQUEST, _STREAM_ANSWERS = 6, (7, 8)


def check_master(master: str, limit_s: float = REACH_S, conf: Mapping[str, str] | None = None) -> None:
    """A malformed, unreachable or non-Spark master is one line in seconds, before any JVM starts.

    ``spark://HOST:PORT[,HOST:PORT...]`` (a standby list) needs one endpoint that accepts a TCP
    connection and answers a Spark RPC request; ``k8s://`` needs its API server to accept a
    connection and an image for the executors; ``yarn`` needs a Hadoop configuration.
    """
    conf = dict(conf or {})
    if not MASTER.match(master):
        raise UsageError(
            f"--cluster {master!r} is not a Spark master; write spark://host:7077, yarn or k8s://https://host:port"
        )
    if master.startswith("mesos://"):
        raise UsageError(f"--cluster {master}: Spark 4 runs no longer on Mesos; use spark://, yarn or k8s://")
    if master == "yarn":
        _check_yarn()
    elif master.startswith("k8s://"):
        _check_kubernetes(master, conf, limit_s)
    elif master.startswith("spark://"):
        _check_standalone(master, conf, limit_s)


def _endpoints(master: str) -> list[tuple[str, int]]:
    endpoints = []
    for entry in master.removeprefix("spark://").split(","):
        host, sep, port = entry.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise UsageError(
                f"--cluster {master}: write a standalone master as spark://HOST:PORT "
                "(its port is 7077 unless it was started with another)"
            )
        endpoints.append((host.strip("[]"), int(port)))
    return endpoints


def _reason(exc: OSError) -> str:
    return "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__).lower()


def _check_standalone(master: str, conf: dict, limit_s: float) -> None:
    # with authentication or TLS on, the master answers only to Spark's own handshake: leave it to Spark
    probe = not _true(conf.get("spark.authenticate")) and not _true(conf.get("spark.ssl.rpc.enabled"))
    reasons = []
    for host, port in _endpoints(master):
        try:
            with socket.create_connection((host, port), timeout=limit_s) as sock:
                not_spark = _not_spark(sock) if probe else None
        except OSError as exc:
            reasons.append(f"{host}:{port}: {_reason(exc)}")
            continue
        if not_spark is None:
            return
        raise EngineError(
            f"{host}:{port} answers, but not as a Spark master ({not_spark}); "
            "give the master's RPC port (7077 unless it was started with another) in --cluster"
        )
    raise EngineError(
        f"cannot reach a Spark master at {master} within {limit_s:g} s ({'; '.join(reasons)}); "
        "start one with start-master.sh or fix --cluster"
    )


def _not_spark(sock: socket.socket, limit_s: float = ANSWER_S) -> str | None:
    """None when ``sock``'s peer answers a Spark RPC request; otherwise what it did instead.

    The request asks for a file the master does not serve; a Spark endpoint answers with a
    StreamFailure frame (and logs nothing), where an HTTP or SSH server sends its own bytes,
    and a sink says nothing.
    """
    stream = b"/files/nncompare-probe"
    body = struct.pack(">i", len(stream)) + stream
    sock.settimeout(limit_s)
    try:
        sock.sendall(struct.pack(">qb", 8 + 1 + len(body), _STREAM_REQUEST) + body)
        head = b""
        while len(head) < 9:
            chunk = sock.recv(9 - len(head))
            if not chunk:
                return "it closed the connection without a word" if not head else f"it sent {head!r}"
            head += chunk
    except TimeoutError:
        return f"it said nothing within {limit_s:g} s"
    except OSError as exc:
        return _reason(exc)
    length, kind = struct.unpack(">qb", head)
    if kind in _STREAM_ANSWERS and 9 < length < 2**20:
        return None
    return f"it sent {head!r}"


def _check_yarn() -> None:
    """Spark on YARN reads the cluster's addresses from HADOOP_CONF_DIR or YARN_CONF_DIR (SparkSubmitArguments)."""
    dirs = {name: os.environ.get(name) for name in ("HADOOP_CONF_DIR", "YARN_CONF_DIR") if os.environ.get(name)}
    if not dirs:
        raise UsageError(
            "--cluster yarn needs HADOOP_CONF_DIR or YARN_CONF_DIR set to the folder of the cluster's "
            "Hadoop configuration (core-site.xml, yarn-site.xml)"
        )
    if not any(os.path.isdir(d) for d in dirs.values()):
        name, folder = next(iter(dirs.items()))
        raise UsageError(f"--cluster yarn: {name}={folder} is not a folder; point it at the Hadoop configuration")


def _check_kubernetes(master: str, conf: dict, limit_s: float) -> None:
    """Executors on Kubernetes need an image, and the API server must answer (Spark retries it for minutes)."""
    if not (conf.get("spark.kubernetes.container.image") or conf.get("spark.kubernetes.executor.container.image")):
        raise UsageError(
            f"--cluster {master}: Spark on Kubernetes needs the executors' image; add "
            "--spark-conf spark.kubernetes.container.image=IMAGE (an image with Python and nncompare)"
        )
    api = urlparse(master.removeprefix("k8s://"))
    if not api.scheme:
        api = urlparse("https://" + master.removeprefix("k8s://"))
    try:
        port = api.port or (80 if api.scheme == "http" else 443)
    except ValueError:
        port = None
    if not api.hostname or port is None:
        raise UsageError(f"--cluster {master}: write k8s://https://HOST:PORT (the API server's address)")
    try:
        socket.create_connection((api.hostname, port), timeout=limit_s).close()
    except OSError as exc:
        raise EngineError(
            f"cannot reach the Kubernetes API server at {api.hostname}:{port} within {limit_s:g} s "
            f"({_reason(exc)}); fix --cluster"
        ) from None


def _true(value) -> bool:
    return str(value).strip().lower() == "true"


def memory_bytes(text: str) -> int | None:
    """Spark's memory setting as bytes (a bare number is MiB, as for spark.executor.memory); None if unreadable."""
    found = re.fullmatch(r"\s*(\d+)\s*([bkmgtp]?)b?\s*", str(text).lower())
    if not found:
        return None
    return int(found.group(1)) * _UNITS[found.group(2) or "m"]


def check_memory(conf: Mapping[str, str]) -> None:
    """Spark's memory minimum for the driver and each executor, before its JVM refuses it."""
    for key, who, how in (
        ("spark.executor.memory", "per executor", "--memory 450m or more"),
        ("spark.driver.memory", "for the driver", "--spark-conf spark.driver.memory=450m or more"),
    ):
        if key not in conf:
            continue
        value = memory_bytes(conf[key])
        if value is None:
            raise UsageError(f"{key}={conf[key]}: write a size such as 512m or 2g")
        if value < MIN_MEMORY_BYTES:
            raise UsageError(f"{key}={conf[key]} is below Spark's minimum of 450 MiB {who}; give {how}")

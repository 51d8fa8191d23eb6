"""The life of a `harness serve` process: the watchdog that notices when its Ray or its HTTP
listener is gone (so the process exits non-zero and a supervisor restarts it), and the clean
shutdown on SIGTERM / Ctrl-C (Serve shut down, the embedded Ray's processes gone).

    watch = Watchdog("127.0.0.1", 8000)
    problem = watch.check()      # None while all is well, else one sentence saying what is gone
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any, Callable, Optional

#: exit status of `harness serve` when its Ray or its HTTP listener is gone
EXIT_GONE = 3


def connect_host(host: str) -> str:
    """Where to connect to reach a server listening on `host` (a wildcard means this machine)."""
    host = host.strip("[]")
    return {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)


def can_connect(host: str, port: int, timeout_s: float = 2.0) -> bool:
    """Whether a TCP connection to host:port is accepted within `timeout_s` seconds."""
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
        return True
    except OSError:
        return False


def embedded_node() -> Any:
    """Ray's Node object when this process started its Ray (it then holds the head's processes), else None."""
    try:
        from ray._private import worker
    except ImportError:
        return None
    node = getattr(worker, "_global_node", None)
    if node is None:
        return None
    from ray._private import ray_constants as rc

    return node if node.all_processes.get(rc.PROCESS_TYPE_GCS_SERVER) else None


#: consecutive failed connects to an external cluster's GCS (each up to 2 s) before it counts as gone
GCS_MISSES = 5


class Watchdog:
    """Checks, each time `check()` is called, that the server's Ray and its HTTP port are there.

    Ray: the embedded Ray's GCS and raylet processes are alive (by their Popen handles), or, on a
    Ray started elsewhere, its GCS accepts a TCP connection. HTTP: host:port accepts a connection;
    Serve restarts a dead replica or proxy by itself, so the port counts as gone only after
    `grace_s` seconds without a listener.
    """

    def __init__(self, host: str, port: int, grace_s: float = 20.0) -> None:
        import ray

        self.host, self.port, self.grace_s = connect_host(host), port, grace_s
        self.node = embedded_node()
        gcs = ray.get_runtime_context().gcs_address if ray.is_initialized() else ""
        gcs_host, _, gcs_port = gcs.rpartition(":")
        self.gcs = (gcs_host.strip("[]"), int(gcs_port)) if gcs_port.isdigit() else None
        self._http_down_since: Optional[float] = None
        self._gcs_misses = 0
        #: the port is watched when it answers here at the start (Serve's proxy may be on another node of a cluster)
        self.watch_http = can_connect(self.host, self.port)

    def ray_problem(self) -> Optional[str]:
        if self.node is not None:
            from ray._private import ray_constants as rc

            for kind in (rc.PROCESS_TYPE_GCS_SERVER, rc.PROCESS_TYPE_RAYLET):
                for info in self.node.all_processes.get(kind, []):
                    code = info.process.poll()
                    if code is not None:
                        return f"the embedded Ray's {kind} (pid {info.process.pid}) exited with status {code}"
            return None
        if self.gcs is not None and not can_connect(*self.gcs):
            self._gcs_misses += 1  # a cluster's GCS across a network: one missed connect is no verdict
            if self._gcs_misses >= GCS_MISSES:
                return f"the Ray cluster's GCS at {self.gcs[0]}:{self.gcs[1]} did not answer {self._gcs_misses} checks in a row"
            return None
        self._gcs_misses = 0
        return None

    def http_problem(self, now: Optional[float] = None) -> Optional[str]:
        now = time.monotonic() if now is None else now
        if not self.watch_http or can_connect(self.host, self.port):
            self._http_down_since = None
            return None
        if self._http_down_since is None:
            self._http_down_since = now
        if now - self._http_down_since >= self.grace_s:
            return f"nothing has listened on {self.host}:{self.port} for {now - self._http_down_since:.0f} s (Serve's HTTP server is gone)"
        return None

    def check(self) -> Optional[str]:
        """None while the server's Ray and HTTP port are there, else one sentence naming what is gone."""
        return self.ray_problem() or self.http_problem()


def bounded(fn: Callable[[], Any], timeout_s: float) -> bool:
    """Run `fn` in a daemon thread for at most `timeout_s` seconds; whether it finished (errors count as finished)."""
    def body() -> None:
        try:
            fn()
        except BaseException:  # noqa: BLE001  (shutting down: what is left is killed next)
            pass

    t = threading.Thread(target=body, daemon=True)
    t.start()
    t.join(timeout_s)
    return not t.is_alive()


def _stat(pid: int) -> Optional[tuple[int, str]]:
    """(parent pid, start time in clock ticks) of a live process, None when it is gone or a zombie."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else (int(fields[1]), fields[19])


def own_descendants() -> dict[int, str]:
    """Every live process below this one (pid -> start time, which tells a reused pid apart),
    found through /proc parent links: the embedded Ray's processes and what they started."""
    children: dict[int, list[int]] = {}
    started: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None:
                children.setdefault(st[0], []).append(int(entry))
                started[int(entry)] = st[1]
    out: dict[int, str] = {}
    todo = list(children.get(os.getpid(), []))
    while todo:
        pid = todo.pop()
        out[pid] = started[pid]
        todo += children.get(pid, [])
    return out


def kill_leftovers(processes: dict[int, str], wait_s: float = 10.0) -> None:
    """SIGKILL those of `processes` (from own_descendants) still alive after `wait_s` seconds."""
    import signal

    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and any(_alive(pid, t) for pid, t in processes.items()):
        time.sleep(0.2)
    for pid, t in processes.items():
        if _alive(pid, t):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def _alive(pid: int, start_time: str) -> bool:
    st = _stat(pid)
    return st is not None and st[1] == start_time


def shutdown(serve_too: bool) -> None:
    """Shut Serve down (when its controller can still be reached), then Ray; what the embedded Ray
    started and outlives `ray.shutdown()` (its dashboard and runtime-env agents linger when the GCS
    dies first) is killed by pid, found as this process's descendants (never by name)."""
    import ray

    embedded = embedded_node() is not None
    if serve_too:
        from ray import serve as ray_serve  # loaded with ray, only on the way out

        bounded(ray_serve.shutdown, 60)
    processes = own_descendants() if embedded else {}
    bounded(ray.shutdown, 30)
    kill_leftovers(processes)


def exit_now(code: int) -> None:
    """Leave without waiting for Ray's own threads (they may block on a GCS that is gone)."""
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

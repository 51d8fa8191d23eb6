"""Processes the tests started, found and killed by PID through /proc parent links (never by name),
and the free loopback ports they listen on."""

from __future__ import annotations

import os
import random
import signal
import socket
from pathlib import Path


_handed_out: set[int] = set()


def _worker() -> tuple[int, int]:
    """(this pytest-xdist worker's index, how many workers): `gw1` of 2 is (1, 2); no xdist is (0, 1)."""
    name, count = os.environ.get("PYTEST_XDIST_WORKER", ""), os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if name.startswith("gw") and name[2:].isdigit() and count.isdigit() and int(count) > 0:
        return int(name[2:]), int(count)
    return 0, 1


#: the ports tests listen on: above Ray's worker ports (10002-19999), below the kernel's ephemeral range
PORTS = range(20_000, 32_000)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, never the same one twice in a session.

    Not the kernel's pick (bind to port 0): that may hand a just-closed port out again at once, so the
    several ports of one `ray start` could coincide. Each xdist worker draws from its own slice of
    PORTS, so two workers never pick the same port either.
    """
    index, count = _worker()
    span = len(PORTS) // count
    mine = range(PORTS.start + index * span, PORTS.start + (index + 1) * span)
    rng = random.Random()
    for _ in range(10_000):
        port = rng.choice(mine)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free loopback port in {mine.start}-{mine.stop - 1}")


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def descendants(root: int) -> list[int]:
    """`root` and every process below it (Ray gives some of its processes their own process group)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            children.setdefault(_parent(int(stat.parent.name)), []).append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def is_descendant(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            pid = _parent(pid)
        except (OSError, ValueError, IndexError):
            return False
    return False


def kill_family(root: int) -> None:
    """SIGKILL `root` and all its descendants at once (a `ray start --block` takes ~30 s to stop on SIGTERM)."""
    for pid in descendants(root):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

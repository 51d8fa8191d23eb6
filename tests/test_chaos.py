"""Chaos: a 200-attempt run on a real two-node Ray cluster (a head and one `ray start` worker
node, token auth on, the helpers of tests/test_multinode.py) during which, at random points of
the run (a seeded RNG; the seed is printed, and HARNESS_CHAOS_SEED=<seed> replays it), three
things are SIGKILLed by PID, in this order: one process running an attempt, the worker node (its `ray start`
and everything below it), and the driver (`harness run`, a Ray job on the head). The killed
driver's run is finished by `harness run --resume`, and the table ends exact: one row per
attempt, every attempt succeeded, none charged to the agent for the kills. The agent is
`tests/agents/copier` (a 0.3 s sleep, then one `cp`; half a CPU, so 6 run at once),
so 200 attempts stay cheap and some are always running when a kill comes.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.store import RunStore, list_runs
from tests.procs import descendants, free_port, is_descendant
from tests.test_faults import _ray_processes
from tests.test_multinode import RAY, Cluster, _wait

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

COMPETITIONS = ("breast-cancer-diagnosis", "diabetes-progression")
SEEDS = 100  # x 2 competitions = 200 attempts
KILLS = ("attempt worker", "node", "driver")


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A head that runs drivers and attempts (2 CPUs: 4 attempts at once) and one worker node (1 CPU) to be killed."""
    c = Cluster(tmp_path_factory.mktemp("chaos-cluster"))
    try:
        c.start("head", ["--head", f"--port={c.gcs}", "--node-ip-address=127.0.0.1", "--num-cpus=2",
                         "--dashboard-host=127.0.0.1", f"--metrics-export-port={free_port()}",
                         f"--dashboard-port={c.dash}", "--include-dashboard=true",
                         f"--dashboard-agent-listen-port={free_port()}"])
        c.wait_head()
        c.start("worker", [f"--address=127.0.0.1:{c.gcs}", "--node-ip-address=127.0.0.1", "--num-cpus=1",
                           f"--dashboard-agent-listen-port={free_port()}", f"--metrics-export-port={free_port()}"])
        _wait(lambda: c.alive_nodes() == 2, c, "worker", interval=0.25)
        yield c
    finally:
        c.stop()


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _driver_pid(c: Cluster, store: Path) -> int | None:
    """The `harness run` process the head's job supervisor started for this store (below the head's `ray start`)."""
    for pid in descendants(c.procs["head"].pid):
        argv = _cmdline(pid)
        if str(store) in argv and "run" in argv and any(a.endswith("harness") for a in argv):
            return pid
    return None


def _attempt_worker(c: Cluster) -> int | None:
    """A process of this cluster in the middle of an attempt: Ray titles it by the task it runs, and the
    agent's `sleep` runs below it. (The title alone also fits a worker that is returning its outcome,
    and a kill then costs nothing to retry; that happened.)"""
    busy = [pid for pid in _ray_processes("ray::_attempt_task")
            if any(is_descendant(pid, proc.pid) for proc in c.procs.values())
            and any(_cmdline(child)[:1] == ["sleep"] for child in descendants(pid))]
    return busy[0] if busy else None


def _retried_rows(store: Path, seen: dict[Path, int]) -> int:
    """How many recorded attempts took more than one try (`seen` caches each row file's `tries`)."""
    for f in store.glob("*/attempts/*.parquet"):
        if f not in seen:
            try:
                seen[f] = int(pq.read_table(f, columns=["tries"]).column("tries")[0].as_py())
            except (OSError, pa.ArrowInvalid):  # being written: read it next time
                continue
    return sum(t >= 2 for t in seen.values())


def _running(pid: int) -> bool:
    """Whether `pid` is still a live process (a zombie waiting for its parent is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _rows_on_disk(store: Path) -> int:
    return sum(1 for _ in store.glob("*/attempts/*.parquet"))


def test_chaos_a_worker_a_node_and_the_driver_killed_then_resume_gives_an_exact_table(two_nodes: Cluster,
                                                                                      tmp_path: Path) -> None:
    c = two_nodes
    seed = int(os.environ.get("HARNESS_CHAOS_SEED") or random.SystemRandom().randrange(1_000_000))
    print(f"chaos seed {seed} (HARNESS_CHAOS_SEED={seed} replays the same kill points)")
    rng = random.Random(seed)
    total = len(COMPETITIONS) * SEEDS
    # rows recorded before each kill; all within the first 55%, so the run is still going when the last one comes
    points = sorted(rng.sample(range(total // 10, total * 55 // 100), len(KILLS)))
    # the kills come in KILLS' order (at random points): an attempt worker while both nodes run attempts,
    # then the node, then the driver (after the node loss the head alone was seen to give no worker to kill)
    plan = list(zip(points, KILLS))
    print("kill plan (rows recorded, what):", plan)

    store = tmp_path / "store"
    args = ["harness", "run", *[a for cid in COMPETITIONS for a in ("-c", cid)], "--lite", "--agent", "copier",
            "--seeds", str(SEEDS), "--max-retries", "3", "--store", str(store)]
    logs: list[Path] = []

    def submit(entry: list[str]) -> subprocess.Popen[bytes]:
        logs.append(tmp_path / f"job-{len(logs)}.log")
        return subprocess.Popen([RAY, "job", "submit", "--address", c.job_address, "--", *entry], env=c.env("client"),
                                stdout=open(logs[-1], "wb"), stderr=subprocess.STDOUT)

    def log() -> str:
        return "\n".join(p.read_text(errors="replace")[-2500:] for p in logs)

    job = submit(args)
    killed: list[tuple[str, int, int]] = []  # (what, pid, rows recorded then)
    killed_job = job
    deadline = time.monotonic() + 420
    while plan and time.monotonic() < deadline:
        rows = _rows_on_disk(store)
        at, what = plan[0]
        if rows < at:
            assert job.poll() is None, f"the run ended before {what} was killed at {at} rows ({rows} rows):\n{log()}"
            time.sleep(0.05)
            continue
        if what == "attempt worker":
            pid = _attempt_worker(c)
            if pid is None:
                assert job.poll() is None, f"the run ended before an attempt worker could be killed ({rows} rows):\n{log()}"
                time.sleep(0.02)
                continue
            os.kill(pid, signal.SIGKILL)
            # its attempt is retried at the head of the queue: wait for that row, or the driver's kill
            # could come while the retry still runs, and the resume would run it afresh as a first try
            tries: dict[Path, int] = {}
            while not _retried_rows(store, tries) and time.monotonic() < deadline:
                assert job.poll() is None, f"the run ended without retrying the killed attempt:\n{log()}"
                time.sleep(0.2)
            assert _retried_rows(store, tries), f"the attempt whose worker was killed was not retried:\n{log()}"
        elif what == "node":
            pid = c.procs["worker"].pid
            c.kill("worker")
        else:
            found = _driver_pid(c, store)
            assert found is not None, f"no driver process found:\n{log()}"
            pid = found
            os.kill(pid, signal.SIGKILL)
            while _running(pid) and time.monotonic() < deadline:  # gone (its job is marked failed later)
                time.sleep(0.05)
            (run_id,) = [s.run_id for s in list_runs(store)]
            assert RunStore(store, run_id).read_state().status == "running"  # as the killed driver left it
            killed_job, job = job, submit(["harness", "run", "--resume", run_id, "--max-retries", "3", "--store", str(store)])
        killed.append((what, pid, rows))
        plan.pop(0)
    assert not plan, f"kills not done in time: {plan}\n{log()}"
    print("killed (what, pid, rows recorded):", killed)
    assert job.wait(timeout=420) == 0, log()
    assert killed_job.wait(timeout=120) != 0, "the job of the SIGKILLed driver reported success"

    (state,) = list_runs(store)
    rows = RunStore(store, state.run_id).attempts()
    expected = {f"{cid}__copier__s{s}" for cid in COMPETITIONS for s in range(SEEDS)}
    assert len(rows) == total and set(rows["attempt_id"]) == expected and rows["attempt_id"].is_unique
    bad = rows[(rows["status"] != "succeeded") | ~rows["valid_submission"]]
    assert bad.empty, bad[["attempt_id", "status", "tries", "error"]].to_string()  # nothing charged to the agent
    assert (rows["tries"] >= 2).any(), "no attempt was retried although an attempt worker and a node were killed"
    assert rows["node"].nunique() == 2, rows["node"].value_counts()  # attempts ran on both nodes (the killed one too)
    assert state.status == "completed" and state.done == total and state.failed == 0
    # the resumed driver's own report says so: every attempt once, all succeeded
    assert f"{total}/{total} attempts" in logs[-1].read_text() and f"succeeded {total}" in logs[-1].read_text(), log()
    summary = json.loads((RunStore(store, state.run_id).dir / "summary.json").read_text())
    assert summary["done"] == total, summary

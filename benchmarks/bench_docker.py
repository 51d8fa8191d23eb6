"""The docker sandbox beside the local one, measured in one run:

1. per-attempt overhead of the sandbox alone: N trivial attempts (`cp` of the sample
   submission) one after the other through `LocalSandbox.run` and `DockerSandbox.run`;
2. throughput of N trivial attempts through `harness.run` at 1 and 2 concurrent,
   for both sandboxes.

    python benchmarks/bench_docker.py [--n 20] [--repeat 2]

Needs a Docker engine and the base image (scripts/setup_docker.sh). Ray is started
before any timing and a warm-up run goes first; the numbers exclude `ray.init`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def sandbox_loop(kind: str, n: int, settings, comp) -> float:  # type: ignore[no-untyped-def]
    """Seconds for n trivial attempts through one sandbox, sequentially, nothing else."""
    from harness.data import ensure_prepared
    from harness.registry import load_registry
    from harness.sandbox.backends import get_sandbox
    from harness.sandbox.base import SandboxJob

    agent = load_registry(settings).agent("trivial")
    data = ensure_prepared(comp, settings)
    work = Path(tempfile.mkdtemp(prefix=f"bench-{kind}-"))
    sandbox = get_sandbox(kind)
    t0 = time.perf_counter()
    for i in range(n):
        job = SandboxJob(run_id="bench", attempt_id=f"a{i}", command=["/bin/sh", "-c", str(agent.command)],
                         agent_dir=agent.dir, data_dir=data.public, attempt_dir=work / f"a{i}",
                         resources=agent.resources, time_limit_s=60)
        result = sandbox.run(job)
        assert result.status == "succeeded", (result, job.log_path.read_text())
    elapsed = time.perf_counter() - t0
    shutil.rmtree(work, ignore_errors=True)
    return elapsed


def timed_run(store: Path, **kw) -> float:  # type: ignore[no-untyped-def]
    import harness

    t0 = time.perf_counter()
    result = harness.run(store=store, **kw)
    elapsed = time.perf_counter() - t0
    bad = result.attempts[result.attempts["status"] != "succeeded"]
    assert bad.empty, bad[["attempt_id", "status", "error"]]
    return elapsed


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=20, help="trivial attempts per measurement")
    p.add_argument("--repeat", type=int, default=2, help="repetitions of each measurement; the best counts")
    args = p.parse_args()
    n = args.n

    root = Path(tempfile.mkdtemp(prefix="harness-bench-docker-"))
    os.environ.setdefault("HARNESS_DATA_DIR", str(root / "data"))
    os.environ["HARNESS_WORK_DIR"] = str(root / "work")
    os.environ["HARNESS_AGENTS_PATH"] = str(HERE / "agents")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    import ray

    from harness.registry import load_registry
    from harness.sandbox.docker import DockerSandbox
    from harness.sandbox.local import bwrap_usable, cgroup_usable
    from harness.spec import Settings

    why = DockerSandbox.available()
    if why:
        print(f"docker sandbox unavailable: {why}", file=sys.stderr)
        return 2
    settings = Settings.from_env()
    comp = load_registry(settings).competition("breast-cancer-diagnosis")
    # address="local": a fresh Ray of our own even when another cluster runs on the machine
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    print(f"local sandbox: bwrap={bwrap_usable()} cgroup_v1={cgroup_usable()}  cores={os.cpu_count()}  n={n}")

    runs = root / "runs"
    for kind in ("local", "docker"):  # warm-up: data, Ray workers, imports, the docker client
        sandbox_loop(kind, 2, settings, comp)
        timed_run(runs, competitions=["breast-cancer-diagnosis"], agent="trivial", seeds=2, max_concurrency=2, sandbox=kind)

    # interleaved and repeated, best of `--repeat`: the machine is shared, so drift hits both sandboxes alike
    best: dict[object, float] = {}
    for _ in range(args.repeat):
        for kind in ("local", "docker"):
            best[kind] = min(best.get(kind, float("inf")), sandbox_loop(kind, n, settings, comp))
    local, docker = best["local"], best["docker"]
    print(f"\n[1] {n} trivial attempts through the sandbox alone, one at a time (best of {args.repeat})")
    print(f"    local  (bubblewrap): {local:7.2f} s   {local / n * 1000:7.1f} ms/attempt")
    print(f"    docker (container):  {docker:7.2f} s   {docker / n * 1000:7.1f} ms/attempt")
    print(f"    docker - local:      {(docker - local) / n * 1000:7.1f} ms/attempt   (ratio docker/local {docker / local:.2f}x)")

    for _ in range(args.repeat):
        for c in (1, 2):
            for kind in ("local", "docker"):
                t = timed_run(runs, competitions=["breast-cancer-diagnosis"], agent="trivial", seeds=n, max_concurrency=c, sandbox=kind)
                best[kind, c] = min(best.get((kind, c), float("inf")), t)
    print(f"\n[2] {n} trivial attempts through harness.run (Ray, grading, Parquet rows; best of {args.repeat})")
    rate = {}
    for kind in ("local", "docker"):
        for c in (1, 2):
            t = best[kind, c]
            rate[kind, c] = n / t
            print(f"    {kind:6} concurrency {c}: {t:7.2f} s   {n / t:5.2f} attempts/s")
    for kind in ("local", "docker"):
        print(f"    {kind:6} 2 vs 1 concurrent: {rate[kind, 2] / rate[kind, 1]:.2f}x")
    for c in (1, 2):
        print(f"    docker/local throughput at {c} concurrent: {rate['docker', c] / rate['local', c]:.2f}x")
    ray.shutdown()
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

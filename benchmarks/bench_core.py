"""Core performance, measured side by side in one run:

0. the local sandbox's own cost: the trivial agent's command in the sandbox vs the same
   command as a plain child process, interleaved, medians;
1. per-attempt overhead of harness: N trivial attempts through `harness.run`
   (Ray tasks, grading task, Parquet row per attempt) vs a bare sequential loop
   running the same sandbox command and the same grader, no Ray;
2. speed-up of 2 workers over 1 on a CPU-bound agent;
3. a large run of the `dummy` agent (default 1,000 attempts) and the driver's peak memory.

    python benchmarks/bench_core.py [--n 40] [--cpu-attempts 6] [--big 1000]

Ray is started before any timing; the numbers exclude `ray.init`.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def bare_loop(n: int, settings, comp, lite: bool = False) -> float:  # type: ignore[no-untyped-def]
    """Seconds for `n` attempts of the same sandbox command and grader, one after the other, with no Ray and no store."""
    from harness.data import ensure_prepared
    from harness.grading import grade_submission
    from harness.registry import load_registry
    from harness.sandbox.base import SandboxJob
    from harness.sandbox.local import LocalSandbox

    agent = load_registry(settings).agent("trivial")
    data = ensure_prepared(comp, settings, lite=lite)
    work = Path(tempfile.mkdtemp(prefix="bench-bare-"))
    sandbox = LocalSandbox()
    t0 = time.perf_counter()
    for i in range(n):
        job = SandboxJob(run_id="bare", attempt_id=f"a{i}", command=["/bin/sh", "-c", str(agent.command)],
                         agent_dir=agent.dir, data_dir=data.public, attempt_dir=work / f"a{i}",
                         resources=agent.resources, time_limit_s=60)
        result = sandbox.run(job)
        assert result.status == "succeeded", result
        report = grade_submission(comp, (job.submission_dir / "submission.csv").read_bytes(), data.answers, data.sample_submission)
        assert report.valid_submission
    elapsed = time.perf_counter() - t0
    shutil.rmtree(work, ignore_errors=True)
    return elapsed


def sandbox_cost(n: int, settings, comp) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Median seconds of the trivial agent's command as a plain process and inside the local sandbox, interleaved."""
    import statistics
    import subprocess

    from harness.data import ensure_prepared
    from harness.registry import load_registry
    from harness.sandbox.base import SandboxJob
    from harness.sandbox.local import LocalSandbox

    agent = load_registry(settings).agent("trivial")
    data = ensure_prepared(comp, settings)
    work = Path(tempfile.mkdtemp(prefix="bench-sandbox-"))
    sandbox = LocalSandbox()
    plain, boxed = [], []
    for i in range(n):
        job = SandboxJob(run_id="cost", attempt_id=f"a{i}", command=["/bin/sh", "-c", str(agent.command)],
                         agent_dir=agent.dir, data_dir=data.public, attempt_dir=work / f"a{i}",
                         resources=agent.resources, time_limit_s=60)
        for d in (job.submission_dir, job.code_dir, job.logs_dir):
            d.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "DATA_DIR": str(data.public), "SUBMISSION_DIR": str(job.submission_dir),
               "CODE_DIR": str(job.code_dir), "LOGS_DIR": str(job.logs_dir)}
        t0 = time.perf_counter()
        subprocess.run(["/bin/sh", "-c", str(agent.command)], cwd=agent.dir, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        plain.append(time.perf_counter() - t0)
        shutil.rmtree(job.attempt_dir)
        t0 = time.perf_counter()
        result = sandbox.run(job)
        boxed.append(time.perf_counter() - t0)
        assert result.status == "succeeded", result
    shutil.rmtree(work, ignore_errors=True)
    return statistics.median(plain), statistics.median(boxed)


def machine_parallelism(m: int) -> float:
    """Speed-up of running the cpu-burner's work as m bare processes 2 at a time over 1 at a time:
    what the cores can give at all (a VM's two vCPUs may share a physical core)."""
    import subprocess

    cfg = (HERE / "agents" / "cpu-burner" / "config.yaml").read_text()
    code = cfg.split('python3 -c "', 1)[1].split("; shutil", 1)[0].replace("import os, shutil; ", "import os; ")

    def batch(width: int) -> float:
        t0 = time.perf_counter()
        for start in range(0, m, width):
            procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(min(width, m - start))]
            for proc in procs:
                proc.wait()
        return time.perf_counter() - t0

    return batch(1) / batch(2)


def timed_run(store: Path, **kw) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    import harness

    t0 = time.perf_counter()
    result = harness.run(store=store, **kw)
    elapsed = time.perf_counter() - t0
    bad = result.attempts[result.attempts["status"] != "succeeded"]
    assert bad.empty, bad[["attempt_id", "status", "error"]]
    return elapsed, result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=40, help="trivial attempts for the overhead comparison")
    p.add_argument("--cpu-attempts", type=int, default=8, help="CPU-bound attempts for the 1-vs-2 worker comparison")
    p.add_argument("--big", type=int, default=1000, help="attempts in the large dummy run (0 to skip)")
    args = p.parse_args()

    root = Path(tempfile.mkdtemp(prefix="harness-bench-"))
    os.environ.setdefault("HARNESS_DATA_DIR", str(root / "data"))
    os.environ["HARNESS_WORK_DIR"] = str(root / "work")
    os.environ["HARNESS_AGENTS_PATH"] = str(HERE / "agents")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    import ray

    from harness.registry import load_registry
    from harness.sandbox.local import bwrap_usable, cgroup_usable
    from harness.spec import Settings

    settings = Settings.from_env()
    comp = load_registry(settings).competition("breast-cancer-diagnosis")
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    print(f"sandbox: bwrap={bwrap_usable()} cgroup_v1={cgroup_usable()}  cores={os.cpu_count()}")

    # warm-up: prepare data, start workers, import modules in them
    timed_run(root / "runs", competitions=["breast-cancer-diagnosis"], agent="trivial", seeds=4, max_concurrency=2)

    n = args.n
    plain, boxed = sandbox_cost(n, settings, comp)
    print(f"\n[0] the trivial agent's command, {n} times each, interleaved (medians)")
    print(f"    a plain child process:        {plain * 1000:7.1f} ms")
    print(f"    inside the local sandbox:     {boxed * 1000:7.1f} ms   (the sandbox costs {(boxed - plain) * 1000:.1f} ms "
          f"per attempt: namespaces, mounts, uid drop, cgroup, copy-out)")

    bare = bare_loop(n, settings, comp)
    through, _ = timed_run(root / "runs", competitions=["breast-cancer-diagnosis"], agent="trivial", seeds=n, max_concurrency=1)
    overhead_ms = (through - bare) / n * 1000
    print(f"\n[1] {n} trivial attempts, one at a time")
    print(f"    bare loop (sandbox + grader):   {bare:7.2f} s   {bare / n * 1000:7.1f} ms/attempt")
    print(f"    harness.run (Ray, store, rows): {through:7.2f} s   {through / n * 1000:7.1f} ms/attempt")
    print(f"    harness overhead per attempt:   {overhead_ms:7.1f} ms   (ratio harness/bare {through / bare:.2f}x; target < 50 ms)")

    m = args.cpu_attempts
    one, _ = timed_run(root / "runs", competitions=["breast-cancer-diagnosis"], agent="cpu-burner", seeds=m, max_concurrency=1)
    two, _ = timed_run(root / "runs", competitions=["breast-cancer-diagnosis"], agent="cpu-burner", seeds=m, max_concurrency=2)
    machine = machine_parallelism(m)
    print(f"\n[2] {m} CPU-bound attempts")
    print(f"    1 worker:  {one:7.2f} s")
    print(f"    2 workers: {two:7.2f} s   speed-up {one / two:.2f}x (target >= 1.8x)")
    print(f"    the machine itself: the same work as bare processes, 2 at a time vs 1: {machine:.2f}x "
          f"(harness reaches {one / two / machine:.0%} of it)")

    if args.big:
        per_comp = args.big // 2
        t, result = timed_run(root / "runs", competitions=["breast-cancer-diagnosis", "diabetes-progression"],
                              agent="dummy", seeds=per_comp, max_concurrency=2)
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"\n[3] {2 * per_comp} attempts of dummy, 2 at a time")
        print(f"    wall time {t:7.1f} s ({2 * per_comp / t:.1f} attempts/s); rows recorded {len(result.attempts)}")
        print(f"    driver peak RSS {rss_mb:7.0f} MB (target < 1024 MB)")
    ray.shutdown()
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

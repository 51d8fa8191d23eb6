"""Scale: a 1,000- and a 10,000-attempt run of trivial attempts, and listing 1,000 runs.

For each size, one fresh driver process (its own local Ray, 2 CPUs) runs `harness.run` of the
`trivial` benchmark agent (one `cp` in the local sandbox) over 10 clones of a small competition
with size/10 seeds each (a run allows at most 1,000 seeds), 2 attempts at a time, and reports:
attempts/s, wall time per attempt, the driver's peak RSS and its RSS at each tenth of the run,
the driver's CPU time per attempt (the harness's own per-attempt overhead in the driver), and
the wall time per attempt beyond a bare loop of the same sandbox command and grader (no Ray,
no store). Then the ratio of time per attempt at the largest size to the smallest, and the time
of `harness runs` (the CLI, and `list_runs` in process) with 1,000 runs in a store, without
and with the index of runs.

    python benchmarks/bench_scale.py [--sizes 1000 10000] [--bare 30] [--runs 1000]

Targets (issue 15): driver peak RSS < 1 GB at 10,000; time per attempt at 10,000 within 1.2x of 1,000.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CLONES = 10
SOURCE = "breast-cancer-diagnosis"


def _rss_mb() -> float:
    """This process's resident set now, in MB."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024**2


def clone_competitions(dest: Path) -> list[str]:
    """CLONES copies of the small built-in competition under other ids (same data, same grader)."""
    from harness.registry import BUILTIN_COMPETITIONS

    ids = []
    for i in range(CLONES):
        cid = f"scale-{i:02d}"
        folder = dest / cid
        if not folder.is_dir():
            shutil.copytree(BUILTIN_COMPETITIONS / SOURCE, folder)
            cfg = folder / "config.yaml"
            cfg.write_text(re.sub(r"^name: .*$", f"name: scale clone {i}", cfg.read_text().replace(SOURCE, cid), flags=re.M))
        ids.append(cid)
    return ids


def bare_loop(n: int, comp_id: str) -> float:
    """Seconds per attempt of the same sandbox command and grader, one after another, with no Ray and no store."""
    from bench_core import bare_loop as core_bare_loop  # the loop bench_core.py times, on the lite data
    from harness.registry import load_registry
    from harness.spec import Settings

    settings = Settings.from_env()
    return core_bare_loop(n, settings, load_registry(settings).competition(comp_id), lite=True) / n


def one_size(n: int, bare: int) -> dict[str, Any]:
    """Run n trivial attempts in this (fresh) process; the measurements as a dict."""
    import ray

    import harness
    from harness.orchestrator import RunProgress

    comps = clone_competitions(Path(os.environ["HARNESS_COMPETITIONS_PATH"]))
    per_attempt_bare = bare_loop(bare, comps[0]) if bare else 0.0
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    store = Path(os.environ["HARNESS_RUNS_DIR"])
    warm = harness.run(comps, agent="trivial", seeds=1, lite=True, store=store, max_concurrency=2)  # data, workers, imports
    assert (warm.attempts["status"] == "succeeded").all(), warm.attempts[["attempt_id", "status", "error"]]
    rss_at: list[float] = []
    marks = iter(range(n // 10, n + 1, max(1, n // 10)))
    next_mark = [next(marks)]

    def progress(p: RunProgress) -> None:
        if p.done >= next_mark[0]:
            rss_at.append(round(_rss_mb()))
            next_mark[0] = next(marks, n + 1)

    rss_before = _rss_mb()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    result = harness.run(comps, agent="trivial", seeds=n // CLONES, lite=True, store=store, max_concurrency=2,
                         progress=progress)
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    rows = result.attempts
    bad = rows[rows["status"] != "succeeded"]
    assert bad.empty and len(rows) == n and rows["attempt_id"].is_unique, bad[["attempt_id", "status", "error"]].head()
    ray.shutdown()
    driver_cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return dict(n=n, wall_s=wall, per_attempt_ms=wall / n * 1000, attempts_per_s=n / wall,
                peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, rss_before_mb=rss_before,
                rss_by_tenth_mb=rss_at, driver_cpu_ms_per_attempt=driver_cpu / n * 1000,
                bare_ms_per_attempt=per_attempt_bare * 1000,
                # two slots: each attempt holds one for 2 x the wall time per attempt
                overhead_ms_per_attempt=(2 * wall / n - per_attempt_bare) * 1000 if bare else None)


def fake_runs(root: Path, n: int) -> None:
    """n small finished runs (run.json and one attempt row each), as a store of a busy team looks."""
    import pyarrow as pa

    from harness.spec import AttemptResult, RunSpec, RunState
    from harness.store import ATTEMPTS_SCHEMA, _write_table

    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    for i in range(n):
        run_id = f"dummy-{i:05d}"
        state = RunState(run_id=run_id, spec=RunSpec(agent="dummy", competitions=[SOURCE], seeds=1), status="completed",
                         total=1, done=1, created_at=t0 + dt.timedelta(minutes=i))
        (root / run_id / "attempts").mkdir(parents=True)
        (root / run_id / "run.json").write_text(state.model_dump_json(indent=1))
        row = AttemptResult(run_id=run_id, attempt_id=f"{SOURCE}__dummy__s0", task_kind="competition", competition_id=SOURCE,
                            agent_id="dummy", seed=0, sandbox="local", isolation="bwrap", status="succeeded", started_at=state.created_at, ended_at=state.created_at)
        _write_table(root / run_id / "attempts.parquet", pa.Table.from_pylist([row.model_dump()], schema=ATTEMPTS_SCHEMA))


def listing(root: Path, n: int, repeats: int = 3) -> dict[str, float]:
    """Median seconds of listing a store of n runs: the CLI (`harness runs`, a fresh process each time) and
    `list_runs` in process, without an index (every run.json read) and with it."""
    from harness import run_index
    from harness.spec import RunState
    from harness.store import list_runs

    fake_runs(root, n)
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    index = root / run_index.INDEX_NAME

    def cli() -> float:
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "harness.cli", "runs", "--store", str(root), "--json"], env=env,
                             capture_output=True, text=True, check=True)
        took = time.perf_counter() - t0
        assert len(json.loads(out.stdout)) == n
        return took

    def cli_help() -> float:  # the floor: starting the CLI (its imports) and nothing else
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "harness.cli", "--help"], env=env, capture_output=True, check=True)
        return time.perf_counter() - t0

    def runs_command() -> None:  # `harness runs --json` in this process: the command without the CLI's start-up
        import contextlib
        import io

        from harness import cli

        with contextlib.redirect_stdout(io.StringIO()) as out:
            cli.runs(store=root, as_json=True)
        assert len(json.loads(out.getvalue())) == n

    def files_only() -> list[RunState]:  # what list_runs did before the index
        return sorted((RunState.model_validate_json((d / "run.json").read_text()) for d in root.iterdir()
                       if (d / "run.json").is_file()), key=lambda s: s.created_at, reverse=True)

    def timed(f: Any) -> float:
        t0 = time.perf_counter()
        f()
        return time.perf_counter() - t0

    cli_cold, cli_warm, cli_floor, command, files, fresh, memo = [], [], [], [], [], [], []
    for i in range(5 * repeats):  # interleaved, so the machine's other load falls on all alike
        if i < repeats:  # the CLI's start-up is seconds: fewer of those
            index.unlink(missing_ok=True)
            cli_cold.append(cli())  # no index: reads every run.json (and writes the index)
            cli_warm.append(cli())
            cli_floor.append(cli_help())
        files.append(timed(files_only))
        command.append(timed(runs_command))
        run_index._memo.clear()
        fresh.append(timed(lambda: list_runs(root)))  # a fresh process's first listing: the index file parsed
        memo.append(timed(lambda: list_runs(root)))  # a long-lived process (the service): the index kept parsed
    reads = run_index.reads
    list_runs(root)
    assert run_index.reads == reads, "the index was not used"
    med = statistics.median
    return dict(cli_no_index_s=med(cli_cold), cli_index_s=med(cli_warm), cli_help_s=med(cli_floor), runs_command_ms=med(command) * 1000,
                list_files_ms=med(files) * 1000,
                list_index_ms=med(fresh) * 1000, list_index_in_memory_ms=med(memo) * 1000)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000], help="attempts per run (multiples of 10; none: skip)")
    p.add_argument("--bare", type=int, default=30, help="attempts of the bare loop (0: skip)")
    p.add_argument("--runs", type=int, default=1000, help="runs in the store for the listing (0: skip)")
    p.add_argument("--one", type=int, default=0, help=argparse.SUPPRESS)  # internal: one size, in this process
    args = p.parse_args()
    if args.one:
        print("RESULT " + json.dumps(one_size(args.one, args.bare)), flush=True)
        return

    root = Path(tempfile.mkdtemp(prefix="harness-scale-"))
    env = {**os.environ, "HARNESS_DATA_DIR": os.environ.get("HARNESS_DATA_DIR", str(root / "data")),
           "HARNESS_WORK_DIR": str(root / "work"), "HARNESS_AGENTS_PATH": str(HERE / "agents"),
           "HARNESS_COMPETITIONS_PATH": str(root / "competitions"), "RAY_USAGE_STATS_ENABLED": "0",
           "PYTHONPATH": str(REPO)}
    (root / "competitions").mkdir()
    results = []
    for n in args.sizes:
        env["HARNESS_RUNS_DIR"] = str(root / f"runs-{n}")
        proc = subprocess.run([sys.executable, __file__, "--one", str(n), "--bare", str(args.bare)], env=env,
                              capture_output=True, text=True)
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if proc.returncode != 0 or line is None:
            sys.exit(f"the {n}-attempt run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        r = json.loads(line[len("RESULT "):])
        results.append(r)
        print(f"\n[{n} attempts] 10 competitions x {n // CLONES} seeds, trivial agent, 2 at a time")
        print(f"    wall {r['wall_s']:7.1f} s   {r['attempts_per_s']:5.1f} attempts/s   {r['per_attempt_ms']:6.1f} ms per attempt")
        print(f"    driver peak RSS {r['peak_rss_mb']:6.0f} MB (target < 1024 MB); before the run {r['rss_before_mb']:.0f} MB; "
              f"at each tenth: {r['rss_by_tenth_mb']}")
        print(f"    driver CPU per attempt {r['driver_cpu_ms_per_attempt']:6.1f} ms")
        if r["overhead_ms_per_attempt"] is not None:
            print(f"    one attempt holds one of the 2 slots for {2 * r['per_attempt_ms']:6.1f} ms; the bare loop (the same sandbox "
                  f"command and grader, no Ray, no store, one at a time) takes {r['bare_ms_per_attempt']:6.1f} ms: "
                  f"harness overhead {r['overhead_ms_per_attempt']:+6.1f} ms per attempt")
        shutil.rmtree(root / f"runs-{n}", ignore_errors=True)
    if len(results) > 1:
        small, big = results[0], results[-1]
        ratio = big["per_attempt_ms"] / small["per_attempt_ms"]
        print(f"\n[flatness] time per attempt at {big['n']} / at {small['n']}: {ratio:.2f}x (target <= 1.2x)")
    if args.runs:
        env["HARNESS_RUNS_DIR"] = str(root / "many")
        os.environ.update(env)
        sys.path.insert(0, str(REPO))
        r = listing(root / "many", args.runs)
        print(f"\n[listing] {args.runs} runs in the store (medians, interleaved: 3 of each CLI start, 15 of each in process)")
        print(f"    `harness runs --json` (a fresh process): no index {r['cli_no_index_s'] * 1000:6.0f} ms, "
              f"with the index {r['cli_index_s'] * 1000:6.0f} ms; `harness --help` (starting the CLI alone) "
              f"{r['cli_help_s'] * 1000:6.0f} ms")
        print(f"    `harness runs --json` in process (the command without the CLI's start-up, index in memory): "
              f"{r['runs_command_ms']:6.1f} ms")
        print(f"    list_runs: reading every run.json {r['list_files_ms']:6.1f} ms; the index, parsed {r['list_index_ms']:6.1f} ms; "
              f"the index kept in memory (the service) {r['list_index_in_memory_ms']:6.1f} ms")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

"""Server time to render the dashboard's heaviest pages.

    python benchmarks/bench_ui.py [--attempts 1000] [--runs 500] [--repeat 15]

Writes two synthetic stores with the store's own writer (`RunStore.write_attempt`,
`compact`, `write_state`, summary.json from `report.summarize`): one run of
`--attempts` attempts over the built-in competitions (with their real leaderboards,
so every plot draws a distribution), and a store of `--runs` finished runs. Then
renders the run page and the runs page through the standalone app in this process
(no network: the time is the server's) and prints the median and p90 of `--repeat`
renders after one warm-up, against the targets (300 ms and 200 ms) as a ratio.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TARGETS_MS = {"run page": 300.0, "runs page": 200.0}


def _attempt(run_id: str, cid: str, seed: int, rng: random.Random, thresholds: dict[str, float], lower: bool) -> object:
    from harness.spec import AttemptResult

    valid = rng.random() > 0.1
    lo, hi = sorted((thresholds["median"], thresholds["gold"]))
    span = (hi - lo) or 1.0
    score = rng.uniform(lo - span, hi + span * 0.2) if valid else None
    better = (lambda a, b: a <= b) if lower else (lambda a, b: a >= b)
    gold = valid and better(score, thresholds["gold"])
    silver = valid and not gold and better(score, thresholds["silver"])
    bronze = valid and not (gold or silver) and better(score, thresholds["bronze"])
    start = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=seed)
    return AttemptResult(
        run_id=run_id, attempt_id=f"{cid}__dummy__s{seed}", task_kind="competition", competition_id=cid, agent_id="dummy",
        seed=seed, sandbox="local", isolation="bwrap", status="succeeded", exit_code=0, started_at=start,
        ended_at=start + dt.timedelta(seconds=3), agent_seconds=3.0, grade_seconds=0.01, peak_memory_mb=120.0, node="bench",
        score=score, submission_exists=True, valid_submission=valid,
        invalid_reason=None if valid else "column 'target' has 3 empty/NaN value(s)",
        gold_threshold=thresholds["gold"], silver_threshold=thresholds["silver"], bronze_threshold=thresholds["bronze"],
        median_threshold=thresholds["median"], any_medal=gold or silver or bronze, gold_medal=gold, silver_medal=silver,
        bronze_medal=bronze, above_median=valid and (score < thresholds["median"] if lower else score > thresholds["median"]),
        is_lower_better=lower, artifacts_dir=f"artifacts/{cid}__dummy__s{seed}",
    )


def write_run(root: Path, run_id: str, competitions: list[str], seeds: int, rng: random.Random,
              created: dt.datetime) -> None:
    """One finished run of `len(competitions) * seeds` attempts, as `harness.run` leaves it."""
    from harness.grading import competition_thresholds
    from harness.registry import load_registry
    from harness.report import grading_report, summarize
    from harness.spec import RunSpec, RunState
    from harness.store import RunStore

    reg = load_registry()
    rs = RunStore(root, run_id)
    for cid in competitions:
        t = competition_thresholds(reg.competition(cid), lite=True)
        assert t is not None, cid
        th = {"gold": t.gold, "silver": t.silver, "bronze": t.bronze, "median": t.median}
        for seed in range(seeds):
            rs.write_attempt(_attempt(run_id, cid, seed, rng, th, t.lower_is_better))  # type: ignore[arg-type]
    rs.compact()
    spec = RunSpec(competitions=competitions, agent="dummy", seeds=seeds, lite=True)
    state = RunState(run_id=run_id, spec=spec, status="completed", created_at=created, total=len(competitions) * seeds,
                     done=len(competitions) * seeds)
    df = rs.attempts()
    rs.write_json("summary.json", summarize(state, df).model_dump(mode="json"))
    rs.write_json("grading_report.json", grading_report(df))
    rs.write_state(state)


def timed(client: object, url: str, repeat: int) -> tuple[list[float], list[float]]:
    """(wall ms, CPU ms of this process) of each of `repeat` GETs after one warm-up."""
    get = client.get  # type: ignore[attr-defined]
    r = get(url)
    assert r.status_code == 200, (url, r.status_code, r.text[:300])
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        r = get(url)
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        assert r.status_code == 200
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--attempts", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()

    from fastapi.testclient import TestClient

    from harness.registry import load_registry
    from harness.ui import standalone_app

    comps = sorted(c for c, cfg in load_registry().competitions.items() if cfg.source == "builtin")
    rng = random.Random(0)
    base = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    with tempfile.TemporaryDirectory(prefix="bench-ui-") as tmp:
        big, many = Path(tmp) / "big", Path(tmp) / "many"
        t0 = time.perf_counter()
        seeds = -(-args.attempts // len(comps))
        write_run(big, "2025-01-01T00-00-00-UTC_dummy_b1g000", comps, seeds, rng, base)
        for i in range(args.runs):
            write_run(many, f"2025-01-01T00-00-00-UTC_dummy_{i:06x}", comps[i % len(comps):][:1], 2, rng,
                      base + dt.timedelta(minutes=i))
        print(f"wrote the stores in {time.perf_counter() - t0:.1f} s: one run of {len(comps) * seeds} attempts "
              f"({len(comps)} competitions x {seeds} seeds), and {args.runs} runs")
        results = {}
        with TestClient(standalone_app(big)) as c:
            results["run page"] = timed(c, "/ui/runs/2025-01-01T00-00-00-UTC_dummy_b1g000", args.repeat)
        with TestClient(standalone_app(many)) as c:
            results["runs page"] = timed(c, "/ui/", args.repeat)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"load average {load:.1f} on {os.cpu_count()} cores (wall time grows with it; CPU time does not)")
        for name, (wall, cpu) in results.items():
            med, cmed = statistics.median(wall), statistics.median(cpu)
            p90 = sorted(wall)[int(0.9 * (len(wall) - 1))]
            target = TARGETS_MS[name]
            print(f"{name:10s} wall median {med:7.1f} ms  p90 {p90:7.1f} ms  CPU median {cmed:6.1f} ms  target {target:.0f} ms  "
                  f"target/wall {target / med:5.2f}x  {'OK' if med < target else 'OVER TARGET'}")


if __name__ == "__main__":
    main()

"""Where the time of `harness run --technique-tasks all --technique-level all` goes: CPU seconds per
attempt, split into preparation (planting), the agent's command and grading, for every technique task
and level of a split, without Ray and the sandbox (each agent command in a plain subprocess, one
thread per library as the sandbox sets it).

    python benchmarks/bench_techniques.py [--agent baseline] [--split lite] [--lite] [--sources a,b] [--tasks cv,missing]

CPU seconds (user + system, the agent's child processes included) do not depend on how busy the
machine is, unlike wall-clock seconds: on a shared machine compare these. Prints one JSON line per
attempt, then the totals per phase and per technique. Preparation is 0 for a task already cached in
$HARNESS_DATA_DIR (give a fresh one to measure a cold cache).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agent", default="baseline")
    p.add_argument("--split", default="lite")
    p.add_argument("--lite", action="store_true", help="the lite size of each competition")
    p.add_argument("--sources", default="", help="only these datasets (comma list; default all of the split's)")
    p.add_argument("--tasks", default="", help="only these technique tasks (comma list)")
    args = p.parse_args()

    import yaml

    from harness.registry import PACKAGE_DIR, read_competition_set
    from harness.spec import Settings
    from harness.technique import TECHNIQUE_ORDER, ensure_task_prepared, grade_outputs, task_levels, task_sources

    settings = Settings.from_env()
    folder = PACKAGE_DIR / "agents" / args.agent
    command = [sys.executable if c in ("python", "python3") else c
               for c in shlex.split(yaml.safe_load((folder / "config.yaml").read_text())["command"])]
    sources, tasks = set(filter(None, args.sources.split(","))), set(filter(None, args.tasks.split(",")))
    comps = read_competition_set(args.split)
    plan = [(n, s, lv) for n in TECHNIQUE_ORDER if not tasks or n in tasks
            for s in task_sources(n, comps, settings) if not sources or s in sources for lv in task_levels(n, "all")]
    scratch = Path(tempfile.mkdtemp(prefix="bench-techniques-"))
    totals: dict[str, float] = collections.defaultdict(float)
    per_task: dict[str, float] = collections.defaultdict(float)
    t_start = time.monotonic()
    for name, source, level in plan:
        c0, p0 = _children_cpu(), time.process_time()
        done = ensure_task_prepared(name, source, settings, args.lite, level)
        prep = time.process_time() - p0 + _children_cpu() - c0
        tmp = Path(tempfile.mkdtemp(dir=scratch))
        for sub in ("submission", "code", "logs"):
            (tmp / sub).mkdir()
        threads = "1"  # what the local sandbox sets for a 1-CPU agent
        env = dict(os.environ, DATA_DIR=str(done.public), SUBMISSION_DIR=str(tmp / "submission"), CODE_DIR=str(tmp / "code"),
                   LOGS_DIR=str(tmp / "logs"), HARNESS_TASK_KIND="technique", HARNESS_TECHNIQUE=name, HARNESS_SEED="0",
                   OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
        c0, w0 = _children_cpu(), time.monotonic()
        subprocess.run(command, cwd=folder, env=env, capture_output=True, timeout=900, check=False)
        agent, agent_wall = _children_cpu() - c0, time.monotonic() - w0
        outputs = {str(f.relative_to(tmp / "submission")): f.read_bytes() for f in (tmp / "submission").rglob("*") if f.is_file()}
        c0, p0 = _children_cpu(), time.process_time()
        g = grade_outputs(name, done.public, done.private, outputs, tmp / "grading")
        grade = time.process_time() - p0 + _children_cpu() - c0
        row = {"task": f"{name}.{level}.{source}", "prepare_cpu_s": round(prep, 2), "agent_cpu_s": round(agent, 2),
               "agent_wall_s": round(agent_wall, 2), "grade_cpu_s": round(grade, 2), "score": round(g.score, 3)}
        print(json.dumps(row), flush=True)
        for k in ("prepare_cpu_s", "agent_cpu_s", "agent_wall_s", "grade_cpu_s"):
            totals[k] += row[k]
        per_task[name] += agent
    print("per technique, agent CPU seconds:", json.dumps({k: round(v, 1) for k, v in per_task.items()}))
    print(f"TOTAL over {len(plan)} attempts:", json.dumps({k: round(v, 1) for k, v in totals.items()}),
          f"wall {time.monotonic() - t_start:.0f} s; load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

"""The README's technique-task table: the scripted baseline and the dummy agent on every technique task at
every level (easy, medium, hard), one seed, on the lite split, through `harness.run` (real Ray and sandboxes).

    python3 experiments/technique_levels.py [--store runs] [--agents baseline,dummy] [--split lite]
    python3 experiments/technique_levels.py --from-runs runs/<run id>,runs/<run id>   # table of recorded runs
    python3 experiments/technique_levels.py --direct   # no Ray, no sandbox: each agent's command in a subprocess

`--direct` runs the same agent code on the same prepared task folders and grades with the same graders,
only without Ray and the sandbox (for a quick table on a busy machine).

Prints one markdown table (mean score over the split's datasets per technique and level, and each agent's
mean per level) and the wall time of each agent's run, in seconds.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

LEVELS = ["easy", "medium", "hard"]


def run_agent(agent: str, split: str, store: Path) -> tuple[pd.DataFrame, float]:
    """One run of `agent` on every technique task and level; its attempts (with a `level` column) and its
    wall time in seconds."""
    import harness
    from harness.spec import technique_level_of

    t0 = time.monotonic()
    result = harness.run(split=split, agent=agent, lite=True, store=store, technique_tasks="all", technique_level="all")
    seconds = time.monotonic() - t0
    df = result.attempts.copy()
    df["level"] = df["attempt_id"].map(technique_level_of)
    return df, seconds


def run_direct(agent: str, split: str, scratch: Path) -> tuple[pd.DataFrame, float]:
    """Every technique task and level of the split, `agent`'s command run in a plain subprocess (its folder as
    working directory, the task's public folder as DATA_DIR); graded like a real attempt. Rows and seconds."""
    import os
    import shlex
    import subprocess
    import sys
    import tempfile

    from harness.registry import PACKAGE_DIR, read_competition_set
    from harness.spec import Settings
    import yaml

    from harness.technique import TECHNIQUE_ORDER, ensure_task_prepared, grade_outputs, task_levels, task_sources

    folder = PACKAGE_DIR / "agents" / agent
    command = shlex.split(yaml.safe_load((folder / "config.yaml").read_text())["command"])
    settings = Settings.from_env()
    comps = read_competition_set(split)
    rows, t0 = [], time.monotonic()
    for name in TECHNIQUE_ORDER:
        for source in task_sources(name, comps, settings):
            for level in task_levels(name, "all"):
                done = ensure_task_prepared(name, source, settings, True, level)
                with tempfile.TemporaryDirectory(dir=scratch) as tmp:
                    sub, code = Path(tmp) / "submission", Path(tmp) / "code"
                    sub.mkdir()
                    code.mkdir()
                    env = dict(os.environ, DATA_DIR=str(done.public), SUBMISSION_DIR=str(sub), CODE_DIR=str(code),
                               LOGS_DIR=tmp, HARNESS_TASK_KIND="technique", HARNESS_TECHNIQUE=name, HARNESS_SEED="0")
                    command = [sys.executable if c in ("python", "python3") else c for c in command]
                    subprocess.run(command, cwd=folder, env=env, capture_output=True, timeout=900, check=False)
                    outputs = {p.name: p.read_bytes() for p in sub.iterdir() if p.is_file()}
                    g = grade_outputs(name, done.public, done.private, outputs, Path(tmp) / "grading")
                rows.append({"technique": name, "competition_id": source, "level": level, "score": g.score,
                             "status": "succeeded"})
    return pd.DataFrame(rows), time.monotonic() - t0


def table(results: dict[str, pd.DataFrame]) -> str:
    """Markdown: one row per technique, one column per (agent, level): the mean score over datasets."""
    from harness.technique import TECHNIQUE_ORDER

    agents = list(results)
    head = "| technique | datasets | " + " | ".join(f"{a} {lv}" for a in agents for lv in LEVELS) + " |"
    lines = [head, "|" + "---|" * (2 + len(agents) * len(LEVELS))]
    for name in TECHNIQUE_ORDER:
        cells, n = [], 0
        for a in agents:
            df = results[a]
            for lv in LEVELS:
                g = df[(df["technique"] == name) & (df["level"] == lv)]
                n = max(n, len(g))
                cells.append("—" if g.empty else f"{g['score'].fillna(0.0).mean():.2f}")
        lines.append(f"| {name} | {n} | " + " | ".join(cells) + " |")
    means = [f"**{results[a][results[a]['level'] == lv]['score'].fillna(0.0).mean():.2f}**" for a in agents for lv in LEVELS]
    lines.append("| **mean** | | " + " | ".join(means) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", type=Path, default=Path("runs"))
    ap.add_argument("--agents", default="baseline,dummy")
    ap.add_argument("--split", default="lite")
    ap.add_argument("--direct", action="store_true", help="no Ray and no sandbox: agents' commands in subprocesses")
    ap.add_argument("--from-runs", default="", help="comma-separated run folders (store/run_id) to tabulate instead of running")
    args = ap.parse_args()
    results, times = {}, {}
    if args.from_runs:
        from harness.spec import technique_level_of
        from harness.store import RunStore

        for folder in (Path(f) for f in args.from_runs.split(",")):
            rs = RunStore(folder.parent, folder.name)
            df = rs.attempts()
            df["level"] = df["attempt_id"].map(technique_level_of)
            results[rs.read_state().spec.agent] = df
        print(table(results))
        return
    for agent in args.agents.split(","):
        if args.direct:
            args.store.mkdir(parents=True, exist_ok=True)
            results[agent], times[agent] = run_direct(agent, args.split, args.store)
        else:
            results[agent], times[agent] = run_agent(agent, args.split, args.store)
        statuses = results[agent]["status"].value_counts().to_dict()
        print(f"{agent}: {len(results[agent])} attempts in {times[agent]:.0f} s ({statuses})", flush=True)
    print()
    print(table(results))


if __name__ == "__main__":
    main()

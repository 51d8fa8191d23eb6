"""The README's technique-task table: the scripted baseline and the dummy agent on every technique task at
every level (easy, medium, hard), one seed, on the lite split, through `harness.run` (real Ray and sandboxes).

    python3 experiments/technique_levels.py [--store runs] [--agents baseline,dummy] [--split lite]
    python3 experiments/technique_levels.py --from-runs runs/<run id>,runs/<run id>   # table of recorded runs

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
        results[agent], times[agent] = run_agent(agent, args.split, args.store)
        statuses = results[agent]["status"].value_counts().to_dict()
        print(f"{agent}: {len(results[agent])} attempts in {times[agent]:.0f} s ({statuses})", flush=True)
    print()
    print(table(results))


if __name__ == "__main__":
    main()

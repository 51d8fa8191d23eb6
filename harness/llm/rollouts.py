"""A run's rollouts for training use: one record per attempt with its trajectory
(logs/trajectory.json, validated) and its outcome (status, score, medals, tokens, cost, hints).

    harness rollouts <run_id> [--format jsonl|parquet] [--output FILE]
    Client.get_rollouts(run_id)        # GET /runs/{run_id}/rollouts

An attempt whose trajectory is missing or malformed is still listed, with `trajectory` null
and `trajectory_error` saying why, so a training set never silently drops failures.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any, Optional

import typer
from pydantic import BaseModel

from harness.llm.trajectory import Trajectory, TrajectoryError, load_trajectory
from harness.store import RunNotFound, RunStore, default_store

#: the attempt columns copied into each rollout record
ROW_FIELDS = ("run_id", "attempt_id", "task_kind", "competition_id", "technique", "agent_id", "seed", "status", "score",
              "valid_submission", "any_medal", "above_median", "is_lower_better", "agent_seconds", "llm_calls",
              "input_tokens", "output_tokens", "cost_usd", "llm_limit_reached", "hints")


class Rollout(BaseModel):
    """One attempt's rollout record."""

    attempt: dict[str, Any]
    trajectory: Optional[Trajectory] = None
    trajectory_error: Optional[str] = None


def collect_rollouts(rs: RunStore) -> list[Rollout]:
    """Every attempt of the run (in attempt-id order) with its validated trajectory."""
    df = rs.attempts()
    out = []
    for _, r in df.sort_values("attempt_id").iterrows() if len(df) else []:
        attempt = {k: _plain(r[k]) for k in ROW_FIELDS if k in r}
        traj, err = None, None
        path = rs.artifacts_dir(str(r["attempt_id"])) / "logs" / "trajectory.json"
        if path.exists() or path.is_symlink():
            try:
                traj = load_trajectory(path)
            except TrajectoryError as e:
                err = str(e).replace(str(rs.dir) + "/", "")
        else:
            err = "no logs/trajectory.json (the agent writes none)"
        out.append(Rollout(attempt=attempt, trajectory=traj, trajectory_error=err))
    return out


def _plain(x: Any) -> Any:
    if hasattr(x, "item"):
        x = x.item()
    if isinstance(x, float) and math.isnan(x):
        return None
    return None if x is None or (not isinstance(x, (str, bool, int, float))) and str(x) in ("NaT", "<NA>") else x


def rollouts_jsonl(rollouts: list[Rollout]) -> str:
    """One JSON object a line."""
    return "".join(r.model_dump_json(exclude_none=True) + "\n" for r in rollouts)


def rollouts_parquet(rollouts: list[Rollout]) -> bytes:
    """A flat table: the attempt columns, `steps` (how many), and `trajectory` / `trajectory_error` as JSON text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = []
    for r in rollouts:
        traj = r.trajectory
        rows.append({**r.attempt, "model": traj.model if traj else None, "steps": len(traj.steps) if traj else None,
                     "trajectory": traj.model_dump_json(exclude_none=True) if traj else None,
                     "trajectory_error": r.trajectory_error})
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    return sink.getvalue()


def rollouts_command(
    run_id: str = typer.Argument(..., help="The run whose rollouts to export."),
    format: str = typer.Option("jsonl", "--format", help="jsonl (to stdout or --output) or parquet (to --output)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="File to write (parquet default: <run_id>.rollouts.parquet)."),
    store: Optional[Path] = typer.Option(None, "--store", envvar="HARNESS_RUNS_DIR", help="Run store (default ./runs)."),
) -> None:
    """Export a run's trajectories with their scores, one record per attempt (for training use)."""
    if format not in ("jsonl", "parquet"):
        typer.echo(f"error: --format {format!r}: choose jsonl or parquet", err=True)
        raise typer.Exit(2)
    rs = RunStore(store or default_store(), run_id)
    try:
        rs.read_state()
    except RunNotFound as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    records = collect_rollouts(rs)
    if format == "jsonl":
        text = rollouts_jsonl(records)
        if output is None:
            typer.echo(text, nl=False)
        else:
            output.write_text(text)
    else:
        output = output or Path(f"{run_id}.rollouts.parquet")
        output.write_bytes(rollouts_parquet(records))
    with_traj = sum(r.trajectory is not None for r in records)
    typer.echo(f"{len(records)} attempt(s), {with_traj} with a trajectory" + (f" -> {output}" if output else ""), err=True)


def as_records(rollouts: list[Rollout]) -> list[dict[str, Any]]:
    """JSON-ready dicts (the API's answer)."""
    return [json.loads(r.model_dump_json(exclude_none=True)) for r in rollouts]

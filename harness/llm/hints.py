"""`harness run ... --hints-from <run_id>`: the user's experiment (seed 002) — put an earlier run's
technique-task outputs and graded checks (and with `--hints rollouts` its trajectories) for the same
dataset into the instructions of each competition attempt, and record which hints it got.

Everything read here was written by an agent: files are read without following links and cut
to a few kilobytes each, so one hostile attempt cannot flood the next one's instructions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence

import pandas as pd

from harness.errors import RunError
from harness.llm.session import LLMSetupError, run_config
from harness.llm.trajectory import TrajectoryError, load_trajectory, read_agent_file
from harness.store import RunNotFound, RunStore

if TYPE_CHECKING:
    from harness.llm.session import LLMRunConfig
    from harness.spec import AgentConfig, AttemptSpec, RunSpec

MAX_FILE_CHARS = 4000  # one output file shown to the agent
MAX_TRAJECTORY_CHARS = 6000  # one trajectory, summarised
MAX_HINT_CHARS = 40000  # all hints of one competition


def llm_and_hints(spec: "RunSpec", agent: "AgentConfig", store_root: Path,
                  plan: Sequence["AttemptSpec"]) -> tuple[Optional["LLMRunConfig"], dict[str, tuple[str, str]]]:
    """The run's LLM settings (None for an agent without `llm`) and, with `spec.hints_from`, the
    hint text and sources per competition id. Raises the orchestrator's RunError for what the user must fix."""
    try:
        llm = run_config(agent.id, agent.llm, agent.llm_limits, model=spec.model, token_limit=spec.token_limit,
                         cost_limit=spec.cost_limit)
    except LLMSetupError as e:
        raise RunError(str(e)) from None
    if (spec.model or spec.token_limit is not None or spec.cost_limit is not None) and llm is None:
        raise RunError(f"--model, --token-limit and --cost-limit are for LLM agents; agent {agent.id!r} has no `llm:` in its config.yaml")
    hints: dict[str, tuple[str, str]] = {}
    if spec.hints_from:
        competitions = sorted({a.competition_id for a in plan if a.task_kind == "competition"})
        hints = collect_hints(store_root, spec.hints_from, competitions, rollouts=spec.hints == "rollouts")
    return llm, hints


def collect_hints(store_root: Path, run_id: str, competitions: Sequence[str], rollouts: bool = False) -> dict[str, tuple[str, str]]:
    """competition id -> (markdown appended to its instructions, JSON list of the sources used).
    Competitions the earlier run has nothing for get no entry."""
    rs = RunStore(store_root, run_id)
    try:
        rs.read_state()
    except RunNotFound as e:
        raise RunError(f"--hints-from: {e}") from None
    attempts = rs.attempts()
    grades = rs.technique_grades()
    tech = attempts[(attempts["task_kind"] == "technique") & (attempts["status"] == "succeeded")] if len(attempts) else attempts
    out: dict[str, tuple[str, str]] = {}
    for cid in competitions:
        rows = tech[tech["competition_id"] == cid] if len(tech) else tech
        if not len(rows):
            continue
        parts: list[str] = []
        sources: list[str] = []
        for _, r in rows.sort_values(["technique", "seed"]).iterrows():
            block = _hint_block(rs.dir / str(r["artifacts_dir"]), r, grades, rollouts)
            if sum(len(x) for x in parts) + len(block) > MAX_HINT_CHARS:
                break
            parts.append(block)
            sources.append(f"{run_id}/{r['attempt_id']}" + ("+rollout" if rollouts else ""))
        text = ("\n\n---\n\n# Hints from earlier technique tasks on this dataset\n\n"
                f"These come from run `{run_id}`: what an agent found when it studied this same data one question at a time, "
                "with how each answer was graded. Use what helps.\n\n" + "\n\n".join(parts) + "\n")
        out[cid] = (text, json.dumps(sources))
    return out


def _hint_block(art: Path, r: pd.Series, grades: pd.DataFrame, rollouts: bool) -> str:
    score = "—" if pd.isna(r["score"]) else f"{float(r['score']):.2f}"
    lines = [f"## {r['technique']} (score {score})", ""]
    g = grades[grades["attempt_id"] == r["attempt_id"]] if len(grades) else grades
    if len(g):
        lines.append("Graded checks:")
        for _, c in g.iterrows():
            mark = "passed" if bool(c["passed"]) else "failed"
            detail = f" — {str(c['detail'])[:200]}" if c["detail"] else ""
            lines.append(f"- {c['check']}: {mark} ({float(c['points']):g}/{float(c['max_points']):g}){detail}")
        lines.append("")
    sub = art / "submission"
    if sub.is_dir() and not sub.is_symlink():
        for p in sorted(sub.iterdir())[:5]:
            try:
                text = read_agent_file(p, 10**6).decode(errors="replace")
            except TrajectoryError:
                continue
            lines += [f"Output `{p.name}`:", "", "```", _cut(text, MAX_FILE_CHARS).replace("```", "'''"), "```", ""]
    if rollouts:
        lines += _rollout_lines(art / "logs" / "trajectory.json")
    return "\n".join(lines).rstrip()


def _rollout_lines(path: Path) -> list[str]:
    try:
        traj = load_trajectory(path)
    except TrajectoryError:
        return []
    lines: list[str] = ["What the agent did (its rollout, abridged):", ""]
    budget = MAX_TRAJECTORY_CHARS
    for step in traj.steps:
        if step.role == "system":
            continue
        said = step.content or ""
        calls = "; ".join(f"{c.name}({_cut(c.arguments, 300)})" for c in step.tool_calls)
        line = f"- {step.role}: {_cut(said, 400)}" + (f" [calls {calls}]" if calls else "")
        budget -= len(line)
        if budget < 0:
            lines.append("- ...")
            break
        lines.append(line.replace("```", "'''"))
    return lines + [""]


def _cut(text: str, n: int) -> str:
    text = text.strip()
    return text if len(text) <= n else text[:n] + f" ... [{len(text) - n} more characters]"


def hint_sources(row: dict[str, Any]) -> list[str]:
    """The sources recorded in an attempt row's `hints` column."""
    raw = row.get("hints")
    return list(json.loads(raw)) if isinstance(raw, str) and raw else []

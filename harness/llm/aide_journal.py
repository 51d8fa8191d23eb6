"""AIDE's journal (logs/aide/<exp>/journal.json, written by aideml) as a harness trajectory.

Each journal node becomes two steps: the assistant's plan with its code as a `run_python` tool
call, then the tool's result (the terminal output) with the node's metric, bug flag, analysis
and execution time in `metrics`. Nodes come in the order AIDE made them (`step`)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Optional

from harness.llm.trajectory import Outcome, Step, ToolCall, Trajectory

MAX_OUTPUT_CHARS = 20000


def best_node(journal: dict[str, Any]) -> Optional[dict[str, Any]]:
    """The node AIDE would call best: not buggy, with a metric, best by its direction (None if none)."""
    scored: list[tuple[float, dict[str, Any]]] = []
    for n in journal.get("nodes", []):
        value = _metric(n)
        if not n.get("is_buggy") and value is not None:
            maximize = (n.get("metric") or {}).get("maximize", True) is not False
            scored.append((value if maximize else -value, n))
    # the first of equals wins, as in AIDE
    return max(scored, key=lambda t: t[0])[1] if scored else None


def _metric(node: dict[str, Any]) -> Optional[float]:
    value = (node.get("metric") or {}).get("value")
    return float(value) if isinstance(value, (int, float)) else None


def journal_to_trajectory(journal: dict[str, Any], *, agent: str = "aide", model: Optional[str] = None,
                          settings: Optional[dict[str, Any]] = None, attempt_id: Optional[str] = None,
                          competition_id: Optional[str] = None, outcome: Optional[Outcome] = None) -> Trajectory:
    """Convert a loaded journal.json (a dict) into a Trajectory."""
    parents = journal.get("node2parent") or {}
    nodes = sorted(journal.get("nodes", []), key=lambda n: (n.get("step") is None, n.get("step") or 0))
    steps: list[Step] = []
    for n in nodes:
        when = _utc(n.get("ctime"))
        ended = _utc((n.get("ctime") or 0) + (n.get("exec_time") or 0)) if n.get("ctime") else None
        call_id = f"node-{n.get('id', len(steps))}"
        steps.append(Step(index=len(steps), role="assistant", content=n.get("plan"), started_at=when, ended_at=when,
                          tool_calls=[ToolCall(id=call_id, name="run_python", arguments=json.dumps({"code": n.get("code", "")}))],
                          metrics={"node_id": n.get("id"), "parent_id": parents.get(n.get("id")), "aide_step": n.get("step")}))
        out = "".join(n.get("_term_out") or n.get("term_out") or [])
        if len(out) > MAX_OUTPUT_CHARS:
            out = out[: MAX_OUTPUT_CHARS // 2] + "\n...\n" + out[-MAX_OUTPUT_CHARS // 2:]
        steps.append(Step(index=len(steps), role="tool", tool_call_id=call_id, content=out, started_at=when, ended_at=ended,
                          metrics={"metric": _metric(n), "maximize": (n.get("metric") or {}).get("maximize"),
                                   "is_buggy": n.get("is_buggy"), "exc_type": n.get("exc_type"),
                                   "exec_time_s": n.get("exec_time"), "analysis": n.get("analysis")}))
    times = [s.started_at for s in steps if s.started_at] + [s.ended_at for s in steps if s.ended_at]
    return Trajectory(agent=agent, attempt_id=attempt_id, competition_id=competition_id, model=model, settings=settings or {},
                      started_at=min(times) if times else None, ended_at=max(times) if times else None, steps=steps,
                      outcome=outcome or Outcome(steps=len(nodes)))


def _utc(ts: Any) -> Optional[dt.datetime]:
    return dt.datetime.fromtimestamp(float(ts), dt.timezone.utc) if isinstance(ts, (int, float)) else None

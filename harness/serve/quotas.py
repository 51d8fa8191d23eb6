"""Per-user quotas beside the run cap: attempts running at once, and agent CPU-seconds per day.

* `max_concurrent_attempts`: every live run of a user reserves its `max_concurrency`
  (a run started through the server always has one: the server sets it to what the
  quota leaves when the request names none); a new run that would go over answers 429.
* `cpu_seconds_per_day`: the agent seconds of the user's attempts that ended in the last
  24 hours, each times the CPUs its agent was given; a new run (or a resume) while the
  sum is at or over the quota answers 429. A run already going is not cut short.

Defaults come from `harness serve` (`--max-attempts-per-user`, `--cpu-seconds-per-day`;
None = unlimited); a user's entry in the tokens file may set their own.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Optional

from pydantic import BaseModel, ConfigDict

from harness.registry import Registry
from harness.spec import RunState, utcnow
from harness.store import RunStore

DAY = dt.timedelta(hours=24)


class Quotas(BaseModel):
    """One user's limits; None is unlimited."""

    model_config = ConfigDict(frozen=True)

    max_concurrent_attempts: Optional[int] = None
    cpu_seconds_per_day: Optional[float] = None


class QuotaExceeded(Exception):
    """A quota a new run would break: `quota` names it, the message says what to do."""

    def __init__(self, quota: str, message: str) -> None:
        super().__init__(message)
        self.quota = quota
        self.message = message


def reserved_attempts(live: list[RunState]) -> int:
    """Attempts the user's live runs may run at once (a run without a cap counts as its size)."""
    return sum(s.spec.max_concurrency or max(1, s.total) for s in live)


def cpu_seconds_used(root: Path | str, runs: list[RunState], registry: Registry, now: Optional[dt.datetime] = None) -> float:
    """Agent CPU-seconds of these runs' attempts that ended in the 24 hours before `now`."""
    now = now or utcnow()
    since = now - DAY
    used = 0.0
    for state in runs:
        if state.updated_at < since:
            continue  # nothing of it ended in the window
        agent = registry.agents.get(state.spec.agent)
        cpus = agent.resources.cpus if agent is not None else 1.0
        df = RunStore(root, state.run_id).attempts()
        if not len(df):
            continue
        recent = df[df["ended_at"].notna() & (df["ended_at"] >= since)]
        used += float(recent["agent_seconds"].fillna(0).sum()) * cpus
    return used


def check_quotas(quotas: Quotas, user: str, root: Path | str, own_runs: list[RunState], live: list[RunState],
                 registry: Registry, requested_concurrency: Optional[int]) -> Optional[int]:
    """Raise QuotaExceeded for a run `user` may not start now; else the run's concurrency cap
    (None when attempts are unlimited): the request's, or all the quota leaves."""
    if quotas.cpu_seconds_per_day is not None:
        used = cpu_seconds_used(root, own_runs, registry)
        if used >= quotas.cpu_seconds_per_day:
            raise QuotaExceeded(
                "cpu_seconds_per_day",
                f"user {user!r} used {used:.1f} agent CPU-seconds in the last 24 h and the quota "
                f"cpu_seconds_per_day is {quotas.cpu_seconds_per_day:g}; wait for earlier attempts to leave the "
                "24-hour window, or ask the server's operator for a larger quota")
    if quotas.max_concurrent_attempts is None:
        return requested_concurrency
    left = quotas.max_concurrent_attempts - reserved_attempts(live)
    if left <= 0:
        raise QuotaExceeded(
            "max_concurrent_attempts",
            f"user {user!r} already has {reserved_attempts(live)} attempt(s) allowed to run at once in "
            f"{len(live)} live run(s) and the quota max_concurrent_attempts is {quotas.max_concurrent_attempts}; "
            "wait for a run to finish or cancel one (POST /runs/{id}/cancel)")
    if requested_concurrency is not None and requested_concurrency > left:
        raise QuotaExceeded(
            "max_concurrent_attempts",
            f"max_concurrency={requested_concurrency} is over what the quota max_concurrent_attempts "
            f"({quotas.max_concurrent_attempts}) leaves user {user!r} now ({left}); ask for at most {left}")
    return requested_concurrency or left

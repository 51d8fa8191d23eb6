"""Pydantic models shared by every module: what a run is, what an attempt is,
what a sandbox returns, what a grade says, and the row that lands in Parquet."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, field_validator, model_serializer

from harness.llm.models import LLMAccess, LLMLimits, LLMUsage  # LLM agents (issue 13)

SandboxKind = Literal["local", "docker", "auto"]
Isolation = Literal["bwrap", "docker", "none"]
TaskKind = Literal["competition", "technique"]
AttemptStatus = Literal["succeeded", "agent_failed", "timeout", "oom", "infra_error", "cancelled"]
RunStatus = Literal["queued", "running", "completed", "failed", "cancelled"]

#: statuses that count as a finished attempt; a resume re-runs anything else
FINAL_STATUSES: frozenset[str] = frozenset({"succeeded", "agent_failed", "timeout", "oom", "infra_error"})

MAX_TIME_LIMIT_S = 30 * 24 * 3600.0  # an attempt's time limit is finite and at most 30 days

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Resources(Frozen):
    """What one attempt may use: CPU cores, memory in GB, GPUs."""

    cpus: float = Field(1.0, gt=0, le=4096, allow_inf_nan=False)
    memory_gb: float = Field(4.0, gt=0, le=1_000_000, allow_inf_nan=False)
    gpus: int = Field(0, ge=0)
    pids: int = Field(4096, gt=0)
    shm_gb: float = Field(1.0, gt=0, le=1024, allow_inf_nan=False)
    #: the writable dirs' cap (GB): /home/submission, /home/code, /home/logs together, and /tmp on its own
    disk_gb: float = Field(4.0, gt=0, le=1024, allow_inf_nan=False)


class AgentConfig(BaseModel):  # type: ignore[no-redef]  # the pydantic plugin clashes with the mlebench field `kwargs`
    """An agent folder's config.yaml: mlebench keys kept, plus what harness needs."""

    model_config = ConfigDict(frozen=True, extra="allow")

    id: str
    dir: Path
    command: Optional[str | list[str]] = None
    resources: Resources = Resources()
    time_limit_s: float = Field(3600.0, gt=0, le=MAX_TIME_LIMIT_S, allow_inf_nan=False)
    network: bool = False
    description: str = ""
    # mlebench keys
    start: Optional[str] = None
    dockerfile: Optional[str] = None
    kwargs: dict[str, Any] = Field(default_factory=dict)
    kwargs_type: Optional[str] = None
    env_vars: dict[str, str] = Field(default_factory=dict)
    privileged: bool = False
    # LLM agents: access through the node's gateway (no network needed), per-attempt limits
    llm: bool | LLMAccess = False
    llm_limits: LLMLimits = LLMLimits()


class CompetitionConfig(BaseModel):
    """A competition folder's config.yaml (mlebench format) plus where it was found."""

    model_config = ConfigDict(frozen=True, extra="allow")

    id: str
    name: str
    competition_type: str = "simple"
    awards_medals: bool = True
    description: str = "description.md"
    dataset: dict[str, str] = Field(default_factory=dict)
    grader: dict[str, str]
    preparer: str
    dir: Path
    source: Literal["builtin", "path", "mlebench"] = "builtin"
    # harness extensions, all optional
    kind: str = "tabular"
    metric: str = ""
    lower_is_better: Optional[bool] = None


class Settings(Frozen):
    """Where things live on a node. Passed into every Ray task so that a worker on
    another node resolves the same names without relying on the driver's environment."""

    data_dir: Path
    competitions_path: tuple[Path, ...] = ()
    agents_path: tuple[Path, ...] = ()
    work_dir: Path
    #: the Ray node the driver runs on; on any other node the node's own HARNESS_DATA_DIR and
    #: HARNESS_WORK_DIR (its own disk) take the place of the driver's
    driver_node: Optional[str] = None

    def on_this_node(self) -> "Settings":
        """These settings as they apply in a Ray task on the current node (see `driver_node`)."""
        import os

        import ray

        if self.driver_node is None or not ray.is_initialized():
            return self
        if ray.get_runtime_context().get_node_id() == self.driver_node:
            return self
        update = {field: Path(os.environ[var]).expanduser()
                  for field, var in (("data_dir", "HARNESS_DATA_DIR"), ("work_dir", "HARNESS_WORK_DIR")) if os.environ.get(var)}
        return self.model_copy(update=update) if update else self

    @classmethod
    def from_env(cls) -> "Settings":
        import os

        def paths(var: str) -> tuple[Path, ...]:
            return tuple(Path(p).expanduser() for p in os.environ.get(var, "").split(os.pathsep) if p)

        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "harness"
        return cls(
            data_dir=Path(os.environ.get("HARNESS_DATA_DIR", cache / "data")).expanduser(),
            competitions_path=paths("HARNESS_COMPETITIONS_PATH"),
            agents_path=paths("HARNESS_AGENTS_PATH"),
            work_dir=Path(os.environ.get("HARNESS_WORK_DIR", cache / "work")).expanduser(),
        )


class RunSpec(Frozen):
    """Everything that defines a run. Stored as run.json; resume re-reads it."""

    competitions: list[str] = Field(default_factory=list)
    agent: str
    seeds: int = Field(1, ge=1, le=1000)
    lite: bool = False
    sandbox: SandboxKind = "local"
    max_concurrency: Optional[int] = Field(None, ge=1)
    max_retries: int = Field(2, ge=0, le=20)
    time_limit_s: Optional[float] = Field(None, gt=0, le=MAX_TIME_LIMIT_S, allow_inf_nan=False)
    technique_tasks: list[str] = Field(default_factory=list)
    # difficulty of the technique tasks: easy (the original tasks), medium, hard, or all three
    technique_level: Literal["easy", "medium", "hard", "all"] = "easy"
    engineering_tasks: list[str] = Field(default_factory=list)
    include_competitions: bool = True
    owner: Optional[str] = None
    #: custom Ray resources every attempt (and its data preparation) needs, to steer attempts onto
    #: nodes started with `ray start --resources='{"name": N}'`
    ray_resources: dict[str, float] = Field(default_factory=dict)

    @field_validator("ray_resources")
    @classmethod
    def _ray_resources(cls, v: dict[str, float]) -> dict[str, float]:
        for name, amount in v.items():
            if not (0 < amount < 1e6) or name in ("CPU", "GPU", "memory"):
                raise ValueError(f"ray resource {name}={amount}: give a custom resource name and an amount > 0")
        return v
    # LLM agents: model and limits for this run; hints from an earlier run's outputs
    model: Optional[str] = None
    token_limit: Optional[int] = Field(None, ge=0)
    cost_limit: Optional[float] = Field(None, ge=0)
    hints_from: Optional[str] = None
    hints: Literal["outputs", "rollouts"] = "outputs"
    #: the operator's grant: an agent whose config says `network: true` runs only with it
    allow_network: bool = False

    @field_validator("agent")
    @classmethod
    def _agent_id(cls, v: str) -> str:
        if not _ID.match(v):
            raise ValueError(f"agent id {v!r} may only hold letters, digits and . _ - /")
        return v


def new_run_id(agent: str, now: Optional[dt.datetime] = None) -> str:
    now = now or utcnow()
    return f"{now:%Y-%m-%dT%H-%M-%S}-UTC_{agent.replace('/', '-')}_{secrets.token_hex(3)}"


class AttemptSpec(Frozen):
    """One (task, agent, seed). `attempt_id` is stable so resume is a set difference."""

    run_id: str
    attempt_id: str
    task_kind: TaskKind = "competition"
    competition_id: str
    technique: Optional[str] = None
    technique_level: Optional[str] = None  # technique tasks: easy | medium | hard
    agent_id: str
    seed: int
    lite: bool = False
    sandbox: SandboxKind = "local"
    time_limit_s: float
    resources: Resources

    @property
    def task_id(self) -> str:
        return self.attempt_id.split("__", 1)[0]


def attempt_id_for(task_id: str, agent: str, seed: int) -> str:
    return f"{task_id}__{agent.replace('/', '-')}__s{seed}"


TECHNIQUE_LEVELS = ("easy", "medium", "hard")


def technique_level_of(attempt_id: str) -> Optional[str]:
    """The difficulty level a technique attempt's id carries (`cv.hard.synthetic__baseline__s0` -> `hard`);
    None for competitions and engineering tasks."""
    parts = attempt_id.split("__", 1)[0].split(".")
    return parts[1] if len(parts) == 3 and parts[1] in TECHNIQUE_LEVELS else None


class SandboxResult(Frozen):
    """What a sandbox reports after one attempt ran (or failed to run)."""

    status: AttemptStatus
    exit_code: Optional[int] = None
    isolation: Isolation
    agent_seconds: float = 0.0
    peak_memory_mb: Optional[float] = None
    error: Optional[str] = None


class AttemptOutcome(Frozen):
    """What an attempt's Ray task returns to the driver."""

    attempt_id: str
    status: AttemptStatus
    exit_code: Optional[int] = None
    isolation: Isolation = "none"
    sandbox: str = "local"
    started_at: dt.datetime
    ended_at: dt.datetime
    agent_seconds: float = 0.0
    peak_memory_mb: Optional[float] = None
    node: str = ""
    error: Optional[str] = None
    # the attempt's artifacts as a tar.gz, only when it ran on a node other than the driver's
    artifacts_tar: Optional[bytes] = None
    # the node uploaded the artifacts to the run's object store itself (a node other than the driver's)
    artifacts_uploaded: bool = False
    # the files the grader needs (name -> bytes); the grader may run on yet another node
    outputs: dict[str, bytes] = Field(default_factory=dict)
    llm: Optional[LLMUsage] = None  # what an LLM agent used, as the gateway counted it
    hints: Optional[str] = None  # JSON list of the hints the attempt's instructions got


class MedalReport(BaseModel):
    """What a grade says about one submission in mlebench's terms: its score, the leaderboard's
    thresholds and medals, whether it was valid (and why not). Shared, in this order, by
    `GradeReport` (what a grader returns) and `CompetitionReport` (grading_report.json)."""

    competition_id: str
    score: Optional[float] = None
    gold_threshold: Optional[float] = None
    silver_threshold: Optional[float] = None
    bronze_threshold: Optional[float] = None
    median_threshold: Optional[float] = None
    any_medal: bool = False
    gold_medal: bool = False
    silver_medal: bool = False
    bronze_medal: bool = False
    above_median: bool = False
    submission_exists: bool = False
    valid_submission: bool = False
    is_lower_better: Optional[bool] = None
    invalid_reason: Optional[str] = None


class GradeReport(Frozen, MedalReport):
    """mlebench's per-competition report, plus why a submission was invalid."""

    created_at: dt.datetime = Field(default_factory=utcnow)
    submission_path: str = ""
    grade_seconds: float = 0.0
    # technique/engineering tasks: one entry per check
    checks: list["CheckResult"] = Field(default_factory=list)
    # sub-scores of a competition whose grade module has `grade_details` (group -> score), e.g. "lead:V1"
    details: dict[str, float] = Field(default_factory=dict)


class CheckResult(Frozen):
    """One scored check of a technique or engineering task."""

    check: str
    points: float
    max_points: float
    passed: bool
    detail: str = ""


class AttemptResult(Frozen):
    """One row of the attempts table (types fixed by `store.ATTEMPTS_SCHEMA`)."""

    run_id: str
    attempt_id: str
    task_kind: TaskKind
    competition_id: str
    technique: Optional[str] = None
    agent_id: str
    seed: int
    sandbox: str
    isolation: Isolation
    status: AttemptStatus
    exit_code: Optional[int] = None
    tries: int = 1
    started_at: Optional[dt.datetime] = None
    ended_at: Optional[dt.datetime] = None
    agent_seconds: Optional[float] = None
    grade_seconds: Optional[float] = None
    peak_memory_mb: Optional[float] = None
    node: str = ""
    score: Optional[float] = None
    submission_exists: bool = False
    valid_submission: bool = False
    invalid_reason: Optional[str] = None
    gold_threshold: Optional[float] = None
    silver_threshold: Optional[float] = None
    bronze_threshold: Optional[float] = None
    median_threshold: Optional[float] = None
    any_medal: bool = False
    gold_medal: bool = False
    silver_medal: bool = False
    bronze_medal: bool = False
    above_median: bool = False
    is_lower_better: Optional[bool] = None
    error: Optional[str] = None
    artifacts_dir: str = ""
    # LLM agents (null for others): counted by the gateway; the limit that cut the agent off
    llm_calls: Optional[int] = None
    input_tokens: Optional[int] = None
    output_tokens: Optional[int] = None
    cost_usd: Optional[float] = None
    llm_limit_reached: Optional[str] = None
    hints: Optional[str] = None


#: the columns of an attempt's row that its GradeReport fills (the rest come from the attempt and its sandbox)
GRADE_COLUMNS: frozenset[str] = frozenset(set(GradeReport.model_fields) & set(AttemptResult.model_fields) - {"competition_id"})


class RunState(BaseModel):
    """run.json: the spec plus the run's life so far."""

    run_id: str
    spec: RunSpec
    owner: Optional[str] = None
    status: RunStatus = "queued"
    created_at: dt.datetime = Field(default_factory=utcnow)
    updated_at: dt.datetime = Field(default_factory=utcnow)
    total: int = 0
    done: int = 0
    failed: int = 0
    error: Optional[str] = None
    driver: Optional[str] = None  # host:pid of the process driving it, to tell a crashed run from a live one

    @field_validator("created_at", "updated_at")
    @classmethod
    def _utc(cls, v: dt.datetime) -> dt.datetime:
        """A time without a zone (a hand-edited run.json) is UTC, so runs always sort by it."""
        return v.replace(tzinfo=dt.timezone.utc) if v.tzinfo is None else v


class CompetitionSummary(BaseModel):
    """One competition of a run: its attempts over seeds (score mean ± SEM over the seeds that scored)."""

    competition_id: str
    attempts: int
    valid: int
    score_mean: Optional[float] = None
    score_sem: Optional[float] = None
    any_medal: int = 0
    above_median: int = 0
    median_threshold: Optional[float] = None
    is_lower_better: Optional[bool] = None
    scores: list[Optional[float]] = Field(default_factory=list)  # by seed
    medals: list[str] = Field(default_factory=list)  # by seed: gold, silver, bronze or ""


class TechniqueSummary(BaseModel):
    """One technique or engineering task of a run: score in [0, 1], mean ± SEM over its attempts (missing = 0)."""

    technique: str
    level: Optional[str] = None  # technique tasks' difficulty (easy | medium | hard)
    attempts: int
    score_mean: Optional[float] = None
    score_sem: Optional[float] = None


class CompetitionReport(MedalReport):
    """One attempt in mlebench's grading report format."""

    attempt_id: str
    seed: int
    created_at: str = ""
    submission_path: str = ""

    @model_serializer(mode="wrap")
    def _keys_in_report_order(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """grading_report.json names the attempt right after the competition, as it always did
        (the shared fields come first in the model)."""
        out = handler(self)
        head = [k for k in ("competition_id", "attempt_id", "seed") if k in out]
        return {**{k: out[k] for k in head}, **{k: v for k, v in out.items() if k not in head}}


class GradingReport(BaseModel):
    """grading_report.json: mlebench's aggregate report (`mlebench grade` output)."""

    total_runs: int
    total_runs_with_submissions: int
    total_valid_submissions: int
    total_medals: int
    total_gold_medals: int
    total_silver_medals: int
    total_bronze_medals: int
    total_above_median: int
    competition_reports: list[CompetitionReport]


class RunSummary(BaseModel):
    """summary.json: the aggregates the CLI and the API show."""

    run_id: str
    agent_id: str
    status: RunStatus
    total: int
    done: int
    by_status: dict[str, int]
    valid_submission_rate: Optional[float] = None
    valid_submission_sem: Optional[float] = None
    any_medal_rate: Optional[float] = None
    any_medal_sem: Optional[float] = None
    above_median_rate: Optional[float] = None
    technique_score: Optional[float] = None
    above_median_sem: Optional[float] = None
    competitions: list[CompetitionSummary] = Field(default_factory=list)
    techniques: list[TechniqueSummary] = Field(default_factory=list)
    llm: Optional[dict[str, Any]] = None  # LLM agents: calls, tokens, cost (totals, mean ± SEM), overall and per competition


GradeReport.model_rebuild()

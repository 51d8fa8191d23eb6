"""Runs: plan attempts, prepare data, execute agents in sandboxes, grade, record.

The driver (`run`) keeps at most `max_concurrency` attempts in flight as Ray
tasks with the agent's resources, grades each finished attempt in a separate
Ray task, and writes its row to the store the moment it is graded. A run is
resumable at any point: attempts whose row is in the store are not run again.

Nothing here assumes the driver and the attempt share a disk: data is prepared
on the attempt's node, the agent folder travels as an object, and an attempt on
another node sends its artifacts back as a tarball.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import re
import shutil
import socket
import tarfile
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import pandas as pd

from harness.registry import Registry, RegistryError, load_registry, read_competition_set
from harness.report import grading_report, summarize
from harness.spec import (
    FINAL_STATUSES,
    AgentConfig,
    AttemptOutcome,
    AttemptResult,
    AttemptSpec,
    GradeReport,
    RunSpec,
    RunState,
    RunSummary,
    SandboxResult,
    Settings,
    attempt_id_for,
    new_run_id,
    utcnow,
)
from harness.store import RunStore, default_store

SECRET = re.compile(r"\$\{\{\s*secrets\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
MAX_REMOTE_ARTIFACTS_MB = 512


class RunError(ValueError):
    """The run cannot start as asked; the message says what to change."""


@dataclass
class RunProgress:
    """Counts shown by progress bars; passed to the `progress` callback on every change."""

    total: int
    done: int = 0
    running: int = 0
    failed: int = 0
    started_at: float = dataclasses.field(default_factory=time.monotonic)


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    status: str
    attempts: pd.DataFrame
    summary: RunSummary


@dataclass(frozen=True)
class _Context:
    """What every attempt task of a run shares."""

    settings: Settings
    store_root: str
    driver_node: str
    agent_bundle: Any  # ObjectRef of the agent folder's tar.gz
    agent_bundle_sha: str
    agent_env: dict[str, str]


# ====================================================================== planning


def resolve_spec(
    registry: Registry,
    *,
    competitions: Sequence[str] | str | None = None,
    split: Optional[str] = None,
    agent: str = "dummy",
    **options: Any,
) -> RunSpec:
    """Turn user input into a RunSpec, checking every name against the registry."""
    ids: list[str] = []
    if isinstance(competitions, str):
        # one id, or a competition set: a split name ("lite") or a split file ("experiments/splits/low.txt")
        ids += [competitions] if competitions in registry.competitions else read_competition_set(competitions)
    elif competitions:
        ids += list(competitions)
    if split:
        ids += read_competition_set(split)
    ids = list(dict.fromkeys(ids))
    registry.agent(agent)
    techniques = list(options.get("technique_tasks") or []) + list(options.get("engineering_tasks") or [])
    if not ids and not techniques:
        raise RunError("nothing to run: give competitions (-c ID), a split (--split lite), or technique tasks")
    for cid in ids:
        registry.competition(cid)
    if techniques:
        from harness.technique import validate_task_names

        validate_task_names(options.get("technique_tasks") or [], options.get("engineering_tasks") or [])
    return RunSpec(competitions=ids, agent=agent, **options)


def plan_attempts(spec: RunSpec, run_id: str, registry: Registry) -> list[AttemptSpec]:
    """Every attempt of the run, in a stable order."""
    agent = registry.agent(spec.agent)
    limit = spec.time_limit_s or agent.time_limit_s
    common = dict(run_id=run_id, agent_id=spec.agent, lite=spec.lite, sandbox=spec.sandbox,
                  time_limit_s=limit, resources=agent.resources)
    out = []
    if spec.include_competitions or not (spec.technique_tasks or spec.engineering_tasks):
        for cid in spec.competitions:
            for seed in range(spec.seeds):
                out.append(AttemptSpec(attempt_id=attempt_id_for(cid, spec.agent, seed), competition_id=cid, seed=seed, **common))
    if spec.technique_tasks or spec.engineering_tasks:
        from harness.technique import plan_technique_attempts

        out += plan_technique_attempts(spec, common)
    return out


# ====================================================================== the driver


def run(
    competitions: Sequence[str] | str | None = None,
    *,
    split: Optional[str] = None,
    agent: str = "dummy",
    seeds: int = 1,
    lite: bool = False,
    sandbox: str = "local",
    max_concurrency: Optional[int] = None,
    max_retries: int = 2,
    time_limit_s: Optional[float] = None,
    technique_tasks: Sequence[str] | bool | str = (),
    engineering_tasks: Sequence[str] | str = (),
    store: Path | str | None = None,
    resume: Optional[str] = None,
    owner: Optional[str] = None,
    run_id: Optional[str] = None,
    address: Optional[str] = None,
    progress: Optional[Callable[[RunProgress], None]] = None,
    cancel_event: Optional[threading.Event] = None,
    on_start: Optional[Callable[[str], None]] = None,
) -> RunResult:
    """Run an agent on competitions (and/or technique tasks) and record every attempt.

    `competitions` is a list of ids, or a split name / split file; `split` adds a
    split. With `resume=<run_id>` the stored spec is used and only missing
    attempts run. Returns when every attempt has a row (or the run was
    cancelled through `cancel_event` / Ctrl-C, which leaves it resumable).
    """
    root = Path(store) if store is not None else default_store()
    settings = Settings.from_env()
    registry = load_registry(settings)
    if resume:
        rs = RunStore(root, resume)
        state = rs.read_state()
        _refuse_if_live(state)
        spec = state.spec
    else:
        from harness.technique import expand_task_selection

        tt, et = expand_task_selection(technique_tasks, engineering_tasks)
        spec = resolve_spec(
            registry, competitions=competitions, split=split, agent=agent, seeds=seeds, lite=lite, sandbox=sandbox,
            max_concurrency=max_concurrency, max_retries=max_retries, time_limit_s=time_limit_s,
            technique_tasks=tt, engineering_tasks=et, owner=owner,
            include_competitions=not (tt or et),
        )
        rs = RunStore(root, run_id or new_run_id(spec.agent))
        state = RunState(run_id=rs.run_id, spec=spec, owner=owner)
    agent_cfg = registry.agent(spec.agent)
    agent_env = agent_env_vars(agent_cfg)
    plan = plan_attempts(resolve_sandbox(spec, agent_cfg), rs.run_id, registry)
    state.total = len(plan)
    state.status = "running"
    state.error = None
    state.driver = f"{socket.gethostname()}:{os.getpid()}"
    rs.write_state(state)
    if on_start:
        on_start(rs.run_id)
    existing = rs.attempts()
    finished = set(existing.loc[existing["status"].isin(FINAL_STATUSES), "attempt_id"]) if len(existing) else set()
    todo = [a for a in plan if a.attempt_id not in finished]
    prog = RunProgress(total=len(plan), done=len(plan) - len(todo),
                       failed=int((existing["status"].isin(FINAL_STATUSES - {"succeeded"})).sum()) if len(existing) else 0)
    interrupted: Optional[BaseException] = None
    try:
        if todo:
            _init_ray(address)
            check_resources(agent_cfg, spec)
            _execute(rs, spec, todo, agent_cfg, agent_env, settings, prog, progress, cancel_event)
        state.status = "cancelled" if cancel_event is not None and cancel_event.is_set() else "completed"
    except KeyboardInterrupt as e:
        state.status, interrupted = "cancelled", e
    except Exception as e:
        state.status, state.error = "failed", f"{type(e).__name__}: {e}"
        interrupted = e
    return _finish(rs, state, interrupted)


def _finish(rs: RunStore, state: RunState, interrupted: Optional[BaseException]) -> RunResult:
    rs.compact()
    rs.compact_score_details()
    attempts = rs.attempts()
    state.done = int(attempts["status"].isin(FINAL_STATUSES).sum()) if len(attempts) else 0
    state.failed = int(attempts["status"].isin(FINAL_STATUSES - {"succeeded"}).sum()) if len(attempts) else 0
    summary = summarize(state, attempts, rs.technique_grades())
    rs.write_json("summary.json", summary.model_dump(mode="json"))
    rs.write_json("grading_report.json", grading_report(attempts))
    rs.write_state(state)
    if interrupted is not None:
        raise interrupted
    return RunResult(run_id=rs.run_id, run_dir=rs.dir, status=state.status, attempts=attempts, summary=summary)


def resolve_sandbox(spec: RunSpec, agent: AgentConfig) -> RunSpec:
    """`auto` becomes docker when an engine answers and the agent's image can be had, else local.
    Refuses what the chosen sandbox cannot do: docker without an engine or base image, GPUs in the local sandbox."""
    kind = spec.sandbox
    if kind in ("auto", "docker"):
        from harness.sandbox.docker import DockerSandbox

        why = DockerSandbox.available()
        if kind == "auto":
            kind = "local" if why else "docker"
        elif why:
            raise RunError(why)
    if agent.resources.gpus and kind == "local":
        raise RunError(f"agent {agent.id!r} asks for {agent.resources.gpus} GPU(s) and the local sandbox gives none: "
                       "use --sandbox docker on a node with GPUs, or set `resources.gpus: 0` in its config.yaml")
    return spec if kind == spec.sandbox else spec.model_copy(update={"sandbox": kind})


def _refuse_if_live(state: RunState) -> None:
    if state.status == "running" and state.driver and driver_alive(state.driver):
        raise RunError(f"run {state.run_id} is still running (driver {state.driver}); cancel it first or wait")


def driver_alive(driver: str) -> bool:
    """Whether the process that drives a run (`host:pid`) is alive, as far as this host can tell."""
    host, _, pid = driver.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another host's driver: assume alive
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def agent_env_vars(agent: AgentConfig) -> dict[str, str]:
    """The agent's env_vars with `${{ secrets.NAME }}` filled from the driver's environment."""
    env = {}
    for key, value in agent.env_vars.items():
        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in os.environ:
                raise RunError(f"agent {agent.id!r} needs the secret {name} (env_vars.{key}); export {name}=... and retry")
            return os.environ[name]

        env[key] = SECRET.sub(sub, str(value))
    if agent.kwargs:
        import json

        env["HARNESS_AGENT_KWARGS"] = json.dumps(agent.kwargs)
    return env


def _init_ray(address: Optional[str]) -> None:
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    address = address or os.environ.get("RAY_ADDRESS")
    if address and address != "local":
        ray.init(address=address, logging_level="WARNING", log_to_driver=False)
    else:
        # "local": always a fresh embedded instance, never a `ray start` cluster that happens to run here
        ray.init(address="local", include_dashboard=False, logging_level="ERROR", log_to_driver=False)


def check_resources(agent: AgentConfig, spec: RunSpec) -> None:
    """Refuse at once what no node could ever schedule (Ray would wait forever)."""
    import ray

    res = agent.resources
    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    fits = [n for n in nodes if n.get("CPU", 0) >= res.cpus and n.get("GPU", 0) >= res.gpus]
    if not fits:
        biggest = max((n.get("CPU", 0) for n in nodes), default=0)
        gpus = max((n.get("GPU", 0) for n in nodes), default=0)
        raise RunError(
            f"agent {agent.id!r} asks for {res.cpus:g} CPU(s) and {res.gpus} GPU(s); the largest node has "
            f"{biggest:g} CPU(s) and {gpus:g} GPU(s). Lower `resources` in its config.yaml or add nodes"
        )


def _bundle_agent(agent: AgentConfig) -> tuple[bytes, str]:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for p in sorted(agent.dir.rglob("*")):
            if "__pycache__" in p.parts or not p.is_file():
                continue
            tar.add(p, arcname=str(p.relative_to(agent.dir)))
    data = buf.getvalue()
    return data, hashlib.sha256(data).hexdigest()[:16]


def _execute(rs: RunStore, spec: RunSpec, todo: list[AttemptSpec], agent: AgentConfig, agent_env: dict[str, str],
             settings: Settings, prog: RunProgress, progress: Optional[Callable[[RunProgress], None]],
             cancel_event: Optional[threading.Event]) -> None:
    import ray

    bundle, sha = _bundle_agent(agent)
    ctx = _Context(settings=settings, store_root=str(rs.root.resolve()), driver_node=ray.get_runtime_context().get_node_id(),
                   agent_bundle=ray.put(bundle), agent_bundle_sha=sha, agent_env=agent_env)
    res = agent.resources
    attempt_task = _attempt_task.options(num_cpus=res.cpus, num_gpus=res.gpus, max_retries=0)
    prep: dict[tuple[str, str, bool], Any] = {}
    for a in todo:
        key = (a.task_kind, a.task_id if a.task_kind == "technique" else a.competition_id, a.lite)
        if key not in prep:
            prep[key] = _prepare_task.remote(a, settings)
    prep_of = lambda a: prep[(a.task_kind, a.task_id if a.task_kind == "technique" else a.competition_id, a.lite)]  # noqa: E731

    # default: enough in flight to fill every CPU twice over, so the driver never holds thousands of refs
    cpus = sum(n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive"))
    limit = spec.max_concurrency or max(2, 2 * int(cpus / max(res.cpus, 0.01)))
    graders = _grader_pool(max(1, min(4, int(cpus // 8))))
    queue = deque((a, 1) for a in todo)
    inflight: dict[Any, tuple[str, AttemptSpec, int, Optional[AttemptOutcome]]] = {}
    running = 0

    def notify() -> None:
        prog.running = running
        if progress:
            progress(prog)

    def record(a: AttemptSpec, tries: int, outcome: AttemptOutcome, report: Optional[GradeReport]) -> None:
        row = _row(a, tries, outcome, report, rs)
        rs.write_attempt(row, report.checks if report else ())
        rs.write_score_details(row, report.details if report else {})
        prog.done += 1
        prog.failed += row.status != "succeeded"

    try:
        while queue or inflight:
            while queue and running < limit and not (cancel_event and cancel_event.is_set()):
                a, tries = queue.popleft()
                ref = attempt_task.remote(a, ctx, prep_of(a))
                inflight[ref] = ("attempt", a, tries, None)
                running += 1
            notify()
            if cancel_event is not None and cancel_event.is_set():
                raise KeyboardInterrupt
            if not inflight:
                continue
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=0.5)
            for ref in ready:
                kind, a, tries, outcome = inflight.pop(ref)
                if kind == "attempt":
                    running -= 1
                    outcome = _get_outcome(ref, a)
                    if outcome.status == "infra_error" and tries <= spec.max_retries:
                        queue.appendleft((a, tries + 1))
                        continue
                    if outcome.artifacts_tar:
                        _unpack(outcome.artifacts_tar, rs.artifacts_dir(a.attempt_id))
                    if outcome.status in ("infra_error", "cancelled"):
                        record(a, tries, outcome, None)
                    else:
                        grader = graders[prog.done % len(graders)]
                        inflight[grader.grade.remote(a, settings, outcome.outputs)] = ("grade", a, tries, outcome)
                else:
                    assert outcome is not None
                    try:
                        report = ray.get(ref)
                    except Exception as e:  # the grader's worker died: the harness failed, not the agent
                        record(a, tries, outcome.model_copy(update={"status": "infra_error", "error": f"grading failed: {e}"}), None)
                        continue
                    record(a, tries, outcome, report)
        notify()
    except KeyboardInterrupt:
        _cancel_inflight(rs, inflight, record)
        notify()
        raise


_GRADERS: dict[str, list[Any]] = {}


def _grader_pool(n: int) -> list[Any]:
    """Grader actors, kept for the life of this driver's Ray job so that later runs in the
    same process (a notebook, the service) skip their start-up."""
    import ray

    ctx = ray.get_runtime_context()
    pool = _GRADERS.setdefault(f"{ctx.get_node_id()}:{ctx.get_job_id()}", [])  # a new Ray instance, a new pool
    while len(pool) < n:
        pool.append(_Grader.remote())
    return pool[:n]


def _get_outcome(ref: Any, a: AttemptSpec) -> AttemptOutcome:
    import ray

    try:
        return ray.get(ref)
    except Exception as e:  # worker or node died, object lost: infrastructure
        now = utcnow()
        return AttemptOutcome(attempt_id=a.attempt_id, status="infra_error", started_at=now, ended_at=now,
                              error=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")


def _cancel_inflight(rs: RunStore, inflight: dict, record: Callable) -> None:
    """Stop running attempts cleanly: ask first (the sandbox kills its process tree), then force."""
    import ray

    attempts = {ref: v for ref, v in inflight.items() if v[0] == "attempt"}
    for ref in attempts:
        ray.cancel(ref, force=False)
    ready, not_ready = ray.wait(list(attempts), num_returns=len(attempts), timeout=15) if attempts else ([], [])
    for ref in not_ready:
        ray.cancel(ref, force=True)
    now = utcnow()
    for ref, (_, a, tries, _) in attempts.items():
        record(a, tries, AttemptOutcome(attempt_id=a.attempt_id, status="cancelled", started_at=now, ended_at=now,
                                        error="cancelled before it finished; `harness run --resume` runs it again"), None)


def _row(a: AttemptSpec, tries: int, o: AttemptOutcome, r: Optional[GradeReport], rs: RunStore) -> AttemptResult:
    fields: dict[str, Any] = dict(
        run_id=a.run_id, attempt_id=a.attempt_id, task_kind=a.task_kind, competition_id=a.competition_id,
        technique=a.technique, agent_id=a.agent_id, seed=a.seed, sandbox=o.sandbox, isolation=o.isolation,
        status=o.status, exit_code=o.exit_code, tries=tries, started_at=o.started_at, ended_at=o.ended_at,
        agent_seconds=o.agent_seconds, peak_memory_mb=o.peak_memory_mb, node=o.node, error=o.error,
        artifacts_dir=str(Path("artifacts") / a.attempt_id),
    )
    if r is not None:
        fields.update(r.model_dump(include={
            "score", "submission_exists", "valid_submission", "invalid_reason", "gold_threshold", "silver_threshold",
            "bronze_threshold", "median_threshold", "any_medal", "gold_medal", "silver_medal", "bronze_medal",
            "above_median", "is_lower_better", "grade_seconds"}))
    return AttemptResult(**fields)


def _unpack(data: bytes, dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(dest, filter="data")


# ====================================================================== Ray tasks

import ray  # noqa: E402  (the tasks below are Ray remote functions)


@ray.remote(num_cpus=1, max_retries=1)
def _prepare_task(a: AttemptSpec, settings: Settings) -> Optional[str]:
    """Prepare one task's data on some node. Returns an error message, or None."""
    from harness.tasks import backend_for

    try:
        backend_for(a).prepare(a, settings)
        return None
    except Exception as e:
        return f"{type(e).__name__}: {e}"


@ray.remote(num_cpus=0, max_restarts=2, max_task_retries=1)
class _Grader:
    """Grades attempts, one Ray (actor) task per attempt, in a process that lives as long as
    the driver's Ray job (see `_grader_pool`). Plain tasks without CPUs would land on fresh workers that Ray reaps when idle
    (above its soft worker limit), paying the imports of pandas and the graders each time."""

    def grade(self, a: AttemptSpec, settings: Settings, outputs: dict[str, bytes]) -> GradeReport:
        from harness.tasks import backend_for

        return backend_for(a).grade(a, settings, outputs)


@ray.remote
def _attempt_task(a: AttemptSpec, ctx: _Context, prep_error: Optional[str]) -> AttemptOutcome:
    return execute_attempt(a, ctx, prep_error)


def execute_attempt(a: AttemptSpec, ctx: _Context, prep_error: Optional[str]) -> AttemptOutcome:
    """The body of an attempt's Ray task: data on this node, the agent in its sandbox, outputs back."""
    from harness.sandbox.base import SandboxJob, agent_command, get_sandbox
    from harness.tasks import VALIDATE_SCRIPT, backend_for, registry_for

    started = utcnow()
    node_id = ray.get_runtime_context().get_node_id()
    host = socket.gethostname()
    base = dict(attempt_id=a.attempt_id, sandbox=a.sandbox, node=host)

    def infra(msg: str) -> AttemptOutcome:
        return AttemptOutcome(**base, status="infra_error", started_at=started, ended_at=utcnow(), error=msg)

    same_node = node_id == ctx.driver_node
    attempt_dir = (Path(ctx.store_root) / a.run_id / "artifacts" / a.attempt_id) if same_node \
        else ctx.settings.work_dir / a.run_id / a.attempt_id
    try:
        backend = backend_for(a)
        try:
            # the data must be on this node; a failed up-front preparation is tried again here
            task = backend.prepare(a, ctx.settings)
        except Exception as e:
            return infra(f"preparing the task's data failed: {type(e).__name__}: {e}" + (f" (first try: {prep_error})" if prep_error else ""))
        if attempt_dir.exists():
            shutil.rmtree(attempt_dir)  # a retried attempt starts clean
        attempt_dir.mkdir(parents=True)
        (attempt_dir / "instructions.md").write_text(task.instructions)
        (attempt_dir / ".validate_submission.sh").write_text(VALIDATE_SCRIPT)
        (attempt_dir / ".validate_submission.sh").chmod(0o755)
        agent = registry_for(ctx.settings).agent(a.agent_id)
        agent_dir = _materialize_agent(ctx)
        command = agent_command(agent)
        job = SandboxJob(
            run_id=a.run_id, attempt_id=a.attempt_id, command=command, agent_dir=agent_dir, data_dir=task.public,
            attempt_dir=attempt_dir, resources=a.resources, time_limit_s=a.time_limit_s, network=agent.network,
            env={"COMPETITION_ID": a.competition_id, "TASK_ID": a.task_id, "HARNESS_SEED": str(a.seed),
                 "HARNESS_TASK_KIND": a.task_kind, "HARNESS_TECHNIQUE": a.technique or "",
                 "TIME_LIMIT_SECS": str(int(a.time_limit_s)), **ctx.agent_env},
        )
        sandbox = get_sandbox(a.sandbox)
        cancel = threading.Event()
        try:
            result = sandbox.run(job, cancel)
        except KeyboardInterrupt:  # ray.cancel: the sandbox already killed its tree on the way out
            cancel.set()
            result = SandboxResult(status="cancelled", isolation="none", error="cancelled")
        finally:
            sandbox.attempt_cleanup(job)
        outputs = backend.outputs(attempt_dir)
        tar = None if same_node else _pack(attempt_dir)
        return AttemptOutcome(**base, status=result.status, exit_code=result.exit_code, isolation=result.isolation,
                              started_at=started, ended_at=utcnow(), agent_seconds=result.agent_seconds,
                              peak_memory_mb=result.peak_memory_mb, error=result.error, artifacts_tar=tar, outputs=outputs)
    except RegistryError as e:
        return infra(str(e))
    except Exception as e:
        return infra(f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}")
    finally:
        if not same_node:
            shutil.rmtree(attempt_dir, ignore_errors=True)


def _materialize_agent(ctx: _Context) -> Path:
    """This node's copy of the agent folder, unpacked once per content hash."""
    dest = ctx.settings.work_dir / "agents" / ctx.agent_bundle_sha
    if dest.is_dir():
        return dest
    data = ray.get(ctx.agent_bundle) if not isinstance(ctx.agent_bundle, bytes) else ctx.agent_bundle
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(tmp, filter="data")
    try:
        tmp.rename(dest)
    except OSError:  # another worker won the race
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _pack(folder: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for p in sorted(folder.rglob("*")):
            if p.is_file() and p.stat().st_size < MAX_REMOTE_ARTIFACTS_MB * 1024**2:
                tar.add(p, arcname=str(p.relative_to(folder)))
    return buf.getvalue()

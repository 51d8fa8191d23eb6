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

import contextlib
import dataclasses
import hashlib
import io
import logging
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
from typing import Any, Callable, Iterator, Optional, Sequence, cast

import pandas as pd

from harness.data_views import public_view
from harness.errors import RunError as RunError  # re-exported (callers import it from here)
from harness.errors import DrivenElsewhere
from harness.llm.hints import llm_and_hints
from harness.llm.session import AttemptLLM
from harness.registry import Registry, RegistryError, load_registry
from harness.run_reports import record_attempt_report, write_run_report
from harness.report import summarize
from harness.runspec import RunInput, RunRequestLike, to_run_spec
from harness.spec import (
    FINAL_STATUSES,
    GRADE_COLUMNS,
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
from harness.objstore import StoreError, open_remote
from harness.safe_files import extract_tar
from harness.safe_files import tar_tree
from harness.sandbox.local import network_refusal
from harness.sandbox.backends import get_sandbox
from harness.sandbox.base import Bind, SandboxJob, agent_command
from harness.sandbox.docker import DockerSandbox
from harness.store import DriverLock, RunLocked, RunStore, local_root, open_store
from harness.tasks import VALIDATE_SCRIPT, backend_for
from harness.validate import sample_submission_env
from harness.technique import plan_technique_attempts

SECRET = re.compile(r"\$\{\{\s*secrets\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
MAX_REMOTE_ARTIFACTS_MB = 512
MAX_ARTIFACT_FILES = 10_000




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
    agent: AgentConfig  # by value: an agent found only on the driver's HARNESS_AGENTS_PATH runs on any node
    llm: Any = None  # LLMRunConfig when the agent calls an LLM (issue 13)
    hints: Any = None  # competition_id -> (instructions text, sources), from --hints-from
    store_uri: Optional[str] = None  # an object store: attempts on other nodes upload their artifacts there


# ====================================================================== planning


def resolve_spec(registry: Registry, **given: Any) -> RunSpec:
    """Turn user input (RunInput fields) into a RunSpec, checking every name against the registry."""
    given.pop("include_competitions", None)  # derived by the parser: competitions run unless only tasks are named
    return to_run_spec(registry, given)


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
        out += plan_technique_attempts(spec, common)
    return out


# ====================================================================== the driver


def run(
    competitions: Sequence[str] | str | RunSpec | RunInput | None = None,
    *,
    spec: Optional[RunRequestLike] = None,
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
    technique_level: str = "easy",
    store: Path | str | None = None,
    resume: Optional[str] = None,
    owner: Optional[str] = None,
    run_id: Optional[str] = None,
    address: Optional[str] = None,
    progress: Optional[Callable[[RunProgress], None]] = None,
    cancel_event: Optional[threading.Event] = None,
    on_start: Optional[Callable[[str], None]] = None,
    ray_resources: Optional[dict[str, float]] = None,
    model: Optional[str] = None,
    token_limit: Optional[int] = None,
    cost_limit: Optional[float] = None,
    hints_from: Optional[str] = None,
    hints: str = "outputs",
    allow_network: bool = False,
) -> RunResult:
    """Run an agent on competitions (and/or technique tasks) and record every attempt.

    `competitions` is a list of ids, or a split name / split file; `split` adds a
    split. With `resume=<run_id>` the stored spec is used and only missing
    attempts run. Returns when every attempt has a row (or the run was
    cancelled through `cancel_event` / Ctrl-C, which leaves it resumable).
    """
    root = open_store(store, write=True)  # an object store (s3://...) must answer and take a write before anything runs
    settings = Settings.from_env()
    _check_dirs(local_root(root), settings)
    registry = load_registry(settings)
    if resume:
        rs = RunStore(root, resume)
        state = rs.read_state()
        _refuse_if_live(state)
        spec = state.spec
        if allow_network and not spec.allow_network:
            spec = state.spec = spec.model_copy(update={"allow_network": True})
    else:
        if spec is None and isinstance(competitions, (RunSpec, RunInput)):
            spec, competitions = competitions, None
        given: RunRequestLike = spec if spec is not None else RunInput(
            competitions=list(competitions) if competitions is not None and not isinstance(competitions, str) else competitions,
            split=split, agent=agent, seeds=seeds, lite=lite, sandbox=sandbox,
            max_concurrency=max_concurrency, max_retries=max_retries, time_limit_s=time_limit_s,
            technique_tasks=technique_tasks if isinstance(technique_tasks, (bool, str)) else list(technique_tasks),
            engineering_tasks=engineering_tasks if isinstance(engineering_tasks, str) else list(engineering_tasks), owner=owner,
            ray_resources=dict(ray_resources or {}), model=model, token_limit=token_limit, cost_limit=cost_limit,
            hints_from=hints_from, hints=hints, allow_network=allow_network,
            technique_level=technique_level)
        spec = to_run_spec(registry, given)
        owner = owner or spec.owner
        rs = RunStore(root, run_id or new_run_id(spec.agent))
        # a run the service recorded as queued keeps that record (its created_at included)
        queued = rs.read_state() if rs.exists() else None
        state = queued if queued is not None and queued.status == "queued" else RunState(run_id=rs.run_id, spec=spec, owner=owner)
        state.spec, state.owner = spec, owner
    agent_cfg = registry.agent(spec.agent)
    _check_network_grant(agent_cfg, spec)
    if agent_cfg.model_extra:
        import sys

        print(f"warning: {agent_cfg.dir / 'config.yaml'}: unknown key(s) {', '.join(sorted(agent_cfg.model_extra))} "
              "ignored (a typo?)", file=sys.stderr)
    agent_env = agent_env_vars(agent_cfg)
    plan = plan_attempts(resolve_sandbox(spec, agent_cfg), rs.run_id, registry)

    llm_cfg, hint_map = llm_and_hints(spec, agent_cfg, cast(Path, root), plan)  # RunStore takes a store URI too
    state.total = len(plan)
    state.status = "running"
    state.error = None
    state.driver = f"{socket.gethostname()}:{os.getpid()}"
    on_cluster = (address or os.environ.get("RAY_ADDRESS") or "local") != "local"
    if on_cluster:  # a cluster that refuses this client, or cannot hold the agent, is refused before any run is written
        _init_ray(address)
        check_resources(agent_cfg, spec)
    lock = _claim_driver(rs)
    rs.write_state(state)
    if on_start:
        on_start(rs.run_id)
    existing = rs.attempts()
    finished = set(existing.loc[existing["status"].isin(FINAL_STATUSES), "attempt_id"]) if len(existing) else set()
    todo = [a for a in plan if a.attempt_id not in finished]
    prog = RunProgress(total=len(plan), done=len(plan) - len(todo),
                       failed=int((existing["status"].isin(FINAL_STATUSES - {"succeeded"})).sum()) if len(existing) else 0)
    del plan, existing, finished  # issue 15 (scale): from here the driver holds what is left to run, and counters
    interrupted: Optional[BaseException] = None
    try:
        if todo:
            if not on_cluster:  # the embedded Ray starts only when there is something to run
                _init_ray(address)
                check_resources(agent_cfg, spec)
            _execute(rs, spec, todo, agent_cfg, agent_env, settings, prog, progress, cancel_event, llm_cfg, hint_map)
        state.status = "cancelled" if cancel_event is not None and cancel_event.is_set() else "completed"
    except KeyboardInterrupt as e:
        state.status, interrupted = "cancelled", e
    except Exception as e:
        state.status, state.error = "failed", f"{type(e).__name__}: {e}"
        interrupted = e
    try:
        return _finish(rs, state, interrupted)
    finally:
        lock.release()


def _check_dirs(root: Path, settings: Settings) -> None:
    """Refuse up front a store or data dir that cannot hold anything (a file, /proc, read-only)."""
    for what, d, env in (("run store", root, "--store / HARNESS_RUNS_DIR"), ("data dir", settings.data_dir, "HARNESS_DATA_DIR"),
                         ("work dir", settings.work_dir, "HARNESS_WORK_DIR")):
        try:
            d.mkdir(parents=True, exist_ok=True)
            probe = d / f".probe-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            raise RunError(f"the {what} {d} is not a writable directory ({e.strerror}): point {env} elsewhere") from None


def _check_network_grant(agent: AgentConfig, spec: RunSpec) -> None:
    """Network is the operator's grant (`--allow-network`), never the agent's own choice."""
    if not agent.network:
        return
    if not spec.allow_network:
        raise RunError(f"agent {agent.id!r} asks for network (`network: true` in {agent.dir / 'config.yaml'}) and this run "
                       "does not grant it: run with --allow-network (harness.run(allow_network=True)) or set `network: false`")
    if spec.sandbox == "local":
        why = network_refusal()
        if why:
            raise RunError(why)


def _claim_driver(rs: RunStore) -> DriverLock:
    """One driver per run, atomically: a second driver of the same run stops here with one line."""
    try:
        return rs.claim_driver()
    except RunLocked as e:
        raise DrivenElsewhere(str(e)) from None


def _finish(rs: RunStore, state: RunState, interrupted: Optional[BaseException]) -> RunResult:
    rs.compact()
    rs.compact_score_details()
    attempts = rs.attempts()
    state.done = int(attempts["status"].isin(FINAL_STATUSES).sum()) if len(attempts) else 0
    state.failed = int(attempts["status"].isin(FINAL_STATUSES - {"succeeded"}).sum()) if len(attempts) else 0
    if state.status == "completed" and len(attempts) and (attempts["status"] == "infra_error").all():
        state.status = "failed"  # nothing ran: the harness failed, not the agent
        state.error = state.error or "every attempt failed for infrastructure reasons (see the error column)"
    summary = summarize(state, attempts, rs.technique_grades())
    rs.write_json("summary.json", summary.model_dump(mode="json"))
    write_run_report(rs, attempts)  # mlebench's grading_report.json
    rs.write_state(state)
    if interrupted is not None:
        raise interrupted
    return RunResult(run_id=rs.run_id, run_dir=rs.dir, status=state.status, attempts=attempts, summary=summary)


def resolve_sandbox(spec: RunSpec, agent: AgentConfig) -> RunSpec:
    """`auto` becomes docker when an engine answers and the agent's image can be had, else local.
    Refuses what the chosen sandbox cannot do: docker without an engine or base image, GPUs in the local sandbox."""
    kind = spec.sandbox
    if kind in ("auto", "docker"):
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
        def sub(m: re.Match[str], key: str = key) -> str:
            name = m.group(1)
            if name not in os.environ:
                raise RunError(f"agent {agent.id!r} needs the secret {name} (env_vars.{key}); export {name}=... and retry")
            return os.environ[name]

        env[key] = SECRET.sub(sub, str(value))
    if agent.kwargs:
        import json

        env["HARNESS_AGENT_KWARGS"] = json.dumps(agent.kwargs)
    return env


_AUTH_REFUSED = ("the Ray cluster at {address} refused this client: it uses token authentication. "
                 "Set RAY_AUTH_MODE=token and the cluster's token in RAY_AUTH_TOKEN "
                 "(or RAY_AUTH_TOKEN_PATH), as in the README's cluster section")


def _init_ray(address: Optional[str]) -> None:
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    address = address or os.environ.get("RAY_ADDRESS")
    if address and address != "local":
        _probe_gcs(address)
        with _quiet_stderr() as said:  # Ray's C++ client repeats each failed connection try on fd 2
            try:
                ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
                return
            except Exception as e:
                chain: list[str] = []
                cause: Optional[BaseException] = e  # Ray wraps the GCS's refusal (AuthenticationError) in a ConnectionError
                while cause is not None and len(chain) < 5:
                    chain.append(f"{type(cause).__name__} {cause}")
                    cause = cause.__cause__ or cause.__context__
                why = " ".join(chain) + said()
                if "auth" in why.lower():
                    raise RunError(_AUTH_REFUSED.format(address=address)) from None
                raise RunError(f"could not connect to the Ray cluster at {address} ({chain[0][:300]}): is it running "
                               "(`ray status --address ...`), and is the address host:port of its GCS?") from None
    else:
        # "local": always a fresh embedded instance, never a `ray start` cluster that happens to run here
        ray.init(address="local", include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)


def _probe_gcs(address: str) -> None:
    """Refuse at once an address where nothing listens (Ray itself would retry for minutes)."""
    m = re.fullmatch(r"(?:ray://)?\[?([^\[\]/]+?)\]?:(\d+)/?", address)
    if not m:
        return  # "auto" and other forms Ray resolves itself
    try:
        socket.create_connection((m.group(1), int(m.group(2))), timeout=10).close()
    except OSError as e:
        raise RunError(f"nothing answers at the Ray address {address} ({e.strerror or e}): start the cluster "
                       "(`ray up cluster.yaml` or `ray start --head`) or fix --address / RAY_ADDRESS") from None
    if address.startswith("ray://"):
        return  # Ray Client: its own handshake
    # one GCS call: a cluster that refuses this client's token says so at once, where ray.init
    # would retry for about 20 s before giving up with the same refusal
    from ray._raylet import GcsClient  # type: ignore[attr-defined]  # a Cython module without stubs

    try:
        GcsClient(address=f"{m.group(1)}:{m.group(2)}")
    except Exception as e:
        if "auth" in f"{type(e).__name__} {e}".lower():
            raise RunError(_AUTH_REFUSED.format(address=address)) from None
        # anything else (a slow GCS, another kind of server): ray.init decides, with its retries


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[Callable[[], str]]:
    """File descriptor 2 into a temporary file for the block; yields a function returning what was written."""
    import sys
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)

        def said() -> str:
            tmp.seek(0)
            return tmp.read()[-4000:].decode(errors="replace")

        try:
            yield said
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def check_resources(agent: AgentConfig, spec: RunSpec) -> None:
    """Refuse at once what no node could ever schedule (Ray would wait forever)."""
    import ray

    res = agent.resources
    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]  # type: ignore[no-untyped-call]
    fits = [n for n in nodes if n.get("CPU", 0) >= res.cpus and n.get("GPU", 0) >= res.gpus
            and all(n.get(k, 0) >= v for k, v in spec.ray_resources.items())]
    biggest_gb = max((n.get("memory", 0) for n in nodes), default=0) / 1024**3
    if fits and nodes and all(n.get("memory", 0) / 1024**3 < res.memory_gb for n in fits) and biggest_gb:
        raise RunError(f"agent {agent.id!r} asks for memory_gb: {res.memory_gb:g} and the largest node has "
                       f"{biggest_gb:.1f} GB for tasks: lower `resources.memory_gb` in its config.yaml or add a bigger node")
    if not fits:
        biggest = max((n.get("CPU", 0) for n in nodes), default=0)
        gpus = max((n.get("GPU", 0) for n in nodes), default=0)
        if spec.ray_resources and any(n.get("CPU", 0) >= res.cpus for n in nodes):
            raise RunError(f"no node of the cluster has the resources {spec.ray_resources} asked for with "
                           "--ray-resource; start nodes with `ray start --resources=...` or drop the flag")
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
             cancel_event: Optional[threading.Event], llm: Any = None, hints: Any = None) -> None:
    import ray

    bundle, sha = _bundle_agent(agent)
    settings = settings.model_copy(update={"driver_node": ray.get_runtime_context().get_node_id()})
    ctx = _Context(settings=settings, store_root=str(rs.root.resolve()), driver_node=ray.get_runtime_context().get_node_id(),
                   agent_bundle=ray.put(bundle), agent_bundle_sha=sha, agent_env=agent_env, agent=agent,
                   llm=llm, hints=hints or {}, store_uri=rs.remote.uri if rs.remote is not None else None)
    res = agent.resources
    attempt_task = _attempt_task.options(num_cpus=res.cpus, num_gpus=res.gpus, max_retries=0,
                                         resources=dict(spec.ray_resources))
    prepare_task = _prepare_task.options(resources=dict(spec.ray_resources))
    prep: dict[tuple[str, str, bool], Any] = {}
    for a in todo:
        key = (a.task_kind, a.task_id if a.task_kind == "technique" else a.competition_id, a.lite)
        if key not in prep:
            prep[key] = prepare_task.remote(a, settings)
    prep_of: Callable[[AttemptSpec], Any] = lambda a: prep[(a.task_kind, a.task_id if a.task_kind == "technique" else a.competition_id, a.lite)]  # noqa: E731

    # default: enough in flight to fill every CPU twice over, so the driver never holds thousands of refs
    cpus = sum(n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive"))  # type: ignore[no-untyped-call]
    limit = spec.max_concurrency or max(2, 2 * int(cpus / max(res.cpus, 0.01)))
    graders = _grader_pool(max(1, min(4, int(cpus // 8))))
    queue = deque((a, 1) for a in todo)
    todo.clear()  # issue 15 (scale): the queue is the plan from here; a launched attempt leaves the driver
    inflight: dict[Any, tuple[str, AttemptSpec, int, Optional[AttemptOutcome]]] = {}
    grade_failures: dict[str, int] = {}
    running = 0

    grader_of: dict[Any, Any] = {}  # a grade's ref -> the actor asked

    def grade(a: AttemptSpec, tries: int, outcome: AttemptOutcome) -> None:
        grader = graders[(prog.done + len(inflight)) % len(graders)]
        ref = grader.grade.remote(a, settings, outcome.outputs)
        inflight[ref] = ("grade", a, tries, outcome)
        grader_of[ref] = grader

    def notify() -> None:
        prog.running = running
        if progress:
            progress(prog)

    def record(a: AttemptSpec, tries: int, outcome: AttemptOutcome, report: Optional[GradeReport]) -> None:
        row = _row(a, tries, outcome, report, rs)
        rs.write_attempt(row, report.checks if report else ())
        record_attempt_report(rs, row, report)  # mlebench report files, as attempts finish
        rs.write_score_details(row, report.details if report else {})
        # an object store: artifacts (an earlier try's removed, unless another node uploaded them itself), then the row
        try:
            rs.publish_attempt(a.attempt_id, replace=not outcome.artifacts_uploaded)
        except StoreError as e:  # a blip of the object store: the row stays queued (and journaled), sent again at the end
            logging.getLogger(__name__).warning("attempt %s not uploaded yet: %s", a.attempt_id, e)
        prog.done += 1
        prog.failed += row.status != "succeeded"
        grade_failures.pop(a.attempt_id, None)  # issue 15 (scale): nothing of a recorded attempt stays in the driver

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
                    elif outcome.artifacts_uploaded:  # what the mirror holds is an earlier try's, never to be sent
                        shutil.rmtree(rs.artifacts_dir(a.attempt_id), ignore_errors=True)
                    if outcome.status in ("infra_error", "cancelled"):
                        record(a, tries, outcome, None)
                    else:
                        grade(a, tries, outcome)
                else:
                    assert outcome is not None
                    lost = grader_of.pop(ref, None)
                    try:
                        report = cast(GradeReport, ray.get(ref))
                    except Exception as e:  # the grader's process or node died: the harness failed, not the agent
                        grade_failures[a.attempt_id] = grade_failures.get(a.attempt_id, 0) + 1
                        if grade_failures[a.attempt_id] <= GRADE_RETRIES:
                            graders = _grader_pool(len(graders), lost=lost)  # a fresh actor; the outputs are still here
                            grade(a, tries, outcome)
                            continue
                        first = str(e).splitlines()[0] if str(e) else ""
                        record(a, tries, outcome.model_copy(update={"status": "infra_error", "error": f"grading failed: {type(e).__name__}: {first}"}), None)
                        continue
                    record(a, tries, outcome, report)
        notify()
    except KeyboardInterrupt:
        _cancel_inflight(rs, inflight, record)
        notify()
        raise


_GRADERS: dict[str, list[Any]] = {}


GRADE_RETRIES = 2  # a grade lost with its grader's process or node is asked again of fresh graders


def _grader_pool(n: int, lost: Any = None) -> list[Any]:
    """Grader actors, kept for the life of this driver's Ray job so that later runs in the
    same process (a notebook, the service) skip their start-up. They live on the driver's node
    when it can hold them (a worker node that dies takes no grades with it); `lost`, a grader
    whose process or node died, is replaced by a fresh one."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    ctx = ray.get_runtime_context()
    pool = _GRADERS.setdefault(f"{ctx.get_node_id()}:{ctx.get_job_id()}", [])  # a new Ray instance, a new pool
    if lost is not None and any(actor is lost for actor in pool):
        pool[:] = [actor for actor in pool if actor is not lost]
        try:
            ray.kill(lost, no_restart=True)
        except Exception:  # already gone with its node
            pass
    here = NodeAffinitySchedulingStrategy(node_id=ctx.get_node_id(), soft=True)
    while len(pool) < n:
        pool.append(_Grader.options(scheduling_strategy=here).remote())  # type: ignore[attr-defined]
    return pool[:n]


def _get_outcome(ref: Any, a: AttemptSpec) -> AttemptOutcome:
    import ray

    try:
        return cast(AttemptOutcome, ray.get(ref))
    except Exception as e:  # worker or node died, object lost: infrastructure
        now = utcnow()
        return AttemptOutcome(attempt_id=a.attempt_id, status="infra_error", started_at=now, ended_at=now,
                              error=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")


def _cancel_inflight(rs: RunStore, inflight: dict[Any, tuple[str, AttemptSpec, int, Optional[AttemptOutcome]]],
                     record: Callable[[AttemptSpec, int, AttemptOutcome, Optional[GradeReport]], None]) -> None:
    """Stop running attempts cleanly: ask first (the sandbox kills its process tree), then force."""
    import ray

    attempts = {ref: v for ref, v in inflight.items() if v[0] == "attempt"}
    for ref in attempts:
        ray.cancel(ref, force=False)
    ready, not_ready = ray.wait(list(attempts), num_returns=len(attempts), timeout=15) if attempts else ([], [])
    for ref in not_ready:
        ray.cancel(ref, force=True)
    now = utcnow()
    for _, a, tries, _ in attempts.values():
        record(a, tries, AttemptOutcome(attempt_id=a.attempt_id, status="cancelled", started_at=now, ended_at=now,
                                        error="cancelled before it finished; `harness run --resume` runs it again"), None)


def _row(a: AttemptSpec, tries: int, o: AttemptOutcome, r: Optional[GradeReport], rs: RunStore) -> AttemptResult:
    fields: dict[str, Any] = dict(
        run_id=a.run_id, attempt_id=a.attempt_id, task_kind=a.task_kind, competition_id=a.competition_id,
        technique=a.technique, agent_id=a.agent_id, seed=a.seed, sandbox=o.sandbox, isolation=o.isolation,
        status=o.status, exit_code=o.exit_code, tries=tries, started_at=o.started_at, ended_at=o.ended_at,
        agent_seconds=o.agent_seconds, peak_memory_mb=o.peak_memory_mb, node=o.node, error=o.error,
        artifacts_dir=str(Path("artifacts") / a.attempt_id),
        hints=o.hints, **(o.llm.row_fields() if o.llm is not None else {}),
    )
    if r is not None:
        fields.update(r.model_dump(include=set(GRADE_COLUMNS)))
    return AttemptResult(**fields)


def _unpack(data: bytes, dest: Path) -> None:
    """A remote attempt's artifacts into `dest`: regular files only, nothing outside it, capped."""
    if dest.exists():
        shutil.rmtree(dest)
    extract_tar(io.BytesIO(data), dest, MAX_ARTIFACT_FILES, MAX_REMOTE_ARTIFACTS_MB * 1024**2)


# ====================================================================== Ray tasks

import ray  # noqa: E402  (the tasks below are Ray remote functions)


@ray.remote(num_cpus=1, max_retries=1)
def _prepare_task(a: AttemptSpec, settings: Settings) -> Optional[str]:
    """Prepare one task's data on some node. Returns an error message, or None."""
    try:
        backend_for(a).prepare(a, settings.on_this_node())
        return None
    except Exception as e:
        return f"{type(e).__name__}: {e}"


@ray.remote(num_cpus=0, max_restarts=2, max_task_retries=1)
class _Grader:
    """Grades attempts, one Ray (actor) task per attempt, in a process that lives as long as
    the driver's Ray job (see `_grader_pool`). Plain tasks without CPUs would land on fresh workers that Ray reaps when idle
    (above its soft worker limit), paying the imports of pandas and the graders each time."""

    def grade(self, a: AttemptSpec, settings: Settings, outputs: dict[str, bytes]) -> GradeReport:
        return backend_for(a).grade(a, settings.on_this_node(), outputs)


@ray.remote
def _attempt_task(a: AttemptSpec, ctx: _Context, prep_error: Optional[str]) -> AttemptOutcome:
    return execute_attempt(a, ctx, prep_error)


def execute_attempt(a: AttemptSpec, ctx: _Context, prep_error: Optional[str]) -> AttemptOutcome:
    """The body of an attempt's Ray task: data on this node, the agent in its sandbox, outputs back."""
    started = utcnow()
    ctx = dataclasses.replace(ctx, settings=ctx.settings.on_this_node())  # this node's own disk
    node_id = ray.get_runtime_context().get_node_id()
    host = socket.gethostname()
    base = dict(attempt_id=a.attempt_id, sandbox=a.sandbox, node=f"{host}:{node_id[:8]}")  # host and Ray node (several nodes may share a host)

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
        hint = (ctx.hints or {}).get(a.competition_id) if a.task_kind == "competition" else None  # --hints-from
        (attempt_dir / "instructions.md").write_text(task.instructions + (hint[0] if hint else ""))
        (attempt_dir / ".validate_submission.sh").write_text(VALIDATE_SCRIPT)
        (attempt_dir / ".validate_submission.sh").chmod(0o755)
        agent = ctx.agent
        agent_dir = _materialize_agent(ctx)
        command = agent_command(agent)
        llm = None
        if ctx.llm is not None:  # issue 13: a gateway session, its socket mounted, the forwarder in front
            llm = AttemptLLM.open(a.attempt_id, ctx.llm, attempt_dir / "logs", a.time_limit_s)
            command = llm.wrap(command)
        job = SandboxJob(
            run_id=a.run_id, attempt_id=a.attempt_id, command=command, agent_dir=agent_dir,
            data_dir=public_view(task.public, ctx.settings.work_dir),  # mountinfo names neither the data cache nor the answers beside it
            attempt_dir=attempt_dir, resources=a.resources, time_limit_s=a.time_limit_s, network=agent.network,
            env={"COMPETITION_ID": a.competition_id, "TASK_ID": a.task_id, "HARNESS_SEED": str(a.seed),
                 "HARNESS_TASK_KIND": a.task_kind, "HARNESS_TECHNIQUE": a.technique or "",
                 "TIME_LIMIT_SECS": str(int(a.time_limit_s)), **sample_submission_env(a, ctx.settings), **ctx.agent_env,
                 **(llm.env if llm else {})},
            binds=tuple(Bind(source=Path(src), target=dst) for src, dst in llm.binds) if llm else (),
            scratch_dir=ctx.settings.work_dir / "scratch",
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
            usage = llm.close() if llm else None
        if usage is not None and usage.provider_down and result.status != "cancelled":  # not the agent's fault
            result = result.model_copy(update={"status": "infra_error", "error": f"LLM provider down: {usage.provider_down}"})
        outputs = backend.outputs(attempt_dir)
        tar = None if same_node or ctx.store_uri else _pack(attempt_dir)
        if ctx.store_uri and not same_node:  # straight to the object store (credentials from this node's env / the URI)
            open_remote(ctx.store_uri, ctx.settings.work_dir).upload_tree(
                attempt_dir, f"{a.run_id}/artifacts/{a.attempt_id}", replace=True)
        return AttemptOutcome(**base, status=result.status, exit_code=result.exit_code, isolation=result.isolation,
                              artifacts_uploaded=bool(ctx.store_uri and not same_node),
                              started_at=started, ended_at=utcnow(), agent_seconds=result.agent_seconds,
                              peak_memory_mb=result.peak_memory_mb, error=result.error, artifacts_tar=tar, outputs=outputs,
                              llm=usage, hints=hint[1] if hint else None)
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
    """An attempt's artifacts as a tar.gz: regular single-link files only (no link followed), capped."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar_tree(folder, tar, MAX_ARTIFACT_FILES, MAX_REMOTE_ARTIFACTS_MB * 1024**2)
    return buf.getvalue()

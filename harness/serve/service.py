"""RunService: everything the HTTP routes do, without HTTP.

State lives in the run store (the same directories `harness run` writes), so a
restarted server knows every earlier run; the only other source of truth is
whether a run's RunDriver actor is alive. Errors a caller can cause are raised
as `APIError(status, message)`; the routes turn them into JSON.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import Any, Optional, Sequence

import pandas as pd

from harness.registry import Registry, RegistryError, list_splits, load_registry, read_competition_set
from harness.safe_files import walk_regular_files
from harness.spec import RunSpec, RunState, Settings, utcnow
from harness.objstore import is_remote
from harness.store import ATTEMPTS_SCHEMA, DriverLock, RunNotFound, RunStore, list_runs, local_root
from harness.serve.auth import TokenTable
from harness.serve.driver import NAMESPACE, RunDriver, actor_name
from harness.serve.agents_upload import AgentLibrary, AgentRejected, UploadedAgent
from harness.serve.quotas import QuotaExceeded, Quotas, check_quotas
from harness.serve.models import ArtifactEntry, RunRequest, RunView

log = logging.getLogger(__name__)

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
LIVE_STATUSES = ("queued", "running")
#: top-level files of a run directory that make up its evaluation output
REPORT_FILES = ("grading_report.json", "summary.json", "attempts.parquet", "technique_grades.parquet", "run.json")


class APIError(Exception):
    """A request the server will not carry out; `message` says what to change."""

    def __init__(self, status: int, message: str, *, error: str = "", field: Optional[str] = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error = error or {400: "bad_request", 401: "unauthorized", 404: "not_found", 409: "conflict",
                               413: "too_large", 422: "invalid_request", 429: "too_many_runs"}.get(status, "error")
        self.field = field


class RunService:
    """One per server replica. `store` is where runs live; `store_display` is how the summary's
    `eval_dir` names it (the path as the operator gave it)."""

    def __init__(self, store: str, tokens: TokenTable, max_runs_per_user: int = 4,
                 store_display: Optional[str] = None, agents_path: Sequence[str] = (),
                 quotas: Optional[Quotas] = None, allow_local_git: Optional[bool] = None) -> None:
        self.quotas = quotas or Quotas()
        self.store_display = store_display or store
        #: agent folders this server offers beside the built-in ones (`harness serve --agents-path`)
        self.agents_path = tuple(Path(p).expanduser().resolve() for p in agents_path)
        #: the store: a local folder, or an object-store URI (s3://...) whose local mirror holds the agents
        self.root: Path | str = store if is_remote(store) else Path(store).expanduser().resolve()
        local_root(self.root).mkdir(parents=True, exist_ok=True)
        self.agents = AgentLibrary(local_root(self.root), allow_local_git=allow_local_git)
        self.tokens = tokens
        self.max_runs_per_user = max_runs_per_user
        self._launch_lock = threading.Lock()  # check-the-cap-then-start is one step

    # ------------------------------------------------------------------ who

    def authenticate(self, authorization: Optional[str]) -> str:
        user = self.tokens.user_for(authorization)
        if user is None:
            if not authorization:
                raise APIError(401, "missing bearer token: send the header `Authorization: Bearer <token>` "
                                    "(harness.Client(url, token=...)); ask the server's operator for a token")
            raise APIError(401, "unknown bearer token: check the token you were given (HARNESS_API_TOKENS on the server)")
        return user

    def _visible(self, state: RunState, user: str) -> bool:
        # without tokens the server is loopback-only and its one user is the machine's owner: every run is theirs
        # an admin (tokens file: {"user": ..., "admin": true}) sees every run
        return not self.tokens.enabled or state.owner == user or self.tokens.is_admin(user)

    # ------------------------------------------------------------------ reading runs

    def _store_of(self, run_id: str) -> RunStore:
        if not _RUN_ID.match(run_id) or ".." in run_id:
            raise APIError(404, f"no run {run_id!r}: run ids look like 2025-01-31T12-00-00-UTC_dummy_1a2b3c (GET /runs lists yours)")
        return RunStore(self.root, run_id)

    def state_for(self, run_id: str, user: str) -> tuple[RunStore, RunState]:
        """The run's store and state, or 404 (also when it belongs to someone else)."""
        rs = self._store_of(run_id)
        try:
            state = rs.read_state()
        except (KeyError, OSError, ValueError):
            state = None
        if state is None or not self._visible(state, user):
            raise APIError(404, f"no run {run_id!r} for user {user!r}; GET /runs lists yours")
        return rs, state

    def liveness(self, state: RunState) -> bool:
        """Whether something is executing the run now. Runs started here are live while their actor
        lives; runs started by `harness run` (no owner) while their driver process does."""
        if state.status not in LIVE_STATUSES:
            return False
        if _actor(state.run_id) is not None:
            return True
        if state.owner is None and state.driver:
            from harness.orchestrator import driver_alive

            if driver_alive(state.driver):
                return True
        # a driver outside this Ray (a resume from the command line, the previous server's, still
        # dying) holds the run's lock: live too, so nobody resumes or cancels it from here
        return DriverLock.holder(self._store_of(state.run_id).dir) is not None

    def view(self, rs: RunStore, state: RunState) -> RunView:
        live = self.liveness(state)
        shown = state.status if live or state.status not in LIVE_STATUSES else "interrupted"
        done = state.done
        if state.status in LIVE_STATUSES and rs.attempts_dir.is_dir():
            # run.json counts at the end; while running, each finished attempt is one file
            done = sum(1 for n in os.listdir(rs.attempts_dir) if n.endswith(".parquet") and not n.startswith("."))
        end = utcnow() if live else state.updated_at
        return RunView(
            run_id=state.run_id, owner=state.owner, agent_id=state.spec.agent, status=shown, live=live,
            resumable=shown in ("interrupted", "cancelled", "failed"), done=done, total=state.total,
            failed=state.failed, created_at=state.created_at, updated_at=state.updated_at,
            elapsed_s=max(0.0, (end - state.created_at).total_seconds()), error=state.error,
            spec=state.spec.model_dump(mode="json"),
        )

    def get_run(self, run_id: str, user: str) -> RunView:
        return self.view(*self.state_for(run_id, user))

    def list_runs(self, user: str, offset: int, limit: int, status: Optional[str]) -> tuple[list[RunView], int]:
        states = [s for s in list_runs(self.root) if self._visible(s, user)]
        views = [self.view(RunStore(self.root, s.run_id), s) for s in states] if status else None
        if views is not None:
            views = [v for v in views if v.status == status]
            return views[offset:offset + limit], len(views)
        page = states[offset:offset + limit]
        return [self.view(RunStore(self.root, s.run_id), s) for s in page], len(states)

    def summary(self, run_id: str, user: str) -> dict[str, Any]:
        """The seed's shape (`run_id`, `eval_dir`, `files`) plus RunSummary's aggregates."""
        from harness.report import summarize

        rs, state = self.state_for(run_id, user)
        view = self.view(rs, state)
        stored = rs.read_summary() if not view.live else None
        summary = stored or summarize(state, rs.attempts(), rs.technique_grades())
        body = summary.model_dump(mode="json")
        from harness.serve.eval_files import EVAL_DIR, ensure_eval_dir

        body.update(
            run_id=state.run_id, status=view.status, total=state.total,
            # the seed's shape: metrics files named in `files`, under `eval_dir`, a path relative to the
            # run that GET /runs/{id}/artifacts/{eval_dir}/{file} serves (the server's disk means nothing remotely)
            eval_dir=EVAL_DIR, eval_url=f"/runs/{state.run_id}/artifacts/{EVAL_DIR}",
            files=ensure_eval_dir(rs, view.status),
            report_files=[n for n in REPORT_FILES if (rs.dir / n).is_file()],
            done=view.done, failed=view.failed, created_at=view.created_at.isoformat(),
            updated_at=view.updated_at.isoformat(), elapsed_s=view.elapsed_s, error=state.error,
        )
        return body

    def results(self, run_id: str, user: str) -> pd.DataFrame:
        rs, _ = self.state_for(run_id, user)
        return rs.attempts()

    # ------------------------------------------------------------------ artifacts

    def list_artifacts(self, run_id: str, user: str) -> list[ArtifactEntry]:
        rs, _ = self.state_for(run_id, user)
        return [ArtifactEntry(path=rel, size=size) for rel, _, size in walk_regular_files(rs.dir)]

    def artifact_path(self, run_id: str, user: str, path: str) -> Path:
        """The file `path` (relative to the run directory) names, refusing anything that
        leaves the directory: `..`, absolute paths, symlinks anywhere on the way."""
        rs, _ = self.state_for(run_id, user)
        missing = APIError(404, f"no artifact {path!r} in run {run_id}; GET /runs/{run_id}/artifacts lists them")
        parts = path.split("/")
        if not path or path.startswith(("/", "\\")) or any(p in ("", ".", "..") or "\\" in p or "\0" in p for p in parts):
            raise missing
        here = rs.dir
        for part in parts:
            here = here / part
            try:
                st = os.lstat(here)
            except OSError:
                raise missing from None
            if stat.S_ISLNK(st.st_mode):
                raise missing
        if not stat.S_ISREG(st.st_mode) or rs.dir.resolve() not in here.resolve().parents:
            raise missing
        return here

    def artifacts_zip(self, run_id: str, user: str) -> Path:
        """The whole run directory (regular files only, no symlinks) as a zip in a temp file
        that the caller deletes."""
        rs, _ = self.state_for(run_id, user)
        fd, tmp = tempfile.mkstemp(prefix=f"harness-{run_id}-", suffix=".zip")
        os.close(fd)
        try:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=3) as zf:
                for rel, full, _ in walk_regular_files(rs.dir):
                    zf.write(full, arcname=f"{run_id}/{rel}")
        except BaseException:
            os.unlink(tmp)
            raise
        return Path(tmp)

    # ------------------------------------------------------------------ starting and stopping

    def start_run(self, req: RunRequest, user: str) -> str:
        """Validate everything, record the run as queued, start its driver; returns the run id."""
        from harness.orchestrator import RunError, agent_env_vars, check_resources, plan_attempts, resolve_spec
        from harness.spec import new_run_id
        from harness.technique import available_tasks, expand_task_selection

        if req.sandbox == "docker" and os.environ.get("HARNESS_SERVER_CONTAINER") == "1":
            raise APIError(400, "this server runs inside its container and sandboxes attempts with bubblewrap there; "
                                "the docker sandbox (sibling containers through the host's Docker socket) is not "
                                "enabled in the benchmark box: use sandbox='local'", field="sandbox")
        agent_paths = self.agent_paths(req.agent_id, user)
        settings = Settings.from_env()
        settings = settings.model_copy(update={"agents_path": (*agent_paths, *settings.agents_path)})
        registry = load_registry(settings)
        ids = self._competition_ids(req, registry)
        technique, engineering = _task_selection(req, {t.name: t.kind for t in available_tasks()})
        try:
            tt, et = expand_task_selection(technique, engineering)
            spec = resolve_spec(
                registry, competitions=ids, agent=req.agent_id, seeds=req.seeds, lite=req.lite, sandbox=req.sandbox,
                max_concurrency=req.max_concurrency, max_retries=req.max_retries, time_limit_s=req.time_limit_s,
                technique_tasks=tt, engineering_tasks=et, owner=user, include_competitions=not (tt or et),
                technique_level=req.technique_level,
                model=req.model, token_limit=req.token_limit, cost_limit=req.cost_limit, hints_from=req.hints_from, hints=req.hints,
            )
            agent = registry.agent(spec.agent)
            agent_env_vars(agent)
            from harness.llm.hints import llm_and_hints  # LLM agents: a provider must be configured

            llm_and_hints(spec.model_copy(update={"hints_from": None}), agent, local_root(self.root), [])  # hints_from is None: the root is not read
            check_resources(agent, spec)
        except (RegistryError, RunError) as e:
            raise APIError(400, str(e)) from None
        run_id = new_run_id(spec.agent)
        rs = RunStore(self.root, run_id)
        state = RunState(run_id=run_id, spec=spec, owner=user, status="queued",
                         total=len(plan_attempts(spec, run_id, registry)))
        with self._launch_lock:
            self._check_cap(user)
            cap = self._check_quotas(user, registry, req.max_concurrency)
            if cap != spec.max_concurrency:  # the quota bounds the run's concurrency, and run.json says so
                spec = spec.model_copy(update={"max_concurrency": cap})
                state.spec = spec
            rs.write_state(state)
            _launch(str(self.root), run_id, user, spec, agent_paths)  # the validated RunSpec, as the model
        return run_id

    def resume_run(self, run_id: str, user: str) -> str:
        rs, state = self.state_for(run_id, user)
        view = self.view(rs, state)
        if view.live:
            raise APIError(409, f"run {run_id} is {view.status}; wait for it or POST /runs/{run_id}/cancel first")
        if view.status == "completed":
            raise APIError(409, f"run {run_id} is completed: every attempt has a row; start a new run to run it again")
        with self._launch_lock:
            self._check_cap(user)
            self._check_quotas(state.owner or user, load_registry(), state.spec.max_concurrency)
            state.status = "queued"
            state.error = None
            rs.write_state(state)
            _launch(str(self.root), run_id, state.owner, None, self.agent_paths(state.spec.agent, state.owner or user))
        return run_id

    def resume_orphans(self, only: Optional[set[str]] = None) -> tuple[list[str], list[str]]:
        """Start again the runs this service started (they have an owner) that read queued or running
        while nothing drives them: no RunDriver actor in this Ray and nobody holding the run's driver
        lock, as after a restart of `harness serve` on its own local Ray. `only`: look at these run ids
        alone. Returns (ids resumed, ids skipped because a process outside this Ray holds their lock)."""
        resumed, held = [], []
        for state in list_runs(self.root):
            if only is not None and state.run_id not in only:
                continue
            if state.owner is None or state.status not in LIVE_STATUSES or _actor(state.run_id) is not None:
                continue  # `harness run`'s runs are their driver's to resume; finished runs stay finished
            rs = RunStore(self.root, state.run_id)
            if DriverLock.holder(rs.dir) is not None:
                held.append(state.run_id)  # a driver outside this Ray holds it (or one dying with the old server)
                continue
            with self._launch_lock:
                try:
                    current = rs.read_state()
                except (RunNotFound, OSError, ValueError) as e:  # deleted or damaged since the listing: the others go on
                    log.warning("not resuming run %s: %s", state.run_id, e)
                    continue
                if current.status != state.status or _actor(state.run_id) is not None \
                        or DriverLock.holder(rs.dir) is not None:
                    continue  # something took it up meanwhile
                current.status, current.error = "queued", None
                rs.write_state(current)
                try:
                    _launch(str(self.root), state.run_id, current.owner, None,
                            self.agent_paths(current.spec.agent, current.owner or ""))
                except APIError:
                    continue  # another replica launched it first
                except Exception as e:  # noqa: BLE001  (an uploaded agent deleted since: the run says why)
                    current.status, current.error = "failed", f"could not resume after a restart: {type(e).__name__}: {e}"
                    rs.write_state(current)
                    continue
            resumed.append(state.run_id)
        return resumed, held

    def cancel_run(self, run_id: str, user: str) -> str:
        """Ask the run's driver to stop (it records the run as cancelled, resumable); returns the status now."""
        rs, state = self.state_for(run_id, user)
        view = self.view(rs, state)
        if not view.live:
            if view.status == "interrupted":  # nobody drives it: record the cancel ourselves
                state.status = "cancelled"
                state.error = "cancelled after its driver had stopped"
                rs.write_state(state)
                return "cancelled"
            raise APIError(409, f"run {run_id} is already {view.status}; nothing to cancel")
        actor = _actor(run_id)
        if actor is None:
            raise APIError(409, f"run {run_id} is driven by process {state.driver} outside this server; "
                                "stop it there (Ctrl-C leaves it resumable)")
        actor.cancel.remote()
        return "cancelling"

    def agent_paths(self, agent_id: str, user: str) -> list[Path]:
        """Agent folders the run of `agent_id` by `user` resolves names in, before $HARNESS_AGENTS_PATH:
        the server's, and the user's uploaded agent of that id (nobody else's)."""
        uploaded = self.agents.resolve(agent_id, user, self.tokens.is_admin(user))
        return [*self.agents_path, *([self.agents.folder(uploaded)] if uploaded else [])]

    # ------------------------------------------------------------------ users' agents

    def _server_registry(self) -> Registry:
        settings = Settings.from_env()
        return load_registry(settings.model_copy(update={"agents_path": (*self.agents_path, *settings.agents_path)}))

    def list_agents(self, user: str) -> list[dict[str, Any]]:
        """The server's agents, then the user's uploaded ones (everybody's for an admin)."""
        reg = self._server_registry()
        out: list[dict[str, Any]] = [
            {"id": a.id, "description": a.description, "resources": a.resources.model_dump(),
             "time_limit_s": a.time_limit_s, "network": a.network}
            for a in sorted(reg.agents.values(), key=lambda a: a.id)]
        for up in self.agents.list(user, self.tokens.is_admin(user)):
            folder = self.agents.folder(up)
            entry: dict[str, Any] = {"id": up.id, "description": up.description, "uploaded": True, "owner": up.owner,
                                     "version": up.version, "image": up.image, "source": up.source}
            for a in load_registry(Settings.from_env().model_copy(update={"agents_path": (folder,)})).agents.values():
                if a.id == up.id:
                    entry.update(resources=a.resources.model_dump(), time_limit_s=a.time_limit_s, network=a.network)
            out.append(entry)
        return out

    def _refuse_taken(self, user: str, name: str) -> None:
        if f"{user}/{name}" in self._server_registry().agents:
            raise AgentRejected(f"agent id {user}/{name} is taken by one of the server's agents; pick another name",
                                status=409)

    def register_tarball_agent(self, user: str, name: str, archive: str) -> UploadedAgent:
        self._refuse_taken(user, name)
        return self.agents.register_tarball(user, name, Path(archive))

    def register_git_agent(self, user: str, name: str, url: str, ref: Optional[str]) -> UploadedAgent:
        self._refuse_taken(user, name)
        return self.agents.register_git(user, name, url, ref)

    def _own_id(self, user: str, agent_id: str) -> str:
        return agent_id if "/" in agent_id else f"{user}/{agent_id}"

    def delete_agent(self, user: str, agent_id: str) -> UploadedAgent:
        return self.agents.delete(self._own_id(user, agent_id), user, self.tokens.is_admin(user))

    def agent_build_log(self, user: str, agent_id: str) -> Path:
        agent_id = self._own_id(user, agent_id)
        agent = self.agents.resolve(agent_id, user, self.tokens.is_admin(user))
        if agent is None:
            raise APIError(404, f"no agent {agent_id!r} of user {user!r}; GET /agents lists yours")
        log = self.agents.build_log(agent)
        if log is None:
            raise APIError(404, f"agent {agent_id} has no build log: its folder has no Dockerfile, so it runs in the base image")
        return log

    def quotas_for(self, user: str) -> Quotas:
        """The server's default quotas, overridden by the user's entry in the tokens file."""
        policy = self.tokens.policy(user)
        return Quotas(
            max_concurrent_attempts=policy.max_concurrent_attempts if policy.max_concurrent_attempts is not None
            else self.quotas.max_concurrent_attempts,
            cpu_seconds_per_day=policy.cpu_seconds_per_day if policy.cpu_seconds_per_day is not None
            else self.quotas.cpu_seconds_per_day)

    def _check_quotas(self, user: str, registry: Registry, requested: Optional[int]) -> Optional[int]:
        """429 naming the quota a new run of `user` would break; else the run's concurrency cap."""
        own = [s for s in list_runs(self.root) if s.owner == user]
        live = [s for s in own if self.liveness(s)]
        try:
            return check_quotas(self.quotas_for(user), user, self.root, own, live, registry, requested)
        except QuotaExceeded as e:
            raise APIError(429, e.message, error="quota_exceeded", field=e.quota) from None

    def _check_cap(self, user: str) -> None:
        live = [s for s in list_runs(self.root) if s.owner == user and self.liveness(s)]
        if len(live) >= self.max_runs_per_user:
            raise APIError(429, f"user {user!r} already has {len(live)} run(s) in progress and the cap is "
                                f"{self.max_runs_per_user} concurrent runs per user; wait for one to finish "
                                f"or cancel one (POST /runs/{{id}}/cancel)")

    @staticmethod
    def _competition_ids(req: RunRequest, registry: Registry) -> list[str]:
        ids: list[str] = []
        if req.competition_set:
            ids += _read_split(req.competition_set)
        comps = req.competitions
        if isinstance(comps, str):
            # the seed's `client.run(competitions="experiments/splits/low.txt")`: a split, or one id
            looks_like_split = comps.endswith(".txt") or "/" in comps or (comps in list_splits() and comps not in registry.competitions)
            ids += _read_split(comps) if looks_like_split else [comps]
        elif comps:
            ids += comps
        return list(dict.fromkeys(ids))


# ---------------------------------------------------------------------- helpers


def _read_split(name: str) -> list[str]:
    """A split by name (`lite`) or as `experiments/splits/<name>.txt`. Only the repository's
    splits are read: a client must not make the server open arbitrary files."""
    splits = list_splits()
    path = Path(name)
    key = name if name in splits else path.stem if path.suffix == ".txt" and path.stem in splits else None
    if key is None:
        raise APIError(400, f"unknown competition set {name!r}; the server's splits are {', '.join(splits) or 'none'} "
                            f"(files in experiments/splits/); or list ids in `competitions`", field="competition_set")
    try:
        return read_competition_set(str(splits[key]))
    except RegistryError as e:
        raise APIError(400, str(e), field="competition_set") from None


def _task_selection(req: RunRequest, kinds: dict[str, str]) -> tuple[Any, list[str]]:
    """The seed's `technique_tasks=True, tasks=[...]` or explicit lists -> (technique, engineering)."""
    engineering = list(req.engineering_tasks) + [t for t in req.tasks if kinds.get(t) == "engineering"]
    named = [t for t in req.tasks if kinds.get(t) != "engineering"]
    if isinstance(req.technique_tasks, list):
        technique: Any = list(req.technique_tasks) + named
    elif req.technique_tasks:
        technique = named or (True if not engineering else [])
    else:
        technique = named
    return technique, engineering


def _actor(run_id: str) -> Any:
    import ray

    try:
        return ray.get_actor(actor_name(run_id), namespace=NAMESPACE)
    except ValueError:
        return None


def _launch(store: str, run_id: str, owner: Optional[str], spec: Optional[RunSpec],
            agent_paths: Sequence[Path] = ()) -> None:
    """Start the run's detached driver actor and hand it the run (fire and forget)."""
    import ray

    driver_cls = ray.remote(RunDriver).options(
        name=actor_name(run_id), namespace=NAMESPACE, lifetime="detached", num_cpus=0,
        max_concurrency=4, max_restarts=0,
    )
    try:
        actor = driver_cls.remote()
    except ValueError:
        raise APIError(409, f"run {run_id} already has a live driver; wait for it or cancel it") from None
    actor.execute.remote(store, run_id, owner, spec, [str(p) for p in agent_paths])  # type: ignore[attr-defined]


def attempts_parquet(df: pd.DataFrame) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(df, schema=ATTEMPTS_SCHEMA, preserve_index=False), sink)
    return bytes(sink.getvalue().to_pybytes())


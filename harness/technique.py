"""Technique and engineering tasks: find them, plan their attempts, prepare their
data, and grade what the agent wrote.

- A *technique task* (imbalance, missing, encoding, cv, scaling, leakage) takes a
  competition's training table (or generated data), plants properties whose truth
  it keeps in the private dir, and asks for `<name>_analysis.json` (a pydantic
  model given to the agent as JSON Schema). One attempt per (task, competition).
- An *engineering task* (ml-spec, eda-notebook, ...) brings its own generated
  inputs and is graded by running what the agent wrote (scripts and notebooks
  in the attempt's sandbox backend, with a time limit). One attempt per task.

Both live in `technique_tasks/<name>/` (task.py + instructions.md) and run as
`task_kind="technique"` attempts, `technique=<name>`.

Interface used by the rest of harness:
- `available_tasks()`: every task, as TaskInfo (name, kind, description)
- `expand_task_selection(technique_tasks, engineering_tasks)`: user input (names, "all", True) -> two name lists
- `validate_task_names(...)`: raise RegistryError naming an unknown task
- `plan_technique_attempts(spec, common)`: the AttemptSpecs of a run's technique/engineering tasks
- `TechniqueTask`: the TaskKindBackend (prepare, outputs, grade) for task_kind="technique"
- `list_tasks()`: lines for `harness list tasks`
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import shutil
import string
import sys
import time
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, Optional, Sequence

from filelock import FileLock
from pydantic import BaseModel

from harness.errors import RegistryError
from harness.registry import PACKAGE_DIR, registry_for
from harness.safe_files import CopyReport, read_fd, walk_beneath
from harness.spec import AttemptSpec, GradeReport, RunSpec, Settings, attempt_id_for
from harness.task_kind import PreparedTask, TaskKindBackend
from harness.techniques import (
    competition_data,
    MAX_OUTPUT_BYTES,
    GradeContext,
    InvalidOutput,
    PrepareContext,
    invalid,
    load_source,
    read_manifest,
)

TASKS_DIR = PACKAGE_DIR / "technique_tasks"
SDK_FILE = PACKAGE_DIR / "techniques" / "sdk.py"
#: the order tasks are listed and run in
TECHNIQUE_ORDER = ["imbalance", "missing", "encoding", "cv", "scaling", "leakage",
                   "covariate-shift", "outliers", "label-noise", "calibration"]
#: difficulty levels of technique tasks (`--technique-level`); easy is the original task
LEVELS = ("easy", "medium", "hard")
ENGINEERING_ORDER = ["ml-spec", "eda-notebook", "feature-engineering", "baseline-model", "refactor-config",
                     "eval-metrics", "model-comparison"]
SYNTHETIC = "synthetic"
DONE_MARKER = ".harness_prepared.json"

INSTRUCTIONS = """\
# {title}

Task `{task_id}` ({kind} task{source_line}).

{body}

## Where things are

- Inputs are in `/home/data` (read-only); `/home/data/task.json` names the files{target_line}.
- Write {outputs} to `/home/submission/`.{schema_line}
- Check the format at any time with `/home/validate_submission.sh` (or `python3 -m harness.validate`);
  it checks format only and never reveals a score.
- Save the code you wrote to `/home/code/` and notes to `/home/logs/`.
- There is no internet access. You have {time_limit_s:g} seconds, {cpus:g} CPU(s) and {memory_gb:g} GB of memory.
{schema_block}"""


class TaskInfo(BaseModel):
    name: str
    kind: Literal["technique", "engineering"]
    description: str


class PreparedTechnique(BaseModel):
    task_id: str
    public: Path
    private: Path
    fingerprint: str


# ====================================================================== finding tasks


@functools.lru_cache(maxsize=None)
def load_task(name: str) -> ModuleType:
    """The task's `task.py` module (technique_tasks/<name>/task.py)."""
    path = TASKS_DIR / name / "task.py"
    if not path.is_file():
        raise RegistryError(f"unknown technique task {name!r}; `harness list tasks` shows the known ones")
    modname = f"harness.technique_tasks.{name.replace('-', '_')}.task"
    spec = importlib.util.spec_from_file_location(modname, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[modname] = mod
    spec.loader.exec_module(mod)
    return mod


@functools.lru_cache(maxsize=1)
def available_tasks() -> list[TaskInfo]:
    """Every task folder, technique tasks first, in the documented order."""
    names = sorted(p.parent.name for p in TASKS_DIR.glob("*/task.py") if not p.parent.name.startswith("_"))
    order = {n: i for i, n in enumerate(TECHNIQUE_ORDER + ENGINEERING_ORDER)}
    out = []
    for name in sorted(names, key=lambda n: (order.get(n, 99), n)):
        mod = load_task(name)
        out.append(TaskInfo(name=name, kind=mod.KIND, description=mod.DESCRIPTION))
    return out


def _names(kind: str) -> list[str]:
    return [t.name for t in available_tasks() if t.kind == kind]


def list_tasks() -> list[str]:
    return [f"{t.name} ({t.kind}): {t.description}" for t in available_tasks()] or ["no technique tasks available"]


def _as_list(value: Sequence[str] | bool | str | None) -> list[str]:
    if value is True:
        return ["all"]
    if not value:
        return []
    items = value.split(",") if isinstance(value, str) else [v for raw in value for v in str(raw).split(",")]
    return [v.strip() for v in items if v.strip()]


def expand_task_selection(technique_tasks: Sequence[str] | bool | str, engineering_tasks: Sequence[str] | str) -> tuple[list[str], list[str]]:
    """User input -> (technique task names, engineering task names), each in the documented order.

    Accepts lists of names, comma strings, "all" (all of that kind) and True
    (all technique tasks). An engineering name given among technique tasks (or
    the reverse) is moved to its own kind. Raises RegistryError for an unknown name."""
    techniques, engineering = set(_names("technique")), set(_names("engineering"))
    chosen: dict[str, set[str]] = {"technique": set(), "engineering": set()}
    for kind, value in (("technique", technique_tasks), ("engineering", engineering_tasks)):
        for name in _as_list(value):
            if name == "all":
                chosen[kind] |= techniques if kind == "technique" else engineering
            elif name in techniques:
                chosen["technique"].add(name)
            elif name in engineering:
                chosen["engineering"].add(name)
            else:
                raise RegistryError(
                    f"unknown {kind} task {name!r}; technique tasks: {', '.join(_names('technique'))}; "
                    f"engineering tasks: {', '.join(_names('engineering'))} (or `all`)")
    order = [t.name for t in available_tasks()]
    return ([n for n in order if n in chosen["technique"]], [n for n in order if n in chosen["engineering"]])


def validate_task_names(technique_tasks: Sequence[str], engineering_tasks: Sequence[str]) -> None:
    expand_task_selection(technique_tasks, engineering_tasks)


# ====================================================================== planning


def technique_task_id(name: str, source: Optional[str], level: Optional[str] = None) -> str:
    """`imbalance.hard.breast-cancer-diagnosis`, `cv.easy.synthetic`, `ml-spec`: stable and file/URL-safe.
    Technique tasks carry their level (easy when none is given); engineering tasks have none."""
    return f"{name}.{level or 'easy'}.{source}" if source else name


def task_levels(name: str, selection: str = "easy") -> list[str]:
    """The levels of a technique task a run's `technique_level` selects (easy, medium, hard or all);
    a task that defines no `LEVELS` has only easy. Raises RegistryError for an unknown level."""
    if selection not in (*LEVELS, "all"):
        raise RegistryError(f"unknown technique level {selection!r}; use easy, medium, hard or all")
    have = list(getattr(load_task(name), "LEVELS", ("easy",)))
    return have if selection == "all" else [lv for lv in have if lv == selection]


def task_sources(name: str, competitions: Sequence[str], settings: Optional[Settings] = None) -> list[str]:
    """The datasets a technique task runs on: the run's competitions it makes sense for
    (e.g. no imbalance on a regression), else generated data."""
    mod = load_task(name)
    out = []
    if competitions:
        reg = registry_for(settings or Settings.from_env())
        for cid in competitions:
            data, task_type = competition_data(reg.competition(cid).kind)  # tabular | image | timeseries, binary | ...
            if data in ("tabular", "image", "timeseries") and task_type is not None and mod.applies_to(task_type, data):
                out.append(cid)
    return out or [SYNTHETIC]


def plan_technique_attempts(spec: RunSpec, common: dict[str, Any]) -> list[AttemptSpec]:
    """One attempt per (technique task, applicable dataset, seed) and per (engineering task, seed)."""
    out = []
    for name in spec.technique_tasks:
        for source in task_sources(name, spec.competitions):
            for level in task_levels(name, spec.technique_level):
                tid = technique_task_id(name, source, level)
                for seed in range(spec.seeds):
                    out.append(AttemptSpec(attempt_id=attempt_id_for(tid, spec.agent, seed), task_kind="technique",
                                           technique=name, technique_level=level, competition_id=source, seed=seed,
                                           **common))
    for name in spec.engineering_tasks:
        for seed in range(spec.seeds):
            out.append(AttemptSpec(attempt_id=attempt_id_for(name, spec.agent, seed), task_kind="technique",
                                   technique=name, competition_id=name, seed=seed, **common))
    return out


# ====================================================================== preparing


def _fingerprint(name: str) -> str:
    """Changes when the task's code or instructions change, so a stale cache is rebuilt."""
    h = hashlib.sha256()
    for p in (SDK_FILE, TASKS_DIR / name / "task.py", TASKS_DIR / name / "instructions.md"):
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def task_seed(task_id: str) -> int:
    """The seed that plants a task's properties: fixed per task id, so every attempt sees the same data."""
    return int(hashlib.sha256(task_id.encode()).hexdigest()[:8], 16)


def ensure_task_prepared(name: str, source: Optional[str], settings: Settings, lite: bool,
                         level: str = "easy") -> PreparedTechnique:
    """Prepare a task's public/private folders (at `level`, technique tasks) into this node's cache unless they
    are there. Layout: `$HARNESS_DATA_DIR/technique/<task_id>/{full,lite}/{public,private}`. Safe across processes."""
    tid = technique_task_id(name, source, level)
    root = settings.data_dir / "technique" / tid / ("lite" if lite else "full")
    fp = _fingerprint(name)
    done = _prepared(root, fp)
    if done is not None:
        return done
    root.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root.parent / ".lock"), timeout=3600):
        done = _prepared(root, fp)
        if done is not None:
            return done
        return _prepare_locked(name, source, settings, lite, root, fp, level)


def _prepared(root: Path, fingerprint: str) -> Optional[PreparedTechnique]:
    marker = root / DONE_MARKER
    if not marker.is_file():
        return None
    done = PreparedTechnique.model_validate_json(marker.read_text())
    return done if done.fingerprint == fingerprint else None


def _prepare_locked(name: str, source: Optional[str], settings: Settings, lite: bool, root: Path, fp: str,
                    level: str = "easy") -> PreparedTechnique:
    tid = technique_task_id(name, source, level)
    mod = load_task(name)
    tmp = root.parent / f".tmp-{root.name}-{uuid.uuid4().hex[:8]}"
    public, private = tmp / "public", tmp / "private"
    public.mkdir(parents=True)
    private.mkdir(parents=True)
    seed = task_seed(tid)
    try:
        src = load_source(source, settings, lite, seed) if source else None
        mod.prepare(PrepareContext(task=name, task_id=tid, seed=seed, lite=lite, public=public, private=private, source=src,
                                   level=level))
        shutil.copyfile(TASKS_DIR / name / "instructions.md", public / "instructions.md")
    except Exception as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(f"preparing technique task {tid!r} failed: {type(e).__name__}: {e}") from e
    if root.exists():
        shutil.rmtree(root)  # stale: older task code
    tmp.rename(root)
    done = PreparedTechnique(task_id=tid, public=root / "public", private=root / "private", fingerprint=fp)
    (root / DONE_MARKER).write_text(done.model_dump_json(indent=1))
    return done


def render_instructions(name: str, task_id: str, source: Optional[str], public: Path, time_limit_s: float,
                        cpus: float, memory_gb: float) -> str:
    """The agent's /home/instructions.md: the task's instructions.md plus paths, outputs and schema."""
    mod = load_task(name)
    m = read_manifest(public)
    values = {"target": m.target or "", "outputs": ", ".join(f"`{o}`" for o in m.outputs), **m.files,
              "level_notes": m.notes}
    body = string.Template((TASKS_DIR / name / "instructions.md").read_text()).safe_substitute(values)
    schema_block = ""
    if m.schema_file and (public / m.schema_file).is_file():
        schema_block = f"\n## JSON Schema of `{m.outputs[0]}`\n\n```json\n{(public / m.schema_file).read_text()}\n```\n"
    return INSTRUCTIONS.format(
        title=body.splitlines()[0].lstrip("# ") if body.startswith("#") else name, task_id=task_id, kind=mod.KIND,
        source_line=f" on the `{source}` data" if source else "",
        body="\n".join(body.splitlines()[1:]).strip() if body.startswith("#") else body.strip(),
        target_line=f" and the target column (`{m.target}`)" if m.target else "",
        outputs=" and ".join(f"`{o}`" for o in m.outputs),
        schema_line=f"\n- `{m.outputs[0]}` must satisfy the JSON Schema in `/home/data/{m.schema_file}` (also below)." if m.schema_file else "",
        time_limit_s=time_limit_s, cpus=cpus, memory_gb=memory_gb, schema_block=schema_block,
    )


# ====================================================================== the backend


def _source_of(attempt: AttemptSpec) -> Optional[str]:
    assert attempt.technique is not None, f"attempt {attempt.attempt_id} is a technique attempt without a technique"
    return attempt.competition_id if load_task(attempt.technique).KIND == "technique" else None


class TechniqueTask(TaskKindBackend):
    """task_kind="technique": technique and engineering tasks."""

    kind = "technique"

    def prepare(self, attempt: AttemptSpec, settings: Settings) -> PreparedTask:
        name, source = attempt.technique or "", _source_of(attempt)
        done = ensure_task_prepared(name, source, settings, attempt.lite, attempt.technique_level or "easy")
        text = render_instructions(name, attempt.task_id, source, done.public, attempt.time_limit_s,
                                   attempt.resources.cpus, attempt.resources.memory_gb)
        return PreparedTask(public=done.public, private=done.private, instructions=text)

    def outputs(self, attempt_dir: Path) -> dict[str, bytes]:
        """Every file the agent left in submission/ (each at most 20 MB)."""
        sub = attempt_dir / "submission"
        out: dict[str, bytes] = {}
        if sub.is_dir():  # regular single-link files only, no link followed; 200 files, 20 MB each, 100 MB in all
            for rel, fd, size in walk_beneath(sub, 200, 5 * MAX_OUTPUT_BYTES, CopyReport()):
                if size <= MAX_OUTPUT_BYTES:
                    out[rel] = read_fd(fd, size)
        return out

    def grade(self, attempt: AttemptSpec, settings: Settings, outputs: dict[str, bytes]) -> GradeReport:
        t0 = time.monotonic()
        name, source = attempt.technique or "", _source_of(attempt)
        done = ensure_task_prepared(name, source, settings, attempt.lite, attempt.technique_level or "easy")
        g = grade_outputs(name, done.public, done.private, outputs, settings.work_dir / "grading", sandbox=attempt.sandbox)
        return GradeReport(
            competition_id=attempt.competition_id, score=g.score, submission_exists=bool(outputs),
            valid_submission=g.invalid_reason is None, invalid_reason=g.invalid_reason, is_lower_better=False,
            checks=g.checks, grade_seconds=time.monotonic() - t0,
            submission_path=str(Path("artifacts") / attempt.attempt_id / "submission"),
        )


def grade_outputs(name: str, public: Path, private: Path, outputs: dict[str, bytes], scratch: Path,
                  sandbox: str = "local") -> Any:
    """Grade an agent's files (name -> bytes) for one prepared task; returns the task's Grade
    (checks, score in [0, 1], invalid_reason). Code of the agent's that the grader runs runs in
    the backend named `sandbox` (the attempt's: `local` or `docker`). Tests call this directly on files."""
    task = load_task(name)
    workdir = scratch / uuid.uuid4().hex[:12]
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        return task.grade(GradeContext(public=public, private=private, outputs=outputs, workdir=workdir, sandbox=sandbox))
    except InvalidOutput as e:  # nothing could be checked: one zero check saying why
        return invalid(str(e))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def task_summary(name: str) -> dict[str, Any]:
    """A task's metadata as JSON-able dict (for the HTTP service)."""
    mod = load_task(name)
    return {"name": name, "kind": mod.KIND, "description": mod.DESCRIPTION}


__all__ = ["TaskInfo", "available_tasks", "list_tasks", "expand_task_selection", "validate_task_names",
           "plan_technique_attempts", "TechniqueTask", "ensure_task_prepared", "grade_outputs", "load_task",
           "task_sources", "technique_task_id", "task_levels", "LEVELS"]

"""What technique and engineering tasks share: the source data, the public task
manifest, checks and grades, parsing the agent's JSON, and running the agent's
scripts and notebooks in the attempt's sandbox backend with a time limit."""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Type, TypeVar, cast

import numpy as np
import pandas as pd
from pydantic import BaseModel, ValidationError

from harness.data import ensure_prepared
from harness.registry import registry_for
from harness.sandbox.backends import get_sandbox
from harness.sandbox.base import SandboxJob
from harness.spec import CheckResult, Resources, Settings

M = TypeVar("M", bound=BaseModel)

TRUTH = "truth.json"
#: the largest file of the agent's that is passed to a grader (bytes)
MAX_OUTPUT_BYTES = 20 * 1024 * 1024


# ====================================================================== source data


@dataclass
class Source:
    """A table to plant properties into: feature columns plus one target column."""

    name: str  # competition id, or "synthetic"
    frame: pd.DataFrame
    target: str
    task_type: str  # binary | multiclass | regression
    data_kind: str = "tabular"  # tabular | image | timeseries: what the features were computed from

    @property
    def features(self) -> list[str]:
        return [c for c in self.frame.columns if c != self.target]

    @property
    def is_classification(self) -> bool:
        return self.task_type in ("binary", "multiclass")

    def numeric_target(self) -> np.ndarray:
        """The target as floats (class labels as their sorted codes), for planting values tied to it."""
        y = self.frame[self.target]
        if pd.api.types.is_numeric_dtype(y):
            return cast(np.ndarray, y.to_numpy(dtype=float))
        return cast(np.ndarray, pd.Series(pd.Categorical(y).codes, index=y.index).to_numpy(dtype=float))


def synthetic_source(seed: int, lite: bool) -> Source:
    """A generated binary-classification table of correlated numeric features."""
    from sklearn.datasets import make_classification

    n = 700 if lite else 1500
    X, y = make_classification(n_samples=n, n_features=10, n_informative=6, n_redundant=2, n_clusters_per_class=2,
                               class_sep=1.0, random_state=seed % (2**31))
    names = ["age", "income_k", "tenure_months", "visits", "basket_size", "balance", "score_a", "score_b",
             "distance_km", "sessions"]
    frame = pd.DataFrame(np.round(X, 5), columns=names)
    frame["label"] = y
    return Source(name="synthetic", frame=frame, target="label", task_type="binary")


def competition_source(competition_id: str, settings: Settings, lite: bool) -> Source:
    """A built-in (or registered) tabular competition's training table: its numeric
    feature columns and its target, the target being the train.csv column absent from test.csv."""
    comp = registry_for(settings).competition(competition_id)
    data = ensure_prepared(comp, settings, lite)
    data_kind, kind_type = competition_data(comp.kind)
    if data_kind != "tabular":
        return _derived_source(competition_id, data.public, data_kind, kind_type)
    train = pd.read_csv(data.public / "train.csv")
    test = pd.read_csv(data.public / "test.csv", nrows=5)
    sample = pd.read_csv(data.sample_submission, nrows=5)
    id_col = sample.columns[0]
    targets = [c for c in train.columns if c not in test.columns and c != id_col]
    if not targets:
        raise ValueError(f"competition {competition_id!r}: no target column in train.csv (every column is in test.csv)")
    target = targets[0]
    features = [c for c in test.columns if c != id_col and c in train.columns and pd.api.types.is_numeric_dtype(train[c])]
    frame = train[features + [target]].dropna(subset=[target]).reset_index(drop=True)
    y = frame[target]
    if pd.api.types.is_float_dtype(y) and not np.allclose(y, np.round(y)) or y.nunique() > 20:
        task_type = "regression"
    else:
        task_type = "binary" if y.nunique() == 2 else "multiclass"
    return Source(name=competition_id, frame=frame, target=target, task_type=task_type)


def competition_data(kind: str) -> tuple[str, Optional[str]]:
    """(data kind, task type) of a competition's `kind`: `image-classification` -> (image, multiclass),
    `timeseries-binary` -> (timeseries, binary), `tabular-regression` -> (tabular, regression)."""
    k = (kind or "").lower()
    data = "image" if k.startswith("image") else "timeseries" if k.startswith(("timeseries", "time-series", "series")) else \
        "tabular" if k.startswith("tabular") else "other"
    task = None
    for word, t in [("binary", "binary"), ("multiclass", "multiclass"), ("classif", "multiclass"), ("regress", "regression")]:
        if word in k:
            task = t
            break
    return data, task


def _derived_source(competition_id: str, public: Path, data_kind: str, task_type: Optional[str]) -> Source:
    """A feature table computed from an image or time-series competition's training data: per image a 4 x 4
    grid of mean intensities plus overall mean and spread; per series summary statistics. The label is kept."""
    train = pd.read_csv(public / "train.csv")
    id_col, target = train.columns[0], [c for c in train.columns[1:]][0]
    if data_kind == "image":
        from PIL import Image

        rows = []
        for i in train[id_col]:
            with Image.open(public / "train" / f"{i}.png") as im:
                px = np.asarray(im.convert("L"), dtype=float) / 255.0
            h, w = px.shape
            cells = {f"ink_r{r}c{c}": float(px[r * h // 4:(r + 1) * h // 4, c * w // 4:(c + 1) * w // 4].mean())
                     for r in range(4) for c in range(4)}
            rows.append({**cells, "ink_mean": float(px.mean()), "ink_std": float(px.std())})
        frame = pd.DataFrame(rows).round(5)
    else:
        long = pd.read_csv(public / "train_series.csv")
        ch = [c for c in long.columns if c not in ("id", "t")][0]
        g = long.sort_values(["id", "t"]).groupby("id")[ch]
        feats = pd.DataFrame({"level_mean": g.mean(), "level_std": g.std(), "level_min": g.min(), "level_max": g.max(),
                              "first_value": g.first(), "last_value": g.last(),
                              "peak_position": g.agg(lambda v: float(np.argmax(v.to_numpy())) / max(1, len(v) - 1)),
                              "mean_abs_change": g.agg(lambda v: float(np.abs(np.diff(v.to_numpy())).mean()) if len(v) > 1 else 0.0),
                              "trend": g.agg(lambda v: float(np.polyfit(np.arange(len(v)), v.to_numpy(), 1)[0]) if len(v) > 1 else 0.0)})
        frame = feats.reindex(train[id_col]).reset_index(drop=True).round(5)
    frame[target] = train[target].to_numpy()
    y = frame[target]
    task = task_type or ("binary" if y.nunique() == 2 else "multiclass")
    return Source(name=competition_id, frame=frame, target=str(target), task_type=task, data_kind=data_kind)


def load_source(source_id: str, settings: Settings, lite: bool, seed: int) -> Source:
    return synthetic_source(seed, lite) if source_id == "synthetic" else competition_source(source_id, settings, lite)


def competition_task_type(kind: str) -> Optional[str]:
    """binary / multiclass / regression from a competition's `kind` (tabular-binary, ...); None if not tabular."""
    kind = (kind or "").lower()
    if not kind.startswith("tabular"):
        return None
    for word, t in [("binary", "binary"), ("multiclass", "multiclass"), ("classif", "multiclass"), ("regress", "regression")]:
        if word in kind:
            return t
    return "unknown"


# ====================================================================== what the agent is given
# (the public manifest is harness.task_manifest's, re-exported by harness.techniques)


def write_truth(private: Path, truth: dict[str, Any]) -> None:
    (private / TRUTH).write_text(json.dumps(truth, indent=1, default=_json_default))


def read_truth(private: Path) -> dict[str, Any]:
    return cast(dict[str, Any], json.loads((private / TRUTH).read_text()))


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o))


def dumps(obj: Any) -> bytes:
    """JSON bytes as an agent would write them (numpy values allowed)."""
    return json.dumps(obj, indent=1, default=_json_default).encode()


# ====================================================================== grading


class Grade(BaseModel):
    """What a task's grader returns: its checks, or why nothing could be checked."""

    checks: list[CheckResult] = []
    invalid_reason: Optional[str] = None

    @property
    def score(self) -> float:
        total = sum(c.max_points for c in self.checks)
        return 0.0 if self.invalid_reason or total == 0 else round(sum(c.points for c in self.checks) / total, 4)


class Checks:
    """Collects scored checks; every lost point carries its explanation."""

    def __init__(self) -> None:
        self.items: list[CheckResult] = []

    def add(self, check: str, ok: float | bool, max_points: float, detail: str) -> None:
        """`ok` is a fraction of `max_points` in [0, 1] (True/False for all or nothing)."""
        frac = float(min(1.0, max(0.0, float(ok))))
        self.items.append(CheckResult(check=check, points=round(frac * max_points, 4), max_points=max_points,
                                      passed=frac >= 0.999, detail=detail))

    def grade(self) -> Grade:
        return Grade(checks=self.items)


def invalid(reason: str, max_points: float = 1.0, check: str = "output") -> Grade:
    """A zero grade with one check carrying the reason, so the table shows why."""
    return Grade(checks=[CheckResult(check=check, points=0.0, max_points=max_points, passed=False, detail=reason)],
                 invalid_reason=reason)


class InvalidOutput(Exception):
    """Nothing can be checked (the output is missing, empty, not JSON, or off-schema).
    `harness.technique.grade_outputs` turns it into a zero grade carrying the reason."""


def load_output(model: Type[M], outputs: dict[str, bytes], name: str) -> M:
    """The agent's JSON as `model`; raises InvalidOutput with a one-line reason."""
    raw = outputs.get(name)
    if raw is None:
        raise InvalidOutput(f"no {name} in /home/submission")
    if not raw.strip():
        raise InvalidOutput(f"{name} is empty")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InvalidOutput(f"{name} is not valid JSON: {str(e).splitlines()[0]}") from None
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
        raise InvalidOutput(f"{name} violates the schema at {where}: {err['msg']}{more}") from None


def close(a: Optional[float], b: float, tol: float) -> bool:
    return a is not None and np.isfinite(a) and abs(float(a) - float(b)) <= tol


# ====================================================================== running the agent's code


@dataclass
class Execution:
    """How one sandboxed run of the agent's code ended."""

    status: str  # succeeded | agent_failed | timeout | oom | infra_error
    exit_code: Optional[int]
    log: str
    out_dir: Path  # what the code wrote to /home/submission during grading
    seconds: float

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    def reason(self, what: str) -> str:
        if self.status == "timeout":
            return f"{what} did not finish within its time limit"
        tail = [ln for ln in self.log.strip().splitlines() if ln.strip() and not ln.startswith("[IPKernelApp]")]
        return f"{what} failed ({self.status}, exit {self.exit_code}): {tail[-1][:300] if tail else 'no output'}"


def run_sandboxed(workdir: Path, code_files: dict[str, bytes], data_dir: Path, command: list[str],
                  time_limit_s: float, env: Optional[dict[str, str]] = None, memory_gb: float = 3.0,
                  *, sandbox: str) -> Execution:
    """Run `command` the way the agent's own attempt ran: in the backend named `sandbox`
    (`local`: bubblewrap when available; `docker`: a container of the base image; pass
    `GradeContext.sandbox`, required so that no grader forgets it), with `code_files`
    (name -> bytes) in /home/code (the working directory), `data_dir` read-only at
    /home/data, at most `time_limit_s` seconds and `memory_gb` GB; what the code wrote to
    /home/submission is in `Execution.out_dir`."""
    workdir.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=workdir))
    attempt = run_dir / "attempt"
    agent = run_dir / "agent"
    for d in (attempt / "code", attempt / "submission", attempt / "logs", agent):
        d.mkdir(parents=True)
    for name, data in code_files.items():
        p = attempt / "code" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    (agent / "enter.sh").write_text('cd "$CODE_DIR" && exec "$@"\n')
    job = SandboxJob(run_id="grading", attempt_id=run_dir.name, command=["/bin/sh", "enter.sh", *command],
                     agent_dir=agent, data_dir=data_dir, attempt_dir=attempt, env=env or {},
                     resources=Resources(cpus=1, memory_gb=memory_gb), time_limit_s=time_limit_s)
    backend = get_sandbox(sandbox)
    try:
        result = backend.run(job)
    finally:
        backend.attempt_cleanup(job)
    log = (attempt / "logs" / "agent.log").read_text(errors="replace") if (attempt / "logs" / "agent.log").is_file() else ""
    return Execution(status=result.status, exit_code=result.exit_code, log=log, out_dir=attempt / "submission",
                     seconds=result.agent_seconds)


NOTEBOOK_RUNNER = r'''
import json, sys, traceback
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError
src, dest, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
nb = nbformat.read(src, as_version=4)
error = None
try:
    NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=False,
                   resources={"metadata": {"path": "."}}).execute()
except CellTimeoutError as e:
    error = "a cell ran longer than %gs" % timeout
except CellExecutionError as e:
    error = "%s: %s" % (getattr(e, "ename", "Error"), str(getattr(e, "evalue", "")).splitlines()[0][:200] if str(getattr(e, "evalue", "")) else "")
except Exception as e:
    error = "%s: %s" % (type(e).__name__, str(e).splitlines()[0][:200] if str(e) else "")
nbformat.write(nb, dest)
json.dump({"error": error}, open(dest + ".status.json", "w"))
'''


@dataclass
class NotebookRun:
    notebook: Optional[Any]  # the executed nbformat notebook
    error: Optional[str]  # one line: why it did not run to the end
    out_dir: Optional[Path]


def execute_notebook(workdir: Path, files: dict[str, bytes], notebook: str, data_dir: Path,
                     time_limit_s: float = 300.0, cell_timeout_s: float = 120.0, *, sandbox: str) -> NotebookRun:
    """Execute the agent's notebook with nbclient in the backend named `sandbox` (see `run_sandboxed`);
    never raises for what the notebook does."""
    import nbformat

    try:
        nbformat.reads(files[notebook].decode(), as_version=4)  # type: ignore[no-untyped-call]
    except Exception as e:  # noqa: BLE001 - anything unreadable is the agent's error
        return NotebookRun(None, f"{notebook} is not a readable notebook: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}", None)
    code = dict(files)
    code["_harness_run_notebook.py"] = NOTEBOOK_RUNNER.encode()
    ex = run_sandboxed(workdir, code, data_dir,
                       ["python3", "_harness_run_notebook.py", notebook, "/home/submission/executed.ipynb", str(cell_timeout_s)],
                       time_limit_s, sandbox=sandbox)
    status_file = ex.out_dir / "executed.ipynb.status.json"
    if not status_file.is_file():
        return NotebookRun(None, ex.reason(f"executing {notebook}"), ex.out_dir)
    error = json.loads(status_file.read_text())["error"]
    nb = nbformat.read(str(ex.out_dir / "executed.ipynb"), as_version=4)  # type: ignore[no-untyped-call]
    return NotebookRun(nb, f"{notebook} raised {error}" if error else None, ex.out_dir)


def notebook_facts(nb: Any) -> dict[str, Any]:
    """Counts that say whether a notebook really did its work."""
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    outputs = [o for c in code for o in c.get("outputs", [])]
    images = [o for o in outputs if o.get("output_type") in ("display_data", "execute_result") and "image/png" in o.get("data", {})]
    tables = [o for o in outputs if "text/html" in o.get("data", {}) and "<table" in o["data"]["text/html"]]
    text = "\n".join(
        (o.get("text") or "") + "".join(str(v) for k, v in o.get("data", {}).items() if k in ("text/plain", "text/html", "text/markdown"))
        for o in outputs)
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    return {
        "code_cells": len(code),
        "executed_cells": sum(1 for c in code if c.get("execution_count")),
        "images": len(images),
        "tables": len(tables),
        "errors": sum(1 for o in outputs if o.get("output_type") == "error"),
        "output_text": text,
        "markdown": markdown,
        "source": "\n".join(c.source for c in code),
    }


def new_notebook(cells: list[tuple[str, str]]) -> bytes:
    """A notebook from (kind, source) pairs, kind `md` or `code` (for reference solutions and agents)."""
    import nbformat

    nb = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    nb.cells = [nbformat.v4.new_markdown_cell(s) if k == "md" else nbformat.v4.new_code_cell(s) for k, s in cells]  # type: ignore[no-untyped-call]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return cast(str, nbformat.writes(nb)).encode()  # type: ignore[no-untyped-call]


def copy_public(public: Path, dest: Path) -> Path:
    """A copy of the public inputs for a grading run (so the sandbox mounts a folder we own)."""
    shutil.copytree(public, dest)
    return dest


# ====================================================================== what a task module receives


@dataclass
class PrepareContext:
    """Everything a task's `prepare` needs: where to write, the seed, and (technique tasks) the source table."""

    task: str
    task_id: str
    seed: int
    lite: bool
    public: Path
    private: Path
    source: Optional[Source] = None
    level: str = "easy"  # technique tasks: easy | medium | hard

    @property
    def rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)


@dataclass
class GradeContext:
    """Everything a task's `grade` needs: the prepared folders, the agent's files, a scratch dir."""

    public: Path
    private: Path
    outputs: dict[str, bytes]
    workdir: Path
    sandbox: str = "local"  # the attempt's backend (local | docker): pass it to run_sandboxed / execute_notebook

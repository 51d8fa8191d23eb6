"""Find competitions, agents and splits.

Competitions come from `harness/competitions/` and every folder on
`HARNESS_COMPETITIONS_PATH` (each entry is either one competition folder or a
folder of them); agents from the repo's `agents/` and `HARNESS_AGENTS_PATH`;
splits from `experiments/splits/*.txt`. A malformed folder is reported by path
and field and never hides the others: `Registry.problems` lists them.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.resources
import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Optional

import yaml
from pydantic import ValidationError

from harness.errors import RegistryError
from harness.mlebench_adapter import add_competitions, missing_hint, mlebench_shim
from harness.spec import AgentConfig, CompetitionConfig, Settings

#: everything built in ships inside the package (the checkout's top-level `agents/`,
#: `technique_tasks/`, `serve/` and `experiments/splits/` are links into it)
PACKAGE_DIR = Path(str(importlib.resources.files("harness"))).resolve()
BUILTIN_COMPETITIONS = PACKAGE_DIR / "competitions"
BUILTIN_AGENTS = PACKAGE_DIR / "agents"
SPLITS_DIR = PACKAGE_DIR / "splits"
#: how the user's documents name a built-in split file: `experiments/splits/dev.txt`
SPLIT_PATH_PREFIX = ("experiments", "splits")

__all__ = ["PACKAGE_DIR", "Registry", "RegistryError", "list_splits", "load_callable", "load_registry",
           "read_competition_set", "registry_for"]


@dataclass
class Registry:
    competitions: dict[str, CompetitionConfig] = field(default_factory=dict)
    agents: dict[str, AgentConfig] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def competition(self, comp_id: str) -> CompetitionConfig:
        try:
            return self.competitions[comp_id]
        except KeyError:
            broken = self._problem_of(comp_id)
            if broken:
                raise RegistryError(f"competition {comp_id!r} could not be loaded: {broken}; fix its config.yaml") from None
            raise RegistryError(
                f"unknown competition {comp_id!r}; `harness list competitions` shows the "
                f"{len(self.competitions)} known ones{self._problem_hint()}{missing_hint(comp_id)}"
            ) from None

    def agent(self, agent_id: str) -> AgentConfig:
        try:
            return self.agents[agent_id]
        except KeyError:
            broken = self._problem_of(agent_id)
            if broken:
                raise RegistryError(f"agent {agent_id!r} could not be loaded: {broken}; fix its config.yaml") from None
            raise RegistryError(
                f"unknown agent {agent_id!r}; known agents: {', '.join(sorted(self.agents)) or 'none'}"
                f"{self._problem_hint()}"
            ) from None

    def _problem_of(self, wanted: str) -> Optional[str]:
        """The load problem of the folder named for `wanted` (`aide/dev` lives in `aide/`), if any."""
        folder = wanted.split("/")[0]
        for problem in self.problems:
            path = Path(problem.split(": ", 1)[0])
            if path.name == "config.yaml" and path.parent.name == folder:
                return problem
        return None

    def _problem_hint(self) -> str:
        return f" ({len(self.problems)} folder(s) could not be loaded: {self.problems[0]})" if self.problems else ""


def load_registry(settings: Optional[Settings] = None) -> Registry:
    """Scan every source of competitions and agents. Never raises for a bad folder."""
    settings = settings or Settings.from_env()
    reg = Registry()
    for root, source in [(BUILTIN_COMPETITIONS, "builtin"), *[(p, "path") for p in settings.competitions_path]]:
        for folder in _candidate_folders(root):
            comp = _load_competition(folder, source, reg.problems)
            if comp is not None and comp.id not in reg.competitions:
                reg.competitions[comp.id] = comp
    add_competitions(reg.competitions, reg.problems)  # mlebench's own, when it is installed
    for root in [BUILTIN_AGENTS, *settings.agents_path]:
        for folder in _candidate_folders(root):
            for agent in _load_agents(folder, reg.problems):
                reg.agents.setdefault(agent.id, agent)
    return reg


def _candidate_folders(root: Path) -> list[Path]:
    """`root` itself if it holds a config.yaml, else its sub-folders that do."""
    if not root.is_dir():
        return []
    if (root / "config.yaml").is_file():
        return [root]
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / "config.yaml").is_file())


def _read_yaml(path: Path, problems: list[str]) -> Optional[Any]:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        problems.append(f"{path}: not valid YAML ({str(e).splitlines()[0]})")
        return None


def _pydantic_problem(path: Path, err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(x) for x in first["loc"]) or "(top level)"
    return f"{path}: field {where!r}: {first['msg']}"


def _load_competition(folder: Path, source: str, problems: list[str]) -> Optional[CompetitionConfig]:
    cfg_path = folder / "config.yaml"
    raw = _read_yaml(cfg_path, problems)
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.append(f"{cfg_path}: expected a mapping of keys, got {type(raw).__name__}")
        return None
    try:
        comp = CompetitionConfig(**{"id": folder.name, **raw, "dir": folder, "source": source})  # no `id`: the folder's name
    except ValidationError as e:
        problems.append(_pydantic_problem(cfg_path, e))
        return None
    if "grade_fn" not in comp.grader:
        problems.append(f"{cfg_path}: field 'grader.grade_fn' is missing (e.g. `grade:grade`)")
        return None
    return comp


def _load_agents(folder: Path, problems: list[str]) -> list[AgentConfig]:
    """An agent folder's config.yaml is either one agent (id = folder name) or, as in
    mlebench, a mapping of agent ids (`aide`, `aide/dev`) to their configs."""
    cfg_path = folder / "config.yaml"
    raw = _read_yaml(cfg_path, problems)
    if raw is None:
        return []
    if not isinstance(raw, dict):
        problems.append(f"{cfg_path}: expected a mapping of keys, got {type(raw).__name__}")
        return []
    single_keys = set(AgentConfig.model_fields) - {"id", "dir"}
    entries = {folder.name: raw} if single_keys & set(raw) else raw
    agents = []
    for agent_id, body in entries.items():
        if not isinstance(body, dict):
            problems.append(f"{cfg_path}: agent {agent_id!r} must be a mapping, got {type(body).__name__}")
            continue
        try:
            agent = AgentConfig(**{"id": str(agent_id), **body, "dir": folder})
        except ValidationError as e:
            problems.append(_pydantic_problem(cfg_path, e))
            continue
        if not agent.command and not agent.start:
            problems.append(f"{cfg_path}: agent {agent_id!r} needs `command` (local sandbox) or `start` (docker)")
            continue
        agents.append(agent)
    return agents


@functools.lru_cache(maxsize=8)
def registry_for(settings: Settings) -> Registry:
    """One registry scan per worker process and settings."""
    return load_registry(settings)


# ---------------------------------------------------------------- splits


def list_splits() -> dict[str, Path]:
    return {p.stem: p for p in sorted(SPLITS_DIR.glob("*.txt"))}


def read_competition_set(name_or_path: str) -> list[str]:
    """A split name (`lite`) or the path of a file with one competition id a line."""
    path = Path(name_or_path)
    if not path.is_file():
        # a split by name, or as the checkout names it (`experiments/splits/lite.txt`, from any
        # working directory); never another path that merely shares a split's file name
        named = SPLITS_DIR / f"{name_or_path}.txt"
        if not named.is_file() and path.parts[:-1] == SPLIT_PATH_PREFIX and path.suffix == ".txt":
            named = SPLITS_DIR / path.name
        if named.is_file() and named.parent == SPLITS_DIR:
            path = named
        else:
            raise RegistryError(
                f"competition set {name_or_path!r} is neither a split ({', '.join(list_splits())}) nor a file"
            )
    ids = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
    return [i for i in ids if i]


# ---------------------------------------------------------------- code in folders


def load_callable(folder: Path, import_string: str, what: str) -> Callable[..., Any]:
    """Resolve `module:function` the mlebench way, preferring the file of that name in
    `folder` (so `grade:grade` and `mlebench.competitions.x.grade:grade` both find
    `<folder>/grade.py`), else importing the dotted module."""
    if ":" not in import_string:
        raise RegistryError(f"{folder / 'config.yaml'}: {what} {import_string!r} must look like `module:function`")
    module_name, func_name = import_string.rsplit(":", 1)
    local = folder / (module_name.rsplit(".", 1)[-1] + ".py")
    module = _load_file_module(local) if local.is_file() else _import(module_name, folder, what)
    try:
        func: Callable[..., Any] = getattr(module, func_name)
        return func
    except AttributeError:
        raise RegistryError(f"{folder / 'config.yaml'}: {what} {import_string!r}: no function {func_name!r}") from None


@functools.lru_cache(maxsize=256)
def _load_file_module(path: Path) -> ModuleType:
    name = "harness_ext_" + hashlib.sha1(str(path).encode()).hexdigest()[:12] + "_" + path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    # let sibling modules in the folder import each other
    sys.path.insert(0, str(path.parent))
    try:
        with mlebench_shim(path):
            spec.loader.exec_module(module)
    except Exception:
        sys.modules.pop(name, None)
        raise
    finally:
        sys.path.remove(str(path.parent))
    return module


def _import(module_name: str, folder: Path, what: str) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except ImportError as e:
        raise RegistryError(f"{folder / 'config.yaml'}: {what} module {module_name!r} cannot be imported ({e})") from None

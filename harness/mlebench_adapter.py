"""mlebench's competitions in harness, and mlebench-format folders without mlebench.

With the `mlebench` package installed, `add_competitions` (called by the registry) lists
each of its competitions (source "mlebench", unless a built-in or path competition has the
same id). They are prepared by `prepare` below, which downloads the Kaggle files through
mlebench when the raw folder is empty (Kaggle credentials needed) and then runs mlebench's
own preparer; they are graded by the `grade_fn` of their config.yaml, i.e. mlebench's grader,
and get medals from mlebench's leaderboard.csv by the same rule.

Without mlebench, `add_competitions` adds nothing, and a folder in mlebench's format on
`HARNESS_COMPETITIONS_PATH` still works: `mlebench_shim` puts a small stand-in for the
parts such folders import (`mlebench.grade_helpers.InvalidSubmissionError`,
`mlebench.utils`, `mlebench.competitions.utils`) on `sys.path` while harness loads the
folder's modules. Anything else from mlebench gives a one-line hint to install it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Iterator, Optional

import yaml
from pydantic import ValidationError

from harness.errors import RegistryError
from harness.spec import CompetitionConfig

SHIM_DIR = Path(__file__).resolve().parent / "_mlebench_shim"
INSTALL_HINT = "install it with `git clone https://github.com/openai/mle-bench && pip install -e mle-bench`"


class MlebenchMissing(RegistryError):
    """Something needs the real mlebench package, which is not installed."""


def mlebench_installed() -> bool:
    """True when the real mlebench package (not harness's stand-in) can be imported."""
    loaded = sys.modules.get("mlebench")
    if loaded is not None:
        return not getattr(loaded, "__harness_shim__", False)
    try:
        spec = importlib.util.find_spec("mlebench")
    except (ImportError, ValueError):
        return False
    return spec is not None and not str(spec.origin or "").startswith(str(SHIM_DIR))


def missing_hint(comp_id: str) -> str:
    """A hint for an unknown competition id: empty when mlebench is installed (then the id
    really is unknown), else a pointer to installing mlebench for its competitions."""
    if mlebench_installed():
        return ""
    return f"; if {comp_id!r} is an mlebench competition: mlebench is not installed, {INSTALL_HINT}"


@contextlib.contextmanager
def mlebench_shim(path: Path) -> Iterator[None]:
    """While loading `path` (a module of a competition folder): make `import mlebench...`
    resolve to the stand-in if the real package is absent, and turn a missing mlebench
    module into a one-line MlebenchMissing naming the file."""
    use_shim = not mlebench_installed()
    if use_shim:
        sys.path.append(str(SHIM_DIR))  # last, so nothing else is shadowed
    try:
        yield
    except ModuleNotFoundError as e:
        if use_shim and (e.name or "").split(".")[0] == "mlebench":
            raise MlebenchMissing(f"{path} imports {e.name!r}, which needs the mlebench package; "
                                  f"mlebench is not installed, {INSTALL_HINT}") from None
        raise
    finally:
        if use_shim:
            with contextlib.suppress(ValueError):
                sys.path.remove(str(SHIM_DIR))


def add_competitions(competitions: dict[str, CompetitionConfig], problems: list[str]) -> None:
    """Add mlebench's competitions to `competitions` (id -> config; those whose ids it does not
    hold yet). A no-op without mlebench; a competition whose config cannot be read, or a broken
    mlebench install, is reported in `problems`."""
    if not mlebench_installed():
        return
    try:
        from mlebench.registry import registry as mle_registry

        comps_dir = Path(mle_registry.get_competitions_dir())
        ids = mle_registry.list_competition_ids()
    except Exception as e:  # a broken mlebench install must not hide the other competitions
        problems.append(f"mlebench is installed but its registry cannot be read: {type(e).__name__}: {e}")
        return
    for comp_id in ids:
        if comp_id in competitions:
            continue
        folder = comps_dir / comp_id
        comp = _competition(folder, problems)
        if comp is not None:
            competitions[comp.id] = comp


def _competition(folder: Path, problems: list[str]) -> Optional[CompetitionConfig]:
    cfg_path = folder / "config.yaml"
    try:
        raw = yaml.safe_load(cfg_path.read_text())
        return CompetitionConfig(**{
            "id": folder.name, **raw, "dir": folder, "source": "mlebench", "kind": raw.get("kind", "kaggle"),
            # harness's preparer wraps mlebench's: download when needed, then prepare
            "preparer": "harness.mlebench_adapter:prepare", "mlebench_preparer": raw.get("preparer", ""),
        })
    except (OSError, yaml.YAMLError, ValidationError, TypeError) as e:
        problems.append(f"{cfg_path}: cannot be read as an mlebench competition ({str(e).splitlines()[0]})")
        return None


def kaggle_credentials() -> bool:
    """Whether the Kaggle API can authenticate here (env vars or kaggle.json)."""
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return True
    config_dir = Path(os.environ.get("KAGGLE_CONFIG_DIR", Path.home() / ".kaggle"))
    return (config_dir / "kaggle.json").is_file()


def prepare(raw: Path, public: Path, private: Path) -> None:
    """Prepare an mlebench competition into harness's cache (`<data dir>/<id>/raw`, the id
    being the raw folder's parent): download and unpack the Kaggle files into `raw` if it is
    empty, then run mlebench's preparer. Raises a one-line error without credentials."""
    if not mlebench_installed():
        raise MlebenchMissing(f"competition {raw.parent.name!r} comes from mlebench, which is not installed; {INSTALL_HINT}")
    from mlebench.registry import registry as mle_registry

    comp_id = raw.parent.name
    competition = mle_registry.get_competition(comp_id)
    if not any(raw.iterdir()):
        if not kaggle_credentials():
            raise RuntimeError(
                f"competition {comp_id!r} needs its Kaggle files: set KAGGLE_USERNAME and KAGGLE_KEY (or "
                f"~/.kaggle/kaggle.json) and accept the competition's rules on Kaggle, or unpack the files into {raw}")
        from mlebench.data import download_dataset
        from mlebench.utils import extract

        archive = download_dataset(competition_id=comp_id, download_dir=raw.parent)
        extract(archive, raw, recursive=False)
    competition.prepare_fn(raw=raw, public=public, private=private)

"""Prepare a competition's data once per node: cache, file lock, checksums.

Layout under `$HARNESS_DATA_DIR` (default `~/.cache/harness/data`):

    <id>/raw/                          what the preparer reads (mlebench: the Kaggle download)
    <id>/prepared/{public,private}/    the full size
    <id>/lite/prepared/{public,private}/  the lite size, for preparers that take `lite`
    <id>/.lock                         held while preparing

A prepared folder is written under a temporary name and renamed into place, so a
reader never sees half a preparation and a crash leaves nothing to clean up.

A folder prepared by `mlebench prepare` (or by hand) in the same layout, without harness's
marker, is used as it is: harness never writes into it, never deletes it, and never
deletes any data it did not write.
"""

from __future__ import annotations

import fnmatch
import hashlib
import inspect
import shutil
import uuid
from pathlib import Path
from typing import Optional

import yaml
from filelock import FileLock
from pydantic import BaseModel

from harness.registry import load_callable
from harness.spec import CompetitionConfig, Settings

DONE_MARKER = ".harness_prepared.json"


class PrepareError(RuntimeError):
    """Preparing a competition failed; the message says which and why."""


class PreparedData(BaseModel):
    competition_id: str
    lite: bool
    public: Path
    private: Path
    answers: Path
    sample_submission: Path
    checksums: dict[str, dict[str, str]]


def preparer_takes_lite(comp: CompetitionConfig) -> bool:
    """Whether `comp`'s preparer has a `lite` parameter (False when it cannot even be loaded:
    then only data prepared elsewhere, e.g. by `mlebench prepare`, can serve it)."""
    try:
        prepare = load_callable(comp.dir, comp.preparer, "preparer")
    except Exception:
        return False
    return "lite" in inspect.signature(prepare).parameters


def prepared_root(comp: CompetitionConfig, settings: Settings, lite: bool) -> Path:
    base = settings.data_dir / comp.id
    return (base / "lite" / "prepared") if lite and preparer_takes_lite(comp) else (base / "prepared")


def _dataset_path(comp: CompetitionConfig, root: Path, key: str, default: str) -> Path:
    """mlebench writes `dataset.answers` as `<id>/prepared/private/test.csv`; keep the part after `prepared/`."""
    rel = comp.dataset.get(key, default)
    tail = rel.split("prepared/", 1)[1] if "prepared/" in rel else rel
    return root / tail


def prepared_data(comp: CompetitionConfig, settings: Settings, lite: bool) -> Optional[PreparedData]:
    """The prepared data if it is complete on this node, else None: harness's own preparation
    (its marker), or a folder in mlebench's layout without the marker, used in place."""
    root = prepared_root(comp, settings, lite)
    marker = root / DONE_MARKER
    if marker.is_file():
        data = PreparedData.model_validate_json(marker.read_text())
        return None if _stale(comp, data, pinned_lite=root.parent.name == "lite") else data
    return mlebench_prepared(comp, root, lite)


def _stale(comp: CompetitionConfig, data: PreparedData, pinned_lite: bool) -> bool:
    """harness's own preparation, made by another version of the preparer: its recorded checksums
    are not the ones the competition pins (checksums.lite.yaml when `pinned_lite`); then it is
    prepared again (see _prepare_locked)."""
    try:
        verify_checksums(comp, data.checksums, lite=pinned_lite)
    except PrepareError:
        return True
    return False


def mlebench_prepared(comp: CompetitionConfig, root: Path, lite: bool) -> Optional[PreparedData]:
    """`root` (`<data dir>/<id>/prepared`) as `mlebench prepare` leaves it, if it is complete
    there (`public/` and `private/` folders and the config's answers file, as mlebench's
    `is_dataset_prepared` asks): described without reading or writing anything in it."""
    answers = _dataset_path(comp, root, "answers", "private/answers.csv")
    if not ((root / "public").is_dir() and (root / "private").is_dir() and answers.exists()):
        return None
    return PreparedData(
        competition_id=comp.id, lite=lite, public=root / "public", private=root / "private", answers=answers,
        sample_submission=_dataset_path(comp, root, "sample_submission", "public/sample_submission.csv"),
        checksums={},
    )


def ensure_prepared(comp: CompetitionConfig, settings: Settings, lite: bool = False) -> PreparedData:
    """Prepare `comp` into this node's cache unless it already is. Safe to call from
    many processes at once: one prepares, the others wait on the lock and reuse it."""
    done = prepared_data(comp, settings, lite)
    if done is not None:
        return done
    base = settings.data_dir / comp.id
    base.mkdir(parents=True, exist_ok=True)
    with FileLock(str(base / ".lock"), timeout=3600):
        done = prepared_data(comp, settings, lite)
        if done is not None:
            return done
        return _prepare_locked(comp, settings, lite)


def _prepare_locked(comp: CompetitionConfig, settings: Settings, lite: bool) -> PreparedData:
    root = prepared_root(comp, settings, lite)
    if (root / DONE_MARKER).is_file():  # harness's own, by another version of the preparer: made again
        stale = root.parent / f".stale-{root.name}-{uuid.uuid4().hex[:8]}"
        root.rename(stale)
        shutil.rmtree(stale, ignore_errors=True)
    if root.exists():  # not harness's (no marker) nor a complete mlebench preparation: never delete it
        raise PrepareError(
            f"competition {comp.id!r}: {root} exists but is neither harness's preparation nor a complete mlebench "
            f"one (public/, private/ and {_dataset_path(comp, root, 'answers', 'private/answers.csv').relative_to(root)}); "
            "finish `mlebench prepare` there, or move it away and prepare again")
    raw = settings.data_dir / comp.id / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / f".tmp-{root.name}-{uuid.uuid4().hex[:8]}"
    public, private = tmp / "public", tmp / "private"
    public.mkdir(parents=True)
    private.mkdir(parents=True)
    prepare = load_callable(comp.dir, comp.preparer, "preparer")
    try:
        kwargs = {"lite": lite} if "lite" in inspect.signature(prepare).parameters else {}
        prepare(raw=raw, public=public, private=private, **kwargs)
    except Exception as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise PrepareError(f"preparing competition {comp.id!r} failed: {type(e).__name__}: {e}") from e
    description = comp.dir / Path(comp.description).name
    if description.is_file() and not (public / "description.md").exists():
        shutil.copyfile(description, public / "description.md")
    checksums = {"public": _md5_tree(public), "private": _md5_tree(private)}
    try:
        verify_checksums(comp, checksums, lite=root.parent.name == "lite")
    except PrepareError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    tmp.rename(root)
    data = PreparedData(
        competition_id=comp.id,
        lite=lite,
        public=root / "public",
        private=root / "private",
        answers=_dataset_path(comp, root, "answers", "private/answers.csv"),
        sample_submission=_dataset_path(comp, root, "sample_submission", "public/sample_submission.csv"),
        checksums=checksums,
    )
    for what, path in [("dataset.answers", data.answers), ("dataset.sample_submission", data.sample_submission)]:
        if not path.exists():
            raise PrepareError(f"competition {comp.id!r}: the preparer wrote no {path.relative_to(root)} ({what} in config.yaml)")
    (root / DONE_MARKER).write_text(data.model_dump_json(indent=1))
    return data


def _md5_tree(folder: Path) -> dict[str, str]:
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            out[str(p.relative_to(folder))] = hashlib.md5(p.read_bytes()).hexdigest()
    return out


def checksums_file(comp: CompetitionConfig, lite: bool) -> Path:
    return comp.dir / ("checksums.lite.yaml" if lite else "checksums.yaml")


def verify_checksums(comp: CompetitionConfig, actual: dict[str, dict[str, str]], lite: bool) -> None:
    """Compare with the competition's checksums.yaml (mlebench layout: {public: {file: md5}, private: ...})."""
    path = checksums_file(comp, lite)
    if not path.is_file():
        return
    expected = yaml.safe_load(path.read_text()) or {}
    for side in ("public", "private"):
        for name, md5 in (expected.get(side) or {}).items():
            got = actual.get(side, {}).get(name)
            if got != md5:
                raise PrepareError(
                    f"competition {comp.id!r}: {side}/{name} has checksum {got or 'missing'}, {path.name} expects {md5}; "
                    f"the preparer or its source data changed (rerun `harness calibrate {comp.id}` if intended)"
                )


def write_checksums(comp: CompetitionConfig, data: PreparedData) -> Path:
    path = checksums_file(comp, data.lite)
    # config.yaml `checksums_unpinned: ["*.png"]`: files whose bytes vary by library build (pin their content instead)
    unpinned = [str(g) for g in (getattr(comp, "checksums_unpinned", None) or [])]
    pinned = {side: {n: m for n, m in files.items() if not any(fnmatch.fnmatch(n, g) for g in unpinned)}
              for side, files in data.checksums.items()}
    path.write_text(yaml.safe_dump(pinned, sort_keys=True))
    return path

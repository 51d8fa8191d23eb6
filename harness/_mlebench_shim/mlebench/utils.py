"""The helpers of `mlebench.utils` that preparers and graders commonly import."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import yaml


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)


def read_csv(path: str | Path, **kwargs: Any) -> pd.DataFrame:
    return pd.read_csv(path, **kwargs)


def load_yaml(path: str | Path) -> Any:
    return yaml.safe_load(Path(path).read_text())


def extract(archive: str | Path, dst: str | Path, recursive: bool = False) -> None:
    """Unpack a zip/tar archive into `dst`; with `recursive`, archives found inside too."""
    dst = Path(dst)
    shutil.unpack_archive(str(archive), str(dst))
    if recursive:
        for inner in [p for p in dst.rglob("*") if p.suffix in (".zip", ".tar", ".gz", ".tgz")]:
            extract(inner, inner.parent, recursive=True)
            inner.unlink()

"""The public data a sandbox mounts, under a name that reveals nothing.

A bind mount shows its host source in the sandbox's `/proc/self/mountinfo`. Mounting a
task's public data straight from the data cache would name the cache, with the private
answers beside it (`.../prepared/private`). So the sandbox mounts it through a *view*: a
tree of hard links (copies where the filesystem refuses links) under
`<work dir>/views/<opaque id>`, made once per prepared folder and shared by its attempts
(read-only in every sandbox). The attempt's own files still come from its artifact
directory (README: the local sandbox).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path

__all__ = ["public_view"]


def public_view(public: Path, work_dir: Path) -> Path:
    """The view of the prepared folder `public` under `work_dir`: made on first use (atomically:
    built under a temporary name, then renamed), and made anew when `public` is prepared again
    (a new folder, so a new inode)."""
    st = os.stat(public)
    key = hashlib.sha256(f"{os.path.realpath(public)}\0{st.st_dev}\0{st.st_ino}\0{st.st_mtime_ns}".encode()).hexdigest()[:20]
    dest = work_dir / "views" / key
    if dest.is_dir():
        return dest
    tmp = dest.with_name(f".{key}.{os.getpid()}.{uuid.uuid4().hex[:6]}")
    tmp.mkdir(parents=True)
    try:
        _link_tree(public, tmp)
        os.chmod(tmp, 0o755)
        tmp.rename(dest)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not dest.is_dir():  # not another worker that won the race
            raise
    return dest


def _link_tree(src: Path, dest: Path) -> None:
    """Directories and regular files of `src` (harness's own preparation) into `dest`; links skipped."""
    for root, dirs, files in os.walk(src, followlinks=False):
        rel = os.path.relpath(root, src)
        out = dest if rel == "." else dest / rel
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d))]  # listed by os.walk, never entered
        for d in dirs:
            (out / d).mkdir(mode=0o755)
        for name in files:
            path = os.path.join(root, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            try:
                os.link(path, out / name, follow_symlinks=False)
            except OSError:  # another filesystem, or links refused: a copy
                shutil.copy2(path, out / name, follow_symlinks=False)


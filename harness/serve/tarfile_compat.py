"""`tarfile` extraction filters (PEP 706) for a Python that predates them.

Debian bookworm's Python 3.11.2 (the server image's) has no `filter=` argument on
`TarFile.extractall`, which harness passes (`filter="data"`) wherever it unpacks an
archive. The server image installs this module as `harness_tarfile_compat` with a `.pth`
line, so every Python process there (Ray workers too) gets the argument. It is
self-contained (no harness imports) and does nothing on a Python that has the filters.

`filter="data"` here refuses what Python's data filter refuses: absolute names, `..`,
links (symbolic or hard) that leave the destination, device files and FIFOs; it drops
set-uid/set-gid bits and group/other write bits.
"""

from __future__ import annotations

import os
import tarfile
from typing import Any


class FilterError(tarfile.TarError):
    """A member the data filter refuses (the name says which)."""


def _check(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    root = os.path.realpath(dest)
    name = member.name
    if name.startswith("/") or os.path.isabs(name):
        raise FilterError(f"{name!r} is an absolute path")
    target = os.path.realpath(os.path.join(root, name))
    if os.path.commonpath([root, target]) != root:
        raise FilterError(f"{name!r} would be extracted outside {dest}")
    if member.ischr() or member.isblk() or member.isfifo():
        raise FilterError(f"{name!r} is a special file")
    if member.issym() or member.islnk():
        base = os.path.dirname(target) if member.issym() else root
        if os.path.isabs(member.linkname):
            raise FilterError(f"{name!r} links to the absolute path {member.linkname!r}")
        link = os.path.realpath(os.path.join(base, member.linkname))
        if os.path.commonpath([root, link]) != root:
            raise FilterError(f"{name!r} links outside {dest}")
    if member.mode is not None:
        member.mode &= 0o755
    return member


def install() -> None:
    """Give TarFile.extractall a `filter` argument when this Python lacks it."""
    if hasattr(tarfile, "data_filter") or getattr(tarfile.TarFile.extractall, "_harness_compat", False):
        return
    original = tarfile.TarFile.extractall

    def extractall(self: tarfile.TarFile, path: Any = ".", members: Any = None, *, numeric_owner: bool = False,
                   filter: Any = None) -> None:  # noqa: A002  (the stdlib's name)
        chosen = list(members) if members is not None else self.getmembers()
        if filter in ("data", "tar"):
            chosen = [_check(m, os.fspath(path)) for m in chosen]
        elif callable(filter):
            chosen = [m for m in (filter(m, os.fspath(path)) for m in chosen) if m is not None]
        original(self, path, chosen, numeric_owner=numeric_owner)

    extractall._harness_compat = True  # type: ignore[attr-defined]
    tarfile.TarFile.extractall = extractall  # type: ignore[method-assign]


install()

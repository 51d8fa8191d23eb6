"""The server image (Dockerfile.server): `harness images build --server`.

Built FROM the local `harness-base:latest` (no registry). Its build context is made here:
the checkout's package files, Dockerfile.server, the wheel built from the checkout, and
`server-deps.tar`: its dependencies' wheels, downloaded on the host for the image's Python
at the versions installed beside harness (the build itself needs no PyPI), with their
requirements.txt, written byte for byte the same each time so that Docker keeps the
dependencies' layer cached and a change to harness rebuilds only its own small layer.
Tagged `harness-server:<hash of the context and the base image>`, also `harness-server:latest`
and `fleet-mle-server:latest` (the seed's name); an unchanged checkout is not rebuilt.
"""

from __future__ import annotations

import hashlib
import io
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Callable

from harness.sandbox.docker.images import LABEL, ImageBuildError, docker_client, image_exists

REPO_DIR = Path(__file__).resolve().parent.parent
SERVER_REPO = "harness-server"
SEED_TAG = "fleet-mle-server:latest"
BASE_TAG = "harness-base:latest"
DEPS_TAR = "server-deps.tar"
IMAGE_PYTHON = "3.11"
_CONTEXT_FILES = ("pyproject.toml", "README.md", "Dockerfile.server")

Log = Callable[[str], None]


def wheel_cache() -> Path:
    """Where dependency wheels are kept between builds ($XDG_CACHE_HOME/harness/server-wheels)."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "harness" / "server-wheels"


def source_files() -> list[tuple[str, Path]]:
    """(name in the context, file) for the checkout files the image installs, sorted."""
    out = [(name, REPO_DIR / name) for name in _CONTEXT_FILES]
    for p in sorted((REPO_DIR / "harness").rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith((".pyc", ".pyo")):
            out.append((p.relative_to(REPO_DIR).as_posix(), p))
    return out


def server_image_tag(base_id: str) -> str:
    """harness-server:<16 hex of the sources and the base image id>."""
    h = hashlib.sha256(base_id.encode())
    for name, p in source_files():
        h.update(name.encode() + b"\0" + p.read_bytes() + b"\0")
    return f"{SERVER_REPO}:{h.hexdigest()[:16]}"


def build_server_image(log: Log = print, force: bool = False) -> str:
    """Build the server image unless the same sources are built already; returns its tag.
    Raises ImageBuildError (from harness.sandbox.docker.images) naming the step that failed."""
    client = docker_client()
    if not image_exists(client, BASE_TAG):
        raise ImageBuildError(f"the base image {BASE_TAG} is not built here: run `harness images build --base-only` first")
    tag = server_image_tag(client.images.get(BASE_TAG).id)
    if not force and image_exists(client, tag):
        log(f"server image {tag} is present")
        _tag_aliases(client, tag)
        return tag
    with tempfile.TemporaryDirectory(prefix="harness-server-") as tmp:
        ctx = Path(tmp)
        for name, p in source_files():
            (ctx / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, ctx / name)
        _server_wheels(ctx, log)
        log(f"building {tag} from {BASE_TAG} ...")
        _docker_build(client, ctx, tag, log)
    _tag_aliases(client, tag)
    log(f"built {tag} (also tagged {SERVER_REPO}:latest and {SEED_TAG})")
    return tag


def _tag_aliases(client, tag: str) -> None:  # type: ignore[no-untyped-def]
    image = client.images.get(tag)
    image.tag(SERVER_REPO, "latest")
    repo, _, name = SEED_TAG.partition(":")
    image.tag(repo, name)


def _server_wheels(ctx: Path, log: Log) -> None:
    """The checkout's wheel into `ctx`, then every dependency's wheel (cached on the host) into ctx/server-deps.tar."""
    log("building the harness wheel from the checkout")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                           "--wheel-dir", str(ctx), str(ctx)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise ImageBuildError(f"pip could not build the harness wheel:\n{(proc.stdout + proc.stderr)[-3000:]}")
    wheel = next(ctx.glob("harness-*.whl"))
    requirements = _requirements(ctx / "pyproject.toml")
    wheels = set(_dependency_wheels(wheel, requirements, log))
    wheels |= set(wheel_cache().glob("scikit_learn-*.whl"))  # the base image's own version is reinstalled whole
    _deps_tar(ctx / DEPS_TAR, sorted(wheels), requirements)


def _dependency_wheels(wheel: Path, requirements: str, log: Log) -> list[Path]:
    """The wheels (in the host's cache) that the image installs beside `wheel`. Resolved with
    `pip download` once per set of requirements and installed versions; the list is kept in the
    cache so that later builds skip pip's round trips to the index."""
    cache = wheel_cache()
    cache.mkdir(parents=True, exist_ok=True)
    pins = _installed_pins()
    key = hashlib.sha256("\0".join([requirements, IMAGE_PYTHON, *pins, *_platforms()]).encode()).hexdigest()[:16]
    resolved = cache / f".resolved-{key}.txt"
    if resolved.is_file():
        names = resolved.read_text().split()
        if names and all((cache / n).is_file() for n in names):
            log(f"the dependencies' wheels are resolved already ({len(names)} in {cache})")
            return [cache / n for n in sorted(names)]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as c:
        c.write("\n".join(pins) + "\n")
    cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--dest", str(cache),
           "--only-binary=:all:", "--python-version", IMAGE_PYTHON, "--implementation", "cp",
           *[a for t in _platforms() for a in ("--platform", t)], "-c", c.name, str(wheel)]
    log(f"downloading the dependencies' wheels for Python {IMAGE_PYTHON} into {cache}")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:  # a pin the image's Python cannot take must not block the build
            proc = subprocess.run([a for a in cmd if a not in ("-c", c.name)], capture_output=True, text=True)
    finally:
        os.unlink(c.name)
    if proc.returncode != 0:
        raise ImageBuildError(f"pip could not download the server's wheels:\n{proc.stderr[-3000:]}")
    # pip names each wheel it used: "Saved <path>" or "File was already downloaded <path>"
    names = sorted({Path(m).name for m in re.findall(r"(?:Saved|already downloaded) (\S+\.whl)", proc.stdout)}
                   - {wheel.name})
    if not names:
        raise ImageBuildError(f"pip resolved no dependency wheels:\n{proc.stdout[-3000:]}")
    resolved.write_text("\n".join(names) + "\n")
    return [cache / n for n in names]


def _requirements(pyproject: Path) -> str:
    """harness's own dependencies (pyproject's [project].dependencies), one per line."""
    import tomllib

    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    return "".join(f"{d}\n" for d in deps)


def _deps_tar(dest: Path, wheels: list[Path], requirements: str) -> None:
    """A tar whose bytes depend only on the wheels' names and contents (no times, owners or order of listing)."""

    def add(tar: tarfile.TarFile, name: str, size: int, fileobj: io.IOBase | io.BufferedReader) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode, info.uid, info.gid = size, 0, 0o644, 0, 0
        tar.addfile(info, fileobj)

    with tarfile.open(dest, "w", format=tarfile.GNU_FORMAT) as tar:
        data = requirements.encode()
        add(tar, "requirements.txt", len(data), io.BytesIO(data))
        for p in wheels:
            with open(p, "rb") as f:
                add(tar, p.name, p.stat().st_size, f)


def _installed_pins() -> list[str]:
    from importlib.metadata import distributions

    pins = set()
    for d in distributions():
        name = (d.metadata["Name"] or "").lower().replace("_", "-")
        if name and name not in ("harness", "pip", "setuptools", "wheel"):
            pins.add(f"{name}=={d.version}")
    return sorted(pins)


def _platforms() -> list[str]:
    arch = platform.machine()
    return [f"manylinux_2_{m}_{arch}" for m in range(36, 16, -1)] + [f"manylinux2014_{arch}", "linux_" + arch, "any"]


def _docker_build(client, ctx: Path, tag: str, log: Log) -> None:  # type: ignore[no-untyped-def]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(ctx, arcname=".")
    buf.seek(0)
    tail: list[str] = []
    for chunk in client.api.build(fileobj=buf, custom_context=True, tag=tag, dockerfile="Dockerfile.server", rm=True,
                                  forcerm=True, pull=False, buildargs={"BASE": BASE_TAG},
                                  labels={LABEL: "server"}, decode=True):
        if "stream" in chunk:
            for line in chunk["stream"].rstrip("\n").splitlines():
                tail = (tail + [line])[-60:]
                log(line)
        elif "error" in chunk:
            raise ImageBuildError(f"building {tag} failed: {chunk['error'].strip()}\n" + "\n".join(tail))


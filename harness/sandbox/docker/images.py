"""Docker images for agents: the harness base image and one image per agent folder.

* `harness-base:<recipe hash>` (also tagged `harness-base:latest`): Python 3.11 with
  the packages in docker/requirements.txt at the versions installed beside harness,
  a non-root user (uid 1000), and the source datasets of built-in competitions
  emptied. Two recipes, one Dockerfile (docker/base.Dockerfile):
  `debootstrap` (no registry needed: a minimal Debian from the machine's apt mirror,
  `docker import`ed) and `registry` (FROM python:3.11-slim). The wheels are
  downloaded on the host, so the image build itself needs no network.
* `harness-agent:<hash of the agent folder and the base image>`: built from the
  agent folder's Dockerfile with the folder as the build context, on demand, and
  never rebuilt while the folder is unchanged. An agent without a Dockerfile runs
  in the base image.

Every image harness builds ends with a layer that empties the hidden package data
again, so an agent image that reinstalls scikit-learn does not bring its datasets back.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
from concurrent.futures import ThreadPoolExecutor
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Optional

from harness.sandbox.base import SandboxUnavailable
from harness.sandbox.paths import AGENT, CODE, HIDDEN_PACKAGE_DATA, LOGS, SUBMISSION

#: the base image's recipe (base.Dockerfile, requirements.txt, hide_datasets.py), shipped in the package
DOCKER_DIR = Path(__file__).resolve().parent / "recipe"
BASE_REPO = "harness-base"
AGENT_REPO = "harness-agent"
ROOTFS_REPO = "harness-rootfs"
ROOTFS_SUITE = "bookworm"  # its python3 is 3.11, the version the wheels are fetched for
IMAGE_PYTHON = "3.11"
ROOTFS_PACKAGES = ["python3", "python3-pip", "ca-certificates", "procps"]
REGISTRY_BASE = f"python:{IMAGE_PYTHON}-slim"
LABEL = "harness"  # every image and container harness makes carries this label
SEAL_SCRIPT = ".harness_hide_datasets.py"

Log = Callable[[str], None]
BaseMethod = Literal["auto", "debootstrap", "registry"]


class ImageBuildError(RuntimeError):
    """An image could not be built; the message ends with the failing step's output."""


# ---------------------------------------------------------------- the engine


@functools.lru_cache(maxsize=1)
def _client_cached(base_url: str):  # type: ignore[no-untyped-def]
    import docker

    return docker.DockerClient(base_url=base_url, version="auto", timeout=120)  # type: ignore[attr-defined]


def docker_client() -> Any:
    """A client of the local Docker engine, or SandboxUnavailable saying how to get one."""
    base_url = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = _client_cached(base_url)
        client.ping()
        return client
    except Exception as e:  # noqa: BLE001  (the SDK raises several kinds for "nobody answers")
        _client_cached.cache_clear()
        raise SandboxUnavailable(
            f"no Docker engine answers at {base_url} ({type(e).__name__}): start one with "
            "`scripts/setup_docker.sh` (or `dockerd &` / `systemctl start docker`), or use `--sandbox local`"
        ) from None


def engine_unavailable() -> Optional[str]:
    try:
        docker_client()
        return None
    except SandboxUnavailable as e:
        return str(e)


def image_exists(client: Any, tag: str) -> bool:
    import docker

    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:  # type: ignore[attr-defined]
        return False


# ---------------------------------------------------------------- the base image


def hidden_package_args() -> list[str]:
    return [f"{pkg}:{sub}" for pkg, sub in HIDDEN_PACKAGE_DATA]


def pinned_requirements() -> list[str]:
    """docker/requirements.txt, each pinned to the version installed beside harness when there is one."""
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for line in (DOCKER_DIR / "requirements.txt").read_text().splitlines():
        name = line.split("#", 1)[0].strip()
        if not name:
            continue
        try:
            out.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            out.append(name)
    return out


def _environment_constraints(requirements: list[str]) -> list[str]:
    """Every other distribution installed beside harness, as a constraint, so the
    dependencies of the base packages also match the local sandbox's."""
    from importlib.metadata import distributions

    named = {re.split(r"[=<>!~ ]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}
    out = set()
    for d in distributions():
        name = (d.metadata["Name"] or "").lower().replace("_", "-")
        if name and name not in named and name not in ("harness", "pip", "setuptools", "wheel"):
            out.add(f"{name}=={d.version}")
    return sorted(out)


@functools.lru_cache(maxsize=1)
def base_recipe_hash() -> str:
    """Hash of the base image's recipe and pinned versions (fixed for the life of a process)."""
    h = hashlib.sha256()
    for name in ("base.Dockerfile", "hide_datasets.py"):
        h.update((DOCKER_DIR / name).read_bytes())
    h.update("\n".join(pinned_requirements() + hidden_package_args() + [IMAGE_PYTHON]).encode())
    return h.hexdigest()[:12]


def base_image_tag() -> str:
    """The base image this harness (its recipe and its environment's package versions) runs agents in."""
    return f"{BASE_REPO}:{base_recipe_hash()}"


def ensure_base_image(client=None, method: BaseMethod = "auto", log: Log = print, force: bool = False) -> str:  # type: ignore[no-untyped-def]
    """Build the base image unless it is there already; returns its tag.

    `auto` uses debootstrap where it is installed (no registry needed), else the registry recipe."""
    client = client or docker_client()
    tag = base_image_tag()
    if not force and image_exists(client, tag):
        log(f"base image {tag} is present")
        return tag
    with _build_lock(tag):
        if not force and image_exists(client, tag):
            return tag
        if method == "auto":
            method = "debootstrap" if shutil.which("debootstrap") else "registry"
        with tempfile.TemporaryDirectory(prefix="harness-base-") as tmp:
            ctx = Path(tmp)
            requirements = pinned_requirements()
            with ThreadPoolExecutor(max_workers=1) as pool:  # wheels download while debootstrap runs
                wheels = pool.submit(_download_wheels, requirements, ctx / "wheels", log)
                base = build_rootfs_image(client, log) if method == "debootstrap" else REGISTRY_BASE
                wheels.result()
            (ctx / "requirements.txt").write_text("\n".join(requirements) + "\n")
            for name in ("base.Dockerfile", "hide_datasets.py"):
                shutil.copy(DOCKER_DIR / name, ctx / name)
            log(f"building {tag} from {base} ...")
            _build(client, _tar_dir(ctx), tag, log, dockerfile="base.Dockerfile",
                   buildargs={"BASE": base, "HIDDEN": " ".join(hidden_package_args())},
                   labels={LABEL: "base", "harness.recipe": method})
        client.images.get(tag).tag(BASE_REPO, "latest")
        log(f"built {tag} (also tagged {BASE_REPO}:latest)")
    return tag


def _download_wheels(requirements: list[str], dest: Path, log: Log) -> None:
    """Wheels for the image's Python and platform, fetched on the host (the host reaches PyPI; a build container may not)."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as c:
        c.write("\n".join(_environment_constraints(requirements)) + "\n")
    arch = platform.machine()
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--dest", str(dest),
           "--only-binary=:all:", "--python-version", IMAGE_PYTHON, "--implementation", "cp",
           *_manylinux_platforms(arch), "-c", c.name, *requirements]
    log(f"downloading wheels for Python {IMAGE_PYTHON}: {' '.join(requirements)}")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            # a constraint the image's Python cannot satisfy must not block the build: retry with the pins alone
            proc = subprocess.run([a for a in cmd if a not in ("-c", c.name)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise ImageBuildError(f"pip could not download the base image's wheels:\n{proc.stderr[-3000:]}")
    finally:
        os.unlink(c.name)


def _manylinux_platforms(arch: str) -> list[str]:
    """pip takes --platform literally: every manylinux tag the image's glibc (2.36) accepts."""
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(36, 16, -1)]
    tags += [f"manylinux2014_{arch}", f"manylinux2010_{arch}", f"manylinux1_{arch}"]
    return [a for t in tags for a in ("--platform", t)]


def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses ($HARNESS_DEBIAN_MIRROR overrides)."""
    if os.environ.get("HARNESS_DEBIAN_MIRROR"):
        return os.environ["HARNESS_DEBIAN_MIRROR"]
    files = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for f in files:
        try:
            text = f.read_text()
        except OSError:
            continue
        # one-line format: deb [opts] URI suite ...; deb822: URIs: ...
        for m in re.finditer(r"^\s*(?:deb\s+(?:\[[^\]]*\]\s+)?|URIs:\s*)(\S+)", text, re.M):
            uri = m.group(1).rstrip("/")
            if uri.startswith("http") and uri.endswith("/debian"):
                return uri
    raise ImageBuildError("found no Debian mirror in /etc/apt/sources.list*: set HARNESS_DEBIAN_MIRROR=http://<mirror>/debian")


def build_rootfs_image(client, log: Log = print) -> str:  # type: ignore[no-untyped-def]
    """A minimal Debian with python3, made by debootstrap and `docker import`ed (skipped when present)."""
    tag = f"{ROOTFS_REPO}:{ROOTFS_SUITE}"
    if image_exists(client, tag):
        log(f"root filesystem image {tag} is present")
        return tag
    if not shutil.which("debootstrap"):
        raise ImageBuildError("debootstrap is not installed: `apt-get install -y debootstrap`, or build with --base-from registry")
    mirror = debian_mirror()
    with tempfile.TemporaryDirectory(prefix="harness-rootfs-") as tmp:
        root = Path(tmp) / "rootfs"
        cmd = ["debootstrap", "--variant=minbase", f"--include={','.join(ROOTFS_PACKAGES)}", ROOTFS_SUITE, str(root), mirror]
        log(f"$ {' '.join(cmd)}")
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise ImageBuildError(f"debootstrap failed (exit {proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for p in (root / junk).glob("*"):
                if p.is_file():
                    p.unlink()
        archive = Path(tmp) / "rootfs.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add(root, arcname=".")
        log(f"importing {archive.stat().st_size / 1e6:.0f} MB as {tag}")
        client.api.import_image_from_file(str(archive), repository=ROOTFS_REPO, tag=ROOTFS_SUITE,
                                          changes=[f"LABEL {LABEL}=rootfs", "ENV LANG=C.UTF-8"])
    return tag


# ---------------------------------------------------------------- agent images


def agent_dockerfile(agent_dir: Path) -> Optional[Path]:
    """The agent folder's Dockerfile: `Dockerfile`, or the file its mlebench `dockerfile` key names."""
    if (agent_dir / "Dockerfile").is_file():
        return agent_dir / "Dockerfile"
    for name in _config_values(agent_dir, "dockerfile"):
        p = agent_dir / Path(name).name  # mlebench writes `aide/Dockerfile`, relative to the agents folder
        if p.is_file():
            return p
    return None


def owns_agent_dir(agent_dir: Path) -> bool:
    """An mlebench agent (a `dockerfile` key) builds /home/agent into its image, so the folder is not mounted over it."""
    return bool(_config_values(agent_dir, "dockerfile"))


def _config_values(agent_dir: Path, key: str) -> list[str]:
    import yaml

    try:
        raw = yaml.safe_load((agent_dir / "config.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return []
    if not isinstance(raw, dict):
        return []
    bodies = [raw] if key in raw else [b for b in raw.values() if isinstance(b, dict)]
    return [str(b[key]) for b in bodies if b.get(key)]


def folder_hash(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            h.update(str(p.relative_to(folder)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def agent_image(agent_dir: Path, client=None, log: Log = print) -> str:  # type: ignore[no-untyped-def]
    """The image an agent folder runs in: its own (built now unless present), else the base image.
    Raises SandboxUnavailable when the base image is missing, ImageBuildError when a build fails."""
    client = client or docker_client()
    base = base_image_tag()
    if not image_exists(client, base):
        raise SandboxUnavailable(f"the harness base image {base} is not built here: run `harness images build`")
    dockerfile = agent_dockerfile(agent_dir)
    if dockerfile is None:
        return base
    base_id = client.images.get(base).id
    digest = hashlib.sha256((folder_hash(agent_dir) + base_id + (DOCKER_DIR / "hide_datasets.py").read_text()).encode())
    tag = f"{AGENT_REPO}:{digest.hexdigest()[:16]}"
    if image_exists(client, tag):
        return tag
    with _build_lock(tag):
        if image_exists(client, tag):
            return tag
        text = dockerfile.read_text()
        # the seal: empty the source datasets again, whatever the agent's Dockerfile installed
        text += (f"\nUSER root\nCOPY {SEAL_SCRIPT} /tmp/{SEAL_SCRIPT}\n"
                 f"RUN (python3 /tmp/{SEAL_SCRIPT} {' '.join(hidden_package_args())} || true) && rm -f /tmp/{SEAL_SCRIPT}\n")
        extra = {"Dockerfile.harness": text.encode(), SEAL_SCRIPT: (DOCKER_DIR / "hide_datasets.py").read_bytes()}
        log(f"[harness] building the agent image {tag} from {dockerfile.name} ...")
        _build(client, _tar_dir(agent_dir, extra), tag, log, dockerfile="Dockerfile.harness",
               buildargs={"HARNESS_BASE": base, "SUBMISSION_DIR": SUBMISSION, "LOGS_DIR": LOGS,
                          "CODE_DIR": CODE, "AGENT_DIR": AGENT},
               labels={LABEL: "agent", "harness.agent_folder": agent_dir.name})
        log(f"[harness] built {tag}")
    return tag


# ---------------------------------------------------------------- building


def _tar_dir(folder: Path, extra: Optional[dict[str, bytes]] = None) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for p in sorted(folder.rglob("*")):
            if "__pycache__" in p.parts:
                continue
            tar.add(p, arcname=str(p.relative_to(folder)), recursive=False)
        for name, data in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def _build(client, context: io.BytesIO, tag: str, log: Log, dockerfile: str,  # type: ignore[no-untyped-def]
           buildargs: dict[str, str], labels: dict[str, str]) -> None:
    """docker build through the SDK, every output line to `log`; ImageBuildError with the failing step's output."""
    step: list[str] = []
    for chunk in client.api.build(fileobj=context, custom_context=True, tag=tag, dockerfile=dockerfile, rm=True,
                                  forcerm=True, pull=False, buildargs=buildargs, labels=labels, decode=True):
        if "stream" in chunk:
            text = chunk["stream"]
            if text.startswith("Step "):
                step = []
            step.append(text)
            for line in text.rstrip("\n").splitlines():
                log(line)
        elif "error" in chunk:
            log(chunk["error"])
            output = "".join(step[-60:]).strip()
            raise ImageBuildError(f"building {tag} failed: {chunk['error'].strip()}\n{output}")


class _build_lock:
    """One build of a tag at a time on this machine (concurrent attempts of one agent)."""

    def __init__(self, tag: str) -> None:
        from filelock import FileLock

        d = Path(tempfile.gettempdir()) / "harness-image-locks"
        d.mkdir(exist_ok=True)
        self.lock = FileLock(str(d / (re.sub(r"[^A-Za-z0-9_.-]", "_", tag) + ".lock")))

    def __enter__(self) -> None:
        self.lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self.lock.release()


def build_images(agents: Iterable[Path], method: BaseMethod = "auto", log: Log = print, force_base: bool = False) -> list[str]:
    """`harness images build`: the base image, then each agent folder's image. Returns the tags."""
    client = docker_client()
    tags = [ensure_base_image(client, method=method, log=log, force=force_base)]
    for folder in agents:
        tags.append(agent_image(folder, client, log=log))
    return tags

"""Agents uploaded by users: a `.tar.gz` of an agent folder, or a git URL and ref the server clones.

    POST /agents?name=my-agent   (body: the .tar.gz)        -> alice/my-agent
    POST /agents {"name": "my-agent", "git_url": "...", "ref": "main"}

Every upload is hostile input. The archive is read as a stream and unpacked member by
member: a member whose header says the folder would pass the size or file-count limit is
refused before its data is read; absolute names, `..`, links that leave the folder, hard
links to anything but an earlier file, device files and FIFOs are refused with the member's
name. A git checkout gets the same walk. The folder's config.yaml must be one agent
(AgentConfig); when the folder has a Dockerfile its image is built at once (the log is kept
and served). The agent is registered as `<user>/<name>`, versioned by the hash of its
content, and only its owner (or an admin) can see or run it.

Layout, inside the run store (so the server's volume keeps it):

    <store>/.agents/<user>/<name>/current.json          {"version": "<hash>"}
    <store>/.agents/<user>/<name>/<hash>/agent/         the folder (config.yaml keyed by the agent id)
    <store>/.agents/<user>/<name>/<hash>/build.log      the docker build, when there was one
    <store>/.agents/<user>/<name>/<hash>/meta.json      who, when, from where, image
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import shutil
import stat
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import IO, Any, Optional

import yaml
from pydantic import BaseModel, ValidationError

from harness.spec import AgentConfig, utcnow
from harness.store import atomic_write_text

AGENT_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MAX_UPLOAD_BYTES = 64 << 20  # the compressed archive on the wire
MAX_FOLDER_BYTES = 256 << 20  # the unpacked folder
MAX_FILES = 5000
GIT_TIMEOUT_S = 120.0
ALLOW_LOCAL_GIT_ENV = "HARNESS_AGENTS_ALLOW_LOCAL_GIT"
_COPY_CHUNK = 1 << 20


class AgentRejected(Exception):
    """An upload that is not registered: `reason` in one sentence, `log` the check's or build's output."""

    def __init__(self, reason: str, log: str = "", status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.log = log
        self.status = status


class UploadedAgent(BaseModel):
    """One registered version of a user's agent."""

    id: str
    owner: str
    name: str
    version: str
    source: str
    created_at: str
    image: Optional[str] = None
    files: int
    bytes: int
    description: str = ""
    build_log: Optional[str] = None


class AgentLibrary:
    """Users' agents under `<store>/.agents`."""

    def __init__(self, store_root: Path, allow_local_git: Optional[bool] = None) -> None:
        self.root = store_root / ".agents"
        self.allow_local_git = allow_local_git if allow_local_git is not None else \
            os.environ.get(ALLOW_LOCAL_GIT_ENV, "") not in ("", "0", "false")

    # ---------------------------------------------------------------- registering

    def register_tarball(self, user: str, name: str, archive: Path, build: bool = True) -> UploadedAgent:
        """Check and unpack a .tar.gz of an agent folder, build its image, register it; AgentRejected when not."""
        _check_name(name)
        with tempfile.TemporaryDirectory(prefix="harness-upload-") as tmp:
            folder = Path(tmp) / "agent"
            folder.mkdir()
            unpack_agent_tarball(archive, folder)
            return self._register(user, name, folder, "upload", build)

    def register_git(self, user: str, name: str, url: str, ref: Optional[str], build: bool = True) -> UploadedAgent:
        """Clone `url` at `ref` (a branch, tag or commit; default the remote's HEAD), check and register it."""
        _check_name(name)
        self._check_url(url)
        with tempfile.TemporaryDirectory(prefix="harness-git-") as tmp:
            folder = Path(tmp) / "agent"
            _git_checkout(url, ref, folder, self.allow_local_git)
            shutil.rmtree(folder / ".git", ignore_errors=True)
            check_folder(folder)
            return self._register(user, name, folder, f"git {url}" + (f" @ {ref}" if ref else ""), build)

    def _register(self, user: str, name: str, folder: Path, source: str, build: bool) -> UploadedAgent:
        agent_id = f"{user}/{name}"
        body = check_config(folder)
        version = content_hash(folder)
        files, size = folder_size(folder)
        # the registry names the agent after the key of its config: `<user>/<name>`
        (folder / "config.yaml").write_text(yaml.safe_dump({agent_id: body}, sort_keys=False))
        home = self.root / user / name / version
        meta = UploadedAgent(id=agent_id, owner=user, name=name, version=version, source=source,
                             created_at=utcnow().isoformat(), files=files, bytes=size,
                             description=str(body.get("description", "")))
        if not (home / "meta.json").is_file():
            tmp_home = home.with_name(f".{version}.{os.getpid()}.tmp")
            shutil.rmtree(tmp_home, ignore_errors=True)
            tmp_home.mkdir(parents=True)
            shutil.copytree(folder, tmp_home / "agent", symlinks=True)
            if build:
                meta = meta.model_copy(update=_build_image(tmp_home / "agent", tmp_home / "build.log", tmp_home))
            atomic_write_text(tmp_home / "meta.json", meta.model_dump_json(indent=2))
            shutil.rmtree(home, ignore_errors=True)
            tmp_home.rename(home)
        else:
            meta = UploadedAgent.model_validate_json((home / "meta.json").read_text())
        atomic_write_text(self.root / user / name / "current.json", json.dumps({"version": version}))
        return meta

    def _check_url(self, url: str) -> None:
        if not url or url.startswith("-") or any(c in url for c in "\0\n\r"):
            raise AgentRejected(f"git_url {url!r} is not a repository URL")
        remote = re.match(r"^(https?|ssh|git)://", url) or re.match(r"^[\w.-]+@[\w.-]+:", url)
        if not remote and not self.allow_local_git:
            raise AgentRejected(f"git_url {url!r}: only https://, ssh:// and git:// remotes are cloned here "
                                f"(a path on the server is refused unless its operator sets {ALLOW_LOCAL_GIT_ENV}=1)")

    # ---------------------------------------------------------------- reading

    def current(self, user: str, name: str) -> Optional[UploadedAgent]:
        try:
            version = json.loads((self.root / user / name / "current.json").read_text())["version"]
            return UploadedAgent.model_validate_json((self.root / user / name / version / "meta.json").read_text())
        except (OSError, ValueError, KeyError):
            return None

    def folder(self, agent: UploadedAgent) -> Path:
        return self.root / agent.owner / agent.name / agent.version / "agent"

    def build_log(self, agent: UploadedAgent) -> Optional[Path]:
        p = self.root / agent.owner / agent.name / agent.version / "build.log"
        return p if p.is_file() else None

    def resolve(self, agent_id: str, user: str, admin: bool) -> Optional[UploadedAgent]:
        """The agent `<owner>/<name>` when `user` may use it (its owner, or an admin); else None."""
        owner, _, name = agent_id.partition("/")
        if not name or "/" in name or not AGENT_NAME.match(name) or (owner != user and not admin):
            return None
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", owner):
            return None
        return self.current(owner, name)

    def list(self, user: str, admin: bool) -> list[UploadedAgent]:
        """The current version of every agent of `user` (of everybody for an admin), sorted by id."""
        if not self.root.is_dir():
            return []
        owners = sorted(os.listdir(self.root)) if admin else [user]
        out = []
        for owner in owners:
            d = self.root / owner
            if not d.is_dir() or d.is_symlink():
                continue
            for name in sorted(os.listdir(d)):
                agent = self.current(owner, name)
                if agent is not None:
                    out.append(agent)
        return out

    def delete(self, agent_id: str, user: str, admin: bool) -> UploadedAgent:
        """Remove every version of the agent; AgentRejected(404) when `user` has no such agent."""
        agent = self.resolve(agent_id, user, admin)
        if agent is None:
            raise AgentRejected(f"no agent {agent_id!r} of user {user!r}; GET /agents lists yours", status=404)
        shutil.rmtree(self.root / agent.owner / agent.name)
        return agent


# -------------------------------------------------------------------- checks


def _check_name(name: str) -> None:
    if not AGENT_NAME.match(name or ""):
        raise AgentRejected(f"agent name {name!r}: use 1-64 lower-case letters, digits, . _ - (it becomes <user>/<name>)")


def unpack_agent_tarball(archive: Path, dest: Path) -> None:
    """Unpack a .tar.gz into the empty folder `dest`, member by member, refusing anything hostile
    (AgentRejected naming the member). Links are made last, so no member is written through one."""
    files = 0
    total = 0
    links: list[tuple[str, str]] = []
    seen_files: set[str] = set()
    try:
        tar = tarfile.open(archive, mode="r|gz")
    except (tarfile.TarError, OSError) as e:
        raise AgentRejected(f"the upload is not a .tar.gz archive ({e}); make it with `tar czf agent.tar.gz -C <folder> .`") from None
    with tar:
        try:
            for m in tar:
                rel = _member_path(m.name)
                if rel is None:
                    continue  # the archive's root (`.`)
                files += 1
                if files > MAX_FILES:
                    raise AgentRejected(f"the archive has more than {MAX_FILES} entries; an agent folder holds code, not data")
                if m.ischr() or m.isblk():
                    raise AgentRejected(f"{m.name!r} is a device file; an agent folder holds only files, folders and links inside it")
                if m.isfifo() or not (m.isfile() or m.isdir() or m.issym() or m.islnk()):
                    raise AgentRejected(f"{m.name!r} is a FIFO or special file; an agent folder holds only files, folders and links")
                if any(rel == d or rel.startswith(d + "/") for d, _ in links):
                    raise AgentRejected(f"{m.name!r} lies under a link in the archive; refusing to write through links")
                if m.issym():
                    if not _link_inside(rel, m.linkname):
                        raise AgentRejected(f"{m.name!r} is a link to {m.linkname!r}, outside the agent folder; "
                                            "only links to files inside it are allowed")
                    links.append((rel, m.linkname))
                    continue
                if m.islnk():
                    try:
                        target = _member_path(m.linkname)
                    except AgentRejected:
                        target = None
                    if target is None or target not in seen_files:
                        raise AgentRejected(f"{m.name!r} is a hard link to {m.linkname!r}, which is not a file earlier in the "
                                            "archive; hard links may only point at files inside the agent folder")
                    total += (dest / target).stat().st_size
                    _check_total(total, m.name)
                    (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(dest / target, dest / rel)  # a copy, never a link shared with anything
                    seen_files.add(rel)
                    continue
                if m.isdir():
                    (dest / rel).mkdir(parents=True, exist_ok=True)
                    continue
                total += m.size
                _check_total(total, m.name)  # from the header: a 2 GB member is refused before it is read
                out = dest / rel
                out.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(m)
                assert src is not None
                _copy_capped(src, out, m.size)
                os.chmod(out, 0o755 if m.mode & 0o111 else 0o644)
                seen_files.add(rel)
        except (tarfile.TarError, EOFError, OSError) as e:
            raise AgentRejected(f"the archive is damaged or truncated ({type(e).__name__}: {e})") from None
    for rel, target in links:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, dest / rel)
    check_folder(dest)


def _member_path(name: str) -> Optional[str]:
    """A member's name as a clean relative path, None for the root; AgentRejected when it could leave."""
    if not name or "\0" in name or "\\" in name or name.startswith("/"):
        raise AgentRejected(f"archive member {name!r} has an absolute or malformed name")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise AgentRejected(f"archive member {name!r} climbs out of the folder with `..`")
    return "/".join(parts) or None


def _link_inside(rel: str, target: str) -> bool:
    if not target or target.startswith("/") or "\0" in target:
        return False
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
    return joined != ".." and not joined.startswith("../") and joined != "."


def _check_total(total: int, name: str) -> None:
    if total > MAX_FOLDER_BYTES:
        raise AgentRejected(f"{name!r} takes the folder over the size limit of {MAX_FOLDER_BYTES >> 20} MB unpacked; "
                            "leave data and model weights out of the agent folder")


def _copy_capped(src: IO[bytes], out: Path, size: int) -> None:
    written = 0
    with open(out, "xb") as f:
        while True:
            chunk = src.read(_COPY_CHUNK)
            if not chunk:
                break
            written += len(chunk)
            if written > size:
                raise AgentRejected(f"{out.name!r} holds more bytes than its header says")
            f.write(chunk)


def check_folder(root: Path) -> None:
    """Walk an agent folder without following links: every link must stay inside, no device
    files or FIFOs, within the size and file-count limits. AgentRejected naming the path."""
    files = 0
    total = 0
    real_root = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            st = os.lstat(full)
            files += 1
            if files > MAX_FILES:
                raise AgentRejected(f"the folder has more than {MAX_FILES} entries; an agent folder holds code, not data")
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(full)
                resolved = (full.parent / target).resolve()
                if os.path.isabs(target) or (resolved != real_root and real_root not in resolved.parents):
                    raise AgentRejected(f"{rel!r} is a link to {target!r}, outside the agent folder; "
                                        "only links to files inside it are allowed")
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                raise AgentRejected(f"{rel!r} is a device file; an agent folder holds only files, folders and links inside it")
            elif not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                raise AgentRejected(f"{rel!r} is a FIFO or socket; an agent folder holds only files, folders and links")
            elif stat.S_ISREG(st.st_mode):
                total += st.st_size
                _check_total(total, rel)


def check_config(folder: Path) -> dict[str, Any]:
    """The folder's config.yaml as one agent's settings (validated as AgentConfig); AgentRejected naming the field."""
    path = folder / "config.yaml"
    if path.is_symlink() or not path.is_file():
        raise AgentRejected("config.yaml is missing at the top of the agent folder (see harness/agents/dummy/config.yaml)")
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise AgentRejected(f"config.yaml is not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise AgentRejected(f"config.yaml must be a mapping of settings (command, resources, ...), got {type(raw).__name__}")
    known = set(AgentConfig.model_fields) - {"id", "dir"}
    if not known & set(raw):
        raise AgentRejected(f"config.yaml names none of the agent settings ({', '.join(sorted(known))}); "
                            "an uploaded folder is one agent, e.g. `command: python3 run.py`")
    for key in ("id", "dir"):
        if key in raw:
            raise AgentRejected(f"config.yaml: field {key!r} is set by the server; remove it")
    try:
        agent = AgentConfig(id="upload", dir=folder, **raw)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "(top level)"
        raise AgentRejected(f"config.yaml: field {where!r}: {first['msg']}") from None
    if not agent.command and not agent.start:
        raise AgentRejected("config.yaml needs `command` (what to run, e.g. `python3 run.py`) or `start` (docker)")
    if agent.privileged:
        raise AgentRejected("config.yaml: field 'privileged': an uploaded agent cannot ask for a privileged container")
    return raw


def content_hash(folder: Path) -> str:
    """16 hex digits of sha256 over every path, file content and link target, in sorted order."""
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_symlink():
            h.update(b"L" + rel.encode() + b"\0" + os.readlink(p).encode() + b"\0")
        elif p.is_file():
            h.update(b"F" + rel.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def folder_size(folder: Path) -> tuple[int, int]:
    """(entries, bytes of regular files)."""
    entries = 0
    size = 0
    for p in folder.rglob("*"):
        entries += 1
        if p.is_file() and not p.is_symlink():
            size += p.stat().st_size
    return entries, size


def _git_checkout(url: str, ref: Optional[str], dest: Path, allow_local: bool) -> None:
    dest.mkdir(parents=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(dest.parent), "GIT_TERMINAL_PROMPT": "0",
           "GIT_CONFIG_NOSYSTEM": "1", "GIT_ASKPASS": "/bin/false", "GIT_ALLOW_PROTOCOL": "https:http:ssh:git" +
           (":file" if allow_local else "")}
    steps = [["git", "init", "-q", str(dest)],
             ["git", "-C", str(dest), "-c", "protocol.file.allow=" + ("always" if allow_local else "never"),
              "fetch", "-q", "--depth", "1", "--no-tags", "--", url, ref or "HEAD"],
             ["git", "-C", str(dest), "-c", "core.symlinks=true", "-c", "core.hooksPath=/dev/null",
              "checkout", "-q", "FETCH_HEAD"]]
    for cmd in steps:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=GIT_TIMEOUT_S)
        except FileNotFoundError:
            raise AgentRejected("git is not installed on the server; upload a .tar.gz of the folder instead", status=503) from None
        except subprocess.TimeoutExpired:
            raise AgentRejected(f"cloning {url!r} took over {GIT_TIMEOUT_S:g} s; upload a .tar.gz of the folder instead") from None
        if proc.returncode != 0:
            raise AgentRejected(f"cloning {url!r} at {ref or 'HEAD'!r} failed: "
                                f"{(proc.stderr.strip().splitlines() or ['git failed'])[-1]}", log=proc.stderr[-4000:])


def _build_image(folder: Path, log_path: Path, home: Path) -> dict[str, Any]:
    """Build the folder's docker image when it has a Dockerfile; the log goes to `log_path`.
    Returns the meta fields to set; AgentRejected with the log when the build fails."""
    from harness.sandbox.docker.images import ImageBuildError, agent_dockerfile, agent_image
    from harness.sandbox.base import SandboxUnavailable

    if agent_dockerfile(folder) is None:
        return {}
    lines: list[str] = []
    try:
        tag = agent_image(folder, log=lines.append)
    except (ImageBuildError, SandboxUnavailable) as e:
        log_path.write_text("\n".join(lines) + f"\n{e}\n")
        shutil.rmtree(home, ignore_errors=True)
        raise AgentRejected(f"building the agent's docker image failed: {str(e).splitlines()[0]}",
                            log="\n".join(lines)[-8000:] + f"\n{e}"[-4000:]) from None
    lines.append(f"[harness] agent image {tag}" + ("" if len(lines) > 0 else " (built before from the same content)"))
    log_path.write_text("\n".join(lines) + "\n")
    return {"image": tag, "build_log": "build.log"}

"""The docker sandbox: one container per attempt, through the docker SDK.

The container shows the agent what the local sandbox shows it: the public data
read-only at /home/data, its own submission/logs/code dirs writable, its folder
read-only at /home/agent, the instructions and the validate script, and harness
itself read-only (without its competitions folder) so `python3 -m harness.validate`
works. Private answers are never mounted. No network unless the agent asks for it;
memory, CPU, pids and /dev/shm limits from its resources; GPUs when it asks and the
node has them; docker-init as PID 1; a non-root user.

The container is removed whatever happens. One that outlives its driver (a crash,
a killed Ray worker) carries labels naming its creator and its deadline, and the
next docker attempt on the machine, or `harness sandbox gc`, removes it.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Optional

from harness.sandbox.docker.images import LABEL, ImageBuildError, agent_image, base_image_tag, docker_client, image_exists, owns_agent_dir
from harness.sandbox.base import (
    ENOSPC,
    FULL_BYTES,
    WRITABLE_DIRS,
    CappedLog,
    Sandbox,
    SandboxJob,
    SandboxUnavailable,
    copy_back,
    copy_inputs,
    log_tail,
    seed_writable,
    wait_for_end,
)
from harness.safe_files import tree_bytes
from harness.sandbox.paths import AGENT, CODE, DATA, INSTRUCTIONS, LOGS, SUBMISSION, VALIDATE
from harness.sandbox.paths import HARNESS_PKG, HIDDEN_HARNESS_DIRS, SANDBOX_HARNESS
from harness.spec import AttemptStatus, SandboxResult

AGENT_UID = 1000  # the base image's `nonroot`; used when harness itself runs as root
KIND = "sandbox"  # value of the `harness` label on attempt containers
_GRACE_S = 120  # past a container's deadline by this much, it is a leftover whoever made it
_SELF_KILL_S = 10  # the container kills itself this long after its time limit, even with no driver left
LOG_MAX = "16m"  # docker's own json log of a container (rotated, one file): the engine never holds more
_LOG_MAX_BYTES = 16 * 1024**2
_DISK_CHECK_S = 1.0  # how often uncapped scratch dirs are measured
_WRITABLE_SHOWN = f"{SUBMISSION}, {CODE}, {LOGS}"  # how a disk-full error names the writable dirs


class DockerSandbox(Sandbox):
    name = "docker"
    supports_gpus = True
    can_disable_internet = True

    @classmethod
    def available(cls) -> Optional[str]:
        try:
            client = docker_client()
        except SandboxUnavailable as e:
            return str(e)
        tag = base_image_tag()
        if not image_exists(client, tag):
            return f"the harness base image {tag} is not built here: run `harness images build` (or scripts/setup_docker.sh)"
        return None

    def run(self, job: SandboxJob, cancel: Optional[threading.Event] = None) -> SandboxResult:
        import docker

        self.attempt_init(job)
        details: dict[str, Any] = {"sandbox": "docker"}
        t0 = time.monotonic()
        try:
            client = docker_client()
            _collect_leftovers_once(client)
            refusal = gpu_refusal(job.resources.gpus)
            if refusal:
                return self._infra(job, refusal, details)
            with open(job.log_path, "a", buffering=1) as log:
                image = job.image or agent_image(job.agent_dir, client, log=lambda line: _write_line(log, line))
            details["image"] = image
            name = container_name(job)
            scratch = _Scratch.make(job, name)
        except (SandboxUnavailable, ImageBuildError) as e:
            return self._infra(job, str(e), details, t0)
        except docker.errors.DockerException as e:  # type: ignore[attr-defined]
            return self._infra(job, f"could not reach the Docker engine: {e}", details, t0)
        except OSError as e:
            return self._infra(job, f"could not make the attempt's scratch dirs: {e}", details, t0)
        try:
            try:
                config = self._container_config(job, image, scratch)
                details["container"] = config["name"] = name
                container = client.containers.create(**config)
            except docker.errors.DockerException as e:  # type: ignore[attr-defined]
                return self._infra(job, f"could not create the container: {e}", details, t0)
            try:
                result = self._supervise(job, container, cancel, t0, scratch)
            except docker.errors.DockerException as e:  # type: ignore[attr-defined]
                result = SandboxResult(status="infra_error", isolation="docker", agent_seconds=time.monotonic() - t0,
                                       error=f"the Docker engine failed during the attempt: {e}")
            finally:
                _remove(container)
            details["copied_out"] = scratch.copy_back(job)
        finally:
            scratch.close()
        self.write_record(job, result, **details)
        return result

    def _infra(self, job: SandboxJob, error: str, details: dict[str, Any], t0: Optional[float] = None) -> SandboxResult:
        with open(job.log_path, "a") as log:
            log.write(f"[harness] {error}\n")
        result = SandboxResult(status="infra_error", isolation="docker", error=error,
                               agent_seconds=0.0 if t0 is None else time.monotonic() - t0)
        self.write_record(job, result, **details)
        return result

    # -------------------------------------------------------------- the container

    def _container_config(self, job: SandboxJob, image: str, scratch: "_Scratch") -> dict[str, Any]:
        from docker.types import DeviceRequest, LogConfig, Mount

        def bind(target: str, source: Path, read_only: bool) -> Mount:
            return Mount(target, str(source.resolve()), type="bind", read_only=read_only)

        home = scratch.home
        mounts = [
            bind(DATA, job.data_dir, True),
            bind(SUBMISSION, home / "submission", False),
            bind(LOGS, home / "logs", False),
            bind(CODE, home / "code", False),
            bind(f"{SANDBOX_HARNESS}/harness", HARNESS_PKG, True),
            *(bind(b.target, b.source, b.read_only) for b in job.binds),
        ]
        if not owns_agent_dir(job.agent_dir):
            mounts.append(bind(AGENT, job.agent_dir, True))
        for target, name in ((INSTRUCTIONS, "instructions.md"), (VALIDATE, "validate_submission.sh")):
            if (scratch.root / name).is_file():
                mounts.append(bind(target, scratch.root / name, True))
        res = job.resources
        threads = str(max(1, int(res.cpus)))
        env = {
            "HOME": "/tmp",
            "LANG": "C.UTF-8",
            "TMPDIR": "/tmp",
            "PYTHONPATH": SANDBOX_HARNESS,
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            "MPLCONFIGDIR": "/tmp/.mpl",
            "OMP_NUM_THREADS": threads,
            "OPENBLAS_NUM_THREADS": threads,
            "VALIDATE_SUBMISSION": VALIDATE,
            "DATA_DIR": DATA,
            "SUBMISSION_DIR": SUBMISSION,
            "LOGS_DIR": LOGS,
            "CODE_DIR": CODE,
            "AGENT_DIR": AGENT,
            "INSTRUCTIONS": INSTRUCTIONS,
            **job.env,
        }
        memory = int(res.memory_gb * 1024**3)
        uid, gid = _agent_ids()
        return dict(
            image=image,
            # the command replaces the image's entrypoint (mlebench images start a grading server there);
            # `timeout` ends it inside the container too, so it dies on time even when no driver is left
            entrypoint=["timeout", "-s", "KILL", str(int(job.time_limit_s) + _SELF_KILL_S), *job.command[:1]],
            command=job.command[1:],
            name=container_name(job),
            labels={
                LABEL: KIND,
                "harness.run_id": job.run_id,
                "harness.attempt_id": job.attempt_id,
                "harness.creator": f"{socket.gethostname()}:{os.getpid()}",
                "harness.deadline": str(int(time.time() + job.time_limit_s)),
                "harness.scratch": str(scratch.root),
            },
            environment=env,
            user=f"{uid}:{gid}",
            working_dir=AGENT,
            hostname="sandbox",
            mounts=mounts,
            read_only=True,  # nothing but /tmp and the scratch binds is writable: no writable layer to fill
            tmpfs={"/tmp": f"size={job.disk_bytes},mode=1777",
                   **{f"{SANDBOX_HARNESS}/harness/{sub}": "size=64k,mode=0555" for sub in HIDDEN_HARNESS_DIRS}},
            log_config=LogConfig(type="json-file", config={"max-size": LOG_MAX, "max-file": "2"}),
            network_mode="bridge" if job.network else "none",
            mem_limit=memory,
            memswap_limit=memory,  # no swapping past the limit
            nano_cpus=int(res.cpus * 1e9),
            pids_limit=res.pids,
            shm_size=int(res.shm_gb * 1024**3),
            device_requests=[DeviceRequest(count=res.gpus, capabilities=[["gpu"]])] if res.gpus else None,
            init=True,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            stdin_open=False,
            tty=False,
            detach=True,
        )

    def _supervise(self, job: SandboxJob, container: Any, cancel: Optional[threading.Event], t0: float,
                   scratch: "_Scratch") -> SandboxResult:
        # attached before the start, so nothing is missed: the attach stream is the container's stdio itself,
        # not docker's (rotated, bounded) log file, which a follow stream loses track of when it rotates
        stream = container.attach(stdout=True, stderr=True, stream=True, logs=False)
        container.start()
        started = time.monotonic()
        exited = threading.Event()
        waited: dict[str, Any] = {}
        streamed = {"bytes": 0}
        logger = threading.Thread(target=_stream_logs, args=(stream, job.log_path, streamed), daemon=True)
        logger.start()
        threading.Thread(target=_wait, args=(container, waited, exited), daemon=True).start()
        memory = _MemoryWatch(container.id)
        disk = _DiskWatch(job, scratch)

        def tick() -> None:
            memory.sample()
            if disk.check():
                _kill(container)

        why = wait_for_end(exited, started + job.time_limit_s, cancel, tick)
        if why:
            _kill(container)
            exited.wait(30)
        seconds = time.monotonic() - started
        logger.join(10)
        if streamed["bytes"] < _LOG_MAX_BYTES:  # then docker's whole log is small too
            _append_unstreamed(container, job.log_path, streamed["bytes"])
        container.reload()
        state = container.attrs.get("State", {})
        exit_code = waited.get("code", state.get("ExitCode"))
        status: AttemptStatus
        if why:
            with open(job.log_path, "ab") as log:
                log.write(f"\n[harness] {why} after {seconds:.1f}s (limit {job.time_limit_s:g}s): container killed\n".encode())
            status = "timeout" if why == "timeout" else "cancelled"
        elif state.get("OOMKilled"):
            status = "oom"
        elif waited.get("error"):
            return SandboxResult(status="infra_error", isolation="docker", exit_code=exit_code, agent_seconds=seconds,
                                 peak_memory_mb=memory.peak_mb, error=f"lost the container: {waited['error']}")
        elif exit_code == 0 and not disk.full:
            status = "succeeded"
        else:
            status = "agent_failed"
        full = disk.full or scratch.full()
        if status == "agent_failed" and (full or ENOSPC in log_tail(job.log_path, 2000)):
            return SandboxResult(status=status, exit_code=exit_code, isolation="docker", agent_seconds=seconds,
                                 peak_memory_mb=memory.peak_mb,
                                 error=f"the agent filled its disk: the limit of {job.resources.disk_gb:g} GB "
                                       f"(resources.disk_gb) was reached in {full or 'a writable dir'}")
        error = {
            "oom": f"memory limit of {job.resources.memory_gb:g} GB exceeded",
            "agent_failed": f"agent exited with code {exit_code}",
            "timeout": f"time limit of {job.time_limit_s:g}s exceeded",
            "cancelled": "cancelled",
        }.get(status)
        return SandboxResult(status=status, exit_code=exit_code, isolation="docker", agent_seconds=seconds,
                             peak_memory_mb=memory.peak_mb, error=error)


def _write_line(log: Any, line: str) -> None:
    log.write(line + "\n")


def container_name(job: SandboxJob) -> str:
    slug: Callable[[str, int], str] = lambda s, n: re.sub(r"[^A-Za-z0-9_.-]+", "-", s)[:n].strip("-.")  # noqa: E731
    return f"harness-{slug(job.attempt_id, 80)}-{uuid.uuid4().hex[:8]}"


def _stream_logs(stream: Any, path: Path, streamed: dict[str, int]) -> None:
    """Both streams, as the engine hands them over, appended to logs/agent.log (head and tail kept, see CappedLog)."""
    log = CappedLog(path)
    try:
        for chunk in stream:
            log.write(chunk)
            streamed["bytes"] += len(chunk)
    except Exception:  # noqa: BLE001  (the container was removed under the stream: nothing more to read)
        pass
    finally:
        log.close()


class _DiskWatch:
    """Without a capped scratch tmpfs (harness may not mount, or dockerd does not share its mounts):
    the scratch dirs measured every _DISK_CHECK_S; `full` names them once past resources.disk_gb
    (/tmp is a size-capped tmpfs of its own, and the container's root is read-only)."""

    def __init__(self, job: SandboxJob, scratch: "_Scratch") -> None:
        self.limit = job.disk_bytes
        self.paths = [] if scratch.capped else [scratch.home / name for name in WRITABLE_DIRS]
        self.full: Optional[str] = None
        self.next = time.monotonic()

    def check(self) -> bool:
        """True the first time the limit is passed."""
        if self.full or not self.paths or time.monotonic() < self.next:
            return False
        self.next = time.monotonic() + _DISK_CHECK_S
        used = 0
        for p in self.paths:
            used += tree_bytes(p, self.limit - used)
        if used > self.limit:
            self.full = _WRITABLE_SHOWN
            return True
        return False


class _Scratch:
    """The agent's writable dirs while its container runs: <scratch>/<container>/home/{submission,code,logs}
    in the node's work dir (so the container's mountinfo names neither the store nor the data cache),
    on one tmpfs of resources.disk_gb that harness mounts when it may (root, and dockerd sharing
    harness's mount namespace; `capped`), else plain dirs that _DiskWatch measures. Copied into the
    attempt dir by the rules of harness.safe_files after every ending, then unmounted and removed."""

    def __init__(self, root: Path, capped: bool) -> None:
        self.root = root
        self.home = root / "home"
        self.capped = capped

    @classmethod
    def make(cls, job: SandboxJob, name: str) -> "_Scratch":
        root = (job.scratch_dir or job.attempt_dir.parent / ".scratch") / name
        (root / "home").mkdir(parents=True, mode=0o711)
        uid, gid = _agent_ids()
        capped = _may_mount() and _mount_tmpfs(root / "home", job.disk_bytes, uid, gid)
        self = cls(root, capped)
        for sub in WRITABLE_DIRS:
            (self.home / sub).mkdir(exist_ok=True)
            os.chown(self.home / sub, uid, gid)
        seed_writable(job, self.home)
        copy_inputs(job, root)
        return self

    def full(self) -> Optional[str]:
        """The writable dirs, when their capped tmpfs has (almost) no space left."""
        if not self.capped:
            return None
        try:
            st = os.statvfs(self.home)
        except OSError:
            return None
        return _WRITABLE_SHOWN if st.f_bavail * st.f_frsize < FULL_BYTES else None

    def copy_back(self, job: SandboxJob) -> dict[str, object]:
        fd = os.open(self.home, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            return copy_back(fd, job)
        finally:
            os.close(fd)

    def close(self) -> None:
        if self.capped:
            subprocess.run(["umount", "-l", str(self.home)], capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def _may_mount() -> bool:
    """harness runs as root and dockerd sees harness's mounts (same mount namespace: its pid file's
    process shares ours), so a tmpfs mounted here is what the container's bind shows."""
    if os.geteuid() != 0:
        return False
    try:
        pid = int(Path("/var/run/docker.pid").read_text().strip())
        return os.stat(f"/proc/{pid}/ns/mnt").st_ino == os.stat("/proc/self/ns/mnt").st_ino
    except (OSError, ValueError):
        return False


def _mount_tmpfs(where: Path, size: int, uid: int, gid: int) -> bool:
    mount = shutil.which("mount")
    if mount is None:
        return False
    opts = f"size={max(size, 1 << 20)},mode=0755,uid={uid},gid={gid},nosuid,nodev"
    return subprocess.run([mount, "-t", "tmpfs", "-o", opts, "harness-scratch", str(where)],
                          capture_output=True, check=False).returncode == 0


def _append_unstreamed(container: Any, path: Path, streamed: int) -> None:
    """A last line without a newline can miss a follow stream that ends with the container: take it from the full log."""
    import docker

    try:
        full = container.logs(stdout=True, stderr=True)
    except docker.errors.APIError:  # type: ignore[attr-defined]
        return
    if len(full) > streamed:
        with open(path, "ab") as log:
            log.write(full[streamed:])


def _wait(container: Any, out: dict[str, Any], exited: threading.Event) -> None:
    try:
        out["code"] = container.wait(timeout=None)["StatusCode"]
    except Exception as e:  # noqa: BLE001
        out["error"] = f"{type(e).__name__}: {e}"
    finally:
        exited.set()


def _kill(container: Any) -> None:
    """SIGKILL to docker-init, PID 1 of the container's namespace: the kernel ends every process in it."""
    import docker

    try:
        container.kill()
    except docker.errors.APIError:  # type: ignore[attr-defined]
        pass  # it exited meanwhile


def _remove(container: Any) -> None:
    import docker

    for _ in range(20):
        try:
            container.remove(force=True, v=True)
            return
        except docker.errors.NotFound:  # type: ignore[attr-defined]
            return
        except docker.errors.APIError as e:  # type: ignore[attr-defined]
            if "already in progress" in str(e):
                return
            time.sleep(0.25)


class _MemoryWatch:
    """The container's peak memory from its cgroup (v1 or v2), read while it runs."""

    def __init__(self, container_id: str) -> None:
        self.peak_mb: Optional[float] = None
        self.files = [Path(f"/sys/fs/cgroup/memory/docker/{container_id}/memory.max_usage_in_bytes"),
                      Path(f"/sys/fs/cgroup/memory/system.slice/docker-{container_id}.scope/memory.max_usage_in_bytes"),
                      Path(f"/sys/fs/cgroup/system.slice/docker-{container_id}.scope/memory.peak"),
                      Path(f"/sys/fs/cgroup/docker/{container_id}/memory.peak")]

    def sample(self) -> None:
        for f in self.files:
            try:
                mb = int(f.read_text()) / 1024**2
            except (OSError, ValueError):
                continue
            self.peak_mb = max(self.peak_mb or 0.0, mb)
            self.files = [f]
            return


def _agent_ids() -> tuple[int, int]:
    if os.getuid() == 0:
        return AGENT_UID, AGENT_UID
    return os.getuid(), os.getgid()


def gpu_refusal(asked: int) -> Optional[str]:
    """None when this node can give `asked` GPUs to a container, else why not (before anything starts)."""
    if asked <= 0:
        return None
    have = len([p for p in Path("/dev").glob("nvidia[0-9]*")])
    if have >= asked:
        return None
    return (f"the agent asks for {asked} GPU(s) and this node has {have} (no /dev/nvidia* devices): refused before start; "
            "run it where GPUs are (Ray schedules by `resources.gpus`) or set `resources.gpus: 0` in its config.yaml")


# ---------------------------------------------------------------- leftovers


def _creator_gone(creator: str) -> bool:
    host, _, pid = creator.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def collect_leftovers(client: Any = None, everything: bool = False) -> list[str]:
    """Remove attempt containers whose creating process is gone (or whose deadline passed long ago;
    all of them with `everything`). Returns their names."""
    client = client or docker_client()
    removed = []
    for c in client.containers.list(all=True, filters={"label": f"{LABEL}={KIND}"}):
        labels = c.labels or {}
        overdue = time.time() > float(labels.get("harness.deadline", "inf")) + _GRACE_S
        if everything or overdue or _creator_gone(labels.get("harness.creator", "")):
            _remove(c)
            if labels.get("harness.scratch"):  # the scratch tmpfs a killed driver left mounted
                _Scratch(Path(labels["harness.scratch"]), capped=True).close()
            removed.append(c.name)
    return removed


_collected = threading.Event()


def _collect_leftovers_once(client: Any) -> None:
    if not _collected.is_set():
        _collected.set()
        collect_leftovers(client)

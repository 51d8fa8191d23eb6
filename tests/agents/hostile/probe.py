"""Hostile probes, one per run ($PROBE). Each records what it managed in $LOGS_DIR/probe.json
(True = the hostile action worked) and prints it; the tests assert every value is False."""

import json
import os
import socket
import subprocess
import sys

probe = os.environ.get("PROBE", "escalate")
sub = os.environ.get("SUBMISSION_DIR", "/home/submission")
logs = os.environ.get("LOGS_DIR", "/home/logs")
out: dict = {}


def ok(name, argv):
    """Whether a command succeeded (a missing command counts as failed, and says so)."""
    try:
        r = subprocess.run(argv, capture_output=True, timeout=20)
        out[name] = r.returncode == 0
    except (OSError, subprocess.TimeoutExpired) as e:
        out[name] = False
        out.setdefault("notes", []).append(f"{name}: {e}")


def writes(name, path):
    try:
        with open(path, "a") as f:
            f.write("# hostile\n")
        out[name] = True
    except OSError:
        out[name] = False


def host_path_of(target):
    """The host path of a mount, as /proc/self/mountinfo gives it (the mount's root within its filesystem)."""
    for line in open("/proc/self/mountinfo"):
        f = line.split()
        if f[4] == target:
            return f[3]
    return None


if probe == "escalate":
    status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
    out["caps"] = status["CapEff"].strip() != "0000000000000000"
    out["no_new_privs_off"] = status.get("NoNewPrivs", "0").strip() != "1"
    hidden = "/opt/harness/harness/competitions"
    ok("umount_hidden", ["umount", hidden])
    ok("umount_hidden_in_userns", ["unshare", "-Urm", "umount", hidden])
    ok("remount_data_rw", ["mount", "-o", "remount,rw", "/home/data"])
    ok("remount_usr_rw_in_userns", ["unshare", "-Urm", "mount", "-o", "remount,rw,bind", "/usr"])
    ok("mount_cgroup", ["mount", "-t", "cgroup", "-o", "memory", "cgroup", "/tmp"])
    ok("mount_cgroup2", ["mount", "-t", "cgroup2", "none", "/tmp"])
    ok("mount_proc", ["mount", "-t", "proc", "proc", "/tmp"])
    ok("mount_tmpfs", ["mount", "-t", "tmpfs", "x", "/home/data"])
    out["cgroup_fs_writable"] = any(os.access(os.path.join(d, f), os.W_OK)
                                    for d, _, fs in os.walk("/sys/fs/cgroup") for f in fs if f.endswith(".max")
                                    or f.endswith("limit_in_bytes"))
    writes("write_data", "/home/data/sample_submission.csv")
    writes("write_agent", "/home/agent/probe.py")
    writes("write_harness", "/opt/harness/harness/grading.py")
    import numpy  # site-packages
    writes("write_site_packages", numpy.__file__)
    writes("write_usr", "/usr/bin/env")
    try:
        from sklearn.datasets import load_breast_cancer
        load_breast_cancer()
        out["rebuild_answers"] = True
    except Exception:  # noqa: BLE001
        out["rebuild_answers"] = False
elif probe == "symlink":
    data_src = host_path_of("/home/data") or "/"
    answers = os.path.normpath(os.path.join(data_src, "..", "private", "answers.csv"))
    os.symlink(answers, os.path.join(sub, "submission.csv"))
elif probe == "parentdir":
    data_src = host_path_of("/home/data") or "/"
    os.symlink(os.path.normpath(os.path.join(data_src, "..", "private")), os.path.join(sub, "priv"))
    os.symlink("priv/answers.csv", os.path.join(sub, "submission.csv"))
elif probe == "hardlink":
    with open(os.path.join(sub, "real.csv"), "w") as f:
        f.write("id,y\n1,1\n2,0\n")
    os.link(os.path.join(sub, "real.csv"), os.path.join(sub, "submission.csv"))
elif probe == "fifo":
    os.mkfifo(os.path.join(sub, "submission.csv"))
elif probe == "big":
    with open(os.path.join(sub, "submission.csv"), "wb") as f:
        f.write(b"id,y\n")
        f.truncate(2 * 1024**3)  # 2 GB, sparse
elif probe == "stdout":
    chunk = b"x" * 1023 + b"\n"
    sys.stdout.buffer.write(b"FIRST-LINE\n")
    for _ in range(int(os.environ.get("PROBE_MB", "50")) * 1024):
        sys.stdout.buffer.write(chunk)
    sys.stdout.buffer.write(b"LAST-LINE\n")
    sys.stdout.flush()
elif probe == "fill":
    import time
    target = os.path.join(os.environ.get("PROBE_DIR", sub), "fill.bin")
    block = b"\0" * 1024**2
    with open(target, "wb") as f:
        for _ in range(2000):  # 2 GB at most, 1 MB at a time
            f.write(block)
            f.flush()
            time.sleep(0.005)
    sys.exit(0)
elif probe == "net":
    for target in os.environ.get("PROBE_CONNECT", "").split(","):
        host, port = target.rsplit(":", 1)
        try:
            socket.create_connection((host, int(port)), timeout=3).close()
            out[f"connect {target}"] = True
        except OSError:
            out[f"connect {target}"] = False
    out["interfaces"] = [line.split(":")[0].strip() for line in open("/proc/net/dev").readlines()[2:]]

os.makedirs(logs, exist_ok=True)
with open(os.path.join(logs, "probe.json"), "w") as f:
    json.dump(out, f)
print(json.dumps(out))

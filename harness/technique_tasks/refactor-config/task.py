"""refactor-config: a script of hard-coded constants -> config.yaml + a configurable train.py.

The original (numpy mini-batch SGD, logistic or hinge loss) has seeded constants.
The grader runs the agent's train.py in the sandbox under its config (paths
redirected) and under a changed config (half the learning rate, 3 epochs), and
compares final metrics with the original's under the same settings (recorded at
prepare time); it also checks the config's keys and defaults, per-epoch logs and
checkpoints."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from harness.techniques import (Checks, Grade, GradeContext, Manifest, PrepareContext, invalid, read_truth,
                                     run_sandboxed, write_manifest, write_truth)

NAME = "refactor-config"
KIND = "engineering"
DESCRIPTION = "Refactor a hard-coded train.py into config.yaml + a train.py that logs, checkpoints and behaves the same."
KEYS = ["learning_rate", "batch_size", "epochs", "l2", "seed", "model_type", "data_path", "output_dir", "checkpoint_dir"]
ORIGINAL = '''"""Train a linear classifier on data.csv. Every setting is hard-coded below."""
import json
import os

import numpy as np

DATA_PATH = os.path.join(os.environ.get("DATA_DIR", "/home/data"), "data.csv")
OUTPUT_DIR = os.environ.get("OUTPUT_DIR", "/home/submission")
CHECKPOINT_DIR = os.path.join(OUTPUT_DIR, "checkpoints")
LEARNING_RATE = {learning_rate}
BATCH_SIZE = {batch_size}
EPOCHS = {epochs}
L2 = {l2}
SEED = {seed}
MODEL_TYPE = "{model_type}"  # logistic | hinge
CLIP = 5.0

data = np.loadtxt(DATA_PATH, delimiter=",", skiprows=1)
X, y = data[:, :-1], data[:, -1]
mu, sd = X.mean(axis=0), X.std(axis=0)
sd[sd == 0] = 1.0
X = (X - mu) / sd

rng = np.random.default_rng(SEED)
w = rng.normal(0, 0.01, X.shape[1])
b = 0.0


def loss_and_grad(xb, yb, w, b):
    z = xb @ w + b
    if MODEL_TYPE == "logistic":
        p = 1.0 / (1.0 + np.exp(-z))
        loss = -np.mean(yb * np.log(p + 1e-12) + (1 - yb) * np.log(1 - p + 1e-12))
        g = p - yb
    else:
        s = 2 * yb - 1
        margin = s * z
        loss = np.mean(np.maximum(0, 1 - margin))
        g = np.where(margin < 1, -s, 0.0)
    return loss + 0.5 * L2 * float(w @ w), g


for epoch in range(EPOCHS):
    order = rng.permutation(len(X))
    for start in range(0, len(X), BATCH_SIZE):
        idx = order[start:start + BATCH_SIZE]
        xb, yb = X[idx], y[idx]
        _, g = loss_and_grad(xb, yb, w, b)
        grad_w = np.clip(xb.T @ g / len(idx) + L2 * w, -CLIP, CLIP)
        w = w - LEARNING_RATE * grad_w
        b = b - LEARNING_RATE * float(np.clip(g.mean(), -CLIP, CLIP))

loss, _ = loss_and_grad(X, y, w, b)
accuracy = float(np.mean(((X @ w + b) > 0) == (y == 1)))
print(f"final loss {{loss:.6f}} accuracy {{accuracy:.4f}}")
os.makedirs(OUTPUT_DIR, exist_ok=True)
with open(os.path.join(OUTPUT_DIR, "final_metrics.json"), "w") as f:
    json.dump({{"loss": float(loss), "accuracy": accuracy, "w_norm": float(np.linalg.norm(w))}}, f)
'''


def applies_to(task_type: str) -> bool:
    return False


def _run_original(public: Path, settings: dict) -> dict:
    """The original script, with `settings` substituted, run on the public data (trusted code)."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "train.py"
        script.write_text(ORIGINAL.format(**settings))
        env = {**os.environ, "DATA_DIR": str(public), "OUTPUT_DIR": tmp, "OMP_NUM_THREADS": "1"}
        subprocess.run([sys.executable, str(script)], env=env, check=True, capture_output=True, timeout=300)
        return json.loads((Path(tmp) / "final_metrics.json").read_text())


def prepare(ctx: PrepareContext) -> None:
    rng = ctx.rng
    n = 800
    X = rng.normal(0, 1, (n, 6)) * rng.uniform(0.5, 20, 6) + rng.uniform(-10, 10, 6)
    w = rng.normal(0, 1, 6)
    z = ((X - X.mean(0)) / X.std(0)) @ w + rng.normal(0, 1, n)
    df = pd.DataFrame(np.round(X, 4), columns=[f"x{i}" for i in range(6)])
    df["y"] = (z > 0).astype(int)
    df.to_csv(ctx.public / "data.csv", index=False)
    defaults = {"learning_rate": float(rng.choice([0.05, 0.1, 0.2])), "batch_size": int(rng.choice([16, 32, 64])),
                "epochs": int(rng.integers(6, 11)), "l2": float(rng.choice([0.0, 0.001, 0.01])), "seed": int(rng.integers(0, 1000)),
                "model_type": str(rng.choice(["logistic", "hinge"]))}
    changed = {**defaults, "learning_rate": defaults["learning_rate"] / 2, "epochs": 3}
    (ctx.public / "train.py").write_text(ORIGINAL.format(**defaults))
    write_truth(ctx.private, {"defaults": defaults, "changed": changed, "default_metrics": _run_original(ctx.public, defaults),
                              "changed_metrics": _run_original(ctx.public, changed)})
    write_manifest(ctx.public, Manifest(task=NAME, kind=KIND, source=NAME, outputs=["config.yaml", "train.py"],
                                        files={"script": "train.py", "data": "data.csv"}))


def _same(a: dict, b: dict) -> bool:
    return all(k in a and isinstance(a[k], (int, float)) and abs(float(a[k]) - float(b[k])) <= 1e-6 * max(1.0, abs(float(b[k])))
               for k in ("loss", "accuracy"))


def grade(ctx: GradeContext) -> Grade:
    t = read_truth(ctx.private)
    for f in ("config.yaml", "train.py"):
        if f not in ctx.outputs:
            return invalid(f"no {f} in /home/submission")
    try:
        config = yaml.safe_load(ctx.outputs["config.yaml"])
    except yaml.YAMLError as e:
        return invalid(f"config.yaml is not valid YAML: {str(e).splitlines()[0]}")
    if not isinstance(config, dict):
        return invalid("config.yaml is not a mapping of keys to values")
    missing = [k for k in KEYS if k not in config]
    if missing:
        return invalid(f"config.yaml lacks the keys {missing}")
    c = Checks()
    c.add("config keys", 1, 1, "all keys present")
    bad = [k for k, v in t["defaults"].items() if not (config[k] == v or (isinstance(v, float) and isinstance(config[k], (int, float)) and abs(config[k] - v) < 1e-12))]
    c.add("config defaults", not bad, 1, "ok" if not bad else f"defaults differ from the original for {bad}")
    runs = {}
    for label, settings in (("default", {}), ("changed", {"learning_rate": t["changed"]["learning_rate"], "epochs": t["changed"]["epochs"]})):
        cfg = {**config, **settings, "data_path": "/home/data/data.csv", "output_dir": "/home/submission/out",
               "checkpoint_dir": "/home/submission/checkpoints"}
        files = {"train.py": ctx.outputs["train.py"], "config.yaml": ctx.outputs["config.yaml"],
                 "grading_config.yaml": yaml.safe_dump(cfg).encode()}
        runs[label] = run_sandboxed(ctx.workdir, files, ctx.public, ["python3", "train.py", "--config", "grading_config.yaml"], time_limit_s=180,
                                    sandbox=ctx.sandbox)
    ex = runs["default"]
    if not ex.ok:
        return invalid(ex.reason("python train.py --config (default settings)"))
    c.add("runs", 1, 1, "default config ran")
    metrics = _read_metrics(ex.out_dir / "out" / "final_metrics.json")
    ok = metrics is not None and _same(metrics, t["default_metrics"])
    c.add("same as original (default config)", ok, 2, "ok" if ok else f"final metrics {metrics} differ from the original's {t['default_metrics']}")
    ch = runs["changed"]
    cm = _read_metrics(ch.out_dir / "out" / "final_metrics.json") if ch.ok else None
    ok = cm is not None and _same(cm, t["changed_metrics"])
    c.add("follows a changed config", ok, 2, "ok" if ok else
          f"with learning_rate={t['changed']['learning_rate']} epochs=3 the original gives {t['changed_metrics']}, the refactor {cm if ch.ok else ch.reason('the run')}")
    epochs = {int(m) for m in re.findall(r"(?im)^\s*\W*epoch\W{0,3}(\d+)", ex.log)}
    want = int(t["defaults"]["epochs"])
    c.add("per-epoch logs", len(epochs) >= want, 1, f"{len(epochs)} distinct epoch lines for {want} epochs")
    ck = [p for p in (ex.out_dir / "checkpoints").rglob("*") if p.is_file()] if (ex.out_dir / "checkpoints").is_dir() else []
    c.add("checkpoints", bool(ck), 1, f"{len(ck)} checkpoint file(s) in checkpoint_dir")
    return c.grade()


def _read_metrics(path: Path) -> dict | None:
    try:
        m = json.loads(path.read_text())
        return m if isinstance(m, dict) else None
    except (OSError, ValueError):
        return None


REFERENCE = '''"""Train a linear classifier on data.csv; every setting comes from a YAML config."""
import argparse
import json
import os
from pathlib import Path

import numpy as np
import yaml

parser = argparse.ArgumentParser()
parser.add_argument("--config", default=str(Path(__file__).with_name("config.yaml")))
cfg = yaml.safe_load(open(parser.parse_args().config))
CLIP = 5.0

data = np.loadtxt(cfg["data_path"], delimiter=",", skiprows=1)
X, y = data[:, :-1], data[:, -1]
mu, sd = X.mean(axis=0), X.std(axis=0)
sd[sd == 0] = 1.0
X = (X - mu) / sd
rng = np.random.default_rng(cfg["seed"])
w = rng.normal(0, 0.01, X.shape[1])
b = 0.0


def loss_and_grad(xb, yb, w, b):
    z = xb @ w + b
    if cfg["model_type"] == "logistic":
        p = 1.0 / (1.0 + np.exp(-z))
        loss = -np.mean(yb * np.log(p + 1e-12) + (1 - yb) * np.log(1 - p + 1e-12))
        g = p - yb
    else:
        s = 2 * yb - 1
        margin = s * z
        loss = np.mean(np.maximum(0, 1 - margin))
        g = np.where(margin < 1, -s, 0.0)
    return loss + 0.5 * cfg["l2"] * float(w @ w), g


os.makedirs(cfg["checkpoint_dir"], exist_ok=True)
for epoch in range(cfg["epochs"]):
    order = rng.permutation(len(X))
    for start in range(0, len(X), cfg["batch_size"]):
        idx = order[start:start + cfg["batch_size"]]
        xb, yb = X[idx], y[idx]
        _, g = loss_and_grad(xb, yb, w, b)
        grad_w = np.clip(xb.T @ g / len(idx) + cfg["l2"] * w, -CLIP, CLIP)
        w = w - cfg["learning_rate"] * grad_w
        b = b - cfg["learning_rate"] * float(np.clip(g.mean(), -CLIP, CLIP))
    loss, _ = loss_and_grad(X, y, w, b)
    print(f"epoch {epoch + 1} loss {loss:.6f} accuracy {np.mean(((X @ w + b) > 0) == (y == 1)):.4f}", flush=True)
    np.savez(os.path.join(cfg["checkpoint_dir"], f"epoch_{epoch + 1}.npz"), w=w, b=b)

loss, _ = loss_and_grad(X, y, w, b)
accuracy = float(np.mean(((X @ w + b) > 0) == (y == 1)))
print(f"final loss {loss:.6f} accuracy {accuracy:.4f}")
os.makedirs(cfg["output_dir"], exist_ok=True)
with open(os.path.join(cfg["output_dir"], "final_metrics.json"), "w") as f:
    json.dump({"loss": float(loss), "accuracy": accuracy, "w_norm": float(np.linalg.norm(w))}, f)
'''


def _config(private: Path) -> bytes:
    d = read_truth(private)["defaults"]
    return yaml.safe_dump({**d, "data_path": "/home/data/data.csv", "output_dir": "/home/submission",
                           "checkpoint_dir": "/home/submission/checkpoints"}, sort_keys=False).encode()


def reference_outputs(public, private) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    return {"config.yaml": _config(private), "train.py": REFERENCE.encode()}


def wrong_outputs(public, private) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    """A good config.yaml, but train.py is the original: it ignores the config, logs no epochs, saves no checkpoint."""
    original = (Path(public) / "train.py").read_text()
    return {"config.yaml": _config(private), "train.py": original.replace(
        'OUTPUT_DIR = os.environ.get("OUTPUT_DIR", "/home/submission")', 'OUTPUT_DIR = "/home/submission/out"').encode()}

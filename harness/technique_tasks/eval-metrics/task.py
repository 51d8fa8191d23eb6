"""eval-metrics: a script that only prints training loss -> evaluate() with metrics, plots, report.

The grader calls the agent's evaluate() in the sandbox on hidden labels and scores
and recomputes accuracy, AUC and the confusion matrix with scikit-learn; the plots
must be real PNG images and the report must state the numbers."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd

from harness.techniques import (Checks, Grade, GradeContext, Manifest, PrepareContext, invalid, read_truth,
                                     run_sandboxed, write_manifest, write_truth)

NAME = "eval-metrics"
KIND = "engineering"
DESCRIPTION = "Add accuracy, AUC, confusion matrix, ROC/PR plots and a markdown report; graded by recomputing them."
TRAIN = '''"""Train a logistic regression; prints only the training loss."""
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

train = pd.read_csv("/home/data/train.csv")
X, y = train.drop(columns=["y"]), train["y"]
model = LogisticRegression(max_iter=1000).fit(X, y)
print("training loss", log_loss(y, model.predict_proba(X)[:, 1]))
'''
RUNNER = r'''
import importlib.util, json, numpy as np, pandas as pd
spec = importlib.util.spec_from_file_location("evaluate", "evaluate.py")
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
d = pd.read_csv("/home/data/eval_inputs.csv")
res = mod.evaluate(d["y_true"].to_numpy(), d["y_score"].to_numpy(), "/home/submission/eval", threshold=float(open("/home/data/threshold.txt").read()))
def plain(o):
    if isinstance(o, dict): return {str(k): plain(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)): return [plain(v) for v in o]
    if hasattr(o, "tolist"): return plain(o.tolist())
    return o
json.dump(plain(res), open("/home/submission/result.json", "w"))
'''


def applies_to(task_type: str) -> bool:
    return False


def _scores(rng: np.random.Generator, n: int) -> pd.DataFrame:
    y = (rng.random(n) < rng.uniform(0.25, 0.45)).astype(int)
    s = 1 / (1 + np.exp(-(rng.normal(0, 1, n) + rng.uniform(0.8, 1.6) * (2 * y - 1))))
    return pd.DataFrame({"y_true": y, "y_score": np.round(s, 6)})


def prepare(ctx: PrepareContext) -> None:
    rng = ctx.rng
    n = 1200
    X = rng.normal(0, 1, (n, 5))
    y = ((X @ rng.normal(0, 1, 5) + rng.normal(0, 1, n)) > 0).astype(int)
    df = pd.DataFrame(np.round(X, 4), columns=[f"f{i}" for i in range(5)]).assign(y=y)
    df.iloc[:900].to_csv(ctx.public / "train.csv", index=False)
    df.iloc[900:].to_csv(ctx.public / "valid.csv", index=False)
    (ctx.public / "train.py").write_text(TRAIN)
    hidden = _scores(rng, 500)
    hidden.to_csv(ctx.private / "eval_inputs.csv", index=False)
    threshold = float(rng.choice([0.4, 0.5, 0.6]))
    write_truth(ctx.private, {"threshold": threshold, **_metrics(hidden, threshold)})
    write_manifest(ctx.public, Manifest(task=NAME, kind=KIND, source=NAME, outputs=["evaluate.py", "report.md"],
                                        target="y", files={"script": "train.py", "train": "train.csv", "valid": "valid.csv"}))


def _metrics(d: pd.DataFrame, threshold: float) -> dict:
    from sklearn.metrics import accuracy_score, confusion_matrix, roc_auc_score

    pred = (d["y_score"] >= threshold).astype(int)
    return {"accuracy": float(accuracy_score(d["y_true"], pred)), "auc": float(roc_auc_score(d["y_true"], d["y_score"])),
            "confusion_matrix": confusion_matrix(d["y_true"], pred).tolist()}


def _png(path) -> tuple[bool, str]:  # type: ignore[no-untyped-def]
    if not path.is_file():
        return False, f"no {path.name}"
    data = path.read_bytes()
    if not data.startswith(b"\x89PNG") or len(data) < 3000:
        return False, f"{path.name} is not a real PNG plot ({len(data)} bytes)"
    return True, f"{path.name}: {len(data) // 1024} KB PNG"


def grade(ctx: GradeContext) -> Grade:
    t = read_truth(ctx.private)
    if "evaluate.py" not in ctx.outputs:
        return invalid("no evaluate.py in /home/submission")
    data = ctx.workdir / "inputs"
    data.mkdir()
    (data / "eval_inputs.csv").write_bytes((ctx.private / "eval_inputs.csv").read_bytes())
    (data / "threshold.txt").write_text(str(t["threshold"]))
    ex = run_sandboxed(ctx.workdir, {"evaluate.py": ctx.outputs["evaluate.py"], "_harness_eval.py": RUNNER.encode()}, data,
                       ["python3", "_harness_eval.py"], time_limit_s=180, sandbox=ctx.sandbox)
    if not ex.ok or not (ex.out_dir / "result.json").is_file():
        return invalid(ex.reason("evaluate()"))
    res = json.loads((ex.out_dir / "result.json").read_text())
    if not isinstance(res, dict):
        return invalid(f"evaluate() returned {type(res).__name__}, not a dict")
    c = Checks()
    acc, auc, cm = res.get("accuracy"), res.get("auc"), res.get("confusion_matrix")
    ok = isinstance(acc, (int, float)) and abs(acc - t["accuracy"]) < 1e-6
    c.add("accuracy", ok, 1, f"true {t['accuracy']:.4f} at threshold {t['threshold']}, returned {acc}")
    ok = isinstance(auc, (int, float)) and abs(auc - t["auc"]) < 1e-4
    c.add("auc", ok, 1, f"true {t['auc']:.4f}, returned {auc}")
    ok = cm == t["confusion_matrix"]
    c.add("confusion_matrix", ok, 1, f"true {t['confusion_matrix']} ([[tn, fp], [fn, tp]]), returned {cm}")
    for name in ("roc.png", "pr.png"):
        ok, why = _png(ex.out_dir / "eval" / name)
        c.add(name, ok, 1, why)
    report = (ex.out_dir / "eval" / "report.md").read_text(errors="replace") if (ex.out_dir / "eval" / "report.md").is_file() else ""
    nums = {round(float(x), 2) for x in re.findall(r"\d*\.\d+", report)}
    ok = bool(report) and round(t["accuracy"], 2) in nums and round(t["auc"], 2) in nums
    c.add("report.md", ok, 1, "ok" if ok else ("no report.md written by evaluate()" if not report else "report.md does not state the accuracy and AUC"))
    return c.grade()


REFERENCE = '''import os

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_curve, roc_auc_score, roc_curve


def evaluate(y_true, y_score, out_dir, threshold=0.5):
    os.makedirs(out_dir, exist_ok=True)
    y_true, y_score = np.asarray(y_true), np.asarray(y_score)
    pred = (y_score >= threshold).astype(int)
    res = {"accuracy": float(accuracy_score(y_true, pred)), "auc": float(roc_auc_score(y_true, y_score)),
           "confusion_matrix": confusion_matrix(y_true, pred).tolist()}
    fpr, tpr, _ = roc_curve(y_true, y_score)
    plt.figure(); plt.plot(fpr, tpr); plt.plot([0, 1], [0, 1], "--"); plt.xlabel("FPR"); plt.ylabel("TPR")
    plt.title(f"ROC (AUC {res['auc']:.3f})"); plt.savefig(os.path.join(out_dir, "roc.png")); plt.close()
    prec, rec, _ = precision_recall_curve(y_true, y_score)
    plt.figure(); plt.plot(rec, prec); plt.xlabel("recall"); plt.ylabel("precision"); plt.title("PR curve")
    plt.savefig(os.path.join(out_dir, "pr.png")); plt.close()
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write(f"# Evaluation\\n\\n| metric | value |\\n|---|---|\\n| accuracy | {res['accuracy']:.4f} |\\n"
                f"| AUC | {res['auc']:.4f} |\\n\\nConfusion matrix [[tn, fp], [fn, tp]]: {res['confusion_matrix']}\\n")
    return res
'''
WRONG = '''import numpy as np
from sklearn.metrics import confusion_matrix, roc_auc_score


def evaluate(y_true, y_score, out_dir, threshold=0.5):
    pred = (np.asarray(y_score) >= threshold).astype(int)
    return {"accuracy": float((pred == np.asarray(y_true)).mean()), "auc": float(roc_auc_score(y_true, pred)),
            "confusion_matrix": confusion_matrix(y_true, pred).tolist()}
'''


def reference_outputs(public, private) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    return {"evaluate.py": REFERENCE.encode()}


def wrong_outputs(public, private) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    """Right accuracy and confusion matrix, AUC from hard labels, no plots, no report."""
    return {"evaluate.py": WRONG.encode()}

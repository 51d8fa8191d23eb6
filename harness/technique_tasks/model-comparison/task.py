"""model-comparison: two models' scores on one validation set and stated priorities -> which to ship.

One model ranks better (higher AUC) but is calibrated low (poor recall at 0.5);
the other ranks worse but catches more positives at 0.5. The priorities (drawn
from the seed) favour one or the other; which file holds which model is drawn too.
Checks: the notebook runs and shows both models' metrics, the decision matches
the priorities, the metrics and the disagreement count are right."""

from __future__ import annotations

import re
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from harness.techniques import (Checks, Grade, GradeContext, Manifest, PrepareContext, close, dumps,
                                     execute_notebook, invalid, new_notebook, notebook_facts, load_output, read_truth,
                                     write_manifest, write_truth)

NAME = "model-comparison"
KIND = "engineering"
DESCRIPTION = "Compare two models' predictions in a notebook and decide which to ship under stated priorities."
PRIORITIES = {
    "recall": """# Priorities

1. A missed churner costs far more than a wasted call: the shipped model must reach a
   **recall of at least {r_min:.2f} at threshold 0.5**.
2. Among models that meet 1, ship the one with the higher **precision at threshold 0.5**.
3. If no model meets 1, ship the one with the higher ROC AUC.
""",
    "auc": """# Priorities

1. Scores are used to rank users and the threshold is tuned later, so ship the model
   with the higher **ROC AUC**.
2. If the two AUCs are within 0.005 of each other, ship the one with the higher precision at threshold 0.5.
""",
}


class ModelMetrics(BaseModel):
    model_config = ConfigDict(extra="forbid")

    auc: float
    precision: float
    recall: float


class Decision(BaseModel):
    """decision.json"""

    model_config = ConfigDict(extra="forbid")

    ship: Literal["model_A", "model_B"]
    metrics: dict[Literal["model_A", "model_B"], ModelMetrics]
    n_disagreements: int = Field(ge=0)
    reason: str = ""


def applies_to(task_type: str) -> bool:
    return False


def _metrics(y: np.ndarray, s: np.ndarray) -> dict:
    from sklearn.metrics import precision_score, recall_score, roc_auc_score

    p = (s >= 0.5).astype(int)
    return {"auc": float(roc_auc_score(y, s)), "precision": float(precision_score(y, p, zero_division=0)),
            "recall": float(recall_score(y, p))}


def prepare(ctx: PrepareContext) -> None:
    rng = ctx.rng
    n = 2000
    y = (rng.random(n) < 0.25).astype(int)
    ranker = 1 / (1 + np.exp(-(1.6 * (2 * y - 1) + rng.normal(0, 1, n) - 1.6)))  # good ranking, calibrated low
    catcher = 1 / (1 + np.exp(-(1.0 * (2 * y - 1) + rng.normal(0, 1, n) + 0.6)))  # weaker ranking, high recall
    swap = bool(rng.random() < 0.5)
    a, b = (catcher, ranker) if swap else (ranker, catcher)
    ids = np.arange(100000, 100000 + n)
    pd.DataFrame({"id": ids, "y": y}).to_csv(ctx.public / "valid_labels.csv", index=False)
    pd.DataFrame({"id": ids, "score": np.round(a, 6)}).to_csv(ctx.public / "model_A.csv", index=False)
    pd.DataFrame({"id": ids, "score": np.round(b, 6)}).to_csv(ctx.public / "model_B.csv", index=False)
    m = {"model_A": _metrics(y, np.round(a, 6)), "model_B": _metrics(y, np.round(b, 6))}
    scenario = "recall" if (ctx.seed >> 5) % 2 else "auc"
    r_min = float(np.round((m["model_A"]["recall"] + m["model_B"]["recall"]) / 2, 2))
    (ctx.public / "priorities.md").write_text(PRIORITIES[scenario].format(r_min=r_min))
    if scenario == "recall":
        ok = [k for k in m if m[k]["recall"] >= r_min]
        ship = max(ok, key=lambda k: m[k]["precision"]) if ok else max(m, key=lambda k: m[k]["auc"])
    else:
        ship = max(m, key=lambda k: m[k]["auc"])
        if abs(m["model_A"]["auc"] - m["model_B"]["auc"]) < 0.005:
            ship = max(m, key=lambda k: m[k]["precision"])
    dis = int(((np.round(a, 6) >= 0.5) != (np.round(b, 6) >= 0.5)).sum())
    write_truth(ctx.private, {"scenario": scenario, "ship": ship, "metrics": m, "n_disagreements": dis})
    write_manifest(ctx.public, Manifest(task=NAME, kind=KIND, source=NAME, outputs=["decision.json", "comparison.ipynb"],
                                        schema_file="decision.schema.json", id_column="id",
                                        files={"labels": "valid_labels.csv", "model_A": "model_A.csv", "model_B": "model_B.csv",
                                               "priorities": "priorities.md"}), Decision)


def grade(ctx: GradeContext) -> Grade:
    t = read_truth(ctx.private)
    d = load_output(Decision, ctx.outputs, "decision.json")
    c = Checks()
    if "comparison.ipynb" not in ctx.outputs:
        c.add("notebook runs", 0, 1, "no comparison.ipynb")
        c.add("notebook shows metrics", 0, 1, "no comparison.ipynb")
    else:
        run = execute_notebook(ctx.workdir, {"comparison.ipynb": ctx.outputs["comparison.ipynb"]}, "comparison.ipynb", ctx.public, sandbox=ctx.sandbox)
        if run.error or run.notebook is None:
            return invalid(run.error or "comparison.ipynb did not execute")
        f = notebook_facts(run.notebook)
        c.add("notebook runs", f["code_cells"] > 0, 1, f"{f['executed_cells']} code cells ran")
        text = f["output_text"]
        ok = ("model_A" in text or "A" in text.split()) and ("model_B" in text or "B" in text.split()) and re.search(r"0\.\d{2}", text) is not None
        c.add("notebook shows metrics", ok, 1, "ok" if ok else "the executed notebook shows no metrics for both models")
    c.add("decision", d.ship == t["ship"], 3, "ok" if d.ship == t["ship"] else
          f"under the {t['scenario']} priorities the right choice is {t['ship']} (A: {_fmt(t['metrics']['model_A'])}; B: {_fmt(t['metrics']['model_B'])})")
    wrong = [f"{m}.{k}" for m in ("model_A", "model_B") for k in ("auc", "precision", "recall")
             if m not in d.metrics or not close(getattr(d.metrics[m], k), t["metrics"][m][k], 0.005)]
    c.add("metrics", 1 - len(wrong) / 6, 2, "ok" if not wrong else f"off by more than 0.005: {wrong}")
    c.add("n_disagreements", d.n_disagreements == t["n_disagreements"], 1, f"true {t['n_disagreements']}, reported {d.n_disagreements}")
    return c.grade()


def _fmt(m: dict) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in m.items())


NOTEBOOK = [
    ("code", "import pandas as pd\nfrom sklearn.metrics import roc_auc_score, precision_score, recall_score\n"
             "y = pd.read_csv('/home/data/valid_labels.csv')\n"
             "m = {k: pd.read_csv(f'/home/data/{k}.csv').merge(y, on='id') for k in ('model_A', 'model_B')}"),
    ("code", "rows = {k: {'auc': roc_auc_score(d.y, d.score), 'precision': precision_score(d.y, d.score >= 0.5),\n"
             "             'recall': recall_score(d.y, d.score >= 0.5)} for k, d in m.items()}\npd.DataFrame(rows).T"),
    ("code", "dis = (m['model_A'].score >= 0.5) != (m['model_B'].score >= 0.5)\nprint('disagreements:', int(dis.sum()))"),
    ("code", "print(open('/home/data/priorities.md').read())"),
]


def reference_outputs(public, private) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    t = read_truth(private)
    return {"decision.json": dumps({"ship": t["ship"], "metrics": t["metrics"], "n_disagreements": t["n_disagreements"],
                                    "reason": f"{t['scenario']} priorities"}),
            "comparison.ipynb": new_notebook(NOTEBOOK)}


def wrong_outputs(public, private) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    """Right metrics, wrong call: ships the other model, miscounts disagreements."""
    t = read_truth(private)
    other = "model_B" if t["ship"] == "model_A" else "model_A"
    return {"decision.json": dumps({"ship": other, "metrics": t["metrics"], "n_disagreements": 0}),
            "comparison.ipynb": new_notebook(NOTEBOOK)}

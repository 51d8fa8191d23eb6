"""label-noise: labels regenerated from the features, then a known share flipped.

The clean label is a rule of two features with a margin (rows near the boundary
dropped, so every clean label is learnable): easy a linear rule, flips uniform
(6-10 %); medium a linear rule, flips only from one class to the other
(class-conditional, 15-25 % of that class); hard an interaction rule
(sign(a) * sign(b)), which a linear model cannot learn, flips uniform.
Truth: the flipped row ids and the noise rate (and per class).
Checks: F1 of the flagged rows, the noise rate, (medium/hard) the rate per class,
a remedy."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from harness.techniques import (Checks, Grade, GradeContext, Manifest, PrepareContext, dumps, load_output, read_truth,
                                write_manifest, write_truth)

NAME = "label-noise"
KIND = "technique"
DESCRIPTION = "Find mislabelled rows (planted flips, uniform or class-conditional, of a learnable rule) and the noise rate."
OUTPUT = "label-noise_analysis.json"
LEVELS = ("easy", "medium", "hard")
REMEDIES = {"relabel", "drop_noisy", "robust_loss", "confident_learning"}


class NoiseAnalysis(BaseModel):
    """label-noise_analysis.json"""

    model_config = ConfigDict(extra="forbid")

    noisy_ids: list[int]
    noise_rate: float = Field(ge=0, le=1, description="share of all rows whose label is wrong")
    noise_rate_by_class: dict[str, float] = Field(default_factory=dict, description="share of each observed class's rows that are wrong")
    remedy: Literal["none", "relabel", "drop_noisy", "robust_loss", "confident_learning", "more_data"]
    rationale: str = ""


def applies_to(task_type: str, data: str = "tabular") -> bool:
    """Whether this task runs on a competition of this task type (binary | multiclass | regression)
    and data kind (tabular | image | timeseries): labels regenerated from the features: tables and images."""
    return data in ("tabular", "image")


def prepare(ctx: PrepareContext) -> None:
    assert ctx.source is not None
    rng = ctx.rng
    src = ctx.source
    feats = [f for f in src.features if pd.api.types.is_numeric_dtype(src.frame[f]) and src.frame[f].nunique() > 20]
    X = src.frame[feats].dropna().reset_index(drop=True)
    z = ((X - X.mean()) / X.std().replace(0, 1)).to_numpy()
    a, b = rng.choice(len(feats), 2, replace=False)
    if ctx.level == "hard":  # the least related pair, so both signs of the product occur often
        corr = np.abs(np.corrcoef(z, rowvar=False)) + np.eye(len(feats))
        a, b = np.unravel_index(np.argmin(corr), corr.shape)
        score = z[:, a] * z[:, b]
        keep = (np.abs(z[:, a]) > 0.4) & (np.abs(z[:, b]) > 0.4)
    else:
        w = rng.normal(0, 1, 2)
        score = z[:, [a, b]] @ (w / np.linalg.norm(w))
        score -= np.median(score)
        keep = np.abs(score) > 0.4
    out = X[keep].reset_index(drop=True)
    y = (score[keep] > 0).astype(int)
    n = len(out)
    if ctx.level == "medium":
        cls = int(rng.integers(0, 2))
        pool = np.flatnonzero(y == cls)
        flip = rng.choice(pool, int(round(rng.uniform(0.15, 0.25) * len(pool))), replace=False)
    else:
        flip = rng.choice(n, int(round(rng.uniform(0.06, 0.10) * n)), replace=False)
    noisy = y.copy()
    noisy[flip] = 1 - noisy[flip]
    out["label"] = noisy
    out.insert(0, "id", np.arange(n))
    out.to_csv(ctx.public / "train.csv", index=False)
    by_class = {str(k): float(np.isin(np.flatnonzero(noisy == k), flip).mean()) for k in (0, 1)}
    write_truth(ctx.private, {"level": ctx.level, "noisy_ids": sorted(int(i) for i in flip), "noise_rate": len(flip) / n,
                              "noise_rate_by_class": by_class})
    notes = "" if ctx.level == "easy" else "Also give `noise_rate_by_class`: for each observed label, the share of its rows that are wrong."
    write_manifest(ctx.public, Manifest(task=NAME, kind=KIND, source=src.name, outputs=[OUTPUT],
                                        schema_file="label-noise_analysis.schema.json", target="label", id_column="id",
                                        files={"train": "train.csv"}, level=ctx.level, notes=notes), NoiseAnalysis)


def grade(ctx: GradeContext) -> Grade:
    t = read_truth(ctx.private)
    a = load_output(NoiseAnalysis, ctx.outputs, OUTPUT)
    truth, got = set(t["noisy_ids"]), set(a.noisy_ids)
    tp = len(truth & got)
    f1 = 2 * tp / (len(truth) + len(got)) if truth or got else 1.0
    c = Checks()
    c.add("noisy_ids", f1, 4, f"F1 {f1:.2f}: {tp} of {len(truth)} flipped labels found, {len(got) - tp} correct labels flagged")
    ok = abs(a.noise_rate - t["noise_rate"]) <= 0.02
    c.add("noise_rate", ok, 1, f"true {t['noise_rate']:.3f}, reported {a.noise_rate:.3f} (tolerance 0.02)")
    if t["level"] != "easy":
        bad = [k for k, v in t["noise_rate_by_class"].items() if abs(a.noise_rate_by_class.get(k, -1.0) - v) > 0.03]
        c.add("noise_rate_by_class", not bad, 1, "ok" if not bad else
              f"true {({k: round(v, 3) for k, v in t['noise_rate_by_class'].items()})}, reported {a.noise_rate_by_class} (tolerance 0.03)")
    c.add("remedy", a.remedy in REMEDIES, 1, "ok" if a.remedy in REMEDIES else f"{a.remedy} trains on the wrong labels; use one of {sorted(REMEDIES)}")
    return c.grade()


def reference_outputs(public, private) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    t = read_truth(private)
    return {OUTPUT: dumps({"noisy_ids": t["noisy_ids"], "noise_rate": t["noise_rate"],
                           "noise_rate_by_class": t["noise_rate_by_class"], "remedy": "confident_learning"})}


def wrong_outputs(public, private) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    """Half the flips found plus as many correct rows, the rate halved, no remedy."""
    t = read_truth(private)
    ids = t["noisy_ids"]
    clean = [i for i in range(max(ids) + 2) if i not in set(ids)][: len(ids) // 2]
    return {OUTPUT: dumps({"noisy_ids": ids[: len(ids) // 2] + clean, "noise_rate": t["noise_rate"] / 2,
                           "noise_rate_by_class": {k: 0.0 for k in t["noise_rate_by_class"]}, "remedy": "none"})}

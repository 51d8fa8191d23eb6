"""feature-engineering: users + transactions, churn depends on aggregates the raw table lacks.

The label is driven by the number of transactions in the last 30 days, the mean
amount and spend per tenure month. Held-out users (and their transactions) stay
private. The grader runs build_features in the sandbox on train and held-out users,
fits a fixed model (HistGradientBoosting) on its output and compares held-out AUC
with the same model on the raw columns; it checks the aggregates and a ratio
exist, the label is not among the features, and the notebook runs with a table."""

from __future__ import annotations


import numpy as np
import pandas as pd

from harness.techniques import (Checks, Grade, GradeContext, Manifest, PrepareContext, execute_notebook, invalid,
                                     new_notebook, notebook_facts, read_truth, run_sandboxed, write_manifest, write_truth)

NAME = "feature-engineering"
KIND = "engineering"
DESCRIPTION = "Add aggregation and ratio features to a churn baseline; graded by held-out AUC of a fixed model."
BASELINE = '''"""Baseline: raw user columns only."""
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import cross_val_score

users = pd.read_csv("/home/data/users.csv")
X = pd.get_dummies(users.drop(columns=["user_id", "churned"]), dtype=float)
auc = cross_val_score(HistGradientBoostingClassifier(random_state=0), X, users["churned"], cv=5, scoring="roc_auc")
print(f"baseline AUC {auc.mean():.4f}")
'''
RUNNER = r'''
import importlib.util, sys, pandas as pd
spec = importlib.util.spec_from_file_location("features", "features.py")
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
for part in ("train", "holdout"):
    users = pd.read_csv(f"/home/data/{part}_users.csv")
    tx = pd.read_csv(f"/home/data/{part}_transactions.csv")
    out = mod.build_features(users, tx)
    if not isinstance(out, pd.DataFrame):
        sys.exit(f"build_features returned {type(out).__name__}, not a DataFrame")
    out.to_pickle(f"/home/submission/{part}.pkl")
'''


def applies_to(task_type: str) -> bool:
    return False


def _generate(rng: np.random.Generator, n_users: int, first_id: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    users = pd.DataFrame({
        "user_id": np.arange(first_id, first_id + n_users),
        "age": rng.integers(18, 75, n_users),
        "tenure_months": rng.integers(1, 60, n_users),
        "plan": rng.choice(["basic", "pro", "team"], n_users, p=[0.6, 0.3, 0.1]),
        "country": rng.choice(["SE", "DE", "FR", "US", "BR"], n_users),
    })
    activity = rng.gamma(2.0, 1.0, n_users)
    n_tx = rng.poisson(3 + 8 * activity)
    uid = np.repeat(users["user_id"].to_numpy(), n_tx)
    base_amount = np.repeat(rng.lognormal(3, 0.6, n_users), n_tx)
    recency_scale = np.repeat(30 + 120 / (0.3 + activity), n_tx)
    tx = pd.DataFrame({
        "user_id": uid,
        "amount": np.round(base_amount * rng.lognormal(0, 0.3, len(uid)), 2),
        "days_ago": np.minimum(365, rng.exponential(recency_scale)).astype(int),
        "category": rng.choice(["food", "travel", "tech", "home"], len(uid)),
    })
    g = tx.groupby("user_id")
    recent = (tx["days_ago"] <= 30).groupby(tx["user_id"]).sum().reindex(users["user_id"]).fillna(0).to_numpy()
    mean_amt = g["amount"].mean().reindex(users["user_id"]).fillna(0).to_numpy()
    spend_per_month = g["amount"].sum().reindex(users["user_id"]).fillna(0).to_numpy() / users["tenure_months"].to_numpy()
    logit = (1.2 - 0.9 * np.log1p(recent) - 0.6 * (np.log1p(mean_amt) - 3) - 0.5 * (np.log1p(spend_per_month) - 2.5)
             + 0.1 * (users["plan"] == "basic").to_numpy() + rng.normal(0, 0.3, n_users))
    users["churned"] = (rng.random(n_users) < 1 / (1 + np.exp(-logit))).astype(int)
    return users, tx


def prepare(ctx: PrepareContext) -> None:
    rng = ctx.rng
    n = 800 if ctx.lite else 2000
    users, tx = _generate(rng, n, 1)
    hold_users, hold_tx = _generate(rng, n // 2, 100001)
    users.to_csv(ctx.public / "users.csv", index=False)
    tx.to_csv(ctx.public / "transactions.csv", index=False)
    (ctx.public / "baseline.py").write_text(BASELINE)
    hold_users.to_csv(ctx.private / "holdout_users.csv", index=False)
    hold_tx.to_csv(ctx.private / "holdout_transactions.csv", index=False)
    truth = {"raw_auc": _auc(users, users.drop(columns=["churned"]), hold_users, hold_users.drop(columns=["churned"]))}
    write_truth(ctx.private, truth)
    write_manifest(ctx.public, Manifest(task=NAME, kind=KIND, source=NAME, outputs=["features.py", "experiment.ipynb"],
                                        target="churned", files={"users": "users.csv", "transactions": "transactions.csv",
                                                                 "baseline": "baseline.py"}))


def _matrix(frame: pd.DataFrame) -> pd.DataFrame:
    X = frame.drop(columns=[c for c in ("user_id", "churned") if c in frame.columns])
    return pd.get_dummies(X, dtype=float).apply(pd.to_numeric, errors="coerce").astype(float)


def _auc(train_users: pd.DataFrame, train_X: pd.DataFrame, hold_users: pd.DataFrame, hold_X: pd.DataFrame) -> float:
    """The fixed model: fit on train features, AUC on held-out users."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    from threadpoolctl import threadpool_limits

    A, B = _matrix(train_X), _matrix(hold_X)
    A, B = A.align(B, join="left", axis=1, fill_value=0.0)
    A = A.replace([np.inf, -np.inf], np.nan)
    B = B.replace([np.inf, -np.inf], np.nan)
    with threadpool_limits(1):  # OpenMP on a busy machine is slower than one thread
        model = HistGradientBoostingClassifier(random_state=0, max_iter=200, learning_rate=0.05).fit(A, train_users["churned"])
    return float(roc_auc_score(hold_users["churned"], model.predict_proba(B)[:, 1]))


def _best_corr(X: pd.DataFrame, target: np.ndarray) -> float:
    best = 0.0
    for col in X.columns:
        v = pd.to_numeric(X[col], errors="coerce").replace([np.inf, -np.inf], np.nan).to_numpy(dtype=float)
        ok = np.isfinite(v) & np.isfinite(target)
        if ok.sum() > 10 and np.std(v[ok]) > 0 and np.std(target[ok]) > 0:
            best = max(best, abs(float(pd.Series(v[ok]).corr(pd.Series(target[ok]), method="spearman"))))
    return best


def grade(ctx: GradeContext) -> Grade:
    t = read_truth(ctx.private)
    if "features.py" not in ctx.outputs:
        return invalid("no features.py in /home/submission")
    data = ctx.workdir / "inputs"
    data.mkdir()
    for part, src in (("train", ctx.public), ("holdout", ctx.private)):
        prefix = "" if part == "train" else "holdout_"
        users = pd.read_csv(src / f"{prefix}users.csv")
        (users.drop(columns=["churned"])).to_csv(data / f"{part}_users.csv", index=False)
        pd.read_csv(src / f"{prefix}transactions.csv").to_csv(data / f"{part}_transactions.csv", index=False)
    ex = run_sandboxed(ctx.workdir, {"features.py": ctx.outputs["features.py"], "_harness_features.py": RUNNER.encode()},
                       data, ["python3", "_harness_features.py"], time_limit_s=300, sandbox=ctx.sandbox)
    if not ex.ok or not (ex.out_dir / "holdout.pkl").is_file():
        return invalid(ex.reason("build_features"))
    users, hold = pd.read_csv(ctx.public / "users.csv"), pd.read_csv(ctx.private / "holdout_users.csv")
    try:
        feats = {p: pd.read_pickle(ex.out_dir / f"{p}.pkl") for p in ("train", "holdout")}
    except Exception as e:  # noqa: BLE001 - unreadable output is the agent's error
        return invalid(f"build_features returned something that cannot be read back: {type(e).__name__}")
    c = Checks()
    for p, ref in (("train", users), ("holdout", hold)):
        f = feats[p]
        if "user_id" not in f.columns or len(f) != len(ref) or set(f["user_id"]) != set(ref["user_id"]):
            return invalid(f"build_features must return one row per user with a user_id column; on the {p} users it returned "
                           f"{len(f)} rows for {len(ref)} users" + ("" if "user_id" in f.columns else ", no user_id"))
    train_f = feats["train"].set_index("user_id").loc[users["user_id"]].reset_index()
    hold_f = feats["holdout"].set_index("user_id").loc[hold["user_id"]].reset_index()
    leak = "churned" in train_f.columns
    c.add("no label among features", not leak, 1, "ok" if not leak else "the label churned is returned as a feature")
    c.add("runs on held-out users", 1, 1, f"{len(hold_f)} rows, {train_f.shape[1] - 1} feature columns")
    tx = pd.read_csv(ctx.private / "holdout_transactions.csv")
    g = tx.groupby("user_id")
    ids = hold["user_id"]
    truth_cols = {
        "count aggregate": g.size().reindex(ids).fillna(0).to_numpy(dtype=float),
        "mean aggregate": g["amount"].mean().reindex(ids).to_numpy(dtype=float),
        "ratio interaction": (g["amount"].sum().reindex(ids).fillna(0) / hold["tenure_months"].to_numpy()).to_numpy(dtype=float),
    }
    X = hold_f.drop(columns=["user_id", "churned"], errors="ignore")
    for name, target in truth_cols.items():
        r = _best_corr(X, target)
        c.add(name, r >= 0.9, 1, f"best rank correlation with the true per-user {name.split()[0]} {'' if name != 'ratio interaction' else '(spend per tenure month) '}is {r:.2f} (0.90 wanted)")
    if leak:
        c.add("held-out AUC gain", 0, 3, "not measured: the features contain the label")
    else:
        try:
            auc = _auc(users, train_f, hold, hold_f)
            gain = auc - t["raw_auc"]
            c.add("held-out AUC gain", gain / 0.05, 3, f"held-out AUC {auc:.4f} vs {t['raw_auc']:.4f} on raw columns (gain {gain:+.4f}; +0.05 for full marks)")
        except Exception as e:  # noqa: BLE001 - features the model cannot use are the agent's problem
            c.add("held-out AUC gain", 0, 3, f"the fixed model could not train on the features: {type(e).__name__}: {str(e)[:150]}")
    if "experiment.ipynb" not in ctx.outputs:
        c.add("experiment notebook", 0, 2, "no experiment.ipynb")
    else:
        run = execute_notebook(ctx.workdir, {"experiment.ipynb": ctx.outputs["experiment.ipynb"], "features.py": ctx.outputs["features.py"]},
                               "experiment.ipynb", ctx.public, sandbox=ctx.sandbox)
        if run.error or run.notebook is None:
            return invalid(run.error or "experiment.ipynb did not execute")
        f = notebook_facts(run.notebook)
        c.add("experiment notebook runs", 1, 1, "ok")
        text = f["output_text"].lower()
        ok = "baseline" in text and any(ch.isdigit() for ch in text) and (f["tables"] > 0 or "auc" in text)
        c.add("metric table", ok, 1, "ok" if ok else "no table comparing baseline and new features")
    return c.grade()


REFERENCE = '''import numpy as np
import pandas as pd


def build_features(users: pd.DataFrame, transactions: pd.DataFrame) -> pd.DataFrame:
    g = transactions.groupby("user_id")
    agg = pd.DataFrame({
        "tx_count": g.size(),
        "tx_amount_mean": g["amount"].mean(),
        "tx_amount_sum": g["amount"].sum(),
        "tx_recent_30d": g["days_ago"].apply(lambda d: int((d <= 30).sum())),
        "days_since_last_tx": g["days_ago"].min(),
    })
    out = users.drop(columns=["churned"], errors="ignore").merge(agg, left_on="user_id", right_index=True, how="left")
    out[["tx_count", "tx_amount_sum", "tx_recent_30d"]] = out[["tx_count", "tx_amount_sum", "tx_recent_30d"]].fillna(0)
    out["spend_per_tenure_month"] = out["tx_amount_sum"] / out["tenure_months"]
    return out
'''
EXPERIMENT = [
    ("code", "import pandas as pd\nfrom sklearn.ensemble import HistGradientBoostingClassifier\n"
             "from sklearn.model_selection import cross_val_score\nfrom features import build_features\n"
             "users = pd.read_csv('/home/data/users.csv')\ntx = pd.read_csv('/home/data/transactions.csv')"),
    ("code", "def auc(X):\n    X = pd.get_dummies(X.drop(columns=['user_id', 'churned'], errors='ignore'), dtype=float)\n"
             "    return cross_val_score(HistGradientBoostingClassifier(random_state=0, max_iter=100), X, users['churned'], cv=3, scoring='roc_auc').mean()\n"
             "pd.DataFrame({'features': ['baseline', 'engineered'], 'cv_auc': [auc(users), auc(build_features(users, tx))]})"),
]
WRONG = '''import pandas as pd


def build_features(users: pd.DataFrame, transactions: pd.DataFrame) -> pd.DataFrame:
    out = users.drop(columns=["churned"], errors="ignore").copy()
    out["age_squared"] = out["age"] ** 2
    out["n_categories"] = transactions.groupby("user_id")["category"].nunique().reindex(out["user_id"]).fillna(0).to_numpy()
    return out
'''


def reference_outputs(public, private) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    return {"features.py": REFERENCE.encode(), "experiment.ipynb": new_notebook(EXPERIMENT)}


def wrong_outputs(public, private) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    """Runs, but adds features that carry little of the signal, and no experiment."""
    return {"features.py": WRONG.encode()}

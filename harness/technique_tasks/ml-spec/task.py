"""ml-spec: a product brief (churn in the next 30 days) and a schema -> spec.md.

The brief's numbers (latency budget, model size cap, retrain cadence, k of
precision@k) come from the seed, so copying a generic spec does not pass.
Checks: the five sections, the horizon, primary and secondary metrics, the three
constraints with the brief's numbers, real schema columns and no invented ones, length."""

from __future__ import annotations

import re

import yaml

from harness.techniques import Checks, Grade, GradeContext, Manifest, PrepareContext, invalid, read_truth, write_manifest, write_truth

NAME = "ml-spec"
KIND = "engineering"
DESCRIPTION = "Turn a churn product brief and a table schema into a one-page ML spec (spec.md)."
OUTPUT = "spec.md"
SCHEMA = {
    "users": ["user_id", "signup_date", "country", "plan", "age_band", "acquisition_channel"],
    "subscriptions": ["subscription_id", "user_id", "plan", "start_date", "end_date", "monthly_price", "cancelled_at"],
    "sessions": ["session_id", "user_id", "started_at", "duration_s", "device", "pages_viewed"],
    "payments": ["payment_id", "user_id", "paid_at", "amount", "status", "failure_reason"],
    "support_tickets": ["ticket_id", "user_id", "opened_at", "category", "resolved_at", "satisfaction"],
}
SECTIONS = {
    "target": r"target|label",
    "horizon": r"horizon|window",
    "inputs": r"input|feature|data source|columns",
    "metrics": r"metric|evaluat",
    "constraints": r"constraint|requirement|latency|serving",
}
BRIEF = """# Product brief: churn early-warning

Our retention team can call or email a limited number of users each week. We want
a model that scores every active subscriber with the probability that they churn
(cancel, or stop paying) within the next 30 days, so the team can contact the
{k} highest-risk users first.

What we care about: of the users we contact, how many were really about to leave,
and how many of all leavers we reach. Scores feed the CRM through an online
endpoint with a p99 latency budget of {latency} ms; the model artifact must stay
under {size} MB to fit the serving container. Behaviour shifts with our releases,
so the model is retrained {cadence}.

Data: see schema.yaml. Use only what is known at scoring time.
"""


def applies_to(task_type: str) -> bool:
    return False


def prepare(ctx: PrepareContext) -> None:
    rng = ctx.rng
    truth = {"latency_ms": int(rng.choice([50, 80, 100, 150, 200])), "model_size_mb": int(rng.choice([10, 25, 50, 100])),
             "cadence": str(rng.choice(["daily", "weekly", "monthly"])), "k": int(rng.choice([500, 1000, 2000]))}
    (ctx.public / "brief.md").write_text(BRIEF.format(k=truth["k"], latency=truth["latency_ms"], size=truth["model_size_mb"],
                                                      cadence=truth["cadence"]))
    (ctx.public / "schema.yaml").write_text(yaml.safe_dump({"tables": SCHEMA}, sort_keys=False))
    write_truth(ctx.private, truth)
    write_manifest(ctx.public, Manifest(task=NAME, kind=KIND, source=NAME, outputs=[OUTPUT],
                                        files={"brief": "brief.md", "schema": "schema.yaml"}))


def _sections(text: str) -> dict[str, str]:
    """heading -> body for every markdown heading."""
    parts = re.split(r"(?m)^#{1,6}\s+(.*)$", text)
    return {parts[i].strip().lower(): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def grade(ctx: GradeContext) -> Grade:
    t = read_truth(ctx.private)
    raw = ctx.outputs.get(OUTPUT)
    if raw is None:
        return invalid(f"no {OUTPUT} in /home/submission")
    text = raw.decode(errors="replace")
    if len(text.split()) < 30:
        return invalid(f"{OUTPUT} has {len(text.split())} words; a spec needs its sections")
    low = text.lower()
    heads = _sections(text)
    c = Checks()
    for name, pattern in SECTIONS.items():
        ok = any(re.search(pattern, h) for h in heads)
        c.add(f"section: {name}", ok, 1, "ok" if ok else f"no heading for the {name} section (headings: {list(heads)[:8]})")
    ok = re.search(r"30[\s-]*(day|d\b)", low) is not None
    c.add("horizon is 30 days", ok, 1, "ok" if ok else "the brief's horizon (30 days) is not stated")
    ok = re.search(r"\bauc\b|roc|pr[- ]auc|average precision", low) is not None
    c.add("primary metric", ok, 1, "ok" if ok else "no ranking metric (AUC, PR-AUC) named")
    prec = re.search(r"precision\s*@\s*(k|\d+)", low) is not None
    rec = re.search(r"recall\s*@\s*(k|\d+)", low) is not None
    c.add("secondary metrics", (prec + rec) / 2, 1, "ok" if prec and rec else f"precision@k {'found' if prec else 'missing'}, recall@k {'found' if rec else 'missing'}")
    ms = {int(x) for x in re.findall(r"(\d+)\s*ms\b", low)}
    c.add("latency", t["latency_ms"] in ms, 1, "ok" if t["latency_ms"] in ms else f"the brief's latency budget is {t['latency_ms']} ms; found {sorted(ms) or 'none'}")
    mb = {int(x) for x in re.findall(r"(\d+)\s*mb\b", low)}
    c.add("model size", t["model_size_mb"] in mb, 1, "ok" if t["model_size_mb"] in mb else f"the brief caps the model at {t['model_size_mb']} MB; found {sorted(mb) or 'none'}")
    ok = t["cadence"] in low and all(w not in low for w in {"daily", "weekly", "monthly"} - {t["cadence"]} if re.search(rf"retrain\w*\s+{w}", low))
    c.add("retrain cadence", ok, 1, "ok" if ok else f"the brief retrains {t['cadence']}")
    refs = set(re.findall(r"\b([a-z_]+)\.([a-z_]+)\b", low))
    real = {(tb, col) for tb, col in refs if col in SCHEMA.get(tb, [])}
    invented = sorted(f"{tb}.{col}" for tb, col in refs if tb in SCHEMA and col not in SCHEMA[tb])
    c.add("schema columns", min(1.0, len(real) / 5), 1.5, f"{len(real)} real table.column references (5 wanted)")
    c.add("no invented columns", not invented, 1, "ok" if not invented else f"not in schema.yaml: {invented[:6]}")
    words = len(text.split())
    c.add("one page", words <= 900, 0.5, f"{words} words (at most 900)")
    return c.grade()


SPEC = """# Churn early-warning: ML spec

## Prediction target
For every active subscriber at scoring time t, predict the probability that the user churns:
`subscriptions.cancelled_at` falls in (t, t + 30 days], or a `payments.status` of failed is not recovered in that window.
Label = 1 if so, else 0. Users who signed up less than 14 days before t are excluded.

## Prediction horizon
30 days after the scoring time; scores are refreshed with every retrain.

## Inputs
- users: `users.plan`, `users.country`, `users.signup_date`, `users.acquisition_channel`
- subscriptions: `subscriptions.monthly_price`, `subscriptions.start_date`
- sessions (last 7/30/90 days): counts and trends of `sessions.duration_s`, `sessions.pages_viewed`, `sessions.device`
- payments: `payments.status`, `payments.failure_reason`, `payments.amount`
- support_tickets: `support_tickets.category`, `support_tickets.satisfaction`
Only rows recorded before t are used (no leakage from the outcome window).

## Metrics
- Primary: ROC AUC on a time-based holdout.
- Secondary: precision@k and recall@k with k = {k} (the team's weekly contact capacity).

## Constraints
- Latency: p99 under {latency} ms per request.
- Model size: under {size} MB.
- Retrain cadence: retrained {cadence}, validated on the most recent 30 days.
"""


def reference_outputs(public, private) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    t = read_truth(private)
    return {OUTPUT: SPEC.format(k=t["k"], latency=t["latency_ms"], size=t["model_size_mb"], cadence=t["cadence"]).encode()}


def wrong_outputs(public, private) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    """Looks like a spec, but generic: wrong horizon and numbers, invented columns, accuracy only."""
    return {OUTPUT: b"""# Churn model

## Target
Whether a user churns.

## Horizon
90 days.

## Features
`users.age`, `users.income`, `sessions.clicks`, `payments.amount`, `users.plan`.

## Metrics
Accuracy.

## Constraints
Fast enough (under 1000 ms), small model (under 500 MB), retrained when needed.
"""}

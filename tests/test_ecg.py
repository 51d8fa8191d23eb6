"""The ECG image digitization competition: Kaggle's metric on its published examples and the
alignment cases, the generated files exactly as Kaggle lays them out, physiological identities,
determinism, malformed submissions, the score breakdown plumbing, and the classical baseline."""

from __future__ import annotations

import hashlib
import io
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from harness.data import ensure_prepared
from harness.grading import grade_submission
from harness.registry import load_callable, load_registry
from harness.spec import Settings

CID = "physionet-ecg-image-digitization"
REPO = Path(__file__).resolve().parent.parent
REG = load_registry(Settings(data_dir=Path("/nonexistent"), work_dir=Path("/nonexistent")))
COMP = REG.competitions[CID]
sys.path.insert(0, str(COMP.dir))
import ecg_make  # noqa: E402
import ecg_metric as M  # noqa: E402
import ecg_signals  # noqa: E402

EXAMPLES = json.loads((REPO / "tests" / "data" / "ecg_metric_examples.json").read_text())
LEADS = ecg_signals.LEADS


@pytest.fixture(scope="module")
def lite(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """The lite preparation, once for the module (ensure_prepared checks the pinned checksums,
    i.e. that it equals the preparation `harness calibrate` made)."""
    root = tmp_path_factory.mktemp("ecg-cache")
    return ensure_prepared(COMP, Settings(data_dir=root, work_dir=root / "work"), lite=True)


# ---------------------------------------------------------------- the metric


def test_published_examples_give_exactly_their_values() -> None:
    sol = pd.DataFrame(EXAMPLES["solution"])
    sub = sol[["id", "value"]].copy()
    cases = [c["score_rounded_4"] for c in EXAMPLES["cases"]]
    assert round(M.score(sub, sol), 4) == cases[0]
    sub.loc[0, "value"] = 0.9
    assert round(M.score(sub, sol), 4) == cases[1]
    sub.loc[4, "value"] = 0.3
    assert round(M.score(sub, sol), 4) == cases[2]
    assert round(M.score(sub, sol.assign(value=0.0)), 4) == cases[3]
    for ex in EXAMPLES["alignment_examples"]:
        got = M.align_signals(np.array(ex["label"], float), np.array(ex["pred"], float), float(ex["max_shift"]))
        want = np.array([np.nan if v is None else v for v in ex["aligned"]], float)
        assert np.allclose(got, want, equal_nan=True), (ex, got)
    # the same through the competition's grade module
    grade = load_callable(COMP.dir, "grade:grade", "grader")
    assert round(grade(sol[["id", "value"]], sol), 4) == cases[0]


def _one_image(fs: int = 500, seed: int = 3) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    rec = ecg_signals.synthesize(seed, fs)
    truth = {lead: rec.signals[a:b, LEADS.index(lead)] for lead, (a, b) in ecg_make.windows(fs).items()}
    rows = [pd.DataFrame({"id": [f"7_{i}_{lead}" for i in range(len(v))], "fs": fs, "value": v}) for lead, v in truth.items()]
    return pd.concat(rows, ignore_index=True), truth


def _submit(truth: dict[str, np.ndarray], f) -> pd.DataFrame:  # noqa: ANN001
    return pd.concat([pd.DataFrame({"id": [f"7_{i}_{lead}" for i in range(len(v))], "value": f(v)})
                      for lead, v in truth.items()], ignore_index=True)


def test_alignment_forgives_shifts_within_the_window_and_offsets_but_not_gain() -> None:
    sol, truth = _one_image(fs=500)
    perfect = 10 * np.log10(M.PERFECT_SCORE)

    def shifted(k: int):  # noqa: ANN202
        return lambda v: np.concatenate([np.full(k, v[0]), v[:-k]])

    within, beyond = M.score(_submit(truth, shifted(80)), sol), M.score(_submit(truth, shifted(150)), sol)
    assert beyond < within - 5  # 0.3 s: beyond the 0.2 s window, not forgiven
    v = truth["V5"]
    back = M.align_signals(v, shifted(80)(v), int(500 * M.MAX_TIME_SHIFT))  # 0.16 s: undone exactly
    assert np.isnan(back[-80:]).all() and np.abs(back[:-80] - v[:-80]).max() < 1e-9
    far = M.align_signals(v, shifted(150)(v), int(500 * M.MAX_TIME_SHIFT))
    assert np.nanmax(np.abs(far - v)) > 0.1
    assert M.score(_submit(truth, lambda v: v + 3.7), sol) == pytest.approx(perfect)
    assert M.score(_submit(truth, lambda v: 1.5 * v), sol) < 15.0  # a gain error costs
    zero = _submit(truth, np.zeros_like)
    per_image = M.image_powers(M.merged_frame(zero, sol))
    assert per_image["signal"].sum() >= per_image["noise"].sum()  # zero prediction: >= 0 dB per image
    assert M.score(zero, sol) >= 0.0


def test_malformed_submissions_get_their_reasons() -> None:
    sol, truth = _one_image(fs=250)
    ok = _submit(truth, lambda v: v)
    cases = {
        "NaN": (ok.assign(value=np.where(np.arange(len(ok)) == 3, np.nan, ok["value"])), "nan"),
        "inf": (ok.assign(value=np.where(np.arange(len(ok)) == 3, np.inf, ok["value"])), "infinite"),
        "no value column": (ok.rename(columns={"value": "v"}), "'value'"),
        "no id column": (ok.drop(columns=["id"]), "'id'"),
        "missing ids": (ok.iloc[5:], "missing"),
        "duplicated ids": (pd.concat([ok, ok.iloc[[0]]]), "duplicated"),
        "unknown ids": (pd.concat([ok, pd.DataFrame({"id": ["7_0_X"], "value": [0.0]})]), "unknown"),
        "text": (ok.assign(value="abc"), "non-numeric"),
    }
    for name, (sub, word) in cases.items():
        with pytest.raises(M.InvalidSubmissionError) as e:
            M.score(sub, sol)
        assert word in str(e.value).lower(), f"{name}: {e.value}"
    long_ii = pd.concat([sol, pd.DataFrame({"id": [f"7_{i}_II" for i in range(2500, 2520)], "fs": 250, "value": 0.0})])
    sub_ii = long_ii[["id", "value"]]
    with pytest.raises(M.InvalidSubmissionError, match="lead II of image '7' has 2520 rows; it must have 10"):
        M.score(sub_ii, long_ii)


# ---------------------------------------------------------------- the generated files


def test_files_and_columns_are_kaggles_with_the_windows(lite) -> None:  # noqa: ANN001
    pub, priv = lite.public, lite.private
    train, test = pd.read_csv(pub / "train.csv"), pd.read_csv(pub / "test.csv")
    assert list(train.columns) == ["id", "fs", "sig_len"] and len(train) == 30
    assert list(test.columns) == ["id", "lead", "fs", "number_of_rows"] and test["id"].nunique() == 20
    assert set(train["fs"]) | set(test["fs"]) <= set(ecg_signals.FS_CHOICES)
    assert (train["sig_len"] == 10 * train["fs"]).all()
    for _, r in train.iterrows():
        folder = pub / "train" / str(r["id"])
        pngs = sorted(p.name for p in folder.glob("*.png"))
        assert pngs and all(p.startswith(f"{r['id']}-") and p[-8:-4] in ecg_make.ecg_distort.TYPES for p in pngs)
        sig = pd.read_csv(folder / f"{r['id']}.csv")
        assert list(sig.columns) == LEADS and len(sig) == r["sig_len"]
        for lead, (a, b) in ecg_make.windows(int(r["fs"])).items():
            present = np.flatnonzero(sig[lead].notna().to_numpy())
            assert present[0] == a and present[-1] == b - 1 and len(present) == b - a, (r["id"], lead)
        # Einthoven, where I, II and III are printed together (column 0)
        a, b = ecg_make.windows(int(r["fs"]))["I"]
        assert np.abs(sig["III"][a:b] - (sig["II"][a:b] - sig["I"][a:b])).max() < 1e-9
    for base, g in test.groupby("id"):
        fs = int(g["fs"].iloc[0])
        assert list(g["lead"]) == LEADS
        assert dict(zip(g["lead"], g["number_of_rows"], strict=True)) == {k: b - a for k, (a, b) in ecg_make.windows(fs).items()}
        assert (pub / "test" / f"{base}.png").is_file()
    sample = pd.read_parquet(pub / "sample_submission.parquet")
    answers = pd.read_parquet(priv / "answers.parquet")
    assert list(sample.columns) == ["id", "value"] and (sample["value"] == 0.0).all()
    assert list(answers.columns) == ["id", "fs", "value", "type"] and list(answers["id"]) == list(sample["id"])
    assert len(sample) == test["number_of_rows"].sum()
    first = test.iloc[0]
    assert f"{first['id']}_0_I" in set(sample["id"]) and f"{first['id']}_{first['number_of_rows'] - 1}_I" in set(sample["id"])
    meta = json.loads((priv / "images.json").read_text())
    assert set(meta["test"]) == {str(i) for i in test["id"].unique()}
    assert {m["type"] for m in meta["test"].values()} == set(ecg_make.ecg_distort.TYPES)  # the fixed mix has them all
    assert all("distortion" in m["image"] and "render" in m["image"] for m in meta["test"].values())


def test_limb_identities_hold_in_every_prepared_record(lite) -> None:  # noqa: ANN001
    """Each record is its seed's synthesis (checked on the printed windows and the answers), and every
    synthesized record obeys Einthoven and Goldberger to 1e-9 over all 10 s."""
    meta = json.loads((lite.private / "images.json").read_text())
    answers = pd.read_parquet(lite.private / "answers.parquet")
    answers["base"] = answers["id"].str.split("_").str[0]
    by_base = dict(tuple(answers.groupby("base")))
    for split, records in meta.items():
        for rid, m in records.items():
            rec = ecg_signals.synthesize(int(m["seed"]))
            s = dict(zip(LEADS, rec.signals.T, strict=True))
            for name, v in ecg_signals.derive_limb(s["I"], s["II"]).items():
                assert np.abs(s[name] - v).max() < 1e-9, (rid, name)
            if split == "train":
                sig = pd.read_csv(lite.public / "train" / rid / f"{rid}.csv")
                assert np.abs(sig["II"].to_numpy() - s["II"]).max() < 1e-9
            else:
                g = by_base[rid]
                for lead, (a, b) in ecg_make.windows(rec.fs).items():
                    assert np.array_equal(g[g["id"].str.endswith(f"_{lead}")]["value"].to_numpy(), s[lead][a:b])


def test_records_made_here_equal_the_parallel_preparation_and_content_is_pinned(lite, tmp_path: Path) -> None:  # noqa: ANN001
    """Records made again, serially in this process, have exactly the bytes that the preparation made
    on its worker processes (one fresh interpreter per core): generation is deterministic and does
    not depend on which process made a record. private/content.json is what the files hold (decoded
    pixels, table values), so it survives re-encoding, and it is what checksums.yaml pins instead of
    PNG/Parquet bytes."""
    prepare = load_callable(COMP.dir, COMP.preparer, "preparer")
    train_jobs, test_jobs = prepare.__globals__["plan"](True)
    pub, priv = lite.public, lite.private
    meta = json.loads((priv / "images.json").read_text())
    # a clean training page and a distorted test page (cheap types: the parallel path made them all)
    train_job = next(j for j in train_jobs if j["types"] == ["0001"])
    test_job = next(j for j in test_jobs if j["types"][0] not in ("0001", "0011", "0012"))
    for side, job, files in (("train", train_job, {"0001": pub / "train" / str(train_job["id"]) / f"{train_job['id']}-0001.png"}),
                             ("test", test_job, {test_job["types"][0]: pub / "test" / f"{test_job['id']}.png"})):
        rec = ecg_make.make_record(job)
        assert {k: hashlib.md5(v).hexdigest() for k, v in rec["pngs"].items()} == \
            {k: hashlib.md5(f.read_bytes()).hexdigest() for k, f in files.items()}, job
        drawn = meta[side][str(job["id"])]
        assert drawn["seed"] == job["seed"] and drawn["signal"] == json.loads(json.dumps(rec["signal_params"]))
        if side == "train":
            csv = pub / "train" / str(job["id"]) / f"{job['id']}.csv"
            assert ecg_make.train_csv(rec["signals"], rec["fs"]) == csv.read_bytes()

    content = json.loads((priv / "content.json").read_text())
    made = {f"{side}/{p.relative_to(root).as_posix()}" for side, root in (("public", pub), ("private", priv))
            for p in root.rglob("*") if p.suffix in (".png", ".parquet") and p.is_file()}
    assert set(content) == made and len(content) == 30 + 20 + 2
    for rel in sorted(content)[::13]:  # a sample of the files: the pinned checksums cover content.json itself
        side, name = rel.split("/", 1)
        f = (pub if side == "public" else priv) / name
        assert content[rel] == (ecg_make.pixel_sha256(f.read_bytes()) if f.suffix == ".png" else ecg_make.table_sha256(pd.read_parquet(f)))
    # the same content in other bytes (another deflate level, another Parquet codec) has the same hash
    png = sorted((pub / "test").glob("*.png"))[0]
    buf = io.BytesIO()
    Image.open(png).save(buf, format="PNG", compress_level=2)
    assert buf.getvalue() != png.read_bytes() and ecg_make.pixel_sha256(buf.getvalue()) == content[f"public/test/{png.name}"]
    answers = pd.read_parquet(priv / "answers.parquet")
    answers.to_parquet(tmp_path / "a.parquet", compression="snappy", index=False)
    assert ecg_make.table_sha256(pd.read_parquet(tmp_path / "a.parquet")) == content["private/answers.parquet"]
    assert ecg_make.table_sha256(answers.assign(value=answers["value"] + 1e-12)) != content["private/answers.parquet"]
    pinned = yaml.safe_load((COMP.dir / "checksums.lite.yaml").read_text())
    assert "content.json" in pinned["private"] and "test.csv" in pinned["public"]
    assert not [n for side in pinned.values() for n in side if n.endswith((".png", ".parquet"))]


# ---------------------------------------------------------------- grading, breakdown, baseline


def test_grading_reports_the_breakdown_and_parquet_or_csv_submissions(lite, tmp_path: Path) -> None:  # noqa: ANN001
    from harness.report import score_details_summary
    from harness.spec import AttemptResult
    from harness.store import RunStore

    answers = pd.read_parquet(lite.answers)
    sample = pd.read_parquet(lite.sample_submission)
    sub = sample.assign(value=answers["value"].to_numpy() + 0.01 * np.sin(np.arange(len(answers))))
    buf = io.BytesIO()
    sub.to_parquet(buf, index=False)
    rep = grade_submission(COMP, buf.getvalue(), lite.answers, lite.sample_submission, lite=True)
    assert rep.valid_submission, rep.invalid_reason
    csv_rep = grade_submission(COMP, sub.to_csv(index=False).encode(), lite.answers, lite.sample_submission, lite=True)
    assert csv_rep.score == pytest.approx(rep.score)
    assert {f"lead:{lead}" for lead in LEADS} | {f"type:{t}" for t in ecg_make.ecg_distort.TYPES} == set(rep.details)
    assert all(np.isfinite(v) for v in rep.details.values())
    dummy = grade_submission(COMP, lite.sample_submission, lite.answers, lite.sample_submission, lite=True)
    assert dummy.valid_submission and not dummy.above_median and dummy.score < rep.score
    bad = grade_submission(COMP, sub.iloc[10:].to_csv(index=False).encode(), lite.answers, lite.sample_submission, lite=True)
    assert not bad.valid_submission and "missing" in (bad.invalid_reason or "")
    rs = RunStore(tmp_path, "r1")
    row = AttemptResult(run_id="r1", attempt_id="a1", task_kind="competition", competition_id=CID, agent_id="x", seed=0,
                        sandbox="local", isolation="none", status="succeeded")
    rs.write_score_details(row, rep.details)
    rs.compact_score_details()
    stored = pd.read_parquet(tmp_path / "r1" / "score_details.parquet")
    assert len(stored) == len(rep.details) and set(stored["group"]) == set(rep.details)
    summary = score_details_summary(rs.score_details())
    assert summary.set_index("group")["mean"].to_dict() == pytest.approx(rep.details)


def test_baseline_digitizer_beats_the_dummy_on_lite_images(lite, tmp_path: Path) -> None:  # noqa: ANN001
    """The classical digitizer on the clean, scan and photo images of the lite test set."""
    sys.path.insert(0, str(REPO / "harness" / "agents" / "baseline"))
    import ecg

    meta = json.loads((lite.private / "images.json").read_text())["test"]
    chosen = [rid for rid, m in meta.items() if m["type"] in ("0001", "0003", "0005")]
    test = pd.read_csv(lite.public / "test.csv")
    (tmp_path / "test").mkdir()
    for rid in chosen:
        (tmp_path / "test" / f"{rid}.png").symlink_to(lite.public / "test" / f"{rid}.png")
    test[test["id"].astype(str).isin(chosen)].to_csv(tmp_path / "test.csv", index=False)
    sub = ecg.solve(tmp_path, tmp_path / "out")
    answers = pd.read_parquet(lite.answers)
    answers = answers[answers["id"].str.split("_").str[0].isin(chosen)]
    score = M.score(sub, answers)
    zero = M.score(sub.assign(value=0.0), answers)
    assert score > 12.0 and score > zero + 8.0, (score, zero)


def _digitized_db(rec: dict, png: Path, steps: frozenset) -> float:  # type: ignore[type-arg]
    """The score (dB) of the baseline digitizer with `steps` on one generated image."""
    import ecg

    fs, win = rec["fs"], ecg_make.windows(rec["fs"])
    sig = ecg.digitize(png, {lead: b - a for lead, (a, b) in win.items()}, fs, steps)
    sub, sol = [], []
    for lead, (a, b) in win.items():
        ids = [f"1_{r}_{lead}" for r in range(b - a)]
        sub.append(pd.DataFrame({"id": ids, "value": sig[lead]}))
        sol.append(pd.DataFrame({"id": ids, "fs": fs, "value": rec["signals"][a:b, LEADS.index(lead)]}))
    return M.score(pd.concat(sub, ignore_index=True), pd.concat(sol, ignore_index=True))


def test_baseline_reads_a_mouldy_faded_scan_through_its_blobs(tmp_path: Path) -> None:
    """A mouldy black-and-white scan with faded ink (the generator's own seed 102, not a test
    image): the grid subtraction and the mould-blob rejection are what make it readable (without
    them the tracer follows mould texture and loses the faint QRS strokes)."""
    sys.path.insert(0, str(REPO / "harness" / "agents" / "baseline"))
    import ecg

    rec = ecg_make.make_record({"seed": 102, "types": ["0012"]})
    assert rec["params"]["0012"]["render"]["ink_alpha"] < 1.0 and rec["params"]["0012"]["distortion"]["mould_cover"] > 0.05
    png = tmp_path / "1.png"
    png.write_bytes(rec["pngs"]["0012"])
    full = _digitized_db(rec, png, ecg.ALL_STEPS)
    without = _digitized_db(rec, png, ecg.ALL_STEPS - {"degrid", "blobs"})
    assert full >= 12.5 and full > without + 5.0, (full, without)

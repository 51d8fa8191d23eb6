"""The grade a grader returns (`GradeReport`) and an entry of grading_report.json
(`CompetitionReport`) share one model of mlebench's fields (`MedalReport`); the keys they
write stay where they always were."""

from __future__ import annotations

import json

from harness.spec import CompetitionReport, GradeReport, MedalReport

MEDAL_KEYS = ["score", "gold_threshold", "silver_threshold", "bronze_threshold", "median_threshold", "any_medal",
              "gold_medal", "silver_medal", "bronze_medal", "above_median", "submission_exists", "valid_submission",
              "is_lower_better", "invalid_reason"]


def test_both_reports_share_the_medal_fields_and_keep_their_key_order() -> None:
    assert issubclass(GradeReport, MedalReport) and issubclass(CompetitionReport, MedalReport)
    assert list(MedalReport.model_fields) == ["competition_id", *MEDAL_KEYS]
    g = GradeReport(competition_id="c", score=0.5, any_medal=True)
    assert list(json.loads(g.model_dump_json())) == ["competition_id", *MEDAL_KEYS, "created_at", "submission_path",
                                                     "grade_seconds", "checks", "details"]
    c = CompetitionReport(competition_id="c", attempt_id="c__dummy__s0", seed=0, score=0.5, created_at="t", submission_path="p")
    expected = ["competition_id", "attempt_id", "seed", *MEDAL_KEYS, "created_at", "submission_path"]
    assert list(c.model_dump()) == expected and list(json.loads(c.model_dump_json())) == expected
    assert list(c.model_dump(mode="json", exclude={"seed"})) == [k for k in expected if k != "seed"]
    assert CompetitionReport.model_validate(c.model_dump()) == c

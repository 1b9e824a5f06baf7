"""Scoring: precision and recall per rule, and the checks against the sample district's ground truth."""

from __future__ import annotations

import pandas as pd
import pytest

from gis import sample
from gis.checks.runner import run_on_frames
from gis.checks.scoring import format_score, score


def _findings(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["rule", "verdict", "subject_layer", "subject_ref"])


def test_score_counts_fail_findings_against_truth():
    found = _findings([
        ("LANE-WIDTH", "fail", "fire_lanes", "L1"),
        ("LANE-WIDTH", "fail", "fire_lanes", "L1"),        # a second finding on the same subject counts once
        ("LANE-WIDTH", "fail", "fire_lanes", "L9"),        # not planted: a false positive
        ("LANE-CLEAR", "cannot_judge", "fire_lanes", "L2"),  # not a failure: ignored
        ("AERIAL-SIZE", "pass", "aerial_areas", "A1"),
    ])
    truth = pd.DataFrame({"rule": ["LANE-WIDTH", "LANE-CLEAR"], "subject_layer": ["fire_lanes", "fire_lanes"],
                          "subject_ref": ["L1", "L2"]})
    table = score(found, truth)
    assert table.loc["LANE-WIDTH", ["tp", "fp", "fn"]].tolist() == [1, 1, 0]
    assert table.loc["LANE-WIDTH", "precision"] == 0.5 and table.loc["LANE-WIDTH", "recall"] == 1.0
    assert table.loc["LANE-CLEAR", ["tp", "fp", "fn"]].tolist() == [0, 0, 1]
    assert table.loc["LANE-CLEAR", "recall"] == 0.0
    assert table.loc["LANE-WIDTH", "false_pos"] == ["fire_lanes:L9"]
    assert table.loc["ALL", ["tp", "fp", "fn"]].tolist() == [1, 1, 1]
    assert "AERIAL-SIZE" not in table.index
    text = format_score(table)
    assert "LANE-WIDTH" in text and "false positives: fire_lanes:L9" in text


def test_a_subject_layer_mismatch_is_no_match():
    found = _findings([("LANE-HEADROOM", "fail", "fire_lanes", "X1")])
    truth = [("LANE-HEADROOM", "obstructions", "X1")]
    table = score(found, truth)
    assert table.loc["LANE-HEADROOM", ["tp", "fp", "fn"]].tolist() == [0, 1, 1]


def test_empty_inputs_score_perfectly():
    table = score(_findings([]), [])
    assert table.loc["ALL", "precision"] == 1.0 and table.loc["ALL", "recall"] == 1.0


# --- the sample district ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=[("yinzhou", 1), ("yinzhou", 2), ("yinzhou", 3), ("changle", 1)],
                ids=lambda p: f"{p[0]}-seed{p[1]}")
def scored(request) -> tuple[pd.DataFrame, pd.DataFrame]:
    district, seed = request.param
    s = sample.generate(district=district, scale="s", seed=seed)
    found = run_on_frames(s.layers, profile="cn-gb")
    return score(found, s.ground_truth), s.ground_truth


def test_every_planted_hazard_is_found_and_nothing_else(scored):
    table, truth = scored
    assert len(truth) > 0
    bad = table[(table["precision"] < 1.0) | (table["recall"] < 1.0)]
    assert bad.empty, "\n" + format_score(table)


def test_every_rule_with_planted_failures_is_scored(scored):
    table, truth = scored
    assert set(truth["rule"]) <= set(table.index)

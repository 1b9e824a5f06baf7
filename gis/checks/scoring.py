"""Scoring checks against ground truth: per-rule precision and recall of fail findings."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from gis.checks.catalog import RULES

MATCH_ON: tuple[str, ...] = ("rule", "subject_layer", "subject_ref")


def _keys(frame: pd.DataFrame | Iterable[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
    if isinstance(frame, pd.DataFrame):
        if not len(frame):
            return set()
        return set(map(tuple, frame[list(MATCH_ON)].astype(str).itertuples(index=False, name=None)))
    return {(str(a), str(b), str(c)) for a, b, c in frame}


def score(findings: pd.DataFrame, ground_truth: pd.DataFrame | Iterable[tuple[str, str, str]]) -> pd.DataFrame:
    """Per-rule precision and recall of fail findings against ground truth.

    Parameters
    ----------
    findings : DataFrame
        Findings (at least rule, verdict, subject_layer, subject_ref); only ``fail`` rows count, several findings
        on one subject (pair rules, several blockages of one lane) count once.
    ground_truth : DataFrame or iterable of (rule, subject_layer, subject_ref)
        What must fail; everything else must not.

    Returns
    -------
    DataFrame
        Indexed by rule (every rule with a finding or a truth row, plus ``ALL``): tp, fp, fn, precision, recall,
        and the unmatched subjects (`false_pos`, `false_neg`) for debugging.
    """
    fails = findings[findings["verdict"] == "fail"] if len(findings) else findings
    got = _keys(fails) if len(fails) else set()
    want = _keys(ground_truth)
    rules = sorted({k[0] for k in got | want}, key=lambda r: (list(RULES).index(r) if r in RULES else 999, r))
    rows = []
    for rule in [*rules, "ALL"]:
        g = {k for k in got if rule in ("ALL", k[0])}
        w = {k for k in want if rule in ("ALL", k[0])}
        tp, fp, fn = len(g & w), len(g - w), len(w - g)
        rows.append({
            "rule": rule, "tp": tp, "fp": fp, "fn": fn,
            "precision": tp / (tp + fp) if tp + fp else 1.0,
            "recall": tp / (tp + fn) if tp + fn else 1.0,
            "false_pos": sorted(f"{k[1]}:{k[2]}" for k in g - w) if rule != "ALL" else [],
            "false_neg": sorted(f"{k[1]}:{k[2]}" for k in w - g) if rule != "ALL" else [],
        })
    return pd.DataFrame(rows).set_index("rule")


def format_score(table: pd.DataFrame, *, details: bool = True) -> str:
    """The score table as aligned text (Chinese and English headers), with unmatched subjects when asked."""
    lines = [f"{'规则 rule':<20} {'TP':>5} {'FP':>5} {'FN':>5} {'查准 precision':>15} {'查全 recall':>12}"]
    for rule, r in table.iterrows():
        lines.append(f"{rule:<20} {r.tp:>5} {r.fp:>5} {r.fn:>5} {r.precision:>15.3f} {r.recall:>12.3f}")
    if details:
        for rule, r in table.iterrows():
            if r.false_pos:
                lines.append(f"  {rule} 误报 false positives: {', '.join(r.false_pos[:20])}")
            if r.false_neg:
                lines.append(f"  {rule} 漏报 false negatives: {', '.join(r.false_neg[:20])}")
    return "\n".join(lines)


def print_score(table: pd.DataFrame, *, details: bool = True) -> None:
    """Print `format_score(table)`."""
    print(format_score(table, details=details))

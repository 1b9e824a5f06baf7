"""A whole campaign from the command line on the s-scale sample district: the Yinzhou 2020 preset shifted to 2026,
checks, hazards rectified through the workflow CLI, a double-random draw and its results, progress, every report."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook
from PIL import Image
from sqlalchemy import text

from api.cli import cli

pytestmark = pytest.mark.db


def _run(*args: str, ok: bool = True) -> str:
    result = CliRunner().invoke(cli, list(args), input="y\n", catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, (args, result.output)
    else:
        assert result.exit_code != 0, (args, result.output)
    return result.output


def _photo(path: Path) -> Path:
    buf = io.BytesIO()
    Image.new("RGB", (200, 150), "green").save(buf, format="JPEG")
    path.write_bytes(buf.getvalue())
    return path


def test_a_whole_yinzhou_campaign_runs_from_the_cli_on_the_s_scale_district(db, tmp_path):
    _run("sample", "--district", "yinzhou", "--scale", "s")
    _run("check", "--format", "json")
    _run("user", "add", "admin", "--role", "admin", "--password", "campaign-admin-2026")  # `--as admin` below
    cid = int(_run("campaign", "create", "--preset", "yinzhou-2020", "--year", "2026", "--as", "admin").strip())
    listed = json.loads(_run("campaign", "list", "--format", "json"))
    assert [c["id"] for c in listed] == [cid] and listed[0]["stages"][0]["starts_on"] == "2026-09-08"

    # the s-scale district is one street office: its three compounds with the fewest hazards get all of them
    # assigned and reported rectified (with an after photo) through the workflow's CLI
    after = _photo(tmp_path / "after.jpg")
    with db.connect() as conn:
        picks = conn.execute(text(
            "SELECT t.street_code, t.compound_ref FROM hazards t WHERE t.status IN ('open', 'reopened') "
            "AND t.compound_ref IS NOT NULL GROUP BY 1, 2 ORDER BY count(*), t.compound_ref LIMIT 3")).all()
        work = {p.compound_ref: conn.execute(text(
            "SELECT id FROM hazards WHERE compound_ref = :r AND status IN ('open', 'reopened', 'assigned', "
            "'rectifying')"), {"r": p.compound_ref}).scalars().all() for p in picks}
    assert len(picks) == 3
    for ids in work.values():
        for hid in ids:
            _run("hazard", "assign", str(hid), "--department", "物业/住建", "--unit", "某物业公司")
            _run("hazard", "transition", str(hid), "--to", "rectified", "--photo", str(after))
    first = picks[0]
    _run("campaign", "inspect", str(cid), "--compound", first.compound_ref, "--kind", "self", "--date", "2026-09-20")

    with db.connect() as conn:
        streets = conn.execute(text("SELECT ref, name FROM streets ORDER BY ref")).all()
    roster = tmp_path / "roster.csv"
    roster.write_text("姓名,单位,街道\n" + "".join(f"员{i}a,{s.name}办,{s.ref}\n员{i}b,{s.name}办,{s.name}\n"
                                                   for i, s in enumerate(streets))
                      + "甲,区住建局,\n乙,区消防救援大队,\n", encoding="utf-8")
    _run("spotcheck", "draw", str(cid), "--roster", str(roster), "--rate", "2", ok=False)
    checks = json.loads(_run("spotcheck", "draw", str(cid), "--roster", str(roster), "--seed", "42",
                             "--format", "json", "--as", "admin"))
    own = {f"员{i}{x}": s.ref for i, s in enumerate(streets) for x in "ab"}
    by_street: dict[str, int] = {}
    for c in checks:
        by_street[c["street"]] = by_street.get(c["street"], 0) + 1
        assert all(own.get(n) != c["street"] for n in c["inspectors"])
    with db.connect() as conn:
        candidates = dict(conn.execute(text("SELECT key, jsonb_array_length(value) FROM spot_draws, "
                                            "jsonb_each(candidates) WHERE id = :d"), {"d": checks[0]["draw"]}).all())
    for street, n in candidates.items():
        assert by_street.get(street, 0) == (max(1, math.ceil(n * 0.1)) if n else 0)
    assert set(by_street) == {p.street_code for p in picks}
    _run("spotcheck", "verify", str(checks[0]["draw"]))
    c = checks[0]
    out = _run("spotcheck", "record", str(c["id"]), "--compound", c["compound"], "--item", "vehicles", "--result",
               "fail", "--note", "复查仍有车辆占用消防车道", "--photo", str(after), "--as", "admin")
    assert "failed" in out

    prog = json.loads(_run("campaign", "progress", str(cid), "--format", "json", "--date", "2026-12-01"))
    assert prog["campaign"]["current_stage"] == "pilot"  # 10/1–12/10
    assert {p["name"] for p in prog["campaign"]["pilot_streets"]} == {"中河街道", "东柳街道"}
    assert prog["total"]["self_inspected"] == 1 and prog["total"]["spot_failed"] == 1
    # the district-wide check run finished after the campaign started: every compound counts as surveyed
    assert prog["total"]["compounds"] == prog["total"]["surveyed"] == 40

    forms_dir = tmp_path / "forms"
    written = _run("report", "forms", str(cid), "-o", str(forms_dir), "--date", "2026-12-01").split()
    assert len(written) == 3 + len(streets)
    wb = load_workbook(forms_dir / "附件3_抽查登记表.xlsx")
    assert wb["抽查登记"].cell(5, 4).value == c["compound"]
    pdf = tmp_path / "c.pdf"
    _run("report", "compound", c["compound"], "-o", str(pdf))
    assert pdf.read_bytes()[:5] == b"%PDF-"
    _run("report", "summary", str(cid), "-o", str(tmp_path / "summary.pdf"))
    _run("report", "stage", str(cid), "--street", first.street_code, "-o", str(tmp_path / "stage.xlsx"))
    _run("report", "plans", str(cid), "-o", str(tmp_path / "plans.xlsx"))
    _run("report", "compound", "no-such-compound", "-o", str(tmp_path / "x.pdf"), ok=False)

"""The campaign over HTTP: create/progress, draws and results, report jobs run by the server's worker, the page."""

from __future__ import annotations

import time

import pytest
from campaign_support import STREETS, load_campaign_district
from field_support import picture
from sqlalchemy import text
from test_api_support import make_user

pytestmark = pytest.mark.db
A = "330212003"


@pytest.fixture
def setup(db):
    load_campaign_district(db)
    return {k: make_user(db, k, role, streets) for k, role, streets in (
        ("admin", "admin", ()), ("fire", "fire_brigade", ()), ("so_a", "street_office", (A,)),
        ("viewer", "viewer", ()))}


ROSTER = [{"name": f"p{i}", "unit": "u", "street": code} for i, code in enumerate(STREETS)] + [
    {"name": "d1", "unit": "区住建局", "street": ""}, {"name": "d2", "unit": "区消防救援大队", "street": ""}]


def test_campaigns_draws_and_results_over_http(api, setup):
    h = setup
    bad = api.post("/campaigns", json={"stages": [
        {"code": "a", "starts_on": "2026-01-01", "ends_on": "2026-02-10"},
        {"code": "b", "starts_on": "2026-02-01", "ends_on": "2026-03-01"}]}, headers=h["admin"])
    assert bad.status_code == 400 and "overlap" in bad.json()["description"]
    assert api.post("/campaigns", json={"preset": "changle-2022"}, headers=h["so_a"]).status_code == 403
    made = api.post("/campaigns", json={"preset": "changle-2022", "year": 2026}, headers=h["admin"])
    assert made.status_code == 201, made.text
    cid = made.json()["id"]
    doc = api.get(f"/campaigns/{cid}?date=2026-08-01", headers=h["viewer"]).json()
    assert doc["current_stage"] == "spot_checks" and doc["due_next"]["due"] == "2026-10-10"
    mine = api.get(f"/campaigns/{cid}/progress?date=2026-08-01", headers=h["so_a"]).json()
    assert [r["street"] for r in mine["streets"]] == [A]  # a street office sees its own street only
    assert api.post(f"/campaigns/{cid}/spotchecks", json={"roster": ROSTER, "rate": 1.5},
                    headers=h["fire"]).status_code == 400
    assert api.post(f"/campaigns/{cid}/spotchecks", json={"roster": ROSTER}, headers=h["so_a"]).status_code == 403
    drawn = api.post(f"/campaigns/{cid}/spotchecks", json={"roster": ROSTER, "seed": 5}, headers=h["fire"])
    assert drawn.status_code == 201, drawn.text
    check = drawn.json()["checks"][0]
    assert api.get(f"/spotchecks/draws/{drawn.json()['draw']}/verify", headers=h["viewer"]).json()["reproduces"]
    # a street office verifies the whole draw (row-level security must not make it "not reproduce") and is shown
    # only its own street's checks
    own = api.get(f"/spotchecks/draws/{drawn.json()['draw']}/verify", headers=h["so_a"]).json()
    assert own["reproduces"] and own["checks"] and {c["street"] for c in own["checks"]} == {A}
    r = api.post(f"/spotchecks/{check['id']}/results", json={"compound": check["compound"], "item": "vehicles",
                                                             "result": "fail", "note": "占道"}, headers=h["fire"])
    assert r.status_code == 201 and r.json()["status"] == "failed"
    assert api.post(f"/spotchecks/{check['id']}/results", json={"compound": check["compound"], "item": "moon",
                                                                "result": "pass"}, headers=h["fire"]).status_code == 400
    assert api.post("/spotchecks/999999/results", json={"compound": "x", "item": "design", "result": "pass"},
                    headers=h["fire"]).status_code == 404
    assert api.get("/campaigns/999999", headers=h["viewer"]).status_code == 404
    page = api.get(f"/map/campaigns/{cid}?date=2026-08-01", headers=h["admin"])
    assert page.status_code == 200 and "各街道进度" in page.text and f'data-check="{check["id"]}"' in page.text
    plans = api.get(f"/campaigns/{cid}/plans?date=2026-08-01", headers=h["so_a"]).json()
    assert plans["plans"] and {p["street"] for p in plans["plans"]} == {A} and plans["renovation"] == []
    routed = api.post(f"/campaigns/{cid}/renovation", json={"year": 2026, "compounds": ["C2-02"]},
                      headers=h["admin"])
    assert routed.status_code == 200 and [r["compound"] for r in routed.json()["routed"]] == ["C2-02"]
    assert api.post(f"/campaigns/{cid}/renovation", json={"year": 2026, "compounds": ["C2-02"]},
                    headers=h["so_a"]).status_code == 403
    paths = api.get("/api", headers=h["admin"]).json()["paths"]
    assert {"/campaigns", "/campaigns/{campaign_id}/progress", "/campaigns/{campaign_id}/spotchecks",
            "/spotchecks/{check_id}/results", "/jobs/{job_id}"} <= set(paths)


def test_a_failed_spot_check_item_is_recorded_from_a_form_with_its_photos_all_or_nothing(api, setup, db):
    """The page's multipart form: the photos go with the hazard the failure files or reopens, in the same
    transaction; a file that is no picture refuses the whole record, naming the file."""
    h = setup
    cid = api.post("/campaigns", json={"preset": "changle-2022", "year": 2026}, headers=h["admin"]).json()["id"]
    checks = api.post(f"/campaigns/{cid}/spotchecks", json={"roster": ROSTER, "seed": 5},
                      headers=h["fire"]).json()["checks"]
    first, second = checks[0], checks[1]
    url = f"/spotchecks/{first['id']}/results/form"
    fields = {"compound": first["compound"], "item": "vehicles", "result": "fail", "note": "消防车道上停放车辆"}

    def items() -> list[tuple]:
        with db.connect() as conn:
            return [tuple(r) for r in conn.execute(text(
                "SELECT check_id, item, result, photos, hazard_ids FROM spot_check_items ORDER BY id"))]

    bad = api.post(url, data=fields, files=[("photo", ("a.jpg", picture("JPEG"), "image/jpeg")),
                                            ("photo", ("b.jpg", b"not a picture at all", "image/jpeg"))],
                   headers=h["fire"])
    assert bad.status_code == 415 and bad.json()["field"] == "photo[1]", bad.text  # judged from its bytes
    assert items() == []  # nothing half-written: no result, no hazard reopened, no photo
    assert api.post(url, data=fields, files=[("photo", ("a.jpg", picture("JPEG"), "image/jpeg"))],
                    headers=h["so_a"]).status_code == 403
    done = api.post(url, data=fields, files=[("photo", ("a.jpg", picture("JPEG"), "image/jpeg")),
                                             ("photo", ("b.png", picture("PNG"), "image/png"))], headers=h["fire"])
    assert done.status_code == 201, done.text
    got = done.json()
    assert got["status"] == "failed" and len(got["photos"]) == 2 and got["hazards"]
    shown = api.get(f"/hazards/{got['hazards'][0]}/photos", headers=h["fire"]).json()["photos"]
    assert {p["id"] for p in shown} >= set(got["photos"]) and {p["kind"] for p in shown} == {"before"}
    assert items() == [(first["id"], "vehicles", "fail", got["photos"], got["hazards"])]
    # a passed item takes no photos (the page's empty file input is its Playwright test's)
    ok = {"compound": second["compound"], "item": "design", "result": "pass", "note": ""}
    second_url = f"/spotchecks/{second['id']}/results/form"
    assert api.post(second_url, data=ok, files=[("photo", ("a.jpg", picture("JPEG"), "image/jpeg"))],
                    headers=h["fire"]).status_code == 400
    passed = api.post(second_url, data=ok, headers=h["fire"])
    assert passed.status_code == 201 and passed.json()["photos"] == [], passed.text


def test_a_report_job_is_run_by_the_servers_worker_and_downloaded(api, setup):
    h = setup
    cid = api.post("/campaigns", json={"preset": "changle-2022", "year": 2026}, headers=h["admin"]).json()["id"]
    assert api.post(f"/campaigns/{cid}/reports", json={"kind": "summary"}, headers=h["so_a"]).status_code == 403
    queued = api.post(f"/campaigns/{cid}/reports", json={"kind": "forms", "street": A}, headers=h["so_a"])
    assert queued.status_code == 202, queued.text
    job = queued.json()["job"]
    for _ in range(600):
        doc = api.get(f"/jobs/{job}", headers=h["so_a"]).json()
        if doc["status"] not in ("queued", "running"):
            break
        time.sleep(0.2)
    assert doc["status"] == "succeeded", doc
    got = api.get(doc["download"], headers=h["so_a"])
    assert got.status_code == 200 and got.content[:2] == b"PK"
    assert api.get(f"/jobs/{job}", headers=h["fire"]).status_code == 404  # someone else's job
    pdf = api.get("/compounds/C0-01/file", headers=h["so_a"])
    assert pdf.status_code == 200 and pdf.content[:5] == b"%PDF-"
    assert api.get("/compounds/C1-01/file", headers=h["so_a"]).status_code == 404  # another street's compound

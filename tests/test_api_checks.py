"""Check runs in the background and the hazards ledger: filters, transitions, audit."""

from __future__ import annotations

import importlib.util
import time

import pytest
from field_support import picture
from sqlalchemy import text
from test_api_support import STREET_A, STREET_B

from gis.campaign import photos
from gis.db import transaction

pytestmark = pytest.mark.db
FAMILIES = ("lanes", "aerial", "separation", "structures", "hydrants", "parking", "ebikes")


def _all_families() -> bool:
    return all(importlib.util.find_spec(f"gis.checks.{f}") is not None for f in FAMILIES)


def test_a_check_run_starts_in_the_background_and_reports_its_outcome(api, headers, district):
    started = time.monotonic()
    response = api.post("/checks/runs", json={"scope": "street", "street": STREET_A}, headers=headers["planner"])
    assert response.status_code == 202
    run_id = response.json()["id"]
    assert response.headers["Location"].endswith(f"/checks/runs/{run_id}")
    for _ in range(1200):
        doc = api.get(f"/checks/runs/{run_id}", headers=headers["planner"]).json()
        if doc["status"] not in ("queued", "running"):
            break
        time.sleep(0.1)
    assert doc["started_by"] == "planner"
    assert doc["scope"]["street"] == STREET_A
    if _all_families():
        assert doc["status"] == "done" and doc["progress"] == 1
        assert "rules" in doc["counts"]
    else:
        assert doc["status"] == "failed" and "gis.checks." in doc["error"]
    listed = api.get("/checks/runs", headers=headers["planner"]).json()["runs"]
    assert listed[0]["id"] == run_id
    assert time.monotonic() - started < 120


def test_check_run_requests_are_validated(api, headers, district):
    h = headers["planner"]
    assert api.post("/checks/runs", json={"scope": "street"}, headers=h).status_code == 400
    assert api.post("/checks/runs", json={"scope": "compound"}, headers=h).status_code == 400
    assert api.post("/checks/runs", json={"scope": "moon"}, headers=h).status_code == 400
    assert api.get("/checks/runs/999999", headers=h).status_code == 404


def test_hazards_are_geojson_with_ledger_filters(api, headers, district):
    h = headers["admin"]
    fc = api.get("/hazards", headers=h).json()
    assert fc["type"] == "FeatureCollection" and fc["numberReturned"] == 2
    assert {f["properties"]["rule"] for f in api.get("/hazards?rule=HYD-ACCESS", headers=h).json()["features"]} == {
        "HYD-ACCESS"}
    assert api.get(f"/hazards?street={STREET_B}", headers=h).json()["features"][0]["properties"]["key"] == "k-b"
    assert api.get("/hazards?severity_min=4", headers=h).json()["numberReturned"] == 1
    assert api.get("/hazards?department=交警", headers=h).json()["features"][0]["properties"]["key"] == "k-a"
    assert api.get("/hazards?verdict=fail&status=open", headers=h).json()["numberReturned"] == 2
    assert api.get("/hazards?severity_min=lots", headers=h).status_code == 400
    assert api.get("/hazards", headers=headers["street_b"]).json()["numberReturned"] == 1


def test_the_ledger_life_cycle_is_enforced_and_audited(api, headers, district, db):
    hid = district.id("hazards", "k-a")
    url = f"/hazards/{hid}/transition"
    so, fire = headers["street_a"], headers["fire"]
    refused = api.post(url, json={"to": "rectified", "photos": [1]}, headers=so)
    assert refused.status_code == 409  # open → rectified skips steps, and the refusal names the way on
    assert refused.json()["allowed"] == ["assigned", "dismissed"] and "assigned" in refused.json()["description"]
    with transaction(engine=db, user="test") as conn:  # two real after-photos of this hazard
        owner = photos.hazard_owner(conn, hid)
        after = [photos.add_photo(conn, picture("JPEG"), owner=owner, kind="after", user="test")["id"]
                 for _ in range(2)]
    steps: tuple[tuple[str, dict[str, object]], ...] = (
        ("assigned", {"department": "交警/公安", "unit": "某物业公司", "deadline": "2099-01-01"}),
        ("rectifying", {}), ("rectified", {"photos": after}))
    for to, extra in steps:
        response = api.post(url, json={"to": to, "note": f"现场 {to}", **extra}, headers=so)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == to
    assert api.post(url, json={"to": "verified"}, headers=so).status_code == 403  # the fire brigade verifies
    done = api.post(url, json={"to": "verified"}, headers=fire).json()
    assert done["status"] == "verified" and done["event"]["evidence"] == "reinspection"
    closed = api.post(url, json={"to": "closed", "note": "销号"}, headers=fire).json()
    assert closed["status"] == "closed"
    assert api.post(url, json={"to": "flying"}, headers=fire).status_code == 400
    with db.connect() as conn:
        audit = conn.execute(text(
            "SELECT changed_by, after->>'status' FROM audit_log WHERE layer = 'hazards' AND feature_id = :i "
            "AND action = 'update' ORDER BY id"), {"i": hid}).all()
        events = conn.execute(text("SELECT by, from_state, to_state, note, photos FROM hazard_events "
                                   "WHERE hazard_id = :i ORDER BY id"), {"i": hid}).all()
        row = conn.execute(text("SELECT department, responsible_unit, deadline, closed_at IS NOT NULL, extra "
                                "FROM hazards WHERE id = :i"), {"i": hid}).one()
    assert [tuple(a) for a in audit] == [("street_a", "assigned"), ("street_a", "rectifying"),
                                         ("street_a", "rectified"), ("fire", "verified"), ("fire", "closed")]
    assert [(e.by, e.from_state, e.to_state) for e in events] == [
        ("street_a", "open", "assigned"), ("street_a", "assigned", "rectifying"),
        ("street_a", "rectifying", "rectified"), ("fire", "rectified", "verified"), ("fire", "verified", "closed")]
    assert events[0].note == "现场 assigned" and events[2].photos == after
    assert row[:2] == ("交警/公安", "某物业公司") and str(row[2]) == "2099-01-01" and row[3]
    assert "transitions" not in row[4]  # history lives in hazard_events, not in `extra`


def test_anything_unresolved_can_be_dismissed_by_admin_or_fire_brigade_only_with_a_reason(api, headers, district):
    hid = district.id("hazards", "k-b")
    url = f"/hazards/{hid}/transition"
    assert api.post(url, json={"to": "dismissed", "note": "误报"}, headers=headers["street_b"]).status_code == 403
    no_reason = api.post(url, json={"to": "dismissed"}, headers=headers["admin"])
    assert no_reason.status_code == 400 and no_reason.json()["field"] == "note"
    assert api.post(url, json={"to": "dismissed", "note": "误报 false alarm"},
                    headers=headers["admin"]).json()["status"] == "dismissed"
    assert api.post(url, json={"to": "dismissed", "note": "again"}, headers=headers["admin"]).status_code == 409

"""Public complaints (举报投诉): anonymous, rate-limited per address in PostgreSQL, routed to the street the point
lies in, triaged there into a MANUAL-* hazard or rejected with a reason; the tracking code shows the status only."""

from __future__ import annotations

import pytest
from field_support import HTML, X0, Y0, picture
from sqlalchemy import text
from test_api_support import STREET_A

from gis.config import clear_caches, complaint_settings
from gis.db import owner_engine

pytestmark = pytest.mark.db

IN_CA1 = (X0 + 0.002, Y0 + 0.002)  # inside compound CA-1 of street A


def complain(api, *, lonlat=IN_CA1, category="lane_occupied", description="车辆长期占用消防车道", photo=None,
             extra_headers=None):
    files = {"photo": ("p.jpg", photo, "image/jpeg")} if photo is not None else None
    return api.post("/complaints", data={"category": category, "description": description,
                                         "lon": str(lonlat[0]), "lat": str(lonlat[1])},
                    files=files, headers=extra_headers or {})


def test_a_complaint_gets_a_tracking_code_that_shows_only_its_status(api, district):
    r = complain(api, photo=picture("JPEG"))
    assert r.status_code == 201, r.text
    code = r.json()["tracking_code"]
    assert code.startswith("TS-") and len(code) == 17
    tracked = api.get(f"/complaints/track/{code}")
    assert tracked.status_code == 200
    assert tracked.json() == {"tracking_code": code, "status": "pending", "label_zh": "待处理",
                              "label_en": "Received, awaiting triage"}
    assert "车辆" not in tracked.text and "CA-1" not in tracked.text and STREET_A not in tracked.text
    assert api.get("/complaints/track/TS-AAAA-BBBB-CCCC").status_code == 404
    assert api.get("/complaints/track/" + "x" * 40).status_code == 404


def test_a_description_of_several_lines_as_a_browser_sends_it_is_kept_with_its_line_breaks(api, district, db):
    # a textarea's lines arrive as CRLF in the form data
    r = complain(api, description="车辆长期占用消防车道\r\n晚上尤其严重\r\n\r\n请尽快处理")
    assert r.status_code == 201, r.text
    with owner_engine().connect() as conn:
        stored = conn.execute(text("SELECT description FROM complaints")).scalar_one()
    assert stored == "车辆长期占用消防车道\n晚上尤其严重\n\n请尽快处理"
    reordered = complain(api, description="车辆\u202e占用")
    assert reordered.status_code == 400 and reordered.json()["field"] == "description"
    assert "U+202E" in reordered.json()["description"]


def test_the_complaint_lands_in_the_queue_of_the_street_of_its_point(api, headers, district):
    complain(api)
    a = api.get("/complaints", headers=headers["street_a"])
    assert a.status_code == 200
    [row] = a.json()["complaints"]
    assert row["street_code"] == STREET_A and row["compound_ref"] == "CA-1" and row["status"] == "pending"
    assert api.get("/complaints", headers=headers["street_b"]).json()["complaints"] == []
    assert api.get("/complaints", headers=headers["viewer"]).status_code == 403
    assert api.get("/complaints").status_code == 401


def test_a_flood_from_one_address_is_refused_and_forwarded_for_headers_do_not_help(api, district, db):
    limit = complaint_settings().per_hour
    codes = [complain(api, extra_headers={"X-Forwarded-For": f"10.0.0.{i}"}).status_code for i in range(limit + 2)]
    assert codes[:limit] == [201] * limit and codes[limit:] == [429, 429]
    refused = complain(api)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM complaints")).scalar_one() == limit
        # no raw address is stored, only a hash
    with owner_engine().connect() as conn:  # the application role may not read the hits at all
        assert conn.execute(text("SELECT count(*) FROM complaint_hits WHERE address_hash ~ '^[0-9a-f]{64}$'")
                            ).scalar_one() == limit  # refused attempts do not extend the wait


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"lonlat": (100.0, 10.0)}, "lonlat"),  # in no street of the district
    ({"lonlat": (29.80, 121.50)}, "lonlat"),  # swapped
    ({"category": "arson"}, "category"),
    ({"category": "maintenance_contract"}, "category"),  # the property company's paperwork, not the public's
    ({"description": "   "}, "description"),
    ({"description": "x" * 2001}, "description"),
    ({"photo": HTML}, "photo"),
])
def test_bad_complaints_name_the_field_and_write_nothing(api, district, db, kwargs, field):
    r = complain(api, **kwargs)
    assert r.status_code in (400, 415), r.text
    assert r.json()["field"] == field
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM complaints")).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM photos")).scalar_one() == 0


def test_accepting_makes_a_manual_hazard_with_the_complaints_photo(api, headers, district, db):
    code = complain(api, photo=picture("JPEG")).json()["tracking_code"]
    [row] = api.get("/complaints", headers=headers["street_a"]).json()["complaints"]
    assert api.post(f"/complaints/{row['id']}/accept", headers=headers["street_b"], json={}).status_code == 404
    r = api.post(f"/complaints/{row['id']}/accept", headers=headers["street_a"], json={"note": "已核实"})
    assert r.status_code == 200, r.text
    hazard_id = r.json()["hazard_id"]
    assert r.json()["rule"] == "MANUAL-LANE-OCCUPIED"
    with db.connect() as conn:
        h = conn.execute(text("SELECT rule, status, street_code, compound_ref, department, message_zh "
                              "FROM hazards WHERE id = :h"), {"h": hazard_id}).one()
        events = conn.execute(text("SELECT from_state, to_state, evidence, photos FROM hazard_events "
                                   "WHERE hazard_id = :h"), {"h": hazard_id}).all()
        photo_owner = conn.execute(text("SELECT hazard_id FROM photos")).scalar_one()
    assert (h.rule, h.status, h.street_code, h.compound_ref) == ("MANUAL-LANE-OCCUPIED", "open", STREET_A, "CA-1")
    assert h.department == "交警/公安; 综合执法/城管" and "车辆长期占用" in h.message_zh
    assert [(e.from_state, e.to_state, e.evidence) for e in events] == [(None, "open", "manual")]
    assert len(events[0].photos) == 1 and photo_owner == hazard_id
    assert api.get(f"/complaints/track/{code}").json()["status"] == "accepted"
    again = api.post(f"/complaints/{row['id']}/accept", headers=headers["street_a"], json={})
    assert again.status_code == 409
    # the hazard is in the street office's work list like any other
    assert api.get(f"/hazards/{hazard_id}", headers=headers["street_a"]).status_code == 200


def test_rejecting_needs_a_reason(api, headers, district, db):
    code = complain(api).json()["tracking_code"]
    [row] = api.get("/complaints", headers=headers["street_a"]).json()["complaints"]
    blank = api.post(f"/complaints/{row['id']}/reject", headers=headers["street_a"], json={"reason": "  "})
    assert blank.status_code == 400 and blank.json()["field"] == "reason"
    r = api.post(f"/complaints/{row['id']}/reject", headers=headers["street_a"], json={"reason": "现场核查无此情况"})
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    tracked = api.get(f"/complaints/track/{code}").json()
    assert tracked["status"] == "rejected" and "现场核查" not in str(tracked)
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM hazards WHERE rule LIKE 'MANUAL-%'")).scalar_one() == 0


def test_an_oversized_complaint_is_refused_before_it_is_parsed(api, district, db, monkeypatch):
    monkeypatch.setenv("FIRELANE_COMPLAINT_MAX_PHOTO_BYTES", "20000")
    clear_caches()
    try:
        big = picture("PNG", (600, 600)) + b"\x00" * 200_000  # over the body limit of a complaint
        r = complain(api, photo=big)
        assert r.status_code == 413 and r.json()["field"] == "photo"
        mid = picture("JPEG", (200, 200))
        assert len(mid) < 20000
        assert complain(api, photo=mid).status_code == 201
        with db.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM complaints")).scalar_one() == 1
    finally:
        monkeypatch.delenv("FIRELANE_COMPLAINT_MAX_PHOTO_BYTES")
        clear_caches()

"""Manual reports (MANUAL-* hazards, fix on the spot), the property role bound to compounds, and the facility
checklist whose failing items become hazards and whose passing again claims them rectified."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from db_support import table_counts
from field_support import HTML, X0, Y0, picture
from sqlalchemy import text
from test_api_support import STREET_A

from api.auth import issue_token
from api.cli import cli
from api.users import create_user
from gis.coords import wgs84_to_gcj02

pytestmark = pytest.mark.db

IN_CA1 = (X0 + 0.002, Y0 + 0.002)
IN_CB1 = (X0 + 0.013, Y0 + 0.002)


def property_user(db, name: str = "wuye1", compounds: tuple[str, ...] = ("CA-1",)) -> dict[str, str]:
    create_user(name, "property-pass-1", role="property", compound_refs=list(compounds))
    with db.connect() as conn:
        uid = conn.execute(text("SELECT id FROM users WHERE username = :u"), {"u": name}).scalar_one()
    token, _ = issue_token(uid, name="test")
    return {"Authorization": f"Bearer {token}"}


def report(api, auth, *, lonlat=IN_CA1, category="fire_door_defective", photos=(), afters=(), **data):
    form = {"category": category, "lon": str(lonlat[0]), "lat": str(lonlat[1]), **data}
    files = [("photo", (f"b{i}.jpg", p, "image/jpeg")) for i, p in enumerate(photos)]
    files += [("after", (f"a{i}.jpg", p, "image/jpeg")) for i, p in enumerate(afters)]
    return api.post("/reports", headers=auth, data=form, files=files or None)


def events(db, hazard_id: int) -> list[tuple]:
    with db.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT from_state, to_state, evidence, by FROM hazard_events WHERE hazard_id = :h ORDER BY id"),
            {"h": hazard_id})]


# --- manual reports ----------------------------------------------------------------------------------------------


def test_an_inspector_files_a_manual_hazard_with_a_photo(api, headers, district, db):
    r = report(api, headers["street_a"], photos=[picture("JPEG", gps=IN_CA1)], note="3号楼防火门被木楔顶开")
    assert r.status_code == 201, r.text
    doc = r.json()
    assert doc["rule"] == "MANUAL-FIRE-DOOR" and doc["status"] == "open"
    assert doc["compound_ref"] == "CA-1" and doc["street_code"] == STREET_A and len(doc["photos"]) == 1
    with db.connect() as conn:
        h = conn.execute(text("SELECT rule, verdict, department, message_zh, ST_AsText(geom) AS wkt "
                              "FROM hazards WHERE id = :h"), {"h": doc["id"]}).one()
    assert h.department == "物业/住建" and "木楔" in h.message_zh and h.wkt.startswith("POINT")
    assert events(db, doc["id"]) == [(None, "open", "manual", "street_a")]
    shown = api.get(f"/hazards/{doc['id']}", headers=headers["street_a"])
    assert shown.status_code == 200
    photos = api.get(f"/hazards/{doc['id']}/photos", headers=headers["street_a"]).json()["photos"]
    assert photos[0]["distance_m"] == pytest.approx(0, abs=0.5)


def test_a_polygon_report_and_every_category_is_catalogued(api, headers, district):
    cats = api.get("/reports/categories").json()["categories"]
    assert {c["category"] for c in cats} >= {"lane_occupied", "exit_blocked", "control_room_unstaffed",
                                              "ebike_indoor", "tree_branches", "other"}
    assert all(c["rule"].startswith("MANUAL-") and c["title_zh"] and c["title_en"] for c in cats)
    ring = [[X0 + 0.0015, Y0 + 0.0015], [X0 + 0.0018, Y0 + 0.0015], [X0 + 0.0018, Y0 + 0.0018],
            [X0 + 0.0015, Y0 + 0.0018], [X0 + 0.0015, Y0 + 0.0015]]
    r = api.post("/reports", headers=headers["street_a"],
                 data={"category": "illegal_structure", "compound": "CA-1",
                       "geometry": json.dumps({"type": "Polygon", "coordinates": [ring]})})
    assert r.status_code == 201, r.text
    assert r.json()["rule"] == "MANUAL-ILLEGAL-STRUCTURE" and r.json()["department"] == "三改一拆办/综合执法"


@pytest.mark.parametrize(("who", "kwargs", "status", "field"), [
    ("street_a", {"compound": "CA-2"}, 400, "lonlat"),           # claimed compound is not where the point lies
    ("street_b", {}, 403, "lonlat"),                             # another street's compound
    ("street_a", {"category": "arson"}, 400, "category"),
    ("street_a", {"lonlat": (100.0, 10.0)}, 400, "lonlat"),
    ("street_a", {"photos": [HTML]}, 415, "photo[0]"),
    ("street_a", {"fixed": "true", "photos": [picture("JPEG")]}, 400, "photo"),  # fixed needs an after-photo
    ("viewer", {}, 403, "role"),
])
def test_bad_reports_name_the_field_and_write_nothing(api, headers, district, db, who, kwargs, status, field):
    before = table_counts(db)
    r = report(api, headers[who], **kwargs)
    assert r.status_code == status, r.text
    assert r.json().get("field") == field
    assert table_counts(db) == before


def test_fix_on_the_spot_is_found_and_fixed_in_one_call(api, headers, district, db):
    r = report(api, headers["street_a"], category="extinguisher_defective", fixed="true",
               photos=[picture("JPEG")], afters=[picture("PNG")])
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "rectified"
    assert [e[:3] for e in events(db, r.json()["id"])] == [(None, "open", "manual"),
                                                           ("open", "rectified", "fixed_on_spot")]


def test_the_cli_files_a_report_and_adds_a_photo(district, tmp_path, db):
    before, after = tmp_path / "before.jpg", tmp_path / "after.webp"
    before.write_bytes(picture("JPEG"))
    after.write_bytes(picture("WEBP"))
    runner = CliRunner()
    out = runner.invoke(cli, ["hazard", "report", "--compound", "CA-1", "--category", "exit_blocked", "--lonlat",
                              f"{IN_CA1[0]},{IN_CA1[1]}", "--note", "楼梯间堆放杂物", "--photo", str(before)])
    assert out.exit_code == 0, out.output
    hazard_id = int(out.stdout.strip().splitlines()[0])
    added = runner.invoke(cli, ["photo", "add", str(hazard_id), str(after), "--kind", "after"])
    assert added.exit_code == 0, added.output
    photo_id = int(added.stdout.strip())
    info = runner.invoke(cli, ["photo", "get", str(photo_id)])
    assert json.loads(info.stdout)["media_type"] == "image/webp"
    wrong = runner.invoke(cli, ["hazard", "report", "--compound", "CA-2", "--category", "exit_blocked",
                                "--lonlat", f"{IN_CA1[0]},{IN_CA1[1]}"])
    assert wrong.exit_code != 0 and "CA-1" in wrong.output and "lonlat" in wrong.output
    bad = runner.invoke(cli, ["photo", "add", str(hazard_id), str(before.with_name("x.jpg"))])
    assert bad.exit_code != 0
    html = tmp_path / "x.jpg"
    html.write_bytes(HTML)
    refused = runner.invoke(cli, ["photo", "add", str(hazard_id), str(html)])
    assert refused.exit_code != 0 and "file" in refused.output
    # the workflow's transition stores --photo files through the same photo store
    assigned = runner.invoke(cli, ["hazard", "assign", str(hazard_id), "--department", "物业/住建", "--unit", "甲物业"])
    assert assigned.exit_code == 0, assigned.output
    moved = runner.invoke(cli, ["hazard", "transition", str(hazard_id), "--to", "rectified", "--photo", str(after)])
    assert moved.exit_code == 0, moved.output
    with db.connect() as conn:
        kinds = conn.execute(text("SELECT kind, media_type FROM photos WHERE hazard_id = :h ORDER BY id"),
                             {"h": hazard_id}).all()
    assert [tuple(k) for k in kinds] == [("before", "image/jpeg"), ("after", "image/webp"), ("after", "image/webp")]


# --- the property role -------------------------------------------------------------------------------------------


def test_property_users_need_compounds_that_exist(api, headers, district):
    r = api.post("/users", headers=headers["admin"], json={"username": "wuye9", "password": "property-pass-1",
                                                           "role": "property"})
    assert r.status_code == 400 and "compound" in r.json()["description"]
    r = api.post("/users", headers=headers["admin"], json={"username": "wuye9", "password": "property-pass-1",
                                                           "role": "property", "compound_refs": ["NOPE"]})
    assert r.status_code == 400 and "NOPE" in r.json()["description"]
    r = api.post("/users", headers=headers["admin"], json={"username": "wuye9", "password": "property-pass-1",
                                                           "role": "property", "compound_refs": ["CA-1"]})
    assert r.status_code == 201 and r.json()["compound_refs"] == ["CA-1"]


def test_a_property_user_sees_only_its_compounds_and_never_verifies(api, headers, district, db):
    prop = property_user(db)
    mine = report(api, prop, photos=[picture("JPEG")]).json()
    assert mine["compound_ref"] == "CA-1"
    theirs = report(api, headers["street_a"], lonlat=(X0 + 0.006, Y0 + 0.006)).json()  # CA-2, same street
    assert theirs["compound_ref"] == "CA-2"
    # reads: the ledger, single hazards, compounds and other layers are scoped to CA-1
    listed = api.get("/hazards", headers=prop, params={"limit": 100}).json()
    refs = {f["properties"]["compound_ref"] for f in listed["features"]}
    assert refs == {"CA-1"}
    assert api.get(f"/hazards/{theirs['id']}", headers=prop).status_code == 404
    assert api.get(f"/hazards/{district.id('hazards', 'k-b')}", headers=prop).status_code == 404
    comps = api.get("/collections/compounds/items", headers=prop).json()["features"]
    assert [c["properties"]["ref"] for c in comps] == ["CA-1"]
    # writes: a report in another compound is refused
    assert report(api, prop, lonlat=(X0 + 0.006, Y0 + 0.006)).status_code == 403
    assert report(api, prop, lonlat=IN_CB1).status_code == 403
    # the cycle: the street office assigns, the property company claims, it may not verify its own work
    hid = mine["id"]
    assigned = api.post(f"/hazards/{hid}/assign", headers=headers["street_a"],
                        json={"department": "物业/住建", "unit": "甲物业公司"})
    assert assigned.status_code == 200, assigned.text
    after = api.post(f"/hazards/{hid}/photos", headers=prop, files={"file": ("a.jpg", picture("JPEG"), "image/jpeg")},
                     data={"kind": "after"}).json()
    claimed = api.post(f"/hazards/{hid}/transition", headers=prop, json={"to": "rectified", "photos": [after["id"]]})
    assert claimed.status_code == 200, claimed.text
    refused = api.post(f"/hazards/{hid}/transition", headers=prop, json={"to": "verified"})
    assert refused.status_code == 403
    assert api.post(f"/hazards/{hid}/transition", headers=headers["fire"], json={"to": "verified"}).status_code == 200


# --- the facility checklist --------------------------------------------------------------------------------------


def item(api, auth, compound, **data):
    files = [("photo", (f"p{i}.jpg", p, "image/jpeg")) for i, p in enumerate(data.pop("photos", ()))]
    return api.post(f"/compounds/{compound}/checklist", headers=auth, data=data, files=files or None)


def test_a_failing_checklist_item_becomes_a_hazard_and_passing_again_claims_it(api, headers, district, db):
    prop = property_user(db)
    sheet = api.get("/compounds/CA-1/checklist", headers=prop).json()
    assert {i["item"] for i in sheet["items"]} >= {"alarm", "sprinkler", "hydrant_system", "smoke_control",
                                                  "evacuation_signs", "fire_doors", "extinguishers",
                                                  "maintenance_contract", "control_room", "emergency_plan",
                                                  "safety_ledger"}
    assert all(i["status"] == "unchecked" for i in sheet["items"])
    failed = item(api, prop, "CA-1", item="control_room", status="fail", note="夜班仅一人",
                  photos=[picture("JPEG")])
    assert failed.status_code == 201, failed.text
    hid = failed.json()["hazard_id"]
    assert failed.json()["hazard_status"] == "open"
    with db.connect() as conn:
        h = conn.execute(text("SELECT rule, compound_ref, street_code FROM hazards WHERE id = :h"), {"h": hid}).one()
    assert tuple(h) == ("MANUAL-CONTROL-ROOM", "CA-1", STREET_A)
    # failing again while unresolved adds to the same hazard
    again = item(api, prop, "CA-1", item="control_room", status="fail")
    assert again.json()["hazard_id"] == hid
    # passing again needs after-photos, then claims the hazard rectified (the property company cannot verify)
    bare = item(api, prop, "CA-1", item="control_room", status="pass")
    assert bare.status_code == 400 and bare.json()["field"] == "photo"
    passed = item(api, prop, "CA-1", item="control_room", status="pass", photos=[picture("PNG")])
    assert passed.status_code == 201, passed.text
    assert passed.json()["hazard_status"] == "rectified"
    assert [e[:3] for e in events(db, hid)] == [(None, "open", "manual"), ("open", "rectified", "fixed_on_spot")]
    assert api.post(f"/hazards/{hid}/transition", headers=prop, json={"to": "verified"}).status_code == 403
    sheet = {i["item"]: i for i in api.get("/compounds/CA-1/checklist", headers=prop).json()["items"]}
    assert sheet["control_room"]["status"] == "pass" and len(sheet["control_room"]["photos"]) == 2  # fail + pass


def test_checklist_inputs_are_checked(api, headers, district, db):
    prop = property_user(db, compounds=("CB-1",))
    assert api.get("/compounds/CA-1/checklist", headers=prop).status_code == 404
    sheet = api.get("/compounds/CB-1/checklist", headers=prop).json()["items"]
    assert [i["subject"] for i in sheet if i["item"] == "building_captain"] == ["BB-0"]  # the one high-rise
    cases = [({"item": "building_captain", "status": "fail"}, "subject"),
             ({"item": "building_captain", "status": "fail", "subject": "BA-0"}, "subject"),
             ({"item": "alarm", "status": "pass", "subject": "BB-0"}, "subject"),
             ({"item": "emergency_plan", "status": "pass"}, "drill_date"),
             ({"item": "emergency_plan", "status": "pass", "drill_date": "2001-01-01"}, "drill_date"),
             ({"item": "alarm", "status": "pass", "checked_on": "2999-01-01"}, "checked_on"),
             ({"item": "nonsense", "status": "pass"}, "item")]
    before = table_counts(db)
    for data, field in cases:
        r = item(api, prop, "CB-1", **data)
        assert r.status_code == 400, (data, r.text)
        assert r.json().get("field") == field, (data, r.json())
    assert table_counts(db) == before
    ok = item(api, prop, "CB-1", item="building_captain", status="fail", subject="BB-0")
    assert ok.status_code == 201 and ok.json()["hazard_id"]
    assert item(api, headers["viewer"], "CB-1", item="alarm", status="pass").status_code == 403
    assert item(api, headers["street_a"], "CB-1", item="alarm", status="pass").status_code == 404


def test_the_checklist_page_lists_only_the_callers_compounds(api, headers, district, db):
    prop = property_user(db)
    index = api.get("/field/checklist", headers=prop)
    assert index.status_code == 200 and "CA-1" in index.text and "CA-2" not in index.text and "CB-1" not in index.text
    page = api.get("/field/checklist/CA-1", headers=prop)
    assert page.status_code == 200
    assert 'data-item="control_room"' in page.text and 'capture="environment"' in page.text
    assert api.get("/field/checklist/CB-1", headers=prop).status_code == 404
    assert api.get("/field/checklist/CA-1", headers=headers["viewer"]).status_code == 403
    assert api.get("/field/checklist/CA-1", follow_redirects=False).status_code == 303  # sign in first
    report_page = api.get("/field/report", headers=prop)
    def shown(name: str) -> bool:  # inline GeoJSON may escape non-ASCII
        return name in report_page.text or json.dumps(name)[1:-1] in report_page.text

    assert report_page.status_code == 200 and shown("甲小区")  # the map shows its compound
    assert not shown("乙小区") and not shown("丙小区")  # and no other


def test_a_point_picked_on_an_amap_basemap_is_stored_unshifted(api, headers, district, db):
    gcj = [float(v) for v in wgs84_to_gcj02(*IN_CA1)]  # ~500 m off the true point
    r = report(api, headers["street_a"], lonlat=gcj, crs="gcj02")
    assert r.status_code == 201, r.text
    assert r.json()["compound_ref"] == "CA-1"
    with db.connect() as conn:
        x, y = conn.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM hazards WHERE id = :h"),
                            {"h": r.json()["id"]}).one()
    assert (x, y) == pytest.approx(IN_CA1, abs=1e-7)
    bad = report(api, headers["street_a"], crs="mars")
    assert bad.status_code == 400 and bad.json()["field"] == "crs"

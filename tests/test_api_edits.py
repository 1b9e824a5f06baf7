"""OGC API Features Part 4 on the real PostGIS: create/replace/update/delete, ETag/If-Match, validation, audit."""

from __future__ import annotations

import importlib.util
import logging

import pytest
from db_support import table_counts
from fastapi.testclient import TestClient
from sqlalchemy import text
from test_api_support import STREET_A, STREET_B

from api.app import create_app
from gis.config import clear_caches
from gis.db import owner_engine

pytestmark = pytest.mark.db


def _building(x: float = 121.5020, y: float = 29.8020, **props) -> dict:
    ring = [[x, y], [x + 0.0002, y], [x + 0.0002, y + 0.0002], [x, y + 0.0002], [x, y]]
    return {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
            "properties": {"ref": "NEW-1", "height_m": 12.5, "floors": 4, **props}}


def _audit(engine, layer: str, fid: int) -> list[tuple[str, str, int]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT action, changed_by, version FROM audit_log WHERE layer = :l AND feature_id = :f ORDER BY id"),
            {"l": layer, "f": fid})]


def test_create_derives_compound_and_street_and_is_audited(api, headers, district, db):
    response = api.post("/collections/buildings/items", json=_building(), headers=headers["planner"])
    assert response.status_code == 201, response.text
    assert response.headers["ETag"] == '"1"'
    location = response.headers["Location"]
    fid = response.json()["id"]
    assert location.endswith(f"/collections/buildings/items/{fid}")
    props = response.json()["properties"]
    assert props["compound_ref"] == "CA-1" and props["street_code"] == STREET_A
    assert props["updated_by"] == "planner"
    assert _audit(db, "buildings", fid) == [("insert", "planner", 1)]
    assert api.get(location, headers=headers["viewer"]).json()["properties"]["height_m"] == 12.5


def test_invalid_geometry_is_rejected_with_a_clear_message_and_nothing_written(api, headers, district, db):
    before = table_counts(db)
    bowtie = _building()
    bowtie["geometry"]["coordinates"] = [[[121.502, 29.802], [121.5022, 29.8022], [121.5022, 29.802],
                                          [121.502, 29.8022], [121.502, 29.802]]]
    response = api.post("/collections/buildings/items", json=bowtie, headers=headers["planner"])
    assert response.status_code == 400
    assert "Self-intersection" in response.json()["description"]
    assert "几何无效" in response.json()["description"]
    assert table_counts(db) == before


@pytest.mark.parametrize(("change", "expected"), [
    ({"height_m": -2}, "height_m: 不能为负数 must not be negative (-2)"),
    ({"colour": "red"}, "colour: 未知字段 unknown property"),
    ({"use": "castle"}, "use: 不在可选值中 not one of"),
    ({"floors": 2.5}, "floors: 不是整数 not an integer"),
    ({"floors": {"n": 3}}, "floors: 应为单个值 must be a single value"),
    ({"ref": None, "height_m": "tall"}, "height_m: 不是数字 not a number"),
])
def test_attribute_validation_follows_the_layer_declaration(api, headers, district, db, change, expected):
    before = table_counts(db)
    response = api.post("/collections/buildings/items", json=_building(**change), headers=headers["planner"])
    assert response.status_code == 400
    assert any(expected in p for p in response.json()["problems"]), response.json()
    assert table_counts(db) == before


def test_wrong_geometry_type_and_swapped_coordinates_are_rejected(api, headers, district):
    point = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [121.502, 29.802]},
             "properties": {"ref": "P"}}
    assert api.post("/collections/buildings/items", json=point, headers=headers["planner"]).status_code == 400
    swapped = _building(x=29.802, y=121.502)
    response = api.post("/collections/buildings/items", json=swapped, headers=headers["planner"])
    assert response.status_code == 400 and "颠倒" in response.json()["description"]


def test_content_crs_epsg4326_reads_lat_lon(api, headers, district):
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [29.8021, 121.5021]},
               "properties": {"ref": "H-NEW"}}
    response = api.post("/collections/hydrants/items", json=feature, headers={
        **headers["planner"], "Content-Crs": "<http://www.opengis.net/def/crs/EPSG/0/4326>"})
    assert response.status_code == 201, response.text
    assert response.json()["geometry"]["coordinates"] == pytest.approx([121.5021, 29.8021])


def test_replace_refuses_stale_and_weak_if_match(api, headers, district, db):
    fid = district.id("buildings", "BA-2")
    url = f"/collections/buildings/items/{fid}"
    h = headers["planner"]
    body = _building(ref="BA-2", height_m=20.0)
    stale = api.put(url, json=body, headers={**h, "If-Match": '"7"'})
    assert stale.status_code == 412
    weak = api.put(url, json=body, headers={**h, "If-Match": 'W/"1"'})  # If-Match compares strongly
    assert weak.status_code == 412
    ok = api.put(url, json=body, headers={**h, "If-Match": '"1"'})
    assert ok.status_code == 200, ok.text
    assert ok.headers["ETag"] == '"2"'
    assert ok.json()["properties"]["height_m"] == 20.0
    again = api.put(url, json=body, headers={**h, "If-Match": '"1"'})  # the old ETag is stale now
    assert again.status_code == 412
    assert [a for a, _, _ in _audit(db, "buildings", fid)][-1] == "update"


def test_patch_merges_properties_and_keeps_the_geometry(api, headers, district):
    fid = district.id("buildings", "BA-3")
    url = f"/collections/buildings/items/{fid}"
    before = api.get(url, headers=headers["planner"]).json()
    response = api.patch(url, json={"properties": {"name": "3号楼", "height_m": None}},
                         headers={**headers["planner"], "If-Match": '"1"',
                                  "Content-Type": "application/merge-patch+json"})
    assert response.status_code == 200, response.text
    after = response.json()
    assert after["properties"]["name"] == "3号楼"
    assert after["properties"]["height_m"] is None
    assert after["properties"]["floors"] == before["properties"]["floors"]
    assert after["geometry"] == before["geometry"]
    assert response.headers["ETag"] == '"2"'


def test_patch_leaves_empty_fields_it_does_not_name_empty(api, headers, district, db):
    """A declared default fills a field at creation, never on a later PATCH of another field."""
    fid = district.id("hydrants", "HA-1")
    with owner_engine().begin() as conn:
        conn.execute(text("UPDATE hydrants SET kind = NULL, status = NULL WHERE id = :f"), {"f": fid})
    url = f"/collections/hydrants/items/{fid}"
    etag = api.get(url, headers=headers["planner"]).headers["ETag"]
    response = api.patch(url, json={"properties": {"flow_lps": 15}},
                         headers={**headers["planner"], "If-Match": etag,
                                  "Content-Type": "application/merge-patch+json"})
    assert response.status_code == 200, response.text
    props = response.json()["properties"]
    assert props["flow_lps"] == 15 and props["kind"] is None and props["status"] is None
    named = api.patch(url, json={"properties": {"kind": "wall"}},
                      headers={**headers["planner"], "If-Match": response.headers["ETag"],
                               "Content-Type": "application/merge-patch+json"})
    assert named.status_code == 200 and named.json()["properties"]["kind"] == "wall"


def test_delete_with_if_match_removes_the_feature_and_audits(api, headers, district, db):
    fid = district.id("buildings", "BA-4")
    url = f"/collections/buildings/items/{fid}"
    assert api.delete(url, headers={**headers["planner"], "If-Match": '"5"'}).status_code == 412
    assert api.delete(url, headers={**headers["planner"], "If-Match": '"1"'}).status_code == 204
    assert api.get(url, headers=headers["planner"]).status_code == 404
    assert _audit(db, "buildings", fid)[-1][:2] == ("delete", "planner")


def test_the_hazards_ledger_is_read_only_through_the_items_api(api, headers, district):
    fid = district.id("hazards", "k-a")
    response = api.delete(f"/collections/hazards/items/{fid}", headers={**headers["admin"], "If-Match": '"1"'})
    assert response.status_code == 405


def test_a_street_office_cannot_create_features_in_another_street(api, headers, district, db):
    before = table_counts(db)
    in_b = _building(x=121.5125, y=29.8020)
    response = api.post("/collections/buildings/items", json=in_b, headers=headers["street_a"])
    assert response.status_code == 403
    assert table_counts(db) == before
    mine = api.post("/collections/buildings/items", json=_building(), headers=headers["street_a"])
    assert mine.status_code == 201


def test_a_street_office_cannot_move_its_feature_into_another_street(api, headers, district, db):
    fid = district.id("buildings", "BA-0")
    moved = _building(x=121.5125, y=29.8020, ref="BA-0")
    response = api.put(f"/collections/buildings/items/{fid}", json=moved,
                       headers={**headers["street_a"], "If-Match": '"1"'})
    assert response.status_code == 403
    still = api.get(f"/collections/buildings/items/{fid}", headers=headers["admin"]).json()
    assert still["properties"]["street_code"] == STREET_A and still["properties"]["version"] == 1


def test_editing_a_fire_lane_returns_the_rules_that_apply_when_the_checks_exist(api, headers, district):
    lane = {"type": "Feature", "properties": {"ref": "LA-NEW", "kind": "dead_end", "design_width_m": 3.0},
            "geometry": {"type": "Polygon", "coordinates": [[[121.5011, 29.8030], [121.5030, 29.8030],
                                                             [121.5030, 29.80303], [121.5011, 29.80303],
                                                             [121.5011, 29.8030]]]}}
    response = api.post("/collections/fire_lanes/items", json=lane, headers=headers["planner"])
    assert response.status_code == 201, response.text
    has_lane_checks = importlib.util.find_spec("gis.checks.lanes") is not None
    if has_lane_checks:
        checks = response.json()["checks"]
        assert isinstance(checks, list)
        assert any(c["rule"] == "LANE-WIDTH" and c["verdict"] == "fail" for c in checks), checks
    else:
        assert "checks" not in response.json()


def test_payload_too_large_is_413(db, headers, district, monkeypatch):
    monkeypatch.setenv("FIRELANE_SERVER_MAX_UPLOAD_BYTES", "2000")
    clear_caches()
    try:
        with TestClient(create_app(), raise_server_exceptions=False) as client:
            big = _building(name="x" * 3000)
            response = client.post("/collections/buildings/items", json=big, headers=headers["planner"])
            assert response.status_code == 413
            small = client.post("/collections/buildings/items", json=_building(), headers=headers["planner"])
            assert small.status_code == 201
    finally:
        monkeypatch.delenv("FIRELANE_SERVER_MAX_UPLOAD_BYTES")
        clear_caches()


def test_duplicate_ref_on_a_unique_layer_is_409(api, headers, district):
    compound = {"type": "Feature", "properties": {"ref": "CA-1", "name": "重复"},
                "geometry": {"type": "Polygon", "coordinates": [[[121.506, 29.801], [121.507, 29.801],
                                                                 [121.507, 29.802], [121.506, 29.801]]]}}
    response = api.post("/collections/compounds/items", json=compound, headers=headers["planner"])
    assert response.status_code == 409


def test_refs_are_unique_in_every_editable_layer_and_the_409_names_the_holder(api, headers, district, db):
    before = table_counts(db)
    taken = api.post("/collections/buildings/items", json=_building(ref="BA-1"), headers=headers["planner"])
    assert taken.status_code == 409, taken.text
    body = taken.json()
    assert body["ref"] == "BA-1" and body["collection"] == "buildings"
    holder = district.id("buildings", "BA-1")
    assert body["used_by"]["id"] == holder and body["used_by"]["compound_ref"] == "CA-1"
    assert "BA-1" in body["description"] and f"#{holder}" in body["description"]
    assert "refs are unique per layer" in body["description"]
    assert table_counts(db) == before
    # renaming another feature to a taken ref: refused the same way, the row unchanged
    fid = district.id("buildings", "BA-2")
    renamed = api.patch(f"/collections/buildings/items/{fid}", json={"properties": {"ref": "BA-1"}},
                        headers={**headers["planner"], "Content-Type": "application/merge-patch+json"})
    assert renamed.status_code == 409 and renamed.json()["used_by"]["id"] == holder
    with db.connect() as conn:
        assert conn.execute(text("SELECT ref, version FROM buildings WHERE id = :i"), {"i": fid}).one() == ("BA-2", 1)
    # refs may be left empty (NULL) as often as one likes
    for _ in range(2):
        assert api.post("/collections/buildings/items", json=_building(ref=None),
                        headers=headers["planner"]).status_code == 201


def test_a_ref_held_outside_the_callers_jurisdiction_is_refused_without_naming_the_holder(api, headers, district):
    hydrant = {"type": "Feature", "properties": {"ref": "HB-1"},
            "geometry": {"type": "Point", "coordinates": [121.5022, 29.8022]}}
    response = api.post("/collections/hydrants/items", json=hydrant, headers=headers["street_a"])
    assert response.status_code == 409, response.text
    assert response.json()["used_by"] is None and "outside your jurisdiction" in response.json()["description"]


def test_street_b_is_untouched_by_street_a_edits(api, headers, district):
    fid = district.id("buildings", "BB-0")
    response = api.patch(f"/collections/buildings/items/{fid}", json={"properties": {"name": "x"}},
                         headers={**headers["street_a"], "If-Match": '"1"'})
    assert response.status_code == 404
    assert api.get(f"/collections/buildings/items/{fid}", headers=headers["street_b"]).json()[
        "properties"]["street_code"] == STREET_B


def test_writes_without_if_match_are_unconditional_unless_required(api, headers, district, db, monkeypatch, caplog):
    """OWSLib and QGIS send no If-Match: such a write is accepted and logged as unconditional; a deployment can
    require the header (FIRELANE_API_REQUIRE_IF_MATCH), then it is 428."""
    fid = district.id("buildings", "BA-2")
    url = f"/collections/buildings/items/{fid}"
    h = headers["planner"]
    with caplog.at_level(logging.INFO, logger="firelane.access"):
        response = api.put(url, json=_building(ref="BA-2", height_m=21.5), headers=h)
    assert response.status_code == 200, response.text
    assert response.json()["properties"]["height_m"] == 21.5 and response.headers["ETag"] == '"2"'
    logged = [r.fields for r in caplog.records if getattr(r, "fields", {}).get("method") == "PUT"]
    assert logged and logged[-1]["precondition"] == "none" and logged[-1]["user"] == "planner"
    assert _audit(db, "buildings", fid)[-1][:2] == ("update", "planner")
    monkeypatch.setenv("FIRELANE_API_REQUIRE_IF_MATCH", "true")
    clear_caches()
    try:
        assert api.put(url, json=_building(ref="BA-2", height_m=22.0), headers=h).status_code == 428
        assert api.delete(url, headers=h).status_code == 428
        assert api.put(url, json=_building(ref="BA-2", height_m=22.0),
                       headers={**h, "If-Match": '"2"'}).status_code == 200
    finally:
        monkeypatch.delenv("FIRELANE_API_REQUIRE_IF_MATCH")
        clear_caches()

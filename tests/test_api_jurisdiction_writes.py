"""Writes are authorised on where the feature ends up (its geometry's compound and street), never on its claims."""

from __future__ import annotations

import pytest
import sqlalchemy.exc
from db_support import table_counts
from sqlalchemy import text
from test_api_support import PASSWORD, STREET_A, STREET_B

from api import edits

pytestmark = pytest.mark.db

X0, Y0 = 121.50, 29.80
PATCH = "application/merge-patch+json"


def _box(x: float, y: float, w: float = 0.0002, h: float = 0.0002) -> dict:
    ring = [[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]]
    return {"type": "Polygon", "coordinates": [ring]}


def _feature(geometry: dict, **props) -> dict:
    return {"type": "Feature", "geometry": geometry, "properties": props}


IN_CB1 = (X0 + 0.013, Y0 + 0.002)  # inside compound CB-1 of street B
IN_A_NO_COMPOUND = (X0 + 0.0045, Y0 + 0.0090)  # street A, in no compound


def _row(db, layer: str, fid: int) -> dict:
    with db.connect() as conn:
        return dict(conn.execute(text(
            f"SELECT street_code, compound_ref, version, ST_AsText(geom) AS wkt FROM {layer} WHERE id = :i"),
            {"i": fid}).mappings().one())


@pytest.mark.parametrize("layer, props", [
    ("obstructions", {"ref": "OB-X", "kind": "stacked_goods"}),
    ("illegal_structures", {"ref": "IS-X", "kind": "shed"}),
])
def test_a_street_office_naming_its_own_street_cannot_write_into_another_streets_compound(
        api, headers, district, db, layer, props):
    before = table_counts(db)
    body = _feature(_box(*IN_CB1), street_code=STREET_A, **props)
    response = api.post(f"/collections/{layer}/items", json=body, headers=headers["street_a"])
    assert response.status_code == 403, response.text
    assert STREET_B in response.json()["description"]
    assert table_counts(db) == before


def test_a_compound_ref_that_disagrees_with_the_geometry_is_refused_naming_the_field(api, headers, district, db):
    before = table_counts(db)
    body = _feature(_box(*IN_CB1), ref="IS-Y", street_code=STREET_A, compound_ref="CA-1")
    for who in ("street_a", "planner"):
        response = api.post("/collections/illegal_structures/items", json=body, headers=headers[who])
        assert response.status_code == 422, response.text
        assert response.json()["description"].startswith("compound_ref:")
        assert "CB-1" in response.json()["description"]
    assert table_counts(db) == before


def test_a_compound_ref_pointing_into_another_street_cannot_place_a_feature_outside_compounds(
        api, headers, district, db):
    before = table_counts(db)
    body = _feature(_box(*IN_A_NO_COMPOUND), ref="OB-Z", kind="vehicle", street_code=STREET_A, compound_ref="CB-1")
    response = api.post("/collections/obstructions/items", json=body, headers=headers["street_a"])
    assert response.status_code == 403, response.text
    assert table_counts(db) == before
    unknown = _feature(_box(*IN_A_NO_COMPOUND), ref="OB-Z", kind="vehicle", compound_ref="NO-SUCH")
    response = api.post("/collections/obstructions/items", json=unknown, headers=headers["planner"])
    assert response.status_code == 422 and "compound_ref" in response.json()["description"]
    assert table_counts(db) == before


def test_the_claimed_street_code_is_overwritten_by_the_derived_one(api, headers, district):
    body = _feature(_box(X0 + 0.002, Y0 + 0.002), ref="OB-1", kind="vehicle", street_code=STREET_B)
    response = api.post("/collections/obstructions/items", json=body, headers=headers["planner"])
    assert response.status_code == 201, response.text
    props = response.json()["properties"]
    assert props["street_code"] == STREET_A and props["compound_ref"] == "CA-1"
    mine = api.post("/collections/obstructions/items",  # refs are unique per layer: a second obstruction's own
                    json={**body, "properties": {**body["properties"], "ref": "OB-2"}}, headers=headers["street_a"])
    assert mine.status_code == 201, mine.text
    assert mine.json()["properties"]["street_code"] == STREET_A


@pytest.mark.parametrize("layer, ref, geometry", [
    ("hydrants", "HA-1", {"type": "Point", "coordinates": list(IN_CB1)}),
    ("fire_lanes", "LA-1", _box(*IN_CB1, w=0.001, h=0.00005)),
])
def test_a_street_office_cannot_patch_its_own_feature_into_another_streets_compound(
        api, headers, district, db, layer, ref, geometry):
    fid = district.id(layer, ref)
    before = _row(db, layer, fid)
    response = api.patch(f"/collections/{layer}/items/{fid}",
                         json={"geometry": geometry, "properties": {"street_code": STREET_A}},
                         headers={**headers["street_a"], "If-Match": '"1"', "Content-Type": PATCH})
    assert response.status_code == 403, response.text
    assert _row(db, layer, fid) == before


def test_patching_only_the_compound_ref_is_judged_against_the_stored_geometry(api, headers, district, db):
    fid = district.id("hydrants", "HA-1")
    before = _row(db, "hydrants", fid)
    response = api.patch(f"/collections/hydrants/items/{fid}", json={"properties": {"compound_ref": "CB-1"}},
                         headers={**headers["street_a"], "If-Match": '"1"', "Content-Type": PATCH})
    assert response.status_code == 422, response.text
    assert _row(db, "hydrants", fid) == before


def test_a_moved_feature_follows_its_geometry_when_the_client_echoes_the_stored_compound_ref(api, headers, district):
    fid = district.id("buildings", "BA-0")
    url = f"/collections/buildings/items/{fid}"
    read = api.get(url, headers=headers["street_a"]).json()
    assert read["properties"]["compound_ref"] == "CA-1"
    read["geometry"] = _box(X0 + 0.006, Y0 + 0.006)  # into CA-2, same street
    response = api.put(url, json=read, headers={**headers["street_a"], "If-Match": '"1"'})
    assert response.status_code == 200, response.text
    assert response.json()["properties"]["compound_ref"] == "CA-2"
    assert response.json()["properties"]["street_code"] == STREET_A


def _compound(x0: float, x1: float, ref: str) -> dict:
    return _feature(_box(X0 + x0, Y0 + 0.001, w=x1 - x0, h=0.003), ref=ref, name=ref)


def test_compounds_of_different_streets_cannot_overlap(api, headers, district, db):
    before = table_counts(db)
    # mostly in street A (its point on surface is), reaching 0.5 mm into CB-1 of street B
    grabbing = _compound(0.006, 0.0125, "CA-GRAB")
    for who in ("street_a", "planner"):
        response = api.post("/collections/compounds/items", json=grabbing, headers=headers[who])
        assert response.status_code == 409, response.text
        assert "CB-1" in response.json()["description"]
    assert table_counts(db) == before
    touching = api.post("/collections/compounds/items", json=_compound(0.009, 0.012, "CA-EDGE"),
                        headers=headers["planner"])
    assert touching.status_code == 201, touching.text  # sharing an edge is fine
    same_street = api.post("/collections/compounds/items", json=_compound(0.0035, 0.0045, "CA-NEXT"),
                           headers=headers["planner"])
    assert same_street.status_code == 201, same_street.text  # overlapping CA-1 of its own street is not refused


def test_the_database_itself_refuses_overlapping_compounds_of_different_streets(district, db):
    with pytest.raises(sqlalchemy.exc.IntegrityError, match="overlaps"), db.begin() as conn:
        conn.execute(text(
            "INSERT INTO compounds (ref, street_code, geom) VALUES ('RAW', :s, ST_Multi(ST_MakeEnvelope("
            ":x0, :y0, :x1, :y1, 4490)))"),
            {"s": STREET_A, "x0": X0 + 0.011, "y0": Y0 + 0.002, "x1": X0 + 0.0125, "y1": Y0 + 0.003})
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM compounds WHERE ref = 'RAW'")).scalar_one() == 0


def test_a_write_answers_with_the_version_it_wrote(api, headers, district, db, monkeypatch):
    fid = district.id("fire_lanes", "LA-1")

    def another_client_edits_meanwhile(layer, feature_id):
        with db.begin() as conn:
            conn.execute(text("UPDATE fire_lanes SET name = 'later' WHERE id = :i"), {"i": feature_id})
        return []

    monkeypatch.setattr(edits, "rule_feedback", another_client_edits_meanwhile)
    response = api.patch(f"/collections/fire_lanes/items/{fid}", json={"properties": {"name": "mine"}},
                         headers={**headers["planner"], "If-Match": '"1"', "Content-Type": PATCH})
    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == '"2"'
    assert response.json()["properties"]["name"] == "mine" and response.json()["properties"]["version"] == 2
    assert _row(db, "fire_lanes", fid)["version"] == 3


def _cookie_login(api) -> None:
    response = api.post("/auth/login", json={"username": "planner", "password": PASSWORD})
    assert response.status_code == 200, response.text


def test_cookie_writes_need_a_json_body_and_this_sites_origin(api, headers, district, db):
    _cookie_login(api)
    before = table_counts(db)
    body = '{"type": "Feature", "geometry": {"type": "Point", "coordinates": [121.502, 29.802]}, "properties": {}}'
    plain = api.post("/collections/hydrants/items", content=body, headers={"Content-Type": "text/plain"})
    assert plain.status_code == 415, plain.text
    for foreign in ({"Origin": "http://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "same-site"},
                    {"Sec-Fetch-Site": "cross-site", "Origin": "http://testserver"}):
        response = api.post("/collections/hydrants/items", content=body,
                            headers={"Content-Type": "application/geo+json", **foreign})
        assert response.status_code == 403, (foreign, response.text)
    assert table_counts(db) == before
    ok = api.post("/collections/hydrants/items", content=body,
                  headers={"Content-Type": "application/geo+json", "Origin": "http://testserver",
                           "Sec-Fetch-Site": "same-origin"})
    assert ok.status_code == 201, ok.text
    bearer = api.post("/collections/hydrants/items", content=body,  # a token is never sent by a browser on its own
                      headers={**headers["planner"], "Content-Type": "application/json",
                               "Origin": "http://evil.example"})
    assert bearer.status_code == 201, bearer.text


def test_a_geometry_collection_is_refused_for_a_point_layer(api, headers, district, db):
    before = table_counts(db)
    body = _feature({"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [121.502, 29.802]}]},
                    ref="H-GC")
    response = api.post("/collections/hydrants/items", json=body, headers=headers["planner"])
    assert response.status_code == 400, response.text
    assert any(p.startswith("geometry:") and "GeometryCollection" in p for p in response.json()["problems"])
    assert table_counts(db) == before

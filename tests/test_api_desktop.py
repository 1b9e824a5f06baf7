"""What desktop clients rely on: schemas, typed values, one geometry type per collection, methods, sign-in."""

from __future__ import annotations

import base64
import json
import re

import pytest
from sqlalchemy import create_engine, text
from test_api_support import PASSWORD

from api.auth import forget_tokens
from api.collections import LISTED
from gis import pgcluster
from gis.config import clear_caches

pytestmark = pytest.mark.db


def test_every_collection_publishes_its_schema_and_queryables_from_the_declarations(api, headers, desktop_district):
    h = headers["viewer"]
    for view in LISTED:
        doc = api.get(f"/collections/{view.id}", headers=h).json()
        links = {(lk["rel"], lk["href"].rsplit("/collections/", 1)[1]) for lk in doc["links"]
                 if "/collections/" in lk["href"]}
        assert ("describedby", f"{view.id}/schema") in links
        assert ("http://www.opengis.net/def/rel/ogc/1.0/queryables", f"{view.id}/queryables") in links
        schema = api.get(f"/collections/{view.id}/schema", headers=h)
        assert schema.status_code == 200 and schema.headers["content-type"] == "application/schema+json"
        props = schema.json()["properties"]
        assert props["geometry"]["x-ogc-role"] == "primary-geometry"
        assert props["updated_at"] == {**props["updated_at"], "type": "string", "format": "date-time"}
        queryables = api.get(f"/collections/{view.id}/queryables", headers=h).json()
        assert "ref" in queryables["properties"] and "extra" not in queryables["properties"]
    roads = api.get("/collections/roads/schema", headers=h).json()["properties"]
    assert roads["width_m"] == {"title": "路面宽度 Width", "type": "number", "minimum": 0.0, "maximum": 120.0,
                                "x-ogc-unit": "m"}
    assert roads["kind"]["enum"] == ["city", "internal", "walkway"] and roads["name"]["maxLength"] == 200
    hydrants = api.get("/collections/hydrants/schema", headers=h).json()["properties"]
    assert hydrants["diameter_mm"]["type"] == "integer" and hydrants["inspected_at"]["format"] == "date"
    assert hydrants["estimated"]["type"] == "boolean" and hydrants["extra"]["type"] == "string"
    assert api.get("/collections/nope/schema", headers=h).status_code == 404
    assert api.get("/collections/roads/schema").status_code == 401


def test_floats_are_written_with_a_decimal_point_and_json_values_as_text(api, headers, desktop_district):
    h = headers["viewer"]
    raw = api.get("/collections/roads/items", headers=h).text
    for width in ("4.0", "6.0", "4.5", "3.25"):
        assert re.search(r'"width_m"\s*:\s*' + re.escape(width) + r'\s*[,}]', raw), width
    widths = sorted(f["properties"]["width_m"] for f in json.loads(raw)["features"])
    assert widths == [3.25, 4.0, 4.5, 6.0] and all(isinstance(w, float) for w in widths)
    hazards = api.get("/collections/hazards_polygons/items", headers=h).json()["features"]
    hazard = next(f["properties"] for f in hazards if f["properties"]["key"] == "k-o")
    assert hazard["other_refs"] == '["LA-1", "BA-0"]' and json.loads(hazard["other_refs"]) == ["LA-1", "BA-0"]
    assert hazard["severity"] == 4.0 and re.search(r'"severity"\s*:\s*4\.0\s*[,}]', api.get(
        "/collections/hazards_polygons/items", headers=h).text)
    obstruction = api.get(f"/collections/obstructions_polygons/items/{desktop_district.id('obstructions', 'O-A1')}",
                          headers=h).json()["properties"]
    assert json.loads(obstruction["extra"]) == {"来源": "巡查", "photos": 3}


def test_a_mixed_layer_is_published_as_one_collection_per_geometry_type(api, headers, desktop_district):
    h = headers["viewer"]
    listed = {c["id"] for c in api.get("/collections", headers=h).json()["collections"]}
    assert {"obstructions_points", "obstructions_lines", "obstructions_polygons"} <= listed
    assert "obstructions" not in listed and "hazards" not in listed and "buildings" in listed
    got = {}
    for part, gtype in (("points", "MultiPoint"), ("lines", "MultiLineString"), ("polygons", "MultiPolygon")):
        fc = api.get(f"/collections/obstructions_{part}/items", headers=h).json()
        assert {f["geometry"]["type"] for f in fc["features"]} == {gtype}
        got[part] = {f["properties"]["ref"] for f in fc["features"]}
    assert got == {"points": {"O-P1", "O-P2"}, "lines": {"O-L1"}, "polygons": {"O-A1"}}
    whole = api.get("/collections/obstructions/items", headers=h).json()  # still there for API clients
    assert whole["numberReturned"] == 4
    line_id = desktop_district.id("obstructions", "O-L1")
    assert api.get(f"/collections/obstructions_lines/items/{line_id}", headers=h).status_code == 200
    assert api.get(f"/collections/obstructions_points/items/{line_id}", headers=h).status_code == 404


def test_a_part_collection_takes_edits_of_its_own_geometry_type_only(api, headers, desktop_district):
    h = headers["planner"]
    point = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [121.5022, 29.8021]},
             "properties": {"kind": "bollard", "ref": "O-NEW"}}
    created = api.post("/collections/obstructions_points/items", json=point, headers=h)
    assert created.status_code == 201, created.text
    assert created.json()["geometry"]["type"] == "Point"  # the stored feature, as the layer keeps it
    polygon = {**point, "geometry": {"type": "Polygon", "coordinates": [[[121.5022, 29.8021], [121.5023, 29.8021],
                                                                         [121.5023, 29.8022], [121.5022, 29.8021]]]}}
    refused = api.post("/collections/obstructions_points/items", json=polygon, headers=h)
    assert refused.status_code == 400 and "MultiPoint" in refused.json()["description"]
    fid = created.json()["id"]
    assert api.put(f"/collections/obstructions_points/items/{fid}", json=polygon, headers=h).status_code == 400
    assert api.delete(f"/collections/obstructions_lines/items/{fid}", headers=h).status_code == 404
    assert api.delete(f"/collections/obstructions_points/items/{fid}", headers=h).status_code == 204


def test_options_head_and_405_name_every_allowed_method(api, headers, desktop_district):
    fid = desktop_district.id("buildings", "BA-0")
    cases = {
        "/collections/buildings/items": "GET, HEAD, POST, OPTIONS",
        f"/collections/buildings/items/{fid}": "GET, HEAD, PUT, PATCH, DELETE, OPTIONS",
        "/collections/hazards_points/items": "GET, HEAD, OPTIONS",
        "/collections": "GET, HEAD, OPTIONS",
        "/collections/roads/schema": "GET, HEAD, OPTIONS",
        "/tiles/roads/16/54891/27079.mvt": "GET, HEAD, OPTIONS",
        "/auth/token": "POST, OPTIONS",
    }
    for path, allow in cases.items():
        response = api.options(path)
        assert response.status_code == 204 and response.headers["allow"] == allow, path
    assert api.options("/nope/x").status_code == 404
    refused = api.put("/collections", headers=headers["admin"])
    assert refused.status_code == 405 and refused.headers["allow"] == "GET, HEAD, OPTIONS"
    hazard = api.post("/collections/hazards_points/items", json={}, headers=headers["admin"])
    assert hazard.status_code == 405 and hazard.headers["allow"] == "GET, HEAD, OPTIONS"
    get = api.get("/collections/roads/items", headers=headers["viewer"])
    head = api.head("/collections/roads/items", headers=headers["viewer"])
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"] == "application/geo+json"
    assert api.head("/collections/roads/items").status_code == 401
    tile = api.head("/tiles/roads/0/0/0.mvt", headers=headers["viewer"])
    assert tile.status_code == 200 and tile.headers["content-type"] == "application/vnd.mapbox-vector-tile"


def test_items_answer_304_to_a_matching_if_none_match(api, headers, desktop_district):
    url = f"/collections/roads/items/{desktop_district.id('roads', 'R-1')}"
    h = headers["viewer"]
    first = api.get(url, headers=h)
    etag = first.headers["ETag"]
    assert api.get(url, headers={**h, "If-None-Match": etag}).status_code == 304
    assert api.get(url, headers={**h, "If-None-Match": f"W/{etag}"}).status_code == 304  # weak comparison
    assert api.get(url, headers={**h, "If-None-Match": '"999"'}).status_code == 200


def test_a_bbox_across_the_antimeridian_is_two_boxes(api, headers, desktop_district):
    h = headers["viewer"]
    across = api.get("/collections/buildings/items?bbox=170,29,121.51,30", headers=h)
    assert across.status_code == 200 and across.json()["numberReturned"] == 5  # street A, west of 121.51
    assert api.get("/collections/buildings/items?bbox=170,29,-170,30", headers=h).json()["numberReturned"] == 0
    latlon = api.get("/collections/buildings/items?bbox=29,170,30,121.51&bbox-crs=EPSG:4326", headers=h)
    assert latlon.status_code == 200 and latlon.json()["numberReturned"] == 5
    assert api.get("/collections/buildings/items?bbox=121,30,122,29", headers=h).status_code == 400


def test_number_matched_on_the_first_page_exact_or_from_the_planner(api, headers, desktop_district, db,
                                                                     monkeypatch):
    h = headers["viewer"]
    first = api.get("/collections/buildings/items?limit=2", headers=h).json()
    assert first["numberReturned"] == 2 and first["numberMatched"] == 6
    filtered = api.get("/collections/buildings/items?limit=2&bbox=121.50,29.80,121.51,29.81", headers=h).json()
    assert filtered["numberMatched"] == 5

    state = pgcluster.load_state()
    assert state is not None
    superuser = create_engine(state.superuser_url)  # ANALYZE, pg_class: not the app role's
    with superuser.begin() as conn:
        conn.execute(text("ANALYZE buildings"))
    monkeypatch.setenv("FIRELANE_API_COUNT_EXACT_MAX", "3")
    clear_caches()
    try:
        with superuser.begin() as conn:  # the planner's figure, not a count: make it differ from the truth
            conn.execute(text("UPDATE pg_class SET reltuples = 1234567 WHERE oid = 'buildings'::regclass"))
        assert api.get("/collections/buildings/items?limit=2", headers=h).json()["numberMatched"] == 1234567
        # filtered, but the planner expects more than count_exact_max matches: left out rather than a slow count
        assert "numberMatched" not in api.get("/collections/buildings/items?limit=2&use=residential",
                                              headers=h).json()
    finally:
        monkeypatch.delenv("FIRELANE_API_COUNT_EXACT_MAX")
        clear_caches()
        with superuser.begin() as conn:
            conn.execute(text("ANALYZE buildings"))
        superuser.dispose()


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_http_basic_signs_in_once_and_is_rate_limited(api, headers, desktop_district, db):
    ok = api.get("/collections/roads/items", headers=_basic("planner", PASSWORD))
    assert ok.status_code == 200 and ok.json()["numberReturned"] == 4
    assert api.get("/auth/me", headers=_basic("planner", PASSWORD)).json()["role"] == "planner"
    with db.connect() as conn:  # the second request reused the first one's token
        assert conn.execute(text("SELECT count(*) FROM api_tokens WHERE name = 'basic'")).scalar_one() == 1
    wrong = api.get("/collections/roads/items", headers=_basic("planner", "nope"))
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"].startswith("Basic realm=")
    statuses = [api.get("/collections", headers=_basic("viewer", "nope")).status_code for _ in range(12)]
    assert statuses[0] == 401 and statuses[-1] == 429
    with db.begin() as conn:  # a disabled user's cached Basic sign-in stops working at once
        conn.execute(text("UPDATE users SET active = false WHERE username = 'planner'"))

    forget_tokens()
    assert api.get("/collections", headers=_basic("planner", PASSWORD)).status_code == 401
    assert api.get("/collections", headers={"Authorization": "Basic !!!"}).status_code == 401


def test_an_api_key_header_authenticates_like_a_bearer_token(api, headers, desktop_district):
    token = headers["viewer"]["Authorization"].split()[1]
    assert api.get("/collections/roads/items", headers={"X-API-Key": token}).status_code == 200
    bad = api.get("/collections/roads/items", headers={"X-API-Key": "fl_nope"})
    assert bad.status_code == 401 and 'error="invalid_token"' in bad.headers["www-authenticate"]


def test_the_oauth2_token_endpoint_follows_rfc_6749(api, headers, desktop_district):
    form = {"grant_type": "password", "username": "planner", "password": PASSWORD}
    issued = api.post("/auth/token", data=form)
    assert issued.status_code == 200 and issued.headers["cache-control"] == "no-store"
    body = issued.json()
    assert body["token_type"] == "Bearer" and 43000 < body["expires_in"] <= 43200
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    assert api.get("/collections/roads/items", headers=bearer).status_code == 200
    client = api.post("/auth/token", data={"grant_type": "client_credentials"}, headers=_basic("viewer", PASSWORD))
    assert client.status_code == 200 and client.json()["scope"] == "viewer"
    in_form = api.post("/auth/token", data={"grant_type": "client_credentials", "client_id": "viewer",
                                            "client_secret": PASSWORD})
    assert in_form.status_code == 200
    errors = {
        ("password", "wrong"): (400, "invalid_grant"),
        ("client_credentials", "wrong"): (401, "invalid_client"),
        ("refresh_token", ""): (400, "unsupported_grant_type"),
        ("", ""): (400, "invalid_request"),
    }
    for (grant, password), (status, error) in errors.items():
        data = {"grant_type": grant, "username": "planner", "password": password, "client_id": "planner",
                "client_secret": password}
        response = api.post("/auth/token", data={k: v for k, v in data.items() if v})
        assert (response.status_code, response.json()["error"]) == (status, error), grant
    as_json = api.post("/auth/token", json=form)
    assert as_json.status_code == 400 and as_json.json()["error"] == "invalid_request"
    logout = api.post("/auth/logout", headers=bearer)
    assert logout.status_code == 200
    revoked = api.get("/collections/roads/items", headers=bearer)
    assert revoked.status_code == 401
    assert revoked.headers["www-authenticate"] == ('Bearer realm="firelane", error="invalid_token", '
                                                   'error_description="invalid, expired or revoked token"')

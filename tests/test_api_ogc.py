"""OGC API – Features Part 1 and 2 on the real PostGIS: landing, conformance, collections, items, CRS, HTML."""

from __future__ import annotations

import json
import re

import pytest
import shapely
from test_api_support import HOSTILE

from gis.config import clear_caches
from gis.layers import LAYERS

pytestmark = pytest.mark.db

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"
EPSG4490 = "http://www.opengis.net/def/crs/EPSG/0/4490"


def _rels(doc: dict) -> dict[str, dict]:
    return {link["rel"]: link for link in doc["links"]}


def test_landing_page_links_and_conformance_are_public(api):
    landing = api.get("/")
    assert landing.status_code == 200
    rels = _rels(landing.json())
    assert {"self", "service-desc", "service-doc", "conformance", "data"} <= set(rels)
    assert rels["service-desc"]["href"].endswith("/api")
    conf = api.get("/conformance").json()["conformsTo"]
    for cls in ("ogcapi-features-1/1.0/conf/core", "ogcapi-features-1/1.0/conf/geojson",
                "ogcapi-features-1/1.0/conf/html", "ogcapi-features-1/1.0/conf/oas30",
                "ogcapi-features-2/1.0/conf/crs", "ogcapi-features-4/1.0/conf/create-replace-delete"):
        assert any(c.endswith(cls) for c in conf), cls


def test_the_api_description_is_openapi_3_0(api):
    response = api.get("/api")
    assert response.status_code == 200
    assert "openapi" in response.headers["content-type"]
    doc = response.json()
    assert doc["openapi"].startswith("3.0")
    items = doc["paths"]["/collections/{collectionId}/items"]["get"]
    limit = next(p for p in items["parameters"] if p["name"] == "limit")
    assert limit["schema"]["maximum"] >= 1000
    coll = next(p for p in items["parameters"] if p["name"] == "collectionId")
    assert "buildings" in coll["schema"]["enum"]
    assert '"type": "null"' not in json.dumps(doc)  # 3.1-only construct rewritten


def test_data_needs_a_token(api, district):
    assert api.get("/collections").status_code == 401
    assert api.get("/collections/buildings/items").status_code == 401
    bad = api.get("/collections", headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401
    assert bad.json()["code"] == "NotAuthenticated"


def test_collections_list_every_layer_with_extent_and_crs(api, headers, district):
    response = api.get("/collections", headers=headers["admin"])
    assert response.status_code == 200
    # cacheable, but revalidated on every use (a revoked token must meet its 401, not a cached copy)
    assert "ETag" in response.headers and response.headers["Cache-Control"] == "private, no-cache"
    docs = {c["id"]: c for c in response.json()["collections"]}
    single = {n for n, lay in LAYERS.items() if lay.geometry != "GEOMETRY"}
    mixed = {f"{n}_{part}" for n, lay in LAYERS.items() if lay.geometry == "GEOMETRY"
             for dim, part in enumerate(("points", "lines", "polygons")) if dim in lay.dimensions}
    assert set(docs) == single | mixed  # a mixed layer is listed as one collection per geometry type
    b = docs["buildings"]
    assert b["storageCrs"] == EPSG4490
    assert b["crs"][0] == CRS84 and EPSG4326 in b["crs"] and EPSG4490 in b["crs"]
    x0, y0, x1, y1 = b["extent"]["spatial"]["bbox"][0]
    assert 121.5 < x0 < x1 < 121.52 and 29.8 < y0 < y1 < 29.81
    again = api.get("/collections", headers={**headers["admin"], "If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


def test_unknown_collection_and_feature_are_404(api, headers, district):
    assert api.get("/collections/nope", headers=headers["admin"]).status_code == 404
    assert api.get("/collections/nope/items", headers=headers["admin"]).status_code == 404
    assert api.get("/collections/buildings/items/999999", headers=headers["admin"]).status_code == 404
    assert api.get("/collections/buildings/items/abc", headers=headers["admin"]).status_code == 404


def test_items_are_geojson_built_in_sql_with_ccw_exteriors_and_7_decimals(api, headers, district):
    response = api.get("/collections/buildings/items", headers=headers["admin"])
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/geo+json")
    assert response.headers["Content-Crs"] == f"<{CRS84}>"
    fc = response.json()
    assert fc["type"] == "FeatureCollection"
    assert fc["numberReturned"] == 6 == len(fc["features"])
    assert fc["numberMatched"] == 6
    for f in fc["features"]:
        geom = shapely.geometry.shape(f["geometry"])
        for poly in geom.geoms:
            assert poly.exterior.is_ccw
        for x, y in shapely.get_coordinates(geom):
            assert 121 < x < 122 and 29 < y < 30  # lon/lat
        assert all(len(d) <= 7 for d in re.findall(r"\d\.(\d+)", json.dumps(f["geometry"])))
    props = fc["features"][0]["properties"]
    assert {"ref", "height_m", "street_code", "compound_ref", "version", "updated_at"} <= set(props)


def test_limit_above_the_maximum_is_clamped_and_below_one_is_400(api, headers, district):
    h = headers["admin"]
    for bad in ("0", "-5"):
        response = api.get(f"/collections/buildings/items?limit={bad}", headers=h)
        assert response.status_code == 400 and "limit" in response.json()["description"]
    big = api.get("/collections/buildings/items?limit=99999999", headers=h)
    assert big.status_code == 200 and big.json()["numberReturned"] == 6
    assert api.get("/collections/buildings/items?limit=abc", headers=h).status_code == 400


def test_next_links_page_through_and_vanish_at_the_end(api, headers, district):
    h = headers["admin"]
    url = "/collections/buildings/items?limit=4"
    first = api.get(url, headers=h).json()
    rels = _rels(first)
    assert "next" in rels and "prev" not in rels
    assert first["numberReturned"] == 4
    assert first["numberMatched"] == 6  # the first page counts (cheap: a small table)
    second = api.get(rels["next"]["href"], headers=h).json()
    assert second["numberReturned"] == 2 and second["numberMatched"] == 6  # the last page knows it for free
    assert "next" not in _rels(second) and "prev" in _rels(second)
    ids = [f["id"] for f in first["features"] + second["features"]]
    assert ids == sorted(ids) and len(set(ids)) == 6
    past = api.get("/collections/buildings/items?offset=100", headers=h).json()
    assert past["numberReturned"] == 0 and "next" not in _rels(past)


def test_a_count_cap_adds_numbermatched_to_pages_with_a_next_page(api, headers, district, monkeypatch):
    monkeypatch.setenv("FIRELANE_API_COUNT_CAP", "5")
    clear_caches()
    try:
        h = headers["admin"]
        capped = api.get("/collections/buildings/items?limit=2&offset=2", headers=h).json()
        assert "numberMatched" not in capped  # 6 matches exceed the cap of 5: unknown, so left out
        monkeypatch.setenv("FIRELANE_API_COUNT_CAP", "1000")
        clear_caches()
        assert api.get("/collections/buildings/items?limit=2&offset=2", headers=h).json()["numberMatched"] == 6
    finally:
        monkeypatch.delenv("FIRELANE_API_COUNT_CAP")
        clear_caches()


def test_bbox_and_property_filters(api, headers, district):
    h = headers["admin"]
    in_a = api.get("/collections/buildings/items?bbox=121.50,29.80,121.51,29.81", headers=h).json()
    assert {f["properties"]["ref"] for f in in_a["features"]} == {f"BA-{i}" for i in range(5)}
    assert api.get("/collections/buildings/items?floors=4", headers=h).json()["numberReturned"] == 1
    both = api.get("/collections/buildings/items?ref=BA-0&ref=BB-0", headers=h).json()
    assert {f["properties"]["ref"] for f in both["features"]} == {"BA-0", "BB-0"}
    assert api.get("/collections/buildings/items?colour=red", headers=h).status_code == 400
    assert api.get("/collections/buildings/items?floors=many", headers=h).status_code == 400
    assert api.get("/collections/buildings/items?bbox=1,2,3", headers=h).status_code == 400


def test_datetime_filters_on_updated_at(api, headers, district):
    h = headers["admin"]
    assert api.get("/collections/buildings/items?datetime=2000-01-01T00:00:00Z/..",
                   headers=h).json()["numberReturned"] == 6
    assert api.get("/collections/buildings/items?datetime=../2000-01-01", headers=h).json()["numberReturned"] == 0
    assert api.get("/collections/buildings/items?datetime=2000-01-01/2001-01-01",
                   headers=h).json()["numberReturned"] == 0
    one = api.get("/collections/buildings/items?limit=1", headers=h).json()["features"][0]
    exact = api.get(f"/collections/buildings/items?datetime={one['properties']['updated_at']}".replace("+", "%2B"),
                    headers=h).json()
    assert exact["numberReturned"] >= 1
    assert api.get("/collections/buildings/items?datetime=yesterday", headers=h).status_code == 400
    assert api.get("/collections/buildings/items?datetime=2020-01-02/2020-01-01", headers=h).status_code == 400


def test_crs_epsg4326_and_4490_swap_the_axis_order(api, headers, district):
    h = headers["admin"]
    fid = district.id("hydrants", "HA-1")
    lonlat = api.get(f"/collections/hydrants/items/{fid}", headers=h).json()["geometry"]["coordinates"]
    for uri in (EPSG4326, EPSG4490):
        response = api.get(f"/collections/hydrants/items/{fid}", params={"crs": uri}, headers=h)
        assert response.status_code == 200
        assert response.headers["Content-Crs"] == f"<{uri}>"
        lat, lon = response.json()["geometry"]["coordinates"]
        assert lat == pytest.approx(lonlat[1], abs=1e-6) and lon == pytest.approx(lonlat[0], abs=1e-6)
    items = api.get("/collections/hydrants/items", params={"crs": EPSG4326}, headers=h)
    assert items.headers["Content-Crs"] == f"<{EPSG4326}>"
    assert all(f["geometry"]["coordinates"][0] < 40 for f in items.json()["features"])  # latitude first


def test_bbox_crs_reads_the_bbox_in_that_axis_order(api, headers, district):
    h = headers["admin"]
    latlon_box = "29.80,121.50,29.81,121.51"  # EPSG:4326 order: lat, lon
    got = api.get("/collections/buildings/items", params={"bbox": latlon_box, "bbox-crs": EPSG4326}, headers=h)
    assert {f["properties"]["ref"] for f in got.json()["features"]} == {f"BA-{i}" for i in range(5)}
    as_crs84 = api.get("/collections/buildings/items", params={"bbox": latlon_box}, headers=h).json()
    assert as_crs84["numberReturned"] == 0  # the same numbers read as lon/lat are elsewhere


def test_unsupported_crs_is_400(api, headers, district):
    h = headers["admin"]
    assert api.get("/collections/buildings/items?crs=EPSG:3857", headers=h).status_code == 400
    assert api.get("/collections/buildings/items?bbox=0,0,1,1&bbox-crs=EPSG:9999", headers=h).status_code == 400
    assert api.get("/collections/buildings/items?crs=EPSG:4326", headers=h).status_code == 200


def test_single_item_has_an_etag_equal_to_its_version(api, headers, district):
    fid = district.id("buildings", "BA-1")
    response = api.get(f"/collections/buildings/items/{fid}", headers=headers["admin"])
    assert response.status_code == 200
    assert response.headers["ETag"] == '"1"'
    assert response.json()["id"] == fid
    assert response.json()["properties"]["ref"] == "BA-1"


def test_hostile_strings_come_back_verbatim_in_json_and_escaped_in_html(api, headers, district):
    h = headers["admin"]
    fid = district.id("parking", HOSTILE)
    assert api.get(f"/collections/parking/items/{fid}", headers=h).json()["properties"]["ref"] == HOSTILE
    for url in (f"/collections/parking/items/{fid}?f=html", "/collections/parking/items?f=html"):
        page = api.get(url, headers=h)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "<script>alert" not in page.text
        assert "&lt;script&gt;alert(" in page.text
    browser = api.get("/collections/parking/items", headers={**h, "Accept": "text/html,application/xhtml+xml"})
    assert browser.headers["content-type"].startswith("text/html")


def test_html_views_of_landing_and_collections(api, headers, district):
    assert "<html" in api.get("/?f=html").text
    page = api.get("/collections", headers={**headers["admin"], "Accept": "text/html"})
    assert page.status_code == 200 and "buildings" in page.text
    login_page = api.get("/collections", headers={"Accept": "text/html"})
    assert login_page.status_code == 401 and "/auth/login" in login_page.text

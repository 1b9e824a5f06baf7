"""Vector tiles from ST_AsMVT: every layer, Web Mercator tile coordinates, empty tiles, caching headers."""

from __future__ import annotations

import mapbox_vector_tile
import pytest
from sqlalchemy import text

from api.changefeed import wait_until_live
from api.tilecache import ENTRY_OVERHEAD, TileCache, tile_cache
from gis.config import clear_caches
from gis.layers import LAYERS

pytestmark = pytest.mark.db

TILE = "12/3430/1692"  # holds the whole test district


def test_every_layer_has_tiles(api, headers, district):
    for name in LAYERS:
        response = api.get(f"/tiles/{name}/{TILE}.mvt", headers=headers["admin"])
        assert response.status_code == 200, name
        assert response.headers["content-type"] == "application/vnd.mapbox-vector-tile"
        if response.content:
            assert name in mapbox_vector_tile.decode(response.content)


def test_tile_features_carry_their_id_and_attributes_in_tile_coordinates(api, headers, district):
    response = api.get(f"/tiles/hydrants/{TILE}.mvt", headers=headers["admin"])
    layer = mapbox_vector_tile.decode(response.content)["hydrants"]
    assert layer["extent"] == 4096
    by_ref = {f["properties"]["ref"]: f for f in layer["features"]}
    assert set(by_ref) == {"HA-1", "HB-1"}
    assert by_ref["HA-1"]["id"] == district.id("hydrants", "HA-1")
    x, y = by_ref["HA-1"]["geometry"]["coordinates"]
    assert 0 <= x <= 4096 and 0 <= y <= 4096
    assert by_ref["HA-1"]["geometry"]["coordinates"][0] < by_ref["HB-1"]["geometry"]["coordinates"][0]


def test_empty_tiles_are_200_with_an_empty_body_and_bad_coordinates_400(api, headers, district):
    empty = api.get("/tiles/buildings/12/0/0.mvt", headers=headers["admin"])
    assert empty.status_code == 200 and empty.content == b""  # an MVT of no layers (GDAL cannot open a 204)
    assert empty.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    assert api.get("/tiles/buildings/3/8/0.mvt", headers=headers["admin"]).status_code == 400
    assert api.get("/tiles/buildings/30/0/0.mvt", headers=headers["admin"]).status_code == 400
    assert api.get("/tiles/nope/0/0/0.mvt", headers=headers["admin"]).status_code == 404


def test_tiles_have_cache_headers_and_answer_304(api, headers, district):
    first = api.get(f"/tiles/buildings/{TILE}.mvt", headers=headers["admin"])
    assert "max-age" in first.headers["Cache-Control"] and first.headers["ETag"]
    again = api.get(f"/tiles/buildings/{TILE}.mvt", headers={**headers["admin"], "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304


# --- the server-side tile cache ---------------------------------------------------------------------------------


def _refs(response) -> set[str]:
    return {f["properties"]["ref"] for f in mapbox_vector_tile.decode(response.content)["buildings"]["features"]}


def _live(db):
    assert wait_until_live(db), "the change feed did not connect"
    cache = tile_cache(db)
    assert cache is not None
    return cache[0]


def test_a_repeated_tile_comes_from_the_cache_with_the_same_bytes_and_etag(api, headers, district, db):
    _live(db)
    url = f"/tiles/buildings/{TILE}.mvt"
    first = api.get(url, headers=headers["admin"])
    again = api.get(url, headers=headers["admin"])
    assert (first.headers["X-Cache"], again.headers["X-Cache"]) == ("miss", "hit")
    assert again.content == first.content and again.headers["ETag"] == first.headers["ETag"]
    cached_304 = api.get(url, headers={**headers["admin"], "If-None-Match": first.headers["ETag"]})
    assert cached_304.status_code == 304 and cached_304.headers["X-Cache"] == "hit"
    empty = [api.get("/tiles/buildings/12/0/0.mvt", headers=headers["admin"]) for _ in range(2)]
    assert [(r.status_code, r.content) for r in empty] == [(200, b"")] * 2 and empty[1].headers["X-Cache"] == "hit"


def test_cached_tiles_stay_scoped_by_jurisdiction(api, headers, district, db):
    _live(db)
    url = f"/tiles/buildings/{TILE}.mvt"
    for _ in range(2):  # the second round is answered from the cache
        assert _refs(api.get(url, headers=headers["admin"])) == {f"BA-{i}" for i in range(5)} | {"BB-0"}
        assert _refs(api.get(url, headers=headers["street_a"])) == {f"BA-{i}" for i in range(5)}
        assert _refs(api.get(url, headers=headers["street_b"])) == {"BB-0"}
    assert api.get(url, headers=headers["street_b"]).headers["X-Cache"] == "hit"


def test_an_api_edit_is_in_the_very_next_tile(api, headers, district, db):
    _live(db)
    url = f"/tiles/buildings/{TILE}.mvt"
    before = api.get(url, headers=headers["admin"])
    assert api.get(url, headers=headers["admin"]).headers["X-Cache"] == "hit"
    fid = district.id("buildings", "BA-0")
    etag = api.get(f"/collections/buildings/items/{fid}", headers=headers["admin"]).headers["ETag"]
    patched = api.patch(f"/collections/buildings/items/{fid}", json={"properties": {"ref": "BA-0-renamed"}},
                        headers={**headers["admin"], "If-Match": etag})
    assert patched.status_code == 200
    after = api.get(url, headers=headers["admin"])
    assert after.headers["X-Cache"] == "miss" and after.headers["ETag"] != before.headers["ETag"]
    assert "BA-0-renamed" in _refs(after) and "BA-0" not in _refs(after)


def test_a_write_from_another_connection_reaches_the_tiles_through_the_change_feed(api, headers, district, db,
                                                                                   eventually):
    _live(db)
    url = f"/tiles/buildings/{TILE}.mvt"
    assert "BB-0" in _refs(api.get(url, headers=headers["admin"]))
    assert api.get(url, headers=headers["admin"]).headers["X-Cache"] == "hit"
    with db.begin() as conn:  # as an import or psql would: no API involved
        conn.execute(text("DELETE FROM buildings WHERE ref = 'BB-0'"))
    assert eventually(lambda: "BB-0" not in _refs(api.get(url, headers=headers["admin"])))


def test_while_the_change_feed_is_down_tiles_are_built_fresh(api, headers, district, db, eventually):
    feed = _live(db)
    url = f"/tiles/buildings/{TILE}.mvt"
    api.get(url, headers=headers["admin"])
    assert api.get(url, headers=headers["admin"]).headers["X-Cache"] == "hit"
    epoch = feed.generations(())
    with db.begin() as conn:  # the listener's connection dies (as in a failover), then a write happens
        killed = conn.execute(text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN firelane_changes%'"
        )).scalars().all()
    assert killed and all(killed)
    assert eventually(lambda: not feed.live or feed.generations(()) != epoch)
    with db.begin() as conn:
        conn.execute(text("DELETE FROM buildings WHERE ref = 'BB-0'"))
    assert "BB-0" not in _refs(api.get(url, headers=headers["admin"]))
    assert feed.wait_live(10) and feed.generations(()) != epoch  # back, in a new epoch: old tiles are never served


def test_the_cache_is_bounded_in_bytes_and_drops_the_least_recently_used():
    cache = TileCache(max_bytes=3 * (1000 + ENTRY_OVERHEAD))
    for i in range(3):
        cache.put(i, (0,), bytes(1000), f'"{i}"')
    assert cache.get(0, (0,)) is not None  # 0 is now the most recently used
    cache.put(3, (0,), bytes(1000), '"3"')
    assert cache.get(1, (0,)) is None and cache.get(0, (0,)) is not None and cache.get(3, (0,)) is not None
    assert len(cache) == 3 and cache.size_bytes <= cache.max_bytes
    assert cache.get(0, (1,)) is None  # another generation of its tables: never served
    cache.put(9, (0,), bytes(cache.max_bytes), '"9"')  # larger than the whole cache: not kept
    assert cache.get(9, (0,)) is None


def test_the_cache_can_be_turned_off(api, headers, district, monkeypatch):
    monkeypatch.setenv("FIRELANE_API_TILE_CACHE_MB", "0")
    clear_caches()
    try:
        response = api.get(f"/tiles/buildings/{TILE}.mvt", headers=headers["admin"])
        assert response.status_code == 200 and "X-Cache" not in response.headers
    finally:
        monkeypatch.delenv("FIRELANE_API_TILE_CACHE_MB")
        clear_caches()

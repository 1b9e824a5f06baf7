"""OWSLib's OGC API Features client edits firelane as it is: create, replace and delete with no hand-set headers."""

from __future__ import annotations

import json

import pytest
from owslib.ogcapi.features import Features
from owslib.util import Authentication
from sqlalchemy import text
from test_api_support import PASSWORD

pytestmark = pytest.mark.db


def _client(url: str, user: str):
    return Features(url, auth=Authentication(user, PASSWORD))  # HTTP Basic: OWSLib's own auth, nothing by hand


def test_owslib_creates_replaces_and_deletes_a_feature(live, headers, desktop_district, db):
    client = _client(live.url, "planner")
    assert "hydrants" in [c["id"] for c in client.collections()["collections"]]
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [121.5025, 29.8025]},
               "properties": {"ref": "H-OWS", "kind": "underground", "flow_lps": 12.5, "pressure_mpa": 0.3}}
    assert client.collection_item_create("hydrants", feature) is True
    found = client.collection_items("hydrants", ref="H-OWS")["features"]
    assert len(found) == 1 and found[0]["properties"]["flow_lps"] == 12.5
    fid = found[0]["id"]
    assert found[0]["properties"]["compound_ref"] == "CA-1"  # derived from where it stands

    replaced = {**found[0], "properties": {**found[0]["properties"], "flow_lps": 20.0, "status": "low_pressure"}}
    assert client.collection_item_update("hydrants", str(fid), json.dumps(replaced)) is True
    again = client.collection_item("hydrants", str(fid))
    assert again["properties"]["flow_lps"] == 20.0 and again["properties"]["status"] == "low_pressure"
    assert again["properties"]["version"] == 2

    assert client.collection_item_delete("hydrants", str(fid)) is True
    assert client.collection_items("hydrants", ref="H-OWS")["features"] == []
    with db.connect() as conn:  # every write audited under the OWSLib user
        actions = conn.execute(text("SELECT action, changed_by FROM audit_log WHERE layer = 'hydrants' "
                                    "AND feature_id = :f ORDER BY id"), {"f": fid}).all()
    assert [tuple(a) for a in actions] == [("insert", "planner"), ("update", "planner"), ("delete", "planner")]
    puts = [q for m, p, q in live.requests if m in ("PUT", "DELETE")]
    assert len(puts) == 2  # each write in one request: no 428 for the missing If-Match


def test_owslib_edits_a_part_of_a_mixed_layer_and_a_viewer_is_refused(live, headers, desktop_district):
    client = _client(live.url, "traffic")
    line = {"type": "Feature", "geometry": {"type": "LineString",
                                            "coordinates": [[121.5016, 29.8019], [121.5016, 29.8023]]},
            "properties": {"ref": "O-OWS", "kind": "overhead_line", "bottom_m": 3.5}}
    assert client.collection_item_create("obstructions_lines", line) is True
    got = client.collection_items("obstructions_lines", ref="O-OWS")["features"]
    assert got[0]["geometry"]["type"] == "MultiLineString" and got[0]["properties"]["bottom_m"] == 3.5
    with pytest.raises(RuntimeError, match="只收|holds"):
        client.collection_item_create("obstructions_points", line)
    with pytest.raises(RuntimeError, match="may not edit"):
        _client(live.url, "viewer").collection_item_create("obstructions_lines", line)

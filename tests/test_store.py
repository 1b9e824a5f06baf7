"""The layer store on the real managed PostGIS: schema, COPY writes, spatial links, versions and the audit log."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
import shapely
import sqlalchemy.exc
from sqlalchemy import text

from gis.db import transaction
from gis.layers import LAYERS
from gis.store import read_layer, write_frame

pytestmark = pytest.mark.db


def _compound(ref: str, x: float, y: float, street: str | None = None) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"ref": [ref], "name": [f"小区{ref}"], "street_code": [street]},
        geometry=[shapely.box(x, y, x + 0.002, y + 0.002)], crs=4490,
    )


def test_every_layer_has_a_table_with_a_gist_index(db):
    with db.connect() as conn:
        for name in LAYERS:
            idx = conn.execute(text("SELECT indexdef FROM pg_indexes WHERE tablename = :t"), {"t": name}).scalars().all()
            assert any("gist (geom)" in d for d in idx), name


def test_features_get_compound_and_street_from_their_location(db):
    with transaction(engine=db, user="alice") as conn:
        write_frame(conn, "compounds", _compound("C-1", 121.50, 29.80, "330212001"))
        b = gpd.GeoDataFrame({"ref": ["B-1", "B-2"], "height_m": [30.0, 9.0]},
                             geometry=[shapely.box(121.5005, 29.8005, 121.5007, 29.8007),
                                       shapely.box(121.60, 29.90, 121.6002, 29.9002)], crs=4490)
        write_frame(conn, "buildings", b)
    got = read_layer("buildings", engine=db).set_index("ref")
    assert got.loc["B-1", "compound_ref"] == "C-1"
    assert got.loc["B-1", "street_code"] == "330212001"
    assert pd.isna(got.loc["B-2", "compound_ref"])
    assert (got["version"] == 1).all()
    assert got.geometry.iloc[0].geom_type == "MultiPolygon"


def test_updates_bump_the_version_and_are_audited_with_the_acting_user(db):
    with transaction(engine=db, user="alice") as conn:
        write_frame(conn, "compounds", _compound("C-2", 121.50, 29.80))
    with transaction(engine=db, user="bob") as conn:
        conn.execute(text("UPDATE compounds SET name = '新名称' WHERE ref = 'C-2'"))
    got = read_layer("compounds", engine=db)
    assert got["version"].tolist() == [2]
    assert got["updated_by"].tolist() == ["bob"]
    with db.connect() as conn:
        rows = conn.execute(text("SELECT action, changed_by, version, after->>'ref', before->>'name', "
                                 "after->>'name' FROM audit_log WHERE layer = 'compounds' ORDER BY id")).all()
    # the insert names the feature; the update keeps the full state before (version 1) and after (version 2)
    assert rows == [("insert", "alice", 1, "C-2", None, None), ("update", "bob", 2, "C-2", "小区C-2", "新名称")]


def test_a_failed_write_leaves_nothing_behind(db):
    bad = _compound("C-3", 121.5, 29.8)
    bad["kind"] = ["castle"]  # violates the kind CHECK constraint
    with pytest.raises(sqlalchemy.exc.IntegrityError, match="kind_choice"):
        with transaction(engine=db) as conn:
            write_frame(conn, "compounds", _compound("C-4", 121.6, 29.8))
            write_frame(conn, "compounds", bad)
    assert len(read_layer("compounds", engine=db)) == 0


def test_invalid_geometry_is_refused_by_the_database_too(db):
    bowtie = shapely.Polygon([(121.5, 29.8), (121.51, 29.81), (121.51, 29.8), (121.5, 29.81)])
    frame = gpd.GeoDataFrame({"ref": ["X"], "name": ["x"]}, geometry=[bowtie], crs=4490)
    with pytest.raises(Exception, match="geom_valid"):
        with transaction(engine=db) as conn:
            write_frame(conn, "compounds", frame)


def test_a_delete_keeps_the_whole_feature_in_the_audit_log(db):
    with transaction(engine=db, user="alice") as conn:
        write_frame(conn, "compounds", _compound("C-9", 121.50, 29.80))
    with transaction(engine=db, user="carol") as conn:
        conn.execute(text("DELETE FROM compounds WHERE ref = 'C-9'"))
    with db.connect() as conn:
        action, who, name, geom = conn.execute(text(
            "SELECT action, changed_by, before->>'name', before->>'geom' FROM audit_log "
            "WHERE layer = 'compounds' AND action = 'delete'")).one()
    assert (action, who, name) == ("delete", "carol", "小区C-9")
    assert geom.startswith("SRID=4490;MULTIPOLYGON")

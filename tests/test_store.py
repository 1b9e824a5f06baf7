"""The layer store on the real managed PostGIS: schema, COPY writes, spatial links, versions and the audit log."""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pytest
import shapely
import sqlalchemy.exc
from sqlalchemy import create_engine, text

from gis import pgcluster
from gis.audit import insert_record
from gis.db import owner_engine, transaction
from gis.layers import LAYERS
from gis.store import BULK_MIN_ROWS, _ForeignKey, read_layer, write_frame

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


# --- bulk path: large frames into an empty layer -------------------------------------------------------------------


def _grid_of_buildings(n: int, *, x0: float = 121.50, y0: float = 29.80, prefix: str = "B") -> gpd.GeoDataFrame:
    """n small square footprints on a grid (about 11 m apart), enough rows for the bulk path; refs `prefix`00000…
    (refs are unique per layer: a second grid appended to a first takes another prefix)."""
    side = 100
    ix, iy = np.arange(n) % side, np.arange(n) // side
    x, y = x0 + ix * 1e-4, y0 + iy * 1e-4
    return gpd.GeoDataFrame({"ref": [f"{prefix}{i:05d}" for i in range(n)], "height_m": np.full(n, 9.0),
                             "floors": np.array([3] * n, dtype=object)},
                            geometry=shapely.box(x, y, x + 5e-5, y + 5e-5), crs=4490)


def _indexes(conn, table: str) -> list[str]:
    return sorted(conn.execute(text("SELECT indexdef FROM pg_indexes WHERE tablename = :t"), {"t": table}).scalars())


def _disabled_triggers(conn, table: str) -> list[str]:
    return conn.execute(text("SELECT tgname FROM pg_trigger WHERE tgrelid = CAST(:t AS regclass) AND tgenabled <> 'O'"),
                        {"t": table}).scalars().all()


def _locks(conn, table: str) -> set[str]:
    return set(conn.execute(text("SELECT mode FROM pg_locks WHERE pid = pg_backend_pid() AND relation = "
                                 "CAST(:t AS regclass)"), {"t": table}).scalars())


def test_a_bulk_load_into_an_empty_layer_ends_with_the_same_indexes_links_and_audit_rows(db):
    n = 20_000  # several COPY statements
    with db.connect() as conn:
        before = _indexes(conn, "buildings")
    with transaction(engine=db, user="alice") as conn:
        write_frame(conn, "compounds", gpd.GeoDataFrame({"ref": ["C-1"], "street_code": ["330212001"]}, crs=4490,
                                                        geometry=[shapely.box(121.499, 29.799, 121.52, 29.82)]))
        assert write_frame(conn, "buildings", _grid_of_buildings(n), user="alice").inserted == n
        assert "AccessExclusiveLock" in _locks(conn, "buildings")  # nobody saw the layer without its indexes
        # compounds stay readable and writable (except deleting or re-keying the referenced ones) meanwhile
        assert _locks(conn, "compounds") <= {"AccessShareLock", "RowShareLock", "RowExclusiveLock"}
    with db.connect() as conn:
        assert _indexes(conn, "buildings") == before
        got = conn.execute(text("SELECT count(*), count(*) FILTER (WHERE compound_ref = 'C-1' AND street_code = "
                                "'330212001'), count(DISTINCT ref), min(version), max(version) FROM buildings")).one()
        assert tuple(got) == (n, n, n, 1, 1)
        ids = conn.execute(text("SELECT id FROM buildings ORDER BY id")).scalars().all()
        # one audit row per statement writing the layer (an unbroken id range: per COPY, or the one INSERT from the
        # staging table under row-level security), yet every feature's insert is on record
        ranges = conn.execute(text("SELECT feature_id, (after->>'last_id')::bigint, (after->>'count')::int "
                                   "FROM audit_log WHERE layer = 'buildings' AND action = 'insert' ORDER BY 1")).all()
        assert 1 <= len(ranges) < 20 and sum(r[2] for r in ranges) == n
        assert ranges[0][0] == ids[0] and ranges[-1][1] == ids[-1]
        for feature_id in (ids[0], ids[1], ids[n // 2], ids[-1]):
            record = insert_record(conn, "buildings", feature_id)
            assert record is not None
            who, when, version = record
            assert (who, version) == ("alice", 1) and when is not None
        assert insert_record(conn, "buildings", ids[-1] + 1) is None
        # the planner uses the rebuilt indexes
        plan = conn.execute(text("EXPLAIN SELECT id FROM buildings WHERE geom && "
                                 "ST_MakeEnvelope(121.5, 29.8, 121.5001, 29.8001, 4490)")).scalars().all()
        assert any("ix_buildings_geom" in line for line in plan), plan


def test_a_bulk_load_refused_in_its_last_chunk_leaves_the_layer_empty_and_indexed(db):
    frame = _grid_of_buildings(BULK_MIN_ROWS + 9_000)
    frame.loc[frame.index[-1], "height_m"] = -1.0  # the CHECK refuses the very last row, in the last COPY
    with db.connect() as conn:
        before = _indexes(conn, "buildings")
    with pytest.raises(sqlalchemy.exc.IntegrityError, match="height_m_min"):
        with transaction(engine=db, user="alice") as conn:
            write_frame(conn, "buildings", frame)
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM buildings")).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one() == 0
        assert _indexes(conn, "buildings") == before
        assert _disabled_triggers(conn, "buildings") == []


def _grid_of_compounds(n: int) -> gpd.GeoDataFrame:
    """n squares that touch their neighbours (compounds of no street)."""
    side = 100
    ix, iy = np.arange(n) % side, np.arange(n) // side
    x, y = 121.50 + ix * 1e-4, 29.80 + iy * 1e-4
    return gpd.GeoDataFrame({"ref": [f"C{i:05d}" for i in range(n)], "street_code": [None] * n},
                            geometry=shapely.box(x, y, x + 1e-4, y + 1e-4), crs=4490)


def test_a_bulk_load_of_compounds_runs_their_deferred_overlap_check_on_the_kept_indexes(db):
    """As the schema owner (as `load_sample` loads), whose bulk path would drop and rebuild the plain indexes."""
    with db.connect() as conn:
        before = _indexes(conn, "compounds")
    with transaction(engine=owner_engine(), user="alice") as conn:
        assert write_frame(conn, "compounds", _grid_of_compounds(BULK_MIN_ROWS)).inserted == BULK_MIN_ROWS
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM compounds")).scalar_one() == BULK_MIN_ROWS
        assert _indexes(conn, "compounds") == before and _disabled_triggers(conn, "compounds") == []


def test_a_bulk_load_of_compounds_refuses_one_that_overlaps_another_streets(db):
    frame = _grid_of_compounds(BULK_MIN_ROWS)
    frame.loc[frame.index[-1], "street_code"] = "330212001"
    frame.loc[frame.index[-1], "geometry"] = shapely.box(121.50005, 29.80005, 121.50015, 29.80015)
    with pytest.raises(sqlalchemy.exc.IntegrityError, match="overlaps compound C0"):
        with transaction(engine=owner_engine(), user="alice") as conn:
            write_frame(conn, "compounds", frame)
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM compounds")).scalar_one() == 0


def test_appending_to_a_populated_layer_keeps_its_indexes_and_its_readers(db):
    with transaction(engine=db) as conn:
        write_frame(conn, "buildings", _grid_of_buildings(10))
    with transaction(engine=db, user="bob") as conn:
        write_frame(conn, "buildings", _grid_of_buildings(BULK_MIN_ROWS, y0=29.90, prefix="N"))
        assert "AccessExclusiveLock" not in _locks(conn, "buildings")  # readers of the layer go on reading
        assert any("ix_buildings_geom" in d for d in _indexes(conn, "buildings"))
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM buildings")).scalar_one() == BULK_MIN_ROWS + 10


def test_a_bulk_replace_deletes_with_full_audit_then_loads(db):
    with transaction(engine=db, user="alice") as conn:
        write_frame(conn, "buildings", _grid_of_buildings(3))
    with transaction(engine=db, user="carol") as conn:
        result = write_frame(conn, "buildings", _grid_of_buildings(BULK_MIN_ROWS), mode="replace", user="carol")
    assert (result.inserted, result.deleted) == (BULK_MIN_ROWS, 3)
    with db.connect() as conn:
        deletes = conn.execute(text("SELECT count(*) FROM audit_log WHERE action = 'delete' AND changed_by = 'carol' "
                                    "AND before->>'geom' LIKE 'SRID=4490;MULTIPOLYGON%'")).scalar_one()
        assert deletes == 3
        assert conn.execute(text("SELECT count(*) FROM buildings")).scalar_one() == BULK_MIN_ROWS


def test_readers_see_the_old_rows_while_a_bulk_replace_is_in_progress(db):
    """A replace takes no ACCESS EXCLUSIVE lock: a reader that would wait at most 100 ms for a lock reads the
    old rows while the replace's transaction is open, and the new ones once it commits."""
    with transaction(engine=db, user="alice") as conn:
        write_frame(conn, "buildings", _grid_of_buildings(7))
    with transaction(engine=db, user="carol") as conn:
        write_frame(conn, "buildings", _grid_of_buildings(BULK_MIN_ROWS), mode="replace", user="carol")
        assert "AccessExclusiveLock" not in _locks(conn, "buildings")
        with db.connect() as reader:
            reader.execute(text("SET lock_timeout = '100ms'"))
            assert reader.execute(text("SELECT count(*) FROM buildings")).scalar_one() == 7
            tile = reader.execute(text("SELECT count(*) FROM buildings WHERE geom && ST_MakeEnvelope(121, 29, 122, 30, "
                                       "4490)")).scalar_one()
            assert tile == 7
    with db.connect() as reader:
        assert reader.execute(text("SELECT count(*) FROM buildings")).scalar_one() == BULK_MIN_ROWS


def test_cells_of_every_type_round_trip_through_the_copy_encoding(db):
    tz = dt.timezone(dt.timedelta(hours=8))
    points = [shapely.Point(121.5 + i * 1e-4, 29.8) for i in range(4)]
    hydrants = gpd.GeoDataFrame({
        "ref": ["H\\1", "H\t2", "H\n3", None],
        "diameter_mm": np.array([100, None, 150, None], dtype=object),
        "inspected_at": np.array([dt.date(2024, 1, 2), None, dt.date(1999, 12, 31), None], dtype=object),
        "estimated": np.array([True, None, False, None], dtype=object),
        "extra": [{"注": "a\tb\\c"}, {}, None, {"n": [1, 2]}],
    }, geometry=points, crs=4490)
    parking = gpd.GeoDataFrame({"ref": ["P1", "P2"], "observed_at": np.array(
        [dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=tz), None], dtype=object)}, geometry=points[:2], crs=4490)
    with transaction(engine=db) as conn:
        write_frame(conn, "hydrants", hydrants)
        write_frame(conn, "parking", parking)
    got = read_layer("hydrants", engine=db)
    assert got["ref"].tolist()[:3] == ["H\\1", "H\t2", "H\n3"] and pd.isna(got["ref"].iloc[3])
    assert [None if pd.isna(v) else int(v) for v in got["diameter_mm"]] == [100, None, 150, None]
    assert [None if pd.isna(v) else v for v in got["inspected_at"]] == [dt.date(2024, 1, 2), None,
                                                                          dt.date(1999, 12, 31), None]
    assert [None if pd.isna(v) else bool(v) for v in got["estimated"]] == [True, None, False, None]
    assert got["extra"].tolist() == [{"注": "a\tb\\c"}, {}, {}, {"n": [1, 2]}]
    assert got.geometry.reset_index(drop=True).geom_equals_exact(gpd.GeoSeries(points, crs=4490), tolerance=0).all()
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM hydrants WHERE ST_SRID(geom) = 4490")).scalar_one() == 4
    observed = read_layer("parking", engine=db)["observed_at"].tolist()
    assert observed[0] == dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=tz) and pd.isna(observed[1])


def test_a_feature_from_a_bulk_load_keeps_a_complete_history(db):
    with transaction(engine=db, user="alice") as conn:
        write_frame(conn, "buildings", _grid_of_buildings(BULK_MIN_ROWS), user="alice")
    with db.connect() as conn:
        fid = conn.execute(text("SELECT id FROM buildings WHERE ref = 'B00042'")).scalar_one()
    with transaction(engine=db, user="bob") as conn:
        conn.execute(text("UPDATE buildings SET height_m = 12 WHERE id = :i"), {"i": fid})
    with db.connect() as conn:
        record = insert_record(conn, "buildings", fid)
        assert record is not None and record[0] == "alice"
        before, after, who = conn.execute(text(
            "SELECT before, after, changed_by FROM audit_log WHERE action = 'update' AND feature_id = :i"),
            {"i": fid}).one()
    # the update holds version 1 in full (who made it, the geometry) and version 2
    assert (who, before["version"], before["updated_by"], before["height_m"], after["height_m"]) == (
        "bob", 1, "alice", 9.0, 12.0)
    assert before["ref"] == "B00042" and before["geom"].startswith("SRID=4490;MULTIPOLYGON")


def test_small_and_interleaved_inserts_keep_one_audit_row_per_feature(db):
    with transaction(engine=db, user="alice") as conn:
        write_frame(conn, "buildings", _grid_of_buildings(50))
        # ids with gaps (not one unbroken range): logged row by row whatever the size
        conn.execute(text("INSERT INTO buildings (id, ref, geom) SELECT 10 * g, 'G' || g, "
                          "ST_Multi(ST_MakeEnvelope(121.6, 29.9, 121.6001, 29.9001, 4490)) "
                          "FROM generate_series(100000, 101999) g"))
    with db.connect() as conn:
        rows = conn.execute(text("SELECT count(*), count(DISTINCT feature_id), count(after->>'ref') FROM audit_log "
                                 "WHERE layer = 'buildings' AND action = 'insert'")).one()
        assert tuple(rows) == (2050, 2050, 2050)
        record = insert_record(conn, "buildings", 1_000_010)
        assert record is not None and record[0] == "alice"


def test_after_a_bulk_load_the_foreign_key_still_guards_raw_sql_writes(db):
    with transaction(engine=db) as conn:
        write_frame(conn, "compounds", _compound("C-1", 121.50, 29.80))
        write_frame(conn, "buildings", _grid_of_buildings(BULK_MIN_ROWS))
    with db.connect() as conn:
        assert _disabled_triggers(conn, "buildings") == []
    with pytest.raises(sqlalchemy.exc.IntegrityError, match="fk_buildings_compound_id_compounds"):
        with transaction(engine=db) as conn:
            conn.execute(text("INSERT INTO buildings (ref, compound_id, geom) VALUES ('X', 987654, "
                              "ST_Multi(ST_MakeEnvelope(121.6, 29.9, 121.6001, 29.9001, 4490)))"))


def test_the_set_based_foreign_key_check_refuses_a_row_without_its_compound(db):
    with transaction(engine=db) as conn:
        write_frame(conn, "compounds", _compound("C-1", 121.50, 29.80))
    state = pgcluster.load_state()
    assert state is not None
    superuser = create_engine(state.superuser_url)  # disabling an internal trigger needs one
    with pytest.raises(sqlalchemy.exc.IntegrityError, match=r"Key \(compound_id\)=\(987654\) is not present"):
        with transaction(engine=superuser) as conn:
            (fk,) = _ForeignKey.set_checkable(conn, "buildings")
            raw = conn.connection.driver_connection
            assert raw is not None
            raw.execute(f'ALTER TABLE buildings DISABLE TRIGGER "{fk.trigger}"')  # as the bulk path does
            conn.execute(text("INSERT INTO buildings (ref, compound_id, geom) SELECT 'B' || g, "
                              "CASE WHEN g = 7 THEN 987654 ELSE (SELECT id FROM compounds) END, "
                              "ST_Multi(ST_MakeEnvelope(121.5, 29.8, 121.5001, 29.8001, 4490)) "
                              "FROM generate_series(1, 10) g"))
            try:
                fk.check(raw, "buildings")
            except psycopg.Error as exc:
                raise sqlalchemy.exc.DBAPIError.instance("check", None, exc, psycopg.Error) from exc
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM buildings")).scalar_one() == 0
        assert _disabled_triggers(conn, "buildings") == []


def test_the_audit_logs_row_images_are_compressed_with_lz4(db):
    with db.connect() as conn:
        available = conn.execute(text("SELECT 'lz4' = ANY(enumvals) FROM pg_settings "
                                      "WHERE name = 'default_toast_compression'")).scalar()
        methods = dict(conn.execute(text("SELECT attname, attcompression FROM pg_attribute "
                                         "WHERE attrelid = 'audit_log'::regclass "
                                         "AND attname IN ('before', 'after')")).all())
    assert available, "this PostgreSQL has no lz4"
    assert methods == {"before": "l", "after": "l"}

"""The runner end to end: PostGIS scope → partitions → findings → hazards ledger; serial vs pool vs Dask."""

from __future__ import annotations

import gc
import importlib.util
import json
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import cast

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from runner_support import bent_district, district, load
from sqlalchemy import text

import gis.checks.lanes
from gis.checks import output
from gis.checks.context import CheckContext, build_contexts
from gis.checks.profiles import load_profile
from gis.checks.runner import (
    FAMILIES,
    FAMILY_CHECKS,
    MissingChecksError,
    _check_batch,
    _close_client,
    _dask_client,
    families_present,
    plan_tasks,
    process_pool,
    resolve_families,
    run_checks,
    run_on_frames,
    storage_operations,
)
from gis.db import transaction
from gis.terminal_safety import display_width


def fail_keys(findings: pd.DataFrame) -> set[tuple[str, str]]:
    f = findings[findings["verdict"] == "fail"]
    return set(zip(f["rule"], f["subject_ref"], strict=True))


def test_registry_names_every_family_and_missing_modules_fail_loudly():
    assert tuple(FAMILY_CHECKS) == FAMILIES
    assert callable(FAMILY_CHECKS["lanes"])
    with pytest.raises(KeyError):
        FAMILY_CHECKS["nonsense"]
    with pytest.raises(KeyError):
        resolve_families(["lanes", "nonsense"])
    assert issubclass(MissingChecksError, ImportError)


def test_families_are_vouched_for_without_being_imported(monkeypatch):
    # a run whose workers import the families checks here only that their modules exist, naming every missing one
    families_present(FAMILIES)
    with pytest.raises(KeyError):
        families_present(["lanes", "nonsense"])
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("gis.checks.aerial", "gis.checks.ebikes") else real(name, *a))
    with pytest.raises(MissingChecksError, match="gis.checks.aerial, gis.checks.ebikes"):
        families_present(FAMILIES)
    with pytest.raises(MissingChecksError, match="gis.checks.aerial, gis.checks.ebikes"):
        resolve_families(FAMILIES)


def test_run_on_frames_reports_each_compound_once_in_wgs84():
    found = run_on_frames(district(), profile="cn-gb", families=("lanes", "aerial"))
    assert found.crs.to_epsg() == 4326
    # both lanes end blind 140 m from their gate: dead ends by their connections (tagged through), no turnaround
    assert fail_keys(found) == {("LANE-CLEAR", "L1"), ("LANE-WIDTH", "L2"), ("LANE-TURNAROUND", "L1"),
                                ("LANE-TURNAROUND", "L2")}
    assert set(found.loc[found["subject_ref"] == "L1", "compound_ref"]) == {"C1"}
    assert not found["key"].duplicated().any()
    lon, lat = found.geometry.iloc[0].centroid.coords[0]
    assert 121 < lon < 122 and 29 < lat < 30.5


def test_contexts_carry_surroundings_and_owners():
    ctxs = build_contexts(district(), profile="cn-gb")
    assert [c.compound_ref for c in ctxs] == ["C1", "C2"]
    c1 = ctxs[0]
    assert c1.crs.to_epsg() == 32651
    # the neighbour compound's outline is there (ownership is decided against it), its far lane is not
    assert set(c1.layer("compounds")["ref"]) == {"C1", "C2"}
    assert set(c1.layer("fire_lanes")["ref"]) == {"L1"}
    assert set(c1.layer("roads")["ref"]) == {"R1"}


def test_a_group_of_compounds_carries_their_surroundings_not_its_bounding_boxs():
    """Neighbours along a Hilbert run can bend around an area that is no member's surroundings (here the L of
    C1, C2, C3 around C4): the group's context holds what lies within the margins of its compounds, not what
    lies in the corner of their bounding box."""
    (ctx,) = build_contexts(bent_district(), profile="cn-gb", compounds=["C1", "C2", "C3"], group_size=3)
    assert ctx.compounds == ("C1", "C2", "C3")
    assert set(ctx.layer("buildings")["ref"]) == {"B1", "B2", "B3"}
    assert "L4" not in set(ctx.layer("fire_lanes")["ref"])
    (alone,) = build_contexts(bent_district(), profile="cn-gb", compounds=["C4"])
    assert set(alone.layer("buildings")["ref"]) == {"B4"} and set(alone.layer("fire_lanes")["ref"]) == {"L4"}


def test_grouped_partitions_give_the_per_compound_findings():
    tasks = plan_tasks(district(), profile=load_profile("cn-gb"), families=("lanes", "aerial"))
    assert [(c.compounds, fams) for c, fams in tasks] == [(("C1", "C2"), ("lanes", "aerial"))]
    one = run_on_frames(district(), families=("lanes", "aerial"), grouped=False)
    grouped = run_on_frames(district(), families=("lanes", "aerial"), grouped=True)
    cols = ["key", "verdict", "compound_ref", "measured"]
    assert one[cols].astype(str).values.tolist() == grouped[cols].astype(str).values.tolist()


def test_process_pool_gives_the_serial_findings():
    serial = run_on_frames(district(), families=("lanes", "aerial"))
    pooled = run_on_frames(district(), families=("lanes", "aerial"), workers=2)
    assert list(serial["key"]) == list(pooled["key"])
    assert serial["measured"].tolist() == pooled["measured"].tolist()


def _collector_states(monkeypatch) -> list[bool]:
    """Whether the cyclic collector was on, each time the lanes family ran."""
    states, real = [], gis.checks.lanes.check

    def spy(ctx):
        states.append(gc.isenabled())
        return real(ctx)

    monkeypatch.setattr(gis.checks.lanes, "check", spy)
    return states


def test_rules_run_with_the_cyclic_collector_paused_and_it_comes_back(monkeypatch):
    gc.enable()
    states = _collector_states(monkeypatch)
    found = run_on_frames(district(), families=("lanes",), grouped=False)
    assert states == [False, False] and gc.isenabled()  # one partition per compound, both paused
    assert ("LANE-CLEAR", "L1") in fail_keys(found)
    tasks: list[tuple[CheckContext, tuple[str, ...]]] = [
        (c, ("lanes",)) for c in build_contexts(district(), profile="cn-gb")]
    _check_batch(tasks)  # what a pool worker runs: paused there too
    assert states[2:] == [False, False] and gc.isenabled()


def test_a_pool_worker_keeps_its_imported_modules_out_of_the_collectors_walks():
    """A pool worker freezes what it imported (gc.freeze) before its first task: the collection after each group
    walks the group's leftovers, not every module's objects again."""
    with process_pool(2, families=("lanes",)) as pool:
        frozen = [pool.submit(gc.get_freeze_count).result() for _ in range(4)]
    assert min(frozen) > 10_000, frozen
    assert gc.get_freeze_count() == 0  # the caller's own collector is untouched


def test_a_local_dask_worker_keeps_its_imported_modules_out_of_the_collectors_walks_too():
    """The LocalCluster a run starts freezes its workers' imports as the pool does; the caller's collector is
    untouched."""
    client, owned = _dask_client("local:1")
    try:
        assert owned
        frozen = list(client.run(gc.get_freeze_count).values())
    finally:
        _close_client(client)
    assert len(frozen) == 1 and frozen[0] > 10_000, frozen
    assert gc.get_freeze_count() == 0


_ASK_MODULES = "sorted(m for m in ('distributed', 'gis.checks.lanes') if m in __import__('sys').modules)"


def _fresh_interpreter(code: str) -> list[str]:
    """The lines `code` prints, run in a fresh interpreter (this one's fork server may already run)."""
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).resolve().parents[1], check=True)
    return out.stdout.splitlines()


def test_a_local_dask_clusters_workers_start_with_the_checks_already_imported():
    """`--dask local:N` in a process with no fork server yet: its workers come from a server that preloaded
    distributed and the checks (Dask's own first use of its context sets another list, which must not win)."""
    lines = _fresh_interpreter(f"""
        from gis.checks.runner import _close_client, _dask_client
        client, _ = _dask_client("local:1")
        try:
            print(list(client.run(eval, {_ASK_MODULES!r}).values()))
        finally:
            _close_client(client)
    """)
    assert lines[:1] == ["[['distributed', 'gis.checks.lanes']]"], lines


def test_a_fork_server_started_for_dask_gives_pool_and_cluster_processes_distributed_and_the_checks():
    """A process that runs both pools and LocalClusters starts its one fork server with `dask` (a server keeps what
    it preloaded first): the pool's processes and the LocalCluster's workers both start with distributed and the
    checks already imported, where a server started for the pool alone would leave each Dask worker to import
    distributed itself."""
    lines = _fresh_interpreter(f"""
        from gis import forkserver
        from gis.checks.runner import _close_client, _dask_client, process_pool

        forkserver.start(dask=True)
        pool = process_pool(1)
        print(pool.submit(eval, {_ASK_MODULES!r}).result())
        pool.shutdown()
        client, _ = _dask_client("local:1")
        try:
            print(list(client.run(eval, {_ASK_MODULES!r}).values()))
        finally:
            _close_client(client)
    """)
    assert lines[:2] == ["['distributed', 'gis.checks.lanes']", "[['distributed', 'gis.checks.lanes']]"], lines


def test_the_fork_server_freezes_what_it_preloaded_so_it_exits_with_its_parent_at_once():
    """The fork server's last preload freezes its imports in the server itself: it then ends as soon as its parent
    does (no collection over every preloaded module on the way out, which held a piped command's output open), and
    a process it forks starts with those objects out of its collector's walks before any initializer runs."""
    lines = _fresh_interpreter("""
        from concurrent.futures import ProcessPoolExecutor
        import gc
        from gis import forkserver

        assert forkserver.preload()[-1] == "gis.forkserver_freeze"
        forkserver.start(("lanes",))
        with ProcessPoolExecutor(1, mp_context=forkserver.context(("lanes",))) as pool:
            print(pool.submit(gc.get_freeze_count).result())
        print(gc.get_freeze_count())
    """)
    assert int(lines[0]) > 10_000 and lines[1] == "0", lines  # (the caller's own collector untouched)


def test_a_run_chooses_each_zones_coordinate_operation_once_for_its_workers():
    """The caller hands its workers one storage-to-metric operation per UTM zone of the scope's compounds (and
    none for an empty scope); the tasks carrying them pickle."""
    outlines = np.array([shapely.box(117.9, 29.8, 117.901, 29.801), shapely.box(121.5, 29.8, 121.501, 29.801),
                         shapely.box(121.6, 29.8, 121.601, 29.801)], dtype=object)  # zones 50, 51, 51
    ops = storage_operations(outlines)
    assert sorted(cast(int, dst.to_epsg()) for _, dst, _ in ops) == [32650, 32651]  # UTM zones: EPSG codes
    assert all(src.to_epsg() == 4490 and '"type"' in op for src, _, op in ops)
    assert pickle.loads(pickle.dumps(ops))[0][2] == ops[0][2]
    assert storage_operations(np.empty(0, dtype=object)) == ()


def test_dask_local_cluster_gives_the_serial_findings():
    import distributed

    serial = run_on_frames(district(), families=("lanes", "aerial"))
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        on_dask = run_on_frames(district(), families=("lanes", "aerial"), dask_address=cluster.scheduler_address)
    assert list(serial["key"]) == list(on_dask["key"])
    assert serial["measured"].tolist() == on_dask["measured"].tolist()


def test_renderers():
    found = run_on_frames(district(), families=("lanes", "aerial"))
    arr = json.loads(output.render(found, "json"))
    assert isinstance(arr, list) and len(arr) == len(found)
    need = {"rule", "clause", "verdict", "severity", "compound_ref", "subject_layer", "subject_ref", "other_refs",
            "measured", "required", "unit", "message", "department", "geometry"}
    assert need <= set(arr[0])
    assert arr[0]["geometry"]["type"] in {"Polygon", "LineString", "MultiPolygon", "Point", "MultiLineString"}
    fc = json.loads(output.render(found, "geojson"))
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == len(found)
    table = output.render(found, "table")
    assert "规则 rule" in table and "LANE-CLEAR" in table and "L2" in table
    with pytest.raises(ValueError):
        output.render(found, "xml")


def test_json_output_gives_each_cell_as_json_and_each_geometry_as_rfc7946_geojson():
    """Missing numbers and texts are null, numpy numbers and arrays plain JSON, strings as they are (no escaping
    beyond JSON's), a missing or empty geometry null, the others in WGS84 with 7 decimals and exteriors
    counter-clockwise; GeoJSON carries the same cells as properties."""
    frame = gpd.GeoDataFrame(
        {"key": ["k1", "k2", "k3"], "rule": ["LANE-CLEAR"] * 3, "measured": [np.nan, np.float64(1.5), 2.0],
         "required": pd.array([4, None, 6], dtype="Int64"), "message": ['=1+1 "<b>', "消防车道", None],
         "other_refs": [["B1", "B2"], np.array(["B3"]), []],
         "subject_ref": pd.array(["L1", None, "L3"], dtype="string")},
        geometry=[shapely.Polygon([(120.123456789, 30.0), (120.0, 30.1), (120.1, 30.1)]), None, shapely.Polygon()],
        crs=4326)
    arr = json.loads(output.render(frame, "json"))
    assert [r["measured"] for r in arr] == [None, 1.5, 2.0] and [r["required"] for r in arr] == [4, None, 6]
    assert [r["message"] for r in arr] == ['=1+1 "<b>', "消防车道", None]
    assert [r["other_refs"] for r in arr] == [["B1", "B2"], ["B3"], []]
    assert [r["subject_ref"] for r in arr] == ["L1", None, "L3"]
    assert arr[1]["geometry"] is None and arr[2]["geometry"] is None
    ring = arr[0]["geometry"]["coordinates"][0]
    assert [120.1234568, 30.0] in ring and shapely.LinearRing(ring).is_ccw
    fc = json.loads(output.render(frame, "geojson"))
    assert [f["id"] for f in fc["features"]] == ["k1", "k2", "k3"]
    assert [f["geometry"] for f in fc["features"]] == [r.pop("geometry") for r in arr]
    assert [f["properties"] for f in fc["features"]] == arr


def test_the_table_aligns_its_columns_in_terminal_columns_and_cuts_long_messages():
    """Chinese characters take two terminal columns: every row starts each column at the same terminal column, and
    a message longer than `max_message` columns is cut at a whole character with "…"."""
    frame = gpd.GeoDataFrame(
        {"key": ["k1", "k2"], "rule": ["LANE-CLEAR", "HYD-COVERAGE"], "verdict": ["fail", "cannot_judge"],
         "severity": [3, np.nan], "compound_ref": ["小区甲", "C2"], "subject_layer": ["fire_lanes", "buildings"],
         "subject_ref": ["L1", "B2"], "other_refs": [["B1", "B2", "B3", "B4"], []], "measured": [3.456, np.nan],
         "required": [4.0, 150.0], "unit": ["m", "m"], "department": ["街道办", "消防救援大队"],
         "message": ["消防车道净宽不足" * 10, "short"]},
        geometry=[shapely.Point(120, 30), shapely.Point(120.1, 30.1)], crs=4326)
    lines = output.to_table(frame, max_message=20).splitlines()
    head, first, second = lines[0], lines[2], lines[3]

    def column_of(line: str, text: str) -> int:  # the terminal column where `text` starts in `line`
        return display_width(line[:line.index(text)])

    for name, in_first, in_second in (("对象 subject", "fire_lanes:L1", "buildings:B2"),
                                      ("要求 required", "4 m", "150 m"), ("说明 message", "消防", "short")):
        assert column_of(first, in_first) == column_of(second, in_second) == column_of(head, name)
    assert "fire_lanes:L1 (B1, B2, B3, …)" in first and "3.46 m" in first
    message = first[first.index("消防"):]
    assert message.endswith("…") and display_width(message) <= 20
    assert any(line.startswith("共 2 条: 不合格 1, 无法判定 1") for line in lines)


# --- against the real PostGIS -------------------------------------------------------------------------------------


def hazards(engine) -> dict[str, tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT key, status, verdict FROM hazards")).all()
    return {k: (s, v) for k, s, v in rows}


@pytest.mark.db
def test_run_checks_keeps_the_ledger(db):
    load(db, district())
    first = run_checks(engine=db, user="tester")
    assert fail_keys(first.findings) >= {("LANE-CLEAR", "L1"), ("LANE-WIDTH", "L2")}
    assert first.counts["LANE-CLEAR"]["fail"] == 1
    assert first.ledger.inserted == len(first.findings[first.findings["verdict"] != "pass"])
    ledger = hazards(db)
    blocked = "LANE-CLEAR|fire_lanes:L1|V1"
    assert ledger[blocked] == ("open", "fail")
    with db.connect() as conn:
        run = conn.execute(text("SELECT status, profile, profile_version, counts, duration_s, started_by "
                                "FROM check_runs WHERE id = :id"), {"id": first.run_id}).one()
        row = conn.execute(text("SELECT compound_ref, street_code IS NULL, first_run_id, ST_SRID(geom), "
                                "message_zh, message_en, department FROM hazards WHERE key = :k"),
                           {"k": blocked}).one()
    assert run.status == "done" and run.profile == "cn-gb" and run.started_by == "tester"
    assert run.counts["rules"]["LANE-CLEAR"] == {"fail": 1}
    assert row[0] == "C1" and row[2] == first.run_id and row[3] == 4490 and row[6] == "交警/公安"

    # a recheck changes nothing but last_seen
    second = run_checks(engine=db)
    assert second.ledger.inserted == 0 and second.ledger.verified == 0
    assert hazards(db) == ledger

    # the car leaves: its hazard passes recheck, nothing is deleted
    with transaction(engine=db) as conn:
        conn.execute(text("DELETE FROM obstructions WHERE ref = 'V1'"))
    third = run_checks(engine=db)
    after = hazards(db)
    assert after[blocked] == ("verified", "fail")
    assert third.ledger.verified == 1 and len(after) == len(ledger)
    assert after["LANE-WIDTH|fire_lanes:L2"] == ("open", "fail")

    # it comes back: the hazard is reopened under the same key
    load(db, {"obstructions": district()["obstructions"]})
    fourth = run_checks(engine=db)
    assert fourth.ledger.reopened == 1
    assert hazards(db)[blocked] == ("reopened", "fail")


@pytest.mark.db
def test_compound_scope_only_touches_that_compound(db):
    load(db, district())
    run_checks(engine=db)
    with transaction(engine=db) as conn:
        conn.execute(text("DELETE FROM obstructions"))
        conn.execute(text("UPDATE fire_lanes SET geom = ST_Multi(ST_Buffer(geom, 0.5, 'join=mitre')) "
                          "WHERE ref = 'L2'"))
    scoped = run_checks(engine=db, compound="C1")
    assert set(scoped.findings["compound_ref"]) <= {"C1"}
    after = hazards(db)
    # C1's blockage is closed by the C1 run; C2's (now wide enough) lane stays open until C2 is checked
    assert after["LANE-CLEAR|fire_lanes:L1|V1"][0] == "verified"
    assert after["LANE-WIDTH|fire_lanes:L2"][0] == "open"
    run_checks(engine=db, compound="C2")
    assert hazards(db)["LANE-WIDTH|fire_lanes:L2"][0] == "verified"


@pytest.mark.db
def test_bad_arguments_write_nothing(db):
    load(db, district())
    with pytest.raises(KeyError):
        run_checks(engine=db, families=("lanes", "nonsense"))
    with pytest.raises(Exception):  # noqa: B017 - profile errors are ProfileError (ValueError)
        run_checks(engine=db, profile="no-such-profile")
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM hazards")).scalar_one() == 0


@pytest.mark.db
def test_a_dask_task_names_the_database_without_its_password(db):
    """A group sent through a Dask scheduler carries the database URL without its password (the scheduler's state
    and logs and a remote cluster's workers never see it); a worker thread of this process finds the password
    here, a LocalCluster of the run's own in its workers' environment (the test below)."""
    import distributed  # heavy optional dependency (Dask), as in the tests above

    password = db.url.password
    assert password  # the test database has one to leak
    load(db, district())
    sent: list[bytes] = []
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        submit = client.submit

        def recording(fn, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202 - Client.submit's signature
            sent.append(pickle.dumps(args))
            return submit(fn, *args, **kwargs)

        client.submit = recording  # type: ignore[method-assign]
        run = run_checks(engine=db, stream_batch=1, dask_address=client, ledger=False)
    assert len(sent) >= 2 and len(run.findings)
    assert not any(str(password).encode() in blob for blob in sent)
    assert all(db.url.host.encode() in blob for blob in sent)  # the database is named all the same


@pytest.mark.db
def test_a_local_dask_cluster_of_processes_and_a_pool_give_the_serial_run(db, truncate):
    """`--dask local:2` (worker processes forked with the checks imported) and `--workers 2` read their groups
    themselves and give the serial run's findings and ledger."""
    load(db, district())
    serial = run_checks(engine=db, stream_batch=1)  # a group per compound: both go to workers below
    ledger = hazards(db)
    for how in ({"dask_address": "local:2"}, {"workers": 2}):
        truncate("hazards")
        run = run_checks(engine=db, stream_batch=1, **how)
        assert list(run.findings["key"]) == list(serial.findings["key"]), how
        assert run.findings["measured"].tolist() == serial.findings["measured"].tolist()
        assert hazards(db) == ledger and run.ledger == serial.ledger

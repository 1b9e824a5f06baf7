"""A scope larger than a batch is read and checked as a stream of neighbouring batches (memory bounded by the batch,
not the district), with the findings and the ledger of one read of the whole scope."""

from __future__ import annotations

import pickle
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import numpy as np
import pandas as pd
import pytest
from runner_support import bent_district, load
from sqlalchemy import text

from gis import sample, scope
from gis.checks.profiles import load_profile
from gis.checks.runner import (
    FAMILIES,
    Group,
    GroupTask,
    check_group,
    cut_groups,
    group_work,
    read_boxes,
    read_group,
    run_checks,
    scope_compounds,
    stream_scope,
)
from gis.sample.io import load_sample


def _keyed(findings: pd.DataFrame) -> pd.DataFrame:
    cols = ["key", "verdict", "measured", "compound_ref"]
    out = findings[cols].sort_values("key").reset_index(drop=True)
    out["measured"] = out["measured"].astype(float)
    return out


@pytest.mark.db
def test_streamed_batches_give_the_findings_and_ledger_of_one_read(db, truncate):
    s = sample.generate(district="yinzhou", scale="s", seed=1)
    load_sample(s, engine=db)
    refs, batches = stream_scope(engine=db, profile=load_profile("cn-gb"), batch=12)
    seen = []
    for layers, mine in batches:
        # a batch holds its compounds' surroundings, not the district
        assert len(mine) <= 12 and set(mine) <= set(layers["compounds"]["ref"])
        assert len(layers["buildings"]) < len(s.layers["buildings"])
        seen += mine
    assert sorted(seen) == sorted(refs) and len(refs) == len(s.layers["compounds"])

    whole = run_checks(engine=db, stream_batch=10_000)
    with db.connect() as conn:
        ledger_whole = dict(conn.execute(text("SELECT key, status FROM hazards")).all())
    truncate("hazards")
    streamed = run_checks(engine=db, stream_batch=12)
    with db.connect() as conn:
        ledger_streamed = dict(conn.execute(text("SELECT key, status FROM hazards")).all())
    pd.testing.assert_frame_equal(_keyed(whole.findings), _keyed(streamed.findings))
    assert ledger_streamed == ledger_whole
    assert streamed.ledger.inserted == whole.ledger.inserted > 0
    assert streamed.counts == whole.counts


@pytest.mark.db
def test_batches_checked_by_workers_while_the_next_is_read_give_the_serial_findings_and_ledger(db, truncate):
    """Pool workers and a Dask cluster check a batch while the runner reads the next one and writes the last
    one's ledger: the findings, the ledger and its tally are the serial run's."""
    import distributed

    load_sample(sample.generate(district="yinzhou", scale="s", seed=1), engine=db)
    serial = run_checks(engine=db, stream_batch=10)
    with db.connect() as conn:
        ledger_serial = dict(conn.execute(text("SELECT key, status FROM hazards")).all())
    for how in ({"workers": 2}, "dask"):
        truncate("hazards")
        if how == "dask":
            with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                          dashboard_address=None) as cluster, distributed.Client(cluster) as client:
                run = run_checks(engine=db, stream_batch=10, dask_address=client)
                assert client.status == "running"  # the caller's client is left to the caller
        else:
            run = run_checks(engine=db, stream_batch=10, **cast(dict[str, Any], how))
        with db.connect() as conn:
            assert dict(conn.execute(text("SELECT key, status FROM hazards")).all()) == ledger_serial, how
        pd.testing.assert_frame_equal(_keyed(serial.findings), _keyed(run.findings))
        assert run.ledger == serial.ledger and run.counts == serial.counts


@pytest.mark.db
def test_a_group_travels_as_its_refs_and_the_worker_reads_it_under_the_callers_scope(db, truncate):
    """What goes to a pool or Dask worker is the group's refs and read boxes, the database URL and the caller's scope
    (kilobytes, not the partition's frames); the worker reads and checks the group itself, under that scope."""
    load_sample(sample.generate(district="yinzhou", scale="s", seed=1), engine=db)
    refs, ordered, outlines = scope_compounds(engine=db)
    groups = cut_groups(ordered, outlines, 10)
    assert sorted(r for g in groups for r in g.refs) == sorted(refs)
    sizes = [len(g.refs) for g in groups]
    assert max(sizes) <= 10 and max(sizes) - min(sizes) <= 1  # balanced, not a short tail
    # largest expected work first: the last groups the workers take are the smallest
    work = group_work(outlines, [np.flatnonzero(np.isin(ordered, g.refs)) for g in groups])
    assert list(work) == sorted(work, reverse=True) and work[0] > work[-1]

    def task(run_scope: scope.Scope) -> GroupTask:
        return GroupTask(group=groups[0], families=FAMILIES, profile=load_profile("cn-gb"), grouped=None,
                         url=db.url.render_as_string(hide_password=False), scope=run_scope)

    assert len(pickle.dumps(task(scope.SYSTEM))) < 50_000
    here = check_group(task(scope.SYSTEM), db)
    assert len(here) and set(here["compound_ref"]) <= set(groups[0].refs)
    with ThreadPoolExecutor(1) as fresh:  # a new thread starts with no scope, like a worker process
        assert fresh.submit(scope.current).result() == scope.NOTHING
        there = fresh.submit(check_group, task(scope.SYSTEM)).result()
        nothing = fresh.submit(check_group, task(scope.NOTHING)).result()
    pd.testing.assert_frame_equal(_keyed(here), _keyed(there))
    assert len(nothing) == 0  # a scope that sees nothing reads nothing


@pytest.mark.db
def test_a_group_reads_the_surroundings_of_its_compounds_not_the_corner_of_its_bounding_box(db):
    """A group's read is one index condition per layer over the boxes of short runs of its compounds (grown by
    the layer's margin): a compound and its features in the bend of the run are not read, whatever the group's
    overall bounding box covers; what the members own is read wherever it lies."""
    layers = bent_district()
    load(db, layers)
    refs, ordered, outlines = scope_compounds(engine=db)
    mine = [i for i, r in enumerate(ordered) if r != "C4"]
    group = Group(refs=tuple(ordered[mine]), boxes=read_boxes(outlines[mine], 1))
    read = read_group(db, group, load_profile("cn-gb"))
    assert set(read["buildings"]["ref"]) == {"B1", "B2", "B3"}
    assert "C4" not in set(read["compounds"]["ref"]) and not len(read["fire_lanes"])
    whole = Group(refs=group.refs, boxes=read_boxes(outlines[mine], len(mine)))
    assert set(read_group(db, whole, load_profile("cn-gb"))["buildings"]["ref"]) == {"B1", "B2", "B3", "B4"}

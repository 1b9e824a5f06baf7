"""A scope larger than a batch is read and checked as a stream of neighbouring batches (memory bounded by the batch,
not the district), with the findings and the ledger of one read of the whole scope."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import text

from gis import sample
from gis.checks.profiles import load_profile
from gis.checks.runner import run_checks, stream_scope
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
            run = run_checks(engine=db, stream_batch=10, **how)
        with db.connect() as conn:
            assert dict(conn.execute(text("SELECT key, status FROM hazards")).all()) == ledger_serial, how
        pd.testing.assert_frame_equal(_keyed(serial.findings), _keyed(run.findings))
        assert run.ledger == serial.ledger and run.counts == serial.counts

"""The managed PostgreSQL's cache is sized to the machine it runs on."""

import pytest
from sqlalchemy import text

from gis.pgcluster import memory_settings

GB = 2**30


@pytest.mark.parametrize("total, shared, cache", [
    (24 * GB, "'6144MB'", "'18432MB'"),   # a quarter of the memory for shared_buffers, three quarters as cache hint
    (2 * GB, "'512MB'", "'1536MB'"),
    (64 * GB, "'8192MB'", "'49152MB'"),   # at most 8 GB
    (GB // 4, "'128MB'", "'512MB'"),      # at least 128 MB
])
def test_shared_buffers_are_a_quarter_of_the_memory_within_bounds(total, shared, cache):
    assert memory_settings(total) == {"shared_buffers": shared, "effective_cache_size": cache}


@pytest.mark.db
def test_the_managed_cluster_runs_with_them(db):
    with db.connect() as conn:
        got = {name: conn.execute(text(f"SELECT setting::bigint * pg_size_bytes(coalesce(unit, '1B')) FROM "
                                       f"pg_settings WHERE name = '{name}'")).scalar_one()
               for name in ("shared_buffers", "effective_cache_size")}
    want = {k: int(v.strip("'MB")) * 2**20 for k, v in memory_settings().items()}
    assert got == want

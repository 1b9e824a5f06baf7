"""The async read pool carries each caller's scope: set with the read in one round trip, never a stale one."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from test_api_support import STREET_A, STREET_B

from api.aio import ReadPool
from gis import scope
from gis.db import libpq_conninfo

SETTING = "SELECT current_setting('firelane.streets', true)"
HAZARDS = "SELECT array_agg(street_code ORDER BY street_code) FROM hazards"


def reads(engine, steps: list[tuple[scope.Scope, str]]) -> list[object]:
    """Run `steps` (scope, SQL) in order on a pool of one connection: each read's first value, or its error."""

    async def run() -> list[object]:
        pool = ReadPool(libpq_conninfo(engine), size=1, timeout_s=10, statement_timeout_ms=30_000)
        out: list[object] = []
        try:
            for where, sql in steps:
                with scope.scoped(where):
                    try:
                        row = await pool.fetchone(sql, {})
                        out.append(row[0] if row else None)
                    except psycopg.Error as exc:
                        out.append(type(exc))
        finally:
            await pool.close()
        return out

    return asyncio.run(run())


@pytest.fixture
def a_and_b():
    return scope.for_streets("street_office", [STREET_A]), scope.for_streets("street_office", [STREET_B])


def test_callers_in_turns_on_one_connection_each_read_their_own_rows(engine, district, a_and_b):
    a, b = a_and_b
    everyone = scope.unscoped("admin")
    got = reads(engine, [(a, HAZARDS), (b, HAZARDS), (b, HAZARDS), (everyone, HAZARDS), (a, HAZARDS),
                         (scope.NOTHING, HAZARDS)])
    assert got == [[STREET_A], [STREET_B], [STREET_B], [STREET_A, STREET_B], [STREET_A], None]


def test_a_failed_read_after_a_change_of_scope_leaves_no_stale_scope_behind(engine, district, a_and_b):
    a, b = a_and_b
    # b's set and its failing read are one transaction: both are undone, the connection still holds a's settings;
    # b's next read must set b again, not trust a scope it never got
    got = reads(engine, [(a, SETTING), (b, "SELECT 1/0"), (b, SETTING), (b, HAZARDS), (a, "SELECT 1/0"),
                         (a, HAZARDS)])
    assert got == [STREET_A, psycopg.errors.DivisionByZero, STREET_B, [STREET_B], psycopg.errors.DivisionByZero,
                   [STREET_A]]

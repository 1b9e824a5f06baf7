"""Property-based API testing: schemathesis generates requests from the OpenAPI 3.0 description at /api and the
service must never answer with a server error (5xx), with a valid admin token on the real PostGIS."""

from __future__ import annotations

import re

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok
from test_api_support import load_district, make_user

from api.app import create_app
from api.auth import forget_tokens
from api.features import forget_extents

pytestmark = pytest.mark.db

#: Operations fuzzed (bounded): reads, tiles, ledger and feature edits; login/logout, users and check runs are
#: covered by example-based tests (fuzzing them would revoke the token or start heavy background runs).
FUZZED = re.compile(r"^/(collections.*|tiles/.*|hazards.*|photos.*|reports.*|complaints.*|compounds/.*|conformance|api|)$")


def test_no_server_errors_on_generated_requests(db):
    forget_tokens()
    forget_extents()
    load_district(db)
    app = create_app()
    admin = make_user(db, "fuzz-admin", "admin")
    schema = schemathesis.openapi.from_asgi("/api", app)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operations.append(result.ok())
    fuzzed = [op for op in operations if FUZZED.match(op.path)]
    assert len(fuzzed) >= 8, [op.path for op in operations]
    failures: list[str] = []
    for op in fuzzed:

        @given(case=op.as_strategy())
        @settings(max_examples=10, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case) -> None:
            response = case.call(headers=admin)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {case.query} -> {response.status_code}: "
                                f"{response.text[:300]}")

        run()
    assert failures == []

"""Users, tokens, login and the authorisation matrix (role x endpoint family, street-office jurisdictions)."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import mapbox_vector_tile
import pytest
from click.testing import CliRunner
from sqlalchemy import text
from test_api_support import PASSWORD, STREET_A, STREET_B, make_user

from api import auth, changefeed
from api.aio import close_pools
from api.changefeed import change_feed, wait_until_live
from api.cli import cli
from gis.config import server_settings

pytestmark = pytest.mark.db

ROLES = ("admin", "planner", "street_a", "street_b", "traffic", "demolition", "fire", "viewer")


def _building_in_a(ref: str = "M-1") -> dict:
    x, y = 121.5020, 29.8020
    ring = [[x, y], [x + 0.0002, y], [x + 0.0002, y + 0.0002], [x, y + 0.0002], [x, y]]
    return {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
            "properties": {"ref": ref, "floors": 3}}


# --- login, tokens, users ---------------------------------------------------------------------------------------


def test_login_with_json_gives_a_bearer_token_and_a_cookie(api, db):
    make_user(db, "alice", "planner")
    response = api.post("/auth/login", json={"username": "alice", "password": PASSWORD})
    assert response.status_code == 200
    token = response.json()["access_token"]
    assert response.json()["user"]["role"] == "planner"
    assert "firelane_token" in response.headers["set-cookie"] and "HttpOnly" in response.headers["set-cookie"]
    assert api.get("/auth/me", headers={"Authorization": f"Bearer {token}"}).json()["username"] == "alice"
    with db.connect() as conn:
        stored = conn.execute(text("SELECT token_hash, expires_at FROM api_tokens WHERE name = 'login'")).one()
    assert token not in stored.token_hash and stored.expires_at is not None  # stored hashed, with an expiry


def test_form_login_sets_the_cookie_that_web_pages_use(api, db):
    make_user(db, "bob", "viewer")
    response = api.post("/auth/login", data={"username": "bob", "password": PASSWORD, "next": "/collections"},
                        headers={"Accept": "text/html"}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/collections"
    assert api.get("/collections").status_code == 200  # the client keeps the cookie
    assert api.post("/auth/login", data={"username": "bob", "password": PASSWORD, "next": "//evil.example"},
                    headers={"Accept": "text/html"}, follow_redirects=False).headers["location"] == "/"


def test_wrong_password_unknown_user_and_disabled_user_are_401(api, db, headers):
    make_user(db, "carol", "viewer")
    assert api.post("/auth/login", json={"username": "carol", "password": "wrong-password"}).status_code == 401
    assert api.post("/auth/login", json={"username": "nobody", "password": PASSWORD}).status_code == 401
    assert api.delete("/users/carol", headers=headers["admin"]).status_code == 200
    assert api.post("/auth/login", json={"username": "carol", "password": PASSWORD}).status_code == 401


def test_login_attempts_are_rate_limited_per_user_and_address(api, db):
    make_user(db, "dave", "viewer")
    limit = server_settings().login_attempts_per_minute
    codes = [api.post("/auth/login", json={"username": "dave", "password": "nope-nope"}).status_code
             for _ in range(limit + 1)]
    assert codes[:limit] == [401] * limit
    assert codes[limit] == 429
    blocked = api.post("/auth/login", json={"username": "dave", "password": PASSWORD})
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    make_user(db, "erin", "viewer")
    assert api.post("/auth/login", json={"username": "erin", "password": PASSWORD}).status_code == 200


def test_logout_revokes_the_token(api, db):
    make_user(db, "frank", "viewer")
    token = api.post("/auth/login", json={"username": "frank", "password": PASSWORD}).json()["access_token"]
    h = {"Authorization": f"Bearer {token}"}
    assert api.post("/auth/logout", headers=h).status_code == 200
    assert api.get("/auth/me", headers=h).status_code == 401


def _frozen_token_clock(monkeypatch) -> None:
    """The token cache's clock stands still: no cached lookup ages out, only a change can end it."""
    monkeypatch.setattr(auth, "time", SimpleNamespace(monotonic=lambda: 1000.0))


def test_a_token_revoked_by_another_process_is_refused_at_once(api, db, monkeypatch, eventually):
    _frozen_token_clock(monkeypatch)
    make_user(db, "gina", "viewer")
    token = api.post("/auth/login", json={"username": "gina", "password": PASSWORD}).json()["access_token"]
    h = {"Authorization": f"Bearer {token}"}
    assert wait_until_live(db), "the change feed did not connect"
    assert api.get("/auth/me", headers=h).status_code == 200
    assert auth.cached_principal(token) is not None  # this process answers the token from its cache now
    with db.begin() as conn:  # revoked elsewhere (another worker, `firelane user`, psql): only PostgreSQL tells us
        conn.execute(text("SELECT firelane_revoke_token(:h)"), {"h": auth.token_hash(token)})
    assert eventually(lambda: api.get("/auth/me", headers=h).status_code == 401), "a revoked token was still accepted"
    assert auth.cached_principal(token) is None and api.get("/auth/me", headers=h).status_code == 401


def test_a_jurisdiction_changed_in_the_database_is_what_the_next_request_sees(api, db, monkeypatch, eventually):
    _frozen_token_clock(monkeypatch)
    h = make_user(db, "hana", "street_office", [STREET_A])
    assert wait_until_live(db), "the change feed did not connect"
    assert api.get("/auth/me", headers=h).json()["street_codes"] == [STREET_A]
    assert auth.cached_principal(h["Authorization"].split()[1]) is not None
    with db.begin() as conn:  # an administrator's change from another process
        conn.execute(text("UPDATE users SET street_codes = CAST(:s AS jsonb) WHERE username = 'hana'"),
                     {"s": f'["{STREET_B}"]'})
    assert eventually(lambda: api.get("/auth/me", headers=h).json()["street_codes"] == [STREET_B])


def test_a_new_sign_in_leaves_the_other_cached_tokens_in_the_cache(api, db, monkeypatch):
    _frozen_token_clock(monkeypatch)
    h = make_user(db, "ivan", "viewer")
    assert wait_until_live(db), "the change feed did not connect"
    assert api.get("/auth/me", headers=h).status_code == 200
    before = change_feed(db).generations(("users", "api_tokens"))
    make_user(db, "judy", "viewer")  # a new user and a new token: inserts, which change no cached lookup
    api.post("/auth/login", json={"username": "judy", "password": PASSWORD})
    time.sleep(0.3)  # (any notification would have arrived)
    assert change_feed(db).generations(("users", "api_tokens")) == before
    assert auth.cached_principal(h["Authorization"].split()[1]) is not None


def test_while_the_change_feed_is_down_every_request_looks_its_token_up(api, db, monkeypatch):
    _frozen_token_clock(monkeypatch)
    monkeypatch.setattr(changefeed.ChangeFeed, "generations", lambda self, tables: None)  # not connected
    make_user(db, "kate", "viewer")
    token = api.post("/auth/login", json={"username": "kate", "password": PASSWORD}).json()["access_token"]
    h = {"Authorization": f"Bearer {token}"}
    assert api.get("/auth/me", headers=h).status_code == 200
    assert auth.cached_principal(token) is None
    with db.begin() as conn:
        conn.execute(text("SELECT firelane_revoke_token(:h)"), {"h": auth.token_hash(token)})
    assert api.get("/auth/me", headers=h).status_code == 401


def test_admins_manage_users_and_tokens(api, headers):
    new = {"username": "so-1", "password": "a-long-password", "role": "street_office", "street_codes": [STREET_B]}
    created = api.post("/users", json=new, headers=headers["admin"])
    assert created.status_code == 201 and created.json()["street_codes"] == [STREET_B]
    assert "password" not in str(created.json())
    assert api.post("/users", json=new, headers=headers["admin"]).status_code == 409
    assert api.post("/users", json={**new, "username": "so-2", "street_codes": []},
                    headers=headers["admin"]).status_code == 400
    token = api.post("/users/so-1/tokens", json={"name": "qgis"}, headers=headers["admin"]).json()["access_token"]
    h = {"Authorization": f"Bearer {token}"}
    assert api.get("/auth/me", headers=h).json()["street_codes"] == [STREET_B]
    assert api.patch("/users/so-1", json={"active": False}, headers=headers["admin"]).json()["active"] is False
    assert api.get("/auth/me", headers=h).status_code == 401
    names = [u["username"] for u in api.get("/users", headers=headers["admin"]).json()]
    assert "so-1" in names and "admin" in names


def test_the_user_cli_adds_lists_and_disables_users(db):
    runner = CliRunner()
    added = runner.invoke(cli, ["user", "add", "grace", "--role", "street_office", "--street", STREET_A,
                                "--password", "another-long-one"])
    assert added.exit_code == 0, added.output
    listed = runner.invoke(cli, ["user", "list"])
    assert "grace" in listed.output and "street_office" in listed.output and STREET_A in listed.output
    token = runner.invoke(cli, ["user", "token", "grace"])
    assert token.exit_code == 0 and token.output.strip().splitlines()[-1].startswith("fl_")
    assert runner.invoke(cli, ["user", "disable", "grace"]).exit_code == 0
    assert "disabled" in runner.invoke(cli, ["user", "list"]).output
    bad = runner.invoke(cli, ["user", "add", "heidi", "--role", "street_office", "--password", "long-enough-1"])
    assert bad.exit_code != 0 and "street" in bad.output
    # a name that looks like another user's (a zero-width joiner) is refused, from the command line as over HTTP
    twin = runner.invoke(cli, ["user", "add", "gra\u200dce", "--role", "viewer", "--password", "another-long-one"])
    assert twin.exit_code != 0 and "U+200D" in twin.output, twin.output


# --- the authorisation matrix -----------------------------------------------------------------------------------


def test_anonymous_gets_401_except_on_public_endpoints(api, district):
    for path in ("/", "/conformance", "/api", "/api.html", "/healthz", "/readyz", "/auth/login"):
        assert api.get(path).status_code == 200, path
    for path in ("/collections", "/collections/buildings", "/collections/buildings/items",
                 f"/collections/buildings/items/{district.id('buildings', 'BA-0')}", "/tiles/buildings/0/0/0.mvt",
                 "/hazards", "/checks/runs", "/users", "/auth/me"):
        assert api.get(path).status_code == 401, path
    assert api.post("/collections/buildings/items", json=_building_in_a()).status_code == 401


def test_every_role_reads_items_but_street_offices_only_their_own(api, headers, district):
    for role in ROLES:
        fc = api.get("/collections/buildings/items?limit=100", headers=headers[role]).json()
        streets = {f["properties"]["street_code"] for f in fc["features"]}
        expected = {"street_a": {STREET_A}, "street_b": {STREET_B}}.get(role, {STREET_A, STREET_B})
        assert streets == expected, role


def test_a_street_office_gets_404_for_another_streets_compound_by_id(api, headers, district):
    cb = district.id("compounds", "CB-1")
    assert api.get(f"/collections/compounds/items/{cb}", headers=headers["street_a"]).status_code == 404
    assert api.get(f"/collections/compounds/items/{cb}", headers=headers["street_b"]).status_code == 200
    assert api.get(f"/collections/streets/items/{district.id('streets', STREET_B)}",
                   headers=headers["street_a"]).status_code == 404
    whole = "121.49,29.79,121.53,29.82"
    refs = {f["properties"]["ref"] for f in api.get(f"/collections/compounds/items?bbox={whole}",
                                                     headers=headers["street_a"]).json()["features"]}
    assert refs == {"CA-1", "CA-2"}
    coll = api.get("/collections/compounds", headers=headers["street_a"]).json()
    assert coll["extent"]["spatial"]["bbox"][0][2] < 121.51  # the extent does not reveal street B


def test_tiles_are_scoped_by_jurisdiction_for_every_role(api, headers, district):
    # the z=12 tile holding both streets (121.50-121.52E, 29.80-29.81N)
    url = "/tiles/buildings/12/3430/1692.mvt"
    for role in ROLES:
        response = api.get(url, headers=headers[role])
        assert response.status_code == 200, (role, response.status_code)
        refs = {f["properties"]["ref"] for f in mapbox_vector_tile.decode(response.content)["buildings"]["features"]}
        if role == "street_a":
            assert refs == {f"BA-{i}" for i in range(5)}
        elif role == "street_b":
            assert refs == {"BB-0"}
        else:
            assert refs == {f"BA-{i}" for i in range(5)} | {"BB-0"}


EDIT_EXPECTED = {"admin": 201, "planner": 201, "street_a": 201, "street_b": 403, "traffic": 403,
                 "demolition": 403, "fire": 403, "viewer": 403}


def test_edit_rights_per_role(api, headers, district):
    for role in ROLES:
        response = api.post("/collections/buildings/items", json=_building_in_a(f"M-{role}"),  # refs are unique
                            headers=headers[role])
        assert response.status_code == EDIT_EXPECTED[role], (role, response.text)
    parking = {"type": "Feature", "properties": {"kind": "vehicle"},
               "geometry": {"type": "Point", "coordinates": [121.5025, 29.8025]}}
    assert api.post("/collections/parking/items", json=parking, headers=headers["traffic"]).status_code == 201
    assert api.post("/collections/parking/items", json=parking, headers=headers["viewer"]).status_code == 403


def _wait(api, h, run_id):
    for _ in range(600):
        doc = api.get(f"/checks/runs/{run_id}", headers=h).json()
        if doc["status"] not in ("queued", "running"):
            return doc
        time.sleep(0.1)
    raise AssertionError("check run did not finish")


CHECK_EXPECTED = {"admin": 202, "planner": 202, "street_a": 202, "street_b": 404, "traffic": 403,
                  "demolition": 403, "fire": 202, "viewer": 403}


def test_check_run_rights_per_role(api, headers, district):
    for role in ROLES:
        response = api.post("/checks/runs", json={"scope": "street", "street": STREET_A}, headers=headers[role])
        assert response.status_code == CHECK_EXPECTED[role], (role, response.text)
        if response.status_code == 202:
            _wait(api, headers[role], response.json()["id"])
    assert api.post("/checks/runs", json={"scope": "all"}, headers=headers["street_a"]).status_code == 403
    runs_a = api.get("/checks/runs", headers=headers["street_b"]).json()["runs"]
    assert runs_a == []  # street B sees no runs of street A


#: street offices assign (admins may do anything); the fire brigade verifies, it does not assign
TRANSITION_EXPECTED = {"admin": 200, "planner": 403, "street_a": 200, "street_b": 404, "traffic": 403,
                       "demolition": 403, "fire": 403, "viewer": 403}
ASSIGNMENT = {"to": "assigned", "department": "交警/公安", "unit": "某物业公司", "deadline": "2099-12-31"}


def test_hazard_transition_rights_per_role(api, headers, district, db):
    hid = district.id("hazards", "k-a")  # in street A
    for role in ROLES:
        with db.begin() as conn:
            conn.execute(text("UPDATE hazards SET status = 'open' WHERE id = :i"), {"i": hid})
        response = api.post(f"/hazards/{hid}/transition", json=ASSIGNMENT, headers=headers[role])
        assert response.status_code == TRANSITION_EXPECTED[role], (role, response.text)
    for role, code in (("street_a", 403), ("viewer", 403), ("fire", 200)):
        response = api.post(f"/hazards/{hid}/transition", json={"to": "dismissed", "note": "误报 false positive"},
                            headers=headers[role])
        assert response.status_code == code, role


def test_only_admins_manage_users(api, headers):
    for role in ROLES:
        assert api.get("/users", headers=headers[role]).status_code == (200 if role == "admin" else 403), role
        new = {"username": f"u-{role}", "password": "long-password", "role": "viewer"}
        assert api.post("/users", json=new, headers=headers[role]).status_code == (
            201 if role == "admin" else 403), role


def test_concurrent_requests_share_one_token_lookup_when_the_cache_has_expired(headers, monkeypatch):
    calls = []
    real = auth.principal_for_token_async

    async def counted(token: str):
        calls.append(token)
        return await real(token)

    monkeypatch.setattr(auth, "principal_for_token_async", counted)
    token = headers["viewer"]["Authorization"].split()[1]
    auth.forget_tokens()

    async def burst() -> tuple[list, object]:
        try:
            found = await asyncio.gather(*(auth._shared_lookup(token) for _ in range(20)))
            return found, await auth._shared_lookup("fl_not-a-token")
        finally:
            await close_pools()  # the event loop's read pool ends with it

    found, unknown = asyncio.run(burst())
    assert calls == [token, "fl_not-a-token"] and {p.username for p in found} == {"viewer"}  # one lookup each
    assert unknown is None

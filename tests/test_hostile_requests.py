"""Hostile request inputs get a structured 400 (never a 500), and the keep-alive connection stays usable."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
import uvicorn
from db_support import table_counts
from sqlalchemy import text

from api.app import create_app

pytestmark = pytest.mark.db

DEEP = b"[" * 1000 + b"]" * 1000
SURROGATE = b'{"username":"\\ud800","password":"xx"}'


def _deep_object(levels: int) -> bytes:
    return b'{"a":' * levels + b"1" + b"}" * levels


def _building(**props) -> dict:
    x, y = 121.5020, 29.8020
    ring = [[x, y], [x + 0.0002, y], [x + 0.0002, y + 0.0002], [x, y + 0.0002], [x, y]]
    return {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
            "properties": {"ref": "NEW-1", "height_m": 12.5, **props}}


NUL_URLS = ["/map/streets/330212%00001", "/map/compounds/CA%00-1", "/map?street=%00", "/map/traffic?street=a%00",
            "/collections/buildings/items?ref=%00", "/collections/buildings/items/1%00",
            "/collections/buildings/items?bbox=1,2,3%00,4", "/map/streets/330212001?f=%00"]


@pytest.mark.parametrize("url", NUL_URLS)
def test_nul_bytes_in_routes_are_client_errors(api, headers, district, url):
    response = api.get(url, headers=headers["admin"])
    assert 400 <= response.status_code < 500, (url, response.status_code, response.text[:300])


def test_lone_surrogate_in_login_is_400_naming_the_field(api, headers):
    body = b'{"username": "admin\\ud800", "password": "x"}'
    response = api.post("/auth/login", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "InvalidText"
    assert response.json()["field"] == "username"


def test_nul_in_login_form_is_400(api, headers):
    response = api.post("/auth/login", content=b"username=ad%00min&password=x",
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400, response.text


@pytest.mark.parametrize("body", [DEEP, _deep_object(1000), _deep_object(33)])
def test_deeply_nested_login_is_400(api, body):
    response = api.post("/auth/login", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert "FIRELANE_LIMIT_JSON_DEPTH" in response.json()["description"]


def test_hostile_feature_bodies_are_400_and_write_nothing(api, headers, district, db):
    before = table_counts(db)
    post = "/collections/buildings/items"
    auth = {**headers["planner"], "Content-Type": "application/geo+json"}
    surrogate = json.dumps(_building()).replace('"height_m"', '"extra": {"note": "x\\udc00y"}, "height_m"')
    response = api.post(post, content=surrogate.encode(), headers=auth)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == "properties.extra.note"
    for body in (DEEP, _deep_object(1000)):
        response = api.post(post, content=body, headers=auth)
        assert response.status_code == 400 and response.json()["code"] == "NestingTooDeep", response.text
    many = _building(extra={f"k{i}": i for i in range(2000)})
    response = api.post(post, json=many, headers=headers["planner"])
    assert response.status_code == 400, response.text
    assert "FIRELANE_LIMIT_EXTRA_KEYS" in response.text and "2,000" in response.text
    nul = _building(extra={"note": "a\x00b"})
    response = api.post(post, json=nul, headers=headers["planner"])
    assert response.status_code == 400, response.text
    # the text rules reach into `extra`: its strings are free text and its keys identifiers, at any depth
    for extra, named in (({"note": {"detail": ["ok", "evil\u202egnp"]}}, "note.detail[1]: "),
                         ({"ke\u200by": 1}, "'ke\\u200by' (键 key)")):
        response = api.post(post, json=_building(extra=extra), headers=headers["planner"])
        assert response.status_code == 400, response.text
        assert any(p.startswith(f"extra: {named}") for p in response.json()["problems"]), response.text
    assert table_counts(db) == before


def test_hostile_patches_are_400(api, headers, district, db):
    fid = district.id("buildings", "BA-0")
    url = f"/collections/buildings/items/{fid}"
    auth = {**headers["planner"], "If-Match": "*", "Content-Type": "application/merge-patch+json"}
    for body in (DEEP, _deep_object(1000), b'{"properties": {"name": "\\ud800"}}'):
        response = api.patch(url, content=body, headers=auth)
        assert response.status_code == 400, response.text
    response = api.patch(url, content=json.dumps({"properties": {"extra": {"n": "a\u2066b"}}}).encode(), headers=auth)
    assert response.status_code == 400 and "U+2066" in response.text, response.text
    # patches of 150 keys each may not add up past the limit either
    for start in (0, 150):
        changes = {"properties": {"extra": {f"k{i}": i for i in range(start, start + 150)}}}
        response = api.patch(url, content=json.dumps(changes).encode(), headers=auth)
    assert response.status_code == 400 and "FIRELANE_LIMIT_EXTRA_KEYS" in response.text


def _serve(app, port: int):
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    return server, thread


def _exchange(sock: socket.socket, request: bytes) -> tuple[int, bytes]:
    """Send one HTTP/1.1 request and read one response (Content-Length framed) off the same socket."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed")
        rest += chunk
    return status, head


def test_keep_alive_connection_survives_hostile_requests(db, district):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server, thread = _serve(create_app(), port)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            host = f"Host: 127.0.0.1:{port}\r\n".encode()
            bad = [
                b"GET /map/streets/a%00b HTTP/1.1\r\n" + host + b"\r\n",
                b"POST /auth/login HTTP/1.1\r\n" + host + b"Content-Type: application/json\r\nContent-Length: "
                + str(len(DEEP)).encode() + b"\r\n\r\n" + DEEP,
                b"POST /auth/login HTTP/1.1\r\n" + host + b"Content-Type: application/json\r\nContent-Length: "
                + str(len(SURROGATE)).encode() + b"\r\n\r\n" + SURROGATE,
            ]
            for request in bad:
                status, head = _exchange(sock, request)
                assert 400 <= status < 500, head
                assert b"connection: close" not in head.lower()
            status, _ = _exchange(sock, b"GET /healthz HTTP/1.1\r\n" + host + b"\r\n")
            assert status == 200
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_model_bodies_with_lone_surrogates_or_deep_nesting_are_400(api, headers):
    """Routes whose bodies FastAPI parses (users, hazards) get the same answers through the one error table."""
    auth = {**headers["admin"], "Content-Type": "application/json"}
    body = b'{"username": "u-\\ud800", "password": "a-long-password", "role": "viewer"}'
    response = api.post("/users", content=body, headers=auth)
    assert response.status_code == 400, response.text
    response = api.post("/users", content=_deep_object(5000), headers=auth)
    assert 400 <= response.status_code < 500, response.text


def test_a_street_without_compounds_has_a_page(api, headers, district, db):
    """Found by bench_soak: an empty compounds frame (int columns) made the street page a 500."""
    with db.begin() as conn:
        conn.execute(text("INSERT INTO streets (ref, name, geom) VALUES ('330212099', '空街道', "
                          "ST_Multi(ST_MakeEnvelope(121.9, 29.9, 121.95, 29.95, 4490)))"))
    response = api.get("/map/streets/330212099", headers=headers["admin"])
    assert response.status_code == 200, response.text[:300]

"""Map pages in a real headless Chromium against a real uvicorn server and the real PostGIS.

The dataset is hand-made: two streets, three compounds (one with a hostile name), lanes, hydrants, entrances,
parking, illegal structures and ledger hazards. Every page must load with no request leaving 127.0.0.1.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlparse

import geopandas as gpd
import pytest
import shapely
from shapely.geometry import Point, box

pytestmark = [pytest.mark.db, pytest.mark.web]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
HOSTILE = "<img src=x onerror=alert(1)>"
S1, S2 = "330212001", "330212002"
X0, Y0 = 121.5400, 29.8100  # south-west corner of the test area (Yinzhou)
M = 1e-5  # ~1 m in degrees here (0.97 m east-west)

PASSWORDS = {"admin1": "admin-pass-123", "planner1": "planner-pass-123", "office1": "office-pass-123",
             "office2": "office-pass-456"}


def rect(x: float, y: float, w: float, h: float) -> shapely.MultiPolygon:
    """A rectangle `w` x `h` metres whose south-west corner is `x`, `y` metres from the test origin."""
    return shapely.MultiPolygon([box(X0 + x * M, Y0 + y * M, X0 + (x + w) * M, Y0 + (y + h) * M)])


def pt(x: float, y: float) -> Point:
    return Point(X0 + x * M, Y0 + y * M)


def frame(rows: list[dict]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=4490)


def load_dataset(engine) -> None:
    """Write the hand-made district through gis.store (the same path imports use)."""
    from gis.db import transaction
    from gis.store import write_frame

    layers = {
        "streets": [
            {"ref": S1, "name": "下应街道", "district_code": "330212", "source": "Vonng/adcode (derived)",
             "geometry": rect(0, 0, 600, 600)},
            {"ref": S2, "name": "钟公庙街道", "district_code": "330212", "source": "Vonng/adcode (derived)",
             "geometry": rect(600, 0, 600, 600)},
        ],
        "compounds": [
            {"ref": "YZ-001", "name": HOSTILE, "address": "<b>一号路</b>", "households": 320, "street_code": S1,
             "geometry": rect(50, 50, 200, 200)},
            {"ref": "YZ-002", "name": "阳光花园", "address": "二号路 8 号", "households": 180, "street_code": S1,
             "geometry": rect(300, 50, 200, 200)},
            {"ref": "YZ-003", "name": "月湖小区", "address": "三号路", "households": 90, "street_code": S2,
             "geometry": rect(700, 50, 200, 200)},
        ],
        "buildings": [
            {"ref": "B1", "name": HOSTILE, "height_m": 33.0, "floors": 11, "geometry": rect(80, 150, 40, 15)},
            {"ref": "B2", "name": "2幢", "height_m": 18.0, "floors": 6, "geometry": rect(330, 150, 40, 15)},
            {"ref": "B3", "name": "3幢", "height_m": 18.0, "floors": 6, "geometry": rect(730, 150, 40, 15)},
        ],
        "fire_lanes": [
            {"ref": "L1", "kind": "through", "design_width_m": 4.0, "geometry": rect(50, 120, 200, 5)},
            {"ref": "L2", "kind": "through", "design_width_m": 4.0, "geometry": rect(300, 120, 200, 5)},
        ],
        "hydrants": [
            {"ref": "H1", "status": "in_service", "geometry": pt(150, 110)},
            {"ref": "H2", "status": "in_service", "geometry": pt(420, 110)},
        ],
        "entrances": [
            {"ref": "E1", "kind": "vehicle", "width_m": 6.0, "geometry": pt(50, 122)},
            {"ref": "E2", "kind": "vehicle", "width_m": 6.0, "geometry": pt(300, 122)},
        ],
        "parking": [
            {"ref": "P1", "kind": "vehicle", "geometry": rect(150.5, 108, 4.8, 1.8)},
            {"ref": "P2", "kind": "stall", "geometry": rect(40, 118, 4.8, 2.4)},
            {"ref": "P3", "kind": "stall", "geometry": rect(320, 60, 4.8, 2.4)},
        ],
        "illegal_structures": [
            {"ref": "IS-1", "kind": "shed", "height_m": 3.0, "geometry": rect(100, 121, 6, 4)},
            {"ref": "IS-2", "kind": "colour_steel", "height_m": 3.5, "geometry": rect(340, 170, 12, 10)},
            {"ref": "IS-3", "kind": "shed", "height_m": 2.5, "geometry": rect(760, 170, 3, 3)},
        ],
    }

    def hazard(rule: str, layer: str, ref: str, geom, *, status: str = "open", severity: float = 3.0,
               others: tuple[str, ...] = (), measured: float | None = None, required: float | None = None,
               department: str = "物业/住建", message: str = "") -> dict:
        from gis.checks.catalog import RULES

        r = RULES[rule]
        return {"key": f"{rule}|{layer}|{ref}|{'+'.join(others)}", "rule": rule, "clause": r.clause,
                "verdict": "fail", "strength": r.strength, "severity": severity, "status": status,
                "subject_layer": layer, "subject_ref": ref, "other_refs": list(others), "measured": measured,
                "required_value": required, "unit": r.unit, "message_zh": message or r.title_zh,
                "message_en": r.title_en, "department": department, "geometry": geom}

    hazards = [
        hazard("LANE-CLEAR", "fire_lanes", "L1", pt(103, 122), severity=8.0, measured=1.2, required=4.0,
               others=("IS-1",), message=HOSTILE),
        hazard("STRUCT-ON-LANE", "illegal_structures", "IS-1", pt(103, 122), severity=6.0,
               department="三改一拆办/综合执法"),
        hazard("SEP-ILLEGAL", "illegal_structures", "IS-1", pt(103, 122), severity=5.0, measured=2.0, required=6.0,
               others=("B1",), department="三改一拆办/综合执法"),
        hazard("SEP-ILLEGAL", "illegal_structures", "IS-2", pt(345, 175), severity=5.0, measured=3.0, required=6.0,
               others=("B2",), department="三改一拆办/综合执法"),
        hazard("PARK-HYDRANT", "parking", "P1", pt(153, 109), severity=4.0, measured=0.5, required=5.0,
               others=("H1",), department="交警/公安"),
        hazard("PARK-ENTRANCE", "parking", "P2", pt(42, 119), severity=4.0, measured=2.0, required=4.0,
               others=("E1",), department="交警/公安"),
        hazard("HYD-ACCESS", "hydrants", "H1", pt(150, 110), severity=4.0, others=("P1",)),
        hazard("AERIAL-SIZE", "aerial_areas", "A-closed", pt(200, 200), status="verified", severity=3.0),
        hazard("LANE-WIDTH", "fire_lanes", "L3", pt(800, 122), severity=3.0, measured=3.0, required=4.0),
    ]
    with transaction(user="test-loader", engine=engine) as conn:
        for name, rows in layers.items():
            write_frame(conn, name, frame(rows), user="test-loader")
        write_frame(conn, "hazards", frame(hazards), user="test-loader")


def make_users() -> None:
    from api.users import create_user

    create_user("admin1", PASSWORDS["admin1"], role="admin")
    create_user("planner1", PASSWORDS["planner1"], role="planner")
    create_user("office1", PASSWORDS["office1"], role="street_office", street_codes=[S1])
    create_user("office2", PASSWORDS["office2"], role="street_office", street_codes=[S2])


def build_app():
    """The service's FastAPI app (api.app.create_app), which serves the pages through api.web_routes."""
    from api.app import create_app

    return create_app()


@pytest.fixture
def site(db) -> Iterator[str]:
    """A real uvicorn server on 127.0.0.1 (random port, background thread) over the loaded test district."""
    import uvicorn

    from api.auth import forget_tokens, login_limiter

    load_dataset(db)
    make_users()
    forget_tokens()
    login_limiter.clear()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(build_app(), host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


#: clicks every GeoJSON feature of the page's map (a real Leaflet click event, propagated to the layer that owns
#: the popup) and returns the text of each popup that opened
POPUP_TEXTS_JS = """() => {
    const map = Object.values(window).find(v => v instanceof L.Map);
    const texts = [];
    map.eachLayer(l => {
        if (!l.feature) { return; }
        const at = l.getBounds ? l.getBounds().getCenter() : l.getLatLng();
        l.fire('click', {latlng: at}, true);
        const box = document.querySelector('.leaflet-popup-content');
        if (box) { texts.push(box.textContent + (box.querySelector('img') ? ' [IMG ELEMENT]' : '')); }
    });
    return texts;
}"""


class Session:
    """A browser context signed in as one user, recording every request and dialog."""

    def __init__(self, browser, base: str, user: str) -> None:
        self.base = base
        self.context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.context.on("request", lambda r: self.requests.append(r.url))
        self.page = self.context.new_page()
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        resp = self.context.request.post(f"{base}/auth/login",
                                         data=json.dumps({"username": user, "password": PASSWORDS[user]}),
                                         headers={"Content-Type": "application/json"})
        assert resp.ok, resp.text()

    def goto(self, path: str):
        resp = self.page.goto(self.base + path, wait_until="networkidle")
        return resp

    def foreign_requests(self) -> list[str]:
        return [u for u in self.requests if urlparse(u).hostname != "127.0.0.1" and not u.startswith(("data:", "blob:"))]

    def close(self) -> None:
        self.context.close()


def test_login_page_signs_in_and_returns_to_the_page_asked_for(site, browser):
    from playwright.sync_api import expect

    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    requests: list[str] = []
    context.on("request", lambda r: requests.append(r.url))
    page.goto(f"{site}/map/streets/{S1}", wait_until="networkidle")
    assert urlparse(page.url).path == "/login"
    assert "登录" in page.content() and "Sign in" in page.content()
    page.fill("#fl-username", "office1")
    page.fill("#fl-password", "wrong-password")
    page.click("button[type=submit]")
    expect(page.locator("#fl-login-error")).not_to_be_empty()
    assert urlparse(page.url).path == "/login"
    page.fill("#fl-password", PASSWORDS["office1"])
    page.click("button[type=submit]")
    page.wait_for_url(f"{site}/map/streets/{S1}")
    assert page.locator("#fl-ranking").count() == 1
    assert all(urlparse(u).hostname == "127.0.0.1" for u in requests)
    context.close()


def test_street_page_shows_heatmap_and_ranked_compounds(site, browser, shots):
    s = Session(browser, site, "office1")
    resp = s.goto(f"/map/streets/{S1}")
    assert resp.status == 200
    page = s.page
    assert page.locator("canvas.leaflet-heatmap-layer").count() == 1
    rows = page.locator("#fl-ranking tbody tr")
    assert rows.count() == 2
    # YZ-001 has 5 open hazards in the ledger (the closed one does not count), YZ-002 one; the street 7
    # (PARK-ENTRANCE's stall stands outside any compound)
    first = rows.nth(0)
    assert first.get_attribute("data-ref") == "YZ-001"
    assert first.locator("td").nth(2).inner_text().strip() == "5"
    assert rows.nth(1).get_attribute("data-ref") == "YZ-002"
    assert page.locator("#fl-open-count").inner_text() == "7"
    link = first.locator("a")
    assert link.get_attribute("href") == "/map/compounds/YZ-001"
    assert HOSTILE in link.inner_text()  # shown as text, not parsed as an element
    assert page.locator("#fl-ranking img").count() == 0
    assert "Vonng/adcode, CC BY 4.0" in page.locator(".leaflet-control-attribution").inner_text()
    page.screenshot(path=str(shots / "street.png"))
    assert s.foreign_requests() == []
    assert s.dialogs == [] and s.errors == []
    s.close()


def test_hostile_names_in_popups_are_text(site, browser, shots):
    s = Session(browser, site, "admin1")
    assert s.goto("/map/compounds/YZ-001").status == 200
    page = s.page
    # click every feature of the compound file (buildings carry the hostile name, the hazard message too)
    texts = page.evaluate(POPUP_TEXTS_JS)
    assert any("<img src=x onerror=alert(1)>" in t for t in texts), texts
    assert not any("[IMG ELEMENT]" in t for t in texts), texts
    assert page.locator(".leaflet-popup-content img").count() == 0
    assert page.locator("#fl-panel img, .leaflet-tooltip img").count() == 0
    assert "<img" in page.locator("h1").inner_text()
    page.screenshot(path=str(shots / "compound.png"))
    # the street page popup of the compound outline, opened by a click on the map
    assert s.goto(f"/map/streets/{S1}").status == 200
    texts = page.evaluate(POPUP_TEXTS_JS)
    assert any("<img src=x onerror=alert(1)>" in t for t in texts), texts
    assert not any("[IMG ELEMENT]" in t for t in texts), texts
    assert page.locator(".leaflet-popup-content img").count() == 0
    page.wait_for_timeout(200)
    assert s.dialogs == [], s.dialogs
    assert s.foreign_requests() == []
    s.close()


def test_street_office_sees_only_its_streets(site, browser):
    s = Session(browser, site, "office2")
    assert s.goto(f"/map/streets/{S1}").status == 403
    assert s.goto("/map/compounds/YZ-001").status == 404
    assert s.goto(f"/map/streets/{S2}").status == 200
    assert s.page.locator("#fl-ranking tbody tr").count() == 1
    assert s.goto("/map/demolition").status == 200
    assert s.page.locator("#fl-structures tbody tr").count() == 1  # only the no-findings row
    assert "No illegal structures" in s.page.locator("#fl-structures").inner_text()
    assert s.goto("/map/traffic").status == 200
    assert s.page.locator("#fl-conflict-count").inner_text() == "0"  # both conflicts lie in the other street
    assert s.goto("/map").status == 200
    assert s.page.locator("#fl-streets tbody tr").count() == 1
    s.close()


def test_traffic_page_shows_parking_conflicts(site, browser, shots):
    s = Session(browser, site, "admin1")
    assert s.goto("/map/traffic").status == 200
    page = s.page
    rows = page.locator("#fl-conflicts tbody tr")
    assert rows.count() == 2
    table = page.locator("#fl-conflicts").inner_text()
    assert "PARK-HYDRANT" in table and "PARK-ENTRANCE" in table and "H1" in table and "E1" in table
    assert "HYD-ACCESS" not in table
    assert page.locator(".marker-cluster, path.leaflet-interactive").count() > 0
    # conflicting parking drawn as its own layer, named in the layer control
    assert "冲突停车" in page.locator(".leaflet-control-layers").inner_text()
    page.screenshot(path=str(shots / "traffic.png"))
    assert s.foreign_requests() == []
    s.close()


def test_demolition_page_ranks_illegal_structures(site, browser, shots):
    s = Session(browser, site, "admin1")
    assert s.goto("/map/demolition").status == 200
    rows = s.page.locator("#fl-structures tbody tr")
    assert rows.count() == 2  # IS-3 has no finding
    assert "IS-1" in rows.nth(0).inner_text() and "STRUCT-ON-LANE" in rows.nth(0).inner_text()
    assert "IS-2" in rows.nth(1).inner_text()
    # areas in m² from the local metric CRS: 12 x 10 "metres" of the test grid are 11.6 x 11.1 m here
    areas = [float(rows.nth(i).locator("td.num").inner_text()) for i in range(2)]
    assert areas[0] == pytest.approx(6 * 4 * 0.967 * 1.108, rel=0.02)
    assert areas[1] == pytest.approx(12 * 10 * 0.967 * 1.108, rel=0.02)
    s.page.screenshot(path=str(shots / "demolition.png"))
    assert s.foreign_requests() == []
    s.close()


def test_draw_page_saves_a_lane_as_the_planner(site, browser, shots, db):
    from playwright.sync_api import expect
    from sqlalchemy import text

    s = Session(browser, site, "planner1")
    assert s.goto("/map/draw").status == 200
    page = s.page
    page.click(".leaflet-draw-draw-polygon")
    box_ = page.locator(".folium-map").bounding_box()
    cx, cy = box_["x"] + box_["width"] / 2, box_["y"] + box_["height"] / 2
    corners = [(-60, -20), (60, -20), (60, 20), (-60, 20)]
    for dx, dy in corners:
        page.mouse.click(cx + dx, cy + dy)
        page.wait_for_timeout(150)
    page.mouse.click(cx + corners[0][0], cy + corners[0][1])  # close the ring on the first vertex
    expect(page.locator("#fl-save")).to_be_enabled()
    page.fill("#fl-ref", "DRAWN-1")
    page.fill("#fl-name", "新画车道")
    page.select_option("#fl-kind", "through")
    page.fill("#fl-width", "4.5")
    page.click("#fl-save")
    expect(page.locator("#fl-feedback")).not_to_be_empty(timeout=20000)
    feedback = page.locator("#fl-feedback").inner_text()
    assert "已保存 Saved" in feedback, feedback
    # the API's instant rule feedback is listed: an isolated lane touches no entrance or city road
    assert "Rule feedback" in feedback and "LANE-CONNECT" in feedback, feedback
    page.screenshot(path=str(shots / "draw.png"))
    with db.connect() as conn:
        row = conn.execute(text(
            "SELECT updated_by, kind, design_width_m, ST_NumPoints(ST_ExteriorRing(ST_GeometryN(geom, 1))) AS n, "
            "ST_Area(geom::geography) AS area FROM fire_lanes WHERE ref = 'DRAWN-1'")).one()
    assert row.updated_by == "planner1"
    assert row.kind == "through" and row.design_width_m == pytest.approx(4.5)
    assert row.n == 5 and row.area > 10
    # the buildings context layer came through the API's vector tiles, not inline
    assert any("/tiles/buildings/" in u and u.endswith(".mvt") for u in s.requests)
    assert s.foreign_requests() == []
    assert s.dialogs == []
    s.close()


def test_draw_page_unshifts_gcj02_drawings_like_gis_coords(site, browser):
    """Under an AMap basemap a drawn polygon is in GCJ-02: the page converts it back before saving."""
    from gis.coords import wgs84_to_gcj02

    s = Session(browser, site, "planner1")
    assert s.goto("/map/draw").status == 200
    for lon, lat in ((121.55, 29.82), (119.65, 25.93), (121.5437, 29.8669)):
        gcj = [float(v) for v in wgs84_to_gcj02(lon, lat)]
        back = s.page.evaluate("p => window.firelaneGcj02ToWgs84(p)", gcj)
        assert back == pytest.approx([lon, lat], abs=2e-7)  # ~2 cm
    s.close()


def test_pages_need_a_signed_in_user(site):
    import httpx

    for path in (f"/map/streets/{S1}", "/map/compounds/YZ-001", "/map/traffic", "/map/demolition", "/map/draw"):
        r = httpx.get(site + path, follow_redirects=False)
        assert r.status_code == 303, path
        assert r.headers["location"] == "/login?next=" + quote(path, safe="")


def test_pages_have_no_cdn_urls(site):
    import httpx

    with httpx.Client(base_url=site) as client:
        client.post("/auth/login", json={"username": "admin1", "password": PASSWORDS["admin1"]}).raise_for_status()
        for path in (f"/map/streets/{S1}", "/map/compounds/YZ-001", "/map/traffic", "/map/demolition", "/map/draw",
                     "/map", "/login"):
            r = client.get(path)
            html = r.text
            # a second line of defence: the browser may contact only this server
            assert "default-src 'self'" in r.headers["content-security-policy"], path
            assert "connect-src 'self';" in r.headers["content-security-policy"], path
            assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html, path
            assert "cdn" not in html.lower(), path

"""Map pages in a real headless Chromium against a real uvicorn server and the real PostGIS.

The dataset is hand-made: two streets, three compounds (one with a hostile name), lanes, hydrants, entrances,
parking, illegal structures and ledger hazards. Every page must load with no request leaving 127.0.0.1.
"""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import quote, urlparse

import httpx
import pytest
from openpyxl import load_workbook
from playwright.sync_api import expect
from sqlalchemy import text
from web_support import FORMULA, HOSTILE, PASSWORDS, S1, S2, X0, Y0, M

import web.basemap
from gis.coords import wgs84_to_bd09, wgs84_to_gcj02
from web.settings import map_settings

pytestmark = [pytest.mark.db, pytest.mark.web]

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / "pages"


@pytest.fixture(scope="module")
def shots() -> Path:
    """Screenshots at 1400 and 390 px wide go to artifacts/pages/ (git-ignored), to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def screenshot(page, shots: Path, name: str) -> None:
    """`name`-1400.png of the page as it is, and `name`-390.png of the same page on a phone-sized window."""
    size = page.viewport_size
    page.screenshot(path=str(shots / f"{name}-1400.png"))
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(300)
    page.screenshot(path=str(shots / f"{name}-390.png"))
    page.set_viewport_size(size)


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

    def __init__(self, browser, base: str, user: str, *, width: int = 1400, height: int = 900) -> None:
        self.base = base
        self.context = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN",
                                           accept_downloads=True)
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.context.on("request", lambda r: self.requests.append(r.url))
        self.page = self.context.new_page()

        def on_dialog(d) -> None:
            self.dialogs.append(d.message)
            d.dismiss()

        self.page.on("dialog", on_dialog)
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



#: every map page, as the admin sees it
PAGES = {"street": f"/map/streets/{S1}", "compound": "/map/compounds/YZ-002", "traffic": "/map/traffic",
         "demolition": "/map/demolition", "draw": "/map/draw", "home": "/map"}


def leaflet_map(page):
    return page.evaluate_handle("() => window.FIRELANE_MAP")


# --- 6. finding the way ------------------------------------------------------------------------------------------


def test_login_page_signs_in_and_returns_to_the_page_asked_for(site, browser, shots):
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    requests: list[str] = []
    context.on("request", lambda r: requests.append(r.url))
    page.goto(f"{site}/map/streets/{S1}", wait_until="networkidle")
    assert urlparse(page.url).path == "/login"
    assert "登录" in page.locator("h1").inner_text()
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
    # the same form in English
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    page.goto(f"{site}/login?lang=en", wait_until="networkidle")
    assert "Sign in" in page.locator("h1").inner_text() and "登录" not in page.locator("main").inner_text()
    screenshot(page, shots, "login")
    context.close()


def test_a_browser_at_the_root_lands_on_the_map_home_and_api_clients_get_the_landing_page(site, browser):
    with httpx.Client(base_url=site) as client:
        r = client.get("/", headers={"Accept": "text/html,application/xhtml+xml"}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/map"
        assert client.get("/", headers={"Accept": "application/json"}).json()["links"]
        assert client.get("/?f=json").json()["links"]
        assert client.get("/").json()["links"]  # no Accept at all (GDAL, curl): JSON
        assert "<html" in client.get("/?f=html").text  # the OGC landing page as HTML still exists
        # one login form: the API's /auth/login page sends browsers to /login
        r = client.get("/auth/login?next=/map/traffic", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fmap%2Ftraffic"
    s = Session(browser, site, "office1")
    s.page.goto(site + "/", wait_until="networkidle")
    assert urlparse(s.page.url).path == "/map"
    links = s.page.locator("#fl-nav a")
    assert links.count() >= 3
    s.close()


def test_error_pages_have_the_app_look_the_user_and_a_way_home(site, browser, shots):
    s = Session(browser, site, "office2")
    resp = s.goto(f"/map/streets/{S1}")
    assert resp.status == 403
    page = s.page
    assert page.locator("header.fl-top").count() == 1
    assert "office2" in page.locator(".fl-user").inner_text()
    assert "登录" not in page.locator("header.fl-top").inner_text()  # signed in: no "Login" link
    assert page.locator("#fl-home").get_attribute("href") == "/map"
    screenshot(page, shots, "error-403")
    assert s.goto("/map/nowhere").status == 404
    assert page.locator("#fl-home").count() == 1 and "office2" in page.locator(".fl-user").inner_text()
    assert s.goto("/collections/nowhere?lang=en").status == 404
    assert "Not found" in page.locator("h1").inner_text()
    s.close()
    # not signed in: the error page offers the one login form
    context = browser.new_context()
    page = context.new_page()
    resp = page.goto(site + "/collections", wait_until="networkidle")
    assert resp.status == 401 and page.locator("form#fl-login").count() == 1
    context.close()


def test_the_nav_shows_only_the_pages_a_role_may_open(site, browser):
    for user, allowed in (("viewer1", False), ("traffic1", False), ("planner1", True), ("office1", True)):
        s = Session(browser, site, user)
        assert s.goto("/map").status == 200
        hrefs = [a.get_attribute("href") for a in s.page.locator("#fl-nav a").all()]
        assert ("/map/draw" in hrefs) is allowed, (user, hrefs)
        for href in hrefs:  # every link shown opens
            assert s.goto(href).status == 200, (user, href)
        s.close()


# --- 7. basemaps ---------------------------------------------------------------------------------------------------


def test_every_map_has_a_basemap_switcher_and_a_missing_key_disables_only_that_basemap(site, browser, monkeypatch,
                                                                                          caplog):
    monkeypatch.setenv("FIRELANE_MAP_BASEMAP", "tianditu")  # no FIRELANE_MAP_TIANDITU_KEY
    monkeypatch.delenv("FIRELANE_MAP_TIANDITU_KEY", raising=False)
    map_settings.cache_clear()

    web.basemap._warned.clear()
    try:
        s = Session(browser, site, "admin1")
        for name, path in PAGES.items():
            resp = s.goto(path)
            assert resp.status == 200, name
            if name == "home":
                continue
            options = s.page.locator("#fl-basemap option")
            values = [o.get_attribute("value") for o in options.all()]
            assert values == ["none", "osm", "amap"], (name, values)  # Tianditu left out: no key
        assert s.context.request.get(site + "/login").status == 200
        assert any("TIANDITU_KEY" in r.getMessage() for r in caplog.records)
        assert s.foreign_requests() == []  # the default fell back to no basemap
        s.close()
    finally:
        map_settings.cache_clear()


def test_amap_shifts_every_layer_vector_tiles_included(site, browser, db):
    s = Session(browser, site, "planner1")
    s.context.route("**/*autonavi.com/**", lambda route: route.abort())
    s.goto("/map/draw")
    with s.page.expect_navigation():
        s.page.select_option("#fl-basemap", "amap")
    s.page.wait_for_load_state("networkidle")
    assert s.page.evaluate("() => window.FIRELANE.gcj02") is True
    assert s.page.locator("#fl-basemap").input_value() == "amap"
    # a vector tile is drawn moved by the GCJ-02 offset at its centre
    moved = s.page.evaluate("""() => {
        const map = window.FIRELANE_MAP;
        let grid = null;
        map.eachLayer(l => { if (L.VectorGrid && l instanceof L.VectorGrid && l._tiles && Object.keys(l._tiles).length) { grid = l; } });
        const key = Object.keys(grid._tiles)[0];
        const coords = grid._tiles[key].coords;
        const plain = coords.scaleBy(grid.getTileSize()).subtract(grid._level.origin);
        const pos = grid._getTilePos(coords);
        const size = grid.getTileSize();
        const centre = map.unproject(coords.scaleBy(size).add(size.divideBy(2)), coords.z);
        return {dx: pos.x - plain.x, dy: pos.y - plain.y, lat: centre.lat, lng: centre.lng, z: coords.z};
    }""")
    glon, glat = wgs84_to_gcj02(moved["lng"], moved["lat"])
    metres_east = (glon - moved["lng"]) * 111320 * 0.8675  # cos(29.8°)
    m_per_px = 40075016.7 * 0.8675 / (256 * 2 ** moved["z"])
    assert moved["dx"] == pytest.approx(metres_east / m_per_px, abs=1.5)
    assert abs(moved["dx"]) > 5  # hundreds of metres: really shifted
    s.close()
    # inline layers too: the street page's compound outline sits at the GCJ-02 position
    s = Session(browser, site, "office1")
    s.context.route("**/*autonavi.com/**", lambda route: route.abort())
    s.context.add_cookies([{"name": "fl_basemap", "value": "amap", "url": site}])
    s.goto(f"/map/streets/{S1}")
    west = s.page.evaluate("""() => { let w = 999; window.FIRELANE_MAP.eachLayer(l => {
        if (l.feature && l.getBounds && l.feature.properties.fill) { w = Math.min(w, l.getBounds().getWest()); } });
        return w; }""")
    with db.connect() as conn:
        x0, y0 = conn.execute(text("SELECT ST_XMin(geom), ST_YMin(geom) FROM compounds WHERE ref='YZ-001'")).one()
    assert west == pytest.approx(wgs84_to_gcj02(x0, y0)[0], abs=2e-6)
    s.close()


# --- 8. scale ------------------------------------------------------------------------------------------------------


def test_large_layers_come_as_vector_tiles_not_inline(site, browser):
    s = Session(browser, site, "admin1")
    s.goto("/map/traffic")
    html = s.page.content()
    assert "P3" not in html  # a stall with no conflict is not inlined: it comes in the parking tiles
    s.page.evaluate("() => window.FIRELANE_MAP.setZoom(17)")
    s.page.wait_for_load_state("networkidle")
    for name in ("parking", "entrances", "hydrants"):
        assert any(f"/tiles/{name}/" in u for u in s.requests), name
    assert "vector tiles" in s.page.locator("#fl-panel").inner_text() or "矢量瓦片" in s.page.locator("#fl-panel").inner_text()
    s.goto("/map/draw")
    assert any("/tiles/fire_lanes/" in u for u in s.requests)
    assert s.page.locator("#fl-lane-count").inner_text() == "2"
    s.close()


# --- 9. phones -----------------------------------------------------------------------------------------------------


def test_every_page_is_usable_at_390_px(site, browser, shots):
    s = Session(browser, site, "admin1", width=390, height=844)
    for name, path in PAGES.items():
        assert s.goto(path).status == 200, name
        page = s.page
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390, name
        top = page.locator("header.fl-top").bounding_box()
        assert top["width"] == 390 and top["height"] <= 50, name
        assert not page.locator("#fl-nav").is_visible()
        page.click("#fl-menu-button")
        assert page.locator("#fl-nav").is_visible(), name
        page.click("#fl-menu-button")
        if name == "home":
            continue
        box = page.locator(".folium-map").bounding_box()
        assert box["width"] == 390 and box["height"] > 700, (name, box)
        panel = page.locator("#fl-panel").bounding_box()
        assert panel["y"] >= 844 - 1, name  # the drawer is closed: the map has the screen
        page.click("#fl-drawer-button")
        page.wait_for_timeout(400)
        panel = page.locator("#fl-panel").bounding_box()
        assert 200 < panel["y"] < 844 and panel["width"] == 390, (name, panel)
        page.screenshot(path=str(shots / f"{name}-390-drawer.png"))
    s.close()


# --- 5. language ---------------------------------------------------------------------------------------------------


def test_language_switch_reaches_labels_statuses_rules_drawing_tool_and_scale(site, browser, shots):
    s = Session(browser, site, "planner1")
    s.goto(f"/map/streets/{S1}")
    page = s.page
    panel = page.locator("#fl-panel").inner_text()
    assert "待整改" in panel and "消防车道被占用堵塞" in panel and "Open hazards" not in panel
    scale = page.locator(".leaflet-control-scale-line")
    assert scale.count() == 1 and scale.inner_text().strip().endswith("m")  # metric only (no ft/mi)
    page.click("#fl-lang")
    page.wait_for_load_state("networkidle")
    hazards = page.locator("#fl-hazards").inner_text()
    assert "Fire lane blocked" in hazards and "Open" in hazards and "待整改" not in hazards
    assert "Open hazards per compound" in page.locator("#fl-legend").inner_text()
    assert "closed this week" in page.locator(".fl-kpis").inner_text()
    # remembered (cookie): the next page is English too, the drawing tool keeps its English strings
    s.goto("/map/draw")
    assert page.evaluate("() => L.drawLocal.draw.toolbar.buttons.polygon") == "Draw a polygon"
    assert "Draw and edit" in page.locator("h1").inner_text()
    s.goto("/map/draw?lang=zh")
    assert page.evaluate("() => L.drawLocal.draw.toolbar.buttons.polygon") == "画多边形"
    assert "through" not in page.locator("#fl-kind").inner_text() and "贯通" in page.locator("#fl-kind").inner_text()
    # the compound file names its street, not its code
    s.goto("/map/compounds/YZ-002")
    assert page.locator("#fl-street-link").inner_text() == "下应街道"
    s.close()


# --- 1. street office ----------------------------------------------------------------------------------------------


def test_street_office_page_colours_clusters_filters_counts_and_data_gaps(site, browser, shots):
    s = Session(browser, site, "office1")
    assert s.goto(f"/map/streets/{S1}").status == 200
    page = s.page
    # counts: the cannot_judge finding is not an open failure; one hazard closed this week
    assert page.locator("#fl-open-count").inner_text() == "8"
    assert page.locator("#fl-closed-week").inner_text() == "1"
    assert page.locator("#fl-gap-count").inner_text() == "1"
    gaps = page.locator("#fl-gaps").inner_text()
    assert "SEP-BUILDINGS" in gaps and "B2" in gaps
    assert "SEP-BUILDINGS" not in page.locator("#fl-hazards").inner_text()
    assert page.locator("#fl-trend rect").count() == 16
    # compounds coloured by load, with a legend
    fills = page.evaluate("""() => { const out = {}; window.FIRELANE_MAP.eachLayer(l => {
        if (l.feature && l.feature.properties.fill) { out[l.feature.properties.tooltip] = l.options.fillColor; } });
        return out; }""")
    assert fills["阳光花园"] == "#f9d71c"  # 1 open hazard
    assert fills["&lt;img src=x onerror=alert(1)&gt;"] == "#f39c12"  # 5 (the tooltip is escaped HTML)
    assert page.locator("#fl-legend i").count() == 5
    # clustered markers and the list follow the filters
    assert page.locator(".marker-cluster, path.leaflet-interactive").count() > 0
    assert page.locator("#fl-hazards tbody tr").count() == 8
    page.select_option("#fl-f-family", "parking")
    assert page.locator("#fl-hazards tbody tr").count() == 3
    page.select_option("#fl-f-family", "")
    page.select_option("#fl-f-department", "三改一拆办/综合执法")
    assert page.locator("#fl-hazards tbody tr").count() == 3
    page.fill("#fl-f-severity", "5.5")
    assert page.locator("#fl-hazards tbody tr").count() == 1
    page.select_option("#fl-f-department", "")
    page.fill("#fl-f-severity", "0")
    page.check("#fl-f-overdue")
    assert "没有符合条件" in page.locator("#fl-hazards").inner_text()  # no deadlines set: none overdue
    page.uncheck("#fl-f-overdue")
    # a list row opens its hazard's popup: a link to the compound file and the box where the actions go
    page.locator("#fl-hazards tbody tr", has_text="LANE-CLEAR").click()
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for()
    assert popup.locator("a.fl-file").get_attribute("href") == "/map/compounds/YZ-001"
    assert popup.locator("a[href^='#hazard-']").count() == 1  # opens the workflow panel's actions
    assert popup.locator(".fl-actions[data-hazard-id]").count() == 1
    assert page.locator("#fl-hazards .fl-actions[data-hazard-id]").count() == 8
    assert page.locator(".leaflet-popup-content img").count() == 0  # the hostile message is text
    screenshot(page, shots, "street")
    assert s.foreign_requests() == [] and s.dialogs == [] and s.errors == []
    s.close()


def test_street_page_ranks_compounds_and_keeps_the_heatmap(site, browser):
    s = Session(browser, site, "office1")
    resp = s.goto(f"/map/streets/{S1}")
    assert resp.status == 200
    page = s.page
    rows = page.locator("#fl-ranking tbody tr")
    assert rows.count() == 2
    first = rows.nth(0)
    assert first.get_attribute("data-ref") == "YZ-001"
    assert first.locator("td").nth(2).inner_text().strip() == "5"
    link = first.locator("a")
    assert link.get_attribute("href") == "/map/compounds/YZ-001"
    assert HOSTILE in link.inner_text()
    assert page.locator("#fl-ranking img").count() == 0
    assert "Vonng/adcode, CC BY 4.0" in page.locator(".leaflet-control-attribution").inner_text()
    page.evaluate("""() => { const c = document.querySelector('.leaflet-control-layers');
        c.classList.add('leaflet-control-layers-expanded'); }""")
    assert "热力图" in page.locator(".leaflet-control-layers").inner_text()
    s.close()


def test_hostile_names_in_popups_are_text(site, browser, shots):
    s = Session(browser, site, "admin1")
    assert s.goto("/map/compounds/YZ-001").status == 200
    page = s.page
    texts = page.evaluate(POPUP_TEXTS_JS)
    assert any("<img src=x onerror=alert(1)>" in t for t in texts), texts
    assert not any("[IMG ELEMENT]" in t for t in texts), texts
    assert page.locator(".leaflet-popup-content img").count() == 0
    assert page.locator("#fl-panel img, .leaflet-tooltip img").count() == 0
    assert "<img" in page.locator("h1").inner_text()
    screenshot(page, shots, "compound")
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
    assert "没有待拆违建" in s.page.locator("#fl-structures").inner_text()
    assert s.goto("/map/traffic").status == 200
    assert s.page.locator("#fl-conflict-count").inner_text() == "0"  # the conflicts lie in the other street
    r = s.context.request.get(site + "/map/traffic.csv")
    assert r.ok and "P1" not in r.text() and "P2" not in r.text()
    assert s.goto("/map").status == 200
    assert s.page.locator("#fl-streets tbody tr").count() == 1
    s.close()


# --- 2. traffic brigade --------------------------------------------------------------------------------------------


def test_traffic_page_draws_conflicts_on_top_flies_to_them_and_exports_the_stalls(site, browser, shots, tmp_path):
    s = Session(browser, site, "traffic1")
    assert s.goto("/map/traffic").status == 200
    page = s.page
    rows = page.locator("#fl-conflicts tbody tr")
    assert rows.count() == 3
    table = page.locator("#fl-conflicts").inner_text()
    assert "PARK-HYDRANT" in table and "PARK-ENTRANCE" in table and "H1" in table and "E1" in table
    assert "HYD-ACCESS" not in table and "下应街道" in table
    # conflicts live in the top pane, above the clusters and tiles
    on_top = page.evaluate("() => { let n = 0; window.FIRELANE_MAP.eachLayer(l => {"
                           " if (l instanceof L.Path && l.options.pane === 'fl-top') { n++; } }); return n; }")
    assert on_top >= 3 and page.locator(".leaflet-fl-top-pane canvas").count() == 1  # drawn on a canvas
    assert page.locator("#fl-legend i").count() == 4
    # a row flies the map to its conflict and opens it
    page.locator("#fl-conflicts tbody tr", has_text="PARK-HYDRANT").click()
    page.locator(".leaflet-popup-content").wait_for(timeout=5000)
    assert "PARK-HYDRANT" in page.locator(".leaflet-popup-content").inner_text()
    centre = page.evaluate("() => window.FIRELANE_MAP.getCenter()")
    assert centre["lng"] == pytest.approx(X0 + 153 * M, abs=3e-5) and centre["lat"] == pytest.approx(Y0 + 109 * M, abs=3e-5)
    screenshot(page, shots, "traffic")
    # CSV and XLSX of the stalls: formula-leading refs stay text
    with page.expect_download() as info:
        page.click("#fl-csv")
    body = Path(info.value.path()).read_text(encoding="utf-8-sig")
    table = list(csv.reader(io.StringIO(body)))
    assert table[0][0] == "街道" and len(table) == 4
    refs = [r[3] for r in table[1:]]
    assert "P1" in refs and "'" + FORMULA in refs
    with page.expect_download() as info:
        page.click("#fl-xlsx")
    info.value.save_as(tmp_path / "stalls.xlsx")  # openpyxl goes by the file name's extension
    ws = load_workbook(tmp_path / "stalls.xlsx").active
    cells = [c for row in ws.iter_rows(min_row=2) for c in row if c.value == FORMULA]
    assert cells and all(c.data_type == "s" for c in cells)
    assert s.foreign_requests() == []
    s.close()


# --- 3. demolition -------------------------------------------------------------------------------------------------


def test_demolition_page_says_what_each_structure_blocks_and_ranks_by_it(site, browser, shots):
    s = Session(browser, site, "admin1")
    assert s.goto("/map/demolition").status == 200
    page = s.page
    rows = page.locator("#fl-structures tbody tr")
    assert rows.count() == 2  # IS-3 has no finding
    first = rows.nth(0).inner_text()
    assert "IS-1" in first and "STRUCT-ON-LANE" in first and "LANE-CLEAR" in first
    assert HOSTILE in first  # the lane-cut finding's message, as text
    assert page.locator("#fl-structures img").count() == 0
    assert "IS-2" in rows.nth(1).inner_text()
    areas = [float(rows.nth(i).locator("td.num").inner_text()) for i in range(2)]
    assert areas[0] == pytest.approx(6 * 4 * 0.967 * 1.108, rel=0.02)
    assert areas[1] == pytest.approx(12 * 10 * 0.967 * 1.108, rel=0.02)
    # navigation links in AMap's GCJ-02 and Baidu's BD-09
    lon, lat = X0 + 103 * M, Y0 + 123 * M
    amap = rows.nth(0).locator("a.fl-amap").get_attribute("href")
    baidu = rows.nth(0).locator("a.fl-baidu").get_attribute("href")
    gx, gy = (float(v) for v in amap.split("position=")[1].split("&")[0].split(","))
    assert (gx, gy) == pytest.approx(tuple(float(v) for v in wgs84_to_gcj02(lon, lat)), abs=3e-5)
    by, bx = (float(v) for v in baidu.split("location=")[1].split("&")[0].split(","))
    assert (bx, by) == pytest.approx(tuple(float(v) for v in wgs84_to_bd09(lon, lat)), abs=3e-5)
    # fire lanes and buildings under the structures
    page.evaluate("() => window.FIRELANE_MAP.setZoom(17)")
    page.wait_for_load_state("networkidle")
    assert any("/tiles/fire_lanes/" in u for u in s.requests) and any("/tiles/buildings/" in u for u in s.requests)
    screenshot(page, shots, "demolition")
    # print: every row, no map, no controls, A4
    page.emulate_media(media="print")
    assert not page.locator(".folium-map").is_visible() and not page.locator("header.fl-top").is_visible()
    assert page.locator("#fl-structures tbody tr").nth(1).is_visible()
    page.pdf(path=str(shots / "demolition-print.pdf"), format="A4")
    page.emulate_media(media="screen")
    s.close()


def test_demolition_list_downloads_as_kml_and_gpx(site, browser):
    s = Session(browser, site, "admin1")
    kml = s.context.request.get(site + "/map/demolition.kml")
    assert kml.ok and "kml" in kml.headers["content-type"]
    root = ET.fromstring(kml.body())
    ns = {"k": "http://www.opengis.net/kml/2.2"}
    marks = root.findall(".//k:Placemark", ns)

    def text_of(mark: ET.Element, path: str) -> str:
        found = mark.find(path, ns)
        assert found is not None and found.text is not None, path
        return found.text

    assert [text_of(m, "k:name") for m in marks] == ["#1 IS-1", "#2 IS-2"]
    lon, lat = (float(v) for v in text_of(marks[0], ".//k:coordinates").split(","))
    assert (lon, lat) == pytest.approx((X0 + 103 * M, Y0 + 123 * M), abs=3e-5)
    assert HOSTILE in text_of(marks[0], "k:description")  # escaped in the XML, intact as text
    gpx = s.context.request.get(site + "/map/demolition.gpx")
    wpts = ET.fromstring(gpx.body()).findall("{http://www.topografix.com/GPX/1/1}wpt")
    assert len(wpts) == 2 and float(wpts[0].attrib["lat"]) == pytest.approx(lat, abs=1e-6)
    s.close()


# --- 4. planner ----------------------------------------------------------------------------------------------------


def test_draw_page_saves_a_lane_as_the_planner(site, browser, shots, db):
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
    page.mouse.click(cx + corners[0][0], cy + corners[0][1])
    expect(page.locator("#fl-save")).to_be_enabled()
    page.fill("#fl-ref", "DRAWN-1")
    page.fill("#fl-name", "新画车道")
    page.select_option("#fl-kind", "through")
    page.fill("#fl-width", "4.5")
    page.click("#fl-save")
    expect(page.locator("#fl-feedback")).not_to_be_empty(timeout=20000)
    feedback = page.locator("#fl-feedback").inner_text()
    assert "已保存" in feedback, feedback
    assert "规则检查" in feedback and "LANE-CONNECT" in feedback, feedback
    screenshot(page, shots, "draw")
    with db.connect() as conn:
        row = conn.execute(text(
            "SELECT updated_by, kind, design_width_m, ST_NumPoints(ST_ExteriorRing(ST_GeometryN(geom, 1))) AS n, "
            "ST_Area(geom::geography) AS area FROM fire_lanes WHERE ref = 'DRAWN-1'")).one()
    assert row.updated_by == "planner1"
    assert row.kind == "through" and row.design_width_m == pytest.approx(4.5)
    assert row.n == 5 and row.area > 10
    assert any("/tiles/buildings/" in u and u.endswith(".mvt") for u in s.requests)
    assert s.foreign_requests() == []
    assert s.dialogs == []
    s.close()


def _click_lane(page, lon: float, lat: float) -> None:
    page.evaluate("([lat, lon]) => window.FIRELANE_MAP.setView([lat, lon], 19, {animate: false})", [lat, lon])
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(300)
    pt = page.evaluate("([lat, lon]) => window.FIRELANE_MAP.latLngToContainerPoint([lat, lon])", [lat, lon])
    box = page.locator(".folium-map").bounding_box()
    page.mouse.click(box["x"] + pt["x"], box["y"] + pt["y"])


def test_planner_edits_an_existing_lane_with_if_match_and_resolves_a_412(site, browser, shots, db):
    s = Session(browser, site, "planner1")
    assert s.goto("/map/draw").status == 200
    page = s.page
    _click_lane(page, X0 + 150 * M, Y0 + 122.5 * M)  # lane L1
    page.wait_for_timeout(1000)
    assert s.errors == []
    expect(page.locator("#fl-save-edit")).to_be_visible(timeout=10000)
    assert "L1" in page.locator("#fl-edit").inner_text()
    handles = page.locator(".leaflet-editing-icon")
    assert handles.count() >= 4
    with db.connect() as conn:
        before = conn.execute(text("SELECT version, ST_AsText(geom) FROM fire_lanes WHERE ref = 'L1'")).one()
    # move the first vertex 15 px south, save
    h = handles.nth(0).bounding_box()
    page.mouse.move(h["x"] + h["width"] / 2, h["y"] + h["height"] / 2)
    page.mouse.down()
    page.mouse.move(h["x"] + h["width"] / 2, h["y"] + h["height"] / 2 + 15, steps=5)
    page.mouse.up()
    page.click("#fl-save-edit")
    expect(page.locator("#fl-feedback")).to_contain_text("已保存", timeout=20000)
    with db.connect() as conn:
        after = conn.execute(text("SELECT version, ST_AsText(geom), updated_by FROM fire_lanes WHERE ref = 'L1'")).one()
    assert after[0] == before[0] + 1 and after[1] != before[1] and after[2] == "planner1"
    # someone else saves meanwhile: the next save answers 412, explained, with both ways out
    with httpx.Client(base_url=site) as other:
        token = other.post("/auth/login", json={"username": "admin1", "password": PASSWORDS["admin1"]}).json()
        fid = conn_id = None
        with db.connect() as conn:
            conn_id = conn.execute(text("SELECT id FROM fire_lanes WHERE ref = 'L1'")).scalar_one()
        fid = conn_id
        etag = other.get(f"/collections/fire_lanes/items/{fid}").headers["ETag"]
        r = other.patch(f"/collections/fire_lanes/items/{fid}", json={"properties": {"name": "他人修改"}},
                        headers={"If-Match": etag, "Content-Type": "application/merge-patch+json",
                                 "Authorization": f"Bearer {token['access_token']}"})
        assert r.status_code in (200, 204), r.text
    h = handles.nth(1).bounding_box()
    page.mouse.move(h["x"] + h["width"] / 2, h["y"] + h["height"] / 2)
    page.mouse.down()
    page.mouse.move(h["x"] + h["width"] / 2, h["y"] + h["height"] / 2 + 10, steps=5)
    page.mouse.up()
    page.click("#fl-save-edit")
    expect(page.locator("#fl-conflict")).to_be_visible(timeout=20000)
    assert page.locator("#fl-load-theirs").count() == 1
    screenshot(page, shots, "draw-412")
    page.click("#fl-overwrite")
    expect(page.locator("#fl-feedback")).to_contain_text("已保存", timeout=20000)
    with db.connect() as conn:
        final = conn.execute(text("SELECT version, name FROM fire_lanes WHERE ref = 'L1'")).one()
    assert final.version == after[0] + 2 and final.name == "他人修改"  # geometry overwritten, their name kept
    s.close()


def _draw_square(page, dx: float = 0) -> None:
    """Draw a 120 x 40 px polygon at the map's centre (shifted `dx` px) with Leaflet.draw."""
    page.click(".leaflet-draw-draw-polygon")
    box_ = page.locator(".folium-map").bounding_box()
    cx, cy = box_["x"] + box_["width"] / 2 + dx, box_["y"] + box_["height"] / 2
    corners = [(-60, -20), (60, -20), (60, 20), (-60, 20)]
    for x, y in corners:
        page.mouse.click(cx + x, cy + y)
        page.wait_for_timeout(150)
    page.mouse.click(cx + corners[0][0], cy + corners[0][1])


def test_two_tabs_saving_one_ref_the_second_is_told_who_uses_it_and_fixes_it(site, browser, shots, db):
    s = Session(browser, site, "planner1")
    first, second = s.page, s.context.new_page()
    first.goto(site + "/map/draw", wait_until="networkidle")
    second.goto(site + "/map/draw", wait_until="networkidle")
    for page, dx in ((first, -150), (second, 150)):
        _draw_square(page, dx)
        expect(page.locator("#fl-save")).to_be_enabled()
        page.fill("#fl-ref", "TWIN")
    first.click("#fl-save")
    expect(first.locator("#fl-feedback")).to_contain_text("已保存", timeout=20000)
    second.click("#fl-save")
    expect(second.locator("#fl-ref-taken")).to_be_visible(timeout=20000)
    with db.connect() as conn:
        holder = conn.execute(text("SELECT id FROM fire_lanes WHERE ref = 'TWIN'")).scalar_one()
    said = second.locator("#fl-ref-taken").inner_text()
    assert "TWIN" in said and f"#{holder}" in said and "消防车道" in said, said
    assert "编号在本图层中唯一" in second.locator("#fl-feedback").inner_text()
    screenshot(second, shots, "draw-409")
    # the way out: take the suggested ref and save again
    second.click("#fl-use-ref")
    assert second.input_value("#fl-ref") == "TWIN-2"
    second.click("#fl-save")
    expect(second.locator("#fl-feedback")).to_contain_text("已保存", timeout=20000)
    with db.connect() as conn:
        assert conn.execute(text("SELECT ref FROM fire_lanes WHERE ref LIKE 'TWIN%' ORDER BY ref")).scalars().all() \
            == ["TWIN", "TWIN-2"]
    s.close()


def test_planner_edits_the_attributes_of_a_hydrant_and_an_entrance_with_if_match(site, browser, shots, db):
    s = Session(browser, site, "planner1", width=1400, height=900)
    assert s.goto("/map/draw").status == 200
    page = s.page
    with db.connect() as conn:
        hid = conn.execute(text("SELECT id FROM hydrants WHERE ref = 'H1'")).scalar_one()
        eid = conn.execute(text("SELECT id FROM entrances WHERE ref = 'E2'")).scalar_one()
    page.evaluate("([c, i]) => window.firelaneEditFeature(c, i)", ["hydrants", hid])
    expect(page.locator("#fl-edit-status")).to_be_visible(timeout=10000)
    assert page.input_value("#fl-edit-ref") == "H1" and page.input_value("#fl-edit-status") == "in_service"
    assert page.locator("#fl-edit-status option[value=damaged]").inner_text() == "损坏"
    page.select_option("#fl-edit-status", "damaged")
    page.fill("#fl-edit-flow_lps", "12.5")
    page.fill("#fl-edit-ref", "H1-A")
    page.click("#fl-save-edit")
    expect(page.locator("#fl-feedback")).to_contain_text("已保存", timeout=20000)
    screenshot(page, shots, "draw-attributes")
    with db.connect() as conn:
        row = conn.execute(text("SELECT ref, status, flow_lps, kind, version, updated_by FROM hydrants WHERE id = :i"),
                           {"i": hid}).one()
    assert (row.ref, row.status, row.flow_lps, row.kind, row.version, row.updated_by) == (
        "H1-A", "damaged", 12.5, None, 2, "planner1")  # kind was empty and not edited: no default filled in
    # an entrance renamed to a ref another entrance holds: refused, explained, the row unchanged
    page.evaluate("([c, i]) => window.firelaneEditFeature(c, i)", ["entrances", eid])
    expect(page.locator("#fl-edit-width_m")).to_be_visible(timeout=10000)
    page.fill("#fl-edit-ref", "E1")
    page.fill("#fl-edit-width_m", "7")
    page.click("#fl-save-edit")
    expect(page.locator("#fl-ref-taken")).to_be_visible(timeout=20000)
    assert "E1" in page.locator("#fl-ref-taken").inner_text()
    page.click("#fl-open-holder")
    expect(page.locator("#fl-edit h2")).to_contain_text("E1", timeout=10000)
    with db.connect() as conn:
        assert conn.execute(text("SELECT ref, width_m, version FROM entrances WHERE id = :i"), {"i": eid}).one() \
            == ("E2", 6.0, 1)
    assert s.errors == []
    s.close()


def test_an_invalid_geometry_is_marked_where_it_is_invalid(site, browser):
    s = Session(browser, site, "planner1")
    assert s.goto("/map/draw").status == 200
    page = s.page
    _click_lane(page, X0 + 400 * M, Y0 + 122.5 * M)  # lane L2 (200 x 5 m)
    expect(page.locator("#fl-save-edit")).to_be_visible(timeout=10000)
    # drag one corner across the opposite edge: a bow-tie
    corners = page.evaluate("""() => { const out = []; document.querySelectorAll('.leaflet-editing-icon').forEach(e => {
        const r = e.getBoundingClientRect(); out.push([r.x + r.width / 2, r.y + r.height / 2]); }); return out; }""")
    corners.sort(key=lambda p: (p[0], p[1]))
    nw_or_sw = corners[0]
    north = min(corners[:2], key=lambda p: p[1])
    south = max(corners[:2], key=lambda p: p[1])
    assert nw_or_sw
    page.mouse.move(*north)
    page.mouse.down()
    page.mouse.move(north[0] + 40, south[1] + 40, steps=6)
    page.mouse.up()
    page.click("#fl-save-edit")
    expect(page.locator("#fl-feedback .bad")).to_be_visible(timeout=20000)
    assert "invalid" in page.locator("#fl-feedback").inner_text().lower() or "无效" in page.locator("#fl-feedback").inner_text()
    expect(page.locator("path.fl-invalid")).to_have_count(1)
    s.close()


def test_draw_page_unshifts_gcj02_drawings_like_gis_coords(site, browser):
    s = Session(browser, site, "planner1")
    assert s.goto("/map/draw").status == 200
    for lon, lat in ((121.55, 29.82), (119.65, 25.93), (121.5437, 29.8669)):
        gcj = [float(v) for v in wgs84_to_gcj02(lon, lat)]
        back = s.page.evaluate("p => window.firelaneGcj02ToWgs84(p)", gcj)
        assert back == pytest.approx([lon, lat], abs=2e-7)
        there = s.page.evaluate("p => window.firelaneCoords.wgsToGcj(p)", [lon, lat])
        assert there == pytest.approx(gcj, abs=1e-8)
    s.close()


def test_pages_need_a_signed_in_user(site):
    for path in (f"/map/streets/{S1}", "/map/compounds/YZ-001", "/map/traffic", "/map/demolition", "/map/draw",
                 "/map/traffic.csv", "/map/demolition.kml"):
        r = httpx.get(site + path, follow_redirects=False)
        assert r.status_code == 303, path
        assert r.headers["location"] == "/login?next=" + quote(path, safe="")


def test_pages_have_no_cdn_urls(site):
    with httpx.Client(base_url=site) as client:
        client.post("/auth/login", json={"username": "admin1", "password": PASSWORDS["admin1"]}).raise_for_status()
        for path in (*PAGES.values(), "/login"):
            r = client.get(path)
            # navigation links (AMap/Baidu) open in the phone's app: they load nothing into the page
            html = re.sub(r'<a class="fl-nav-link[^>]*>', "", r.text)
            assert "default-src 'self'" in r.headers["content-security-policy"], path
            assert "connect-src 'self';" in r.headers["content-security-policy"], path
            assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html, path
            assert "cdn" not in html.lower(), path

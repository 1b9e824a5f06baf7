"""The map pages (street heatmap, compound file, traffic, demolition, lane drawing, index, login) as HTML strings."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from folium import plugins
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Engine, text

from gis.campaign import lifecycle as lc
from gis.checks.catalog import RULES
from gis.layers import get_layer
from gis.store import read_layer
from web import data as d
from web import popups
from web.assets import STATIC_URL
from web.basemap import ADCODE_ATTRIBUTION, OSM_ATTRIBUTION, display_crs
from web.maps import (
    STYLES,
    cluster_layer,
    geojson_layer,
    heat_layer,
    new_map,
    render_page,
    vector_tile_layer,
)
from web.settings import map_settings

TEMPLATES = Path(__file__).resolve().parent / "templates"

ROLE_LABELS = {
    "admin": "管理员 admin", "planner": "规划 planner", "street_office": "街道办 street office",
    "traffic_brigade": "交警 traffic brigade", "demolition": "拆违 demolition", "fire_brigade": "消防 fire brigade",
    "viewer": "查看 viewer", "property": "物业 property company",
}
#: roles that may draw and save fire lanes on /map/draw (the API enforces the same on save)
DRAW_ROLES = frozenset({"admin", "planner", "street_office"})


@dataclass(frozen=True)
class Viewer:
    """Who looks at a page: name, role and the streets they may see (None = every street)."""

    username: str
    role: str
    streets: tuple[str, ...] | None

    def sees(self, street_code: str | None) -> bool:
        return self.streets is None or (street_code is not None and street_code in self.streets)


class OutOfJurisdiction(PermissionError):
    """The page is about a street outside the viewer's jurisdiction (403)."""


@lru_cache
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True, finalize=lambda v: "" if v is None else v)
    env.filters["status_label"] = lc.label  # hazard states as 待整改/已交办/..., never the raw value
    return env


def render_template(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context)


def _chrome(viewer: Viewer, heading_zh: str, heading_en: str) -> dict[str, Any]:
    return {"user": viewer, "role_label": ROLE_LABELS.get(viewer.role, viewer.role),
            "heading_zh": heading_zh, "heading_en": heading_en}


def street_href(code: object) -> str:
    return "/map/streets/" + quote(str(code), safe="")


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts with NaN/NaT turned into None (templates test `is none`)."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _source_attributions(*frames: gpd.GeoDataFrame) -> list[str]:
    """Data-source attributions for what the page shows (OSM-derived features, adcode-derived boundaries)."""
    parts = [f["source"] for f in frames if f is not None and "source" in f.columns and len(f)]
    sources = pd.concat(parts, ignore_index=True) if parts else pd.Series([], dtype=object)
    low = sources.dropna().astype(str).str.lower()
    out = []
    if low.str.contains(r"openstreetmap|\bosm\b", regex=True).any():
        out.append(OSM_ATTRIBUTION)
    if low.str.contains("adcode", regex=False).any():
        out.append(ADCODE_ATTRIBUTION)
    return out


def _context_tiles(m: folium.Map, layers: Sequence[str], *, show: bool = False) -> None:
    """Large context layers through the API's vector tiles (skipped under a GCJ-02 basemap: tiles are unshifted)."""
    if display_crs() is not None:
        return
    for name in layers:
        layer = get_layer(name)
        vector_tile_layer(name, name=f"{layer.label_zh} {layer.label_en}", style=STYLES[name], show=show).add_to(m)


def _context_compounds(m: folium.Map, *, engine: Engine, viewer: Viewer, street: str | None = None) -> gpd.GeoDataFrame:
    """Compound outlines of the viewer's scope for orientation: inline up to the cap, else as vector tiles."""
    cap = map_settings().max_inline_features
    clauses, params = [], {}
    if viewer.streets is not None:
        clauses.append("t.street_code = ANY(:s)")
        params["s"] = list(viewer.streets)
    if street is not None:
        clauses.append("t.street_code = :one")
        params["one"] = street
    compounds = read_layer("compounds", engine=engine, where=" AND ".join(clauses) or None, params=params,
                           columns=["id", "ref", "name", "street_code", "source"])
    if len(compounds) > cap and display_crs() is None:
        vector_tile_layer("compounds", name="小区 Compounds", style=STYLES["compounds"], show=True,
                          min_zoom=12).add_to(m)
        return compounds.head(0)
    title = compounds.apply(lambda r: popups.link(popups.compound_href(r["ref"]), r["name"]), axis=1) \
        if len(compounds) else None
    geojson_layer(compounds, name="小区 Compounds", style=STYLES["compounds"],
                  popup=popups.table(compounds, [("ref", "编号", "Ref"), ("street_code", "街道", "Street")],
                                     title=title),
                  tooltip=compounds["name"].map(popups.text)).add_to(m)
    return compounds


# --- popups -----------------------------------------------------------------------------------------------------


def layer_popups(name: str, frame: gpd.GeoDataFrame) -> pd.Series:
    """Escaped popups for a layer's features: layer label and ref as title, then its declared fields."""
    layer = get_layer(name)
    fields = [(f.name, f.label_zh, f.label_en) for f in layer.fields]
    title = None
    if "ref" in frame:
        title = popups.text(f"{layer.label_zh} {layer.label_en}") + " " + frame["ref"].map(popups.text)
    return popups.table(frame, [*fields, ("source", "数据来源", "Source")], title=title)


#: the few fields a clustered marker's popup shows (clusters may hold many thousand points)
COMPACT_FIELDS: dict[str, tuple[str, ...]] = {
    "entrances": ("kind", "width_m", "gate"), "hydrants": ("kind", "status", "supply"),
    "parking": ("kind", "vehicle_type"),
}


def compact_popups(name: str, frame: gpd.GeoDataFrame) -> pd.Series:
    """Short escaped popups (label, ref, compound and a few fields) for clustered markers."""
    layer = get_layer(name)
    fields = [(f, layer.field(f).label_zh, layer.field(f).label_en) for f in COMPACT_FIELDS.get(name, ())]
    title = popups.text(layer.label_zh) + " " + frame["ref"].map(popups.text)
    return popups.table(frame, [*fields, ("compound_ref", "小区", "Compound")], title=title)


def _measured(frame: pd.DataFrame) -> pd.Series:
    def fmt(v: Any) -> str:
        return "—" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{float(v):.2f}".rstrip("0").rstrip(".")

    unit = frame["unit"].fillna("") if "unit" in frame else ""
    return frame["measured"].map(fmt) + " / " + frame["required_value"].map(fmt) + " " + unit


def hazard_popups(frame: gpd.GeoDataFrame) -> pd.Series:
    """Escaped hazard popups: rule and title, clause, measured vs required, department, status, subject."""
    if frame.empty:
        return pd.Series(dtype=str)
    view = pd.DataFrame(index=frame.index)
    view["rule_title"] = frame["rule"].map(lambda r: f"{RULES[r].title_zh} {RULES[r].title_en}" if r in RULES else "")
    view["clause"] = frame["clause"]
    view["measured_required"] = _measured(frame)
    view["department"] = frame["department"]
    view["status"] = frame["status"].map(lambda v: lc.label(v) + " " + lc.label(v, "en") if v else lc.label(None))
    view["subject"] = frame["subject_layer"].fillna("") + " " + frame["subject_ref"].fillna("")
    view["severity"] = frame["severity"]
    view["message"] = frame["message_zh"].fillna("") + " " + frame["message_en"].fillna("")
    title = frame["rule"].map(popups.text)
    if "id" in frame.columns:  # the workflow panel (hazards.js) opens "#hazard-ID" links
        title = pd.Series([popups.link(f"#hazard-{int(i)}", r) for i, r in zip(frame["id"], frame["rule"], strict=True)],
                          index=frame.index)
    return popups.table(view, [
        ("rule_title", "隐患", "Hazard"), ("clause", "条款", "Clause"),
        ("measured_required", "实测/要求", "Measured/required"), ("department", "责任部门", "Department"),
        ("status", "状态", "Status"), ("subject", "对象", "Subject"), ("severity", "严重度", "Severity"),
        ("message", "说明", "Message"),
    ], title=title)


# --- pages ------------------------------------------------------------------------------------------------------


def street_page(street_code: str, *, engine: Engine, viewer: Viewer) -> str:
    """/map/streets/{code}: heatmap of open hazards weighted by severity, compound outlines, ranked compounds."""
    if not viewer.sees(street_code):
        raise OutOfJurisdiction(street_code)
    settings = map_settings()
    cap = settings.max_inline_features
    view = d.street_view(street_code, engine=engine)
    street = view.street.iloc[0]
    m = new_map([view.compounds if not view.compounds.empty else view.street])
    geojson_layer(view.street, name="街道边界 Street boundary", style=STYLES["streets"],
                  tooltip=view.street["name"].map(popups.text)).add_to(m)
    counts = view.ranking.set_index("ref")["open_hazards"]
    comp = view.compounds.assign(open_hazards=view.compounds["ref"].map(counts).fillna(0).astype(int))
    comp_title = comp.apply(lambda r: popups.link(popups.compound_href(r["ref"]), r["name"]), axis=1) \
        if len(comp) else None
    geojson_layer(comp, name="小区 Compounds", style=STYLES["compounds"],
                  popup=popups.table(comp, [("ref", "编号", "Ref"), ("address", "地址", "Address"),
                                            ("households", "户数", "Households"),
                                            ("open_hazards", "未整改隐患", "Open hazards")], title=comp_title),
                  tooltip=comp["name"].map(popups.text)).add_to(m)
    hz = view.hazards
    heat = hz.head(settings.max_cluster_points)
    heat_layer(d.representative_points(heat), heat["severity"], name="隐患热力图 Hazard heatmap").add_to(m)
    shown = hz.head(cap)  # the most severe: the rest are in the heatmap and the compound files
    geojson_layer(shown, name="隐患 Hazards", style=STYLES["hazards"], popup=hazard_popups(shown), show=False,
                  point_radius=5).add_to(m)
    _context_tiles(m, ["buildings", "fire_lanes"])
    ranking = view.ranking.assign(href=view.ranking["ref"].map(popups.compound_href))
    body = render_template(
        "street.html", **_chrome(viewer, f"{street['name']} 隐患热力图", "Street hazard heatmap"),
        street=street.to_dict(), ranking=_records(ranking), n_hazards=len(hz),
        truncated=len(hz) > cap, shown=cap,
    )
    return render_page(m, title=f"{street['name']} 隐患热力图 Hazard heatmap — firelane", body_html=body,
                       attributions=_source_attributions(view.street, view.compounds),
                       scripts=[f"{STATIC_URL}/firelane/chrome.js", f"{STATIC_URL}/firelane/hazards.js",
                                f"{STATIC_URL}/firelane/hazard_photos.js"])


def compound_page(ref: str, *, engine: Engine, viewer: Viewer) -> str:
    """/map/compounds/{ref}: one compound's file, every layer with popups, hazards with rule feedback."""
    cf = d.compound_file(ref, engine=engine, streets=viewer.streets)
    c = cf.compound.iloc[0]
    m = new_map([cf.compound])
    geojson_layer(cf.compound, name="小区边界 Compound", style=STYLES["compounds"],
                  popup=layer_popups("compounds", cf.compound)).add_to(m)
    counts = []
    for name, frame in cf.layers.items():
        layer = get_layer(name)
        counts.append((name, layer.label_zh, layer.label_en, len(frame)))
        if frame.empty:
            continue
        geojson_layer(frame, name=f"{layer.label_zh} {layer.label_en}", style=STYLES[name],
                      popup=layer_popups(name, frame),
                      tooltip=frame["ref"].map(popups.text) if "ref" in frame else None,
                      point_radius=7 if name in ("hydrants", "entrances") else 5).add_to(m)
    hz = cf.hazards
    open_hz = hz[hz["is_open"]]
    geojson_layer(open_hz, name="未整改隐患 Open hazards", style=STYLES["hazards"], popup=hazard_popups(open_hz),
                  tooltip=open_hz["rule"].map(popups.text), point_radius=9).add_to(m)
    rows = hz.assign(
        title=hz["rule"].map(lambda r: f"{RULES[r].title_zh} {RULES[r].title_en}" if r in RULES else ""),
        subject_label=hz["subject_layer"].map(_layer_label),
        measured=hz["measured"].map(lambda v: "—" if pd.isna(v) else f"{v:.2f}"),
        required=hz["required_value"].map(lambda v: "—" if pd.isna(v) else f"{v:.2f}"),
    ) if len(hz) else hz
    body = render_template(
        "compound.html", **_chrome(viewer, f"{c['name']} 一小区一档", "Compound file"),
        c=c.where(pd.notna(c), None).to_dict(), street_href=street_href(c["street_code"]), counts=counts,
        hazards=_records(pd.DataFrame(rows.drop(columns="geometry"))) if len(rows) else [],
        n_open=int(hz["is_open"].sum()) if len(hz) else 0,
    )
    return render_page(m, title=f"{c['name']} 一小区一档 Compound file — firelane", body_html=body,
                       attributions=_source_attributions(cf.compound, *cf.layers.values()),
                       scripts=[f"{STATIC_URL}/firelane/chrome.js"])


def traffic_page(*, engine: Engine, viewer: Viewer, street: str | None = None) -> str:
    """/map/traffic: perimeter-parking conflicts (PARK-ENTRANCE/-HYDRANT/-LANE) with entrances, hydrants, parking."""
    if street is not None and not viewer.sees(street):
        raise OutOfJurisdiction(street)
    tv = d.traffic_view(engine=engine, streets=viewer.streets, street=street)
    m = new_map([tv.conflicts, tv.entrances, tv.hydrants])
    context = _context_compounds(m, engine=engine, viewer=viewer, street=street)
    _context_tiles(m, ["roads", "fire_lanes"], show=True)
    conflict_parking = tv.parking[tv.parking["conflict"]]
    geojson_layer(conflict_parking, name="冲突停车 Conflicting parking", style=STYLES["conflicts"],
                  popup=layer_popups("parking", conflict_parking),
                  tooltip=conflict_parking["ref"].map(popups.text), point_radius=8).add_to(m)
    geojson_layer(tv.conflicts, name="停车冲突 Parking conflicts", style=STYLES["conflicts"],
                  popup=hazard_popups(tv.conflicts), tooltip=tv.conflicts["rule"].map(popups.text),
                  point_radius=10).add_to(m)
    for name, frame, color in (("entrances", tv.entrances, "#117a65"), ("hydrants", tv.hydrants, "#c0392b"),
                               ("parking", tv.parking, "#2e86c1")):
        layer = get_layer(name)
        if frame.empty:
            continue
        frame = frame.head(map_settings().max_cluster_points)
        cluster_layer(d.representative_points(frame), compact_popups(name, frame),
                      name=f"{layer.label_zh} {layer.label_en}", color=color, show=name != "parking").add_to(m)
    rows_cap = map_settings().max_list_rows
    conflicts = tv.conflicts.sort_values("severity", ascending=False).assign(
        title=tv.conflicts["rule"].map(lambda r: f"{RULES[r].title_zh} {RULES[r].title_en}" if r in RULES else ""),
        others=tv.conflicts["other_refs"].map(_refs_text),
        href=tv.conflicts["compound_ref"].map(lambda r: popups.compound_href(r) if isinstance(r, str) else ""),
    ) if len(tv.conflicts) else tv.conflicts
    body = render_template(
        "traffic.html", **_chrome(viewer, "交警 周边停车冲突", "Traffic brigade: parking conflicts"),
        conflicts=_records(pd.DataFrame(conflicts.drop(columns="geometry")).head(rows_cap)) if len(conflicts) else [],
        n_conflicts=len(conflicts), rows_cap=rows_cap,
        n_entrances=len(tv.entrances), n_hydrants=len(tv.hydrants), n_parking=len(tv.parking), street=street,
    )
    return render_page(m, title="交警 停车冲突 Parking conflicts — firelane", body_html=body,
                       attributions=_source_attributions(tv.parking, tv.entrances, tv.hydrants, context),
                       scripts=[f"{STATIC_URL}/firelane/chrome.js"])


def _layer_label(name: Any) -> str:
    try:
        return get_layer(str(name)).label_zh
    except KeyError:
        return str(name or "")


def _refs_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def demolition_page(*, engine: Engine, viewer: Viewer) -> str:
    """/map/demolition: illegal structures with STRUCT-* / SEP-ILLEGAL findings, ranked, located on the map."""
    ranked = d.demolition_ranking(engine=engine, streets=viewer.streets)
    m = new_map([ranked])
    context = _context_compounds(m, engine=engine, viewer=viewer)
    _context_tiles(m, ["buildings"])
    if len(ranked):
        info = ranked.assign(area=ranked["area_m2"])
        title = ranked["rank"].map(lambda r: f"#{r} ") + ranked["ref"].map(popups.text)
        link = ranked["compound_ref"].map(
            lambda r: popups.link(popups.compound_href(r), f"小区 {r}") if isinstance(r, str) else "")
        pop = popups.table(info, [("kind", "类型", "Kind"), ("rules", "问题", "Findings"),
                                  ("severity", "严重度", "Severity"), ("area", "面积 m²", "Area m²"),
                                  ("height_m", "高度 m", "Height m"), ("status", "状态", "Status")],
                           title=title, extra=link)
        geojson_layer(ranked, name="违章建筑 Illegal structures", style=STYLES["illegal_structures"], popup=pop,
                      tooltip=title).add_to(m)
        cluster_layer(d.representative_points(ranked), pop, name="违建位置 Locations", color="#7b241c").add_to(m)
    pts = d.representative_points(ranked) if len(ranked) else gpd.GeoSeries([])
    rows = ranked.drop(columns="geometry").assign(
        lon=[p.x for p in pts], lat=[p.y for p in pts],
        href=ranked["compound_ref"].map(lambda r: popups.compound_href(r) if isinstance(r, str) else "#"),
    ) if len(ranked) else pd.DataFrame()
    body = render_template(
        "demolition.html", **_chrome(viewer, "拆违 违章建筑清单", "Demolition: illegal structures"),
        rows=_records(pd.DataFrame(rows).head(map_settings().max_list_rows)), n_rows=len(ranked),
        rows_cap=map_settings().max_list_rows, total_area=float(ranked["area_m2"].sum()) if len(ranked) else 0.0,
    )
    return render_page(m, title="拆违清单 Illegal structures — firelane", body_html=body,
                       attributions=_source_attributions(ranked, context), scripts=[f"{STATIC_URL}/firelane/chrome.js"])


def draw_page(*, engine: Engine, viewer: Viewer) -> str:
    """/map/draw: planners draw fire-lane polygons (Leaflet.draw) and save them through the OGC API Part 4."""
    if viewer.role not in DRAW_ROLES:
        raise OutOfJurisdiction("draw")
    cap = map_settings().max_inline_features
    where, params = (None, {}) if viewer.streets is None else (
        "t.street_code = ANY(:s)", {"s": list(viewer.streets)})
    compounds = read_layer("compounds", engine=engine, where=where, params=params,
                           columns=["id", "ref", "name", "street_code", "source"]).head(cap)
    lanes = read_layer("fire_lanes", engine=engine, where=where, params=params).head(cap)
    m = new_map([compounds, lanes])
    geojson_layer(compounds, name="小区 Compounds", style=STYLES["compounds"],
                  tooltip=compounds["name"].map(popups.text)).add_to(m)
    geojson_layer(lanes, name="已有消防车道 Existing fire lanes", style=STYLES["fire_lanes"],
                  popup=layer_popups("fire_lanes", lanes), tooltip=lanes["ref"].map(popups.text)).add_to(m)
    _context_tiles(m, ["buildings"], show=True)
    drawn = folium.FeatureGroup(name="新绘制 Drawn", show=True).add_to(m)
    plugins.Draw(
        feature_group=drawn, show_geometry_on_click=False, position="topleft",
        draw_options={"polyline": False, "rectangle": False, "circle": False, "marker": False,
                      "circlemarker": False, "polygon": {"allowIntersection": False, "showArea": True}},
        edit_options={"edit": True, "remove": True},
    ).add_to(m)
    config = {"group": drawn.get_name(), "gcj02": display_crs() == "gcj02",
              "endpoint": "/collections/fire_lanes/items"}
    js = f"firelaneDraw({{map}}, {drawn.get_name()}, {_js_json(config)});"
    kinds = get_layer("fire_lanes").field("kind").choices or ()
    body = render_template("draw.html", **_chrome(viewer, "绘制消防车道", "Draw fire lanes"), kinds=kinds)
    return render_page(m, title="绘制消防车道 Draw fire lanes — firelane", body_html=body,
                       scripts=[f"{STATIC_URL}/firelane/chrome.js", f"{STATIC_URL}/firelane/draw.js"],
                       inline_js=[js], attributions=_source_attributions(compounds, lanes))


def _js_json(obj: Any) -> str:
    """JSON safe inside an inline <script> (no `</script>` breakout)."""
    return (json.dumps(obj, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("&", "\\u0026"))


def index_page(*, engine: Engine, viewer: Viewer) -> str:
    """/map: the streets the viewer may see, with compound and open-hazard counts, and links to every page."""
    where, params = (None, {}) if viewer.streets is None else ("t.ref = ANY(:s)", {"s": list(viewer.streets)})
    streets = read_layer("streets", engine=engine, where=where, params=params, columns=["id", "ref", "name"])
    with engine.connect() as conn:
        n_comp = dict(conn.execute(text("SELECT street_code, count(*) FROM compounds GROUP BY 1")).all())
        n_haz = dict(conn.execute(text(
            f"SELECT street_code, count(*) FROM hazards t WHERE {d.OPEN_SQL} GROUP BY 1")).all())
    rows = [{"ref": r, "name": n, "href": street_href(r), "compounds": n_comp.get(r, 0),
             "open_hazards": n_haz.get(r, 0)} for r, n in zip(streets["ref"], streets["name"], strict=True)]
    return render_template("index.html", title="firelane 地图 Maps", user=viewer,
                           role_label=ROLE_LABELS.get(viewer.role, viewer.role), streets=rows)


def login_page(*, next_path: str = "/map", error: str | None = None) -> str:
    """/login: user name and password, posted to /auth/login (cookie), then back to `next_path`."""
    return render_template("login.html", title="登录 Sign in — firelane", next=next_path, error=error or "")

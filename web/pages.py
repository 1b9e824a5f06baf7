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

from gis import scope
from gis.checks.catalog import RULES
from gis.coords import wgs84_to_bd09, wgs84_to_gcj02
from gis.layers import get_layer
from gis.store import read_layer
from web import data as d
from web import i18n, popups
from web.assets import STATIC_URL, VENDOR_URL
from web.basemap import ADCODE_ATTRIBUTION, OSM_ATTRIBUTION, display_crs, to_display
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

#: role names, one language at a time (role_label)
ROLE_NAMES = {
    "admin": ("管理员", "admin"), "planner": ("规划", "planner"), "street_office": ("街道办", "street office"),
    "traffic_brigade": ("交警", "traffic brigade"), "demolition": ("拆违", "demolition"),
    "fire_brigade": ("消防", "fire brigade"), "viewer": ("查看", "viewer"), "property": ("物业", "property company"),
}
#: roles that may draw and save fire lanes on /map/draw (the API enforces the same on save)
DRAW_ROLES = frozenset({"admin", "planner", "street_office"})
#: the pages of the top bar: key, path, zh/en label, zh/en purpose, the roles that may open it (None: all)
NAV: tuple[tuple[str, str, tuple[str, str], tuple[str, str], frozenset[str] | None], ...] = (
    ("home", "/map", ("首页", "Home"), ("街道与隐患概况", "streets and open hazards"), None),
    ("traffic", "/map/traffic", ("交警", "Traffic"), ("周边停车冲突与清单", "parking conflicts and lists"), None),
    ("demolition", "/map/demolition", ("拆违", "Demolition"), ("违建清单、导航与打印", "structures, navigation, print"),
     None),
    ("draw", "/map/draw", ("绘制与编辑", "Draw & edit"), ("车道、登高场地、消火栓、出入口", "lanes, aerial areas, hydrants, "
                                                                               "entrances"), DRAW_ROLES),
)


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
    env.globals.update(t=i18n.tr, status_label=i18n.status_label, verdict_label=i18n.verdict_label,
                       choice_label=i18n.choice_label, rule_title=i18n.rule_title, layer_label=i18n.layer_label,
                       js_labels=i18n.js_labels, result_label=i18n.result_label)
    env.filters["status_label"] = i18n.status_label  # hazard states as words (lifecycle labels)
    return env


def render_template(name: str, **context: Any) -> str:
    lang = i18n.lang()
    return environment().get_template(name).render(lang=lang, other_lang="en" if lang == "zh" else "zh", **context)


def nav_items(viewer: Viewer | None, current: str | None = None) -> list[dict[str, Any]]:
    """The pages this viewer's role may open (none before sign-in)."""
    if viewer is None:
        return []
    return [{"key": k, "href": href, "label": i18n.tr(*label), "about": i18n.tr(*about), "current": k == current}
            for k, href, label, about, roles in NAV if roles is None or viewer.role in roles]


def role_label(role: str) -> str:
    pair = ROLE_NAMES.get(role)
    return i18n.tr(*pair) if pair else role


def _chrome(viewer: Viewer, heading_zh: str, heading_en: str, current: str | None = None) -> dict[str, Any]:
    return {"user": viewer, "role_label": role_label(viewer.role), "heading": i18n.tr(heading_zh, heading_en),
            "nav": nav_items(viewer, current)}


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


def _context_tiles(m: folium.Map, layers: Sequence[str], *, show: bool = False, min_zoom: int = 14) -> None:
    """Large context layers through the API's vector tiles (shifted on the client under a GCJ-02 basemap)."""
    for name in layers:
        vector_tile_layer(name, name=i18n.layer_label(name), style=STYLES[name], show=show,
                          min_zoom=min_zoom).add_to(m)


#: compound outlines the traffic and demolition maps inline at most (more: vector tiles); their lists link each
#: compound's file, the outlines are orientation (800 m-scale outlines were 0.58 of the traffic page's 1.06 MB)
CONTEXT_INLINE = 200


def _context_compounds(m: folium.Map, *, engine: Engine, viewer: Viewer, street: str | None = None,
                       inline_up_to: int | None = None) -> gpd.GeoDataFrame:
    """Compound outlines of the viewer's scope for orientation: inline (with popups linking their files) up to
    `inline_up_to` (default: the settings' cap), else as vector tiles."""
    cap = min(map_settings().max_inline_features, inline_up_to or map_settings().max_inline_features)
    compounds = read_layer("compounds", engine=engine, street=street,  # the viewer's scope: gis.scope, in the reader
                           columns=["id", "ref", "name", "street_code", "source"])
    label = i18n.layer_label("compounds")
    if len(compounds) > cap:
        vector_tile_layer("compounds", name=label, style=STYLES["compounds"], show=True, min_zoom=12).add_to(m)
        return compounds.head(0)
    title = compounds.apply(lambda r: popups.link(popups.compound_href(r["ref"]), r["name"]), axis=1) \
        if len(compounds) else None
    geojson_layer(compounds, name=label, style=STYLES["compounds"],
                  popup=popups.table(compounds, [("ref", "编号", "Ref"), ("street_code", "街道", "Street")],
                                     title=title),
                  tooltip=compounds["name"].map(popups.text)).add_to(m)
    return compounds


# --- popups -----------------------------------------------------------------------------------------------------


def _labelled(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with its choice fields' codes replaced by words in the page's language."""
    out = pd.DataFrame(frame).copy()
    for f in get_layer(name).fields:
        if f.choices and f.name in out:
            out[f.name] = out[f.name].map(i18n.choice_label)
    return out


def layer_popups(name: str, frame: gpd.GeoDataFrame) -> pd.Series:
    """Escaped popups for a layer's features: layer label and ref as title, then its declared fields."""
    layer = get_layer(name)
    fields = [(f.name, f.label_zh, f.label_en) for f in layer.fields]
    title = None
    if "ref" in frame:
        title = popups.text(i18n.layer_label(name)) + " " + frame["ref"].map(popups.text)
    return popups.table(_labelled(name, frame), [*fields, ("source", "数据来源", "Source")], title=title)


#: the few fields a clustered marker's popup shows (clusters may hold many thousand points)
COMPACT_FIELDS: dict[str, tuple[str, ...]] = {
    "entrances": ("kind", "width_m", "gate"), "hydrants": ("kind", "status", "supply"),
    "parking": ("kind", "vehicle_type"),
}


def compact_popups(name: str, frame: gpd.GeoDataFrame) -> pd.Series:
    """Short escaped popups (label, ref, compound and a few fields) for clustered markers."""
    layer = get_layer(name)
    fields = [(f, layer.field(f).label_zh, layer.field(f).label_en) for f in COMPACT_FIELDS.get(name, ())]
    title = popups.text(i18n.layer_label(name)) + " " + frame["ref"].map(popups.text)
    return popups.table(_labelled(name, frame), [*fields, ("compound_ref", "小区", "Compound")], title=title)


def _fmt(v: Any) -> str:
    return "—" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{float(v):.2f}".rstrip("0").rstrip(".")


def _measured(frame: pd.DataFrame) -> pd.Series:
    unit = frame["unit"].fillna("") if "unit" in frame else ""
    # astype(str): an empty column maps to float64, and float + " / " has no ufunc loop
    return (frame["measured"].map(_fmt).astype(str) + " / " + frame["required_value"].map(_fmt).astype(str)
            + " " + unit)


def _message(frame: pd.DataFrame) -> pd.Series:
    zh, en = frame["message_zh"].fillna(""), frame["message_en"].fillna("")
    return (en.where(en != "", zh) if i18n.lang() == "en" else zh.where(zh != "", en)).astype(str)


def hazard_popups(frame: gpd.GeoDataFrame) -> pd.Series:
    """Escaped hazard popups: rule title, clause, measured vs required, department, status, subject, compound file
    link, and an empty actions box (`.fl-actions[data-hazard-id]`) where the workflow's actions go."""
    if frame.empty:
        return pd.Series(dtype=str)
    view = pd.DataFrame(index=frame.index)
    view["rule_title"] = frame["rule"].map(i18n.rule_title)
    view["clause"] = frame["clause"]
    view["measured_required"] = _measured(frame)
    view["department"] = frame["department"]
    view["status"] = frame["status"].map(i18n.status_label)
    view["subject"] = frame["subject_layer"].map(i18n.layer_label) + " " + frame["subject_ref"].fillna("")
    view["severity"] = frame["severity"]
    view["message"] = _message(frame)
    # the workflow panel (hazards.js) opens "#hazard-ID" links
    title = pd.Series([popups.link(f"#hazard-{int(i)}", r) for i, r in zip(frame.index, frame["rule"], strict=True)],
                      index=frame.index)
    extra = frame["compound_ref"].map(
        lambda r: '<p class="fl-popup-link">' + popups.link(popups.compound_href(r), i18n.tr("小区档案 ", "Compound file ")
                                                           + str(r)) + "</p>" if isinstance(r, str) else "")
    extra = extra + frame.index.map(lambda i: f'<div class="fl-actions" data-hazard-id="{int(i)}"></div>').to_series(
        index=frame.index)
    return popups.table(view, [
        ("rule_title", "隐患", "Hazard"), ("clause", "条款", "Clause"),
        ("measured_required", "实测/要求", "Measured/required"), ("department", "责任部门", "Department"),
        ("status", "状态", "Status"), ("subject", "对象", "Subject"), ("severity", "严重度", "Severity"),
        ("message", "说明", "Message"),
    ], title=title, extra=extra)


# --- pages ------------------------------------------------------------------------------------------------------

#: open-hazard classes of the compound choropleth: (lowest count, colour)
LOAD_CLASSES: tuple[tuple[int, str], ...] = ((0, "#2e7d32"), (1, "#f9d71c"), (3, "#f39c12"), (6, "#e74c3c"),
                                             (11, "#7b1fa2"))


def load_colour(n: int) -> str:
    colour = LOAD_CLASSES[0][1]
    for lo, c in LOAD_CLASSES:
        if n >= lo:
            colour = c
    return colour


def load_legend() -> list[dict[str, str]]:
    out = []
    for i, (lo, c) in enumerate(LOAD_CLASSES):
        hi = LOAD_CLASSES[i + 1][0] - 1 if i + 1 < len(LOAD_CLASSES) else None
        label = str(lo) if hi == lo else (f"{lo}–{hi}" if hi is not None else f"≥ {lo}")
        out.append({"colour": c, "label": label})
    return out


def _page_config(**extra: Any) -> dict[str, Any]:
    """window.FIRELANE of a page (render_page adds the language, GCJ-02 flag and basemap switcher)."""
    return dict(extra)


def street_page(street_code: str, *, engine: Engine, viewer: Viewer) -> str:
    """/map/streets/{code}: compounds coloured by open-hazard load, clustered and filterable hazards, counts, trend,
    the heatmap, ranked compounds and the data still to complete (cannot_judge)."""
    if not viewer.sees(street_code):
        raise OutOfJurisdiction(street_code)
    view = d.street_view(street_code, engine=engine)
    street = view.street.iloc[0]
    m = new_map([view.compounds if not view.compounds.empty else view.street])
    geojson_layer(view.street, name=i18n.tr("街道边界", "Street boundary"), style=STYLES["streets"],
                  tooltip=view.street["name"].map(popups.text)).add_to(m)
    counts = view.ranking.set_index("ref")["open_hazards"]
    comp = view.compounds.assign(open_hazards=view.compounds["ref"].map(counts).fillna(0).astype(int))
    comp_title = comp.apply(lambda r: popups.link(popups.compound_href(r["ref"]), r["name"]), axis=1) \
        if len(comp) else None
    geojson_layer(comp, name=i18n.tr("小区(按未整改隐患着色)", "Compounds (by open hazards)"), style=STYLES["compounds"],
                  popup=popups.table(comp, [("ref", "编号", "Ref"), ("address", "地址", "Address"),
                                            ("households", "户数", "Households"),
                                            ("open_hazards", "未整改隐患", "Open hazards")], title=comp_title),
                  tooltip=comp["name"].map(popups.text),
                  colours=comp["open_hazards"].map(load_colour), limit=len(comp)).add_to(m)
    hz = view.hazards
    heat_layer(d.representative_points(hz), hz["severity"], name=i18n.tr("隐患热力图", "Hazard heatmap"),
               show=False).add_to(m)
    _context_tiles(m, ["buildings", "fire_lanes"])
    pts = to_display(d.representative_points(hz)) if len(hz) else np.array([], dtype=object)
    rules = {r: [i18n.rule_title(r), RULES[r].family] for r in hz["rule"].unique() if r in RULES}
    rows = [[int(i), round(p.y, 7), round(p.x, 7), r, s, dep if isinstance(dep, str) else "", float(sev or 0),
             bool(od), cref if isinstance(cref, str) else "", sref, meas, msg]
            for i, p, r, s, dep, sev, od, cref, sref, meas, msg in zip(
                hz.index, pts, hz["rule"], hz["status"], hz["department"], hz["severity"].fillna(0), hz["overdue"],
                hz["compound_ref"].where(hz["compound_ref"].notna(), None),
                (hz["subject_layer"].map(i18n.layer_label) + " " + hz["subject_ref"].fillna("")),
                _measured(hz), _message(hz), strict=True)]
    statuses = {k: i18n.status_label(k) for k in d.OPEN_STATUSES}
    families = sorted({v[1] for v in rules.values()})
    config = _page_config(hazards=rows, rules=rules, statuses=statuses,
                          families={f: i18n.family_label(f) for f in families},
                          departments=sorted({r[5] for r in rows if r[5]}), list_cap=300,
                          labels=_street_js_labels())
    gaps = view.data_gaps if view.data_gaps is not None else hz.head(0)
    gap_rows = gaps.assign(title=gaps["rule"].map(i18n.rule_title), message=_message(gaps),
                           href=gaps["compound_ref"].map(lambda r: popups.compound_href(r) if isinstance(r, str)
                                                         else "")) if len(gaps) else gaps
    ranking = view.ranking.assign(href=view.ranking["ref"].map(popups.compound_href),
                                  colour=view.ranking["open_hazards"].map(load_colour))
    top = max([max(f, c) for _, f, c in view.trend] or [1]) or 1
    body = render_template(
        "street.html", **_chrome(viewer, f"{street['name']} 隐患地图", f"{street['name']}: hazard map"),
        street=street.to_dict(), ranking=_records(ranking), n_hazards=len(hz), n_overdue=int(hz["overdue"].sum()),
        closed_week=view.closed_this_week, trend=view.trend, trend_top=top, legend=load_legend(),
        gaps=_records(pd.DataFrame(gap_rows.drop(columns="geometry"))) if len(gaps) else [],
        has_deadlines="deadline" in hz, families=config["families"], statuses=statuses,
        departments={dep: i18n.department_label(dep) for dep in config["departments"]},
    )
    return render_page(m, title=i18n.tr(f"{street['name']} 隐患地图", f"{street['name']} hazard map") + " — firelane",
                       body_html=body, attributions=_source_attributions(view.street, view.compounds),
                       scripts=[f"{VENDOR_URL}/leaflet.markercluster/leaflet.markercluster.js",
                                f"{STATIC_URL}/firelane/street.js", f"{STATIC_URL}/firelane/hazards.js",
                                f"{STATIC_URL}/firelane/hazard_photos.js"], config=config,
                       css=[f"{VENDOR_URL}/leaflet.markercluster/MarkerCluster.css",
                            f"{VENDOR_URL}/leaflet.markercluster/MarkerCluster.Default.css"],
                       inline_js=["firelaneStreet({map});"])


def _street_js_labels() -> dict[str, str]:
    t = i18n.tr
    return {"measured": t("实测/要求", "Measured/required"), "department": t("责任部门", "Department"),
            "status": t("状态", "Status"), "subject": t("对象", "Subject"), "severity": t("严重度", "Severity"),
            "overdue": t("已逾期", "overdue"), "file": t("小区档案", "Compound file"),
            "shown": t("显示 {n} / {total} 条, 请用筛选缩小范围", "showing {n} of {total}: narrow the filters"),
            "none": t("没有符合条件的隐患", "No hazards match"), "hazards": t("隐患", "Hazards"),
            "act": t("办理", "Act")}


def compound_page(ref: str, *, engine: Engine, viewer: Viewer) -> str:
    """/map/compounds/{ref}: one compound's file, every layer with popups, hazards with rule feedback."""
    cf = d.compound_file(ref, engine=engine)
    c = cf.compound.iloc[0]
    m = new_map([cf.compound])
    geojson_layer(cf.compound, name=i18n.tr("小区边界", "Compound"), style=STYLES["compounds"],
                  popup=layer_popups("compounds", cf.compound)).add_to(m)
    counts = []
    for name, frame in cf.layers.items():
        counts.append((name, i18n.layer_label(name), len(frame)))
        if frame.empty:
            continue
        geojson_layer(frame, name=i18n.layer_label(name), style=STYLES[name],
                      popup=layer_popups(name, frame),
                      tooltip=frame["ref"].map(popups.text) if "ref" in frame else None,
                      point_radius=7 if name in ("hydrants", "entrances") else 5, limit=len(frame)).add_to(m)
    hz = cf.hazards
    open_hz = hz[hz["is_open"] & (hz["verdict"] == "fail")]
    geojson_layer(open_hz, name=i18n.tr("未整改隐患", "Open hazards"), style=STYLES["hazards"],
                  popup=hazard_popups(open_hz), tooltip=open_hz["rule"].map(popups.text), point_radius=9,
                  limit=len(open_hz)).add_to(m)
    rows = hz.assign(
        title=hz["rule"].map(i18n.rule_title),
        subject_label=hz["subject_layer"].map(i18n.layer_label),
        measured=hz["measured"].map(lambda v: "—" if pd.isna(v) else f"{v:.2f}"),
        required=hz["required_value"].map(lambda v: "—" if pd.isna(v) else f"{v:.2f}"),
        status_text=hz["status"].map(i18n.status_label),
        message=_message(hz),
    ) if len(hz) else hz
    failures = rows[rows["verdict"] == "fail"] if len(rows) else rows
    gaps = rows[(rows["verdict"] == "cannot_judge") & rows["is_open"]] if len(rows) else rows
    street_name = _street_name(engine, c["street_code"])
    body = render_template(
        "compound.html", **_chrome(viewer, f"{c['name']} 一小区一档", f"{c['name']}: compound file"),
        c=c.where(pd.notna(c), None).to_dict(), street_href=street_href(c["street_code"]), street_name=street_name,
        counts=counts, hazards=_records(pd.DataFrame(failures.drop(columns="geometry")).reset_index()) if len(failures) else [],
        gaps=_records(pd.DataFrame(gaps.drop(columns="geometry"))) if len(gaps) else [],
        n_open=int((hz["is_open"] & (hz["verdict"] == "fail")).sum()) if len(hz) else 0,
    )
    return render_page(m, title=i18n.tr(f"{c['name']} 一小区一档", f"{c['name']} compound file") + " — firelane",
                       body_html=body, attributions=_source_attributions(cf.compound, *cf.layers.values()))


def _street_name(engine: Engine, code: Any) -> str:
    if not isinstance(code, str):
        return ""
    with engine.connect() as conn:
        name = conn.execute(text("SELECT name FROM streets WHERE ref = :r"), {"r": code}).scalar()
    return str(name) if name else code


def traffic_rows(*, engine: Engine, viewer: Viewer, street: str | None = None) -> d.TrafficView:
    if street is not None and not viewer.sees(street):
        raise OutOfJurisdiction(street)
    return d.traffic_view(engine=engine, street=street)


def traffic_list(tv: d.TrafficView, *, engine: Engine) -> pd.DataFrame:
    """The stalls to remove or move, one row per conflict: streets with work first (most conflicts), then severity.

    Columns are plain values (refs, words, WGS 84 lon/lat): the panel list, the map and the CSV/XLSX share them.
    """
    c = tv.conflicts
    if c.empty:
        return pd.DataFrame(columns=["id", "street", "street_name", "rule", "title", "parking", "near", "compound",
                                     "status", "severity", "action", "lon", "lat"])
    with engine.connect() as conn:
        names: dict[str, str] = dict(conn.execute(text("SELECT ref, name FROM streets")).all())
    pts = d.representative_points(c)
    out = pd.DataFrame({
        "id": c.index.astype(int), "street": c["street_code"].fillna(""),
        "street_name": c["street_code"].map(lambda s: names.get(s, s) if isinstance(s, str) else ""),
        "rule": c["rule"], "title": c["rule"].map(i18n.rule_title), "parking": c["subject_ref"].fillna(""),
        "near": c["other_refs"].map(_refs_text), "compound": c["compound_ref"].fillna(""),
        "status": c["status"].map(i18n.status_label), "severity": c["severity"].fillna(0.0),
        "action": c["rule"].map(lambda r: i18n.tr("移走车辆/取消车位", "remove the vehicle or the stall")
                                 if r in ("PARK-HYDRANT", "PARK-LANE") else i18n.tr("移位, 让出出入口",
                                                                                    "move it clear of the entrance")),
        "lon": np.round(pts.x.to_numpy(), 7), "lat": np.round(pts.y.to_numpy(), 7),
    }, index=c.index)
    per_street = out.groupby("street")["id"].transform("size")
    return (out.assign(_n=per_street).sort_values(["_n", "street", "severity"], ascending=[False, True, False])
            .drop(columns="_n").reset_index(drop=True))


def traffic_page(*, engine: Engine, viewer: Viewer, street: str | None = None) -> str:
    """/map/traffic: perimeter-parking conflicts (PARK-ENTRANCE/-HYDRANT/-LANE) drawn above everything, the list
    (streets with work first; a row flies to its conflict), CSV/XLSX of the stalls, entrances/hydrants/parking as
    vector tiles (all of them, none inlined)."""
    tv = traffic_rows(engine=engine, viewer=viewer, street=street)
    listing = traffic_list(tv, engine=engine)
    m = new_map([tv.conflicts, tv.entrances.head(1000), tv.hydrants.head(1000)], prefer_canvas=True)
    context = _context_compounds(m, engine=engine, viewer=viewer, street=street, inline_up_to=CONTEXT_INLINE)
    _context_tiles(m, ["roads", "fire_lanes"], show=True)
    for name in ("parking", "entrances", "hydrants"):
        vector_tile_layer(name, name=i18n.layer_label(name), style=STYLES[name], show=True, min_zoom=15,
                          point_radius=4 if name == "parking" else 6).add_to(m)
    conflict_parking = tv.parking
    geojson_layer(conflict_parking, name=i18n.tr("冲突停车", "Conflicting parking"), style=STYLES["conflicts"],
                  popup=layer_popups("parking", conflict_parking), tooltip=conflict_parking["ref"].map(popups.text),
                  point_radius=8, limit=len(conflict_parking), pane="fl-top").add_to(m)
    pop = hazard_popups(tv.conflicts)
    rows = [[int(r.id), float(r.lat), float(r.lon), r.rule, pop.get(r.id, "")] for r in listing.itertuples()]
    if display_crs() is not None and rows:
        shifted = to_display(gpd.GeoSeries(gpd.points_from_xy(listing["lon"], listing["lat"]), crs=4490))
        for row, p in zip(rows, shifted, strict=True):
            row[1], row[2] = round(p.y, 7), round(p.x, 7)
    config = _page_config(conflicts=rows, layer_name=i18n.tr("停车冲突", "Parking conflicts"))
    q = f"?street={quote(street)}" if street else ""
    body = render_template(
        "traffic.html", **_chrome(viewer, "交警 周边停车冲突", "Traffic brigade: parking conflicts", "traffic"),
        conflicts=_records(listing), n_conflicts=len(listing), streets=listing["street"].nunique() if len(listing)
        else 0, n_entrances=len(tv.entrances), n_hydrants=len(tv.hydrants), n_parking=tv.parking_count,
        street=street, csv_href=f"/map/traffic.csv{q}", xlsx_href=f"/map/traffic.xlsx{q}",
        legend=[(STYLES["conflicts"]["fillColor"], i18n.tr("停车冲突", "Parking conflict")),
                (STYLES["parking"]["fillColor"], i18n.layer_label("parking")),
                (STYLES["entrances"]["fillColor"], i18n.layer_label("entrances")),
                (STYLES["hydrants"]["fillColor"], i18n.layer_label("hydrants"))],
    )
    return render_page(m, title=i18n.tr("交警 停车冲突", "Parking conflicts") + " — firelane", body_html=body,
                       attributions=_source_attributions(tv.parking, tv.entrances, tv.hydrants, context,
                                                         pd.DataFrame({"source": tv.parking_sources})),
                       scripts=[f"{STATIC_URL}/firelane/traffic.js"], config=config,
                       inline_js=["firelaneTraffic({map});"])


def _layer_label(name: Any) -> str:
    return i18n.layer_label(name)


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


def demolition_rows(*, engine: Engine, viewer: Viewer) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """The ranked structures and their list rows: impacts in words, WGS 84 / GCJ-02 / BD-09 positions, nav links."""
    ranked = d.demolition_ranking(engine=engine)
    if ranked.empty:
        return ranked, pd.DataFrame()
    pts = d.representative_points(ranked)
    lon, lat = pts.x.to_numpy(), pts.y.to_numpy()
    glon, glat = wgs84_to_gcj02(lon, lat)
    blon, blat = wgs84_to_bd09(lon, lat)
    impacts = ranked["impacts_en"] if i18n.lang() == "en" else ranked["impacts_zh"]
    rows = pd.DataFrame({
        "rank": ranked["rank"], "ref": ranked["ref"], "kind": ranked["kind"].map(i18n.choice_label),
        "status": ranked["status"].map(i18n.choice_label), "rules": ranked["rules"],
        "impacts": impacts, "impact": ranked["severity"].round(1), "findings": ranked["findings"],
        "area_m2": ranked["area_m2"], "compound_ref": ranked["compound_ref"],
        "href": ranked["compound_ref"].map(lambda r: popups.compound_href(r) if isinstance(r, str) else "#"),
        "lon": np.round(lon, 6), "lat": np.round(lat, 6), "gcj_lon": np.round(glon, 6), "gcj_lat": np.round(glat, 6),
        "bd_lon": np.round(blon, 6), "bd_lat": np.round(blat, 6),
    }, index=ranked.index)
    rows["amap"] = [f"https://uri.amap.com/marker?position={x:.6f},{y:.6f}&name={quote(str(r))}&coordinate=gaode"
                    f"&callnative=1" for x, y, r in zip(rows["gcj_lon"], rows["gcj_lat"], rows["ref"], strict=True)]
    rows["baidu"] = [f"https://api.map.baidu.com/marker?location={y:.6f},{x:.6f}&title={quote(str(r))}"
                     f"&content={quote(str(r))}&coord_type=bd09ll&output=html&src=firelane"
                     for x, y, r in zip(rows["bd_lon"], rows["bd_lat"], rows["ref"], strict=True)]
    return ranked, rows


def demolition_page(*, engine: Engine, viewer: Viewer) -> str:
    """/map/demolition: illegal structures ranked by what they block (in words), on a map with fire lanes and
    buildings, with AMap/Baidu navigation links, a print layout (every row) and KML/GPX downloads."""
    ranked, rows = demolition_rows(engine=engine, viewer=viewer)
    m = new_map([ranked], prefer_canvas=True)
    context = _context_compounds(m, engine=engine, viewer=viewer, inline_up_to=CONTEXT_INLINE)
    _context_tiles(m, ["buildings", "fire_lanes"], show=True, min_zoom=15)
    if len(ranked):
        info = _labelled("illegal_structures", ranked).assign(area=ranked["area_m2"],
                                                               impact=rows["impacts"].map("; ".join))
        title = ranked["rank"].map(lambda r: f"#{r} ") + ranked["ref"].map(popups.text)
        link = ranked["compound_ref"].map(
            lambda r: popups.link(popups.compound_href(r), i18n.tr("小区 ", "Compound ") + r) if isinstance(r, str)
            else "")
        pop = popups.table(info, [("kind", "类型", "Kind"), ("impact", "影响", "Blocks"),
                                  ("severity", "影响分", "Impact"), ("area", "面积 m²", "Area m²"),
                                  ("height_m", "高度 m", "Height m"), ("status", "状态", "Status")],
                           title=title, extra=link)
        geojson_layer(ranked, name=i18n.layer_label("illegal_structures"), style=STYLES["illegal_structures"],
                      popup=pop, tooltip=title, limit=len(ranked), pane="fl-top").add_to(m)
        cluster_layer(d.representative_points(ranked), pop, name=i18n.tr("违建位置", "Locations"),
                      color="#7b241c").add_to(m)
    body = render_template(
        "demolition.html", **_chrome(viewer, "拆违 违章建筑清单", "Demolition: illegal structures", "demolition"),
        rows=_records(rows) if len(rows) else [], n_rows=len(ranked),
        total_area=float(ranked["area_m2"].sum()) if len(ranked) else 0.0,
    )
    return render_page(m, title=i18n.tr("拆违清单", "Illegal structures") + " — firelane", body_html=body,
                       attributions=_source_attributions(ranked, context), config=_page_config())


#: the layers a planner selects and edits on /map/draw (new features: fire lanes)
EDIT_LAYERS: tuple[str, ...] = ("fire_lanes", "aerial_areas", "hydrants", "entrances")


def draw_page(*, engine: Engine, viewer: Viewer) -> str:
    """/map/draw: planners draw new fire lanes and select/edit existing lanes, aerial areas, hydrants and
    entrances (vector tiles: every feature, none inlined), saved through the OGC API Part 4 with If-Match."""
    if viewer.role not in DRAW_ROLES:
        raise OutOfJurisdiction("draw")
    compounds = read_layer("compounds", engine=engine, columns=["id", "ref", "name", "street_code", "source"])
    m = new_map([compounds.head(2000)])
    _context_tiles(m, ["compounds"], show=True, min_zoom=12)
    _context_tiles(m, ["buildings"], show=True)
    edit_layers = {}
    for name in EDIT_LAYERS:
        layer = vector_tile_layer(name, name=i18n.layer_label(name), style=STYLES[name], show=True,
                                  min_zoom=14 if name == "fire_lanes" else 15, interactive=True,
                                  point_radius=7)
        layer.add_to(m)
        edit_layers[name] = layer.get_name()
    drawn = folium.FeatureGroup(name=i18n.tr("新绘制/编辑中", "Drawn / editing"), show=True).add_to(m)
    plugins.Draw(
        feature_group=drawn, show_geometry_on_click=False, position="topleft",
        draw_options={"polyline": False, "rectangle": False, "circle": False, "marker": False,
                      "circlemarker": False, "polygon": {"allowIntersection": False, "showArea": True,
                                                         "metric": True}},
        edit_options={"edit": True, "remove": True},
    ).add_to(m)
    config = _page_config(group=drawn.get_name(), endpoint="/collections/fire_lanes/items",
                          layers=edit_layers, labels=_draw_js_labels(), edit_fields=edit_fields(),
                          layer_labels={n: i18n.layer_label(n) for n in EDIT_LAYERS},
                          draw_local=i18n.DRAW_LOCAL_ZH if i18n.lang() == "zh" else None)
    js = f"firelaneDraw({{map}}, {drawn.get_name()}, window.FIRELANE);"
    kinds = get_layer("fire_lanes").field("kind").choices or ()
    where, params = scope.current_filter("fire_lanes")
    with engine.connect() as conn:
        n_lanes = conn.execute(text("SELECT count(*) FROM fire_lanes t" + (f" WHERE {where}" if where else "")),
                               params).scalar_one()
    body = render_template("draw.html", **_chrome(viewer, "绘制与编辑", "Draw and edit", "draw"),
                           kinds=[(k, i18n.choice_label(k)) for k in kinds], n_lanes=n_lanes)
    return render_page(m, title=i18n.tr("绘制与编辑", "Draw and edit") + " — firelane", body_html=body,
                       scripts=[f"{STATIC_URL}/firelane/draw.js"], config=config,
                       inline_js=[js], attributions=_source_attributions(compounds))


def edit_fields() -> dict[str, list[dict[str, Any]]]:
    """The attributes a planner edits on /map/draw per layer (ref and the layer's declared fields), as the
    editor's form builds them: name, label, input type, choices in words, limits and unit."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name in EDIT_LAYERS:
        layer = get_layer(name)
        fields = []
        for f in (layer.field("ref"), *layer.fields):
            if f.type == "json":
                continue
            kind = "choice" if f.choices else {"float": "number", "int": "integer"}.get(f.type, f.type)
            label = i18n.tr(f.label_zh, f.label_en) + (f" ({f.unit})" if f.unit else "")
            fields.append({"name": f.name, "label": label, "type": kind, "min": f.minimum, "max": f.maximum,
                           "max_length": f.max_length,
                           "choices": [[c, i18n.choice_label(c)] for c in f.choices or ()]})
        out[name] = fields
    return out


def _draw_js_labels() -> dict[str, str]:
    t = i18n.tr
    return {
        "drawn": t("已绘制多边形, 填写编号后保存", "Polygon drawn: give it a ref and save."),
        "need_ref": t("请填写编号", "A ref is required."), "saving": t("保存中…", "Saving…"),
        "saved": t("已保存", "Saved"), "not_saved": t("未保存", "Not saved"), "network": t("网络错误", "network error"),
        "save_failed": t("保存失败", "Save failed"), "feedback": t("规则检查", "Rule feedback"),
        "no_failures": t("未发现问题", "No rule failures"),
        "selected": t("已选中, 拖动节点后点击“保存修改”", "Selected: move its vertices, then “Save changes”."),
        "loading": t("读取要素…", "Loading the feature…"),
        "conflict": t("他人已修改此要素 (412)。请选择: 载入对方版本 (放弃您的修改), 或覆盖 (以您的修改替换对方的)。",
                      "Someone else changed this feature meanwhile (412). Choose: load their version (drops your "
                      "changes) or overwrite (replaces theirs with yours)."),
        "load_theirs": t("载入对方版本", "Load their version"), "overwrite": t("覆盖", "Overwrite"),
        "invalid_at": t("几何无效的位置", "Where the geometry is invalid"),
        "duplicate": t("编号在本图层中必须唯一, 该编号已被使用。", "Refs are unique per layer: this ref is already used."),
        "ref_taken": t("编号 “{ref}” 已被{holder}使用。", "Ref “{ref}” is already used by {holder}."),
        "ref_taken_hidden": t("您辖区外的一个要素", "a feature outside your jurisdiction"),
        "compound": t("小区", "compound"),
        "ref_fix": t("编号在本图层中唯一: 请改用其他编号, 或打开正在使用该编号的要素核对。",
                     "Refs are unique per layer: choose another ref, or open the feature that uses it to check."),
        "use_ref": t("改用 {ref}", "Use {ref}"), "open_holder": t("打开使用该编号的要素", "Open the feature using it"),
        "attributes": t("属性", "Attributes"), "yes": t("是", "yes"), "no": t("否", "no"),
        "unchanged": t("没有修改", "Nothing changed"),
        "save_edit": t("保存修改", "Save changes"),
    }


def _js_json(obj: Any) -> str:
    """JSON safe inside an inline <script> (no `</script>` breakout)."""
    return (json.dumps(obj, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("&", "\\u0026"))


def index_page(*, engine: Engine, viewer: Viewer) -> str:
    """/map: the pages the role may open and the streets the viewer may see, with compound and open-hazard counts."""
    streets = read_layer("streets", engine=engine, columns=["id", "ref", "name"])  # the viewer's: gis.scope
    with engine.connect() as conn:
        n_comp: dict[str, int] = dict(conn.execute(text("SELECT street_code, count(*) FROM compounds GROUP BY 1")).all())
        n_haz: dict[str, int] = dict(conn.execute(text(
            f"SELECT street_code, count(*) FROM hazards t WHERE {d.OPEN_SQL} GROUP BY 1")).all())
    rows = [{"ref": r, "name": n, "href": street_href(r), "compounds": n_comp.get(r, 0),
             "open_hazards": n_haz.get(r, 0)} for r, n in zip(streets["ref"], streets["name"], strict=True)]
    return render_template("index.html", title=i18n.tr("firelane 地图", "firelane maps"), user=viewer,
                           role_label=role_label(viewer.role), streets=rows, nav=nav_items(viewer, "home"))


def login_page(*, next_path: str = "/map", error: str | None = None) -> str:
    """/login: user name and password, posted to /auth/login (cookie), then back to `next_path`."""
    return render_template("login.html", title=i18n.tr("登录", "Sign in") + " — firelane", next=next_path,
                           error=error or "", nav=[])


ERROR_HEADINGS: dict[int, tuple[str, str]] = {
    400: ("请求有误", "Bad request"), 401: ("请先登录", "Please sign in"), 403: ("无权访问", "Not allowed"),
    404: ("未找到", "Not found"), 405: ("不支持的操作", "Method not allowed"), 429: ("请求过多", "Too many requests"),
    500: ("服务器内部错误", "Server error"), 503: ("服务暂不可用", "Service unavailable"),
}


def error_page(*, status: int, code: str, description: str, viewer: Viewer | None, next_path: str = "/map") -> str:
    """An error in the pages' look: the signed-in user (or the login form), what happened, a way home."""
    heading = i18n.tr(*ERROR_HEADINGS.get(status, ("出错了", "Error")))
    safe = next_path if next_path.startswith("/") and not next_path.startswith("//") else "/map"
    return render_template("error.html", title=f"{status} {heading} — firelane", status=status, code=code,
                           heading=heading, description=description, user=viewer,
                           role_label=role_label(viewer.role) if viewer else "", nav=nav_items(viewer), next=safe,
                           error="")

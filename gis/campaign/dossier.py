"""一小区一档: one compound's file as data (facts, hazards with events and photos, checklist, status) and its map
image rendered on the server with matplotlib (the PDF: web.documents; the district's files: web.district_files)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from functools import lru_cache
from typing import Any

import numpy as np
import shapely
from matplotlib.collections import LineCollection, PolyCollection
from pyproj import Transformer
from sqlalchemy import Connection, text

from gis.campaign import charts, workflow
from gis.campaign import lifecycle as lc
from gis.campaign import photos as ph
from gis.campaign.actors import Actor
from gis.campaign.campaigns import CompoundNotFound
from gis.campaign.checklist import checklist
from gis.campaign.deadlines import OVERDUE_SQL, local_today
from gis.campaign.focus import BY_CODE, OTHER, focus_of
from gis.campaign.manual_rules import any_rule
from gis.checks.catalog import RULES

#: Layers drawn on a compound's map, bottom to top: (layer, face colour, edge colour, legend label zh + en).
MAP_LAYERS: tuple[tuple[str, str, str, str], ...] = (
    ("aerial_areas", "#fde2b8", "#e59400", "登高操作场地 aerial areas"),
    ("fire_lanes", "#f6b3b3", "#c0392b", "消防车道 fire lanes"),
    ("buildings", "#cfd8dc", "#455a64", "建筑 buildings"),
    ("illegal_structures", "#8e44ad", "#5b2c6f", "违章建筑 illegal structures"),
    ("obstructions", "#f39c12", "#935116", "障碍物 obstructions"),
    ("parking", "#95a5a6", "#616a6b", "停车 parking"),
    ("entrances", "#27ae60", "#196f3d", "出入口 entrances"),
    ("hydrants", "#2980b9", "#1b4f72", "消火栓 hydrants"),
)
MAX_PHOTOS_PER_HAZARD = 6


def _num(v: Any) -> str:
    if v is None:
        return "—"
    f = float(v)
    return f"{f:.2f}".rstrip("0").rstrip(".")


def compound_file(conn: Connection, ref: str, *, today: date | None = None,
                  photos: bool = True) -> dict[str, Any]:
    """Everything one compound's file shows, as plain data (the HTML/PDF renderers in web.documents read it)."""
    today = today or local_today()
    c = conn.execute(text(
        "SELECT c.id, c.ref, c.name, c.address, c.kind, c.built_year, c.households, c.property_company, c.gated, "
        "c.street_code, s.name AS street_name, ST_Area(c.geom::geography) AS area_m2 FROM compounds c "
        "LEFT JOIN streets s ON s.ref = c.street_code WHERE c.ref = :r"), {"r": ref}).first()
    if c is None:
        raise CompoundNotFound(f"没有小区 no compound {ref!r}", field="compound")
    counts = dict.fromkeys((name for name, *_ in MAP_LAYERS), 0)
    counts.update(conn.execute(text(" UNION ALL ".join(
        f"SELECT '{name}', count(*) FROM {name} WHERE compound_id = :cid" for name in counts)), {"cid": c.id}).all())
    rows = conn.execute(text(
        "SELECT t.id, t.rule, t.clause, t.verdict, t.severity, t.status, t.subject_layer, t.subject_ref, "
        "t.measured, t.required_value, t.unit, t.message_zh, t.message_en, t.department, t.responsible_unit, "
        f"t.deadline, t.first_seen_at, t.closed_at, {OVERDUE_SQL} AS overdue, "
        "ST_X(ST_PointOnSurface(t.geom)) AS lon, ST_Y(ST_PointOnSurface(t.geom)) AS lat FROM hazards t "
        "WHERE t.compound_ref = :r AND t.verdict = 'fail' AND t.status IS NOT NULL "
        "ORDER BY t.severity DESC NULLS LAST, t.id"), {"r": ref, "today": today}).all()
    events = workflow.events(conn, [r.id for r in rows])
    by_hazard: dict[int, list[dict[str, Any]]] = {}
    for e in events:
        by_hazard.setdefault(e["hazard_id"], []).append(e)
    pics = hazard_photos(conn, [r.id for r in rows]) if photos else {}
    hazards = []
    for n, r in enumerate(rows, start=1):
        rule = RULES.get(r.rule)
        if rule is None:
            rule = any_rule(r.rule)
        fc = focus_of(r.rule)
        hazards.append({
            "no": n, "id": r.id, "rule": r.rule, "title_zh": rule.title_zh if rule else r.rule,
            "title_en": rule.title_en if rule else "", "clause": r.clause or (rule.clause if rule else ""),
            "severity": r.severity, "status": r.status, "status_zh": lc.label(r.status),
            "status_en": lc.label(r.status, "en"), "subject": f"{r.subject_layer or ''} {r.subject_ref or ''}".strip(),
            "measured": _num(r.measured), "required": _num(r.required_value), "unit": r.unit or "",
            "message_zh": r.message_zh or "", "message_en": r.message_en or "", "department": r.department or "",
            "unit_responsible": r.responsible_unit or "", "deadline": r.deadline.isoformat() if r.deadline else "",
            "overdue": bool(r.overdue), "first_seen": r.first_seen_at.date().isoformat() if r.first_seen_at else "",
            "focus": BY_CODE[fc].zh if fc in BY_CODE else OTHER[1],
            "lonlat": (r.lon, r.lat), "events": by_hazard.get(r.id, []),
            "photos": pics.get(r.id, {"before": [], "after": []}),
        })
    status_counts: dict[str, int] = {}
    for h in hazards:
        status_counts[h["status"]] = status_counts.get(h["status"], 0) + 1
    open_n = sum(v for k, v in status_counts.items() if k in lc.UNRESOLVED)
    return {
        "compound": {"ref": c.ref, "name": c.name or "", "address": c.address or "", "kind": c.kind or "",
                     "built_year": c.built_year, "households": c.households,
                     "property_company": c.property_company or "", "gated": c.gated, "street_code": c.street_code,
                     "street_name": c.street_name or "", "area_m2": round(c.area_m2 or 0.0)},
        "counts": counts, "hazards": hazards, "checklist": _checklist(conn, c.ref),
        "status": {"hazards": len(hazards), "unresolved": open_n,
                   "overdue": sum(1 for h in hazards if h["overdue"]),
                   "by_state": [{"state": s, "zh": lc.label(s), "n": status_counts.get(s, 0)} for s in lc.STATES
                                if status_counts.get(s)],
                   "verdict_zh": "隐患已全部销号或整改复核" if hazards and not open_n else (
                       "未发现隐患" if not hazards else f"尚有 {open_n} 项隐患未完成整改")},
        "today": today.isoformat(),
    }


def hazard_photos(conn: Connection, hazard_ids: Sequence[int]) -> dict[int, dict[str, list[dict[str, Any]]]]:
    """Before/after thumbnails (JPEG bytes) of the hazards, at most MAX_PHOTOS_PER_HAZARD each."""
    if not hazard_ids or conn.execute(text("SELECT to_regclass('photos')")).scalar() is None:
        return {}

    out: dict[int, dict[str, list[dict[str, Any]]]] = {}
    rows = conn.execute(text(
        "SELECT id, hazard_id, sha256, kind, width, uploaded_at FROM photos WHERE hazard_id = ANY(:ids) "
        "AND width IS NOT NULL ORDER BY hazard_id, id"), {"ids": list(hazard_ids)}).all()
    store = ph.storage()
    for r in rows:
        slot = out.setdefault(r.hazard_id, {"before": [], "after": []})
        kind = "after" if r.kind == "after" else "before"
        if len(slot[kind]) >= MAX_PHOTOS_PER_HAZARD // 2:
            continue
        try:
            data = store.get(f"thumbs/{r.sha256}")
        except KeyError:
            continue
        slot[kind].append({"id": r.id, "jpeg": data,
                           "at": r.uploaded_at.date().isoformat() if r.uploaded_at else ""})
    return out


def _checklist(conn: Connection, ref: str) -> list[dict[str, Any]]:
    """The compound's facility checklist (the field side's items, checked or not)."""
    try:
        doc = checklist(conn, ref, Actor(username="report", role="admin"))
    except lc.WorkflowError:
        return []
    return [{"title_zh": i.get("title_zh", i.get("item")), "subject": i.get("subject") or "",
             "status": i.get("status"), "checked_on": str(i.get("checked_on") or ""), "note": i.get("note") or ""}
            for i in doc["items"]]


# --- the map ------------------------------------------------------------------------------------------------------


def utm_epsg(lon: float, lat: float) -> int:
    """The WGS 84 / UTM zone EPSG code of a point (326xx north, 327xx south)."""
    zone = min(60, max(1, int((lon + 180) // 6) + 1))
    return (32600 if lat >= 0 else 32700) + zone


def _layer_geoms(conn: Connection, ref: str, epsg: int) -> dict[str, np.ndarray]:
    """The compound's outline and every map layer's geometries, projected by PostGIS in one query."""
    parts = ["SELECT 'compounds' AS layer, ST_AsBinary(ST_Transform(geom, :epsg)) AS wkb FROM compounds "
             "WHERE ref = :r"]
    parts += [f"SELECT '{name}', ST_AsBinary(ST_Transform(geom, :epsg)) FROM {name} "
              "WHERE compound_id = (SELECT id FROM compounds WHERE ref = :r)" for name, *_ in MAP_LAYERS]
    out: dict[str, list[bytes]] = {}
    for layer, wkb in conn.execute(text(" UNION ALL ".join(parts)), {"r": ref, "epsg": epsg}):
        out.setdefault(layer, []).append(bytes(wkb))
    return {k: shapely.from_wkb(v) for k, v in out.items()}


@lru_cache(maxsize=16)
def _transformer(epsg: int) -> Transformer:
    return Transformer.from_crs(4490, epsg, always_xy=True)


def _to_utm(lonlat: np.ndarray, epsg: int) -> np.ndarray:
    x, y = _transformer(epsg).transform(lonlat[:, 0], lonlat[:, 1])
    return np.column_stack([x, y])


def _polygon_paths(geoms: np.ndarray) -> list[np.ndarray]:
    """Exterior rings of the polygons in `geoms` as (n, 2) arrays (holes are not drawn at this scale)."""
    parts = shapely.get_parts(geoms[shapely.get_type_id(geoms) >= 3])
    return [np.asarray(shapely.get_coordinates(shapely.get_exterior_ring(p))) for p in parts]


def _line_paths(geoms: np.ndarray) -> list[np.ndarray]:
    parts = shapely.get_parts(geoms[np.isin(shapely.get_type_id(geoms), (1, 2, 5))])
    return [np.asarray(shapely.get_coordinates(p)) for p in parts]


def map_legend(counts: dict[str, int], hazards: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """The map's legend (drawn by the page, not in the image): the layers the compound has, then the hazard marks."""
    out = [{"label": label, "face": face, "edge": edge, "kind": "layer"} for name, face, edge, label in MAP_LAYERS
           if counts.get(name)]
    if hazards:
        out += [{"label": "未完成隐患 open hazards", "face": "#c0392b", "edge": "#ffffff", "kind": "hazard"},
                {"label": "已整改/复核 rectified or verified", "face": "#1e8449", "edge": "#ffffff", "kind": "hazard"}]
    return out


def map_png(conn: Connection, ref: str, hazards: Sequence[dict[str, Any]], *, width_px: int = 900,
            dpi: int = 100, fmt: str = "png") -> bytes:
    """The compound, its layers and numbered hazards in a local metric CRS (UTM), with a scale bar, as PNG (or
    JPEG with fmt="jpeg": WeasyPrint embeds a JPEG as it is, a PNG it decodes and re-compresses). The legend is
    the page's (`map_legend`): laid out by matplotlib it was a third of the image's time.

    Drawn with matplotlib's object API (a Figure, collections of paths, one scatter per hazard colour, one draw
    at savefig): no pyplot state, no redraw per layer."""
    centre = conn.execute(text("SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_PointOnSurface(geom) AS c FROM compounds "
                               "WHERE ref = :r) s"), {"r": ref}).first()
    fig = charts.figure(width_px / dpi, width_px * 0.62 / dpi, dpi=dpi)
    ax = fig.add_axes((0.01, 0.01, 0.98, 0.98))
    ax.set_axis_off()
    if centre is not None:
        epsg = utm_epsg(centre[0], centre[1])
        layers = _layer_geoms(conn, ref, epsg)
        shape = layers["compounds"]
        ax.add_collection(LineCollection([np.asarray(shapely.get_coordinates(shapely.get_exterior_ring(p)))
                                          for p in shapely.get_parts(shape)],
                                         colors="#1a5276", linewidths=1.6, linestyles="--", zorder=1))
        for name, face, edge, _label in MAP_LAYERS:
            geoms = layers.get(name)
            if geoms is None or not len(geoms):
                continue
            polys = _polygon_paths(geoms)
            if polys:
                ax.add_collection(PolyCollection(polys, facecolors=face, edgecolors=edge, linewidths=0.6, zorder=2))
            lines = _line_paths(geoms)
            if lines:
                ax.add_collection(LineCollection(lines, colors=edge, linewidths=1.2, zorder=3))
            pts = shapely.get_coordinates(shapely.get_parts(geoms[np.isin(shapely.get_type_id(geoms), (0, 4))]))
            if len(pts):
                ax.scatter(pts[:, 0], pts[:, 1], s=18, color=edge, zorder=4)
        if hazards:
            xy = _to_utm(np.array([h["lonlat"] for h in hazards], dtype=float), epsg)
            open_ = np.array([h["status"] in lc.UNRESOLVED for h in hazards])
            for mask, colour in ((open_, "#c0392b"), (~open_, "#1e8449")):
                if mask.any():
                    ax.scatter(xy[mask, 0], xy[mask, 1], s=130, color=colour, edgecolors="white", linewidths=1,
                               zorder=6)
            for h, (x, y) in zip(hazards, xy, strict=True):
                ax.text(x, y, str(h["no"]), color="white", fontsize=7, ha="center", va="center", zorder=7,
                        weight="bold")
        x0, y0, x1, y1 = shapely.bounds(shape[0])
        pad = max(x1 - x0, y1 - y0) * 0.08 + 5
        ax.set_xlim(x0 - pad, x1 + pad)
        ax.set_ylim(y0 - pad, y1 + pad)
        _scale_bar(ax, x0 - pad, y0 - pad, x1 - x0 + 2 * pad)
    ax.set_aspect("equal")
    ax.text(0.99, 0.97, "N ↑", transform=ax.transAxes, ha="right", va="top", fontsize=10, weight="bold")
    jpeg: dict[str, Any] = {"pil_kwargs": {"quality": 85}} if fmt == "jpeg" else {}
    return charts.image(fig, fmt=fmt, **jpeg)


def _scale_bar(ax: Any, x: float, y: float, span: float) -> None:
    nice = [5, 10, 20, 25, 50, 100, 200, 250, 500, 1000]
    length = next((n for n in nice if n >= span / 5), nice[-1])
    bx, by = x + span * 0.04, y + span * 0.04
    ax.plot([bx, bx + length], [by, by], color="black", linewidth=2.5, zorder=8)
    ax.annotate(f"{length} m", (bx + length / 2, by), xytext=(0, 4), textcoords="offset points", ha="center",
                fontsize=8)

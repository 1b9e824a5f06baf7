"""The field pages: the phone report page (390 px), the public complaint form and the complaint triage queue."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, text

from gis import scope
from gis.campaign import checklist as ck
from gis.campaign import complaints as cp
from gis.campaign.actors import CHECKLIST_ROLES, REPORTERS, TRIAGERS, Actor
from gis.campaign.deadlines import local_today
from gis.campaign.manual_rules import MANUAL_RULES
from gis.config import complaint_settings
from gis.store import read_layer
from web import i18n, popups
from web.assets import STATIC_URL
from web.basemap import display_crs
from web.maps import STYLES, geojson_layer, new_map, render_page
from web.pages import OutOfJurisdiction, _js_json, _source_attributions, render_template, role_label

_SCRIPTS = [f"{STATIC_URL}/firelane/draw.js", f"{STATIC_URL}/firelane/field.js"]
_CSS = [f"{STATIC_URL}/firelane/field.css"]


def _categories(names: Any) -> list[dict[str, str]]:
    return [{"category": c, "title": i18n.tr(MANUAL_RULES[c].title_zh, MANUAL_RULES[c].title_en)} for c in names]


def _form_page(*, engine: Engine, layer: str, where: str | None, params: dict[str, Any], title: str, body: str,
               endpoint: str) -> str:
    cap = 2000
    frame = read_layer(layer, engine=engine, where=where, params=params,
                       columns=["id", "ref", "name", "source"]).head(cap)
    m = new_map([frame])
    geojson_layer(frame, name=i18n.layer_label(layer), style=STYLES[layer],
                  tooltip=frame["name"].map(popups.text)).add_to(m)
    config = {"gcj02": display_crs() == "gcj02", "endpoint": endpoint, "labels": i18n.js_labels("field")}
    js = f"firelaneField({{map}}, {_js_json(config)});"
    return render_page(m, title=title, body_html=body, scripts=_SCRIPTS, inline_js=[js], css=_CSS,
                       attributions=_source_attributions(frame), layer_control=False)


def report_page(*, engine: Engine, actor: Actor) -> str:
    """/field/report: an inspector or property company files a hazard from the phone (camera + GPS)."""
    if actor.role not in REPORTERS:
        raise OutOfJurisdiction("report")
    where, params = scope.actor_filter("compounds", actor.streets, actor.compounds)
    body = render_template("field_report.html", user=actor, role_label=role_label(actor.role),
                           categories=_categories(MANUAL_RULES))
    return _form_page(engine=engine, layer="compounds", where=where, params=params,
                      title=i18n.tr("现场上报", "Report a hazard") + " — firelane", body=body, endpoint="/reports")


def complaint_page(*, engine: Engine) -> str:
    """/complaints/new: the public form (no sign-in): point on the map, category, text, optional photo."""
    body = render_template("field_complaint.html", categories=_categories(cp.PUBLIC_CATEGORIES),
                           max_text=complaint_settings().max_text)
    return _form_page(engine=engine, layer="streets", where=None, params={},
                      title=i18n.tr("消防隐患举报", "Fire hazard complaint"), body=body, endpoint="/complaints")


def triage_page(*, complaints: list[dict[str, Any]], actor: Actor) -> str:
    """/field/complaints: the street office's queue of pending complaints with accept / reject."""
    if actor.role not in TRIAGERS:
        raise OutOfJurisdiction("triage")
    rows = [{**c, "category_label": i18n.tr(MANUAL_RULES[c["category"]].title_zh, MANUAL_RULES[c["category"]].title_en)
             if c["category"] in MANUAL_RULES else c["category"]} for c in complaints]
    return render_template("field_triage.html", user=actor, role_label=role_label(actor.role), complaints=rows,
                           labels=i18n.js_labels("field"))


def checklist_page(*, engine: Engine, actor: Actor, compound: str | None) -> str:
    """/field/checklist[/REF]: the property company's (or inspector's) self-inspection, item by item."""
    if actor.role not in CHECKLIST_ROLES:
        raise OutOfJurisdiction("checklist")
    context: dict[str, Any] = {"user": actor, "role_label": role_label(actor.role), "compound": compound,
                               "today": local_today().isoformat(), "labels": i18n.js_labels("field")}
    with engine.connect() as conn:
        if compound is not None:
            context["items"] = ck.checklist(conn, compound, actor)["items"]
        else:
            where, params = scope.actor_filter("compounds", actor.streets, actor.compounds)
            context["compounds"] = [dict(r._mapping) for r in conn.execute(text(
                f"SELECT t.ref, t.name FROM compounds t WHERE {where or 'TRUE'} ORDER BY t.ref LIMIT 500"), params)]
    return render_template("field_checklist.html", **context)

"""The campaign page: progress per street office with the charts, the spot-check draws and their record, downloads."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Engine

from gis.campaign import spotchecks as sc
from gis.campaign.campaigns import get_campaign
from gis.campaign.deadlines import local_today
from gis.campaign.focus import FOCUS_ITEMS
from gis.campaign.progress import COUNTS, LABELS, progress
from gis.campaign.stage_reports import chart_data, charts
from web import i18n
from web.documents import render


def render_campaign_page(campaign_id: int, *, streets: Sequence[str] | None, role: str, today: date | None = None,
                         engine: Engine) -> str:
    """The page's HTML (every user string escaped by Jinja's autoescape; the charts inlined as PNG)."""
    today = today or local_today()
    prog = progress(campaign_id, today=today, streets=streets, engine=engine)
    codes = [r["street"] for r in prog["streets"]]
    with engine.connect() as conn:
        campaign = get_campaign(campaign_id, conn=conn)
        pngs = charts(chart_data(conn, codes, today=today, since=campaign.starts_on))
    draws = sc.within(sc.list_draws(campaign_id, engine=engine), streets)
    names = {s["street"]: s["name"] or s["street"] for s in prog["streets"]}
    ctx: dict[str, Any] = {
        "p": prog, "c": prog["campaign"], "counts": [(k, *LABELS[k]) for k in COUNTS],
        "charts": {k: base64.b64encode(v).decode() for k, v in pngs.items()}, "draws": draws,
        "items": [(f.code, f"{f.no}{i18n.tr(f.zh, f.en)}") for f in FOCUS_ITEMS], "role": role,
        "can_draw": role in sc.SPOT_CHECKERS, "district": streets is None, "street_names": names,
        "streets": prog["streets"], "rate": campaign.settings.get("spot_check_rate", 0.1),
        # the page's language (web.i18n: ?lang= or the cookie), as on the map pages
        "t": i18n.tr, "lang": i18n.lang(), "other_lang": "en" if i18n.lang() == "zh" else "zh",
        "result_label": i18n.result_label, "labels": i18n.js_labels("campaign"),
        "stage_names": {s.code: i18n.tr(s.name_zh, s.name_en) for s in campaign.stages},
    }
    return render("documents/campaign_page.html", **ctx)

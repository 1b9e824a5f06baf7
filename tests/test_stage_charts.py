"""The stage reports' charts: every title, legend and axis label in Chinese, then English, drawn in fonts that have
every glyph, as PNG."""

from __future__ import annotations

import re
import warnings
from datetime import date

from gis.campaign import stage_reports as sr
from gis.campaign.focus import FOCUS_ITEMS

HAN = re.compile(r"[\u4e00-\u9fff]")
LATIN = re.compile(r"[A-Za-z]{2,}")

DATA = {
    "weekly": [(date(2026, 3, 2), 5, 0), (date(2026, 3, 9), 3, 2), (date(2026, 3, 16), 0, 4)],
    "focus": {"vehicles": (6, 3), "design": (2, 1), "other": (1, 0)},
    "departments": [("交警/公安", 3, 1), ("综合执法/城管", 2, 2), ("未指定", 1, 0), ("区应急管理局", 1, 0)],
    "ageing": [2, 1, 0, 1],
}


def _bilingual(text: str) -> bool:
    return bool(HAN.search(text)) and bool(LATIN.search(text))


def test_every_chart_speaks_chinese_then_english():
    figures = sr.chart_figures(DATA)
    assert set(figures) == {"trend", "focus", "departments", "ageing"}
    for name, fig in figures.items():
        ax = fig.axes[0]
        title = ax.get_title()
        han, latin = HAN.search(title), LATIN.search(title)
        assert _bilingual(title) and han is not None and latin is not None and han.start() < latin.start(), name
        legend = ax.get_legend()
        for label in legend.get_texts() if legend is not None else ():
            assert _bilingual(label.get_text()), (name, label.get_text())
    focus = [t.get_text() for t in figures["focus"].axes[0].get_xticklabels()]
    assert len(focus) == len(FOCUS_ITEMS) + 1 and all(_bilingual(t) for t in focus), focus
    assert [f"{f.short_zh}" in t and f.short_en in t for f, t in zip(FOCUS_ITEMS, focus, strict=False)] == \
        [True] * len(FOCUS_ITEMS)
    ageing = [t.get_text() for t in figures["ageing"].axes[0].get_xticklabels()]
    assert len(ageing) == 4 and all(_bilingual(t) for t in ageing), ageing
    departments = [t.get_text() for t in figures["departments"].axes[0].get_yticklabels()]
    assert departments == ["交警/公安\nTraffic police / public security",
                           "综合执法/城管\nComprehensive law enforcement /…",  # (shortened to fit the axis)
                           "未指定\nunassigned",
                           "区应急管理局"]  # a department the catalogue does not route to has no English name


def test_the_charts_are_pngs_with_every_glyph_in_their_fonts():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pngs = sr.charts(DATA)
    assert all(png[:8] == b"\x89PNG\r\n\x1a\n" for png in pngs.values())
    assert not [w for w in caught if "missing from font" in str(w.message)], [str(w.message) for w in caught]


def test_charts_without_data_say_so_in_both_languages():
    figures = sr.chart_figures({"weekly": [], "focus": {}, "departments": [], "ageing": [0, 0, 0, 0]})
    for name in ("trend", "departments"):
        assert any(t.get_text() == "暂无数据 no data" for t in figures[name].axes[0].texts), name

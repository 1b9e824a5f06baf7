"""What the command line prints from the data is text: a control character or a bidirectional control in a ref, a
note or a cell of an imported file is shown as an escape, never run by the terminal (no cursor moves, cleared
screens, window titles, overwritten lines or reordered text)."""

from __future__ import annotations

import re

import geopandas as gpd
import shapely

from api.cli_errors import FirelaneError
from api.hazard_cli import HazardCliError
from gis.checks import output
from gis.terminal_safety import display_width, table, terminal_lines, terminal_text

HOSTILE = "L1\x1b]0;pwned\x07\x1b[2J\r\nX\t\x9b31m\x7f\u202eevil\u2066"
#: What a terminal would act on: C0 controls (line breaks and tabs allowed where said), DEL, C1, bidi controls.
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def test_every_control_and_bidirectional_character_becomes_an_escape():
    shown = terminal_text(HOSTILE)
    assert shown == "L1\\x1b]0;pwned\\x07\\x1b[2J\\r\\nX\\t\\x9b31m\\x7f\\u202eevil\\u2066"
    assert not RAW.search(shown) and "\n" not in shown and "\t" not in shown
    assert terminal_text("消防车道 L1, 甲物业") == "消防车道 L1, 甲物业"  # text stays as it is
    assert terminal_text(12) == "12"


def test_a_message_of_several_lines_keeps_its_lines_and_tabs_only():
    shown = terminal_lines(f"第 3 行 row 3:\n\tref {HOSTILE!s}")
    assert shown.startswith("第 3 行 row 3:\n\tref L1\\x1b]0;pwned")
    assert not RAW.search(shown) and "\\r" in shown  # a carriage return would overwrite the line before it


def test_the_command_lines_errors_show_the_values_they_quote_as_text():
    for error in (FirelaneError(f"no compound {HOSTILE}"), HazardCliError(f"no unit {HOSTILE}")):
        message = error.format_message()
        assert "no " in message and "\\x1b]0;pwned\\x07" in message and not RAW.search(message)


def test_the_check_table_shows_a_hostile_ref_and_message_as_text_in_their_columns():
    frame = gpd.GeoDataFrame(
        {"key": ["k1", "k2"], "rule": ["LANE-CLEAR"] * 2, "verdict": ["fail"] * 2, "compound_ref": [HOSTILE, "C2"],
         "subject_layer": ["fire_lanes"] * 2, "subject_ref": [HOSTILE, "L2"], "other_refs": [[HOSTILE], []],
         "department": [HOSTILE, "街道办"], "message": [f"消防车道 {HOSTILE} 净宽不足", "ok"]},
        geometry=[shapely.Point(120, 30)] * 2, crs=4326)
    table = output.to_table(frame, max_message=200)
    assert not RAW.search(table) and "\t" not in table and "\r" not in table
    lines = table.splitlines()
    assert len(lines) == 2 + 2 + 1 + 2  # header, rule, two rows, blank, summary of two lines
    assert "fire_lanes:L1\\x1b]0;pwned\\x07" in lines[2]
    head, first, second = lines[0], lines[2], lines[3]
    column = display_width(head[:head.index("说明 message")])
    assert display_width(first[:first.index("消防车道")]) == display_width(second[:second.index("ok")]) == column


def test_a_table_lines_up_chinese_and_hostile_cells_in_terminal_columns():
    shown = table(("ref", "单位 unit", "note"), [("L1", "甲物业", HOSTILE), (HOSTILE, None, "ok"), (7, "乙", "")])
    assert not RAW.search(shown) and "\t" not in shown and "\r" not in shown
    lines = shown.splitlines()
    assert len(lines) == 4 and lines[0].startswith("ref")
    starts = [display_width(line[:line.index(cell)]) for line, cell in zip(lines[1:], ("甲物业", "ok", "乙"),
                                                                          strict=True)]
    assert starts[0] == starts[2] == display_width(lines[0][:lines[0].index("单位")])
    assert lines[3] == "7" + " " * (display_width(terminal_text(HOSTILE)) - 1) + "  乙"  # trailing spaces go

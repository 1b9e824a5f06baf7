"""What text an input may hold: free text keeps tabs and line breaks and refuses other controls and bidirectional
overrides; an identifier is one visible line. Python's re and the Arrow (RE2) kernels the import uses agree."""

from __future__ import annotations

import pandas as pd
import pytest

from gis.text_rules import (
    IDENTIFIER_REFUSED,
    TEXT_REFUSED,
    json_refusal,
    one_line_breaks,
    refusal,
    refused_char,
    shown,
    why_refused,
)

FREE_TEXT_OK = ["车辆长期占用消防车道", "第一行\n第二行", "a\tb", "CRLF\r\nkept until stored", "Ω ≥ 4 m", "emoji 🚒",
                "Zürich", "", "العربية"]
FREE_TEXT_REFUSED = ["\x00", "bell\x07", "esc\x1b[31m", "\x7f", "NEL\x85", "\x9f", "evil\u202egnp.exe", "\u202a",
                     "\u2066isolate\u2069", "\u2068"]
IDENTIFIER_OK = ["CA-1", "小区 12 号", "B_1.2@x", "ＡＢ-１"]
IDENTIFIER_REFUSED_ONLY = ["B\t1", "B\n1", "B\r1", "B\u200b1", "B\u200c1", "B\u200d1", "B\u200e1", "B\u200f1",
                           "\ufeffB1", "B\u00ad1", "B\u20601", "B\u061c1", "B\u180e1"]


@pytest.mark.parametrize("value", FREE_TEXT_OK)
def test_free_text_keeps_tabs_line_breaks_and_every_script(value):
    assert refused_char(value) is None


@pytest.mark.parametrize("value", FREE_TEXT_REFUSED)
def test_free_text_refuses_controls_and_bidirectional_overrides(value):
    assert refused_char(value) is not None and refused_char(value, identifier=True) is not None


@pytest.mark.parametrize("value", IDENTIFIER_REFUSED_ONLY)
def test_an_identifier_is_one_visible_line(value):
    assert refused_char(value) is None  # (free text may hold them)
    assert refused_char(value, identifier=True) is not None


@pytest.mark.parametrize("value", IDENTIFIER_OK)
def test_ordinary_refs_are_identifiers(value):
    assert refused_char(value, identifier=True) is None


def test_the_refusal_names_the_character_in_both_languages():
    assert refusal("\x07") == "含控制字符 contains a control character (U+0007)"
    assert refusal("\n") == "含换行或制表符 contains a line break or tab (U+000A)"
    assert refusal("\u202e") == ("含不可见或改变文字方向的字符 contains an invisible or direction-changing "
                                 "character (U+202E)")
    assert refused_char("ok\u202e\x07") == "\u202e"  # the first one


def test_why_a_value_is_refused_is_the_refusal_of_its_first_refused_character():
    assert why_refused(None) is None and why_refused("甲物业\n第二行") is None
    assert why_refused("甲\u202e物业") == refusal("\u202e")
    assert why_refused("B\u200b1") is None and why_refused("B\u200b1", identifier=True) == refusal("\u200b")


def test_a_browsers_line_breaks_are_stored_as_lf():
    assert one_line_breaks("a\r\nb\rc\nd") == "a\nb\nc\nd"


def test_the_arrow_kernels_read_the_patterns_as_python_does():
    samples = FREE_TEXT_OK + FREE_TEXT_REFUSED + IDENTIFIER_OK + IDENTIFIER_REFUSED_ONLY
    arrow = pd.Series(samples, dtype="string[pyarrow]")
    for pattern, identifier in ((TEXT_REFUSED, False), (IDENTIFIER_REFUSED, True)):
        got = arrow.str.contains(pattern, regex=True).tolist()
        assert got == [refused_char(v, identifier=identifier) is not None for v in samples], pattern


def test_an_extra_object_is_refused_for_its_first_bad_key_or_string_at_any_depth():
    assert json_refusal({"备注": "第一行\n第二行\t", "n": [1, 2.5, None, True, {"k": "ok"}]}) is None
    assert json_refusal({"a": "x", "b": {"c": ["ok", "evil\u202egnp"]}}) == f"b.c[1]: {refusal(chr(0x202E))}"
    # a key is an identifier (it becomes a column): named with the refused character written out
    assert json_refusal({"k\u200bk": 1}) == f"'k\\u200bk' (键 key): {refusal(chr(0x200B))}"
    assert json_refusal({"n": {"line\nbreak": 1}}) == f"n.'line\\nbreak' (键 key): {refusal(chr(10))}"
    assert json_refusal("\x1b") == refusal("\x1b") and json_refusal(7) is None


def test_a_deep_extra_object_is_walked_without_recursion():
    deep: dict = {}
    node = deep
    for _ in range(5_000):
        node["x"] = {}
        node = node["x"]
    node["y"] = "esc\x1b"
    why = json_refusal(deep)
    assert why is not None and why.endswith(refusal("\x1b")) and why.startswith("…")  # the path's tail only


def test_shown_writes_out_only_the_refused_characters():
    assert shown("备注") == "备注"
    assert shown("备\u200b注\t\x1b\u202e") == "备\\u200b注\\t\\x1b\\u202e"
    assert shown("a\tb", identifier=False) == "a\tb"  # free text keeps its tabs

"""The hazard life cycle as a specification (no database): states, labels, the role table, required fields."""

from __future__ import annotations

import ast
from datetime import date, timedelta
from pathlib import Path

import pytest

from gis.campaign import lifecycle as lc
from gis.campaign.deadlines import default_days
from gis.campaign.departments import DEPARTMENTS, routed
from gis.checks.profiles import load_profile
from gis.layers import LAYERS

TODAY = date(2026, 12, 5)
ROLES = ("admin", "planner", "street_office", "traffic_brigade", "demolition", "fire_brigade", "viewer", "property")
FULL = {
    "assigned": lc.Change(department="交警/公安", unit="某物业公司", deadline=TODAY + timedelta(days=3)),
    "rectified": lc.Change(photos=(7,)),
    "reopened": lc.Change(note="复核不合格 still blocked"),
    "dismissed": lc.Change(note="误报 false positive"),
}


def check(current, target, role, change=None, hazard_department="交警/公安"):
    return lc.check_transition(current, target, role=role, change=change or FULL.get(target, lc.Change()),
                               today=TODAY, departments=DEPARTMENTS, hazard_department=hazard_department)


def test_the_states_are_designs_and_every_state_has_zh_and_en_labels():
    assert lc.STATES == ("open", "assigned", "rectifying", "rectified", "verified", "closed", "reopened", "dismissed")
    assert {lc.label(s) for s in lc.STATES} >= {"待整改", "已交办", "整改中", "已复核", "已销号", "重新打开", "已驳回"}
    assert all(lc.label(s, "en") != lc.label(s, "zh") for s in lc.STATES)
    assert lc.label(None) == "待补数据"  # a data gap is not a state


def test_the_sets_partition_the_states():
    assert lc.NEEDS_WORK | lc.AWAITING_VERIFICATION | lc.RESOLVED == set(lc.STATES)
    assert not lc.NEEDS_WORK & lc.RESOLVED and not lc.AWAITING_VERIFICATION & lc.RESOLVED
    assert "rectified" in lc.UNRESOLVED and "rectified" not in lc.NEEDS_WORK
    assert lc.REOPEN_ON_RECHECK == {"rectified", "verified", "closed"}
    assert "passed_recheck" not in lc.STATES and "passed_recheck" in lc.EVIDENCE  # evidence, not a state


def test_the_hazards_layer_takes_its_status_choices_from_the_life_cycle():
    assert LAYERS["hazards"].field("status").choices == lc.STATES


@pytest.mark.parametrize(("current", "target"), sorted(lc.TRANSITIONS))
def test_every_transition_is_allowed_for_its_roles_and_refused_for_every_other_role(current, target):
    allowed = lc.TRANSITIONS[(current, target)]
    for role in ROLES:
        if role in allowed:
            dept = "三改一拆办/综合执法" if role == "demolition" else "交警/公安"
            assert check(current, target, role, hazard_department=dept) is not None
        else:
            with pytest.raises(lc.RoleRefused):
                check(current, target, role)


def test_who_does_what():
    assert lc.allowed_next("open", "street_office") == ("assigned",)
    assert "verified" not in lc.allowed_next("rectified", "property")  # a property company never verifies
    assert "rectified" in lc.allowed_next("rectifying", "property")
    assert lc.allowed_next("rectified", "fire_brigade") == ("verified", "reopened", "dismissed")
    assert lc.allowed_next("verified", "fire_brigade") == ("closed", "reopened")
    assert "assigned" not in lc.allowed_next("open", "fire_brigade")  # street offices assign
    assert lc.allowed_next("closed", "street_office") == ()


@pytest.mark.parametrize(("current", "target"), [
    ("open", "rectified"), ("open", "verified"), ("assigned", "closed"), ("rectifying", "verified"),
    ("verified", "assigned"), ("dismissed", "open"), ("closed", "verified"), ("open", "open"),
])
def test_an_out_of_order_transition_names_the_allowed_next_states(current, target):
    with pytest.raises(lc.TransitionRefused) as info:
        check(current, target, "admin")
    assert info.value.allowed == lc.allowed_next(current)
    for state in info.value.allowed:
        assert state in str(info.value)


def test_an_unknown_state_is_refused_naming_the_field():
    with pytest.raises(lc.InvalidField) as info:
        check("open", "flying", "admin")
    assert info.value.field == "to"


def test_a_data_gap_cannot_move():
    with pytest.raises(lc.TransitionRefused):
        check(None, "assigned", "admin")


@pytest.mark.parametrize(("target", "missing", "field"), [
    ("assigned", lc.Change(unit="u", deadline=TODAY), "department"),
    ("assigned", lc.Change(department="交警/公安", deadline=TODAY), "unit"),
    ("assigned", lc.Change(department="交警/公安", unit="u"), "deadline"),
    ("assigned", lc.Change(department="交警/公安", unit="   ", deadline=TODAY), "unit"),
    ("rectified", lc.Change(note="done"), "photos"),
    ("reopened", lc.Change(), "note"),
    ("dismissed", lc.Change(note="  "), "note"),
])
def test_required_fields_are_named_when_missing(target, missing, field):
    current = {"assigned": "open", "rectified": "rectifying", "reopened": "rectified", "dismissed": "open"}[target]
    with pytest.raises(lc.InvalidField) as info:
        check(current, target, "admin", missing)
    assert info.value.field == field


def test_a_deadline_in_the_past_and_an_unknown_department_are_refused_naming_the_field():
    with pytest.raises(lc.InvalidField) as info:
        check("open", "assigned", "street_office",
              lc.Change(department="交警/公安", unit="u", deadline=TODAY - timedelta(days=1)))
    assert info.value.field == "deadline" and "past" in str(info.value)
    assert check("open", "assigned", "street_office",
                 lc.Change(department="交警/公安", unit="u", deadline=TODAY)).deadline == TODAY
    with pytest.raises(lc.InvalidField) as info:
        check("open", "assigned", "street_office", lc.Change(department="月球局", unit="u", deadline=TODAY))
    assert info.value.field == "department"


def test_text_is_trimmed_and_bounded():
    out = check("open", "assigned", "admin", lc.Change(department="交警/公安", unit="  物业  ", person="",
                                                       deadline=TODAY))
    assert out.unit == "物业" and out.person is None
    with pytest.raises(lc.InvalidField) as info:
        check("open", "dismissed", "admin", lc.Change(note="x" * (lc.MAX_NOTE + 1)))
    assert info.value.field == "note"
    with pytest.raises(lc.InvalidField):
        check("open", "dismissed", "admin", lc.Change(note="bad\x00byte"))
    with pytest.raises(lc.InvalidField) as info:
        check("rectifying", "rectified", "admin", lc.Change(photos=(0,)))
    assert info.value.field == "photos"


def test_department_bound_roles_act_only_on_their_departments_hazards():
    assert check("assigned", "rectifying", "traffic_brigade", hazard_department="交警/公安")
    with pytest.raises(lc.RoleRefused) as info:
        check("assigned", "rectifying", "traffic_brigade", hazard_department="物业/住建")
    assert info.value.field == "department"
    with pytest.raises(lc.RoleRefused):
        check("assigned", "rectifying", "demolition", hazard_department="交警/公安")


def test_default_deadlines_follow_the_profile():
    profile = load_profile()
    d = profile["DEADLINES"]
    assert default_days(rule="LANE-CLEAR", strength="mandatory", severity=3, department="交警/公安") == 1  # a car
    assert default_days(rule="LANE-CLEAR", strength="mandatory", severity=3, department="综合执法/城管") == 3
    assert default_days(rule="STRUCT-ON-LANE", strength="mandatory", severity=3, department="三改一拆办/综合执法") == 30
    assert default_days(rule="LANE-WIDTH", strength="mandatory", severity=3, department="物业/住建") == 365
    assert default_days(rule="HYD-SERVICE", strength="mandatory", severity=3, department="水利") == 365
    advisory = default_days(rule="LANE-SLOPE", strength="advisory", severity=1, department="物业/住建")
    assert advisory == 365 * d["advisory_factor"]
    severe = default_days(rule="STRUCT-ON-LANE", strength="mandatory", severity=d["severe_at"], department=None)
    assert severe == 30 * d["severe_factor"]
    # a MANUAL-* rule has its own default in the manual catalogue (an empty extinguisher: 3 days); a MANUAL id the
    # catalogue does not know falls back to the profile's `manual` family
    assert default_days(rule="MANUAL-EXTINGUISHER", strength=None, severity=None, department=None) == 3
    assert default_days(rule="MANUAL-ILLEGAL-STRUCTURE", strength=None, severity=None, department=None) == 30
    assert default_days(rule="MANUAL-UNKNOWN", strength=None, severity=None, department=None) == 7


def test_routing_strings_split_into_known_departments():
    assert routed("交警/公安; 综合执法/城管") == ("交警/公安", "综合执法/城管")
    assert routed(None) == () and routed("月球局") == ()


def test_no_other_module_keeps_its_own_list_of_states():
    """The states live in gis/campaign/lifecycle.py only: no other source spells out a tuple/set of them (a literal
    collection of three or more state names that are most of its strings; lists of count names such as
    ("found", "rectified", "verified", "open", "overdue", ...) are something else)."""
    root = Path(__file__).resolve().parents[1]
    offenders = []
    for path in [*root.glob("gis/**/*.py"), *root.glob("api/**/*.py"), *root.glob("web/**/*.py")]:
        if path.name == "lifecycle.py" or "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Tuple | ast.Set | ast.List):
                values = {e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
                states = values & set(lc.STATES)
                if len(states) >= 3 and len(states) * 3 >= len(values) * 2:
                    offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert offenders == []

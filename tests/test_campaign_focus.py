"""The campaign's focus items (整治重点): every rule about fire lanes, aerial areas, separations, structures and
parking counts under one of the plan's four items, never as 其他."""

from __future__ import annotations

from gis.campaign.focus import BY_CODE, OTHER, focus_of
from gis.checks.catalog import RULES

#: Families whose every rule is one of the plan's focus items (hydrant facilities and e-bike sites may be 其他).
FOCUS_FAMILIES = {"lanes", "aerial", "separation", "structures", "parking"}


def test_every_lane_aerial_separation_structure_and_parking_rule_has_a_focus_item():
    loose = [r.id for r in RULES.values() if r.family in FOCUS_FAMILIES and focus_of(r.id) == OTHER[0]]
    assert loose == []


def test_a_truck_that_cannot_turn_is_a_lane_not_built_to_the_design_codes():
    assert focus_of("LANE-TURN") == "design"
    assert "LANE-TURN" in BY_CODE["design"].rules


def test_a_rule_of_no_item_is_other():
    assert focus_of("HYD-SERVICE") == OTHER[0] and focus_of(None) == OTHER[0]

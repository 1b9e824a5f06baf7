"""E-bikes: EBIKE-INDOOR (lobby, stairwell, corridor, exit) and EBIKE-SITE (on a lane / aerial area, too close)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from checks_support import PROFILE, context, feat, pt, rect

from gis.checks import ebikes


@pytest.mark.parametrize("location", ["lobby", "stairwell", "corridor", "exit"])
def test_indoor_report_in_a_common_area_fails(location: str) -> None:
    report = feat("EB1", pt(5, 5), kind="indoor_report", location=location, building_ref="B1", charging=True)
    f = ebikes.check(context(ebike_sites=[report])).iloc[0]
    assert (f.rule, f.verdict, f.subject_ref, f.subject_layer, f.other_refs) == (
        "EBIKE-INDOOR", "fail", "EB1", "ebike_sites", ["B1"])
    assert "充电" in f.message and "charged" in f.message_en
    assert f.department == "街道; 物业"


def test_indoor_report_outdoors_or_unlocated_is_not_a_finding() -> None:
    reports = [feat("EB1", pt(5, 5), kind="indoor_report", location="outdoor"),
               feat("EB2", pt(6, 5), kind="indoor_report")]
    assert len(ebikes.check(context(ebike_sites=reports))) == 0


SITE_W = 10.0
HOME = feat("B1", rect(0, 0, 20, 10), use="residential")


def site(ref: str, x0: float, **attrs) -> dict:
    return feat(ref, rect(x0, 0, x0 + SITE_W, 5), kind="centralised_site", **attrs)


@pytest.mark.parametrize(("gap", "fails"), [(5.9, True), (6.1, False)])
def test_site_closer_than_6_m_to_a_residential_building_fails(gap: float, fails: bool) -> None:
    found = ebikes.check(context(ebike_sites=[site("ES1", 20 + gap)], buildings=[HOME]))
    assert len(found) == int(fails)
    if fails:
        f = found.iloc[0]
        assert (f.rule, f.verdict, f.subject_ref, f.other_refs) == ("EBIKE-SITE", "fail", "ES1", ["B1"])
        assert f.measured == pytest.approx(5.9) and f.required == pytest.approx(6.0)
        assert f.geometry.length == pytest.approx(5.9)


def test_the_separation_is_a_profile_value() -> None:
    city = replace(PROFILE, values={**PROFILE.values, "EBIKE-SITE": {"min_separation_m": 10.0}})
    ctx = context(ebike_sites=[site("ES1", 28.0)], buildings=[HOME])
    assert len(ebikes.check(ctx)) == 0
    ctx.profile = city
    assert ebikes.check(ctx).iloc[0].required == pytest.approx(10.0)


def test_site_near_a_non_residential_building_is_fine() -> None:
    shop = feat("B2", rect(0, 0, 20, 10), use="commercial")
    assert len(ebikes.check(context(ebike_sites=[site("ES1", 23.0)], buildings=[shop]))) == 0


def test_site_on_a_fire_lane_or_aerial_area_fails_with_the_covered_area() -> None:
    lane = feat("L1", rect(50, -10, 54, 30), kind="through")
    aerial = feat("A1", rect(54, 0, 70, 10), building_ref="B9")
    found = ebikes.check(context(ebike_sites=[site("ES1", 52.0)], fire_lanes=[lane], aerial_areas=[aerial]))
    f = found.iloc[0]
    assert (f.rule, f.subject_ref, f.other_refs, f.unit) == ("EBIKE-SITE", "ES1", ["A1", "L1"], "m²")
    assert f.measured == pytest.approx(2 * 5 + 8 * 5)
    assert "消防车道" in f.message and "aerial area" in f.message_en


def test_site_beside_a_lane_does_not_occupy_it() -> None:
    lane = feat("L1", rect(50, -10, 54, 30), kind="through")
    assert len(ebikes.check(context(ebike_sites=[site("ES1", 54.0)], fire_lanes=[lane]))) == 0


def test_sites_of_another_compound_are_reported_there() -> None:
    theirs = site("ES1", 21.0)
    theirs["compound_ref"] = "C2"
    assert len(ebikes.check(context(ebike_sites=[theirs], buildings=[HOME]))) == 0

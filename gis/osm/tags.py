"""OpenStreetMap tag reading: which tags make which firelane feature, unit-aware number parsing, documented defaults."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

# ---------------------------------------------------------------------------------------------------------------
# Documented defaults (every value derived from one of these is marked `estimated`)
# ---------------------------------------------------------------------------------------------------------------

#: Storey height used when a building has `building:levels` but no `height` (DESIGN/RULES: 3 m per floor).
METRES_PER_LEVEL = 3.0
#: Fire-lane width when the way has no usable `width` tag: the GB 50016-2014 7.1.8 minimum clear width, so an
#: untagged lane is neither failed nor passed on a guess by itself; the feature is marked estimated.
DEFAULT_FIRE_LANE_WIDTH_M = 4.0
#: Width of one traffic lane when a road has `lanes` but no `width` (CJJ 37 urban lane 3.25-3.75 m).
METRES_PER_TRAFFIC_LANE = 3.5
#: Carriageway width by highway class when neither `width` nor `lanes` is tagged.
DEFAULT_ROAD_WIDTH_M: dict[str, float] = {
    "trunk": 14.0, "trunk_link": 7.0, "primary": 12.0, "primary_link": 7.0, "secondary": 10.0,
    "secondary_link": 7.0, "tertiary": 8.0, "tertiary_link": 6.0, "unclassified": 6.0, "residential": 6.0,
    "living_street": 5.0, "road": 6.0, "busway": 7.0, "service": 4.0, "track": 3.0,
}
#: Width of footways, paths, steps and cycleways inside compounds when untagged.
DEFAULT_WALKWAY_WIDTH_M = 1.5
#: Depth of a parking strip by orientation (parking:lane / parking:*:orientation), GB 50067-style stall sizes.
PARKING_DEPTH_M: dict[str, float] = {"parallel": 2.5, "diagonal": 4.5, "perpendicular": 5.0}
#: A gate or entrance node counts as a compound entrance within this distance of a compound boundary.
ENTRANCE_SNAP_M = 5.0

# ---------------------------------------------------------------------------------------------------------------
# Classification tables
# ---------------------------------------------------------------------------------------------------------------

#: Public highway network (roads kind "city" outside compounds). Motorways are left out: no hose is laid there.
CITY_HIGHWAYS = frozenset({
    "trunk", "trunk_link", "primary", "primary_link", "secondary", "secondary_link", "tertiary", "tertiary_link",
    "unclassified", "residential", "living_street", "road", "busway", "service",
})
#: Minor drivable ways that are fire lanes when they run inside a compound (their midpoint lies in one).
LANE_HIGHWAYS = frozenset({"service", "living_street", "residential", "unclassified", "track"})
#: Paths that become roads kind "walkway" inside compounds.
WALKWAY_HIGHWAYS = frozenset({"footway", "path", "pedestrian", "steps", "cycleway"})
#: `service=*` values that mark a dedicated fire/emergency access road (a fire lane wherever it lies).
EMERGENCY_SERVICE = frozenset({"emergency_access"})

#: Barrier nodes that make a compound entrance when they sit on a compound boundary, with the `gate` field value.
ENTRANCE_BARRIERS: dict[str, str] = {
    "gate": "gate", "swing_gate": "gate", "sliding_gate": "gate", "entrance": "none", "lift_gate": "barrier",
    "turnstile": "gate", "kissing_gate": "gate", "full-height_turnstile": "gate",
}
#: Entrance barriers only people pass.
PEDESTRIAN_BARRIERS = frozenset({"turnstile", "kissing_gate", "full-height_turnstile"})
#: Barrier nodes on a fire lane (not on a compound boundary) that obstruct it, with the obstruction kind.
OBSTRUCTION_BARRIERS: dict[str, str] = {
    "bollard": "bollard", "lift_gate": "gate", "block": "other", "gate": "gate", "swing_gate": "gate",
    "sliding_gate": "gate", "chain": "other", "jersey_barrier": "other",
}
#: Barrier ways (rows of bollards, blocks) that obstruct a lane where they cross it.
OBSTRUCTION_LINE_BARRIERS: dict[str, str] = {
    "bollard": "bollard", "block": "other", "chain": "other", "jersey_barrier": "other",
}
#: `bollard=*` values of bollards that can be taken away by the fire brigade.
REMOVABLE_BOLLARDS = frozenset({"removable", "rising", "foldable", "flexible"})
#: amenity=parking with these `parking=*` values is not at ground level and is left out.
OFF_GROUND_PARKING = frozenset({"underground", "multi-storey", "rooftop"})
#: Old scheme parking:lane:<side> values that mean vehicles park there, with their orientation.
PARKING_LANE_VALUES: dict[str, str] = {
    "parallel": "parallel", "diagonal": "diagonal", "perpendicular": "perpendicular", "orthogonal": "perpendicular",
    "marked": "parallel", "inline": "parallel", "yes": "parallel",
}
#: New scheme parking:<side> values that mean vehicles park there.
PARKING_SIDE_VALUES = frozenset({"lane", "street_side", "on_kerb", "half_on_kerb", "shoulder", "yes"})

BUILDING_USE: dict[str, str] = {
    **dict.fromkeys(("residential", "apartments", "house", "detached", "semidetached_house", "terrace",
                     "dormitory", "bungalow", "cabin", "farm", "houseboat", "static_caravan"), "residential"),
    **dict.fromkeys(("commercial", "retail", "office", "supermarket", "kiosk", "hotel", "shop"), "commercial"),
    **dict.fromkeys(("garage", "garages", "carport", "parking"), "garage"),
    **dict.fromkeys(("industrial", "warehouse", "factory", "manufacture", "storage_tank"), "industrial"),
    **dict.fromkeys(("school", "university", "college", "kindergarten", "hospital", "public", "civic",
                     "government", "church", "chapel", "cathedral", "mosque", "temple", "synagogue", "train_station",
                     "transportation", "fire_station", "sports_hall", "stadium", "museum", "library"), "public"),
    "mixed": "mixed",
}
HYDRANT_KIND: dict[str, str] = {"pillar": "above_ground", "underground": "underground", "wall": "wall",
                                "pipe": "other", "pond": "other", "suction_point": "other"}
HYDRANT_STATUS: dict[str, str] = {"out_of_service": "out_of_service", "broken": "damaged", "damaged": "damaged",
                                  "needs_maintenance": "damaged", "low_pressure": "low_pressure"}

#: Tag keys (exact) kept in `extra` because users find them useful; `ref` is kept as `ref_tag` (our `ref` is the id).
EXTRA_KEYS = frozenset({
    "name", "ref", "operator", "description", "note", "start_date", "access", "surface", "width", "est_width",
    "lanes", "maxheight", "maxwidth", "oneway", "incline", "height", "building", "building:levels", "roof:levels",
    "min_height", "landuse", "residential", "gated", "highway", "service", "emergency", "barrier", "entrance",
    "bollard", "amenity", "parking", "capacity", "fee", "couplings", "water_source", "colour", "level", "layer",
    "tunnel", "bridge", "motor_vehicle", "foot", "disused", "operational_status",
})
#: Tag key prefixes kept in `extra`.
EXTRA_PREFIXES = ("name:", "addr:", "fire_hydrant:", "parking:lane:", "parking:left", "parking:right",
                  "parking:both", "couplings:", "building:")

_UNITLESS = re.compile(r"^\s*(-?\d+(?:[.,]\d+)?)\s*([^\d\s].*)?$")
_FEET_INCHES = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*'\s*(?:(\d+(?:\.\d+)?)\s*\")?\s*$")


def useful_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The tags worth keeping in a feature's `extra` (name, addr:*, fire_hydrant:* and the describing tags)."""
    out = {}
    for k, v in tags.items():
        if k in EXTRA_KEYS or k.startswith(EXTRA_PREFIXES):
            out["ref_tag" if k == "ref" else k] = v
    return out


def _number(value: str | None) -> tuple[float, str] | None:
    """Leading number and lower-cased unit of a tag value ('4,5 m' → (4.5, 'm')), or None."""
    if value is None:
        return None
    m = _UNITLESS.match(value.split(";")[0])
    if not m:
        return None
    number = float(m.group(1).replace(",", "."))
    if not math.isfinite(number):
        return None
    return number, (m.group(2) or "").strip().lower()


def parse_length_m(value: str | None) -> float | None:
    """A length tag (height, width) in metres: '12', '12.5 m', '4,5', '40 ft', "13'6\"", '80 cm'; None if unreadable."""
    if value is None:
        return None
    fi = _FEET_INCHES.match(value)
    if fi:
        return float(fi.group(1)) * 0.3048 + float(fi.group(2) or 0) * 0.0254
    parsed = _number(value)
    if parsed is None:
        return None
    number, unit = parsed
    factor = {"": 1.0, "m": 1.0, "meter": 1.0, "meters": 1.0, "metre": 1.0, "metres": 1.0, "米": 1.0,
              "cm": 0.01, "mm": 0.001, "km": 1000.0, "ft": 0.3048, "feet": 0.3048, "'": 0.3048,
              "in": 0.0254, '"': 0.0254, "mi": 1609.344}.get(unit)
    return None if factor is None else number * factor


def parse_levels(value: str | None) -> float | None:
    """building:levels as a number of storeys ('6', '6;7' → 6, '2.5'); None if unreadable or negative."""
    parsed = _number(value)
    if parsed is None or parsed[1] or parsed[0] < 0:
        return None
    return parsed[0]


def parse_pressure_mpa(value: str | None) -> float | None:
    """fire_hydrant:pressure in MPa; OSM's default unit is bar ('4' → 0.4); 'suction' and the like → None."""
    parsed = _number(value)
    if parsed is None:
        return None
    number, unit = parsed
    factor = {"": 0.1, "bar": 0.1, "mpa": 1.0, "kpa": 0.001, "psi": 0.00689476, "atm": 0.101325}.get(unit)
    return None if factor is None else number * factor


def parse_diameter_mm(value: str | None) -> int | None:
    """fire_hydrant:diameter in mm: '100', 'DN100', '100 mm', '4"' (inches); None if unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.upper().startswith("DN"):
        text = text[2:]
    parsed = _number(text)
    if parsed is None:
        return None
    number, unit = parsed
    factor = {"": 1.0, "mm": 1.0, "cm": 10.0, '"': 25.4, "in": 25.4, "inch": 25.4}.get(unit)
    return None if factor is None else int(round(number * factor))


def parse_flow_lps(value: str | None) -> float | None:
    """flow_rate / fire_hydrant:flow_capacity in L/s; OSM's default unit is l/min ('1000' → 16.7)."""
    parsed = _number(value)
    if parsed is None:
        return None
    number, unit = parsed
    factor = {"": 1 / 60, "l/min": 1 / 60, "lpm": 1 / 60, "l/s": 1.0, "m3/h": 1 / 3.6, "m³/h": 1 / 3.6}.get(unit)
    return None if factor is None else number * factor


def parse_percent(value: str | None) -> float | None:
    """incline as an absolute percentage ('8%' → 8, '-5 %' → 5); 'up'/'down' → None."""
    parsed = _number(value)
    if parsed is None or parsed[1] not in ("%", ""):
        return None
    return abs(parsed[0])


def parking_sides(tags: Mapping[str, str]) -> dict[str, str]:
    """The sides ('left'/'right') of a way where vehicles park, with their orientation, from either OSM scheme.

    Old scheme: ``parking:lane:{both,left,right}=parallel|diagonal|perpendicular|marked|…`` (``no_parking``,
    ``no_stopping``, ``fire_lane``, ``separate`` mean no strip). New scheme: ``parking:{both,left,right}=lane|
    street_side|on_kerb|half_on_kerb|…`` with ``parking:<side>:orientation``. Left and right follow the way's
    direction. Sides drawn separately are left to the amenity=parking features that draw them.
    """
    sides: dict[str, str] = {}
    for side in ("both", "left", "right"):
        targets = ("left", "right") if side == "both" else (side,)
        old = tags.get(f"parking:lane:{side}")
        if old is not None:
            for t in targets:
                if old in PARKING_LANE_VALUES:
                    sides[t] = PARKING_LANE_VALUES[old]
                else:
                    sides.pop(t, None)
        new = tags.get(f"parking:{side}")
        if new is not None:
            orientation = tags.get(f"parking:{side}:orientation", "parallel")
            for t in targets:
                if new in PARKING_SIDE_VALUES:
                    sides[t] = orientation if orientation in PARKING_DEPTH_M else "parallel"
                else:
                    sides.pop(t, None)
    return sides


def is_emergency_lane(tags: Mapping[str, str]) -> bool:
    """A service way designated for fire/emergency access (service=emergency_access, emergency=yes|designated,
    emergency_access=yes)."""
    return tags.get("highway") == "service" and (
        tags.get("service") in EMERGENCY_SERVICE or tags.get("emergency") in ("yes", "designated")
        or tags.get("emergency_access") == "yes"
    )


def compound_gated(tags: Mapping[str, str]) -> bool | None:
    """Whether a residential area is a closed (gated) compound: gated=yes / access=private → True, gated=no → False."""
    gated = tags.get("gated")
    if gated in ("yes", "no"):
        return gated == "yes"
    if tags.get("access") in ("private", "no", "residents", "permit"):
        return True
    return None


def address(tags: Mapping[str, str]) -> str | None:
    """A one-line address from addr:full or addr:street + addr:housenumber (+ addr:city)."""
    if tags.get("addr:full"):
        return tags["addr:full"]
    parts = [tags.get("addr:street"), tags.get("addr:housenumber")]
    line = " ".join(p for p in parts if p)
    if line and tags.get("addr:city"):
        line = f"{line}, {tags['addr:city']}"
    return line or None

"""The departments a hazard can be assigned to (交办), with their English names, and the routing string's parts."""

from __future__ import annotations

#: Department name (as the rule catalogue routes findings) → English name.
DEPARTMENTS: dict[str, str] = {
    "交警/公安": "Traffic police / public security",
    "综合执法/城管": "Comprehensive law enforcement / urban management",
    "三改一拆办/综合执法": "Demolition office / law enforcement",
    "综合执法": "Comprehensive law enforcement",
    "综合执法(绿化)": "Law enforcement (greening)",
    "综合执法(绿化)/物业": "Law enforcement (greening) / property management",
    "物业/住建": "Property management / housing and construction",
    "物业": "Property company",
    "资源规划/住建": "Natural resources and planning / housing",
    "水利": "Water authority",
    "街道": "Street office",
    "消防救援": "Fire and rescue",
}


def routed(department: str | None) -> tuple[str, ...]:
    """The departments a finding was routed to ("交警/公安; 综合执法/城管" → both), known ones only."""
    if not department:
        return ()
    return tuple(p.strip() for p in department.split(";") if p.strip() in DEPARTMENTS)

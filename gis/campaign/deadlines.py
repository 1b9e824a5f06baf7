"""Rectification deadlines: profile defaults per rule family, rule, department and severity; overdue in SQL."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from gis.campaign import lifecycle as lc
from gis.campaign.manual_rules import BY_ID as MANUAL_BY_ID
from gis.checks.catalog import RULES
from gis.checks.profiles import Profile, load_profile
from gis.config import workflow_settings


def local_today() -> date:
    """Today in the campaign's time zone (FIRELANE_WORKFLOW_TIMEZONE, default Asia/Shanghai)."""
    return datetime.now(ZoneInfo(workflow_settings().timezone)).date()


def family_of(rule: str) -> str:
    """The rule family of a rule id (MANUAL-* reports are the `manual` family)."""
    if rule.startswith("MANUAL-"):
        return "manual"
    r = RULES.get(rule)
    return r.family if r is not None else "other"


def default_days(*, rule: str, strength: str | None, severity: float | None, department: str | None,
                 profile: Profile | None = None) -> int:
    """Days a hazard of `rule` gets by default (profile [DEADLINES]); at least one day."""
    d = (profile or load_profile()).values.get("DEADLINES", {})
    manual = MANUAL_BY_ID.get(rule)  # a MANUAL-* rule's own default, unless the profile names the rule
    fallback = manual.deadline_days if manual is not None else d.get("family_days", {}).get(
        family_of(rule), d.get("default_days", 30))
    days = float(d.get("rule_days", {}).get(rule, fallback))
    for dept, limit in d.get("department_days", {}).items():
        if department and dept in [p.strip() for p in department.split(";")]:
            days = min(days, float(limit))
    if strength == "advisory":
        days *= float(d.get("advisory_factor", 1.0))
    if severity is not None and severity >= float(d.get("severe_at", math.inf)):
        days *= float(d.get("severe_factor", 1.0))
    return max(1, math.ceil(days))


def default_deadline(*, rule: str, strength: str | None, severity: float | None, department: str | None,
                     today: date | None = None, profile: Profile | None = None) -> date:
    """The default deadline of a hazard assigned `today`."""
    return (today or local_today()) + timedelta(days=default_days(
        rule=rule, strength=strength, severity=severity, department=department, profile=profile))


def due_soon_days(profile: Profile | None = None) -> int:
    return int((profile or load_profile()).values.get("DEADLINES", {}).get("due_soon_days", 7))


_WORK = lc.sql_list(lc.NEEDS_WORK)
#: SQL (alias t, parameter :today) for a hazard past its deadline that still needs work.
OVERDUE_SQL = f"(t.status IN {_WORK} AND t.deadline < CAST(:today AS date))"
#: Whole days past the deadline (0 when not overdue).
DAYS_OVERDUE_SQL = f"CASE WHEN {OVERDUE_SQL} THEN CAST(:today AS date) - t.deadline ELSE 0 END"
#: Due today or within the next :soon days and still needing work ("due this week").
DUE_SOON_SQL = (f"(t.status IN {_WORK} AND t.deadline >= CAST(:today AS date) "
                f"AND t.deadline <= CAST(:today AS date) + CAST(:soon AS integer))")

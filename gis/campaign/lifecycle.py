"""The hazard life cycle: states, labels, transitions, the roles that may take each, required fields, refusals.

The one home of these facts: the ledger writer, the API, the CLI, pages, exports and auth import them from here.
Pure Python (no database, no HTTP): the workflow module applies them to rows, api/errors.py maps the errors.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from functools import lru_cache

from gis.text_rules import one_line_breaks, why_refused


class State(StrEnum):
    """A hazard's place in the rectification cycle (DESIGN.md's state names)."""

    OPEN = "open"
    ASSIGNED = "assigned"
    RECTIFYING = "rectifying"
    RECTIFIED = "rectified"
    VERIFIED = "verified"
    CLOSED = "closed"
    REOPENED = "reopened"
    DISMISSED = "dismissed"


#: Every state, in the order of the cycle (the `status` column's choices).
STATES: tuple[str, ...] = tuple(s.value for s in State)

#: zh/en labels: pages and exports show these, never the raw value.
LABELS: dict[str, tuple[str, str]] = {
    "open": ("待整改", "Open"),
    "assigned": ("已交办", "Assigned"),
    "rectifying": ("整改中", "Rectifying"),
    "rectified": ("已整改待复核", "Rectified (awaiting check)"),
    "verified": ("已复核", "Verified"),
    "closed": ("已销号", "Closed"),
    "reopened": ("重新打开", "Reopened"),
    "dismissed": ("已驳回", "Dismissed"),
}

#: States someone still has to work on: the work lists, overdue flags and "open" counts.
NEEDS_WORK: frozenset[str] = frozenset({"open", "assigned", "rectifying", "reopened"})
#: A rectification was claimed and waits for a re-check or a re-inspection.
AWAITING_VERIFICATION: frozenset[str] = frozenset({"rectified"})
#: Not yet shown to be fixed: a re-check that no longer finds these moves them to verified.
UNRESOLVED: frozenset[str] = NEEDS_WORK | AWAITING_VERIFICATION
#: Done with: fixed and confirmed, closed out (销号), or a false positive.
RESOLVED: frozenset[str] = frozenset({"verified", "closed", "dismissed"})
#: Rectified by the responsible unit, verified since or not (the campaign's 已整改 counts).
RECTIFIED_OR_LATER: frozenset[str] = frozenset({"rectified", "verified", "closed"})
#: Shown to be fixed, closed out since or not (已复核).
VERIFIED_OR_LATER: frozenset[str] = frozenset({"verified", "closed"})
#: A re-check that still finds a hazard in these states reopens it (event evidence `recheck_failed`), as a
#: failed spot check does: every state a rectification was claimed in.
REOPEN_ON_RECHECK: frozenset[str] = RECTIFIED_OR_LATER
#: A re-check that no longer finds a hazard in these states verifies it (evidence `passed_recheck`). Hazards never
#: claimed rectified are included: the condition is gone from the data (the car left), so the check has verified
#: it; the event's from-state shows it was never claimed, and a later run that finds it again reopens it.
VERIFY_ON_RECHECK: frozenset[str] = UNRESOLVED


class Evidence(StrEnum):
    """Why an event happened beyond a person's say-so (hazard_events.evidence)."""

    FOUND = "found"                    # a check run found it (the `open` event)
    PASSED_RECHECK = "passed_recheck"  # a check run no longer finds it (or finds it passing)
    RECHECK_FAILED = "recheck_failed"  # a check run still finds a hazard claimed fixed
    REINSPECTION = "reinspection"      # a person verified on site
    FIXED_ON_SPOT = "fixed_on_spot"    # 边查边改: found and fixed in one visit
    MANUAL = "manual"                  # filed by a person (MANUAL-* rules)


EVIDENCE: tuple[str, ...] = tuple(e.value for e in Evidence)

# --- who may do what ----------------------------------------------------------------------------------------------

#: Street offices assign (交办) and re-assign; admins may do everything a role may.
ASSIGNERS: frozenset[str] = frozenset({"admin", "street_office"})
#: The responsible departments and units: start work and claim it done (property companies only claim).
WORKERS: frozenset[str] = frozenset({"admin", "street_office", "traffic_brigade", "demolition", "property"})
#: Verify, refuse a claim (reopen), close out (销号): never the party that did the work.
VERIFIERS: frozenset[str] = frozenset({"admin", "fire_brigade"})
#: A finding is a false positive: only those who verify may say so.
DISMISSERS: frozenset[str] = frozenset({"admin", "fire_brigade"})
#: 边查边改: who may record a hazard found and fixed during one visit (it lands at `rectified`, never verified).
FIX_ON_SPOT: frozenset[str] = WORKERS | VERIFIERS
#: The pseudo-role of a check run (re-check driven moves; never offered to a person).
SYSTEM = "system"

#: (from, to) → the roles that may take that step. The whole table: nothing else grants a transition.
TRANSITIONS: dict[tuple[str, str], frozenset[str]] = {
    ("open", "assigned"): ASSIGNERS,
    ("assigned", "assigned"): ASSIGNERS,           # re-assignment (another unit, a new deadline)
    ("rectifying", "assigned"): ASSIGNERS,
    ("reopened", "assigned"): ASSIGNERS,
    ("assigned", "rectifying"): WORKERS,
    ("reopened", "rectifying"): WORKERS,           # the same unit starts again
    ("assigned", "rectified"): WORKERS,            # fixed without a separate "started" step
    ("rectifying", "rectified"): WORKERS,
    ("reopened", "rectified"): WORKERS,
    ("rectified", "verified"): VERIFIERS,
    ("rectified", "reopened"): VERIFIERS,          # verification refused (reason required)
    ("verified", "closed"): VERIFIERS,             # 销号
    ("verified", "reopened"): VERIFIERS,
    ("closed", "reopened"): VERIFIERS,
    ("dismissed", "reopened"): frozenset({"admin"}),   # a dismissal was itself a mistake
    **{(s, "dismissed"): DISMISSERS for s in ("open", "assigned", "rectifying", "rectified", "reopened")},
}

#: Roles bound to departments act only on hazards assigned to one of theirs (a street office acts in its streets,
#: a property company in its compounds: those are jurisdiction scopes, applied where hazards are read).
ROLE_DEPARTMENTS: dict[str, frozenset[str]] = {
    "traffic_brigade": frozenset({"交警/公安"}),
    "demolition": frozenset({"三改一拆办/综合执法", "综合执法/城管", "综合执法(绿化)"}),
}

#: Fields a transition to each state requires (beyond the role): checked by `check_transition`.
REQUIRED: dict[str, tuple[str, ...]] = {
    "assigned": ("department", "unit", "deadline"),
    "rectified": ("photos",),
    "reopened": ("note",),
    "dismissed": ("note",),
}

MAX_NOTE = 2000
MAX_DEPARTMENT = 100
MAX_UNIT = 200
MAX_PERSON = 100
MAX_PHOTOS = 50
#: The longest text a step may carry, per field of `Change` (characters, after trimming).
TEXT_LIMITS: dict[str, int] = {"note": MAX_NOTE, "department": MAX_DEPARTMENT, "unit": MAX_UNIT, "person": MAX_PERSON}


# --- errors (no HTTP here: api/errors.py maps them) ------------------------------------------------------------------


class WorkflowError(Exception):
    """A refused workflow request; `field` names the offending input when there is one."""

    def __init__(self, message: str, *, field: str | None = None, **extra: object) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra


class InvalidField(WorkflowError):
    """A required field is missing or a value is not acceptable (deadline in the past, unknown department)."""


class TransitionRefused(WorkflowError):
    """The hazard's current state does not lead to the requested one; names the allowed next states."""

    def __init__(self, current: str, target: str, allowed: Iterable[str]) -> None:
        self.current, self.target, self.allowed = current, target, tuple(allowed)
        nxt = ", ".join(self.allowed) or "(none)"
        super().__init__(f"不允许的状态变化 transition {current} → {target} not allowed; from {current}: {nxt}",
                         field="to", current=current, allowed=list(self.allowed))


class RoleRefused(WorkflowError):
    """The caller's role may not take this step (or acts for another department)."""


class StaleVersion(WorkflowError):
    """Someone else moved the hazard first (optimistic concurrency): carries its current state and version."""

    def __init__(self, hazard_id: int, current: str | None, version: int) -> None:
        self.current, self.version = current, version
        super().__init__(f"隐患已被他人修改 hazard {hazard_id} was changed meanwhile: now {current} (version {version})",
                         field="version", current=current, version=version)


class HazardNotFound(WorkflowError):
    """No such hazard, or not within the caller's jurisdiction (indistinguishable on purpose)."""


# --- the checks ----------------------------------------------------------------------------------------------------


def sql_list(states: Collection[str]) -> str:
    """The states as an SQL list, `('a', 'b')` (sorted): for `status IN ...` in the ledger's set-based SQL."""
    unknown = set(states) - set(STATES)
    if unknown:
        raise ValueError(f"not hazard states: {sorted(unknown)}")
    return "(" + ", ".join(f"'{x}'" for x in sorted(states)) + ")"


def label(state: str | None, lang: str = "zh") -> str:
    """The zh (default) or en label of a state; a data gap (no state) is 待补数据 / needs data."""
    if state is None:
        return "待补数据" if lang.startswith("zh") else "Needs data"
    zh, en = LABELS.get(state, (state, state))
    return zh if lang.startswith("zh") else en


@lru_cache(maxsize=256)
def allowed_next(current: str | None, role: str | None = None) -> tuple[str, ...]:
    """The states reachable from `current` (by `role`, when given), in cycle order."""
    cur = current or "open"
    return tuple(dict.fromkeys(to for (frm, to), roles in TRANSITIONS.items()
                               if frm == cur and (role is None or role in roles)))


@dataclass(frozen=True, kw_only=True)
class Change:
    """What a transition carries: a note (the reason for reopen/dismiss), assignment fields, photo ids."""

    note: str | None = None
    department: str | None = None
    unit: str | None = None
    person: str | None = None
    deadline: date | None = None
    photos: tuple[int, ...] = field(default_factory=tuple)
    evidence: str | None = None


def _clean(value: str | None, name: str, limit: int) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    value = one_line_breaks(value)
    if len(value) > limit:
        raise InvalidField(f"{name} 过长 {name} is longer than {limit} characters", field=name)
    why = why_refused(value)
    if why is not None:
        raise InvalidField(f"{name}: {why}", field=name)
    return value


def normalise(change: Change) -> Change:
    """The change with text trimmed (blank → None) and lengths checked; raises InvalidField naming the field."""
    if len(change.photos) > MAX_PHOTOS:
        raise InvalidField(f"照片过多 at most {MAX_PHOTOS} photos per step", field="photos")
    if any(not isinstance(p, int) or isinstance(p, bool) or p < 1 for p in change.photos):
        raise InvalidField("照片编号无效 photo ids are positive integers", field="photos")
    if change.evidence is not None and change.evidence not in EVIDENCE:
        raise InvalidField(f"未知证据 unknown evidence {change.evidence!r}", field="evidence")
    return Change(note=_clean(change.note, "note", MAX_NOTE),
                  department=_clean(change.department, "department", MAX_DEPARTMENT),
                  unit=_clean(change.unit, "unit", MAX_UNIT), person=_clean(change.person, "person", MAX_PERSON),
                  deadline=change.deadline, photos=tuple(dict.fromkeys(change.photos)), evidence=change.evidence)


def check_transition(current: str | None, target: str, *, role: str, change: Change, today: date,
                     departments: Collection[str], hazard_department: str | None = None) -> Change:
    """Whether `role` may move a hazard from `current` to `target` carrying `change`; returns the change normalised.

    Parameters
    ----------
    current : str or None
        The hazard's state (None: a data gap, which is not in the cycle and cannot move).
    target : str
        The requested state.
    role : str
        The caller's role.
    change : Change
        The transition's note, assignment fields and photo ids.
    today : date
        The date a deadline must not precede.
    departments : collection of str
        The known departments (an assignment names one of them).
    hazard_department : str, optional
        The department the hazard is assigned to (roles bound to departments act only on theirs).

    Raises
    ------
    TransitionRefused
        `target` is not reachable from `current` (the message names the allowed next states).
    RoleRefused
        The step exists but `role` may not take it.
    InvalidField
        A required field is missing or invalid (the error's `field` names it).
    """
    if target not in STATES:
        raise InvalidField(f"未知状态 unknown state {target!r}; states: {', '.join(STATES)}", field="to")
    if current is None:
        raise TransitionRefused("cannot_judge", target, ())
    roles = TRANSITIONS.get((current, target))
    if roles is None:
        raise TransitionRefused(current, target, allowed_next(current))
    if role not in roles:
        raise RoleRefused(f"角色 {role} 无权将隐患从 {label(current)} 改为 {label(target)} "
                          f"role {role!r} may not move a hazard {current} → {target}", field="to")
    bound = ROLE_DEPARTMENTS.get(role)
    if bound is not None and target != "assigned" and not (hazard_department and hazard_department in bound):
        raise RoleRefused(f"隐患不属于本部门 the hazard is assigned to {hazard_department or 'no department'}, "
                          f"not to {', '.join(sorted(bound))}", field="department")
    change = normalise(change)
    for name in REQUIRED.get(target, ()):
        if not getattr(change, name):
            what = {"note": "原因 a reason", "photos": "整改后照片 after-photos", "department": "责任部门 a department",
                    "unit": "责任单位 a responsible unit", "deadline": "整改期限 a deadline"}[name]
            raise InvalidField(f"{target} 需要{what} moving to {target} requires {name}", field=name)
    if target == "assigned":
        if change.department not in departments:
            raise InvalidField(f"未知部门 unknown department {change.department!r}; known: "
                               f"{', '.join(sorted(departments))}", field="department")
        if change.deadline is not None and change.deadline < today:
            raise InvalidField(f"整改期限已过 deadline {change.deadline.isoformat()} is in the past "
                               f"(today {today.isoformat()})", field="deadline")
    return change

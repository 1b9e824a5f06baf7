"""Who acts on the field side: user name, role and jurisdiction (streets, compounds), free of HTTP."""

from __future__ import annotations

from dataclasses import dataclass

#: Roles that may file manual reports (inspectors of every department and property companies; not viewers).
REPORTERS: frozenset[str] = frozenset({
    "admin", "planner", "street_office", "traffic_brigade", "demolition", "fire_brigade", "property",
})
#: Roles that triage public complaints (the street office of the complaint's street, and admins).
TRIAGERS: frozenset[str] = frozenset({"admin", "street_office"})
#: Roles that record a compound's self-inspection checklist (the property company, street office inspectors).
CHECKLIST_ROLES: frozenset[str] = frozenset({"admin", "street_office", "property"})


@dataclass(frozen=True)
class Actor:
    """The caller: `streets`/`compounds` limit what it sees and writes (None = no limit of that kind)."""

    username: str
    role: str
    streets: tuple[str, ...] | None = None
    compounds: tuple[str, ...] | None = None

    def sees(self, street_code: str | None, compound_ref: str | None) -> bool:
        """Whether a thing in this street and compound lies inside the caller's jurisdiction."""
        if self.streets is not None and street_code not in self.streets:
            return False
        return self.compounds is None or compound_ref in self.compounds

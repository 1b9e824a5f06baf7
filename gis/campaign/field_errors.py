"""Domain errors of the field side (photos, reports, complaints, checklists): no HTTP here; api/errors.py maps them."""

from __future__ import annotations

from gis.campaign.lifecycle import WorkflowError


class FieldSideError(WorkflowError):
    """Base of the field side's refusals; `field` names the input at fault when there is one."""


class InvalidInput(FieldSideError):
    """A value is malformed or out of range (the field is named)."""


class UnsupportedMedia(FieldSideError):
    """A file is not one of the accepted types (judged from its content, never its name)."""


class TooLarge(FieldSideError):
    """A file is over the byte or pixel limit."""


class NotVisible(FieldSideError):
    """The thing does not exist or lies outside the caller's jurisdiction (the two are not told apart)."""


class NotPermitted(FieldSideError):
    """The caller's role may not do this."""


class RateLimited(FieldSideError):
    """Too many submissions from one address; `retry_after` seconds until the next is accepted."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, field="address")
        self.retry_after = retry_after


class StateConflict(FieldSideError):
    """The thing is no longer in a state that allows this (e.g. a complaint already triaged)."""

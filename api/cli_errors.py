"""The command line's own error: one clear message, no traceback, a non-zero exit."""

from __future__ import annotations

import click


class FirelaneError(click.ClickException):
    """An error shown as a clear message (no traceback) with a non-zero exit."""

"""The command line's own error: one clear message, no traceback, a non-zero exit."""

from __future__ import annotations

import click

from gis.terminal_safety import terminal_lines


class FirelaneError(click.ClickException):
    """An error shown as a clear message (no traceback) with a non-zero exit; a value from the data quoted in it
    (a ref, a name, a cell of an imported file) is shown as text (`terminal_lines`)."""

    def format_message(self) -> str:
        return terminal_lines(self.message)

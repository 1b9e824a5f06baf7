"""Who runs the command line: the OS user, recorded in the audit when no `--as USER` is given."""

from __future__ import annotations

import getpass


def os_user() -> str:
    """The OS user's name ("cli" where the process has no passwd entry, as in some containers)."""
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - getpass raises OSError or KeyError depending on the platform
        return "cli"

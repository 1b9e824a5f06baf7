"""Terminal-injection safety for what the command line prints: data is shown as text, never run by the terminal.

A ref, a street name, a note or a value in an imported file can carry control characters: ESC sequences move the
cursor, clear the screen, retitle the window or set the clipboard, a carriage return overwrites the line it is on,
and bidirectional controls (the "Trojan Source" characters) reorder the text around them. Every value from the data
that a command prints in a table or a message goes through one of these first:
- `terminal_text(v)` for a cell or a value inside a line: every such character is written out as an escape
  (``\\x1b``, ``\\n``, ``\\u202e``), so it stays on its line and in its column;
- `terminal_lines(s)` for a message of several lines made by firelane around such values: line breaks and tabs
  stay, the rest is escaped.
JSON output needs neither: JSON escapes control characters itself (bidirectional controls are printable there, and
a JSON reader shows them as the text they are).

Tables are laid out in terminal columns (`display_width`, `pad`, `cut`): a Chinese character takes two.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from functools import cache
from itertools import accumulate

__all__ = ["cut", "display_width", "escaped", "pad", "table", "terminal_lines", "terminal_text"]

#: C0 controls, DEL, C1 controls, and the bidirectional marks, embeddings, overrides and isolates.
_CONTROLS = (*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), 0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F),
             *range(0x2066, 0x206A))
_NAMED = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}


def escaped(ch: str) -> str:
    """How one character is written out: \\t, \\n, \\r by name, else \\xNN or \\uNNNN."""
    c = ord(ch)
    return _NAMED.get(c, f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}")


_ESCAPES: dict[int, str] = {c: escaped(chr(c)) for c in _CONTROLS}
_ESCAPES_KEEPING_LINES = {c: e for c, e in _ESCAPES.items() if c not in (0x09, 0x0A)}


def terminal_text(value: object) -> str:
    """`str(value)` with every control character and bidirectional control written out as an escape."""
    return str(value).translate(_ESCAPES)


def terminal_lines(text: str) -> str:
    """`terminal_text` for a message of several lines: its line breaks and tabs stay (a carriage return does not:
    it would let a value overwrite the line before it)."""
    return text.translate(_ESCAPES_KEEPING_LINES)


@cache
def _char_width(ch: str) -> int:
    """Terminal columns of one character: 2 for East Asian wide and fullwidth ones (Chinese), else 1."""
    return 2 if unicodedata.east_asian_width(ch) in "WF" else 1


class _DropWide(dict[int, int | None]):
    """A `str.translate` table that drops East Asian wide and fullwidth characters and keeps the others, each
    code point classified once on first sight: the count a translation drops is a string's extra columns."""

    def __missing__(self, code: int) -> int | None:
        kept = None if _char_width(chr(code)) == 2 else code
        self[code] = kept
        return kept


_DROP_WIDE = _DropWide()


def display_width(s: str) -> int:
    """Terminal columns `s` takes."""
    return len(s) if s.isascii() else 2 * len(s) - len(s.translate(_DROP_WIDE))


def pad(s: str, width: int, own: int | None = None) -> str:
    """`s` padded with spaces to `width` terminal columns (`own`: its width, when the caller has it)."""
    return s + " " * (width - (display_width(s) if own is None else own))


def cut(s: str, width: int) -> str:
    """`s` in at most `width` terminal columns: whole characters, and "…" where it was cut."""
    if display_width(s) <= width:
        return s
    fits = sum(1 for used in accumulate(map(_char_width, s)) if used <= width - 1)
    return s[:fits] + "…"


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Rows under `header` in terminal columns (a Chinese character takes two), two spaces apart: every cell through
    `terminal_text` (None as empty)."""
    cells = [[terminal_text(v if v is not None else "") for v in row] for row in rows]
    widths = [max(display_width(h), *(display_width(row[i]) for row in cells)) for i, h in enumerate(header)]
    return "\n".join("  ".join(pad(v, w) for v, w in zip(row, widths, strict=True)).rstrip()
                     for row in [list(header), *cells])

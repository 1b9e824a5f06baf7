"""What text an input may hold (imports, edits, forms, the command line): free text keeps tabs and line breaks, and
refuses every other control character and every bidirectional override; an identifier (a ref, a code) is one visible
line, so it refuses tabs, line breaks and invisible characters too. The output side is gis.terminal_safety and
gis.spreadsheet_safety."""

from __future__ import annotations

import re

from gis.terminal_safety import escaped

# C0 and C1 controls other than tab, line feed and carriage return, and DEL
_CONTROLS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
# bidirectional embeddings, overrides and isolates: they reorder what a page, a PDF or a sheet shows around them
_BIDI = "\u202a-\u202e\u2066-\u2069"
# what lets two refs that look the same differ: tab and line breaks, the soft hyphen, zero-width characters and
# direction marks, the byte-order mark
_INVISIBLE = r"\t\n\r" + "\u00ad\u061c\u180e\u200b-\u200f\u2060-\u2064\ufeff"

#: One character free text may not hold (a pattern both Python's re and RE2, which pandas' Arrow strings use, read).
TEXT_REFUSED = f"[{_CONTROLS}{_BIDI}]"
#: One character an identifier may not hold.
IDENTIFIER_REFUSED = f"[{_CONTROLS}{_BIDI}{_INVISIBLE}]"
_TEXT, _IDENTIFIER = re.compile(TEXT_REFUSED), re.compile(IDENTIFIER_REFUSED)


def refused_char(value: str, *, identifier: bool = False) -> str | None:
    """The first character of `value` that free text (or an identifier) may not hold, else None."""
    found = (_IDENTIFIER if identifier else _TEXT).search(value)
    return found.group() if found else None


def refusal(ch: str) -> str:
    """Why `ch` is refused, in Chinese and English, naming it (U+XXXX)."""
    code = f"U+{ord(ch):04X}"
    if ch in "\t\n\r":
        return f"含换行或制表符 contains a line break or tab ({code})"
    if ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F:
        return f"含控制字符 contains a control character ({code})"
    return f"含不可见或改变文字方向的字符 contains an invisible or direction-changing character ({code})"


def why_refused(value: str | None, *, identifier: bool = False) -> str | None:
    """Why `value` may not be stored as free text (or as an identifier), naming its first refused character; None
    when it may (or when there is no value)."""
    ch = refused_char(value, identifier=identifier) if value is not None else None
    return refusal(ch) if ch is not None else None


def shown(value: str, *, identifier: bool = True) -> str:
    """`value` with every character the rules refuse written out as the terminal writes it
    (gis.terminal_safety.escaped: \\t, \\x1b, \\u200b): a refused key or column name named in a message."""
    return (_IDENTIFIER if identifier else _TEXT).sub(lambda m: escaped(m.group()), value)


def json_refusal(value: object) -> str | None:
    """Why a JSON-like value (an `extra` object: dicts, lists, scalars, nested) may not be stored: the path to its
    first key that is no identifier or string that is no free text, and why; None when it may. Walked with a stack,
    not recursion (an import's JSON cell is parsed with Python's own depth limit only)."""
    stack: list[tuple[str, object]] = [("", value)]
    while stack:
        path, v = stack.pop()
        if isinstance(v, str):
            if (why := why_refused(v)) is not None:
                return f"{_short(path)}: {why}" if path else why
        elif isinstance(v, dict):
            for key, item in reversed(list(v.items())):
                if (why := why_refused(str(key), identifier=True)) is not None:
                    return f"{_short(path) + '.' if path else ''}'{shown(str(key))}' (键 key): {why}"
                stack.append((f"{path}.{key}" if path else str(key), item))
        elif isinstance(v, list | tuple):
            stack.extend((f"{path}[{i}]", item) for i, item in reversed(list(enumerate(v))))
    return None


def _short(path: str, limit: int = 120) -> str:
    return path if len(path) <= limit else "…" + path[-limit:]


def one_line_breaks(value: str) -> str:
    """CRLF and a lone CR as LF: a browser sends a textarea's lines as CRLF; they are stored as LF."""
    return value.replace("\r\n", "\n").replace("\r", "\n")

"""Formula-injection safety for every CSV and XLSX firelane writes: text is never run as a formula by Excel/WPS.

Use these in every writer (exports, forms, reports):
- CSV: `csv_frame(frame)` (or `csv_value(v)` per cell) prefixes text that starts like a formula (=, +, -, @, tab,
  CR) with a single quote, the OWASP rule; numbers stay numbers ("-3.5" in a text column is left alone too).
- XLSX: `xlsx_cell(ws, v)` for write-only sheets, `set_cell(cell, v)` for normal sheets: text cells are typed as
  strings, so "=HYPERLINK(...)" is shown, never evaluated (no quote added: the cell is text already).
- Reading a CSV back: `csv_unquote(series)` removes the quote `csv_value` added, so round trips are exact.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["FORMULA_PREFIXES", "csv_frame", "csv_unquote", "csv_value", "is_formula_like", "set_cell", "xlsx_cell"]

#: First characters that make Excel, WPS or LibreOffice read a cell as a formula (OWASP CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_START = re.compile(r"^[=+\-@\t\r]")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_QUOTED = re.compile(r"^'[=+\-@\t\r]")


def is_formula_like(value: object) -> bool:
    """Text a spreadsheet would take as a formula (a plain signed number such as "-3.5" is not)."""
    return isinstance(value, str) and bool(_FORMULA_START.match(value)) and not _NUMBER.match(value)


def csv_value(value: Any) -> Any:
    """One CSV cell: formula-like text gets a leading single quote; anything else is returned unchanged."""
    return "'" + value if is_formula_like(value) else value


def csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` safe to write as CSV: text cells of object/string columns neutralised, numbers untouched."""
    out = frame.copy()
    for col in out.columns:
        s = out[col]
        if not (s.dtype == object or isinstance(s.dtype, pd.StringDtype)):
            continue
        is_str = s.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
        if not is_str.any():
            continue
        text = s.where(is_str, "").astype(str)
        risky = is_str & text.str.match(_FORMULA_START).to_numpy(dtype=bool) & \
            ~text.str.match(_NUMBER).to_numpy(dtype=bool)
        if risky.any():
            values = s.to_numpy(dtype=object, copy=True)
            values[risky] = np.array(["'" + v for v in values[risky]], dtype=object)
            out[col] = pd.Series(values, index=s.index, dtype=object)
    return out


def csv_unquote(s: pd.Series) -> pd.Series:
    """Undo `csv_value` on a column read from CSV ("'=SUM(A1)" back to "=SUM(A1)")."""
    if s.dtype != object and not isinstance(s.dtype, pd.StringDtype):
        return s
    quoted = s.astype(object).map(lambda v: isinstance(v, str) and bool(_QUOTED.match(v)) and
                                  is_formula_like(v[1:]))
    if not quoted.any():
        return s
    return s.where(~quoted, s[quoted].str.slice(1))


def xlsx_cell(ws: Any, value: Any) -> Any:
    """A write-only-sheet cell (openpyxl WriteOnlyCell) for `value`: text typed as a string, never a formula."""
    from openpyxl.cell import WriteOnlyCell  # noqa: PLC0415 (heavy: only XLSX writers need it)

    if isinstance(value, np.generic):
        value = value.item()
    cell = WriteOnlyCell(ws, value=value)
    if isinstance(value, str):
        cell.data_type = "s"
    return cell


def set_cell(cell: Any, value: Any) -> Any:
    """Set a normal sheet's cell: text typed as a string (openpyxl would make "=..." a formula); returns the cell."""
    if isinstance(value, np.generic):
        value = value.item()
    cell.value = value
    if isinstance(value, str):
        cell.data_type = "s"
    return cell

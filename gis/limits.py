"""Input limits: sizes, archive members, rows, columns and `extra` keys checked before anything big is read."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from gis.config import limit_settings
from gis.text_rules import json_refusal

__all__ = ["LimitExceeded", "check_archive", "check_columns", "check_extra", "check_file", "check_rows",
           "first_nul"]

#: zip members smaller than this are never refused for their compression ratio (tiny files compress oddly).
RATIO_FLOOR_BYTES = 16 * 1024 * 1024


class LimitExceeded(ValueError):
    """An input over one of the FIRELANE_LIMIT_* limits; the message names the limit and the value found."""

    def __init__(self, what: str, value: float, setting: str, limit: float) -> None:
        self.value, self.setting, self.limit = value, setting, limit
        super().__init__(f"超出限制 limit exceeded: {what} {value:,} > FIRELANE_LIMIT_{setting.upper()}={limit:,}")


def check_file(path: Path) -> None:
    """The file (or, for a folder, its files together) is at most `file_bytes` on disk."""
    limit = limit_settings().file_bytes
    size = sum(p.stat().st_size for p in path.iterdir() if p.is_file()) if path.is_dir() else path.stat().st_size
    if size > limit:
        raise LimitExceeded(f"文件大小 file size of {path.name} (bytes)", size, "file_bytes", limit)


def check_archive(path: Path) -> None:
    """A zip (shapefile zip, XLSX, KMZ) inflates to at most `uncompressed_bytes`, has at most `archive_entries`
    members and no member inflates more than `compression_ratio` times: checked on the central directory, before
    any member is read (Python's zipfile then stops at the declared size and fails the CRC of a member that lies)."""
    settings = limit_settings()
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
    if len(infos) > settings.archive_entries:
        raise LimitExceeded(f"压缩包条目数 entries in {path.name}", len(infos), "archive_entries",
                            settings.archive_entries)
    total = sum(i.file_size for i in infos)
    if total > settings.uncompressed_bytes:
        raise LimitExceeded(f"解压后大小 {path.name} inflated (bytes)", total, "uncompressed_bytes",
                            settings.uncompressed_bytes)
    for info in infos:
        if info.file_size > RATIO_FLOOR_BYTES:
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > settings.compression_ratio:
                raise LimitExceeded(f"压缩比 compression ratio of {info.filename}", round(ratio, 1),
                                    "compression_ratio", settings.compression_ratio)


def check_rows(rows: int, what: str = "行数 rows") -> None:
    limit = limit_settings().rows
    if rows > limit:
        raise LimitExceeded(what, rows, "rows", limit)


def check_columns(columns: int, what: str = "列数 columns") -> None:
    limit = limit_settings().columns
    if columns > limit:
        raise LimitExceeded(what, columns, "columns", limit)


def check_extra(extra: dict) -> str | None:
    """Why one feature's `extra` object is refused (too many keys, a key too long, too large, or a key or text the
    text rules refuse: gis.text_rules.json_refusal), else None."""
    settings = limit_settings()
    if len(extra) > settings.extra_keys:
        return str(LimitExceeded("extra 键数 keys", len(extra), "extra_keys", settings.extra_keys))
    for key in extra:
        if not isinstance(key, str) or not key.strip():
            return f"extra 键不能为空 extra keys must be non-empty strings, got {key!r}"
        if len(key) > settings.extra_key_chars:
            return str(LimitExceeded(f"extra 键长度 key length of {key[:40]!r}…", len(key), "extra_key_chars",
                                     settings.extra_key_chars))
    size = len(json.dumps(extra, ensure_ascii=False, default=str).encode("utf-8"))
    if size > settings.extra_bytes:
        return str(LimitExceeded("extra 大小 size as JSON (bytes)", size, "extra_bytes", settings.extra_bytes))
    return json_refusal(extra)


def first_nul(path: Path, chunk: int = 1 << 20) -> tuple[int, int] | None:
    """(1-based line, byte offset) of the first NUL byte of a file, else None (read in chunks: stops at the first)."""
    lines, offset = 1, 0
    with path.open("rb") as f:
        while block := f.read(chunk):
            at = block.find(b"\x00")
            if at >= 0:
                return lines + block.count(b"\n", 0, at), offset + at
            lines += block.count(b"\n")
            offset += len(block)
    return None

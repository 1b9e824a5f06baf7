"""Files for the field-side tests: real pictures and PDFs made with Pillow, hostile look-alikes, bombs.

Imported by tests/test_field_*.py (`from field_support import ...`); it holds no tests itself.
"""

from __future__ import annotations

import io
import struct
import zlib

import pillow_heif
from PIL import Image

X0, Y0 = 121.50, 29.80  # the south-west corner of test_api_support's district


def picture(fmt: str = "JPEG", size: tuple[int, int] = (640, 480), *, gps: tuple[float, float] | None = None,
            taken: str | None = None, mode: str = "RGB") -> bytes:
    """A real picture in `fmt` (JPEG, PNG, WEBP, HEIF, PDF), optionally with EXIF time and GPS (lon, lat)."""
    pillow_heif.register_heif_opener()
    im = Image.new(mode, size, (200, 40, 40) if mode == "RGB" else None)
    kwargs = {}
    if gps is not None or taken is not None:
        exif = Image.Exif()
        if taken is not None:
            exif[0x8769] = {36867: taken}
        if gps is not None:
            lon, lat = gps
            exif[0x8825] = {1: "N", 2: _dms(lat), 3: "E", 4: _dms(lon)}
        kwargs["exif"] = exif.tobytes()
    out = io.BytesIO()
    im.save(out, format=fmt, **kwargs)
    return out.getvalue()


def _dms(deg: float) -> tuple[float, float, float]:
    d = int(deg)
    m = int((deg - d) * 60)
    return float(d), float(m), round((deg - d - m / 60) * 3600, 4)


HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect width="9"/></svg>'


def polyglot() -> bytes:
    """A real JPEG that carries an HTML/script payload in a comment: decodes fine, sniffs as HTML in a browser."""
    jpeg = picture("JPEG", (64, 64))
    payload = b"<html><script>fetch('/auth/me').then(r=>r.text()).then(alert)</script></html>"
    comment = b"\xff\xfe" + struct.pack(">H", len(payload) + 2) + payload
    return jpeg[:2] + comment + jpeg[2:]


def pdf_with_javascript() -> bytes:
    return (b"%PDF-1.4\n1 0 obj << /Type /Catalog /OpenAction 2 0 R >> endobj\n"
            b"2 0 obj << /S /JavaScript /JS (app.alert('x')) >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb's first bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")

"""Photos and documents of hazards, complaints and checklists: sniffed, bounded, EXIF-read, stored by content hash."""

from __future__ import annotations

import hashlib
import io
import math
import re
import unicodedata
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pillow_heif
from PIL import Image, ImageOps
from sqlalchemy import Connection, text

from gis import scope
from gis.campaign.field_errors import InvalidInput, NotVisible, TooLarge, UnsupportedMedia
from gis.campaign.storage import Storage, storage
from gis.config import photo_settings
from gis.layers import STORAGE_SRID

pillow_heif.register_heif_opener()

#: What may be uploaded: media type → (Pillow format or None for PDF, file suffix for downloads)
MEDIA_TYPES: dict[str, tuple[str | None, str]] = {
    "image/jpeg": ("JPEG", "jpg"),
    "image/png": ("PNG", "png"),
    "image/webp": ("WEBP", "webp"),
    "image/heic": ("HEIF", "heic"),
    "application/pdf": (None, "pdf"),
}
KINDS: tuple[str, ...] = ("before", "after", "other")
#: HEIF major brands of still pictures (ISO/IEC 23008-12): HEVC-coded and generic image containers
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1"}
#: Markup that makes a file a polyglot: a browser that sniffed it as HTML/SVG would run it
_MARKUP = re.compile(rb"<\s*(?:script|html|svg|iframe|body|object|embed|frameset|!doctype\s+html)\b|javascript:",
                     re.IGNORECASE)
#: PDF features that carry active content or other files
_PDF_ACTIVE = re.compile(rb"/(?:JavaScript|JS|Launch|EmbeddedFiles?|RichMedia|XFA|SubmitForm|ImportData)\b")
#: EXIF times without an offset are local time here (China Standard Time, no daylight saving)
_CST = timezone(timedelta(hours=8))


def sniff(data: bytes) -> str | None:
    """The media type a file's leading bytes declare (one of MEDIA_TYPES), None for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if len(data) >= 12 and data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return "image/heic"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    return None


@dataclass(frozen=True)
class Inspected:
    """What an accepted upload is: its hash, sniffed type, size, pixels, EXIF time and point, and a thumbnail."""

    sha256: str
    media_type: str
    size: int
    width: int | None = None
    height: int | None = None
    exif_time: datetime | None = None
    exif_lonlat: tuple[float, float] | None = None
    thumbnail: bytes | None = None


def _exif_time(exif: Image.Exif) -> datetime | None:
    sub = exif.get_ifd(0x8769)
    raw = sub.get(36867) or sub.get(36868) or exif.get(306)
    if not isinstance(raw, str):
        return None
    try:
        naive = datetime.strptime(raw.strip("\x00 ").strip(), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    offset = sub.get(36881) or sub.get(36880)
    tz: timezone = _CST
    if isinstance(offset, str):
        m = re.fullmatch(r"([+-])(\d{2}):(\d{2})", offset.strip("\x00 "))
        if m:
            sign = 1 if m.group(1) == "+" else -1
            tz = timezone(sign * timedelta(hours=int(m.group(2)), minutes=int(m.group(3))))
    return naive.replace(tzinfo=tz).astimezone(UTC)


def _degrees(value: Any) -> float | None:
    try:
        d, m, s = (float(v) for v in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    out = d + m / 60 + s / 3600
    return out if math.isfinite(out) else None


def _exif_lonlat(exif: Image.Exif) -> tuple[float, float] | None:
    """GPS longitude/latitude (WGS 84, as phones record them) from the EXIF GPS directory, None when absent."""
    gps = exif.get_ifd(0x8825)
    lat, lon = _degrees(gps.get(2)), _degrees(gps.get(4))
    if lat is None or lon is None:
        return None
    if str(gps.get(1, "N")).strip("\x00 ").upper() == "S":
        lat = -lat
    if str(gps.get(3, "E")).strip("\x00 ").upper() == "W":
        lon = -lon
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
        return None
    return lon, lat


def _thumbnail(im: Image.Image, px: int) -> bytes:
    im = ImageOps.exif_transpose(im)
    im.thumbnail((px, px))
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        im = flat
    elif im.mode != "RGB":
        im = im.convert("RGB")
    out = io.BytesIO()
    im.save(out, format="JPEG", quality=80)
    return out.getvalue()


def inspect(data: bytes, *, max_bytes: int | None = None, max_pixels: int | None = None,
            field: str = "file") -> Inspected:
    """Accept or refuse an upload by its content (never its name): type, size, pixels, no markup; read its EXIF.

    Raises TooLarge over the byte or pixel limit (Pillow's decompression-bomb guard is set to the same pixel
    limit), UnsupportedMedia for anything but JPEG/PNG/WebP/HEIC/PDF, for files that do not decode as the type
    their first bytes claim, and for polyglots (HTML/SVG/script inside a picture, active content in a PDF).
    """
    settings = photo_settings()
    max_bytes = settings.max_bytes if max_bytes is None else max_bytes
    max_pixels = settings.max_pixels if max_pixels is None else max_pixels
    if not data:
        raise InvalidInput("文件为空 the file is empty", field=field)
    if len(data) > max_bytes:
        raise TooLarge(f"文件过大 file is {len(data)} bytes, at most {max_bytes} accepted", field=field)
    media = sniff(data)
    if media is None:
        raise UnsupportedMedia("只接受 JPEG/PNG/WebP/HEIC 图片或 PDF accepted: JPEG, PNG, WebP, HEIC pictures "
                               "or PDF (judged from the content, not the name)", field=field)
    if _MARKUP.search(data):
        raise UnsupportedMedia("文件含有网页或脚本内容 the file carries HTML/SVG/script content (polyglot)",
                               field=field)
    digest = hashlib.sha256(data).hexdigest()
    fmt = MEDIA_TYPES[media][0]
    if fmt is None:
        tail = data[-1024:]
        if b"%%EOF" not in tail:
            raise UnsupportedMedia("PDF 文件不完整 the PDF is truncated (no %%EOF)", field=field)
        if _PDF_ACTIVE.search(data):
            raise UnsupportedMedia("PDF 含有脚本或附件 the PDF carries JavaScript, actions or embedded files",
                                   field=field)
        return Inspected(sha256=digest, media_type=media, size=len(data))
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data), formats=[fmt])
            width, height = im.size
            if width * height > max_pixels:
                raise TooLarge(f"图片像素过多 picture has {width}x{height} = {width * height} pixels, at most "
                               f"{max_pixels} accepted (decompression bomb?)", field=field)
            im.load()
            exif = im.getexif()
            shot_at, lonlat = _exif_time(exif), _exif_lonlat(exif)
            thumb = _thumbnail(im, settings.thumb_px)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise TooLarge(f"图片像素过多 picture over the pixel limit {max_pixels} (decompression bomb?)",
                       field=field) from exc
    except TooLarge:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure means "not a valid picture of that type"
        raise UnsupportedMedia(f"图片无法解码 the file does not decode as {media}: {type(exc).__name__}",
                               field=field) from exc
    return Inspected(sha256=digest, media_type=media, size=len(data), width=width, height=height,
                     exif_time=shot_at, exif_lonlat=lonlat, thumbnail=thumb)


def safe_filename(name: str | None, *, sha256: str, media_type: str) -> str:
    """A harmless download name: the client's base name without directories, controls or quotes, our suffix."""
    suffix = MEDIA_TYPES[media_type][1]
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = unicodedata.normalize("NFC", base)
    base = "".join(ch for ch in base if ch.isprintable() and ch not in '"<>:|?*;\x7f')
    stem = base.rsplit(".", 1)[0].strip(" .")[:80]
    return f"{stem or sha256[:12]}.{suffix}"


# --- the photos table -----------------------------------------------------------------------------------------

_COLUMNS = ("p.id, p.sha256, p.hazard_id, p.complaint_id, p.checklist_id, p.compound_ref, p.street_code, p.kind, "
            "p.media_type, p.size_bytes, p.width, p.height, p.exif_time, p.filename, p.uploaded_by, p.uploaded_at, "
            "ST_X(p.exif_geom) AS exif_lon, ST_Y(p.exif_geom) AS exif_lat")


@dataclass(frozen=True)
class Owner:
    """What a photo belongs to, with the compound and street derived from it (never from the client)."""

    hazard_id: int | None = None
    complaint_id: int | None = None
    checklist_id: int | None = None
    compound_id: int | None = None
    compound_ref: str | None = None
    street_code: str | None = None


def scope_clause(streets: Sequence[str] | None, compounds: Sequence[str] | None,
                 alias: str = "p") -> tuple[str, dict[str, Any]]:
    """The jurisdiction filter on a table with street_code and compound_ref columns (empty when unrestricted)."""
    where, params = scope.actor_filter("photos", streets, compounds, alias=alias)
    return where or "", params


def hazard_owner(conn: Connection, hazard_id: int, *, streets: Sequence[str] | None = None,
                 compounds: Sequence[str] | None = None, lock: bool = False) -> Owner:
    """The hazard as a photo owner, if the caller's scope sees it (NotVisible otherwise: no existence leak)."""
    where, params = scope_clause(streets, compounds, alias="h")
    row = conn.execute(text(
        "SELECT h.id, h.compound_id, h.compound_ref, h.street_code FROM hazards h WHERE h.id = :id"
        + (f" AND {where}" if where else "") + (" FOR UPDATE" if lock else "")), {**params, "id": hazard_id}).first()
    if row is None:
        raise NotVisible(f"没有隐患 no hazard {hazard_id}", field="hazard_id")
    return Owner(hazard_id=row.id, compound_id=row.compound_id, compound_ref=row.compound_ref,
                 street_code=row.street_code)


def add_photo(conn: Connection, data: bytes, *, owner: Owner, kind: str = "other", filename: str | None = None,
              user: str, store: Storage | None = None, max_bytes: int | None = None,
              field: str = "file") -> dict[str, Any]:
    """Inspect, store (content-addressed) and record one upload for `owner`; returns the photo document."""
    if kind not in KINDS:
        raise InvalidInput(f"照片类型应为 kind must be one of {', '.join(KINDS)}, not {kind!r}", field="kind")
    info = inspect(data, max_bytes=max_bytes, field=field)
    store = store or storage()
    store.put(f"photos/{info.sha256}", data)
    if info.thumbnail is not None:
        store.put(f"thumbs/{info.sha256}", info.thumbnail)
    point = None
    if info.exif_lonlat is not None:
        point = f"SRID={STORAGE_SRID};POINT({info.exif_lonlat[0]!r} {info.exif_lonlat[1]!r})"
    photo_id = conn.execute(text(
        "INSERT INTO photos (sha256, hazard_id, complaint_id, checklist_id, compound_id, compound_ref, street_code, "
        "kind, media_type, size_bytes, width, height, exif_time, exif_geom, filename, uploaded_by) VALUES "
        "(:sha, :hz, :cp, :ck, :cid, :cref, :street, :kind, :media, :size, :w, :h, :t, "
        "ST_GeomFromEWKT(:pt), :name, :by) RETURNING id"),
        {"sha": info.sha256, "hz": owner.hazard_id, "cp": owner.complaint_id, "ck": owner.checklist_id,
         "cid": owner.compound_id, "cref": owner.compound_ref, "street": owner.street_code, "kind": kind,
         "media": info.media_type, "size": info.size, "w": info.width, "h": info.height, "t": info.exif_time,
         "pt": point, "name": safe_filename(filename, sha256=info.sha256, media_type=info.media_type),
         "by": user}).scalar_one()
    return get_photo(conn, photo_id)


def _doc(row: Any) -> dict[str, Any]:
    return {
        "id": row.id, "sha256": row.sha256, "hazard_id": row.hazard_id, "complaint_id": row.complaint_id,
        "checklist_id": row.checklist_id, "compound_ref": row.compound_ref, "street_code": row.street_code,
        "kind": row.kind, "media_type": row.media_type, "size": row.size_bytes, "width": row.width,
        "height": row.height, "filename": row.filename,
        "exif_time": row.exif_time.isoformat() if row.exif_time else None,
        "exif_point": [row.exif_lon, row.exif_lat] if row.exif_lon is not None else None,
        "distance_m": round(row.distance_m, 1) if getattr(row, "distance_m", None) is not None else None,
        "uploaded_by": row.uploaded_by, "uploaded_at": row.uploaded_at.isoformat() if row.uploaded_at else None,
        "href": f"/photos/{row.id}", "thumbnail": f"/photos/{row.id}/thumbnail" if row.width else None,
    }


#: metres between where the picture was taken (EXIF GPS) and the hazard's location
_DISTANCE = ("CASE WHEN p.exif_geom IS NOT NULL AND h.geom IS NOT NULL "
             "THEN ST_Distance(p.exif_geom::geography, h.geom::geography) END AS distance_m")


def get_photo(conn: Connection, photo_id: int, *, streets: Sequence[str] | None = None,
              compounds: Sequence[str] | None = None) -> dict[str, Any]:
    """One photo's record if the caller's scope sees it; NotVisible otherwise (absent and foreign look the same)."""
    where, params = scope_clause(streets, compounds)
    if compounds is not None:  # a complaint's photos are for the street office's triage, not the property company
        where += " AND (p.hazard_id IS NOT NULL OR p.checklist_id IS NOT NULL)"
    row = conn.execute(text(
        f"SELECT {_COLUMNS}, {_DISTANCE} FROM photos p LEFT JOIN hazards h ON h.id = p.hazard_id WHERE p.id = :id"
        + (f" AND {where}" if where else "")), {**params, "id": photo_id}).first()
    if row is None:
        raise NotVisible(f"没有照片 no photo {photo_id}", field="photo_id")
    return _doc(row)


def hazard_photos(conn: Connection, hazard_id: int, *, streets: Sequence[str] | None = None,
                  compounds: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The photos of a hazard the caller may see, oldest first, each with its distance to the hazard."""
    hazard_owner(conn, hazard_id, streets=streets, compounds=compounds)
    rows = conn.execute(text(
        f"SELECT {_COLUMNS}, {_DISTANCE} FROM photos p JOIN hazards h ON h.id = p.hazard_id "
        "WHERE p.hazard_id = :id ORDER BY p.id"), {"id": hazard_id}).all()
    return [_doc(r) for r in rows]


def photo_bytes(doc: dict[str, Any], *, thumbnail: bool = False, store: Storage | None = None) -> bytes:
    """The stored file (or its JPEG thumbnail) of a photo record obtained through get_photo."""
    store = store or storage()
    if thumbnail and not doc["width"]:
        raise NotVisible("PDF 没有缩略图 a PDF has no thumbnail", field="photo_id")
    try:
        return store.get(f"{'thumbs' if thumbnail else 'photos'}/{doc['sha256']}")
    except KeyError:
        raise NotVisible(f"照片文件缺失 the file of photo {doc['id']} is missing from the store",
                         field="photo_id") from None


def attach(conn: Connection, photo_ids: Sequence[int], *, owner: Owner) -> None:
    """Hand photos over to a new owner (a complaint's photos to the hazard it became)."""
    if photo_ids:
        conn.execute(text(
            "UPDATE photos SET hazard_id = :hz, compound_id = :cid, compound_ref = :cref, street_code = :street "
            "WHERE id = ANY(:ids)"),
            {"hz": owner.hazard_id, "cid": owner.compound_id, "cref": owner.compound_ref,
             "street": owner.street_code, "ids": list(photo_ids)})


def collect_garbage(conn: Connection, *, older_than_s: float = 24 * 3600, store: Storage | None = None) -> int:
    """Delete stored blobs no photo row refers to (left by uploads whose transaction was refused or rolled back),
    if older than `older_than_s` so an upload still in flight keeps its file; returns how many were deleted."""
    store = store or storage()
    older = getattr(store, "older_than", None)
    if older is None:
        return 0  # a backend that cannot list its blobs (its own lifecycle rules expire them)
    keys = list(older(older_than_s))
    digests = sorted({k.split("/", 1)[1] for k in keys})
    used = set(conn.execute(text("SELECT DISTINCT sha256 FROM photos WHERE sha256 = ANY(:d)"),
                            {"d": digests}).scalars()) if digests else set()
    gone = [k for k in keys if k.split("/", 1)[1] not in used]
    for key in gone:
        store.delete(key)
    return len(gone)

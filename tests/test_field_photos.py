"""Photos: accepted by their content (never their name), bounded in bytes and pixels, EXIF read, stored by content
hash, served inert (sniffed type, nosniff, sandbox, Content-Disposition) and only to those who may read the hazard."""

from __future__ import annotations

import hashlib
import os
import time

import pytest
from field_support import HTML, SVG, X0, Y0, pdf_with_javascript, picture, png_bomb, polyglot
from PIL import Image
from sqlalchemy import text

from gis.campaign import photos as ph
from gis.campaign.field_errors import InvalidInput, TooLarge, UnsupportedMedia
from gis.campaign.storage import BadKey, FileStorage, storage

# --- sniffing and limits (no database) ----------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "media"), [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp"),
                                            ("HEIF", "image/heic"), ("PDF", "application/pdf")])
def test_real_pictures_and_pdfs_are_accepted_by_their_content(fmt, media):
    data = picture(fmt, (320, 200))
    info = ph.inspect(data)
    assert info.media_type == media
    assert info.sha256 == hashlib.sha256(data).hexdigest() and info.size == len(data)
    if media == "application/pdf":
        assert info.width is None and info.thumbnail is None
    else:
        assert (info.width, info.height) == (320, 200)
        assert info.thumbnail is not None and info.thumbnail.startswith(b"\xff\xd8\xff")  # thumbnails are JPEG


@pytest.mark.parametrize("data", [HTML, SVG, b"GIF89a" + b"\x00" * 64, b"just text, named photo.jpg"],
                         ids=["html", "svg", "gif", "text"])
def test_files_that_are_not_accepted_types_are_refused_whatever_their_name(data):
    with pytest.raises(UnsupportedMedia) as err:
        ph.inspect(data)
    assert err.value.field == "file"


def test_a_polyglot_jpeg_with_html_inside_is_refused():
    data = polyglot()
    assert ph.sniff(data) == "image/jpeg"  # it does start like a JPEG ...
    with pytest.raises(UnsupportedMedia, match="polyglot"):
        ph.inspect(data)


def test_a_pdf_with_javascript_is_refused():
    with pytest.raises(UnsupportedMedia, match="JavaScript"):
        ph.inspect(pdf_with_javascript())


def test_a_picture_that_does_not_decode_as_its_magic_claims_is_refused():
    with pytest.raises(UnsupportedMedia, match="does not decode"):
        ph.inspect(picture("JPEG")[:300])
    with pytest.raises(UnsupportedMedia):
        ph.inspect(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)


def test_decompression_bombs_are_refused_from_the_header_before_decoding():
    with pytest.raises(TooLarge, match="pixel"):
        ph.inspect(png_bomb(100_000, 100_000))
    # a real picture just over a configured limit, and Pillow's own guard set to the same limit
    with pytest.raises(TooLarge):
        ph.inspect(picture("PNG", (1100, 1000)), max_pixels=1_000_000)

    assert Image.MAX_IMAGE_PIXELS == 1_000_000
    assert ph.inspect(picture("PNG", (1000, 1000)), max_pixels=1_000_000).width == 1000


def test_oversized_and_empty_files_are_refused():
    with pytest.raises(TooLarge):
        ph.inspect(picture("PNG"), max_bytes=100)
    with pytest.raises(InvalidInput):
        ph.inspect(b"")


def test_exif_time_and_gps_are_read():
    data = picture("JPEG", gps=(121.54, 29.81), taken="2026:12:01 09:30:00")
    info = ph.inspect(data)
    assert info.exif_lonlat == pytest.approx((121.54, 29.81), abs=1e-6)
    assert info.exif_time is not None
    assert info.exif_time.isoformat() == "2026-12-01T01:30:00+00:00"  # local time in China (UTC+8) when no offset
    assert ph.inspect(picture("PNG")).exif_lonlat is None


@pytest.mark.parametrize(("name", "expected"), [
    ("../../etc/passwd.jpg", "passwd.jpg"), ("..\\..\\boot.ini", "boot.jpg"), ('a"b<c>.png', "abc.jpg"),
    ("", "0123456789ab.jpg"), ("photo.svg", "photo.jpg"), ("/abs/\x00evil.jpg", "evil.jpg"),
])
def test_client_file_names_are_made_harmless(name, expected):
    assert ph.safe_filename(name, sha256="0123456789ab" + "0" * 52, media_type="image/jpeg") == expected


def test_storage_keys_cannot_name_paths(tmp_path):
    store = FileStorage(tmp_path)
    digest = hashlib.sha256(b"x").hexdigest()
    store.put(f"photos/{digest}", b"x")
    assert store.exists(f"photos/{digest}") and store.get(f"photos/{digest}") == b"x"
    for bad in ("photos/../../etc/passwd", "../x", f"photos/{digest}/..", "photos/" + "A" * 64):
        with pytest.raises(BadKey):
            store.get(bad)
    store.delete(f"photos/{digest}")
    assert not store.exists(f"photos/{digest}")


# --- the API -----------------------------------------------------------------------------------------------------

def _upload(api, hazard_id, auth, data, name="photo.jpg", kind="before"):
    return api.post(f"/hazards/{hazard_id}/photos", headers=auth, files={"file": (name, data, "image/jpeg")},
                    data={"kind": kind})


@pytest.mark.db
def test_upload_then_serve_with_sniffed_type_and_inert_headers(api, headers, district, firelane_home):
    hazard = district.id("hazards", "k-a")
    data = picture("PNG", gps=(X0 + 0.0021, Y0 + 0.003))
    # named .jpg and sent as image/jpeg: the content is PNG, and PNG it stays
    r = _upload(api, hazard, headers["street_a"], data, name="../../evil.jpg")
    assert r.status_code == 201, r.text
    doc = r.json()
    assert doc["media_type"] == "image/png" and doc["filename"] == "evil.png" and doc["kind"] == "before"
    assert doc["exif_point"] == pytest.approx([X0 + 0.0021, Y0 + 0.003])
    assert doc["distance_m"] == pytest.approx(9.7, abs=0.5)  # 0.0001° of longitude here
    digest = hashlib.sha256(data).hexdigest()
    assert (firelane_home / "photos" / "photos" / digest[:2] / digest).read_bytes() == data
    got = api.get(f"/photos/{doc['id']}", headers=headers["street_a"])
    assert got.status_code == 200 and got.content == data
    assert got.headers["content-type"] == "image/png"
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-disposition"].startswith('inline; filename="photo-')
    assert "sandbox" in got.headers["content-security-policy"]
    thumb = api.get(f"/photos/{doc['id']}/thumbnail", headers=headers["street_a"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    listed = api.get(f"/hazards/{hazard}/photos", headers=headers["fire"]).json()["photos"]
    assert [p["id"] for p in listed] == [doc["id"]]
    pdf = api.post(f"/hazards/{hazard}/photos", headers=headers["admin"],
                   files={"file": ("整改报告.pdf", picture("PDF"), "application/pdf")}, data={"kind": "after"})
    assert pdf.status_code == 201 and pdf.json()["media_type"] == "application/pdf"
    served = api.get(f"/photos/{pdf.json()['id']}", headers=headers["admin"])
    assert served.headers["content-disposition"].startswith("attachment;")
    assert "%E6%95%B4%E6%94%B9" in served.headers["content-disposition"]  # the UTF-8 name, percent-encoded
    assert api.get(f"/photos/{pdf.json()['id']}/thumbnail", headers=headers["admin"]).status_code == 400


@pytest.mark.db
@pytest.mark.parametrize("data", [HTML, SVG, polyglot(), png_bomb()], ids=["html", "svg", "polyglot", "bomb"])
def test_hostile_uploads_are_refused_and_nothing_is_written(api, headers, district, db, data):
    r = _upload(api, district.id("hazards", "k-a"), headers["street_a"], data, name="innocent.jpg")
    assert r.status_code in (413, 415), r.text
    assert r.json()["field"] == "file"
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM photos")).scalar_one() == 0


@pytest.mark.db
def test_another_street_gets_404_and_learns_nothing(api, headers, district):
    hazard = district.id("hazards", "k-a")  # in street A
    doc = _upload(api, hazard, headers["street_a"], picture("JPEG")).json()
    for path in (f"/photos/{doc['id']}", f"/photos/{doc['id']}/thumbnail", f"/photos/{doc['id']}/info",
                 f"/hazards/{hazard}/photos"):
        r = api.get(path, headers=headers["street_b"])
        assert r.status_code == 404, path
        assert doc["sha256"] not in r.text and "photo.jpg" not in r.text
        # the same answer as for a photo that does not exist
        missing = api.get(path.replace(str(doc["id"]), "999999").replace(str(hazard), "999999"),
                          headers=headers["street_b"])
        assert missing.status_code == 404 and missing.json()["code"] == r.json()["code"]
    assert _upload(api, hazard, headers["street_b"], picture("JPEG")).status_code == 404
    assert api.get(f"/photos/{doc['id']}").status_code == 401  # and nobody anonymous
    assert _upload(api, hazard, headers["viewer"], picture("JPEG")).status_code == 403


@pytest.mark.db
def test_blobs_left_by_refused_uploads_are_collected_and_used_ones_kept(api, headers, district, db):
    kept = _upload(api, district.id("hazards", "k-a"), headers["street_a"], picture("JPEG")).json()["sha256"]
    store = storage()
    assert isinstance(store, FileStorage)  # the default backend: files, which the test backdates
    orphan = hashlib.sha256(b"orphan").hexdigest()
    store.put(f"photos/{orphan}", b"orphan")  # as an upload whose transaction rolled back leaves it
    fresh = hashlib.sha256(b"in flight").hexdigest()
    store.put(f"photos/{fresh}", b"in flight")
    old = time.time() - 3 * 24 * 3600
    for key in (f"photos/{orphan}", f"photos/{kept}", f"thumbs/{kept}"):
        os.utime(store._path(key), (old, old))
    with db.connect() as conn:
        assert ph.collect_garbage(conn, older_than_s=24 * 3600) == 1
    assert not store.exists(f"photos/{orphan}")
    assert store.exists(f"photos/{kept}") and store.exists(f"thumbs/{kept}") and store.exists(f"photos/{fresh}")

"""Export → import round trips keep every row's geometry, attributes, verbatim refs and extra columns."""

from __future__ import annotations

import csv
import json
import zipfile

import numpy as np
import pandas as pd
import pytest
import shapely
from click.testing import CliRunner
from openpyxl import load_workbook

from api.cli import cli
from gis.exporter import export_layer
from gis.importer import import_file
from gis.store import read_layer

pytestmark = pytest.mark.db

FORMATS = {"geojson": "geojson", "gpkg": "gpkg", "shp": "zip", "kml": "kml", "csv": "csv", "xlsx": "xlsx"}
COMPARED_LINKS = ("ref", "compound_ref", "street_code", "estimated", "source")

BUILDINGS = [
    ({"ref": "0012", "name": "<script>alert('x')</script> 一号楼", "height_m": 30.5, "floors": 10, "use": "residential",
      "fire_resistance_grade": "2", "noncombustible_walls": True, "firewall": False, "source": "survey 2024",
      "物业备注": "东门旁", "code2": "007"},
     shapely.Polygon([(121.5001, 29.8001), (121.5003, 29.8001), (121.5003, 29.8003), (121.5001, 29.8003)],
                     [[(121.50015, 29.80015), (121.50025, 29.80015), (121.50025, 29.80025), (121.50015, 29.80025)]])),
    ({"ref": "A-01/东", "name": "二号楼 & \"B\"", "height_m": None, "floors": 3, "use": "mixed",
      "fire_resistance_grade": "4", "noncombustible_walls": None, "firewall": True, "estimated": True,
      "物业备注": None, "code2": "A 9"},
     shapely.MultiPolygon([shapely.box(121.5011, 29.8011, 121.5012, 29.8012),
                           shapely.box(121.5014, 29.8011, 121.5015, 29.8012)])),
    ({"ref": "B 03 东区", "name": None, "height_m": 99.1234567, "floors": None, "use": None,
      "fire_resistance_grade": None, "物业备注": "x=1, y=\"2\"", "code2": None},
     shapely.box(121.50201234, 29.80201234, 121.50209876, 29.80209876)),
]

HYDRANTS = [
    ({"ref": "H-001", "kind": "underground", "status": "damaged", "flow_lps": 15.0, "diameter_mm": 100,
      "inspected_at": "2024-05-01", "管理单位": "自来水公司"}, shapely.Point(121.5004321, 29.8004321)),
    ({"ref": "0002", "kind": "above_ground", "status": "in_service", "flow_lps": None, "diameter_mm": None,
      "inspected_at": None, "管理单位": None}, shapely.Point(121.5101, 29.8102)),
]

OBSTRUCTIONS = [
    ({"ref": "O-1", "kind": "vehicle", "bottom_m": 0.0, "removable": True},
     shapely.box(121.5001, 29.8001, 121.50015, 29.80012)),
    ({"ref": "O-2", "kind": "bollard", "size_m": 0.3}, shapely.Point(121.5002, 29.8002)),
    ({"ref": "O-3", "kind": "overhead_line", "bottom_m": 3.2, "observed_at": "2024-06-30"},
     shapely.LineString([(121.5001, 29.8001), (121.5009, 29.8009)])),
]


def _geojson(path, rows) -> None:
    features = [{"type": "Feature", "properties": props, "geometry": shapely.geometry.mapping(geom)}
                for props, geom in rows]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False),
                    encoding="utf-8")


def _compound(db, tmp_path) -> None:
    path = tmp_path / "compound.geojson"
    _geojson(path, [({"ref": "C-1", "name": "幸福小区", "street_code": "330212001"},
                     shapely.box(121.5, 29.8, 121.505, 29.805))])
    import_file(path, layer="compounds", engine=db, user="test")


def _state(db, layer: str) -> pd.DataFrame:
    frame = read_layer(layer, engine=db)
    frame = frame.drop(columns=["id", "compound_id", "version", "created_at", "updated_at", "updated_by"])
    return frame.sort_values("ref").reset_index(drop=True)


def _same_rows(before: pd.DataFrame, after: pd.DataFrame) -> None:
    assert len(before) == len(after)
    assert after["ref"].tolist() == before["ref"].tolist()
    for col in before.columns:
        if col in ("geom", "geometry", "extra"):
            continue
        a, b = before[col].astype(object).tolist(), after[col].astype(object).tolist()
        for x, y in zip(a, b, strict=True):
            if isinstance(x, float) and not pd.isna(x):
                assert y == pytest.approx(x, abs=1e-9), col
            else:
                assert (pd.isna(x) and pd.isna(y)) or x == y, (col, x, y)
    assert after["extra"].tolist() == before["extra"].tolist()
    g0, g1 = shapely.normalize(before.geometry.to_numpy()), shapely.normalize(after.geometry.to_numpy())
    assert shapely.equals_exact(g0, g1, tolerance=1e-7).all()


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("layer,rows", [("buildings", BUILDINGS), ("hydrants", HYDRANTS),
                                        ("obstructions", OBSTRUCTIONS)])
def test_every_format_round_trips_geometry_attributes_refs_and_extras(db, tmp_path, fmt, layer, rows):
    _compound(db, tmp_path)
    _geojson(tmp_path / "in.geojson", rows)
    import_file(tmp_path / "in.geojson", layer=layer, engine=db, user="test")
    before = _state(db, layer)
    assert before["compound_ref"].eq("C-1").sum() >= 1  # derived spatially, then exported and read back

    out = tmp_path / f"out.{FORMATS[fmt]}"
    n = export_layer(layer, fmt=fmt, path=out, engine=db)
    assert n == len(rows)
    report = import_file(out, layer=layer, mode="replace", engine=db, user="test")
    assert (report.inserted, report.deleted) == (len(rows), len(rows))
    _same_rows(before, _state(db, layer))


def test_typed_extra_columns_keep_their_types_in_typed_formats(db, tmp_path):
    _geojson(tmp_path / "in.geojson", [({"ref": "1", "kind": "bollard", "count": 3, "ratio": 0.25, "ok": True},
                                        shapely.Point(121.5, 29.8))])
    import_file(tmp_path / "in.geojson", layer="obstructions", engine=db)
    for fmt in ("gpkg", "geojson"):
        export_layer("obstructions", fmt=fmt, path=tmp_path / f"o.{fmt}", engine=db)
        import_file(tmp_path / f"o.{fmt}", layer="obstructions", mode="replace", engine=db)
        assert read_layer("obstructions", engine=db)["extra"].tolist() == [{"count": 3, "ratio": 0.25, "ok": True}]


def test_geojson_is_rfc7946_wgs84_with_seven_decimals(db, tmp_path):
    _geojson(tmp_path / "in.geojson", BUILDINGS)
    import_file(tmp_path / "in.geojson", layer="buildings", engine=db)
    export_layer("buildings", fmt="geojson", path=tmp_path / "out.geojson", engine=db)
    doc = json.loads((tmp_path / "out.geojson").read_text(encoding="utf-8"))
    assert "crs" not in doc
    coords = [c for f in doc["features"] for c in shapely.get_coordinates(shapely.geometry.shape(f["geometry"]))]
    assert all(len(repr(float(v)).split(".")[-1]) <= 7 for xy in coords for v in xy)
    polygon = shapely.get_geometry(shapely.geometry.shape(doc["features"][0]["geometry"]), 0)
    assert polygon.exterior.is_ccw  # RFC 7946: exterior rings counter-clockwise, holes clockwise
    assert not polygon.interiors[0].is_ccw
    assert doc["features"][0]["properties"]["ref"] == "0012"
    assert doc["features"][0]["properties"]["物业备注"] == "东门旁"


def test_csv_is_utf8_with_bom_and_has_wkt_and_lon_lat_for_points(db, tmp_path):
    _geojson(tmp_path / "in.geojson", HYDRANTS)
    import_file(tmp_path / "in.geojson", layer="hydrants", engine=db)
    export_layer("hydrants", fmt="csv", path=tmp_path / "h.csv", engine=db)
    raw = (tmp_path / "h.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))
    assert rows[0]["ref"] == "H-001" and rows[1]["ref"] == "0002"
    assert rows[0]["管理单位"] == "自来水公司"
    assert rows[0]["wkt"].startswith("POINT (121.5004321 29.8004321")
    assert float(rows[0]["lon"]) == pytest.approx(121.5004321, abs=1e-9)
    assert float(rows[0]["lat"]) == pytest.approx(29.8004321, abs=1e-9)


def test_xlsx_keeps_formula_like_strings_as_text(db, tmp_path):
    _geojson(tmp_path / "in.geojson", [({"ref": "=1+1", "name": "=HYPERLINK(\"http://x\")"},
                                        shapely.box(121.5, 29.8, 121.5001, 29.8001))])
    import_file(tmp_path / "in.geojson", layer="buildings", engine=db)
    export_layer("buildings", fmt="xlsx", path=tmp_path / "b.xlsx", engine=db)
    ws = load_workbook(tmp_path / "b.xlsx").active
    header = [c.value for c in ws[1]]
    row = {h: c for h, c in zip(header, ws[2], strict=True)}
    assert row["ref"].data_type == "s" and row["ref"].value == "=1+1"
    assert row["name"].data_type == "s"
    import_file(tmp_path / "b.xlsx", layer="buildings", mode="replace", engine=db)
    assert read_layer("buildings", engine=db)["name"].tolist() == ["=HYPERLINK(\"http://x\")"]


def test_shapefile_zip_keeps_long_names_and_splits_mixed_geometry(db, tmp_path):
    _geojson(tmp_path / "in.geojson", OBSTRUCTIONS)
    import_file(tmp_path / "in.geojson", layer="obstructions", engine=db)
    export_layer("obstructions", fmt="shp", path=tmp_path / "o.zip", engine=db)
    names = set(zipfile.ZipFile(tmp_path / "o.zip").namelist())
    assert {"obstructions_point.shp", "obstructions_line.shp", "obstructions_polygon.shp"} <= names
    assert "obstructions_point.cpg" in names


def test_export_filters_by_street_and_compound(db, tmp_path):
    _compound(db, tmp_path)
    _geojson(tmp_path / "in.geojson", BUILDINGS)
    import_file(tmp_path / "in.geojson", layer="buildings", engine=db)
    inside = int(read_layer("buildings", engine=db)["compound_ref"].eq("C-1").sum())
    assert 0 < inside
    assert export_layer("buildings", fmt="gpkg", path=tmp_path / "c.gpkg", compound="C-1", engine=db) == inside
    assert export_layer("buildings", fmt="gpkg", path=tmp_path / "s.gpkg", street="330212001", engine=db) == inside
    assert export_layer("buildings", fmt="gpkg", path=tmp_path / "n.gpkg", street="999", engine=db) == 0


def test_export_in_gcj02_reimports_with_crs_gcj02(db, tmp_path):
    _geojson(tmp_path / "in.geojson", HYDRANTS)
    import_file(tmp_path / "in.geojson", layer="hydrants", engine=db)
    before = read_layer("hydrants", engine=db).sort_values("ref")
    export_layer("hydrants", fmt="csv", path=tmp_path / "g.csv", crs="gcj02", engine=db)
    shifted = pd.read_csv(tmp_path / "g.csv", dtype=str)
    assert not np.allclose(shifted["lon"].astype(float).sort_values(), before.geometry.x.sort_values(), atol=1e-4)
    import_file(tmp_path / "g.csv", layer="hydrants", crs="gcj02", mode="replace", engine=db)
    after = read_layer("hydrants", engine=db).sort_values("ref")
    assert shapely.equals_exact(before.geometry.to_numpy(), after.geometry.to_numpy(), tolerance=1e-7).all()


def test_cli_export_writes_the_file_and_refuses_bad_requests_clearly(db, tmp_path):
    _geojson(tmp_path / "in.geojson", OBSTRUCTIONS)
    import_file(tmp_path / "in.geojson", layer="obstructions", engine=db)
    ok = CliRunner().invoke(cli, ["export", "obstructions", "--format", "gpkg", "-o", str(tmp_path / "o.gpkg")])
    assert ok.exit_code == 0, ok.output
    assert "3 features" in ok.stdout
    assert import_file(tmp_path / "o.gpkg", layer="obstructions", mode="replace", engine=db).inserted == 3
    mixed = CliRunner().invoke(cli, ["export", "obstructions", "--format", "shp", "-o", str(tmp_path / "o.shp")])
    assert mixed.exit_code != 0 and "use a .zip path" in mixed.stderr
    bad_crs = CliRunner().invoke(cli, ["export", "obstructions", "--format", "csv", "-o", str(tmp_path / "o.csv"),
                                       "--crs", "EPSG:999999"])
    assert bad_crs.exit_code != 0 and "unknown CRS" in bad_crs.stderr
    kml_crs = CliRunner().invoke(cli, ["export", "obstructions", "--format", "kml", "-o", str(tmp_path / "o.kml"),
                                       "--crs", "gcj02"])
    assert kml_crs.exit_code != 0 and "KML is always WGS84" in kml_crs.stderr

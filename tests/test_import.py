"""Importing every supported format: column mapping, value normalisation, CRS handling, CAD layers, modes."""

from __future__ import annotations

import json
import zipfile

import ezdxf
import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import pytest
import shapely
from sqlalchemy import text

from gis.coords import project_local, wgs84_to_gcj02
from gis.exporter import ExportError, export_layer
from gis.importer import ImportFailed, import_file
from gis.readers import cad_layer_target
from gis.store import read_layer

pytestmark = pytest.mark.db


def _geojson(path, rows, **extra) -> None:
    features = [{"type": "Feature", "properties": props,
                 "geometry": None if geom is None else shapely.geometry.mapping(geom)} for props, geom in rows]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features, **extra}, ensure_ascii=False),
                    encoding="utf-8")


def _metres_apart(a, b) -> np.ndarray:
    """Distances in metres between two aligned arrays of lon/lat (EPSG:4490) geometries."""
    pa, crs = project_local(np.asarray(a, dtype=object))
    pb = shapely.transform(np.asarray(b, dtype=object),
                           lambda xy: np.column_stack(pyproj.Transformer.from_crs(4490, crs, always_xy=True)
                                                      .transform(xy[:, 0], xy[:, 1])))
    return shapely.distance(pa, pb)


def test_geojson_columns_map_by_alias_and_label_and_values_are_normalised(db, tmp_path):
    _geojson(tmp_path / "b.geojson", [
        ({"编号": "0012", "楼栋名称": "<img src=x onerror=alert(1)>", "高度": "30.5", "层数": "10",
          "耐火等级": "二级", "防火墙": "是", "USE": "Residential", "备注": "临街"},
         shapely.box(121.5, 29.8, 121.5002, 29.8002)),
        ({"编号": "A-01/东", "楼栋名称": "多行\n名称\t带制表符", "高度": None, "层数": 3.0,
          "耐火等级": "Ⅲ", "防火墙": "否", "USE": "mixed"},
         shapely.box(121.501, 29.8, 121.5012, 29.8002)),
    ])
    report = import_file(tmp_path / "b.geojson", layer="buildings", engine=db, user="alice")
    assert (report.features, report.inserted) == (2, 2)
    assert report.columns["耐火等级"] == "fire_resistance_grade" and report.extra_columns == ["备注"]
    assert "EPSG:4326" in report.summary() and "inserted: 2" in report.summary()
    got = read_layer("buildings", engine=db).set_index("ref")
    assert list(got.index) == ["0012", "A-01/东"]
    assert got.loc["0012", "name"] == "<img src=x onerror=alert(1)>"  # verbatim: escaping is the display's job
    assert got.loc["A-01/东", "name"] == "多行\n名称\t带制表符"
    assert got["fire_resistance_grade"].tolist() == ["2", "3"]
    assert got["firewall"].tolist() == [True, False]
    assert got["use"].tolist() == ["residential", "mixed"]
    assert got.loc["0012", "height_m"] == 30.5 and got.loc["A-01/东", "floors"] == 3
    assert got.loc["0012", "extra"] == {"备注": "临街"} and got.loc["A-01/东", "extra"] == {}
    assert set(got["updated_by"]) == {"alice"}


def test_refs_from_numeric_columns_are_text_without_a_decimal_point(db, tmp_path):
    frame = gpd.GeoDataFrame({"ref": [12.0, 7.0], "floors": [3, 4]},
                             geometry=[shapely.box(121.5, 29.8, 121.5001, 29.8001),
                                       shapely.box(121.6, 29.8, 121.6001, 29.8001)], crs=4490)
    pyogrio.write_dataframe(frame, tmp_path / "b.gpkg", layer="b")
    import_file(tmp_path / "b.gpkg", layer="buildings", engine=db)
    assert read_layer("buildings", engine=db)["ref"].tolist() == ["12", "7"]


def test_gbk_csv_with_chinese_headers_and_dates(db, tmp_path):
    body = ("编号,类型,状态,流量,检查日期,经度,纬度,管理单位\n"
            "消火栓-01,underground,in_service,15,2024年5月1日,121.5501,29.8701,自来水公司\n"
            "0002,above_ground,损坏,,2024/6/3,121.5502,29.8702,物业\n")
    (tmp_path / "h.csv").write_bytes(body.replace("损坏", "damaged").encode("gbk"))
    report = import_file(tmp_path / "h.csv", layer="hydrants", engine=db)
    assert report.inserted == 2
    assert any("gb18030" in n for n in report.notes) and any("EPSG:4326" in n for n in report.notes)
    got = read_layer("hydrants", engine=db).set_index("ref")
    assert got.loc["消火栓-01", "extra"] == {"管理单位": "自来水公司"}
    assert str(got.loc["消火栓-01", "inspected_at"]) == "2024-05-01"
    assert str(got.loc["0002", "inspected_at"]) == "2024-06-03"
    assert got.loc["0002", "status"] == "damaged"
    assert got.geometry.x.round(7).tolist() == [121.5501, 121.5502]


def test_utf8_bom_csv_with_wkt_column(db, tmp_path):
    body = "ref;name;WKT\nL1;东环路;LINESTRING (121.5 29.8, 121.51 29.8)\n"
    (tmp_path / "r.csv").write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))
    import_file(tmp_path / "r.csv", layer="roads", engine=db)
    got = read_layer("roads", engine=db)
    assert got["ref"].tolist() == ["L1"] and got["name"].tolist() == ["东环路"]
    assert got.geometry.iloc[0].geom_type == "MultiLineString"


def test_gcj02_input_lands_within_half_a_metre_of_the_true_wgs84_position(db, tmp_path):
    true_lon = np.array([121.5501234, 121.6012345, 119.3012345])
    true_lat = np.array([29.8701234, 29.9012345, 25.9612345])  # Yinzhou (Ningbo) and Changle (Fuzhou)
    glon, glat = wgs84_to_gcj02(true_lon, true_lat)
    pd.DataFrame({"ref": ["a", "b", "c"], "lng": glon, "lat": glat}).to_csv(tmp_path / "amap.csv", index=False)
    import_file(tmp_path / "amap.csv", layer="hydrants", crs="gcj02", engine=db)
    got = read_layer("hydrants", engine=db).sort_values("ref")
    truth = shapely.points(true_lon, true_lat)
    assert (_metres_apart(got.geometry.to_numpy(), truth) < 0.5).all()
    import_file(tmp_path / "amap.csv", layer="hydrants", mode="replace", engine=db)  # GCJ-02 taken as WGS84
    naive = read_layer("hydrants", engine=db).sort_values("ref")
    assert (_metres_apart(naive.geometry.to_numpy(), truth) > 100).all()


def test_projected_geopackage_is_transformed_to_storage(db, tmp_path):
    box = shapely.box(121.55, 29.87, 121.5505, 29.8705)
    frame = gpd.GeoDataFrame({"ref": ["F1"], "kind": ["ring"]}, geometry=[box], crs=4490).to_crs(4549)
    pyogrio.write_dataframe(frame, tmp_path / "lanes.gpkg", layer="fire_lanes")
    import_file(tmp_path / "lanes.gpkg", layer="fire_lanes", engine=db)
    got = read_layer("fire_lanes", engine=db).geometry.iloc[0]
    assert shapely.equals_exact(shapely.normalize(got), shapely.normalize(shapely.MultiPolygon([box])),
                                tolerance=1e-8)


def _dxf(path, entities, version="R2013") -> None:
    doc = ezdxf.new(version)
    msp = doc.modelspace()
    for cad_layer, points, closed in entities:
        if cad_layer not in doc.layers:
            doc.layers.add(cad_layer)
        msp.add_lwpolyline(points, close=closed, dxfattribs={"layer": cad_layer})
    msp.add_text("消防车道", dxfattribs={"layer": "消防车道"}).set_placement((0, 0))  # a label, not a feature
    doc.saveas(path)


def _gk(lon, lat):
    """CGCS2000 3-degree Gauss-Kruger CM 120E (EPSG:4549) metres for lon/lat, as CAD drawings use."""
    return pyproj.Transformer.from_crs(4490, 4549, always_xy=True).transform(lon, lat)


def test_a_survey_table_whose_x_is_the_northing_is_read_north_first_and_says_so(db, tmp_path):
    (e1, e2), (n1, n2) = _gk([121.55, 121.551], [29.87, 29.871])
    # a Chinese survey's table: X坐标 is the northing, Y坐标 the easting
    (tmp_path / "hydrants.csv").write_text(f"编号,X坐标,Y坐标\nH-1,{n1:.3f},{e1:.3f}\nH-2,{n2:.3f},{e2:.3f}\n",
                                           encoding="utf-8")
    report = import_file(tmp_path / "hydrants.csv", layer="hydrants", crs="EPSG:4549", engine=db)
    assert report.inserted == 2 and any("northing" in n for n in report.notes), report.notes
    got = read_layer("hydrants", engine=db).sort_values("ref").geometry
    assert _metres_apart(got.to_numpy(), shapely.points([121.55, 121.551], [29.87, 29.871])).max() < 0.01
    # columns that say which axis is which, or x/y in the usual order, are read as they are
    (tmp_path / "named.csv").write_text(f"ref,东坐标,北坐标\nH-3,{e1:.3f},{n1:.3f}\n", encoding="utf-8")
    (tmp_path / "plain.csv").write_text(f"ref,x,y\nH-4,{e1:.3f},{n1:.3f}\n", encoding="utf-8")
    for name in ("named.csv", "plain.csv"):
        report = import_file(tmp_path / name, layer="hydrants", crs="EPSG:4549", engine=db)
        assert report.inserted == 1 and not any("northing" in n for n in report.notes)
    # easting and northing named, but exchanged: an error to report, not a convention to guess
    (tmp_path / "wrong.csv").write_text(f"ref,easting,northing\nH-5,{n1:.3f},{e1:.3f}\n", encoding="utf-8")
    with pytest.raises(ImportFailed, match="outside the expected extent"):
        import_file(tmp_path / "wrong.csv", layer="hydrants", crs="EPSG:4549", engine=db)


def test_a_refused_projected_file_is_told_which_gauss_kruger_crs_its_coordinates_fit(db, district, tmp_path):
    # (the district's streets are the extent the coordinates must fall in)
    e, n = _gk(121.502, 29.802)
    (tmp_path / "zoned.csv").write_text(f"ref,x,y\nH-1,{e + 40_000_000:.3f},{n:.3f}\n", encoding="utf-8")
    (tmp_path / "plain.csv").write_text(f"ref,x,y\nH-1,{e:.3f},{n:.3f}\n", encoding="utf-8")
    cases = [("zoned.csv", None, "EPSG:4528 (CGCS2000 / 3-degree Gauss-Kruger zone 40)"),  # the zone's prefix
             ("zoned.csv", "EPSG:4549", "EPSG:4528"),
             ("plain.csv", None, "EPSG:4549 (CGCS2000 / 3-degree Gauss-Kruger CM 120E)"),
             ("plain.csv", "EPSG:4550", "EPSG:4549")]  # a neighbouring zone's meridian: 290 km off
    for name, crs, fits in cases:
        with pytest.raises(ImportFailed) as refused:
            import_file(tmp_path / name, layer="hydrants", crs=crs, engine=db)
        first = str(refused.value.problems[0])
        assert first.startswith("crs: ") and f"the coordinates fit {fits}" in first, (name, crs, first)
    assert import_file(tmp_path / "plain.csv", layer="hydrants", crs="EPSG:4549", engine=db).inserted == 1


def test_a_xian_1980_drawing_is_refused_until_its_transformation_is_given(db, district, tmp_path):
    e, n = pyproj.Transformer.from_crs(4490, 2385, always_xy=True).transform(121.502, 29.802)
    (tmp_path / "xian80.csv").write_text(f"ref,东坐标,北坐标\nH-1,{e:.3f},{n:.3f}\n", encoding="utf-8")
    with pytest.raises(ImportFailed, match=r"Xian 1980.*TOWGS84") as refused:
        import_file(tmp_path / "xian80.csv", layer="hydrants", crs="EPSG:2385", engine=db)
    assert [p.field for p in refused.value.problems] == ["crs"]
    with_parameters = ("+proj=tmerc +lat_0=0 +lon_0=120 +k=1 +x_0=500000 +y_0=0 +a=6378140 +b=6356755.288157528 "
                       "+towgs84=24,-123,-94,0,0,0,0 +units=m +no_defs")
    assert import_file(tmp_path / "xian80.csv", layer="hydrants", crs=with_parameters, engine=db).inserted == 1
    with pytest.raises(ExportError, match="Beijing 1954"):  # nor is a layer written out in a datum PROJ would ignore
        export_layer("hydrants", fmt="geojson", path=tmp_path / "out.geojson", crs="EPSG:2437", engine=db)


def test_dxf_takes_the_cad_layers_mapped_to_the_target_and_closes_polylines_into_polygons(db, tmp_path):
    x0, y0 = _gk(121.55, 29.87)
    lane = [(x0, y0), (x0 + 60, y0), (x0 + 60, y0 + 6), (x0, y0 + 6)]
    building = [(x0, y0 + 10), (x0 + 20, y0 + 10), (x0 + 20, y0 + 30), (x0, y0 + 30)]
    _dxf(tmp_path / "plan.dxf", [("消防车道", lane, True), ("FIRE_LANE-2", [(x + 100, y) for x, y in lane], True),
                                 ("建筑", building, True), ("违章建筑", [(x + 50, y) for x, y in building], True)])
    report = import_file(tmp_path / "plan.dxf", layer="fire_lanes", crs="EPSG:4549", engine=db)
    assert report.inserted == 2
    lanes = read_layer("fire_lanes", engine=db)
    assert set(lanes.geometry.geom_type) == {"MultiPolygon"}
    assert sorted(e["cad_layer"] for e in lanes["extra"]) == ["FIRE_LANE-2", "消防车道"]
    area = project_local(lanes)[0].area.sort_values().tolist()
    assert area == pytest.approx([360.0, 360.0], rel=1e-3)
    import_file(tmp_path / "plan.dxf", layer="buildings", crs="EPSG:4549", engine=db)
    import_file(tmp_path / "plan.dxf", layer="illegal_structures", crs="EPSG:4549", engine=db)
    assert len(read_layer("buildings", engine=db)) == 1 and len(read_layer("illegal_structures", engine=db)) == 1


def test_dxf_cad_layer_names_map_to_firelane_layers():
    assert cad_layer_target("消防车道") == "fire_lanes"
    assert cad_layer_target("A-FIRE_LANE") == "fire_lanes"
    assert cad_layer_target("总图-消防登高场地") == "aerial_areas"
    assert cad_layer_target("违章建筑") == "illegal_structures"
    assert cad_layer_target("建筑轮廓") == "buildings"
    assert cad_layer_target("0") is None


def test_dxf_with_a_single_layer_is_taken_whole_and_open_polylines_stay_lines(db, tmp_path):
    x0, y0 = _gk(121.55, 29.87)
    _dxf(tmp_path / "roads.dxf", [("0", [(x0, y0), (x0 + 100, y0)], False),
                                  ("0", [(x0, y0 + 60), (x0 + 100, y0 + 60), (x0 + 140, y0 + 90)], False)], "R2000")
    import_file(tmp_path / "roads.dxf", layer="roads", crs="4549", engine=db)
    assert set(read_layer("roads", engine=db).geometry.geom_type) == {"MultiLineString"}


def test_a_closed_polyline_on_the_roads_layer_is_a_road_surface(db, tmp_path):
    # CAD draws road surfaces as closed outlines and centre lines as open polylines: roads accept both
    x0, y0 = _gk(121.55, 29.87)
    _dxf(tmp_path / "roads.dxf", [("道路", [(x0, y0), (x0 + 100, y0)], False),
                                  ("道路", [(x0, y0 + 20), (x0 + 100, y0 + 20), (x0 + 100, y0 + 32),
                                           (x0, y0 + 32)], True),
                                  # ... but a ring road's centre line closes on itself and stays a line
                                  ("道路中心线", [(x0, y0 + 60), (x0 + 80, y0 + 60), (x0 + 80, y0 + 120),
                                             (x0, y0 + 120)], True)])
    import_file(tmp_path / "roads.dxf", layer="roads", crs="4549", engine=db)
    got = read_layer("roads", engine=db)
    assert sorted(got.geometry.geom_type) == ["MultiLineString", "MultiLineString", "MultiPolygon"]
    assert project_local(got[got.geometry.geom_type == "MultiPolygon"])[0].area.iloc[0] == pytest.approx(1200.0,
                                                                                                         rel=1e-3)


def test_dxf_without_a_matching_cad_layer_names_the_layers_found(db, tmp_path):
    x0, y0 = _gk(121.55, 29.87)
    _dxf(tmp_path / "plan.dxf", [("建筑", [(x0, y0), (x0 + 9, y0), (x0 + 9, y0 + 9)], True),
                                 ("绿化", [(x0, y0), (x0 + 9, y0), (x0 + 9, y0 + 9)], True)])
    with pytest.raises(ImportFailed, match="建筑→buildings, 绿化→\\?"):
        import_file(tmp_path / "plan.dxf", layer="hydrants", crs="EPSG:4549", engine=db)
    report = import_file(tmp_path / "plan.dxf", layer="aerial_areas", crs="EPSG:4549", source_layer="绿化",
                         engine=db, dry_run=True)
    assert report.features == 1
    with pytest.raises(ImportFailed, match="kind: 缺少必填列"):
        import_file(tmp_path / "plan.dxf", layer="obstructions", crs="EPSG:4549", source_layer="绿化", engine=db)


def test_xlsx_sheet_with_text_refs_and_numbers(db, tmp_path):
    with pd.ExcelWriter(tmp_path / "h.xlsx", engine="openpyxl") as xw:
        pd.DataFrame({"说明": ["封面"]}).to_excel(xw, sheet_name="封面", index=False)
        pd.DataFrame({"编号": ["0012", "A 01"], "经度": [121.55, 121.56], "纬度": [29.87, 29.88],
                      "管径": [100, 150], "检查日期": pd.to_datetime(["2024-05-01", "2024-05-02"])}
                     ).to_excel(xw, sheet_name="消火栓", index=False)
    report = import_file(tmp_path / "h.xlsx", layer="hydrants", source_layer="消火栓", engine=db)
    assert report.inserted == 2
    got = read_layer("hydrants", engine=db)
    assert got["ref"].tolist() == ["0012", "A 01"]
    assert got["diameter_mm"].tolist() == [100, 150]
    assert [str(d) for d in got["inspected_at"]] == ["2024-05-01", "2024-05-02"]


@pytest.mark.filterwarnings("ignore:Normalized/laundered field name")
def test_third_party_shapefile_with_truncated_names_and_zip(db, tmp_path):
    frame = gpd.GeoDataFrame({"ref": ["B1"], "fire_resistance_grade": ["3"], "noncombustible_walls": [True],
                              "some_other_long_name": ["kept"]},
                             geometry=[shapely.box(121.5, 29.8, 121.5001, 29.8001)], crs=4490)
    (tmp_path / "shp").mkdir()
    pyogrio.write_dataframe(frame, tmp_path / "shp" / "b.shp")
    report = import_file(tmp_path / "shp" / "b.shp", layer="buildings", engine=db)
    assert report.columns["fire_resis"] == "fire_resistance_grade"
    got = read_layer("buildings", engine=db)
    assert got["fire_resistance_grade"].tolist() == ["3"] and got["noncombustible_walls"].tolist() == [True]
    assert got["extra"].tolist() == [{"some_other": "kept"}]

    with zipfile.ZipFile(tmp_path / "b.zip", "w") as zf:
        for f in (tmp_path / "shp").iterdir():
            zf.write(f, f"data/{f.name}")
    assert import_file(tmp_path / "b.zip", layer="buildings", mode="replace", engine=db).inserted == 1


def test_multilayer_geopackage_needs_source_layer_unless_a_layer_is_named_for_the_target(db, tmp_path):
    pts = gpd.GeoDataFrame({"ref": ["1"]}, geometry=[shapely.Point(121.5, 29.8)], crs=4490)
    pyogrio.write_dataframe(pts, tmp_path / "m.gpkg", layer="a")
    pyogrio.write_dataframe(pts, tmp_path / "m.gpkg", layer="b")
    with pytest.raises(ImportFailed, match="--source-layer"):
        import_file(tmp_path / "m.gpkg", layer="hydrants", engine=db)
    assert import_file(tmp_path / "m.gpkg", layer="hydrants", source_layer="b", engine=db).inserted == 1
    pyogrio.write_dataframe(pts, tmp_path / "m.gpkg", layer="entrances")
    assert import_file(tmp_path / "m.gpkg", layer="entrances", engine=db).inserted == 1


def test_kml_without_crs_is_wgs84_and_its_name_is_the_name_field(db, tmp_path):
    frame = gpd.GeoDataFrame({"Name": ["北门"], "ref": ["E1"], "width_m": [6.0]},
                             geometry=[shapely.Point(121.5, 29.8)], crs=4326)
    pyogrio.write_dataframe(frame, tmp_path / "e.kml", driver="LIBKML")
    import_file(tmp_path / "e.kml", layer="entrances", engine=db)
    got = read_layer("entrances", engine=db)
    assert got[["ref", "name", "width_m"]].values.tolist() == [["E1", "北门", 6.0]]
    assert got["extra"].tolist() == [{}]


def test_replace_empties_the_layer_first_and_append_adds(db, tmp_path):
    _geojson(tmp_path / "a.geojson", [({"ref": "1"}, shapely.Point(121.5, 29.8))])
    _geojson(tmp_path / "b.geojson", [({"ref": "2"}, shapely.Point(121.5, 29.8)),
                                      ({"ref": "3"}, shapely.Point(121.5, 29.8))])
    import_file(tmp_path / "a.geojson", layer="hydrants", engine=db)
    import_file(tmp_path / "b.geojson", layer="hydrants", engine=db)
    assert sorted(read_layer("hydrants", engine=db)["ref"]) == ["1", "2", "3"]
    report = import_file(tmp_path / "a.geojson", layer="hydrants", mode="replace", engine=db)
    assert (report.inserted, report.deleted) == (1, 3)
    assert read_layer("hydrants", engine=db)["ref"].tolist() == ["1"]


def test_unique_refs_may_be_reimported_with_replace(db, tmp_path):
    _geojson(tmp_path / "c.geojson", [({"ref": "C-1", "name": "幸福小区"}, shapely.box(121.5, 29.8, 121.51, 29.81))])
    import_file(tmp_path / "c.geojson", layer="compounds", engine=db)
    assert import_file(tmp_path / "c.geojson", layer="compounds", mode="replace", engine=db).inserted == 1


def test_extent_is_the_streets_layer_when_the_database_has_streets(db, tmp_path):
    _geojson(tmp_path / "s.geojson", [({"ref": "330212001", "name": "中河街道"}, shapely.box(121.5, 29.8, 121.6, 29.9))])
    import_file(tmp_path / "s.geojson", layer="streets", engine=db)
    _geojson(tmp_path / "h.geojson", [({"ref": "near"}, shapely.Point(121.55, 29.85)),
                                      ({"ref": "beijing"}, shapely.Point(116.4, 39.9))])
    with pytest.raises(ImportFailed) as err:
        import_file(tmp_path / "h.geojson", layer="hydrants", engine=db)
    assert [str(p)[:20] for p in err.value.problems] == ["第2行 geometry: 超出预期范围约"[:20]]


def test_a_50k_row_csv_imports_in_one_go(db, tmp_path):
    n = 50_000
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"ref": [f"{i:06d}" for i in range(n)], "lon": 121.5 + rng.random(n) * 0.1,
                          "lat": 29.8 + rng.random(n) * 0.1, "kind": "vehicle", "备注": "x"})
    frame.to_csv(tmp_path / "big.csv", index=False)
    report = import_file(tmp_path / "big.csv", layer="obstructions", engine=db)
    assert report.inserted == n
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*), min(ref), max(ref) FROM obstructions")).one() == (n, "000000",
                                                                                                      "049999")


def test_a_200k_vertex_polygon_imports(db, tmp_path):
    angles = np.linspace(0, 2 * np.pi, 200_000, endpoint=False)
    ring = np.column_stack([121.55 + 0.01 * np.cos(angles), 29.87 + 0.01 * np.sin(angles)])
    _geojson(tmp_path / "big.geojson", [({"ref": "huge", "name": "大小区"}, shapely.Polygon(ring))])
    import_file(tmp_path / "big.geojson", layer="compounds", engine=db)
    got = read_layer("compounds", engine=db).geometry.iloc[0]
    assert shapely.get_num_coordinates(got) == 200_001


def test_backslashes_tabs_newlines_and_a_literal_backslash_n_survive_the_bulk_write(db, tmp_path):
    names = ["\\N", "a\\b", "tab\there", "cr\r\nlf", "\\\\server\\share", "  spaced  "]
    _geojson(tmp_path / "b.geojson", [({"ref": f"r{i}", "name": n, "note\\x": n}, shapely.Point(121.5, 29.8))
                                      for i, n in enumerate(names)])
    import_file(tmp_path / "b.geojson", layer="entrances", engine=db)
    got = read_layer("entrances", engine=db).sort_values("ref")
    assert got["name"].tolist() == names
    assert [e["note\\x"] for e in got["extra"]] == names


@pytest.mark.parametrize("encoding", ["GBK", "UTF-8"])
def test_a_chinese_shapefile_without_cpg_is_decoded(db, tmp_path, encoding):
    frame = gpd.GeoDataFrame({"ref": ["东-1"], "小区名": ["幸福小区"]},
                             geometry=[shapely.box(121.5, 29.8, 121.51, 29.81)], crs=4490)
    pyogrio.write_dataframe(frame, tmp_path / "c.shp", encoding=encoding)
    (tmp_path / "c.cpg").unlink(missing_ok=True)
    dbf = bytearray((tmp_path / "c.dbf").read_bytes())
    dbf[29] = 0  # no language driver id either: GDAL alone would not know the code page
    (tmp_path / "c.dbf").write_bytes(bytes(dbf))
    import_file(tmp_path / "c.shp", layer="compounds", engine=db)
    got = read_layer("compounds", engine=db)
    assert got[["ref", "name"]].values.tolist() == [["东-1", "幸福小区"]]

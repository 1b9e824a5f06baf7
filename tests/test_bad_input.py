"""Bad files are refused as a whole: every problem named by row and field, and the database left untouched."""

from __future__ import annotations

import gc
import json
from typing import Any

import ezdxf
import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from click.testing import CliRunner
from db_support import table_counts

import gis.importer
from api.cli import cli
from gis import importer
from gis.coords import parse_crs
from gis.importer import STREAM_MIN_ROWS, ImportFailed, import_file
from gis.layers import get_layer
from gis.readers import parse_wkb
from gis.store import read_layer
from gis.validate import duplicate_ref_problems, validate_chunks, validate_frame

pytestmark = pytest.mark.db

BOX = shapely.box(121.5, 29.8, 121.5002, 29.8002)


def _geojson(path, rows, **members) -> None:
    features = [{"type": "Feature", "properties": props,
                 "geometry": geom if isinstance(geom, dict | None) else shapely.geometry.mapping(geom)}
                for props, geom in rows]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features, **members}, ensure_ascii=False),
                    encoding="utf-8")


@pytest.fixture
def seeded(db, tmp_path):
    """A database with a street, a compound and a building, so that 'unchanged' means something."""
    _geojson(tmp_path / "s.geojson", [({"ref": "330212001", "name": "中河街道"}, shapely.box(121.4, 29.7, 121.7, 29.95))])
    _geojson(tmp_path / "c.geojson", [({"ref": "C-1", "name": "幸福小区"}, shapely.box(121.5, 29.8, 121.51, 29.81))])
    _geojson(tmp_path / "b.geojson", [({"ref": "B-0", "height_m": 9}, BOX)])
    import_file(tmp_path / "s.geojson", layer="streets", engine=db)
    import_file(tmp_path / "c.geojson", layer="compounds", engine=db)
    import_file(tmp_path / "b.geojson", layer="buildings", engine=db)
    return db


def _refused(db, path, *, mode="append", **kwargs) -> list[str]:
    """Import `path` expecting refusal (also in replace mode); the table counts must not move."""
    before = table_counts(db)
    with pytest.raises(ImportFailed) as err:
        import_file(path, mode=mode, engine=db, **kwargs)
    assert table_counts(db) == before
    return [str(p) for p in err.value.problems]


ROW_CASES = [
    ("buildings", {"height_m": -2}, "第2行 height_m: 不能为负数 must not be negative (-2)"),
    ("buildings", {"height_m": "高"}, "第2行 height_m: 不是数字 not a number (高)"),
    ("buildings", {"height_m": 900}, "第2行 height_m: 超过最大值 700 above the maximum 700 (900)"),
    ("buildings", {"floors": 0}, "第2行 floors: 小于最小值 1 below the minimum 1 (0)"),
    ("buildings", {"floors": 2.5}, "第2行 floors: 不是整数 not an integer (2.5)"),
    ("buildings", {"firewall": "也许"}, "第2行 firewall: 不是是/否值 not a yes/no value (也许)"),
    ("buildings", {"fire_resistance_grade": "五级"}, "第2行 fire_resistance_grade: 不在可选值中 not one of 1, 2, 3, 4 (五级)"),
    ("buildings", {"use": "castle"}, "第2行 use: 不在可选值中"),
    ("buildings", {"name": "x" * 101}, "第2行 name: 过长 too long: 101 个字符 characters, 最多 at most 100"),
    ("buildings", {"name": "bell\x07"}, "第2行 name: 含控制字符 contains a control character (U+0007)"),
    ("buildings", {"备注": "esc\x1b[31m"}, "第2行 备注: 含控制字符 contains a control character (U+001B)"),
    ("buildings", {"name": "楼\u202e9"},
     "第2行 name: 含不可见或改变文字方向的字符 contains an invisible or direction-changing character (U+202E)"),
    ("buildings", {"备注": "rtl\u2067x"}, "第2行 备注: 含不可见或改变文字方向的字符"),
    ("buildings", {"ref": "B-9\u200b"},
     "第2行 ref: 含不可见或改变文字方向的字符 contains an invisible or direction-changing character (U+200B)"),
    ("buildings", {"ref": "B\t9"}, "第2行 ref: 含换行或制表符 contains a line break or tab (U+0009)"),
    ("buildings", {"compound_ref": "C-1\ufeff"}, "第2行 compound_ref: 含不可见或改变文字方向的字符"),
    ("buildings", {"备注": {"detail": "x\u202e"}}, "第2行 备注: 含不可见或改变文字方向的字符"),
    ("buildings", {"extra": json.dumps({"n": {"m": ["ok", "a\u202e"]}}, ensure_ascii=False)},
     "第2行 extra: n.m[1]: 含不可见或改变文字方向的字符 contains an invisible or direction-changing character (U+202E)"),
    ("buildings", {"extra": json.dumps({"k\u200bk": 1}, ensure_ascii=False)},
     "第2行 extra: 'k\\u200bk' (键 key): 含不可见或改变文字方向的字符"),
    ("buildings", {"备注": "y" * 10_001}, "第2行 备注: 过长 too long: 10001"),
    ("buildings", {"ref": "r" * 201}, "第2行 ref: 过长"),
    ("buildings", {"ref": "B-1"}, "第2行 ref: 编号重复 duplicate ref 'B-1' (同 same as 第1行 row 1)"),
    ("hydrants", {"inspected_at": "去年"}, "第2行 inspected_at: 不是日期 not a date (去年)"),
    ("compounds", {"name": None}, "第2行 name: 必填, 不能为空 required value missing"),
]


@pytest.mark.parametrize("layer,props,message", ROW_CASES, ids=[c[2][:40] for c in ROW_CASES])
def test_a_bad_value_is_reported_with_its_row_and_field(seeded, tmp_path, layer, props, message):
    point = layer == "hydrants"
    good = ({"ref": "B-1", "name": "一号楼"}, shapely.Point(121.5001, 29.8001) if point else BOX)
    bad = ({"ref": "B-2", "name": "二号楼", **props}, shapely.Point(121.5001, 29.8001) if point else BOX)
    if layer == "compounds":
        good = ({"ref": "C-9", "name": "好"}, BOX)
    _geojson(tmp_path / "bad.geojson", [good, bad])
    for mode in ("append", "replace"):
        problems = _refused(seeded, tmp_path / "bad.geojson", layer=layer, mode=mode)
        assert any(p.startswith(message) for p in problems), problems
        assert all(p.startswith("第2行") for p in problems), problems


BOWTIE = shapely.Polygon([(121.5, 29.8), (121.501, 29.801), (121.501, 29.8), (121.5, 29.801)])
GEOMETRY_CASES = [
    (None, "第2行 geometry: 缺少几何或几何为空 geometry missing or empty"),
    ({"type": "Polygon", "coordinates": []}, "第2行 geometry: 缺少几何或几何为空"),
    (shapely.LineString([(121.5, 29.8), (121.51, 29.8)]),
     "第2行 geometry: 几何类型错误 wrong geometry type LineString: 建筑 buildings 只接受 accepts Polygon, MultiPolygon"),
    (BOWTIE, "第2行 geometry: 几何无效 invalid geometry: Self-intersection[121.5005 29.8005]"),
    ({"type": "Polygon", "coordinates": [[[121.5, 29.8], [121.51, 29.8], [121.51, 29.81], [121.5, 29.82]]]},
     "第2行 geometry: 几何无效: 环未闭合或点数不足 invalid geometry: ring not closed"),
    (shapely.box(29.8, 121.5, 29.8002, 121.5002), "第2行 geometry: 经纬度疑似颠倒 latitude/longitude look swapped"),
    (shapely.box(116.4, 39.9, 116.4002, 39.9002), "第2行 geometry: 超出预期范围约"),
]


@pytest.mark.parametrize("geometry,message", GEOMETRY_CASES, ids=[c[1][13:40] for c in GEOMETRY_CASES])
def test_a_bad_geometry_is_reported_and_never_repaired(seeded, tmp_path, geometry, message):
    _geojson(tmp_path / "bad.geojson", [({"ref": "B-1"}, BOX), ({"ref": "B-2"}, geometry)])
    problems = _refused(seeded, tmp_path / "bad.geojson", layer="buildings")
    assert problems and problems[0].startswith(message), problems
    assert len(problems) == 1


def test_the_extent_falls_back_to_china_without_streets(db, tmp_path):
    _geojson(tmp_path / "h.geojson", [({"ref": "beijing"}, shapely.Point(116.4, 39.9)),
                                      ({"ref": "paris"}, shapely.Point(2.35, 48.85))])
    [problem] = _refused(db, tmp_path / "h.geojson", layer="hydrants")
    assert problem.startswith("第2行 geometry: 超出预期范围约") and problem.endswith("km (x=2.35, y=48.85)")


def test_every_problem_of_a_file_is_collected_in_row_order(seeded, tmp_path):
    _geojson(tmp_path / "bad.geojson", [({"ref": "1", "height_m": -1}, BOX), ({"ref": "2"}, BOWTIE),
                                        ({"ref": "3", "floors": "many", "height_m": 1e6}, None)])
    problems = _refused(seeded, tmp_path / "bad.geojson", layer="buildings")
    assert [p.split(":")[0] for p in problems] == ["第1行 height_m", "第2行 geometry", "第3行 floors",
                                                   "第3行 geometry", "第3行 height_m"]


def test_a_duplicate_ref_of_a_unique_layer_in_the_database_is_refused(seeded, tmp_path):
    _geojson(tmp_path / "c.geojson", [({"ref": "C-2", "name": "新"}, BOX), ({"ref": "C-1", "name": "同名"}, BOX)])
    assert _refused(seeded, tmp_path / "c.geojson", layer="compounds") == [
        "第2行 ref: 编号已存在于数据库 ref 'C-1' already exists in compounds"]


def test_refs_already_used_in_any_layer_are_refused_naming_the_rows(seeded, tmp_path):
    _geojson(tmp_path / "b.geojson", [({"ref": "B-1", "height_m": 9}, BOX), ({"ref": "B-0", "height_m": 3}, BOX)])
    assert _refused(seeded, tmp_path / "b.geojson", layer="buildings") == [
        "第2行 ref: 编号已存在于数据库 ref 'B-0' already exists in buildings"]


def test_a_streamed_import_names_the_rows_whose_refs_the_database_already_has(seeded, tmp_path):
    n = STREAM_MIN_ROWS + 10
    _many_buildings(tmp_path / "big.gpkg", n, row9000={"ref": "B-0"})
    assert _refused(seeded, tmp_path / "big.gpkg", layer="buildings") == [
        "第9000行 ref: 编号已存在于数据库 ref 'B-0' already exists in buildings"]


def test_the_unique_index_itself_refuses_a_taken_ref_the_validation_missed(seeded, tmp_path, monkeypatch):
    monkeypatch.setattr(importer, "existing_ref_problems", lambda *a, **k: [])
    _geojson(tmp_path / "b.geojson", [({"ref": "B-1", "height_m": 9}, BOX), ({"ref": "B-0", "height_m": 3}, BOX)])
    problems = _refused(seeded, tmp_path / "b.geojson", layer="buildings")
    # under row-level security PostgreSQL does not say which key: the file's refs are named as the cause
    assert len(problems) == 1 and problems[0].startswith("ref: 编号已被使用 a ref of this file is already used in "
                                                         "buildings"), problems


def test_a_missing_required_column_is_a_file_level_problem(seeded, tmp_path):
    _geojson(tmp_path / "o.geojson", [({"ref": "O-1"}, BOX)])
    problems = _refused(seeded, tmp_path / "o.geojson", layer="obstructions")
    assert problems == ["kind: 缺少必填列 required column missing (accepted names: kind, type, 类型)"]


def test_two_columns_for_one_field_are_ambiguous(seeded, tmp_path):
    _geojson(tmp_path / "b.geojson", [({"ref": "B-1", "height_m": 3, "高度": 4}, BOX)])
    assert _refused(seeded, tmp_path / "b.geojson", layer="buildings") == [
        "height_m: 多个列对应同一字段 several columns map to this field: height_m, 高度"]


def test_a_column_name_that_would_become_an_invisible_extra_key_is_refused(seeded, tmp_path):
    _geojson(tmp_path / "b.geojson", [({"ref": "B-1", "备\u200b注": "x"}, BOX)])
    assert _refused(seeded, tmp_path / "b.geojson", layer="buildings") == [
        "备\\u200b注: 列名 column name: 含不可见或改变文字方向的字符 contains an invisible or direction-changing "
        "character (U+200B)"]


def test_an_empty_file_is_refused_clearly(seeded, tmp_path):
    _geojson(tmp_path / "empty.geojson", [])
    assert _refused(seeded, tmp_path / "empty.geojson", layer="buildings") == ["文件中没有要素 the file has no features"]
    (tmp_path / "empty.csv").write_text("ref,lon,lat\n", encoding="utf-8")
    assert _refused(seeded, tmp_path / "empty.csv", layer="hydrants") == ["文件中没有要素 the file has no features"]
    (tmp_path / "blank.csv").write_bytes(b"")
    assert _refused(seeded, tmp_path / "blank.csv", layer="hydrants") == ["文件中没有要素 the file has no features"]


def test_an_unreadable_file_is_refused(seeded, tmp_path):
    (tmp_path / "junk.gpkg").write_bytes(b"\x00\x01not a geopackage" * 20)
    [problem] = _refused(seeded, tmp_path / "junk.gpkg", layer="buildings")
    assert problem.startswith("无法读取文件 cannot read junk.gpkg")
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0")
    assert "save it as .xlsx" in _refused(seeded, tmp_path / "old.xls", layer="buildings")[0]
    (tmp_path / "nocoords.csv").write_text("ref,name\n1,a\n", encoding="utf-8")
    assert "no coordinate columns" in _refused(seeded, tmp_path / "nocoords.csv", layer="buildings")[0]


@pytest.mark.parametrize("crs", ["EPSG:999999", "not-a-crs", "EPSG:4978"])
def test_an_unknown_crs_is_refused(seeded, tmp_path, crs):
    _geojson(tmp_path / "b.geojson", [({"ref": "B-1"}, BOX)])
    [problem] = _refused(seeded, tmp_path / "b.geojson", layer="buildings", crs=crs)
    assert problem.startswith("crs: 无法识别的坐标系 unknown CRS")


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_a_file_without_crs_is_refused_unless_it_is_geojson_kml_or_lon_lat_csv(seeded, tmp_path):
    frame = gpd.GeoDataFrame({"ref": ["B-1"]}, geometry=[BOX], crs=None)
    pyogrio.write_dataframe(frame, tmp_path / "b.gpkg")
    [problem] = _refused(seeded, tmp_path / "b.gpkg", layer="buildings")
    assert problem.startswith("crs: 文件未声明坐标系, 请用 --crs 指定 the file declares no CRS (GPKG)")
    assert import_file(tmp_path / "b.gpkg", layer="buildings", crs="EPSG:4490", engine=seeded).inserted == 1
    (tmp_path / "gk.csv").write_text("ref,x,y\nH1,650000,3306000\n", encoding="utf-8")
    [problem] = _refused(seeded, tmp_path / "gk.csv", layer="hydrants")
    assert "its coordinates are not longitude/latitude: give --crs" in problem


def test_a_dxf_without_crs_is_refused(seeded, tmp_path):
    doc = ezdxf.new("R2013")
    doc.modelspace().add_lwpolyline([(0, 0), (9, 0), (9, 9), (0, 9)], close=True, dxfattribs={"layer": "建筑"})
    doc.saveas(tmp_path / "plan.dxf")
    [problem] = _refused(seeded, tmp_path / "plan.dxf", layer="buildings")
    assert problem.startswith("crs: 文件未声明坐标系, 请用 --crs 指定 the file declares no CRS (DXF)")
    # a drawing in the district's Gauss-Krüger metres: the refusal names the CRS they fit
    gk = ezdxf.new("R2013")
    gk.modelspace().add_lwpolyline([(650000, 3306000), (650009, 3306000), (650009, 3306009), (650000, 3306009)],
                                   close=True, dxfattribs={"layer": "建筑"})
    gk.saveas(tmp_path / "gk.dxf")
    [problem] = _refused(seeded, tmp_path / "gk.dxf", layer="buildings")
    assert "the coordinates fit EPSG:4549 (CGCS2000 / 3-degree Gauss-Kruger CM 120E)" in problem, problem


def test_an_unclosed_wkt_ring_is_reported_not_closed_for_you(seeded, tmp_path):
    (tmp_path / "b.csv").write_text('ref,wkt\nB1,"POLYGON ((121.5 29.8, 121.501 29.8, 121.501 29.801))"\n',
                                    encoding="utf-8")
    assert _refused(seeded, tmp_path / "b.csv", layer="buildings") == [
        "第1行 geometry: 几何无效: 环未闭合或点数不足 invalid geometry: ring not closed or too few points "
        "(never repaired silently)"]


def test_a_wrong_crs_puts_features_outside_the_extent(seeded, tmp_path):
    (tmp_path / "gk.csv").write_text("ref,x,y\nH1,650000,3306000\n", encoding="utf-8")
    hint, problem = _refused(seeded, tmp_path / "gk.csv", layer="hydrants", crs="EPSG:32651")  # UTM 51N, not GK
    assert hint.startswith("crs: 按 EPSG:32651 读取, 要素均不在辖区内") and "fit EPSG:4549" in hint
    assert problem.startswith("第1行 geometry: 超出预期范围约")
    assert import_file(tmp_path / "gk.csv", layer="hydrants", crs="EPSG:4549", engine=seeded).inserted == 1


def test_bad_csv_cells_name_their_data_row(seeded, tmp_path):
    (tmp_path / "h.csv").write_text("ref,lon,lat,WKT\nH1,121.5,29.8,\nH2,东,29.8,\nH3,,,POLYGON((1 2\n"
                                    "H4,121.5,29.8,POINT (121.6 29.8)\n", encoding="utf-8")
    assert _refused(seeded, tmp_path / "h.csv", layer="hydrants") == [
        "第2行 geometry: 坐标不是数字 coordinates are not numbers ('东', '29.8')",
        "第3行 geometry: WKT 无法解析 WKT cannot be parsed ('POLYGON((1 2')",
        "第4行 geometry: WKT 与坐标列不一致 the WKT and coordinate columns disagree",
    ]


def test_nul_and_other_control_characters_in_csv_cells_are_refused(seeded, tmp_path):
    (tmp_path / "h.csv").write_bytes("ref,name,lon,lat\nH1,a\x00b,121.5,29.8\nH2,\"多行\n\t文本\",121.5,29.8\n"
                                     "H3,\x0b,121.5,29.8\n".encode())
    assert _refused(seeded, tmp_path / "h.csv", layer="entrances") == [
        "第1行 name: 含控制字符 contains a control character (U+0000)",
        "第3行 name: 含控制字符 contains a control character (U+000B)"]


def test_dry_run_validates_and_writes_nothing(seeded, tmp_path):
    _geojson(tmp_path / "b.geojson", [({"ref": "B-7", "height_m": 12}, BOX)])
    before = table_counts(seeded)
    report = import_file(tmp_path / "b.geojson", layer="buildings", dry_run=True, engine=seeded)
    assert report.dry_run and report.features == 1 and report.inserted == 0
    assert "nothing written" in report.summary()
    assert table_counts(seeded) == before
    _geojson(tmp_path / "bad.geojson", [({"ref": "B-7", "height_m": -12}, BOX)])
    assert _refused(seeded, tmp_path / "bad.geojson", layer="buildings", dry_run=True) == [
        "第1行 height_m: 不能为负数 must not be negative (-12)"]


def test_cli_exits_non_zero_with_one_line_per_problem(seeded, tmp_path):
    _geojson(tmp_path / "bad.geojson", [({"ref": "1", "height_m": -2}, BOX), ({"ref": "1"}, BOWTIE)])
    before = table_counts(seeded)
    result = CliRunner().invoke(cli, ["import", str(tmp_path / "bad.geojson"), "--layer", "buildings"])
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert lines[:3] == ["第1行 height_m: 不能为负数 must not be negative (-2)",
                         "第2行 geometry: 几何无效 invalid geometry: Self-intersection[121.5005 29.8005] "
                         "(不会自动修复 never repaired silently)",
                         "第2行 ref: 编号重复 duplicate ref '1' (同 same as 第1行 row 1)"]
    assert "nothing written (3 problems)" in lines[3]
    assert table_counts(seeded) == before


def test_cli_imports_a_good_file_and_prints_the_summary(seeded, tmp_path):
    _geojson(tmp_path / "ok.geojson", [({"ref": "B-9", "height_m": 2}, BOX)])
    result = CliRunner().invoke(cli, ["import", str(tmp_path / "ok.geojson"), "--layer", "buildings",
                                      "--user", "carol"])
    assert result.exit_code == 0, result.output
    assert "inserted: 1" in result.stdout
    got = read_layer("buildings", engine=seeded, where="t.ref = 'B-9'")
    assert got["updated_by"].tolist() == ["carol"] and got["compound_ref"].tolist() == ["C-1"]


# --- large files: validated chunk by chunk while earlier chunks are written -----------------------------------------


def test_chunked_validation_reports_exactly_what_whole_file_validation_reports():
    far = shapely.Point(2.35, 48.85)
    rows = [({"ref": "1", "height_m": -1}, BOX), ({"ref": "2"}, BOWTIE), ({"ref": "3", "floors": "many"}, None),
            ({"ref": "1"}, BOX), ({"ref": "5", "height_m": "12米"}, BOX), ({"ref": "6"}, far),
            ({"ref": "2", "floors": 2.5}, BOX), ({"ref": None}, BOX), ({"ref": "9", "use": "castle"}, BOX),
            ({"ref": "10", "备注": "x"}, BOX), ({"ref": "1"}, None)]
    frame = pd.DataFrame([props for props, _ in rows])
    geometry = np.array([g for _, g in rows], dtype=object)
    errors = {4: "几何无法解析 geometry cannot be parsed"}
    kwargs: dict[str, Any] = dict(layer=get_layer("buildings"), crs=parse_crs("EPSG:4490"), geometry_errors=errors)
    whole = validate_frame(frame, geometry, **kwargs)
    chunks = list(validate_chunks(frame, geometry, chunk_rows=3, **kwargs))
    assert len(chunks) == 4
    refs = np.concatenate([c.frame["ref"].to_numpy(dtype=object) for c in chunks])
    chunked = [p for c in chunks for p in c.problems] + duplicate_ref_problems(refs)
    assert sorted(map(str, chunked)) == sorted(map(str, whole.problems))
    assert len(whole.problems) >= 9  # every kind above is a problem (the same ones, counted once)
    joined = pd.concat([c.frame for c in chunks], ignore_index=True)
    pd.testing.assert_frame_equal(pd.DataFrame(joined.drop(columns="geometry")),
                                  pd.DataFrame(whole.frame.drop(columns="geometry")))


def _many_buildings(path, n: int, **bad_rows: dict) -> None:
    """n valid buildings in a GeoPackage; bad_rows maps 'row<k>' (1-based) to properties overriding row k."""
    x = 121.5 + (np.arange(n) % 200) * 1e-5
    y = 29.8 + (np.arange(n) // 200) * 1e-5
    frame = gpd.GeoDataFrame({"ref": [f"B{i}" for i in range(1, n + 1)], "height_m": np.full(n, 9.0)},
                             geometry=shapely.box(x, y, x + 5e-6, y + 5e-6), crs=4490)
    for key, props in bad_rows.items():
        for column, value in props.items():
            frame.loc[int(key[3:]) - 1, column] = value
    pyogrio.write_dataframe(frame, path, layer="buildings")


def test_a_large_file_with_problems_in_its_last_chunks_writes_nothing(seeded, tmp_path):
    n = STREAM_MIN_ROWS + 5_000
    _many_buildings(tmp_path / "big.gpkg", n, row2={"ref": "B2"}, row20000={"ref": "B2"},
                    **{f"row{n}": {"height_m": -3.0}})
    problems = _refused(seeded, tmp_path / "big.gpkg", layer="buildings")
    assert problems == ["第20000行 ref: 编号重复 duplicate ref 'B2' (同 same as 第2行 row 2)",
                        f"第{n}行 height_m: 不能为负数 must not be negative (-3)"]


def test_chunks_start_small_and_unparsed_wkb_is_parsed_chunk_by_chunk_with_the_same_verdicts():
    unclosed = bytes.fromhex("0103000000010000000400000000000000000000000000000000000000000000000000f03f"
                             "0000000000000000000000000000f03f000000000000f03f0000000000000000000000000000f03f")
    boxes = [shapely.box(121.5 + i * 1e-5, 29.8, 121.5 + i * 1e-5 + 5e-6, 29.8 + 5e-6) for i in range(40)]
    wkb = np.array([shapely.to_wkb(b) for b in boxes], dtype=object)
    wkb[[2, 9, 30]] = [unclosed, None, shapely.to_wkb(BOWTIE)]
    frame = pd.DataFrame({"ref": [f"B{i}" for i in range(40)], "height_m": [9.0] * 40})
    kwargs: dict[str, Any] = dict(layer=get_layer("buildings"), crs=parse_crs("EPSG:4490"))
    geometry, errors = parse_wkb(wkb)
    whole = validate_frame(frame, geometry, geometry_errors=errors, **kwargs)
    chunks = list(validate_chunks(frame, wkb, chunk_rows=8, first_chunk_rows=2, parse=parse_wkb, **kwargs))
    assert [len(c.frame) for c in chunks] == [2, 4, 8, 8, 8, 8, 2]  # 2, 4, then 8 at most
    assert sorted(str(p) for c in chunks for p in c.problems) == sorted(map(str, whole.problems))
    expected = ["第3行 geometry: 几何无效: 环未闭合", "第10行 geometry: 缺少几何或几何为空", "第31行 geometry: 几何无效 invalid"]
    assert len(whole.problems) == 3
    assert all(str(p).startswith(e) for p, e in zip(whole.problems, expected, strict=True)), whole.problems


def test_a_large_file_with_unreadable_rings_in_several_chunks_names_each_row(seeded, tmp_path):
    n = STREAM_MIN_ROWS + 2_000
    rows = [({"ref": f"B{i}", "height_m": 9}, shapely.box(121.5 + (i % 200) * 1e-5, 29.8 + (i // 200) * 1e-5,
                                                          121.5 + (i % 200) * 1e-5 + 5e-6,
                                                          29.8 + (i // 200) * 1e-5 + 5e-6))
            for i in range(1, n + 1)]
    ring = {"type": "Polygon", "coordinates": [[[121.5, 29.8], [121.51, 29.8], [121.51, 29.81], [121.5, 29.82]]]}
    for row in (5, 1500, 3000, n):  # in the first (1,024 rows), second, third and last chunk
        rows[row - 1] = (rows[row - 1][0], ring)
    _geojson(tmp_path / "big.geojson", rows)
    problems = _refused(seeded, tmp_path / "big.geojson", layer="buildings")
    assert [p.split(" ")[0] for p in problems] == ["第5行", "第1500行", "第3000行", f"第{n}行"]
    assert all("环未闭合或点数不足 invalid geometry: ring not closed" in p for p in problems)


def test_a_large_file_is_imported_whole(seeded, tmp_path):
    n = STREAM_MIN_ROWS + 5_000
    _many_buildings(tmp_path / "big.gpkg", n)
    report = import_file(tmp_path / "big.gpkg", layer="buildings", engine=seeded, user="alice")
    assert (report.features, report.inserted) == (n, n)
    got = read_layer("buildings", engine=seeded)
    assert len(got) == n + 1 and set(got["ref"]) == {f"B{i}" for i in range(1, n + 1)} | {"B-0"}
    assert (got.loc[got["ref"] != "B-0", "compound_ref"] == "C-1").all()
    again = import_file(tmp_path / "big.gpkg", layer="buildings", engine=seeded, user="bob", mode="replace")
    assert (again.inserted, again.deleted) == (n, n + 1)
    assert len(read_layer("buildings", engine=seeded)) == n


def test_a_large_import_runs_with_cyclic_collection_paused_and_leaves_the_collector_on(seeded, tmp_path,
                                                                                      monkeypatch):
    """Full collections would walk every parsed geometry (~0.1 s each, the COPY writer stalled too)."""
    n = STREAM_MIN_ROWS + 1_000
    _many_buildings(tmp_path / "big.gpkg", n)
    _many_buildings(tmp_path / "bad.gpkg", n, **{f"row{n}": {"height_m": -3.0}})
    seen: list[tuple[str, bool]] = []

    def spy(name, real):
        def called(*args, **kwargs):
            seen.append((name, gc.isenabled()))
            return real(*args, **kwargs)
        monkeypatch.setattr(gis.importer, name, called)

    spy("read_source", gis.importer.read_source)
    spy("validate_chunks", gis.importer.validate_chunks)
    spy("write_frames", gis.importer.write_frames)
    report = import_file(tmp_path / "big.gpkg", layer="buildings", engine=seeded, user="alice")
    assert report.inserted == n
    assert gc.isenabled()
    with pytest.raises(ImportFailed):
        import_file(tmp_path / "bad.gpkg", layer="buildings", engine=seeded, mode="replace")
    assert gc.isenabled()
    assert seen == [("read_source", False), ("write_frames", False), ("validate_chunks", False)] * 2

"""Specification of gis.coords: GCJ-02/BD-09, CRS parsing, storage transforms, extent checks, metric CRSs."""

from __future__ import annotations

import dataclasses
import re

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely

from gis import coords
from gis.coords import (
    CHINA_BOUNDS,
    CrsError,
    CrsSpec,
    adopt_operation,
    bd09_to_gcj02,
    bd09_to_wgs84,
    cached_transformer,
    check_extent,
    detect_swapped_latlon,
    extent_problems,
    from_storage,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    local_metric_crs,
    metric_crs_for_bounds,
    operation_json,
    parse_crs,
    project_local,
    to_storage,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)

GEOD = pyproj.Geod(ellps="WGS84")

YINZHOU = (121.35, 29.60, 121.80, 29.95)  # Yinzhou, Ningbo (lon/lat box)
CHANGLE = (119.40, 25.75, 119.75, 26.10)  # Changle, Fuzhou
DISTRICTS = {"yinzhou": YINZHOU, "changle": CHANGLE}

SUB_METRE = 0.5  # metres: the accuracy promised for every shift and its inverse


def geodesic_m(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Geodesic distance in metres on the WGS84 ellipsoid (an independent yardstick)."""
    return np.asarray(GEOD.inv(lon1, lat1, lon2, lat2)[2])


def grid(bounds, n: int = 81) -> tuple[np.ndarray, np.ndarray]:
    """A dense n x n lon/lat grid over a district (2-D arrays: the shape must survive the conversions)."""
    minx, miny, maxx, maxy = bounds
    return np.meshgrid(np.linspace(minx, maxx, n), np.linspace(miny, maxy, n))


def vertices(geom) -> np.ndarray:
    return shapely.get_coordinates(geom)


def shift_geometry(geom, fn):
    """Apply a lon/lat shift function to a geometry's vertices (test helper: builds "AMap/Baidu" data)."""
    return shapely.transform(geom, lambda c: np.column_stack(fn(c[:, 0], c[:, 1])))


@pytest.fixture(params=sorted(DISTRICTS))
def district(request) -> tuple[float, float, float, float]:
    return DISTRICTS[request.param]


# ---------------------------------------------------------------------------------------------------------
# GCJ-02
# ---------------------------------------------------------------------------------------------------------


class TestGcj02:
    def test_forward_matches_the_published_reference_value(self):
        # The widely published test vector (Beijing) of the public GCJ-02 formula.
        lon, lat = wgs84_to_gcj02(116.404, 39.915)
        assert lon == pytest.approx(116.41024449916938, abs=1e-9)
        assert lat == pytest.approx(39.91640428150164, abs=1e-9)

    def test_offset_near_ningbo_is_a_few_hundred_metres(self):
        lon, lat = grid(YINZHOU)
        glon, glat = wgs84_to_gcj02(lon, lat)
        offset = geodesic_m(lon, lat, glon, glat)
        assert offset.min() > 200.0
        assert offset.max() < 800.0

    def test_wgs84_to_gcj02_to_wgs84_round_trip_is_sub_metre(self, district):
        lon, lat = grid(district)
        back_lon, back_lat = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
        assert geodesic_m(lon, lat, back_lon, back_lat).max() < SUB_METRE

    def test_gcj02_to_wgs84_to_gcj02_round_trip_is_sub_metre(self, district):
        glon, glat = grid(district)
        again_lon, again_lat = wgs84_to_gcj02(*gcj02_to_wgs84(glon, glat))
        assert geodesic_m(glon, glat, again_lon, again_lat).max() < SUB_METRE

    def test_inverse_is_iterated_to_a_residual_below_1e9_degrees(self, district):
        # The crude one-step inverse leaves residuals of ~2e-5 degrees (about 2 m) here; it must not pass.
        glon, glat = grid(district)
        wlon, wlat = gcj02_to_wgs84(glon, glat)
        flon, flat = wgs84_to_gcj02(wlon, wlat)
        assert np.abs(flon - glon).max() < 1e-9
        assert np.abs(flat - glat).max() < 1e-9

    def test_inverse_is_not_the_crude_one_step_inverse(self):
        lon, lat = 121.55, 29.80
        glon, glat = wgs84_to_gcj02(lon, lat)
        crude = (2 * glon - wgs84_to_gcj02(glon, glat)[0], 2 * glat - wgs84_to_gcj02(glon, glat)[1])
        precise = gcj02_to_wgs84(glon, glat)
        assert geodesic_m(lon, lat, *precise) < 0.01
        assert geodesic_m(lon, lat, *crude) > 0.5

    @pytest.mark.parametrize(
        ("lon", "lat"),
        [(139.69, 35.69), (-0.1276, 51.5072), (151.21, -33.87), (-74.006, 40.7128), (10.0, 0.5)],
        ids=["tokyo", "london", "sydney", "new-york", "gulf-of-guinea"],
    )
    def test_identity_outside_china(self, lon, lat):
        assert wgs84_to_gcj02(lon, lat) == (lon, lat)
        assert gcj02_to_wgs84(lon, lat) == (lon, lat)

    def test_vectorised_over_arrays_with_mixed_inside_and_outside_points(self):
        lon = np.array([121.5, 139.69, 119.6])
        lat = np.array([29.8, 35.69, 25.9])
        glon, glat = wgs84_to_gcj02(lon, lat)
        assert isinstance(glon, np.ndarray) and isinstance(glat, np.ndarray)
        assert glon.shape == (3,)
        assert (glon[1], glat[1]) == (139.69, 35.69)  # Tokyo untouched
        assert glon[0] != 121.5 and glon[2] != 119.6  # Ningbo and Fuzhou shifted

    def test_scalars_in_give_floats_out_and_shapes_are_preserved(self):
        lon, lat = wgs84_to_gcj02(121.5, 29.8)
        assert isinstance(lon, float) and isinstance(lat, float)
        glon, glat = grid(YINZHOU, n=7)
        out_lon, out_lat = gcj02_to_wgs84(glon, glat)
        assert isinstance(out_lon, np.ndarray) and isinstance(out_lat, np.ndarray)
        assert out_lon.shape == out_lat.shape == (7, 7)

    def test_scalar_latitude_broadcasts_against_an_array_of_longitudes(self):
        lon, lat = wgs84_to_gcj02(np.array([121.4, 121.5, 121.6]), 29.8)
        assert isinstance(lon, np.ndarray) and isinstance(lat, np.ndarray)
        assert lon.shape == lat.shape == (3,)

    def test_missing_coordinates_stay_missing_and_do_not_stall_the_inverse(self):
        lon, lat = gcj02_to_wgs84(np.array([121.5, np.nan]), np.array([29.8, np.nan]))
        assert isinstance(lon, np.ndarray) and isinstance(lat, np.ndarray)
        assert np.isnan(lon[1]) and np.isnan(lat[1])
        assert np.isfinite(lon[0]) and np.isfinite(lat[0])


# ---------------------------------------------------------------------------------------------------------
# BD-09
# ---------------------------------------------------------------------------------------------------------


class TestBd09:
    def test_gcj02_to_bd09_matches_the_published_reference_value(self):
        lon, lat = gcj02_to_bd09(116.404, 39.915)
        assert lon == pytest.approx(116.41036949371029, abs=1e-9)
        assert lat == pytest.approx(39.92133699351021, abs=1e-9)

    def test_offset_from_wgs84_is_about_a_kilometre(self):
        lon, lat = grid(YINZHOU)
        offset = geodesic_m(lon, lat, *wgs84_to_bd09(lon, lat))
        assert offset.min() > 800.0
        assert offset.max() < 1600.0

    def test_wgs84_to_bd09_to_wgs84_round_trip_is_sub_metre(self, district):
        lon, lat = grid(district)
        back_lon, back_lat = bd09_to_wgs84(*wgs84_to_bd09(lon, lat))
        assert geodesic_m(lon, lat, back_lon, back_lat).max() < SUB_METRE

    def test_bd09_to_wgs84_to_bd09_round_trip_is_sub_metre(self, district):
        blon, blat = grid(district)
        again_lon, again_lat = wgs84_to_bd09(*bd09_to_wgs84(blon, blat))
        assert geodesic_m(blon, blat, again_lon, again_lat).max() < SUB_METRE

    def test_gcj02_bd09_round_trips_are_sub_metre(self, district):
        glon, glat = grid(district)
        back_lon, back_lat = bd09_to_gcj02(*gcj02_to_bd09(glon, glat))
        assert geodesic_m(glon, glat, back_lon, back_lat).max() < SUB_METRE
        again_lon, again_lat = gcj02_to_bd09(*bd09_to_gcj02(glon, glat))
        assert geodesic_m(glon, glat, again_lon, again_lat).max() < SUB_METRE

    def test_wgs84_to_bd09_goes_through_gcj02(self):
        lon, lat = 119.6, 25.9
        assert wgs84_to_bd09(lon, lat) == pytest.approx(gcj02_to_bd09(*wgs84_to_gcj02(lon, lat)), abs=1e-12)


# ---------------------------------------------------------------------------------------------------------
# parse_crs
# ---------------------------------------------------------------------------------------------------------

WGS84 = pyproj.CRS.from_epsg(4326)
CGCS2000 = pyproj.CRS.from_epsg(4490)


class TestParseCrs:
    @pytest.mark.parametrize(
        ("value", "name", "crs", "shift"),
        [
            ("EPSG:4490", "EPSG:4490", CGCS2000, None),
            ("epsg:4490", "EPSG:4490", CGCS2000, None),
            ("4326", "EPSG:4326", WGS84, None),
            (4326, "EPSG:4326", WGS84, None),
            (4490, "EPSG:4490", CGCS2000, None),
            ("CRS84", "OGC:CRS84", pyproj.CRS("OGC:CRS84"), None),
            ("http://www.opengis.net/def/crs/OGC/1.3/CRS84", "OGC:CRS84", pyproj.CRS("OGC:CRS84"), None),
            ("http://www.opengis.net/def/crs/EPSG/0/4490", "EPSG:4490", CGCS2000, None),
            ("urn:ogc:def:crs:EPSG::4490", "EPSG:4490", CGCS2000, None),
            (CGCS2000.to_wkt(), "EPSG:4490", CGCS2000, None),
            ("EPSG:4549", "EPSG:4549", pyproj.CRS.from_epsg(4549), None),
            ("gcj02", "gcj02", WGS84, "gcj02"),
            ("gcj-02", "gcj02", WGS84, "gcj02"),
            ("GCJ02", "gcj02", WGS84, "gcj02"),
            ("GCJ-02", "gcj02", WGS84, "gcj02"),
            ("bd09", "bd09", WGS84, "bd09"),
            ("bd-09", "bd09", WGS84, "bd09"),
            ("BD09", "bd09", WGS84, "bd09"),
            ("wgs84", "EPSG:4326", WGS84, None),
            ("WGS84", "EPSG:4326", WGS84, None),
            ("cgcs2000", "EPSG:4490", CGCS2000, None),
            ("CGCS2000", "EPSG:4490", CGCS2000, None),
            (None, "EPSG:4326", WGS84, None),
        ],
    )
    def test_accepted_spellings(self, value, name, crs, shift):
        spec = parse_crs(value)
        assert spec.name == name
        assert spec.pyproj_crs == crs
        assert spec.shift == shift

    def test_proj_strings_are_accepted(self):
        spec = parse_crs("+proj=utm +zone=51 +datum=WGS84 +units=m +no_defs")
        assert spec.pyproj_crs.is_projected
        assert spec.shift is None
        assert spec.pyproj_crs.equals(pyproj.CRS.from_epsg(32651), ignore_axis_order=True)

    @pytest.mark.parametrize("junk", ["EPSG:999999", "foo", "", "   ", "EPSG:5773", 0, -4326, True, 4326.0])
    def test_junk_raises_a_clear_bilingual_crs_error_naming_the_value(self, junk):
        with pytest.raises(CrsError) as info:
            parse_crs(junk)
        message = str(info.value)
        assert message.startswith("无法识别的坐标系 unknown CRS ")
        assert repr(junk) in message

    def test_crs_error_is_a_value_error(self):
        with pytest.raises(ValueError, match="'EPSG:999999'"):
            parse_crs("EPSG:999999")

    def test_crs_spec_is_frozen_and_passes_through(self):
        spec = parse_crs("gcj02")
        with pytest.raises(dataclasses.FrozenInstanceError):
            spec.shift = None  # type: ignore[misc]
        assert parse_crs(spec) is spec
        assert isinstance(spec, CrsSpec)


# ---------------------------------------------------------------------------------------------------------
# to_storage / from_storage
# ---------------------------------------------------------------------------------------------------------

# A compound-sized polygon in Yinzhou, in true WGS84 coordinates.
ORIGIN = shapely.Polygon(
    [(121.5500, 29.8100), (121.5530, 29.8100), (121.5532, 29.8125), (121.5501, 29.8127), (121.5500, 29.8100)]
)


def max_vertex_error_m(a, b) -> float:
    ca, cb = vertices(a), vertices(b)
    assert ca.shape == cb.shape
    return float(geodesic_m(ca[:, 0], ca[:, 1], cb[:, 0], cb[:, 1]).max())


class TestStorage:
    @pytest.mark.parametrize(("name", "shift"), [("gcj02", wgs84_to_gcj02), ("bd09", wgs84_to_bd09)])
    def test_shifted_polygon_lands_on_its_wgs84_origin(self, name, shift):
        given = shift_geometry(ORIGIN, shift)  # what an AMap / Baidu pick of ORIGIN looks like
        assert max_vertex_error_m(given, ORIGIN) > 200.0  # taking it as WGS84 would be badly wrong
        (stored,) = to_storage(np.array([given]), parse_crs(name))
        assert max_vertex_error_m(stored, ORIGIN) < SUB_METRE

    @pytest.mark.parametrize(("name", "shift"), [("gcj02", wgs84_to_gcj02), ("bd09", wgs84_to_bd09)])
    def test_from_storage_shifts_for_gcj02_and_bd09_basemaps(self, name, shift):
        (rendered,) = from_storage(np.array([ORIGIN]), parse_crs(name))
        assert max_vertex_error_m(rendered, shift_geometry(ORIGIN, shift)) < 0.01

    def test_storage_is_lon_lat_ordered(self):
        (stored,) = to_storage([shapely.Point(121.5, 29.8)], parse_crs("EPSG:4326"))
        assert (stored.x, stored.y) == pytest.approx((121.5, 29.8), abs=1e-9)

    @pytest.mark.parametrize("code", [32651, 4549, 4550])
    def test_projected_input_round_trips_and_lands_in_the_district(self, code):
        spec = parse_crs(code)
        projected = pyproj.Transformer.from_crs(4490, code, always_xy=True)
        x, y = projected.transform(121.55, 29.81)
        (stored,) = to_storage([shapely.Point(x, y)], spec)
        assert (stored.x, stored.y) == pytest.approx((121.55, 29.81), abs=1e-8)
        (again,) = from_storage([stored], spec)
        assert (again.x, again.y) == pytest.approx((x, y), abs=1e-3)

    def test_geoseries_nulls_and_z_are_kept(self):
        series = gpd.GeoSeries([ORIGIN, None, shapely.Point(121.5, 29.8, 12.5)])
        stored = to_storage(series, parse_crs("gcj02"))
        assert isinstance(stored, np.ndarray) and len(stored) == 3
        assert stored[1] is None
        assert shapely.has_z(stored[2]) and stored[2].z == pytest.approx(12.5)

    def test_a_single_geometry_gives_a_single_geometry(self):
        stored = to_storage(shift_geometry(ORIGIN, wgs84_to_gcj02), "gcj02")
        assert isinstance(stored, shapely.Polygon)
        assert max_vertex_error_m(stored, ORIGIN) < SUB_METRE

    def test_failed_projection_is_a_crs_error(self):
        with pytest.raises(CrsError, match="坐标转换失败"):
            to_storage([shapely.Point(1e30, 1e30)], parse_crs(32651))


# ---------------------------------------------------------------------------------------------------------
# Extent checks
# ---------------------------------------------------------------------------------------------------------


def point_at(bounds, *, east_km: float) -> shapely.Point:
    minx, miny, maxx, maxy = bounds
    lon, lat, _ = GEOD.fwd(maxx, (miny + maxy) / 2, 90.0, east_km * 1000.0)
    return shapely.Point(lon, lat)


class TestExtent:
    def test_swapped_lat_lon_is_detected_with_district_bounds(self):
        assert detect_swapped_latlon([29.8], [121.5], bounds=YINZHOU).tolist() == [0]

    def test_correct_order_is_not_swapped(self):
        assert detect_swapped_latlon([121.5, 121.6], [29.8, 29.9], bounds=YINZHOU).tolist() == []

    def test_swapped_detection_defaults_to_china(self):
        assert detect_swapped_latlon(np.array([121.5, 25.9]), np.array([29.8, 119.6])).tolist() == [1]

    def test_check_extent_flags_swapped_and_far_away_features(self):
        geoms = [
            shapely.Point(121.5, 29.8),  # fine
            shapely.Point(29.8, 121.5),  # swapped
            point_at(YINZHOU, east_km=500.0),  # 500 km away
            point_at(YINZHOU, east_km=3.0),  # just over the edge: within the margin
            None,  # left to other validators
            shapely.Polygon(),
        ]
        result = check_extent(geoms, bounds=YINZHOU)
        assert result.swapped.tolist() == [1]
        assert result.outside.tolist() == [2]

    def test_margin_decides_what_far_means(self):
        geoms = [point_at(YINZHOU, east_km=30.0)]
        assert check_extent(geoms, bounds=YINZHOU, margin_km=10.0).outside.tolist() == [0]
        assert check_extent(geoms, bounds=YINZHOU, margin_km=50.0).outside.tolist() == []

    def test_polygon_straddling_the_district_edge_is_fine(self):
        minx, miny, maxx, maxy = YINZHOU
        straddling = shapely.box(maxx - 0.01, 29.8, maxx + 0.5, 29.81)
        result = check_extent([straddling], bounds=YINZHOU, margin_km=0.0)
        assert result.swapped.size == 0 and result.outside.size == 0

    def test_china_bounds_are_the_default(self):
        assert CHINA_BOUNDS == (73.5, 18.0, 135.1, 53.6)
        result = check_extent(
            [shapely.Point(121.5, 29.8), shapely.Point(2.35, 48.85), shapely.Point(29.8, 121.5)]
        )
        assert result.swapped.tolist() == [2]
        assert result.outside.tolist() == [1]

    def test_problems_read_as_one_bilingual_line_per_data_row(self):
        geoms = [
            shapely.Point(121.5, 29.8),
            point_at(YINZHOU, east_km=500.0),
            shapely.Point(29.8, 121.5),
            shapely.Point(500000.0, 3300000.0),  # projected metres passed as lon/lat
        ]
        problems = extent_problems(geoms, bounds=YINZHOU)
        assert [row for row, _ in problems] == [1, 2, 3]
        assert problems[1] == (
            2,
            "第3行 geometry: 经纬度疑似颠倒 latitude/longitude look swapped (x=29.8, y=121.5)",
        )
        far = re.fullmatch(
            r"第2行 geometry: 超出预期范围约 (\d+) 公里 outside the expected extent by about (\d+) km \(x=.*, y=.*\)",
            problems[0][1],
        )
        assert far is not None, problems[0][1]
        assert 480 <= int(far.group(1)) == int(far.group(2)) <= 520  # a rough distance, but the right one
        assert "not longitude/latitude" in problems[2][1] and problems[2][1].startswith("第4行 ")

    def test_no_problems_for_good_data(self):
        lon, lat = grid(CHANGLE, n=5)
        assert extent_problems(shapely.points(lon.ravel(), lat.ravel()), bounds=CHANGLE) == []


# ---------------------------------------------------------------------------------------------------------
# Local metric CRS
# ---------------------------------------------------------------------------------------------------------


def segment(lon: float, lat: float, *, length_m: float, azimuth: float) -> shapely.LineString:
    """A geodesic segment of known length, in lon/lat."""
    lon2, lat2, _ = GEOD.fwd(lon, lat, azimuth, length_m)
    return shapely.LineString([(lon, lat), (lon2, lat2)])


class TestLocalMetric:
    def test_utm_zone_for_ningbo_is_51n(self):
        assert local_metric_crs(121.55, 29.80).to_epsg() == 32651

    def test_utm_zone_for_changle_is_50n(self):
        assert local_metric_crs(119.55, 25.92).to_epsg() == 32650

    def test_southern_hemisphere_uses_327xx(self):
        assert local_metric_crs(151.21, -33.87).to_epsg() == 32756

    def test_gk3_zone_is_the_nearest_central_meridian(self):
        assert local_metric_crs(119.55, 25.92, kind="gk3").to_epsg() == 4549  # CM 120E
        assert local_metric_crs(121.70, 29.80, kind="gk3").to_epsg() == 4550  # CM 123E
        assert local_metric_crs(75.2, 39.5, kind="gk3").to_epsg() == 4534  # CM 75E, the first zone

    def test_gk3_outside_china_and_bad_input_are_refused(self):
        with pytest.raises(CrsError):
            local_metric_crs(10.0, 50.0, kind="gk3")
        with pytest.raises(CrsError):
            local_metric_crs(29.8, 121.5)
        with pytest.raises(ValueError):
            local_metric_crs(121.5, 29.8, kind="mercator")  # type: ignore[arg-type]

    def test_metric_crs_for_bounds_uses_the_centre(self):
        assert metric_crs_for_bounds(YINZHOU).to_epsg() == 32651
        assert metric_crs_for_bounds(CHANGLE).to_epsg() == 32650

    @pytest.mark.parametrize("kind", ["utm", "gk3"])
    @pytest.mark.parametrize("azimuth", [0.0, 37.0, 90.0, 143.0])
    def test_a_100_m_segment_measures_100_m(self, district, kind, azimuth):
        minx, miny, maxx, maxy = district
        line = segment((minx + maxx) / 2, (miny + maxy) / 2, length_m=100.0, azimuth=azimuth)
        projected, crs = project_local(np.array([line]), kind=kind)
        assert crs.is_projected
        assert shapely.length(projected[0]) == pytest.approx(100.0, abs=0.1)

    def test_geodataframe_keeps_index_and_columns(self):
        line = segment(121.55, 29.80, length_m=100.0, azimuth=60.0)
        frame = gpd.GeoDataFrame({"ref": ["FL-1"]}, geometry=[line], index=[42], crs=4490)
        projected, crs = project_local(frame)
        assert crs.to_epsg() == 32651
        assert projected.crs == crs
        assert projected.index.tolist() == [42] and projected["ref"].tolist() == ["FL-1"]
        assert projected.length.iloc[0] == pytest.approx(100.0, abs=0.1)

    def test_frame_in_a_projected_crs_is_handled(self):
        line = segment(119.55, 25.92, length_m=100.0, azimuth=10.0)
        frame = gpd.GeoDataFrame(geometry=[line], crs=4490).to_crs(4549)
        projected, crs = project_local(frame)
        assert crs.to_epsg() == 32650
        assert projected.length.iloc[0] == pytest.approx(100.0, abs=0.1)

    def test_gcj02_input_is_unshifted_before_projecting(self):
        line = segment(121.55, 29.80, length_m=100.0, azimuth=0.0)
        (true_start,) = project_local(np.array([shapely.Point(line.coords[0])]))[0]
        picked = shift_geometry(line, wgs84_to_gcj02)
        projected, _ = project_local(gpd.GeoSeries([picked]), crs_from="gcj02")
        start = shapely.Point(projected.iloc[0].coords[0])
        assert start.distance(true_start) < SUB_METRE

    def test_nothing_to_project_is_an_error(self):
        with pytest.raises(ValueError):
            project_local([None, shapely.Point()])


def test_a_process_adopting_another_ones_operation_projects_the_same_coordinates_without_searching(monkeypatch):
    """A check worker adopts the operation its caller chose (CGCS2000 to a WGS 84 UTM zone): the same coordinates
    bit for bit, and PROJ's search among the candidate operations (from_crs) is not run again."""
    storage, zone = pyproj.CRS.from_user_input(4490), local_metric_crs(121.55, 29.8)
    operation = operation_json(storage, zone)
    chosen = cached_transformer(storage, zone)
    assert operation is not None and chosen is not None and operation_json(storage, storage) is None
    cached_transformer.cache_clear()  # a fresh worker

    def no_search(*args, **kwargs):
        raise AssertionError("searched again")

    monkeypatch.setattr(pyproj.Transformer, "from_crs", no_search)
    monkeypatch.setattr(coords, "_ADOPTED", {})  # this test's adoptions end with it
    adopt_operation(pyproj.CRS.from_user_input(4490), local_metric_crs(121.55, 29.8), operation)
    try:
        adopted = cached_transformer(storage, zone)
        assert adopted is not None
        rng = np.random.default_rng(7)
        x, y = rng.uniform(120.0, 123.0, 50_000), rng.uniform(28.0, 31.0, 50_000)
        for a, b in zip(chosen.transform(x, y), adopted.transform(x, y), strict=True):
            assert np.array_equal(a, b)
    finally:
        cached_transformer.cache_clear()


def test_an_operation_this_proj_cannot_read_falls_back_to_its_own_search(monkeypatch):
    storage, zone = pyproj.CRS.from_user_input(4490), local_metric_crs(119.6, 25.9)
    monkeypatch.setattr(coords, "_ADOPTED", {})
    cached_transformer.cache_clear()
    adopt_operation(storage, zone, '{"type": "NotAnOperation"}')
    try:
        move = cached_transformer(storage, zone)
        assert move is not None and move.transform(119.6, 25.9)[0] > 0
    finally:
        cached_transformer.cache_clear()


def test_survey_order_is_read_only_from_projected_points_that_fit_no_other_way():
    gk = coords.parse_crs("EPSG:4549")
    e, n = pyproj.Transformer.from_crs(4490, 4549, always_xy=True).transform([121.55, 121.6], [29.87, 29.9])
    e, n = np.asarray(e), np.asarray(n)
    assert coords.in_survey_order(n, e, gk)  # northing first: a Chinese survey's X
    assert not coords.in_survey_order(e, n, gk)  # the usual order
    mixed = np.r_[n[:1], e[1:]], np.r_[e[:1], n[1:]]
    assert not coords.in_survey_order(*mixed, gk)  # one row each way: not a convention
    lat, lon = np.array([29.87]), np.array([121.55])
    assert not coords.in_survey_order(lat, lon, coords.parse_crs("EPSG:4490"))  # lat/lon: not this
    assert not coords.in_survey_order(lat, lon, coords.parse_crs("gcj02"))
    assert not coords.in_survey_order(np.array([np.nan]), np.array([np.nan]), gk)


def test_gauss_kruger_coordinates_name_the_crs_they_fit():
    near = (121.4, 29.7, 121.7, 29.95)
    e, n = (np.asarray(v) for v in pyproj.Transformer.from_crs(4490, 4549, always_xy=True).transform(
        [121.55, 121.56], [29.85, 29.86]))
    assert coords.fitting_crs(e, n, near) == [(4549, False)]  # CM 120E, as most of Zhejiang's drawings
    assert coords.fitting_crs(e + 40_000_000, n, near) == [(4528, False)]  # zone 40's prefix on the easting
    assert coords.fitting_crs(n, e, near) == [(4549, True)]  # a survey table: northing first
    assert coords.fitting_crs(np.array([121.55]), np.array([29.85]), near) == []  # lon/lat is none of them
    assert coords.gauss_kruger_candidates(np.array([21_500_000.0]), near) == [4499]  # 6° zone 21
    hint = coords.crs_hint(e, n, near)
    assert hint is not None and "EPSG:4549 (CGCS2000 / 3-degree Gauss-Kruger CM 120E)" in hint


XIAN80_GK120_WITH_TOWGS84 = ("+proj=tmerc +lat_0=0 +lon_0=120 +k=1 +x_0=500000 +y_0=0 +a=6378140 "
                             "+b=6356755.288157528 +towgs84=24,-123,-94,0,0,0,0 +units=m +no_defs")


@pytest.mark.parametrize("crs,datum", [
    ("EPSG:2385", "Xian 1980"),  # Xian 1980 / 3-degree GK CM 120E
    ("EPSG:2437", "Beijing 1954"),
    ("EPSG:4610", "Xian 1980"),
    ("+proj=tmerc +lon_0=121.5 +x_0=500000 +ellps=krass +units=m", "unknown"),  # Krassovsky, no datum given
])
def test_a_datum_with_no_known_way_to_cgcs2000_is_named_not_ignored(crs, datum):
    spec = coords.parse_crs(crs)
    assert coords.datum_gap(spec) == datum
    with pytest.raises(coords.CrsError, match="TOWGS84"):
        coords.check_datum(spec)


@pytest.mark.parametrize("crs", ["EPSG:4490", "EPSG:4549", "EPSG:4528", "EPSG:4326", "EPSG:32651", "EPSG:3857",
                                 "gcj02", "bd09", XIAN80_GK120_WITH_TOWGS84,
                                 "+proj=tmerc +lon_0=121.5 +x_0=500000 +ellps=GRS80 +units=m"])  # a city's own grid
def test_cgcs2000_wgs84_and_datums_given_with_their_parameters_are_read(crs):
    assert coords.datum_gap(coords.parse_crs(crs)) is None


def test_towgs84_parameters_are_applied_on_the_way_in_and_out():
    spec = coords.parse_crs(XIAN80_GK120_WITH_TOWGS84)
    plain = coords.parse_crs("EPSG:2385")  # the same grid, datum ignored
    drawn = shapely.Point(649787.49, 3304495.85)
    stored, ignored = coords.to_storage(drawn, spec), coords.to_storage(drawn, plain)
    # the parameters move the point by tens of metres (what a ballpark would silently lose) ...
    local, _ = coords.project_local(np.array([stored, ignored], dtype=object))
    assert 30 < shapely.distance(local[0], local[1]) < 80
    # ... and the way back returns the drawing's coordinates
    back = coords.from_storage(stored, spec)
    assert shapely.equals_exact(back, drawn, tolerance=0.01), back

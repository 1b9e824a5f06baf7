"""Layer `roads`: 道路 roads."""

from gis.layers.base import Layer, choice, num, text

LAYER = Layer(
    name="roads", label_zh="道路", label_en="Roads", geometry="GEOMETRY",
    accepts=("LineString", "MultiLineString", "Polygon", "MultiPolygon"),
    description="道路中心线或路面 road centre lines (OSM) or road-surface polygons (CAD, surveys): city roads "
                "around compounds, internal roads and walkways; the checks derive a surface's centre line and edges",
    fields=(
        text("name", "道路名称", "Name", max_length=200, aliases=("路名",)),
        choice("kind", "类型", "Kind", ("city", "internal", "walkway"), default="city", aliases=("type", "类型")),
        num("width_m", "路面宽度", "Width", unit="m", minimum=0, maximum=120, aliases=("width", "宽度")),
    ),
)

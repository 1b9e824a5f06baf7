"""Layer `roads`: 道路 roads."""

from gis.layers.base import Layer, choice, num, text

LAYER = Layer(
    name="roads", label_zh="道路", label_en="Roads", geometry="MULTILINESTRING",
    description="道路中心线 road centre lines: city roads around compounds, internal roads and walkways",
    fields=(
        text("name", "道路名称", "Name", max_length=200, aliases=("路名",)),
        choice("kind", "类型", "Kind", ("city", "internal", "walkway"), default="city", aliases=("type", "类型")),
        num("width_m", "路面宽度", "Width", unit="m", minimum=0, maximum=120, aliases=("width", "宽度")),
    ),
)

"""Layer `entrances`: 小区出入口 compound entrances."""

from gis.layers.base import Layer, choice, num, text

LAYER = Layer(
    name="entrances", label_zh="出入口", label_en="Entrances", geometry="POINT",
    description="小区出入口 compound gates (vehicle or pedestrian)",
    fields=(
        text("name", "名称", "Name", max_length=100),
        choice("kind", "类型", "Kind", ("vehicle", "pedestrian"), default="vehicle", aliases=("type", "类型")),
        num("width_m", "宽度", "Width", unit="m", minimum=0, maximum=50, aliases=("width", "宽")),
        num("clear_height_m", "净空高度", "Clear height", unit="m", minimum=0, maximum=50),
        choice("gate", "门禁", "Gate", ("none", "barrier", "gate", "bollards"), default="none"),
    ),
)

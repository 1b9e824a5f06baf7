"""Layer `fire_lanes`: 消防车道 fire lanes."""

from gis.layers.base import Layer, choice, num, text

LAYER = Layer(
    name="fire_lanes", label_zh="消防车道", label_en="Fire lanes", geometry="MULTIPOLYGON",
    description="消防车道面 fire-lane polygons (the paved clear area a fire truck uses)",
    fields=(
        text("name", "名称", "Name", max_length=100),
        choice("kind", "车道类型", "Kind", ("ring", "through", "dead_end", "spur", "other"),
               default="other", aliases=("type", "类型")),
        num("design_width_m", "设计宽度", "Design width", unit="m", minimum=0, maximum=50, aliases=("width",)),
        num("clear_height_m", "净空高度", "Clear height", unit="m", minimum=0, maximum=50),
        num("slope_pct", "坡度", "Slope", unit="%", minimum=0, maximum=100, aliases=("slope",)),
    ),
)

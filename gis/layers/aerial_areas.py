"""Layer `aerial_areas`: 消防车登高操作场地 aerial operation areas."""

from gis.layers.base import Layer, num, text

LAYER = Layer(
    name="aerial_areas", label_zh="登高操作场地", label_en="Aerial operation areas", geometry="MULTIPOLYGON",
    description="消防车登高操作场地 ladder-truck operation areas",
    fields=(
        text("building_ref", "服务建筑编号", "Building served", max_length=200, aliases=("building",),
             identifier=True),
        num("slope_pct", "坡度", "Slope", unit="%", minimum=0, maximum=100, aliases=("slope",)),
    ),
)

"""Layer `obstructions`: 占用堵塞物 obstructions."""

from gis.layers.base import Field, Layer, choice, flag, num

LAYER = Layer(
    name="obstructions", label_zh="占用堵塞物", label_en="Obstructions", geometry="GEOMETRY",
    description="占用、堵塞消防车道和登高场地的物体 objects on lanes and aerial areas; points are bollards "
                "or locks (footprint from size_m), lines overhead lines, polygons footprints",
    fields=(
        choice("kind", "类型", "Kind",
               ("vehicle", "stacked_goods", "bollard", "ground_lock", "gate", "tree", "overhead_line",
                "stall", "shed", "arch", "other"), required=True, aliases=("type", "类型")),
        num("bottom_m", "底部净高", "Bottom height", unit="m", minimum=0, maximum=100,
            description="clear height beneath (canopy, line, arch); 0 or empty = standing on the ground"),
        num("top_m", "顶部高度", "Top height", unit="m", minimum=0, maximum=200),
        num("size_m", "尺寸", "Size", unit="m", minimum=0, maximum=50,
            description="footprint diameter of a point obstruction (default per kind)"),
        flag("removable", "可移除", "Removable"),
        Field(name="observed_at", type="date", label_zh="发现日期", label_en="Observed", aliases=("发现时间",)),
    ),
)

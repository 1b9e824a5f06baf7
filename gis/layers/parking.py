"""Layer `parking`: 停车 parking."""

from gis.layers.base import Field, Layer, choice

LAYER = Layer(
    name="parking", label_zh="停车", label_en="Parking", geometry="GEOMETRY",
    description="停车泊位与实地停放车辆 parking stalls and observed parked vehicles",
    fields=(
        choice("kind", "类型", "Kind", ("stall", "vehicle"), required=True, aliases=("type", "类型")),
        choice("vehicle_type", "车辆类型", "Vehicle type", ("car", "van", "truck", "motorbike", "other"),
               default="car"),
        Field(name="observed_at", type="timestamp", label_zh="观测时间", label_en="Observed"),
    ),
)

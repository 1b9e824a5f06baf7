"""Layer `buildings`: 建筑 buildings."""

from gis.layers.base import Layer, choice, flag, integer, num, text

LAYER = Layer(
    name="buildings", label_zh="建筑", label_en="Buildings", geometry="MULTIPOLYGON",
    description="建筑轮廓 building footprints with height, floors, use and fire-resistance grade",
    fields=(
        text("name", "楼栋名称", "Name", max_length=100, aliases=("楼号", "楼栋")),
        num("height_m", "建筑高度", "Height", unit="m", minimum=0, maximum=700, aliases=("height", "高度")),
        integer("floors", "层数", "Floors", minimum=1, maximum=200, aliases=("levels", "building:levels", "楼层数")),
        choice("use", "使用性质", "Use", ("residential", "commercial", "mixed", "public", "garage", "industrial", "other"),
               default="residential", aliases=("用途", "usage")),
        choice("fire_resistance_grade", "耐火等级", "Fire-resistance grade", ("1", "2", "3", "4"),
               aliases=("grade", "fire_grade", "耐火"),
               description="一/二/三/四级; unknown is taken as 二 by the separation check"),
        flag("noncombustible_walls", "外墙不燃且开口≤5%", "Non-combustible walls, openings <= 5 %",
             description="GB 50016 table 5.2.2 note: facing walls non-combustible, unprotected openings <= 5 % "
                         "and not facing each other (separation -25 %)"),
        flag("firewall", "防火墙", "Facing wall is a firewall",
             description="GB 50016 table 5.2.2 note: the taller building's facing wall is a firewall (no limit)"),
    ),
)

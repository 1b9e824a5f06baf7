"""The pages' language (zh/en, per request from the `fl_lang` cookie or ?lang=) and the labels of codes."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Literal

from gis.campaign import lifecycle as lc
from gis.campaign.departments import DEPARTMENTS
from gis.checks.catalog import RULES
from gis.layers import get_layer

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")
COOKIE = "fl_lang"

_lang: ContextVar[Lang] = ContextVar("firelane_page_lang", default="zh")


def parse_lang(value: object) -> Lang | None:
    """'zh'/'en' (also 'zh-CN', 'en-GB'), else None."""
    if not isinstance(value, str):
        return None
    head = value.strip().lower()[:2]
    return head if head in LANGS else None  # type: ignore[return-value]


def lang() -> Lang:
    return _lang.get()


def set_lang(value: Lang) -> None:
    """The language of everything rendered from here on in this context (one request)."""
    _lang.set(value)


def tr(zh: str, en: str) -> str:
    """The text in the page's language."""
    return en if _lang.get() == "en" else zh


VERDICT_LABELS: dict[str, tuple[str, str]] = {
    "fail": ("不合格", "fail"), "pass": ("合格", "pass"), "cannot_judge": ("数据待补充", "data to complete"),
}
FAMILY_LABELS: dict[str, tuple[str, str]] = {
    "lanes": ("消防车道", "Fire lanes"), "aerial": ("登高场地", "Aerial areas"), "hydrants": ("消火栓", "Hydrants"),
    "parking": ("停车", "Parking"), "separation": ("防火间距", "Fire separation"),
    "structures": ("违章建筑", "Illegal structures"), "ebikes": ("电动车", "E-bikes"),
}
#: codes of choice fields (kinds, statuses of features) shown as words
CHOICE_LABELS: dict[str, tuple[str, str]] = {
    "ring": ("环形", "ring"), "through": ("贯通", "through"), "dead_end": ("尽头式", "dead end"),
    "spur": ("支路", "spur"), "other": ("其他", "other"), "vehicle": ("车辆", "vehicle"),
    "pedestrian": ("人行", "pedestrian"), "stall": ("车位", "stall"), "shed": ("棚屋", "shed"),
    "colour_steel": ("彩钢房", "colour-steel shed"), "enclosure": ("围墙圈占", "enclosure"),
    "extension": ("搭建扩建", "extension"), "reported": ("已上报", "reported"), "confirmed": ("已认定", "confirmed"),
    "demolished": ("已拆除", "demolished"), "above_ground": ("地上式", "above ground"),
    "underground": ("地下式", "underground"), "wall": ("墙壁式", "wall"), "in_service": ("正常", "in service"),
    "out_of_service": ("停用", "out of service"), "low_pressure": ("压力不足", "low pressure"),
    "damaged": ("损坏", "damaged"), "unknown": ("不详", "unknown"), "municipal": ("市政", "municipal"),
    "compound": ("小区自备", "compound"), "none": ("无", "none"), "barrier": ("道闸", "barrier"),
    "gate": ("大门", "gate"), "bollards": ("隔离桩", "bollards"), "car": ("小汽车", "car"), "van": ("面包车", "van"),
    "truck": ("货车", "truck"), "motorbike": ("摩托车", "motorbike"), "city": ("城市道路", "city road"),
    "internal": ("内部道路", "internal road"), "walkway": ("步行道", "walkway"),
    "mandatory": ("强制性", "mandatory"), "advisory": ("推荐性", "advisory"),
    "old_lowrise": ("老旧多层", "old low-rise"), "new_highrise": ("新建高层", "new high-rise"),
    "mixed": ("混合", "mixed"), "stacked_goods": ("堆物", "stacked goods"), "bollard": ("隔离桩", "bollard"),
    "ground_lock": ("地锁", "ground lock"), "tree": ("树木", "tree"), "overhead_line": ("架空线", "overhead line"),
    "arch": ("门楼/拱门", "arch"),
}


def _pair(table: dict[str, tuple[str, str]], code: object) -> str:
    if code is None or (isinstance(code, float) and code != code):
        return ""
    pair = table.get(str(code))
    return tr(*pair) if pair else str(code)


def department_label(routing: object) -> str:
    """A hazard's department routing in the page's language: each department of "交警/公安; 物业" by its name
    (unknown ones as they are written)."""
    if not isinstance(routing, str):
        return ""
    parts = [p.strip() for p in routing.split(";") if p.strip()]
    return "; ".join(tr(p, DEPARTMENTS[p]) if p in DEPARTMENTS else p for p in parts)


def status_label(code: object) -> str:
    """A hazard state in words (the life cycle's labels); no state (a data gap) reads 待补数据 / needs data."""
    if code is None or (isinstance(code, float) and code != code):
        return lc.label(None, lang())
    return lc.label(str(code), lang())


def verdict_label(code: object) -> str:
    return _pair(VERDICT_LABELS, code)


def choice_label(code: object) -> str:
    return _pair(CHOICE_LABELS, code)


def family_label(code: object) -> str:
    return _pair(FAMILY_LABELS, code)


def rule_title(rule: object) -> str:
    r = RULES.get(str(rule))
    return tr(r.title_zh, r.title_en) if r else ""


def layer_label(name: object) -> str:
    try:
        layer = get_layer(str(name))
    except KeyError:
        return str(name or "")
    return tr(layer.label_zh, layer.label_en)


def field_label(layer: str, field: str) -> str:
    f = get_layer(layer).field(field)
    return tr(f.label_zh, f.label_en)


#: Leaflet.draw's interface strings (L.drawLocal) in Chinese; English is the library's own
DRAW_LOCAL_ZH = {
    "draw": {
        "toolbar": {
            "actions": {"title": "取消绘制", "text": "取消"},
            "finish": {"title": "完成绘制", "text": "完成"},
            "undo": {"title": "删除最后一个点", "text": "撤销最后一点"},
            "buttons": {"polyline": "画线", "polygon": "画多边形", "rectangle": "画矩形", "circle": "画圆",
                        "marker": "放置标记", "circlemarker": "放置圆点"},
        },
        "handlers": {
            "circle": {"tooltip": {"start": "按住并拖动画圆"}, "radius": "半径"},
            "circlemarker": {"tooltip": {"start": "点击地图放置圆点"}},
            "marker": {"tooltip": {"start": "点击地图放置标记"}},
            "polygon": {"tooltip": {"start": "点击开始绘制多边形", "cont": "点击继续绘制",
                                    "end": "点击第一个点闭合多边形"}},
            "polyline": {"error": "<strong>错误:</strong> 边线不能相交!",
                         "tooltip": {"start": "点击开始画线", "cont": "点击继续画线", "end": "点击最后一点结束"}},
            "rectangle": {"tooltip": {"start": "按住并拖动画矩形"}},
            "simpleshape": {"tooltip": {"end": "松开鼠标完成绘制"}},
        },
    },
    "edit": {
        "toolbar": {
            "actions": {"save": {"title": "保存修改", "text": "完成"}, "cancel": {"title": "放弃修改", "text": "取消"},
                        "clearAll": {"title": "清除全部", "text": "全部清除"}},
            "buttons": {"edit": "编辑图形", "editDisabled": "没有可编辑的图形", "remove": "删除图形",
                        "removeDisabled": "没有可删除的图形"},
        },
        "handlers": {
            "edit": {"tooltip": {"text": "拖动节点或标记以编辑", "subtext": "点击取消以放弃修改"}},
            "remove": {"tooltip": {"text": "点击要删除的图形"}},
        },
    },
}


#: the strings the pages' scripts show (hazards.js, hazard_photos.js, field.js, the campaign page), per group;
#: a page hands its group to the script in the page's language (`js_labels`), so scripts hold no words of their own
JS_LABELS: dict[str, dict[str, tuple[str, str]]] = {
    "work": {
        "act": ("办理", "Act"), "none": ("没有", "none"), "shown": ("显示 {n} / {total}", "{n} of {total} shown"),
        "overdue_days": ("逾期 {d} 天", "{d} days overdue"), "unassigned": ("未交办", "unassigned"),
        "id": ("编号", "ID"), "status": ("状态", "Status"), "hazard": ("隐患", "Hazard"),
        "compound": ("小区", "Compound"), "department": ("责任部门", "Department"), "unit": ("责任单位", "Unit"),
        "person": ("责任人", "Person"), "deadline": ("期限", "Deadline"), "photos": ("照片", "Photos"),
        "reloaded": ("已刷新, 请按最新状态再试", "reloaded: try again on the current state"),
        "photo_after": ("整改后", "after"), "photo_before": ("整改前", "before"), "photo_other": ("其他", "other"),
        "upload": ("上传照片", "Upload"), "uploading": ("上传中…", "uploading…"), "uploaded": ("已上传", "uploaded"),
        "taken": ("拍摄", "taken"), "from_hazard": ("拍摄点距隐患 {d} m", "{d} m from the hazard"),
        "no_gps": ("无定位", "no GPS"), "no_photos": ("暂无照片", "no photos yet"),
    },
    "field": {
        "adjusted": ("手动调整", "adjusted by hand"), "picked": ("地图选点", "picked on the map"),
        "no_gps": ("此设备无定位", "no GPS on this device"), "locating": ("定位中…", "locating…"),
        "gps_failed": ("定位失败, 请在地图上选点", "GPS failed: pick the point on the map"),
        "pick_first": ("请先选择位置", "Pick the location first."), "sending": ("提交中…", "sending…"),
        "received": ("已收到, 查询码: ", "Received. Tracking code: "), "filed": ("已上报", "Filed"),
        "not_found": ("未找到", "not found"), "reason_needed": ("请填写驳回原因", "A reason is required."),
        "accepted": ("已受理 → 隐患 #{id}", "Accepted → hazard #{id}"), "rejected": ("已驳回", "Rejected"),
        "saving": ("保存中…", "saving…"), "saved": ("已保存", "saved"), "hazard": ("隐患", "hazard"),
    },
    "campaign": {
        "done": ("完成: ", "Done: "), "download": ("下载", "download"), "failed": ("失败", "failed"),
        "running": ("生成中 {p}%", "working {p}%"), "refused": ("拒绝", "refused"),
        "roster_empty": ("名册为空", "The roster is empty."),
        "seed_digits": ("种子应为非负整数", "The seed must be a whole number."),
    },
    #: headlines of API errors by status (the API's detail, in both languages, follows)
    "errors": {
        "network": ("网络错误", "Network error"), "400": ("输入有误", "Invalid input"),
        "401": ("请重新登录", "Please sign in again"), "403": ("无权操作", "Not allowed"),
        "404": ("未找到", "Not found"), "409": ("状态已变化", "Changed meanwhile"),
        "412": ("已被他人修改", "Changed by someone else"), "413": ("文件太大", "File too large"),
        "415": ("不支持的文件类型", "Unsupported file type"), "422": ("无法处理", "Cannot be processed"),
        "429": ("请求过多, 请稍后再试", "Too many requests: try again shortly"),
        "500": ("服务器错误", "Server error"), "503": ("服务暂不可用", "Service unavailable"),
        "other": ("失败", "Failed"),
    },
}


def js_labels(*groups: str) -> dict[str, Any]:
    """The scripts' strings of `groups` (and the error headlines) in the page's language, plus `lang`."""
    out: dict[str, Any] = {"lang": lang()}
    for g in (*groups, "errors"):
        out.update({(f"error_{k}" if g == "errors" else k): tr(*v) for k, v in JS_LABELS[g].items()})
    out.update({f"state_{s}": status_label(s) for s in lc.STATES})  # hazard states the scripts report
    out.update({f"result_{k}": tr(*v) for k, v in RESULT_LABELS.items()})
    return out


#: states of a spot check, results of its items and of checklist items (campaign page, checklist page)
RESULT_LABELS: dict[str, tuple[str, str]] = {
    "pending": ("待抽查", "pending"), "passed": ("合格", "passed"), "failed": ("不合格", "failed"),
    "pass": ("合格", "pass"), "fail": ("不合格", "fail"), "not_applicable": ("不适用", "n/a"),
    "unchecked": ("未检查", "not checked"),
}


def result_label(code: object) -> str:
    return _pair(RESULT_LABELS, code)

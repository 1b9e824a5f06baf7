"""Drive QGIS (pyqgis, headless) against a live firelane: run by Debian's /usr/bin/python3, prints one JSON report.

Not a test module: tests/test_qgis.py runs it in a subprocess (pyqgis lives in the system Python, not the venv)
with a JSON job on stdin: {"url", "auth": {"method": "Basic"|"OAuth2", "username", "password"},
"collections": [ids], "tiles": {"collection", "z", "x", "y"}, "edit": {"collection", "feature_id"} | null}.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile


def _auth_config(auth: dict, url: str) -> str:
    """A QGIS auth config (the user's stock Basic or OAuth2 "resource owner" method) and its id."""
    from qgis.core import QgsApplication, QgsAuthMethodConfig

    manager = QgsApplication.authManager()
    if not manager.masterPasswordIsSet():
        manager.setMasterPassword("firelane-test-master", True)
    if auth["method"] == "Basic":
        config = QgsAuthMethodConfig("Basic")
        config.setConfig("username", auth["username"])
        config.setConfig("password", auth["password"])
    else:
        config = QgsAuthMethodConfig("OAuth2")
        config.setConfig("oauth2config", json.dumps({
            "configType": 1, "grantFlow": 2, "name": "firelane", "tokenUrl": f"{url}/auth/token",
            "username": auth["username"], "password": auth["password"], "clientId": "qgis",
            "persistToken": False, "requestTimeout": 30, "version": 1, "accessMethod": 0,
        }))
    config.setName(f"firelane {auth['method']}")
    stored = manager.storeAuthenticationConfig(config)
    if isinstance(stored, tuple):  # newer bindings return (ok, config)
        stored, config = stored
    if not stored:
        raise RuntimeError(f"could not store the {auth['method']} auth config")
    return config.id()


_TYPES = {2: "int", 4: "int64", 6: "float", 10: "text", 14: "date", 16: "datetime", 1: "bool"}


def _layer_report(layer) -> dict:
    from qgis.core import QgsVectorDataProvider, QgsWkbTypes

    if not layer.isValid():  # nothing else of an invalid layer may be touched (its provider is half made)
        return {"valid": False, "count": 0, "fields": {}, "features": [], "can_add": False}
    fields = {f.name(): _TYPES.get(int(f.type()), f.typeName()) for f in layer.fields()}
    features = []
    for feature in layer.getFeatures():
        props: dict[str, object] = {}
        for name, value in zip(layer.fields().names(), feature.attributes(), strict=True):
            if value is None or (hasattr(value, "isNull") and value.isNull()):
                props[name] = None
            elif hasattr(value, "toString") and not isinstance(value, str):  # QDate / QDateTime
                props[name] = value.toString("yyyy-MM-ddTHH:mm:ss" if hasattr(value, "time") else "yyyy-MM-dd")
            else:
                props[name] = value
        features.append({"id": feature.id(), "props": props, "wkt": feature.geometry().asWkt(7)})
    caps = layer.dataProvider().capabilities()
    return {
        "valid": layer.isValid(),
        "count": layer.featureCount(),
        "geometry": QgsWkbTypes.displayString(layer.wkbType()),
        "fields": fields,
        "features": features,
        "can_add": bool(caps & QgsVectorDataProvider.AddFeatures),
        "can_change": bool(caps & QgsVectorDataProvider.ChangeAttributeValues),
    }


def _render_tile(url: str, authcfg: str, tile: dict) -> dict:
    """Render the collection's vector tiles over one z/x/y tile and count the pixels drawn."""
    from qgis.core import (
        QgsCoordinateReferenceSystem,
        QgsMapRendererSequentialJob,
        QgsMapSettings,
        QgsRectangle,
        QgsVectorTileBasicRenderer,
        QgsVectorTileLayer,
    )
    from qgis.PyQt.QtCore import QSize
    from qgis.PyQt.QtGui import QColor

    template = f"{url}/tiles/{tile['collection']}/{{z}}/{{x}}/{{y}}.mvt"
    layer = QgsVectorTileLayer(f"type=xyz&url={template}&zmin=0&zmax=22&authcfg={authcfg}", "tiles")
    renderer = QgsVectorTileBasicRenderer()
    renderer.setStyles(QgsVectorTileBasicRenderer.simpleStyleWithRandomColors())
    layer.setRenderer(renderer)
    z, x, y = tile["z"], tile["x"], tile["y"]
    size = 2 * 20037508.342789244 / (1 << z)
    x0 = -20037508.342789244 + x * size
    y1 = 20037508.342789244 - y * size
    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:3857"))
    settings.setExtent(QgsRectangle(x0, y1 - size, x0 + size, y1))
    settings.setOutputSize(QSize(512, 512))
    settings.setBackgroundColor(QColor(255, 255, 255))
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    image = job.renderedImage()
    drawn = sum(1 for i in range(0, image.width(), 2) for j in range(0, image.height(), 2)
                if image.pixel(i, j) & 0xFFFFFF != 0xFFFFFF)
    return {"valid": layer.isValid(), "drawn": drawn, "errors": [str(e) for e in job.errors()]}


def main() -> None:
    job = json.load(sys.stdin)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    home = tempfile.mkdtemp(prefix="firelane-qgis-")
    os.environ["QGIS_AUTH_DB_DIR_PATH"] = home
    from qgis.core import Qgis, QgsApplication, QgsDataSourceUri, QgsVectorLayer

    app = QgsApplication([], False, home)
    app.initQgis()
    url = job["url"]
    authcfg = _auth_config(job["auth"], url)
    report: dict = {"qgis": Qgis.QGIS_VERSION, "collections": {}, "messages": []}
    # what QGIS shows the user in its message log panel (a refused sign-in, a server error)
    QgsApplication.messageLog().messageReceived.connect(
        lambda message, tag, level: report["messages"].append(f"{tag}: {message}"))
    for collection in job["collections"]:
        uri = QgsDataSourceUri()
        uri.setParam("url", url)
        uri.setParam("typename", collection)
        uri.setAuthConfigId(authcfg)
        layer = QgsVectorLayer(uri.uri(False), collection, "OAPIF")
        report["collections"][collection] = _layer_report(layer)
    if job.get("tiles"):
        report["tiles"] = _render_tile(url, authcfg, job["tiles"])
    QgsApplication.processEvents()  # deliver the queued message-log signals
    print(json.dumps(report, ensure_ascii=False, default=str), flush=True)
    os._exit(0)  # QgsApplication.exitQgis() can crash on the way out of a headless run; the report is out


if __name__ == "__main__":
    main()

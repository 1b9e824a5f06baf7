// firelane map chrome: metric scale bar, GCJ-02 shift of vector tiles under AMap, the basemap switcher, the
// language of Leaflet.draw. Loaded before folium's map script; window.FIRELANE is the page's config (JSON).
(function () {
  "use strict";
  var CONFIG = window.FIRELANE || {};
  var PI = Math.PI, A = 6378245.0, EE = 0.00669342162296594323;

  function dLat(x, y) {
    var r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
    r += (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0 / 3.0;
    r += (20.0 * Math.sin(y * PI) + 40.0 * Math.sin(y / 3.0 * PI)) * 2.0 / 3.0;
    r += (160.0 * Math.sin(y / 12.0 * PI) + 320.0 * Math.sin(y * PI / 30.0)) * 2.0 / 3.0;
    return r;
  }
  function dLon(x, y) {
    var r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
    r += (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0 / 3.0;
    r += (20.0 * Math.sin(x * PI) + 40.0 * Math.sin(x / 3.0 * PI)) * 2.0 / 3.0;
    r += (150.0 * Math.sin(x / 12.0 * PI) + 300.0 * Math.sin(x / 30.0 * PI)) * 2.0 / 3.0;
    return r;
  }
  // WGS 84 / CGCS2000 [lon, lat] -> GCJ-02 (the same formula as gis/coords.py)
  function wgsToGcj(pt) {
    var lon = pt[0], lat = pt[1];
    var phi = lat * PI / 180, w = 1 - EE * Math.sin(phi) * Math.sin(phi), sw = Math.sqrt(w);
    var la = dLat(lon - 105.0, lat - 35.0) * 180.0 / ((A * (1 - EE)) / (w * sw) * PI);
    var lo = dLon(lon - 105.0, lat - 35.0) * 180.0 / (A / sw * Math.cos(phi) * PI);
    return [lon + lo, lat + la];
  }
  // GCJ-02 -> WGS 84 by fixed-point iteration (converges to well under a centimetre in a few steps)
  function gcjToWgs(pt) {
    var lon = pt[0], lat = pt[1];
    for (var i = 0; i < 8; i++) {
      var f = wgsToGcj([lon, lat]);
      lon -= f[0] - pt[0];
      lat -= f[1] - pt[1];
    }
    return [Math.round(lon * 1e7) / 1e7, Math.round(lat * 1e7) / 1e7];
  }
  function mapCoords(geometry, fn) {
    var walk = function (c) { return typeof c[0] === "number" ? fn(c) : c.map(walk); };
    return {type: geometry.type, coordinates: walk(geometry.coordinates)};
  }
  window.firelaneCoords = {wgsToGcj: wgsToGcj, gcjToWgs: gcjToWgs, mapCoords: mapCoords};
  window.firelaneGcj02ToWgs84 = gcjToWgs;
  window.firelaneWgs84ToGcj02 = function (lon, lat) { return wgsToGcj([lon, lat]); };

  if (!window.L) { return; }
  // metric only (no ft/mi), every map
  L.Control.Scale.mergeOptions({imperial: false, metric: true});

  // Vector tiles are cut in storage coordinates. Under a GCJ-02 basemap every tile is drawn moved by the GCJ-02
  // offset at its centre (smooth: well under a pixel between neighbouring tiles at street zooms), and the tiles
  // loaded are those that cover the view once moved.
  if (CONFIG.gcj02 && L.GridLayer) {
    L.GridLayer.include({
      _flOffset: function (latlng, zoom) {
        var g = wgsToGcj([latlng.lng, latlng.lat]);
        var map = this._map;
        return map.project(L.latLng(g[1], g[0]), zoom).subtract(map.project(latlng, zoom));
      },
      _flShifted: function () { return !!(L.VectorGrid && this instanceof L.VectorGrid); }
    });
    var tilePos = L.GridLayer.prototype._getTilePos;
    var tiledBounds = L.GridLayer.prototype._getTiledPixelBounds;
    L.GridLayer.include({
      _getTilePos: function (coords) {
        var pos = tilePos.call(this, coords);
        if (!this._flShifted()) { return pos; }
        var size = this.getTileSize();
        var centre = this._map.unproject(coords.scaleBy(size).add(size.divideBy(2)), coords.z);
        return pos.add(this._flOffset(centre, coords.z).round());
      },
      _getTiledPixelBounds: function (center) {
        var b = tiledBounds.call(this, center);
        if (!this._flShifted()) { return b; }
        var o = this._flOffset(center, this._tileZoom);
        return new L.Bounds(b.min.subtract(o), b.max.subtract(o));
      }
    });
  }

  // Leaflet.draw in the page's language
  if (CONFIG.draw_local && L.drawLocal) {
    var merge = function (dst, src) {
      Object.keys(src).forEach(function (k) {
        if (src[k] && typeof src[k] === "object" && dst[k] && typeof dst[k] === "object") { merge(dst[k], src[k]); }
        else { dst[k] = src[k]; }
      });
    };
    merge(L.drawLocal, CONFIG.draw_local);
  }

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    if (cls) { e.className = cls; }
    return e;
  }
  window.firelaneEl = el;

  // the basemap switcher: a select on the map; a choice is remembered (cookie) and the page redrawn, because
  // AMap's GCJ-02 moves every layer
  var Switcher = L.Control.extend({
    options: {position: "bottomright"},
    onAdd: function () {
      var bm = CONFIG.basemaps || {offered: []};
      var box = L.DomUtil.create("div", "leaflet-bar fl-basemaps");
      var label = el("label", (bm.title || "Basemap") + " ");
      var select = el("select");
      select.id = "fl-basemap";
      (bm.offered || []).forEach(function (b) {
        var o = el("option", b.label);
        o.value = b.id;
        if (b.id === bm.current) { o.selected = true; }
        select.appendChild(o);
      });
      select.addEventListener("change", function () {
        document.cookie = (bm.cookie || "fl_basemap") + "=" + encodeURIComponent(select.value) +
          "; path=/; max-age=31536000; samesite=lax";
        var url = new URL(window.location.href);
        url.searchParams.delete("basemap");
        window.location.assign(url.toString());
      });
      label.appendChild(select);
      box.appendChild(label);
      L.DomEvent.disableClickPropagation(box);
      return box;
    }
  });

  window.firelaneMap = function (map) {
    window.FIRELANE_MAP = map;
    if ((CONFIG.basemaps || {}).offered) { new Switcher().addTo(map); }
    // the drawer and window resizes change the map's size
    window.addEventListener("resize", function () { map.invalidateSize(); });
    document.addEventListener("firelane:layout", function () { setTimeout(function () { map.invalidateSize(); }, 260); });
  };

  // an overlay added by a page script, listed in the layer control like folium's
  window.firelaneOverlay = function (map, layer, name) {
    layer.addTo(map);
    if (window.FIRELANE_LAYERS) { window.FIRELANE_LAYERS.addOverlay(layer, name); }
    return layer;
  };
})();

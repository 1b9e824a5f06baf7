// firelane lane drawing: a polygon drawn with Leaflet.draw is saved through the OGC API Part 4 endpoint
// (POST /collections/fire_lanes/items, GeoJSON Feature in CRS84, session cookie) and the rule feedback is shown.
// Every server string is inserted with textContent (never innerHTML).
(function () {
  "use strict";
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
  function gcjForward(lon, lat) {
    var phi = lat * PI / 180, w = 1 - EE * Math.sin(phi) * Math.sin(phi), sw = Math.sqrt(w);
    var la = dLat(lon - 105.0, lat - 35.0) * 180.0 / ((A * (1 - EE)) / (w * sw) * PI);
    var lo = dLon(lon - 105.0, lat - 35.0) * 180.0 / (A / sw * Math.cos(phi) * PI);
    return [lon + lo, lat + la];
  }
  // GCJ-02 -> WGS84 by fixed-point iteration (converges to well under a centimetre in a few steps)
  function gcjToWgs(pt) {
    var lon = pt[0], lat = pt[1];
    for (var i = 0; i < 8; i++) {
      var f = gcjForward(lon, lat);
      lon -= f[0] - pt[0];
      lat -= f[1] - pt[1];
    }
    return [Math.round(lon * 1e7) / 1e7, Math.round(lat * 1e7) / 1e7];
  }
  function mapCoords(geometry, fn) {
    var walk = function (c) { return typeof c[0] === "number" ? fn(c) : c.map(walk); };
    return {type: geometry.type, coordinates: walk(geometry.coordinates)};
  }

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    if (cls) { e.className = cls; }
    return e;
  }

  // the findings of the save response, wherever the API puts them
  function findingsOf(body) {
    if (!body || typeof body !== "object") { return null; }
    var keys = ["findings", "feedback", "checks", "rule_feedback"];
    for (var i = 0; i < keys.length; i++) {
      var v = body[keys[i]];
      if (Array.isArray(v)) { return v; }
      if (v && typeof v === "object" && Array.isArray(v.findings)) { return v.findings; }
    }
    if (body.properties) { return findingsOf(body.properties); }
    return null;
  }

  function showFeedback(box, ok, status, body) {
    box.textContent = "";
    if (ok) {
      box.appendChild(el("p", "已保存 Saved (" + status + ")", "ok"));
    } else {
      box.appendChild(el("p", "保存失败 Save failed (" + status + ")", "bad"));
      if (body && body.description) { box.appendChild(el("p", body.description)); }
    }
    var findings = findingsOf(body);
    if (findings === null) { return; }
    box.appendChild(el("h2", "规则检查 Rule feedback"));
    if (findings.length === 0) {
      box.appendChild(el("p", "未发现问题 No rule failures", "ok"));
      return;
    }
    var list = el("ul");
    list.id = "fl-findings";
    findings.forEach(function (f) {
      var verdict = f.verdict || "fail";
      var msg = f.message || [f.message_zh, f.message_en].filter(Boolean).join(" ");
      var parts = [f.rule, verdict];
      if (f.measured !== undefined && f.measured !== null) {
        parts.push((f.measured) + " / " + (f.required !== undefined ? f.required : f.required_value) + " " + (f.unit || ""));
      }
      var li = el("li", parts.join(" · ") + (msg ? " — " + msg : ""), verdict);
      list.appendChild(li);
    });
    box.appendChild(list);
  }

  window.firelaneGcj02ToWgs84 = gcjToWgs;
  window.firelaneWgs84ToGcj02 = gcjForward;

  window.firelaneDraw = function (map, group, config) {
    var current = null;
    var save = document.getElementById("fl-save");
    var state = document.getElementById("fl-draw-state");
    var box = document.getElementById("fl-feedback");
    map.on("draw:created", function (e) {
      if (current && current !== e.layer) { group.removeLayer(current); }
      current = e.layer;
      save.disabled = false;
      state.textContent = "已绘制多边形, 填写编号后保存 Polygon drawn: give it a ref and save.";
    });
    map.on("draw:deleted", function () {
      if (current && !group.hasLayer(current)) { current = null; save.disabled = true; }
    });
    save.addEventListener("click", function () {
      if (!current) { return; }
      var ref = document.getElementById("fl-ref").value.trim();
      if (!ref) { state.textContent = "请填写编号 A ref is required."; return; }
      var feature = current.toGeoJSON();
      var geometry = feature.geometry;
      if (config.gcj02) { geometry = mapCoords(geometry, gcjToWgs); }
      var props = {ref: ref, kind: document.getElementById("fl-kind").value};
      var name = document.getElementById("fl-name").value.trim();
      if (name) { props.name = name; }
      var width = document.getElementById("fl-width").value;
      if (width !== "") { props.design_width_m = parseFloat(width); }
      save.disabled = true;
      state.textContent = "保存中 Saving…";
      fetch(config.endpoint, {
        method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/geo+json", "Accept": "application/geo+json, application/json"},
        body: JSON.stringify({type: "Feature", geometry: geometry, properties: props})
      }).then(function (resp) {
        return resp.text().then(function (text) {
          var body = null;
          try { body = text ? JSON.parse(text) : null; } catch (err) { body = {description: text}; }
          showFeedback(box, resp.ok, resp.status, body);
          state.textContent = resp.ok ? "已保存 Saved: " + ref : "未保存 Not saved";
          if (resp.ok) {
            current.setStyle({color: "#1e7b34", fillColor: "#58d68d"});
            current = null;
          } else {
            save.disabled = false;
          }
        });
      }).catch(function (err) {
        state.textContent = "网络错误 network error";
        save.disabled = false;
      });
    });
  };
})();

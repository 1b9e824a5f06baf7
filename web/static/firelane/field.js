// firelane field forms (phone report page, public complaint form): a point picked on the map or from the phone's
// GPS, sent with the form as multipart (photos from the camera); server strings shown with textContent only.
(function () {
  "use strict";

  function el(id) { return document.getElementById(id); }

  // GPS gives WGS 84; under an AMap basemap the map is drawn in GCJ-02 (the shared converters of the map pages)
  function wgsToDisplay(lon, lat) {
    if (window.firelaneCoords && window.firelaneCoords.wgsToGcj) { return window.firelaneCoords.wgsToGcj([lon, lat]); }
    return window.firelaneWgs84ToGcj02(lon, lat);
  }

  window.firelaneField = function (map, config) {
    var form = el("fl-field-form");
    var where = el("fl-where");
    var result = el("fl-result");
    var submit = el("fl-submit");
    var marker = null;
    var picked = null;  // [lon, lat] in display coordinates (GCJ-02 under an AMap basemap)

    function place(lat, lng, how) {
      if (marker) { marker.setLatLng([lat, lng]); } else {
        marker = L.marker([lat, lng], {draggable: true}).addTo(map);
        marker.on("dragend", function () {
          var p = marker.getLatLng();
          place(p.lat, p.lng, "手动调整 adjusted by hand");
        });
      }
      picked = [lng, lat];
      el("fl-lon").value = lng.toFixed(7);
      el("fl-lat").value = lat.toFixed(7);
      where.textContent = how + ": " + lng.toFixed(6) + ", " + lat.toFixed(6);
      submit.disabled = false;
    }

    map.on("click", function (e) { place(e.latlng.lat, e.latlng.lng, "地图选点 picked on the map"); });

    var gps = el("fl-gps");
    if (gps) {
      gps.addEventListener("click", function () {
        if (!navigator.geolocation) { where.textContent = "此设备无定位 no GPS on this device"; return; }
        where.textContent = "定位中 locating…";
        navigator.geolocation.getCurrentPosition(function (pos) {
          var lon = pos.coords.longitude, lat = pos.coords.latitude;
          if (config.gcj02) { var g = wgsToDisplay(lon, lat); lon = g[0]; lat = g[1]; }
          place(lat, lon, "GPS ±" + Math.round(pos.coords.accuracy) + " m");
          map.setView([lat, lon], Math.max(map.getZoom(), 18));
        }, function (err) {
          where.textContent = "定位失败, 请在地图上选点 GPS failed, pick the point on the map (" + err.message + ")";
        }, {enableHighAccuracy: true, timeout: 15000, maximumAge: 0});
      });
    }

    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (!picked) { where.textContent = "请先选择位置 pick the location first"; return; }
      var data = new FormData(form);
      if (config.gcj02) { data.set("crs", "gcj02"); }
      submit.disabled = true;
      result.textContent = "提交中 sending…";
      result.className = "";
      fetch(config.endpoint, {method: "POST", credentials: "same-origin", body: data,
                              headers: {"Accept": "application/json"}})
        .then(function (resp) {
          return resp.json().catch(function () { return {}; }).then(function (body) {
            submit.disabled = false;
            if (!resp.ok) {
              result.className = "fl-error";
              result.textContent = body.description || ("提交失败 failed (" + resp.status + ")");
              return;
            }
            result.className = "fl-ok";
            if (body.tracking_code) {
              result.textContent = "已收到, 查询码 Received. Tracking code: ";
              var code = document.createElement("strong");
              code.id = "fl-tracking-code";
              code.textContent = body.tracking_code;
              result.appendChild(code);
            } else {
              result.textContent = "已上报 Filed: #" + body.id + " " + body.rule + " (" + body.status + ")";
              result.setAttribute("data-hazard-id", String(body.id));
            }
            form.reset();
          });
        })
        .catch(function () { submit.disabled = false; result.textContent = "网络错误 network error"; });
    });

    var track = el("fl-track-form");
    if (track) {
      track.addEventListener("submit", function (ev) {
        ev.preventDefault();
        var out = el("fl-track-result");
        var code = el("fl-track-code").value.trim();
        fetch("/complaints/track/" + encodeURIComponent(code), {headers: {"Accept": "application/json"}})
          .then(function (resp) { return resp.json().then(function (body) { return [resp.ok, body]; }); })
          .then(function (r) {
            out.textContent = r[0] ? (r[1].label_zh + " " + r[1].label_en) : (r[1].description || "未找到 not found");
          })
          .catch(function () { out.textContent = "网络错误 network error"; });
      });
    }
  };
})();

// triage of public complaints (street office): accept → hazard, reject with a reason
(function () {
  "use strict";
  window.firelaneTriage = function () {
    var table = document.getElementById("fl-triage");
    if (!table) { return; }
    table.addEventListener("click", function (ev) {
      var button = ev.target.closest("button[data-action]");
      if (!button) { return; }
      var row = button.closest("tr");
      var id = row.getAttribute("data-id");
      var action = button.getAttribute("data-action");
      var body = {};
      if (action === "reject") {
        var reason = row.querySelector("input[name=reason]").value.trim();
        if (!reason) { row.querySelector(".fl-row-result").textContent = "请填写驳回原因 a reason is required"; return; }
        body.reason = reason;
      }
      fetch("/complaints/" + encodeURIComponent(id) + "/" + action, {
        method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "Accept": "application/json"},
        body: JSON.stringify(body)
      }).then(function (resp) {
        return resp.json().catch(function () { return {}; }).then(function (b) {
          var out = row.querySelector(".fl-row-result");
          if (!resp.ok) { out.textContent = b.description || ("失败 failed (" + resp.status + ")"); return; }
          out.textContent = b.status === "accepted" ? "已受理 → 隐患 hazard #" + b.hazard_id : "已驳回 rejected";
          row.setAttribute("data-status", b.status);
          row.querySelectorAll("button").forEach(function (x) { x.disabled = true; });
        });
      });
    });
  };
})();

// the facility checklist (自查自纠): each item saved on its own (multipart, photos from the camera)
(function () {
  "use strict";
  window.firelaneChecklist = function () {
    var table = document.getElementById("fl-checklist");
    if (!table) { return; }
    var compound = table.getAttribute("data-compound");
    table.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var form = ev.target;
      var row = form.closest("tr");
      var out = row.querySelector(".fl-row-result");
      var data = new FormData(form);
      data.set("item", row.getAttribute("data-item"));
      if (row.getAttribute("data-subject")) { data.set("subject", row.getAttribute("data-subject")); }
      ["drill_date", "note", "checked_on"].forEach(function (k) { if (data.get(k) === "") { data.delete(k); } });
      out.textContent = "保存中 saving…";
      fetch("/compounds/" + encodeURIComponent(compound) + "/checklist",
            {method: "POST", credentials: "same-origin", body: data, headers: {"Accept": "application/json"}})
        .then(function (r) { return r.json().catch(function () { return {}; }).then(function (b) { return [r, b]; }); })
        .then(function (rb) {
          if (!rb[0].ok) { out.textContent = rb[1].description || ("失败 failed (" + rb[0].status + ")"); return; }
          var b = rb[1];
          row.setAttribute("data-status", b.status);
          var now = b.status + " · " + b.checked_on;
          if (b.hazard_id) { now += " · 隐患 hazard #" + b.hazard_id + " (" + b.hazard_status + ")"; }
          row.querySelector(".fl-now").textContent = now;
          out.textContent = "已保存 saved";
        })
        .catch(function () { out.textContent = "网络错误 network error"; });
    });
  };
})();

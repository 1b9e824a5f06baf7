// firelane field forms (phone report page, public complaint form): a point picked on the map or from the phone's
// GPS, sent with the form as multipart (photos from the camera); server strings shown with textContent only.
(function () {
  "use strict";

  function el(id) { return document.getElementById(id); }
  // an API error in the page's language: a headline by status, then the API's own detail
  function failure(T, status, detail) { return (T["error_" + status] || T.error_other || "") + (detail ? ": " + detail : ""); }
  window.firelaneFieldFailure = failure;

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
    var T = config.labels || {};  // web/i18n.py js_labels("field"), in the page's language
    var picked = null;  // [lon, lat] in display coordinates (GCJ-02 under an AMap basemap)

    function place(lat, lng, how) {
      if (marker) { marker.setLatLng([lat, lng]); } else {
        marker = L.marker([lat, lng], {draggable: true}).addTo(map);
        marker.on("dragend", function () {
          var p = marker.getLatLng();
          place(p.lat, p.lng, T.adjusted);
        });
      }
      picked = [lng, lat];
      el("fl-lon").value = lng.toFixed(7);
      el("fl-lat").value = lat.toFixed(7);
      where.textContent = how + ": " + lng.toFixed(6) + ", " + lat.toFixed(6);
      submit.disabled = false;
    }

    map.on("click", function (e) { place(e.latlng.lat, e.latlng.lng, T.picked); });

    var gps = el("fl-gps");
    if (gps) {
      gps.addEventListener("click", function () {
        if (!navigator.geolocation) { where.textContent = T.no_gps; return; }
        where.textContent = T.locating;
        navigator.geolocation.getCurrentPosition(function (pos) {
          var lon = pos.coords.longitude, lat = pos.coords.latitude;
          if (config.gcj02) { var g = wgsToDisplay(lon, lat); lon = g[0]; lat = g[1]; }
          place(lat, lon, "GPS ±" + Math.round(pos.coords.accuracy) + " m");
          map.setView([lat, lon], Math.max(map.getZoom(), 18));
        }, function (err) {
          where.textContent = T.gps_failed + " (" + err.message + ")";
        }, {enableHighAccuracy: true, timeout: 15000, maximumAge: 0});
      });
    }

    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (!picked) { where.textContent = T.pick_first; return; }
      var data = new FormData(form);
      if (config.gcj02) { data.set("crs", "gcj02"); }
      submit.disabled = true;
      result.textContent = T.sending;
      result.className = "";
      fetch(config.endpoint, {method: "POST", credentials: "same-origin", body: data,
                              headers: {"Accept": "application/json"}})
        .then(function (resp) {
          return resp.json().catch(function () { return {}; }).then(function (body) {
            submit.disabled = false;
            if (!resp.ok) {
              result.className = "fl-error";
              result.textContent = failure(T, resp.status, body.description);
              return;
            }
            result.className = "fl-ok";
            if (body.tracking_code) {
              result.textContent = T.received;
              var code = document.createElement("strong");
              code.id = "fl-tracking-code";
              code.textContent = body.tracking_code;
              result.appendChild(code);
            } else {
              result.textContent = T.filed + ": #" + body.id + " " + body.rule + " (" + (T["state_" + body.status] || body.status) + ")";
              result.setAttribute("data-hazard-id", String(body.id));
            }
            form.reset();
          });
        })
        .catch(function () { submit.disabled = false; result.textContent = T.error_network; });
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
            out.textContent = r[0] ? (T.lang === "en" ? r[1].label_en : r[1].label_zh) : failure(T, 404, r[1].description);
          })
          .catch(function () { out.textContent = T.error_network; });
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
    var T = JSON.parse(table.getAttribute("data-labels") || "{}");
    table.addEventListener("click", function (ev) {
      var button = ev.target.closest("button[data-action]");
      if (!button) { return; }
      var row = button.closest("tr");
      var id = row.getAttribute("data-id");
      var action = button.getAttribute("data-action");
      var body = {};
      if (action === "reject") {
        var reason = row.querySelector("input[name=reason]").value.trim();
        if (!reason) { row.querySelector(".fl-row-result").textContent = T.reason_needed; return; }
        body.reason = reason;
      }
      fetch("/complaints/" + encodeURIComponent(id) + "/" + action, {
        method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "Accept": "application/json"},
        body: JSON.stringify(body)
      }).then(function (resp) {
        return resp.json().catch(function () { return {}; }).then(function (b) {
          var out = row.querySelector(".fl-row-result");
          if (!resp.ok) { out.textContent = window.firelaneFieldFailure(T, resp.status, b.description); return; }
          out.textContent = b.status === "accepted" ? String(T.accepted).replace("{id}", b.hazard_id) : T.rejected;
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
    var T = JSON.parse(table.getAttribute("data-labels") || "{}");
    table.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var form = ev.target;
      var row = form.closest("tr");
      var out = row.querySelector(".fl-row-result");
      var data = new FormData(form);
      data.set("item", row.getAttribute("data-item"));
      if (row.getAttribute("data-subject")) { data.set("subject", row.getAttribute("data-subject")); }
      ["drill_date", "note", "checked_on"].forEach(function (k) { if (data.get(k) === "") { data.delete(k); } });
      out.textContent = T.saving;
      fetch("/compounds/" + encodeURIComponent(compound) + "/checklist",
            {method: "POST", credentials: "same-origin", body: data, headers: {"Accept": "application/json"}})
        .then(function (r) { return r.json().catch(function () { return {}; }).then(function (b) { return [r, b]; }); })
        .then(function (rb) {
          if (!rb[0].ok) { out.textContent = window.firelaneFieldFailure(T, rb[0].status, rb[1].description); return; }
          var b = rb[1];
          row.setAttribute("data-status", b.status);
          var now = (T["result_" + b.status] || b.status) + " · " + b.checked_on;
          if (b.hazard_id) {
            now += " · " + T.hazard + " #" + b.hazard_id + " (" + (T["state_" + b.hazard_status] || b.hazard_status) + ")";
          }
          row.querySelector(".fl-now").textContent = now;
          out.textContent = T.saved;
        })
        .catch(function () { out.textContent = T.error_network; });
    });
  };
})();

// firelane street office page: hazards as clustered markers and a list, both following the filters (rule family,
// status, department, severity, overdue). Popups are built with textContent; each carries an empty
// `.fl-actions[data-hazard-id]` box where the workflow's hazard actions go (firelane:hazard-popup event).
(function () {
  "use strict";
  var el = window.firelaneEl;

  window.firelaneStreet = function (map) {
    var C = window.FIRELANE, L_ = C.labels;
    // row: [id, lat, lon, rule, status, department, severity, overdue, compound, subject, measured, message]
    var rows = C.hazards || [];
    var cluster = L.markerClusterGroup({maxClusterRadius: 45, disableClusteringAtZoom: 19, chunkedLoading: true});
    window.firelaneOverlay(map, cluster, L_.hazards);
    var f = {
      family: document.getElementById("fl-f-family"), status: document.getElementById("fl-f-status"),
      department: document.getElementById("fl-f-department"), severity: document.getElementById("fl-f-severity"),
      overdue: document.getElementById("fl-f-overdue")
    };
    var tbody = document.querySelector("#fl-hazards tbody");
    var shown = document.getElementById("fl-hazard-shown");
    var markers = {};

    function popup(r) {
      var box = el("div");
      var rule = C.rules[r[3]] || ["", ""];
      var title = el("div", null, "fl-popup-title");
      var act = el("a", r[3]);
      act.href = "#hazard-" + r[0];  // the workflow panel (hazards.js) opens these
      title.appendChild(act);
      title.appendChild(document.createTextNode(" " + rule[0]));
      box.appendChild(title);
      var table = el("table", null, "fl-popup");
      [[L_.measured, r[10]], [L_.department, r[5]], [L_.status, (C.statuses[r[4]] || r[4]) + (r[7] ? " · " + L_.overdue : "")],
       [L_.subject, r[9]], [L_.severity, r[6]], ["", r[11]]].forEach(function (kv) {
        var tr = el("tr");
        tr.appendChild(el("th", kv[0]));
        tr.appendChild(el("td", kv[1]));
        table.appendChild(tr);
      });
      box.appendChild(table);
      if (r[8]) {
        var a = el("a", L_.file + " " + r[8], "fl-file");
        a.href = "/map/compounds/" + encodeURIComponent(r[8]);
        var p = el("p", null, "fl-popup-link");
        p.appendChild(a);
        box.appendChild(p);
      }
      var actions = el("div", null, "fl-actions");
      actions.setAttribute("data-hazard-id", String(r[0]));
      box.appendChild(actions);
      return box;
    }

    function keep(r) {
      var rule = C.rules[r[3]] || ["", ""];
      if (f.family.value && rule[1] !== f.family.value) { return false; }
      if (f.status.value && r[4] !== f.status.value) { return false; }
      if (f.department.value && r[5] !== f.department.value) { return false; }
      if (parseFloat(f.severity.value || "0") > r[6]) { return false; }
      if (f.overdue.checked && !r[7]) { return false; }
      return true;
    }

    function open(id) {
      var m = markers[id];
      if (!m) { return; }
      cluster.zoomToShowLayer(m, function () { m.openPopup(); });
    }

    function apply() {
      var kept = rows.filter(keep);
      cluster.clearLayers();
      markers = {};
      var list = kept.map(function (r) {
        var m = L.circleMarker([r[1], r[2]], {radius: 7, color: r[7] ? "#7b1fa2" : "#b03a2e", weight: 2,
                                              fillColor: "#ff5733", fillOpacity: 0.8});
        m.bindPopup(function () { return popup(r); }, {maxWidth: 420});
        m.on("popupopen", function (e) {
          document.dispatchEvent(new CustomEvent("firelane:hazard-popup", {detail: {id: r[0], element: e.popup.getElement()}}));
        });
        markers[r[0]] = m;
        return m;
      });
      cluster.addLayers(list);
      tbody.textContent = "";
      var cap = C.list_cap || 300;
      kept.slice(0, cap).forEach(function (r) {
        var tr = el("tr");
        tr.setAttribute("data-hazard-id", String(r[0]));
        tr.className = "fl-fly" + (r[7] ? " fl-overdue" : "");
        var rule = C.rules[r[3]] || ["", ""];
        var td = el("td", rule[0]);
        td.appendChild(el("br"));
        td.appendChild(el("small", r[3] + " · " + r[10]));
        tr.appendChild(td);
        tr.appendChild(el("td", r[8]));
        tr.appendChild(el("td", (C.statuses[r[4]] || r[4]) + (r[7] ? " · " + L_.overdue : "")));
        var act = el("td");
        var box = el("div", null, "fl-actions");
        box.setAttribute("data-hazard-id", String(r[0]));
        if (window.firelaneHazards && window.firelaneHazards.open) {  // the workflow's actions (hazards.js)
          var b = el("button", L_.act);
          b.type = "button";
          b.addEventListener("click", function () { window.firelaneHazards.open(r[0]); });
          box.appendChild(b);
        }
        act.appendChild(box);
        tr.appendChild(act);
        tr.addEventListener("click", function (ev) { if (!ev.target.closest("a,button,select,input")) { open(r[0]); } });
        tbody.appendChild(tr);
      });
      if (!kept.length) { var e = el("tr"); e.appendChild(el("td", L_.none)); tbody.appendChild(e); }
      shown.textContent = kept.length > cap ? L_.shown.replace("{n}", cap).replace("{total}", kept.length)
                                            : String(kept.length) + " / " + rows.length;
      document.dispatchEvent(new CustomEvent("firelane:hazards-listed", {detail: {ids: kept.map(function (r) { return r[0]; })}}));
    }

    Object.keys(f).forEach(function (k) { f[k].addEventListener("change", apply); f[k].addEventListener("input", apply); });
    apply();
    window.firelaneOpenHazard = open;
  };
})();

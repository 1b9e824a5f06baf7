// firelane traffic page: the conflicts drawn in the top pane (above the clusters and tiles); a list row flies the
// map to its conflict and opens its popup (escaped HTML built on the server).
(function () {
  "use strict";
  window.firelaneTraffic = function (map) {
    var C = window.FIRELANE;
    var group = L.featureGroup();
    var markers = {};
    (C.conflicts || []).forEach(function (r) {  // [id, lat, lon, rule, popup html]
      var m = L.circleMarker([r[1], r[2]], {pane: "fl-top", radius: 10, color: "#6a1b9a", weight: 3,
                                            fillColor: "#d500f9", fillOpacity: 0.7});
      if (r[4]) { m.bindPopup(r[4], {maxWidth: 420}); }
      m.bindTooltip(r[3]);
      markers[r[0]] = m;
      group.addLayer(m);
    });
    window.firelaneOverlay(map, group, C.layer_name || "conflicts");
    function fly(id) {
      var m = markers[id];
      if (!m) { return; }
      map.flyTo(m.getLatLng(), Math.max(map.getZoom(), 18), {duration: 0.6});
      map.once("moveend", function () { m.openPopup(); });
    }
    document.querySelectorAll("#fl-conflicts tr.fl-fly").forEach(function (tr) {
      var go = function (ev) { if (!ev.target.closest || !ev.target.closest("a")) { fly(parseInt(tr.getAttribute("data-id"), 10)); } };
      tr.addEventListener("click", go);
      tr.addEventListener("keydown", function (ev) { if (ev.key === "Enter") { go(ev); } });
    });
    window.firelaneFly = fly;
  };
})();

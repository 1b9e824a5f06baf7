// firelane drawing and editing: a new fire-lane polygon drawn with Leaflet.draw is POSTed through the OGC API
// Part 4 (/collections/fire_lanes/items); an existing lane, aerial area, hydrant or entrance clicked on its vector
// tile layer is loaded (GET, with its ETag), edited in place (vertices / marker dragged) and saved with PATCH and
// If-Match. A 412 offers "load their version" or "overwrite"; an invalid geometry's location is marked.
// Every server string is inserted with textContent (never innerHTML).
(function () {
  "use strict";
  var C = window.firelaneCoords, el = window.firelaneEl;

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

  window.firelaneDraw = function (map, group, config) {
    var L_ = config.labels || {};
    var current = null;      // the new polygon being drawn
    var editing = null;      // {collection, id, etag, layer, props}
    var invalidMark = null;
    var save = document.getElementById("fl-save");
    var state = document.getElementById("fl-draw-state");
    var box = document.getElementById("fl-feedback");
    var editBox = document.getElementById("fl-edit");
    var toDisplay = function (g) { return config.gcj02 ? C.mapCoords(g, C.wgsToGcj) : g; };
    var toStorage = function (g) { return config.gcj02 ? C.mapCoords(g, C.gcjToWgs) : g; };

    function markInvalid(text) {
      // GEOS names the place: "Self-intersection[121.54 29.81]" (storage lon/lat)
      var m = /\[\s*(-?\d+(?:\.\d+)?)\s+(-?\d+(?:\.\d+)?)\s*\]/.exec(text || "");
      if (invalidMark) { map.removeLayer(invalidMark); invalidMark = null; }
      if (!m) { return; }
      var p = [parseFloat(m[1]), parseFloat(m[2])];
      if (config.gcj02) { p = C.wgsToGcj(p); }
      invalidMark = L.circleMarker([p[1], p[0]], {radius: 12, color: "#b00020", weight: 3, fillOpacity: 0.2,
                                                  className: "fl-invalid"}).addTo(map);
      invalidMark.bindTooltip(L_.invalid_at || "invalid", {permanent: true, direction: "top"});
    }

    function fill(template, values) {
      return String(template || "").replace(/\{(\w+)\}/g, function (m, k) { return values[k] !== undefined ? values[k] : m; });
    }

    // a 409 for a taken ref: who uses it (when the caller may see it) and two ways out: another ref, or open theirs
    function refTaken(body, refInput) {
      var holder = L_.ref_taken_hidden, u = body.used_by;
      if (u) {
        holder = (config.layer_labels[body.collection] || body.collection) + " #" + u.id
          + (u.compound_ref ? " (" + L_.compound + " " + u.compound_ref + ")" : "");
      }
      var p = el("p", fill(L_.ref_taken, {ref: body.ref, holder: holder}), "bad");
      p.id = "fl-ref-taken";
      box.appendChild(p);
      box.appendChild(el("p", L_.ref_fix, "fl-note"));
      if (refInput) {
        var suggestion = body.ref + "-2";
        var use = el("button", fill(L_.use_ref, {ref: suggestion}));
        use.type = "button";
        use.id = "fl-use-ref";
        use.addEventListener("click", function () { refInput.value = suggestion; refInput.focus(); });
        box.appendChild(use);
      }
      if (u && config.layers[body.collection]) {
        var open = el("button", L_.open_holder);
        open.type = "button";
        open.id = "fl-open-holder";
        open.addEventListener("click", function () { load(body.collection, u.id); });
        box.appendChild(open);
      }
    }

    function showFeedback(ok, status, body, refInput) {
      box.textContent = "";
      box.appendChild(el("p", (ok ? L_.saved : L_.save_failed) + " (" + status + ")", ok ? "ok" : "bad"));
      if (!ok && status === 409 && body && body.ref !== undefined) {
        refTaken(body, refInput);
      } else if (!ok && body && body.description) {
        box.appendChild(el("p", body.description));
        markInvalid(body.description);
      } else if (ok) { markInvalid(""); }
      var findings = findingsOf(body);
      if (findings === null) { return; }
      box.appendChild(el("h2", L_.feedback));
      if (findings.length === 0) { box.appendChild(el("p", L_.no_failures, "ok")); return; }
      var list = el("ul");
      list.id = "fl-findings";
      findings.forEach(function (f) {
        var verdict = f.verdict || "fail";
        var msg = (config.lang === "en" ? (f.message_en || f.message) : (f.message_zh || f.message)) || "";
        var parts = [f.rule, f.verdict_label || verdict];
        if (f.measured !== undefined && f.measured !== null) {
          parts.push(f.measured + " / " + (f.required !== undefined ? f.required : f.required_value) + " " + (f.unit || ""));
        }
        list.appendChild(el("li", parts.join(" · ") + (msg ? " — " + msg : ""), verdict));
      });
      box.appendChild(list);
    }

    function send(method, url, body, headers) {
      return fetch(url, {
        method: method, credentials: "same-origin",
        headers: Object.assign({"Accept": "application/geo+json, application/json"}, headers || {}),
        body: body === undefined ? undefined : JSON.stringify(body)
      }).then(function (resp) {
        return resp.text().then(function (text) {
          var parsed = null;
          try { parsed = text ? JSON.parse(text) : null; } catch (err) { parsed = {description: text}; }
          return {resp: resp, body: parsed};
        });
      });
    }

    // --- new lanes ---------------------------------------------------------------------------------------------
    map.on("draw:created", function (e) {
      if (current && current !== e.layer) { group.removeLayer(current); }
      current = e.layer;
      group.addLayer(current);
      save.disabled = false;
      state.textContent = L_.drawn;
    });
    map.on("draw:deleted", function () {
      if (current && !group.hasLayer(current)) { current = null; save.disabled = true; }
    });
    save.addEventListener("click", function () {
      if (!current) { return; }
      var ref = document.getElementById("fl-ref").value.trim();
      if (!ref) { state.textContent = L_.need_ref; return; }
      var props = {ref: ref, kind: document.getElementById("fl-kind").value};
      var name = document.getElementById("fl-name").value.trim();
      if (name) { props.name = name; }
      var width = document.getElementById("fl-width").value;
      if (width !== "") { props.design_width_m = parseFloat(width); }
      save.disabled = true;
      state.textContent = L_.saving;
      send("POST", config.endpoint, {type: "Feature", geometry: toStorage(current.toGeoJSON().geometry), properties: props},
           {"Content-Type": "application/geo+json"}).then(function (r) {
        showFeedback(r.resp.ok, r.resp.status, r.body, document.getElementById("fl-ref"));
        state.textContent = r.resp.ok ? L_.saved + ": " + ref : L_.not_saved;
        if (r.resp.ok) { current.setStyle({color: "#1e7b34", fillColor: "#58d68d"}); current = null; }
        else { save.disabled = false; }
      }).catch(function () { state.textContent = L_.network; save.disabled = false; });
    });

    // --- editing existing features -----------------------------------------------------------------------------
    function stopEditing() {
      if (!editing) { return; }
      if (editing.layer.editing) { editing.layer.editing.disable(); }
      if (editing.layer.dragging) { editing.layer.dragging.disable(); }
      group.removeLayer(editing.layer);
      editing = null;
    }

    function load(collection, id) {
      stopEditing();
      editBox.textContent = "";
      editBox.appendChild(el("p", L_.loading, "fl-note"));
      return send("GET", "/collections/" + collection + "/items/" + id).then(function (r) {
        if (!r.resp.ok) { editBox.textContent = ""; editBox.appendChild(el("p", (r.body && r.body.description) || r.resp.status, "bad")); return; }
        var feature = r.body;
        var geometry = feature.geometry, multi = geometry.type === "MultiPolygon";
        // Leaflet.draw edits one polygon's rings: a one-part MultiPolygon is edited as its polygon
        if (multi && geometry.coordinates.length === 1) { geometry = {type: "Polygon", coordinates: geometry.coordinates[0]}; }
        var geo = L.geoJSON({type: "Feature", geometry: toDisplay(geometry), properties: {}}, {
          pointToLayer: function (f, ll) { return L.marker(ll, {draggable: false}); },
          style: {color: "#0b5ed7", weight: 3, fillOpacity: 0.25}
        });
        var layer = geo.getLayers()[0];
        group.addLayer(layer);
        editing = {collection: collection, id: id, etag: r.resp.headers.get("ETag"), layer: layer,
                   props: feature.properties || {}, multi: multi};
        if (layer.editing) { layer.editing.enable(); }
        if (layer.dragging) { layer.dragging.enable(); }
        showEditor();
      });
    }

    // the layer's attributes as a form (ids fl-edit-NAME), filled with the feature's values
    function attributeForm(collection, props) {
      var form = el("form", undefined, "fl-form");
      form.id = "fl-edit-form";
      form.setAttribute("onsubmit", "return false");
      (config.edit_fields[collection] || []).forEach(function (f) {
        var label = el("label", f.label + " "), input, v = props[f.name];
        if (f.type === "choice" || f.type === "bool") {
          input = document.createElement("select");
          var options = f.type === "bool" ? [["true", L_.yes], ["false", L_.no]] : f.choices;
          input.appendChild(el("option", "—")).value = "";
          options.forEach(function (c) { var o = el("option", c[1]); o.value = c[0]; input.appendChild(o); });
        } else {
          input = document.createElement("input");
          input.type = f.type === "number" || f.type === "integer" ? "number" : (f.type === "date" ? "date" : "text");
          if (f.type === "number") { input.step = "any"; }
          if (f.min !== null && f.min !== undefined) { input.min = f.min; }
          if (f.max !== null && f.max !== undefined) { input.max = f.max; }
          if (f.max_length) { input.maxLength = f.max_length; }
        }
        input.id = "fl-edit-" + f.name;
        input.name = f.name;
        input.value = v === null || v === undefined ? "" : String(v);
        label.appendChild(input);
        form.appendChild(label);
      });
      return form;
    }

    // the attributes the planner changed, typed as the layer declares them (empty: null)
    function changedProperties() {
      var out = {};
      (config.edit_fields[editing.collection] || []).forEach(function (f) {
        var input = document.getElementById("fl-edit-" + f.name);
        if (!input) { return; }
        var raw = input.value.trim(), old = editing.props[f.name], value = raw === "" ? null : raw;
        if (value !== null && (f.type === "number" || f.type === "integer")) { value = Number(raw); }
        if (value !== null && f.type === "bool") { value = raw === "true"; }
        var before = old === undefined ? null : old;
        if (value !== before && String(value) !== String(before)) { out[f.name] = value; }
      });
      return out;
    }

    function showEditor() {
      editBox.textContent = "";
      var p = editing.props;
      editBox.appendChild(el("h2", (config.layer_labels[editing.collection] || editing.collection) + " " + (p.ref || editing.id)));
      editBox.appendChild(el("p", L_.selected, "fl-note"));
      editBox.appendChild(el("h3", L_.attributes));
      editBox.appendChild(attributeForm(editing.collection, p));
      var button = el("button", L_.save_edit);
      button.type = "button";
      button.id = "fl-save-edit";
      button.addEventListener("click", function () { saveEdit(editing.etag); });
      editBox.appendChild(button);
    }

    function editedGeometry() {
      var g = toStorage(editing.layer.toGeoJSON().geometry);
      return editing.multi && g.type === "Polygon" ? {type: "MultiPolygon", coordinates: [g.coordinates]} : g;
    }

    function saveEdit(etag) {
      if (!editing) { return; }
      var url = "/collections/" + editing.collection + "/items/" + editing.id;
      var headers = {"Content-Type": "application/merge-patch+json"};
      if (etag) { headers["If-Match"] = etag; }
      state.textContent = L_.saving;
      var props = changedProperties();
      var body = {geometry: editedGeometry()};
      if (Object.keys(props).length) { body.properties = props; }
      return send("PATCH", url, body, headers).then(function (r) {
        if (r.resp.status === 412) { return conflict(); }
        showFeedback(r.resp.ok, r.resp.status, r.body, document.getElementById("fl-edit-ref"));
        if (r.resp.ok && r.body && r.body.properties) { Object.assign(editing.props, r.body.properties); }
        state.textContent = r.resp.ok ? L_.saved + ": " + (editing.props.ref || editing.id) : L_.not_saved;
        if (r.resp.ok) {
          editing.etag = r.resp.headers.get("ETag") || editing.etag;
          Object.keys(config.layers || {}).forEach(function (k) {
            var v = window[config.layers[k]];
            if (v && v.redraw) { v.redraw(); }
          });
        }
      }).catch(function () { state.textContent = L_.network; });
    }

    function conflict() {
      var mine = editing;
      box.textContent = "";
      var p = el("p", L_.conflict, "bad");
      p.id = "fl-conflict";
      box.appendChild(p);
      var theirs = el("button", L_.load_theirs);
      theirs.type = "button";
      theirs.id = "fl-load-theirs";
      theirs.addEventListener("click", function () { box.textContent = ""; load(mine.collection, mine.id); });
      var over = el("button", L_.overwrite);
      over.type = "button";
      over.id = "fl-overwrite";
      over.addEventListener("click", function () {
        // their current ETag, then our geometry over it (a deliberate overwrite)
        send("GET", "/collections/" + mine.collection + "/items/" + mine.id).then(function (r) {
          if (r.resp.ok) { saveEdit(r.resp.headers.get("ETag")); }
        });
      });
      box.appendChild(theirs);
      box.appendChild(over);
      state.textContent = L_.not_saved;
    }

    Object.keys(config.layers || {}).forEach(function (collection) {
      var layer = window[config.layers[collection]];
      if (!layer || !layer.on) { return; }
      layer.on("click", function (e) {
        var props = (e.layer && e.layer.properties) || {};
        var id = props.fid !== undefined ? props.fid : props.id;
        if (id !== undefined) { load(collection, id); }
      });
    });
    window.firelaneEditFeature = load;  // also from the list / tests
  };
})();

// firelane hazard workflow panel: work list with filters, per-department counts, and a hazard's actions (assign
// with a deadline, move along the cycle, history) through the /hazards API. Every server string goes in as text.
// Reusable: any page with a #fl-hazard-work section (data-street optional) gets it; links "#hazard-ID" (map
// popups) open a hazard. window.firelaneHazards.open(id) does the same from other scripts.
(function () {
  "use strict";
  var root = document.getElementById("fl-hazard-work");
  if (!root) { return; }
  var street = root.getAttribute("data-street") || "";
  var life = null, departments = [], current = null;
  var T = JSON.parse(root.getAttribute("data-labels") || "{}");  // the page's language (web/i18n.py js_labels)
  var en = T.lang === "en";
  function fill(template, values) {
    return String(template || "").replace(/\{(\w+)\}/g, function (m, k) { return values[k] !== undefined ? values[k] : m; });
  }
  // an API error in the page's language: a headline by status, then the API's own detail
  function failure(status, detail) {
    var head = T["error_" + status] || T.error_other || "";
    return head + (detail ? ": " + detail : "");
  }
  window.firelaneFailure = failure;
  window.firelaneLabels = T;

  function $(id) { return document.getElementById(id); }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    if (cls) { e.className = cls; }
    return e;
  }
  function label(state) {
    if (!life || !state) { return state || ""; }
    for (var i = 0; i < life.states.length; i++) {
      if (life.states[i].id === state) { return en ? life.states[i].en : life.states[i].zh; }
    }
    return state;
  }
  function api(path, body) {
    var opts = {credentials: "same-origin", headers: {"Accept": "application/json"}};
    if (body !== undefined) {
      opts.method = "POST";
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    return fetch(path, opts).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (doc) {
        if (!r.ok) { var err = new Error(failure(r.status, doc.description)); err.status = r.status; throw err; }
        return doc;
      });
    });
  }
  function query(params) {
    var q = [];
    Object.keys(params).forEach(function (k) {
      var v = params[k];
      if (v !== "" && v !== null && v !== undefined) { q.push(encodeURIComponent(k) + "=" + encodeURIComponent(v)); }
    });
    return q.length ? "?" + q.join("&") : "";
  }

  function loadList() {
    var status = $("fl-work-status").value;
    var params = {street: street, department: $("fl-work-department").value, limit: 100, count: "true"};
    if ($("fl-work-overdue").checked) { params.overdue = "true"; }
    var path = "/hazards/worklist" + query(params);
    if (status) { path += "&status=" + encodeURIComponent(status); }
    else { life.needs_work.forEach(function (s) { path += "&status=" + encodeURIComponent(s); }); }
    return api(path).then(function (doc) {
      var body = $("fl-worklist").tBodies[0];
      body.textContent = "";
      doc.hazards.forEach(function (h) {
        var tr = el("tr");
        tr.setAttribute("data-hazard-id", h.id);
        if (h.overdue) { tr.className = "overdue"; }
        tr.appendChild(el("td", h.id));
        tr.appendChild(el("td", label(h.status), "status"));
        var what = el("td", h.rule);
        what.appendChild(el("br"));
        what.appendChild(el("small", h.compound_ref || ""));
        tr.appendChild(what);
        var who = [h.department ? deptName(h.department) : "", h.responsible_unit || ""];
        tr.appendChild(el("td", who.filter(Boolean).join(" / ")));
        tr.appendChild(el("td", h.deadline ? h.deadline + (h.overdue ? " (" + fill(T.overdue_days, {d: h.days_overdue}) + ")" : "") : "",
                          "deadline"));
        var act = el("td");
        var b = el("button", T.act);
        b.type = "button";
        b.addEventListener("click", function () { open(h.id); });
        act.appendChild(b);
        tr.appendChild(act);
        body.appendChild(tr);
      });
      if (!doc.hazards.length) { var tr = el("tr"); var td = el("td", T.none); td.colSpan = 6; tr.appendChild(td); body.appendChild(tr); }
      $("fl-work-more").textContent = doc.numberMatched > doc.numberReturned ?
        fill(T.shown, {n: doc.numberReturned, total: doc.numberMatched}) : "";
    }).catch(function (e) { $("fl-work-more").textContent = e.message; });
  }

  function loadWorkload() {
    return api("/hazards/workload" + query({by: "department", street: street})).then(function (doc) {
      var body = $("fl-workload").tBodies[0];
      body.textContent = "";
      doc.rows.forEach(function (r) {
        var tr = el("tr");
        tr.setAttribute("data-department", r.name || "");
        tr.appendChild(el("td", r.name ? deptName(r.name) : T.unassigned));
        [r.open, r.overdue, r.due_soon].forEach(function (n) { tr.appendChild(el("td", n, "num")); });
        body.appendChild(tr);
      });
    });
  }

  function refresh() { return Promise.all([loadList(), loadWorkload()]); }

  function deptName(id) {  // a routing of several departments ("交警/公安; 物业") names each of them
    return String(id).split(";").map(function (part) {
      part = part.trim();
      for (var i = 0; i < departments.length; i++) {
        if (departments[i].id === part) { return en ? departments[i].en : departments[i].zh; }
      }
      return part;
    }).join("; ");
  }

  function fact(dl, k, v) { dl.appendChild(el("dt", k)); dl.appendChild(el("dd", v === null || v === undefined ? "" : v)); }

  function open(id) {
    $("fl-detail-error").textContent = "";
    return api("/hazards/" + encodeURIComponent(id)).then(function (h) {
      current = h;
      var box = $("fl-hazard-detail");
      box.hidden = false;
      var dl = $("fl-detail-facts");
      dl.textContent = "";
      fact(dl, T.id, h.id);
      fact(dl, T.status, label(h.status));
      fact(dl, T.hazard, h.rule + " " + ((en ? h.message_en || h.message_zh : h.message_zh || h.message_en) || ""));
      fact(dl, T.compound, h.compound_ref);
      fact(dl, T.department, h.department ? deptName(h.department) : "");
      fact(dl, T.unit, h.responsible_unit);
      fact(dl, T.person, h.person);
      fact(dl, T.deadline, h.deadline ? h.deadline + (h.overdue ? " " + fill(T.overdue_days, {d: h.days_overdue}) : "") : "");
      var hist = $("fl-detail-history");
      hist.textContent = "";
      h.events.forEach(function (e) {
        var line = e.at.slice(0, 16).replace("T", " ") + " " + e.by + ": " + (e.from ? label(e.from) : "—") +
          " → " + label(e.to);
        if (e.department) { line += " · " + deptName(e.department) + (e.unit ? " / " + e.unit : ""); }
        if (e.deadline) { line += " · " + T.deadline + " " + e.deadline; }
        if (e.evidence) { line += " · " + e.evidence; }
        if (e.photos && e.photos.length) { line += " · " + T.photos + " " + e.photos.join(", "); }
        if (e.note) { line += " · " + e.note; }
        hist.appendChild(el("li", line));
      });
      var next = h.next || [];
      var assign = $("fl-assign-form");
      assign.hidden = next.indexOf("assigned") < 0;
      if (!assign.hidden) {
        assign.elements.department.value = departments.some(function (d) { return d.id === h.department; }) ? h.department : "";
        assign.elements.unit.value = h.responsible_unit || "";
        assign.elements.person.value = h.person || "";
        assign.elements.deadline.value = h.deadline || "";
      }
      var buttons = $("fl-move-buttons");
      buttons.textContent = "";
      next.filter(function (s) { return s !== "assigned"; }).forEach(function (s) {
        var b = el("button", label(s));
        b.type = "button";
        b.setAttribute("data-to", s);
        b.addEventListener("click", function () { move(s); });
        buttons.appendChild(b);
      });
      $("fl-move-form").hidden = !buttons.childNodes.length;
      box.scrollIntoView({block: "nearest"});
    }).catch(function (e) { $("fl-detail-error").textContent = e.message; });
  }

  function after(p) {
    return p.then(function () { return refresh(); }).then(function () { return open(current.id); })
      .catch(function (e) {
        var msg = e.message;
        if (e.status === 409 || e.status === 412) { msg += " — " + T.reloaded; open(current.id); }
        $("fl-detail-error").textContent = msg;
      });
  }

  function move(to) {
    var f = $("fl-move-form");
    var photos = f.elements.photos.value.split(/[\s,，]+/).filter(Boolean).map(Number);
    return after(api("/hazards/" + current.id + "/transition",
                     {to: to, note: f.elements.note.value || null, photos: photos, version: current.version}));
  }

  $("fl-assign-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var f = ev.target;
    after(api("/hazards/" + current.id + "/assign", {
      department: f.elements.department.value, unit: f.elements.unit.value, person: f.elements.person.value || null,
      deadline: f.elements.deadline.value || null, version: current.version}));
  });
  $("fl-detail-close").addEventListener("click", function () { $("fl-hazard-detail").hidden = true; });
  ["fl-work-status", "fl-work-department", "fl-work-overdue"].forEach(function (id) {
    $(id).addEventListener("change", loadList);
  });
  // map popups link to "#hazard-ID"
  document.addEventListener("click", function (ev) {
    var a = ev.target.closest ? ev.target.closest('a[href^="#hazard-"]') : null;
    if (!a) { return; }
    ev.preventDefault();
    open(a.getAttribute("href").slice(8));
  });

  Promise.all([api("/hazards/lifecycle"), api("/hazards/departments")]).then(function (docs) {
    life = docs[0];
    departments = docs[1].departments;
    var st = $("fl-work-status");
    life.states.forEach(function (s) { var o = el("option", en ? s.en : s.zh); o.value = s.id; st.appendChild(o); });
    var sel = $("fl-work-department");
    var pick = $("fl-assign-form").elements.department;
    pick.appendChild(el("option", ""));
    departments.forEach(function (d) {
      var o = el("option", en ? d.en : d.zh); o.value = d.id; sel.appendChild(o);
      var p = el("option", en ? d.en : d.zh); p.value = d.id; pick.appendChild(p);
    });
    var today = new Date();
    $("fl-assign-form").elements.deadline.min = today.toISOString().slice(0, 10);
    root.setAttribute("data-ready", "1");
    return refresh();
  }).then(function () { root.setAttribute("data-loaded", "1"); });

  window.firelaneHazards = {open: open, refresh: refresh};
})();

// firelane: the photos of the hazard open in the street page's work panel (hazards.js): thumbnails with where and
// when they were taken (EXIF) beside the hazard's location, and an upload whose ids feed the next step's photos.
// Server strings go in with textContent; pictures come from /photos/<id>/thumbnail (same origin, served inert).
(function () {
  "use strict";
  var facts = document.getElementById("fl-detail-facts");
  if (!facts) { return; }
  var shown = null;
  var root = document.getElementById("fl-hazard-work");
  var T = JSON.parse((root && root.getAttribute("data-labels")) || "{}");  // web/i18n.py js_labels("work")
  function failure(status, detail) { return (T["error_" + status] || T.error_other || "") + (detail ? ": " + detail : ""); }

  function el(tag, text) { var e = document.createElement(tag); if (text !== undefined) { e.textContent = text; } return e; }

  function panel() {
    var box = document.getElementById("fl-hazard-photos");
    if (box) { return box; }
    box = el("div");
    box.id = "fl-hazard-photos";
    box.appendChild(el("h2", T.photos));
    var list = el("ul");
    list.id = "fl-photo-list";
    list.className = "fl-photo-list";
    box.appendChild(list);
    var form = el("form");
    form.id = "fl-photo-form";
    form.className = "fl-form";
    var file = el("input");
    file.type = "file"; file.name = "file"; file.accept = "image/*,application/pdf"; file.required = true;
    var kind = el("select");
    kind.name = "kind";
    [["after", T.photo_after], ["before", T.photo_before], ["other", T.photo_other]].forEach(function (k) {
      var o = el("option", k[1]); o.value = k[0]; kind.appendChild(o);
    });
    var button = el("button", T.upload);
    button.type = "submit";
    var status = el("span");
    status.id = "fl-photo-status";
    form.appendChild(file); form.appendChild(kind); form.appendChild(button); form.appendChild(status);
    box.appendChild(form);
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (!shown) { return; }
      var data = new FormData(form);
      status.textContent = T.uploading;
      fetch("/hazards/" + encodeURIComponent(shown) + "/photos", {method: "POST", credentials: "same-origin",
                                                                   body: data, headers: {"Accept": "application/json"}})
        .then(function (r) { return r.json().catch(function () { return {}; }).then(function (b) { return [r, b]; }); })
        .then(function (rb) {
          if (!rb[0].ok) { status.textContent = failure(rb[0].status, rb[1].description); return; }
          status.textContent = T.uploaded + " #" + rb[1].id;
          var ids = document.querySelector("#fl-move-form input[name=photos]");
          if (ids && rb[1].kind === "after") { ids.value = (ids.value ? ids.value + ", " : "") + rb[1].id; }
          form.reset();
          load(shown);
        })
        .catch(function () { status.textContent = T.error_network; });
    });
    var err = document.getElementById("fl-detail-error");
    err.parentNode.insertBefore(box, err);
    return box;
  }

  function describe(p) {
    var parts = [p.kind === "after" ? T.photo_after : p.kind === "before" ? T.photo_before : T.photo_other,
                 p.media_type];
    if (p.exif_time) { parts.push(T.taken + " " + p.exif_time.slice(0, 16).replace("T", " ")); }
    if (p.distance_m !== null && p.distance_m !== undefined) {
      parts.push(String(T.from_hazard).replace("{d}", p.distance_m));
    } else { parts.push(T.no_gps); }
    parts.push(p.uploaded_by || "");
    return parts.join(" · ");
  }

  function load(id) {
    var list = panel().querySelector("#fl-photo-list");
    fetch("/hazards/" + encodeURIComponent(id) + "/photos", {credentials: "same-origin",
                                                             headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : {photos: []}; })
      .then(function (doc) {
        if (shown !== id) { return; }
        list.textContent = "";
        doc.photos.forEach(function (p) {
          var li = el("li");
          li.setAttribute("data-photo-id", String(p.id));
          var a = el("a");
          a.href = "/photos/" + p.id;
          a.target = "_blank";
          a.rel = "noopener";
          if (p.thumbnail) {
            var img = el("img");
            img.src = p.thumbnail; img.alt = "#" + p.id; img.width = 96; img.loading = "lazy";
            a.appendChild(img);
          } else { a.textContent = "#" + p.id + " PDF"; }
          li.appendChild(a);
          li.appendChild(el("span", " #" + p.id + " " + describe(p)));
          list.appendChild(li);
        });
        if (!doc.photos.length) { list.appendChild(el("li", T.no_photos)); }
      });
  }

  new MutationObserver(function () {
    var first = facts.querySelector("dd");
    if (!first) { return; }
    shown = first.textContent;
    load(shown);
  }).observe(facts, {childList: true});
})();

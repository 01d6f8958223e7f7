/* TriggerPath web app: drafts, body-map picking and the live dose check. Plain JS, no build. */
(function () {
  "use strict";
  var DRAFT = "tp-draft:";

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $all(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }
  function json(id) { var el = document.getElementById(id); return el ? JSON.parse(el.textContent) : {}; }

  /* ------------------------------------------------------------------ drafts */
  /* A draft is keyed to the signed-in user and the record (tp-draft:<user>:<form>-<record id>),
     so it is never offered to the next user of a shared machine; signing out erases every
     draft kept in this browser. */
  function draftKey(name) {
    var user = document.body ? document.body.dataset.user : "";
    return user ? DRAFT + user + ":" + name : null;
  }
  function eraseDrafts() {
    try {
      for (var i = localStorage.length - 1; i >= 0; i--) {
        var k = localStorage.key(i);
        if (k && k.indexOf(DRAFT) === 0) localStorage.removeItem(k);
      }
    } catch (e) { /* storage blocked */ }
  }
  function formEntries(form) {
    var out = [];
    new FormData(form).forEach(function (v, k) { if (k !== "csrf" && typeof v === "string") out.push([k, v]); });
    return out;
  }
  function saveDraft(form) {
    var key = draftKey(form.dataset.draft);
    if (!key) return;
    try { localStorage.setItem(key, JSON.stringify({at: Date.now(), entries: formEntries(form)})); } catch (e) { /* storage full or blocked */ }
  }
  function setField(form, name, value) {
    $all('[name="' + CSS.escape(name) + '"]', form).forEach(function (el) {
      if (el.type === "radio" || el.type === "checkbox") { if (el.value === value) el.checked = true; }
      else if (el.type !== "hidden") { el.value = value; }
    });
  }
  function restoreDraft(form) {
    var raw = null, key = draftKey(form.dataset.draft);
    if (!key) return;
    try { raw = localStorage.getItem(key); } catch (e) { return; }
    if (!raw) return;
    var draft = JSON.parse(raw);
    if (!draft || !draft.entries || !draft.entries.length) return;
    // rows first (trigger points, targets), then values; checkboxes start unticked
    draft.entries.forEach(function (kv) {
      var m = /^(trigger_points|targets)\[(\d+)\]\.muscle$/.exec(kv[0]);
      if (m && kv[1]) ensureRow(m[1], parseInt(m[2], 10));
    });
    $all('input[type="checkbox"]', form).forEach(function (el) { el.checked = false; });
    draft.entries.forEach(function (kv) { setField(form, kv[0], kv[1]); });
    syncMap();
    var note = $("#draft-note");
    if (note) {
      note.hidden = false;
      note.innerHTML = "";
      note.appendChild(document.createTextNode("Restored your unsent draft from " + new Date(draft.at).toLocaleString() + ". "));
      var b = document.createElement("button");
      b.type = "button"; b.textContent = "Discard draft";
      b.addEventListener("click", function () { localStorage.removeItem(key); location.reload(); });
      note.appendChild(b);
    }
    form.dispatchEvent(new Event("change", {bubbles: true}));
  }
  function clearSaved() {
    var saved = new URLSearchParams(location.search).get("saved");
    var key = saved ? draftKey(saved) : null;
    if (key) { try { localStorage.removeItem(key); } catch (e) { /* ignore */ } }
  }

  /* ------------------------------------------------------------------ rows */
  var ROWS = {
    trigger_points: {box: "#tp-rows", tpl: "#tp-template", cls: ".tp-card"},
    targets: {box: "#target-rows", tpl: "#target-template", cls: ".target-row"}
  };
  function nextIndex(kind) {
    var max = -1;
    $all(ROWS[kind].cls, $(ROWS[kind].box)).forEach(function (r) { max = Math.max(max, parseInt(r.dataset.index, 10)); });
    return max + 1;
  }
  function ensureRow(kind, index) {
    var box = $(ROWS[kind].box);
    if (!box) return null;
    var existing = box.querySelector(ROWS[kind].cls + '[data-index="' + index + '"]');
    if (existing) return existing;
    var tpl = $(ROWS[kind].tpl);
    var html = tpl.innerHTML.split("__I__").join(String(index));
    var wrap = document.createElement("div");
    wrap.innerHTML = html.trim();
    var row = wrap.firstElementChild;
    var legend = row.querySelector("legend");
    if (legend) legend.firstChild.textContent = legend.firstChild.textContent.trim() + " " + (index + 1);
    box.appendChild(row);
    return row;
  }
  function rowsOf(kind) {
    var box = $(ROWS[kind].box);
    return box ? $all(ROWS[kind].cls, box) : [];
  }
  function rowValue(row, suffix) {
    var el = row.querySelector('[name$="' + suffix + '"]');
    return el ? el.value : "";
  }
  function setRow(row, suffix, value) {
    var el = row.querySelector('[name$="' + suffix + '"]');
    if (el) el.value = value;
  }
  function findRow(kind, muscle, side) {
    return rowsOf(kind).filter(function (r) { return rowValue(r, ".muscle") === muscle && (!side || rowValue(r, ".side") === side); })[0];
  }
  function emptyRow(kind) {
    return rowsOf(kind).filter(function (r) { return !rowValue(r, ".muscle"); })[0];
  }

  /* ------------------------------------------------------------------ body map */
  var muscles = {};
  var mapMode = null;  // "assess" or "plan"

  function showZones(id, side) {
    $all("svg.bodymap path.referral").forEach(function (z) {
      z.classList.toggle("shown", z.dataset.muscle === id && (!side || z.dataset.side === side));
    });
  }
  function showMuscle(id, side) {
    var box = $("#muscle-info");
    var m = muscles[id];
    if (!box || !m) return;
    showZones(id, side);
    box.innerHTML = "";
    var h = document.createElement("h3"); h.textContent = m.name; box.appendChild(h);
    var p = document.createElement("p"); p.textContent = "Refers pain to (purple on the map" + (side ? ", " + side + " side" : "") + "):"; box.appendChild(p);
    var ul = document.createElement("ul"); ul.className = "zones";
    m.zones.forEach(function (z) { var li = document.createElement("li"); li.textContent = z; ul.appendChild(li); });
    box.appendChild(ul);
  }
  function syncMap() {
    if (!mapMode) return;
    var kind = mapMode === "assess" ? "trigger_points" : "targets";
    var cls = mapMode === "assess" ? "selected" : "target";
    var picked = {};
    rowsOf(kind).forEach(function (r) {
      var m = rowValue(r, ".muscle"), s = rowValue(r, ".side");
      if (!m) return;
      if (s === "bilateral") { picked[m + "|left"] = true; picked[m + "|right"] = true; } else { picked[m + "|" + s] = true; }
      var name = r.querySelector(".tp-name");
      if (name && muscles[m]) name.textContent = muscles[m].name;
    });
    $all("svg.bodymap circle.tp").forEach(function (c) {
      var on = !!picked[c.dataset.muscle + "|" + c.dataset.side];
      c.classList.toggle(cls, on);
      c.setAttribute("aria-pressed", on ? "true" : "false");
    });
  }
  function pick(circle) {
    var muscle = circle.dataset.muscle, side = circle.dataset.side;
    showMuscle(muscle, side);
    if (mapMode === "assess") {
      var row = findRow("trigger_points", muscle, side) || findRow("trigger_points", muscle, "bilateral");
      if (!row) {
        row = emptyRow("trigger_points") || ensureRow("trigger_points", nextIndex("trigger_points"));
        setRow(row, ".muscle", muscle); setRow(row, ".side", side);
        if (!emptyRow("trigger_points")) ensureRow("trigger_points", nextIndex("trigger_points"));
      }
      announce(muscles[muscle].name + ", " + side + ": trigger point row ready below.");
    } else if (mapMode === "plan") {
      var t = findRow("targets", muscle, side);
      var both = findRow("targets", muscle, "bilateral");
      if (t) { t.remove(); announce(muscles[muscle].name + ", " + side + " removed from the targets."); }
      else if (both) { setRow(both, ".side", side === "left" ? "right" : "left"); announce(muscles[muscle].name + ": now " + (side === "left" ? "right" : "left") + " only."); }
      else {
        var other = findRow("targets", muscle, side === "left" ? "right" : "left");
        if (other) { setRow(other, ".side", "bilateral"); setRow(other, ".sites", String(Math.max(2, parseInt(rowValue(other, ".sites") || "1", 10) * 2))); }
        else {
          var r = emptyRow("targets") || ensureRow("targets", nextIndex("targets"));
          setRow(r, ".muscle", muscle); setRow(r, ".side", side); setRow(r, ".sites", "1");
          setRow(r, ".volume_ml_per_site", String(muscles[muscle].volume || 1));
        }
        announce(muscles[muscle].name + ", " + side + " added to the targets.");
      }
      scheduleCheck();
    }
    syncMap();
    var form = circle.closest("form") || $("form[data-draft]");
    if (form && form.dataset.draft) saveDraft(form);
  }
  function announce(text) {
    var box = $("#muscle-info");
    if (!box) return;
    var p = document.createElement("p"); p.className = "announce"; p.textContent = text;
    box.appendChild(p);
  }
  function initMap() {
    muscles = json("muscles-data");
    if ($("#assess-map")) mapMode = "assess";
    else if ($("#plan-map")) mapMode = "plan";
    if (!mapMode) return;
    $all("svg.bodymap circle.tp").forEach(function (c) {
      c.addEventListener("click", function () { pick(c); });
      c.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); pick(c); }
      });
      c.addEventListener("focus", function () { showMuscle(c.dataset.muscle, c.dataset.side); });
    });
    document.addEventListener("click", function (e) {
      var btn = e.target.closest(".remove-tp, .remove-target");
      if (!btn) return;
      var row = btn.closest(".tp-card, .target-row");
      if (row) { row.remove(); syncMap(); scheduleCheck(); var f = $("form[data-draft]"); if (f) saveDraft(f); }
    });
    var add = $("#add-tp");
    if (add) add.addEventListener("click", function () {
      var row = emptyRow("trigger_points") || ensureRow("trigger_points", nextIndex("trigger_points"));
      var sel = row.querySelector("select"); if (sel) sel.focus();
    });
    var addT = $("#add-target");
    if (addT) addT.addEventListener("click", function () {
      var row = emptyRow("targets") || ensureRow("targets", nextIndex("targets"));
      var sel = row.querySelector("select"); if (sel) sel.focus();
    });
    document.addEventListener("change", function (e) {
      if (e.target.name && /\.(muscle|side)$/.test(e.target.name)) syncMap();
    });
    syncMap();
  }

  /* ------------------------------------------------------------------ live dose check */
  var timer = null, seq = 0;
  function scheduleCheck() {
    var form = $("#plan-form");
    if (!form) return;
    clearTimeout(timer);
    timer = setTimeout(function () { runCheck(form); }, 250);
  }
  function el(tag, cls, text) { var e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; }
  function fmt(n) { return (Math.round(n * 100) / 100).toString(); }
  function runCheck(form) {
    var mine = ++seq;
    var body = new URLSearchParams();
    new FormData(form).forEach(function (v, k) { if (typeof v === "string") body.append(k, v); });
    var csrf = form.querySelector('[name="csrf"]').value;
    var live = $("#dose-live");
    live.setAttribute("aria-busy", "true");
    fetch(form.dataset.check, {method: "POST", body: body, credentials: "same-origin", headers: {"X-CSRF-Token": csrf}})
      .then(function (r) {
        if (r.status === 401) { throw new Error("Your session has expired: sign in again (your draft is kept)."); }
        return r.json();
      })
      .then(function (res) { if (mine === seq) renderCheck(res); })
      .catch(function (err) { if (mine === seq) { live.innerHTML = ""; live.appendChild(el("p", "status status-blocked", err.message)); setSave(false); } })
      .then(function () { live.removeAttribute("aria-busy"); });
  }
  function setSave(ok) {
    var b = $("#save-plan");
    if (!b) return;
    b.disabled = !ok;
    b.setAttribute("aria-disabled", ok ? "false" : "true");
  }
  function renderCheck(res) {
    var live = $("#dose-live");
    live.innerHTML = "";
    $all(".live-error").forEach(function (e) { e.remove(); });
    $all("[data-live-invalid]").forEach(function (input) {  // undo the last check's marks
      var ids = (input.getAttribute("aria-describedby") || "").split(" ").filter(function (i) { return i && i.indexOf("live-err-") !== 0; });
      if (ids.length) input.setAttribute("aria-describedby", ids.join(" ")); else input.removeAttribute("aria-describedby");
      input.removeAttribute("aria-invalid"); input.removeAttribute("data-live-invalid");
    });
    if (res.status === "invalid") {
      live.appendChild(el("p", "status status-blocked", "Check the highlighted fields."));
      Object.keys(res.errors || {}).forEach(function (name, n) {
        var input = document.querySelector('[name="' + CSS.escape(name) + '"]');
        var msg = el("p", "error live-error", res.errors[name].join("; "));
        msg.id = "live-err-" + n;
        if (input && input.closest(".field")) {
          input.closest(".field").appendChild(msg);
          // the message is next to the field and named by it (aria-describedby)
          var ids = (input.getAttribute("aria-describedby") || "").trim();
          input.setAttribute("aria-describedby", (ids ? ids + " " : "") + msg.id);
          input.setAttribute("aria-invalid", "true");
          input.setAttribute("data-live-invalid", "");
        } else live.appendChild(msg);
      });
      setSave(false);
      return;
    }
    var head = el("p", "status status-" + res.status);
    head.appendChild(el("strong", "", res.status.replace(/_/g, " ")));
    head.appendChild(document.createTextNode(": " + res.headline));
    live.appendChild(head);
    if (res.dose) {
      var d = res.dose;
      var meter = el("div", "meter meter-" + d.level);
      meter.setAttribute("role", "img");
      meter.setAttribute("aria-label", "Dose at " + d.percent_of_max + "% of the combined maximum");
      var bar = el("span", ""); bar.style.width = Math.min(100, d.percent_of_max) + "%"; meter.appendChild(bar);
      live.appendChild(meter);
      live.appendChild(el("p", "dose dose-" + d.level, d.headline + " (weight used " + d.weight.kg + " kg, " + d.weight.basis + ")"));
      var t = el("table", "list");
      var thead = el("thead"); var tr = el("tr");
      ["Solution", "mL", "mg", "Remaining allowance"].forEach(function (h) { var th = el("th", "", h); th.scope = "col"; tr.appendChild(th); });
      thead.appendChild(tr); t.appendChild(thead);
      var tb = el("tbody");
      d.solutions.forEach(function (s) {
        var r = el("tr");
        r.appendChild(el("td", "", s.agent + " " + s.percent + "%" + (s.epinephrine ? " + epinephrine" : "")));
        r.appendChild(el("td", "", fmt(s.ml)));
        r.appendChild(el("td", "", fmt(s.mg)));
        r.appendChild(el("td", "remaining", fmt(s.remaining_ml) + " mL more of this solution"));
        tb.appendChild(r);
      });
      t.appendChild(tb); live.appendChild(t);
      d.agents.forEach(function (a) {
        live.appendChild(el("p", "hint", a.name + (a.epinephrine ? " with epinephrine" : "") + ": " + fmt(a.mg) + " of " + fmt(a.max_mg) + " mg (limited by " + a.limited_by + "; sources " + a.source_range + ")"));
      });
    }
    if (res.issues && res.issues.length) {
      var ul = el("ul", "issues");
      res.issues.forEach(function (i) { ul.appendChild(el("li", i.blocking ? "blocking" : "", i.text + " [" + i.statement_ids.join(", ") + "]")); });
      live.appendChild(ul);
    }
    renderAcks(res);
    showHazards(res.hazards || []);
    setSave(res.status === "ready");
  }
  function renderAcks(res) {
    var box = $("#ack-list");
    if (!box) return;
    var checked = {};
    $all('input[name="acknowledged_cautions"]', box).forEach(function (c) { if (c.checked) checked[c.value] = true; });
    box.innerHTML = "";
    var req = res.required_acknowledgements || [];
    if (!req.length) { box.appendChild(el("p", "hint", "None required.")); return; }
    req.forEach(function (code, i) {
      var div = el("div", "check");
      var input = document.createElement("input");
      input.type = "checkbox"; input.name = "acknowledged_cautions"; input.value = code; input.id = "ack-" + i;
      input.checked = !!checked[code];
      var label = el("label", "", (res.caution_texts && res.caution_texts[code]) || code.replace(/_/g, " "));
      label.htmlFor = input.id;
      div.appendChild(input); div.appendChild(label); box.appendChild(div);
    });
  }
  function showHazards(ids) {
    var style = document.getElementById("hazard-style");
    if (style) style.remove();
    $all("#plan-map svg .hazard").forEach(function (p) {
      var on = ids.some(function (h) { return p.classList.contains("hazard-" + h); });
      p.style.display = on ? "inline" : "none";
    });
  }
  function fillStrengths() {
    var data = json("strengths-data");
    [0, 1].forEach(function (i) {
      var agent = document.querySelector('[name="injectate.solutions[' + i + '].agent"]');
      var epi = document.querySelector('[name="injectate.solutions[' + i + '].epinephrine"]');
      var list = document.getElementById("strengths-" + i);
      if (!agent || !list) return;
      var s = data[agent.value] || {plain: [], epinephrine: []};
      var opts = (epi && epi.checked) ? s.epinephrine : s.plain;
      list.innerHTML = "";
      opts.forEach(function (v) { var o = document.createElement("option"); o.value = v; list.appendChild(o); });
    });
  }
  function initPlanner() {
    var form = $("#plan-form");
    if (!form) return;
    form.addEventListener("input", scheduleCheck);
    form.addEventListener("change", function () { fillStrengths(); scheduleCheck(); });
    fillStrengths();
    scheduleCheck();
  }

  /* ------------------------------------------------------------------ misc */
  function initTime() {
    var off = new Date().getTimezoneOffset();
    $all("input.tz-offset").forEach(function (i) { i.value = String(off); });
    var when = document.querySelector('#session-form [name="performed_at"]');
    if (when && !$(".error-summary")) {
      var now = new Date(Date.now() - off * 60000);
      when.value = now.toISOString().slice(0, 16);
    }
  }
  /* A copied field's "copied from DATE" mark goes once the clinician changes that field. */
  function initCopied() {
    var form = $("#assess-form");
    if (!form || !$("#copied-banner")) return;
    form.addEventListener("change", function (ev) {
      var name = ev.target && ev.target.name;
      if (!name) return;
      $all(".copied[data-copied-for]", form).forEach(function (el) {
        if (el.dataset.copiedFor === name) el.remove();
      });
    });
  }
  function initDrafts() {
    clearSaved();
    $all('form[action$="/logout"]').forEach(function (f) { f.addEventListener("submit", eraseDrafts); });
    $all("form[data-draft]").forEach(function (form) {
      if (!$(".error-summary")) restoreDraft(form);
      form.addEventListener("input", function () { saveDraft(form); });
      form.addEventListener("change", function () { saveDraft(form); });
      form.addEventListener("submit", function () { saveDraft(form); });
    });
    var summary = $("#error-summary");
    if (summary) summary.focus();
  }

  document.addEventListener("DOMContentLoaded", function () {
    initMap();
    initTime();
    initDrafts();
    initCopied();
    initPlanner();
  });

  /* ---------------------------------------------- statement ids: open the paraphrase once */
  document.addEventListener("click", function (e) {
    var a = e.target.closest && e.target.closest("a.sid");
    if (!a) return;
    var dt = document.getElementById(decodeURIComponent(a.getAttribute("href").slice(1)));
    var box = dt && dt.closest("details");
    if (box) box.open = true;
    $all("dt.cited").forEach(function (d) { d.classList.remove("cited"); });
    if (dt) dt.classList.add("cited");
  });
})();

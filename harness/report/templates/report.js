// Sample browser. Data comes from the JSON block and is only ever written through textContent.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("samples-data").textContent);
  var LIMIT = 100;
  var el = function (id) { return document.getElementById(id); };
  var make = function (tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    if (cls) { node.className = cls; }
    return node;
  };
  var uniq = function (values) { return values.filter(function (v, i, a) { return a.indexOf(v) === i; }); };
  var fill = function (select, values) {
    while (select.options.length > 1) { select.remove(1); }
    values.forEach(function (v) { var o = make("option", v); o.value = v; select.appendChild(o); });
  };
  var candidates = data.runs.map(function (_, i) { return i; }).filter(function (i) { return i !== data.baseline; });
  var candSelect = el("f-cand");
  if (candidates.length) {
    candidates.forEach(function (i) { var o = make("option", "flips of " + data.runs[i]); o.value = String(i); candSelect.appendChild(o); });
  }
  candSelect.hidden = candidates.length < 2;
  fill(el("f-suite"), uniq(data.samples.map(function (s) { return s.suite; })));
  var refreshTasks = function () {
    var suite = el("f-suite").value;
    fill(el("f-task"), uniq(data.samples.filter(function (s) { return !suite || s.suite === suite; })
      .map(function (s) { return s.task; })));
  };
  refreshTasks();

  var head = el("sample-head");
  ["sample", "prompt", "target"].concat(data.runs).concat(["status"]).forEach(function (h) { head.appendChild(make("th", h)); });

  var text = function (v) { return v === null || v === undefined ? "" : String(v); };
  var matches = function (s, cand, q) {
    if (el("f-suite").value && s.suite !== el("f-suite").value) { return false; }
    if (el("f-task").value && s.task !== el("f-task").value) { return false; }
    var flip = cand === null ? "" : s.flips[cand];
    var want = el("f-flip").value;
    if (want === "any" && !flip) { return false; }
    if ((want === "up" || want === "down") && flip !== want) { return false; }
    if (want === "same" && flip) { return false; }
    if (!q) { return true; }
    var hay = [s.id, s.prompt, s.target].concat(s.responses).map(text).join("\n").toLowerCase();
    return hay.indexOf(q) !== -1;
  };
  var render = function () {
    var cand = candidates.length ? Number(candSelect.value || candidates[0]) : null;
    var q = el("f-search").value.trim().toLowerCase();
    var body = el("sample-body");
    while (body.firstChild) { body.removeChild(body.firstChild); }
    var shown = 0, total = 0;
    data.samples.forEach(function (s) {
      if (!matches(s, cand, q)) { return; }
      total += 1;
      if (shown >= LIMIT) { return; }
      shown += 1;
      var tr = make("tr");
      tr.setAttribute("data-flip", cand === null ? "" : s.flips[cand]);
      tr.appendChild(make("td", s.suite + "/" + s.task + " · " + s.id + (s.perturbation ? " [" + s.perturbation + "]" : "")));
      tr.appendChild(make("td", s.prompt, "text"));
      tr.appendChild(make("td", s.target, "text"));
      s.responses.forEach(function (r, i) {
        var td = make("td", r, "text");
        if (s.scores[i] !== null && s.scores[i] !== undefined) { td.appendChild(make("div", s.metric + " = " + s.scores[i], "score")); }
        tr.appendChild(td);
      });
      var flip = cand === null ? "" : s.flips[cand];
      var status = make("td");
      if (flip) { status.appendChild(make("span", flip === "up" ? "wrong→right" : "right→wrong", "badge " + flip)); }
      tr.appendChild(status);
      body.appendChild(tr);
    });
    el("sample-count").textContent = total > shown ? shown + " of " + total + " matching samples shown" : total + " matching samples";
  };
  el("f-suite").addEventListener("change", function () { refreshTasks(); render(); });
  ["f-task", "f-cand", "f-flip"].forEach(function (id) { el(id).addEventListener("change", render); });
  el("f-search").addEventListener("input", render);
  render();
}());

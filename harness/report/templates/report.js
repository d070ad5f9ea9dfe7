// Sample browser. Data comes from the JSON block and is only ever written through textContent.
// Only one page of matching samples is in the DOM at a time; long texts are folded until asked for.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("samples-data").textContent);
  var PAGE = 25;  // rows per page
  var FOLD = 280;  // characters shown of a folded prompt
  var FOLD_LINES = 6;  // lines shown of a folded prompt (other texts: six lines, in the CSS)
  var page = 0;
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

  // Fixed layout: the sample and target columns are narrow, the prompt gets a third, responses share the rest.
  var cols = el("sample-cols");
  ["c-sample", "c-prompt", "c-target"].concat(data.runs.map(function () { return "c-run"; })).forEach(function (c) {
    cols.appendChild(make("col", null, c));
  });
  var head = el("sample-head");
  ["sample", "prompt", "target"].concat(data.runs).forEach(function (h) {
    var th = make("th", h);
    th.title = h;
    head.appendChild(th);
  });

  var text = function (v) { return v === null || v === undefined ? "" : String(v); };
  var label = function (f, open) { return open ? "fold" : "show all (" + f.full.length + " chars)"; };
  // A prompt folds to its end (the question after any few-shot examples), cut at a word boundary.
  var promptTail = function (value) {
    var lines = value.split("\n");
    if (value.length <= FOLD && lines.length <= FOLD_LINES) { return null; }
    var tail = lines.slice(-FOLD_LINES).join("\n");
    if (tail.length > FOLD) {
      tail = tail.slice(tail.length - FOLD);
      var cut = tail.search(/\s/);
      if (cut !== -1 && cut < 30) { tail = tail.slice(cut + 1); }
    }
    return "… " + tail;
  };
  var addButton = function (td, f, row) {
    f.button = make("button", label(f, false), "more");
    f.button.type = "button";
    f.button.addEventListener("click", function () { toggleRow(row); });
    td.insertBefore(f.button, f.div.nextSibling);
    row.folds.push(f);
  };
  // Other texts fold to their first lines with CSS; whether one overflows is measured once it is laid out.
  var textCell = function (value, isPrompt, row) {
    var td = make("td");
    var full = text(value);
    var short = isPrompt ? promptTail(full) : null;
    var div = make("div", short === null ? full : short, isPrompt ? "text" : "text clamp");
    td.appendChild(div);
    var f = { div: div, full: full, short: short, td: td };
    if (short !== null) { addButton(td, f, row); } else if (!isPrompt) { row.pending.push(f); }
    return td;
  };
  var measure = function (row) {
    row.pending.forEach(function (f) {
      if (f.div.scrollHeight > f.div.clientHeight + 1) { addButton(f.td, f, row); }
    });
    row.pending = [];
  };
  var toggleRow = function (row) {
    row.open = !row.open;
    row.folds.forEach(function (f) {
      if (f.short !== null) { f.div.textContent = row.open ? f.full : f.short; } else { f.div.classList.toggle("clamp", !row.open); }
      f.button.textContent = label(f, row.open);
    });
    row.tr.classList.toggle("open", row.open);
  };

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
  // Scores as the tables print them: three decimals, no float noise, no negative zero.
  var num = function (v) { return Number.isInteger(v) ? String(v) : v.toFixed(3); };
  var signed = function (v) { var t = Math.abs(v).toFixed(3); return Number(t) === 0 ? t : (v > 0 ? "+" : "-") + t; };
  // Multiple choice: each choice's loglikelihood under this run, its pick (▶) and the gold answer (✓).
  var choiceTable = function (s, i) {
    var box = make("div", null, "choices");
    s.choices.forEach(function (c, k) {
      var line = make("div", null, "choice" + (k === s.picks[i] ? " picked" : "") + (k === s.gold ? " gold" : ""));
      line.appendChild(make("span", (k === s.picks[i] ? "▶" : "") + (k === s.gold ? "✓" : ""), "mark"));
      line.appendChild(make("span", c, "ctext"));
      line.appendChild(make("span", s.logliks[i][k] === undefined ? "" : s.logliks[i][k].toFixed(3), "ll"));
      box.appendChild(line);
    });
    box.title = "loglikelihood of each choice; ▶ this run's pick, ✓ the gold answer";
    return box;
  };
  var renderRow = function (s, cand) {
    var tr = make("tr");
    var row = { tr: tr, folds: [], pending: [], open: false };
    var flip = cand === null ? "" : s.flips[cand];
    tr.setAttribute("data-flip", flip);
    var where = make("td");
    where.appendChild(make("div", s.suite + " / " + s.task, "where"));
    where.appendChild(make("div", s.id, "sid"));
    if (s.perturbation) { where.appendChild(make("div", "perturbed: " + s.perturbation, "where")); }
    if (flip) { where.appendChild(make("span", flip === "up" ? "wrong→right" : "right→wrong", "badge " + flip)); }
    tr.appendChild(where);
    tr.appendChild(textCell(s.prompt, true, row));
    tr.appendChild(textCell(s.target, false, row));
    s.responses.forEach(function (r, i) {
      var td = textCell(r, false, row);
      if (s.scores[i] !== null && s.scores[i] !== undefined) { td.appendChild(make("div", s.metric + " = " + num(s.scores[i]), "score")); }
      if (s.choices && s.logliks[i]) { td.appendChild(choiceTable(s, i)); }
      var change = s.changes ? s.changes[i] : null;
      if (change !== null && change !== undefined) { td.appendChild(make("div", "change " + signed(change), "change " + (change > 0 ? "up" : "down"))); }
      tr.appendChild(td);
    });
    return row;
  };
  var render = function () {
    var cand = candidates.length ? Number(candSelect.value || candidates[0]) : null;
    var q = el("f-search").value.trim().toLowerCase();
    var hits = data.samples.filter(function (s) { return matches(s, cand, q); });
    var pages = Math.max(1, Math.ceil(hits.length / PAGE));
    page = Math.min(Math.max(page, 0), pages - 1);
    var first = page * PAGE;
    var shown = hits.slice(first, first + PAGE);
    var body = el("sample-body");
    while (body.firstChild) { body.removeChild(body.firstChild); }
    var rows = shown.map(function (s) { var row = renderRow(s, cand); body.appendChild(row.tr); return row; });
    rows.forEach(measure);
    el("sample-count").textContent = hits.length > PAGE
      ? (first + 1) + "–" + (first + shown.length) + " of " + hits.length + " matching samples"
      : hits.length + " matching samples";
    el("page-info").textContent = "page " + (page + 1) + " of " + pages;
    el("p-prev").disabled = page === 0;
    el("p-next").disabled = page >= pages - 1;
  };
  var restart = function () { page = 0; render(); };
  el("f-suite").addEventListener("change", function () { refreshTasks(); restart(); });
  ["f-task", "f-cand", "f-flip"].forEach(function (id) { el(id).addEventListener("change", restart); });
  el("f-search").addEventListener("input", restart);
  el("p-prev").addEventListener("click", function () { page -= 1; render(); });
  el("p-next").addEventListener("click", function () { page += 1; render(); });
  render();
}());

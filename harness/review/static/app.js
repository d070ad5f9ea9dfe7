// tunegate review: plain JavaScript, no build step. Model outputs are untrusted: they only ever reach
// the page through textContent, never innerHTML.
"use strict";

(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const NAME_KEY = "tunegate-review-name";
  const $ = (id) => document.getElementById(id);
  const state = { reviewer: null, item: null, choice: null, ratings: {}, axis: 0, busy: false };

  async function api(path, body) {
    const res = await fetch(path, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body),
    });
    let data = {};
    try { data = await res.json(); } catch (e) { data = {}; }
    return { status: res.status, data: data };
  }

  function show(section) {
    for (const id of ["login", "review", "done"]) $(id).hidden = id !== section;
  }

  function setStatus(text, isError) {
    $("status").textContent = text;
    $("status").classList.toggle("error", !!isError);
  }

  function showProgress(p) {
    if (!p) return;
    $("progress-text").textContent =
      "You: " + p.reviewer_done + " judged · Queue: " + p.done + " of " + p.total + " judgments";
    $("progress-bar").style.width = (p.total ? Math.min(100, (100 * p.done) / p.total) : 0) + "%";
  }

  function login(name) {
    state.reviewer = name;
    localStorage.setItem(NAME_KEY, name);
    $("who-name").textContent = name;
    $("who").hidden = false;
    loadNext();
  }

  async function loadNext() {
    state.busy = true;
    setStatus("Loading…");
    let r;
    try { r = await api("/api/next", { reviewer: state.reviewer }); }
    catch (e) { state.busy = false; setStatus("Server unreachable; your judgments so far are saved.", true); return; }
    state.busy = false;
    if (r.status !== 200) { setStatus(r.data.error || ("Error " + r.status), true); return; }
    showProgress(r.data.progress);
    if (r.data.done) {
      $("done-text").textContent = "Thank you, " + state.reviewer + ": nothing is left for you in this queue (" +
        r.data.progress.reviewer_done + " judged by you).";
      show("done");
      return;
    }
    render(r.data.item);
  }

  function render(item) {
    state.item = item; state.choice = null; state.ratings = {}; state.axis = 0;
    $("where").textContent = item.where;
    $("prompt").textContent = item.prompt;
    $("reference-box").hidden = !item.reference;
    $("reference").textContent = item.reference || "";
    $("comment").value = "";
    const pairwise = item.mode === "pairwise";
    $("pair").hidden = !pairwise; $("choices").hidden = !pairwise;
    $("single").hidden = pairwise; $("ratings").hidden = pairwise;
    if (pairwise) {
      $("resp-A").textContent = item.responses[0];
      $("resp-B").textContent = item.responses[1];
      $("keys-help").textContent = "Keys: A / B / T / X choose, Enter submits";
    } else {
      $("resp-single").textContent = item.responses[0];
      buildRatings(item.axes);
      $("keys-help").textContent = "Keys: 1–5 rate the highlighted axis, ↑ ↓ move, Enter submits";
    }
    paint();
    setStatus("");
    show("review");
    window.scrollTo(0, 0);
  }

  function buildRatings(axes) {
    const box = $("ratings");
    box.replaceChildren();
    axes.forEach((axis, i) => {
      const row = document.createElement("div");
      row.className = "rating-row"; row.dataset.axis = axis;
      const name = document.createElement("span");
      name.className = "axis"; name.textContent = axis;
      row.appendChild(name);
      for (let v = 1; v <= 5; v++) {
        const b = document.createElement("button");
        b.type = "button"; b.className = "score"; b.textContent = String(v); b.dataset.value = String(v);
        b.addEventListener("click", () => { state.axis = i; rate(v); });
        row.appendChild(b);
      }
      box.appendChild(row);
    });
  }

  function rate(v) {
    const axes = state.item.axes;
    state.ratings[axes[state.axis]] = v;
    if (state.axis < axes.length - 1) state.axis += 1;
    paint();
  }

  function complete() {
    if (!state.item) return false;
    if (state.item.mode === "pairwise") return state.choice !== null;
    return state.item.axes.every((a) => state.ratings[a]);
  }

  function paint() {
    document.querySelectorAll(".choice").forEach((b) => {
      const on = b.dataset.choice === state.choice;
      b.classList.toggle("selected", on); b.setAttribute("aria-pressed", on ? "true" : "false");
    });
    $("card-A").classList.toggle("chosen", state.choice === "A" || state.choice === "tie");
    $("card-B").classList.toggle("chosen", state.choice === "B" || state.choice === "tie");
    document.querySelectorAll(".rating-row").forEach((row, i) => {
      row.classList.toggle("current", state.item && state.item.mode === "rating" && i === state.axis);
      row.querySelectorAll(".score").forEach((b) => {
        b.classList.toggle("selected", state.ratings[row.dataset.axis] === Number(b.dataset.value));
      });
    });
    $("submit").disabled = state.busy || !complete();
  }

  async function submit() {
    if (state.busy || !complete()) return;
    const body = { item_id: state.item.item_id, reviewer: state.reviewer };
    if (state.item.mode === "pairwise") body.choice = state.choice; else body.ratings = state.ratings;
    const comment = $("comment").value.trim();
    if (comment) body.comment = comment;
    state.busy = true; paint(); setStatus("Saving…");
    let r;
    try { r = await api("/api/judgments", body); }
    catch (e) { state.busy = false; paint(); setStatus("Not saved: server unreachable. Try again.", true); return; }
    state.busy = false;
    // Move on only once the server has committed the judgment (201), or already holds it (409).
    if (r.status === 201 || r.status === 409) { showProgress(r.data.progress); loadNext(); return; }
    paint();
    setStatus("Not saved: " + (r.data.error || ("error " + r.status)), true);
  }

  function onKey(e) {
    if ($("review").hidden) return;
    const typing = e.target instanceof HTMLTextAreaElement || e.target instanceof HTMLInputElement;
    if (typing) {
      if (e.key === "Escape") e.target.blur();
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); submit(); }
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const k = e.key.toLowerCase();
    if (k === "enter") { e.preventDefault(); submit(); return; }
    if (k === "c") { e.preventDefault(); $("comment").focus(); return; }
    if (!state.item) return;
    if (state.item.mode === "pairwise") {
      const map = { a: "A", "1": "A", arrowleft: "A", b: "B", "2": "B", arrowright: "B", t: "tie", "3": "tie",
                    x: "both_bad", "4": "both_bad" };
      if (map[k]) { e.preventDefault(); state.choice = map[k]; paint(); }
    } else if (/^[1-5]$/.test(k)) {
      e.preventDefault(); rate(Number(k));
    } else if (k === "arrowdown" || k === "arrowup") {
      e.preventDefault();
      const last = state.item.axes.length - 1;
      state.axis = Math.max(0, Math.min(last, state.axis + (k === "arrowdown" ? 1 : -1)));
      paint();
    }
  }

  function init() {
    document.querySelectorAll(".choice").forEach((b) => b.addEventListener("click", () => {
      state.choice = b.dataset.choice; paint(); b.blur();
    }));
    $("judge-form").addEventListener("submit", (e) => { e.preventDefault(); submit(); });
    $("login-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const name = $("name").value.trim().replace(/\s+/g, " ");
      if (name) login(name);
    });
    $("switch").addEventListener("click", () => {
      localStorage.removeItem(NAME_KEY); state.reviewer = null; state.item = null;
      $("who").hidden = true; $("name").value = ""; show("login"); $("name").focus();
    });
    document.addEventListener("keydown", onKey);
    const saved = localStorage.getItem(NAME_KEY);
    if (saved) login(saved); else { show("login"); $("name").focus(); }
  }

  init();
})();

// The trident dashboard page: one EventSource (/api/events) feeds every view.
// The server sends a full update when the page connects and one update per tick after
// that; task-stream events and errors carry cursors so nothing is shown twice.
"use strict";

const STREAM_WINDOW = 20; // seconds of task stream shown
const MAX_EVENTS = 20000; // events kept in the page
const MAX_ERRORS = 100;
const STALE_HEARTBEAT = 5; // seconds

const page = {
  view: "status",
  clockOffset: 0, // server time - browser time, seconds
  seenStream: 0,
  seenErrors: 0,
  events: [], // {key, prefix, worker, start, stop, ok, lane}
  errors: [],
  workers: [],
  laneEnds: new Map(), // worker -> [end time per lane]
  hover: null,
};

// --- helpers ------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name === "class") node.className = value;
    else if (name === "style") Object.assign(node.style, value);
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function fmtBytes(n) {
  if (!n) return "0 B";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n < 10 && i ? n.toFixed(1) : Math.round(n)} ${units[i]}`;
}

function fmtSeconds(s) {
  if (s < 0.001) return `${Math.round(s * 1e6)} µs`;
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  return `${s.toFixed(s < 10 ? 2 : 1)} s`;
}

function fmtCount(n) {
  return Number(n).toLocaleString("en-US");
}

const hues = new Map();
function colour(prefix, alpha = 1) {
  let hue = hues.get(prefix);
  if (hue === undefined) {
    let h = 2166136261;
    for (let i = 0; i < prefix.length; i++) { h ^= prefix.charCodeAt(i); h = Math.imul(h, 16777619); }
    hue = ((h >>> 0) % 360);
    hues.set(prefix, hue);
  }
  return `hsla(${hue}, 62%, 52%, ${alpha})`;
}

function serverNow() {
  return Date.now() / 1000 + page.clockOffset;
}

function setText(id, text) {
  const node = document.getElementById(id);
  if (node.textContent !== text) node.textContent = text;
}

// --- views --------------------------------------------------------------------------

function showView(view) {
  page.view = view;
  for (const section of document.querySelectorAll(".view")) {
    section.hidden = section.id !== `view-${view}`;
  }
  for (const link of document.querySelectorAll("nav a")) {
    link.classList.toggle("active", link.dataset.view === view);
  }
}

function viewFromPath() {
  const name = location.pathname.replace(/^\//, "");
  return ["status", "workers", "errors"].includes(name) ? name : "status";
}

for (const link of document.querySelectorAll("nav a")) {
  link.addEventListener("click", (event) => {
    event.preventDefault();
    history.pushState(null, "", link.getAttribute("href"));
    showView(link.dataset.view);
  });
}
window.addEventListener("popstate", () => showView(viewFromPath()));

// --- updates ------------------------------------------------------------------------

function apply(update) {
  const summary = update.summary;
  page.clockOffset = summary.now - Date.now() / 1000;
  addEvents(update.stream, update.stream_end);
  addErrors(update.errors, update.errors_end);
  page.workers = update.workers;
  renderTotals(summary);
  renderWorkers(update.workers);
  renderMemory(update.workers);
  renderProgress(update.progress);
}

function addEvents(rows, end) {
  const first = end - rows.length + 1;
  rows.forEach((row, i) => {
    if (first + i <= page.seenStream) return;
    const [key, prefix, worker, start, stop, status] = row;
    page.events.push({ key, prefix, worker, start, stop, ok: status === "ok", lane: laneFor(worker, start, stop) });
  });
  page.seenStream = Math.max(page.seenStream, end);
  const horizon = serverNow() - STREAM_WINDOW;
  let drop = 0;
  while (drop < page.events.length && (page.events[drop].stop < horizon || page.events.length - drop > MAX_EVENTS)) drop++;
  if (drop) page.events.splice(0, drop);
}

function laneFor(worker, start, stop) {
  let ends = page.laneEnds.get(worker);
  if (!ends) { ends = []; page.laneEnds.set(worker, ends); }
  let lane = ends.findIndex((end) => end <= start + 1e-4);
  if (lane < 0) {
    const info = page.workers.find((w) => w.address === worker);
    const lanes = info ? info.nthreads : 1;
    if (ends.length < lanes) lane = ends.length;
    else lane = ends.indexOf(Math.min(...ends));
  }
  ends[lane] = stop;
  return lane;
}

function addErrors(rows, end) {
  const first = end - rows.length + 1;
  rows.forEach((row, i) => {
    if (first + i > page.seenErrors) page.errors.push(row);
  });
  if (end > page.seenErrors) {
    page.seenErrors = end;
    page.errors.splice(0, Math.max(0, page.errors.length - MAX_ERRORS));
    renderErrors();
  }
}

function renderTotals(s) {
  const tasks = s.tasks || {};
  setText("stat-workers", fmtCount(s.workers));
  setText("stat-threads", fmtCount(s.threads));
  setText("stat-processing", fmtCount(tasks.processing || 0));
  setText("stat-waiting", fmtCount((tasks.waiting || 0) + (tasks.queued || 0)));
  setText("stat-no-worker", fmtCount(tasks["no-worker"] || 0));
  setText("stat-memory-tasks", fmtCount(tasks.memory || 0));
  setText("stat-erred", fmtCount(tasks.erred || 0));
  setText("stat-finished", fmtCount(s.finished_total));
  setText("stat-rate", fmtCount(Math.round(s.transitions_per_second)));
  setText("stat-stored", fmtBytes(s.stored));
  setText("stat-lag", fmtSeconds(s.event_loop_lag));
}

function renderWorkers(workers) {
  const body = document.querySelector("#workers-table tbody");
  const rows = workers.map((w) => {
    const age = w.heartbeat_age;
    const beat = el("td", { class: "num" + (age !== null && age > STALE_HEARTBEAT ? " stale" : "") },
      age === null ? "–" : `${age.toFixed(1)} s ago`);
    return el("tr", { "data-worker": w.address },
      el("td", {}, w.name), el("td", {}, w.address),
      el("td", { class: "num" }, w.nthreads),
      el("td", { class: "num" }, `${Math.round(w.cpu)} %`),
      el("td", { class: "num" }, fmtBytes(w.memory)),
      el("td", { class: "num" }, w.memory_limit ? fmtBytes(w.memory_limit) : "none"),
      el("td", { class: "num" }, fmtBytes(w.stored)),
      el("td", { class: "num" }, fmtBytes(w.spilled)),
      el("td", { class: "num" }, fmtCount(w.processing)),
      el("td", { class: "num" }, fmtCount(w.ready)),
      el("td", { class: "num" }, fmtCount(w.keys)),
      beat);
  });
  body.replaceChildren(...rows);
}

function renderMemory(workers) {
  const box = document.getElementById("memory");
  if (!workers.length) { box.replaceChildren(el("p", { class: "empty" }, "No workers.")); return; }
  const most = Math.max(...workers.map((w) => w.memory_limit || w.memory || 1));
  box.replaceChildren(...workers.map((w) => {
    const scale = w.memory_limit || most;
    const used = Math.min(100, (100 * w.memory) / scale);
    const stored = Math.min(100, (100 * w.stored) / scale);
    const bar = el("div", { class: "bar" + (w.memory_limit && used > 80 ? " high" : "") },
      el("span", { class: "used", style: { width: `${used}%` } }),
      el("span", { class: "stored", style: { width: `${stored}%` } }));
    const limit = w.memory_limit ? ` / ${fmtBytes(w.memory_limit)}` : "";
    return el("div", { class: "row" },
      el("span", { class: "name", title: w.address }, w.name),
      bar,
      el("span", { class: "counts" }, `${fmtBytes(w.memory)}${limit} · ${fmtBytes(w.stored)} data`));
  }));
}

function renderProgress(rows) {
  const box = document.getElementById("progress");
  const shown = rows.filter((r) => r.done + r.running + r.waiting + r.erred > 0);
  if (!shown.length) { box.replaceChildren(el("p", { class: "empty" }, "No tasks yet.")); return; }
  box.replaceChildren(...shown.map((r) => {
    const total = r.done + r.running + r.waiting + r.erred;
    const pct = (n) => `${(100 * n) / total}%`;
    const bar = el("div", { class: "bar" },
      el("span", { style: { width: pct(r.done), background: colour(r.prefix) } }),
      el("span", { class: "running", style: { width: pct(r.running), background: colour(r.prefix) } }),
      el("span", { class: "waiting", style: { width: pct(r.waiting) } }),
      el("span", { class: "erred", style: { width: pct(r.erred) } }));
    const parts = [`${fmtCount(r.done)} done`];
    if (r.running) parts.push(`${fmtCount(r.running)} running`);
    if (r.waiting) parts.push(`${fmtCount(r.waiting)} waiting`);
    if (r.erred) parts.push(`${fmtCount(r.erred)} erred`);
    return el("div", { class: "row", "data-prefix": r.prefix },
      el("span", { class: "name", title: r.prefix }, el("span", { class: "chip", style: { background: colour(r.prefix) } }), r.prefix),
      bar,
      el("span", { class: "counts" }, parts.join(" · ")));
  }));
}

function renderErrors() {
  const box = document.getElementById("errors");
  const badge = document.getElementById("error-badge");
  badge.hidden = page.errors.length === 0;
  badge.textContent = String(page.errors.length);
  if (!page.errors.length) { box.replaceChildren(el("p", { class: "empty" }, "No errors.")); return; }
  box.replaceChildren(...page.errors.slice().reverse().map((e) =>
    el("div", { class: "error" },
      el("div", { class: "meta" },
        el("span", { class: "key" }, e.key), ` on ${e.worker || "the scheduler"} at ${new Date(e.time * 1000).toLocaleTimeString()}`),
      el("pre", {}, e.text))));
}

// --- task stream ----------------------------------------------------------------------

const canvas = document.getElementById("task-stream");
const tip = document.getElementById("stream-tip");
const GUTTER = 120;

function streamLayout() {
  const lanes = [];
  for (const w of page.workers) {
    for (let i = 0; i < Math.max(1, w.nthreads); i++) lanes.push({ worker: w.address, name: w.name, lane: i });
  }
  return lanes;
}

function drawStream() {
  requestAnimationFrame(drawStream);
  if (page.view !== "status") return;
  const lanes = streamLayout();
  const laneHeight = Math.max(8, Math.min(26, Math.floor(220 / Math.max(1, lanes.length))));
  const cssWidth = canvas.clientWidth;
  const cssHeight = Math.max(60, lanes.length * laneHeight + 22);
  const dpr = window.devicePixelRatio || 1;
  if (canvas.width !== Math.round(cssWidth * dpr) || canvas.height !== Math.round(cssHeight * dpr)) {
    canvas.width = Math.round(cssWidth * dpr);
    canvas.height = Math.round(cssHeight * dpr);
    canvas.style.height = `${cssHeight}px`;
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, cssWidth, cssHeight);
  const now = serverNow();
  const left = now - STREAM_WINDOW;
  const plotWidth = cssWidth - GUTTER - 8;
  const x = (t) => GUTTER + ((t - left) / STREAM_WINDOW) * plotWidth;
  const laneIndex = new Map(lanes.map((l, i) => [`${l.worker}#${l.lane}`, i]));

  ctx.font = "11px system-ui, sans-serif";
  ctx.textBaseline = "middle";
  let lastWorker = null;
  lanes.forEach((l, i) => {
    const y = i * laneHeight;
    if (l.worker !== lastWorker) {
      ctx.fillStyle = "#6b7487";
      ctx.fillText(l.name.length > 18 ? `${l.name.slice(0, 17)}…` : l.name, 6, y + laneHeight / 2);
      ctx.strokeStyle = "#e2e6ee";
      ctx.beginPath(); ctx.moveTo(GUTTER, y + 0.5); ctx.lineTo(cssWidth, y + 0.5); ctx.stroke();
      lastWorker = l.worker;
    }
  });
  for (let s = Math.ceil(left); s <= now; s += 5) {
    const sx = x(s);
    ctx.fillStyle = "#9aa3b5";
    ctx.fillText(`-${Math.round(now - s)} s`, sx - 10, cssHeight - 9);
  }
  for (const e of page.events) {
    if (e.stop < left) continue;
    const i = laneIndex.get(`${e.worker}#${e.lane}`);
    if (i === undefined) continue;
    const x0 = x(Math.max(e.start, left));
    const width = Math.max(1, x(e.stop) - x0);
    ctx.fillStyle = e.ok ? colour(e.prefix) : "#dc2626";
    ctx.fillRect(x0, i * laneHeight + 2, width, laneHeight - 4);
  }
  renderLegend();
}

let legendKey = "";
function renderLegend() {
  const counts = new Map();
  for (const e of page.events) counts.set(e.prefix, (counts.get(e.prefix) || 0) + 1);
  const top = [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, 12);
  const key = top.map(([p]) => p).join("\u0000");
  if (key === legendKey) return;
  legendKey = key;
  document.getElementById("stream-legend").replaceChildren(...top.map(([prefix]) =>
    el("span", {}, el("span", { class: "chip", style: { background: colour(prefix) } }), prefix)));
}

canvas.addEventListener("mousemove", (event) => {
  const rect = canvas.getBoundingClientRect();
  const mx = event.clientX - rect.left;
  const my = event.clientY - rect.top;
  const lanes = streamLayout();
  const laneHeight = Math.max(8, Math.min(26, Math.floor(220 / Math.max(1, lanes.length))));
  const lane = lanes[Math.floor(my / laneHeight)];
  const now = serverNow();
  const t = now - STREAM_WINDOW + ((mx - GUTTER) / (rect.width - GUTTER - 8)) * STREAM_WINDOW;
  const hit = lane && page.events.find((e) => e.worker === lane.worker && e.lane === lane.lane && e.start <= t + 0.02 && e.stop >= t - 0.02);
  if (!hit) { tip.hidden = true; return; }
  tip.hidden = false;
  tip.textContent = `${hit.key} · ${fmtSeconds(hit.stop - hit.start)} on ${lane.name}${hit.ok ? "" : " · failed"}`;
  tip.style.left = `${Math.min(mx + 12, rect.width - 260)}px`;
  tip.style.top = `${my + 12}px`;
});
canvas.addEventListener("mouseleave", () => { tip.hidden = true; });

// --- connection -----------------------------------------------------------------------

function connect() {
  const status = document.getElementById("connection");
  const source = new EventSource("/api/events");
  source.onopen = () => { status.textContent = "live"; status.classList.add("live"); };
  source.onerror = () => { status.textContent = "reconnecting…"; status.classList.remove("live"); };
  source.onmessage = (message) => {
    try {
      apply(JSON.parse(message.data));
    } catch (error) {
      console.error("bad dashboard update", error);
    }
  };
}

showView(viewFromPath());
connect();
requestAnimationFrame(drawStream);

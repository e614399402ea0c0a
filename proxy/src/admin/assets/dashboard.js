// Ficus migration dashboard. Plain JS, no dependencies, served from the binary.
// Every value from the API is inserted as text (textContent, text nodes, setAttribute):
// nothing is parsed as HTML, and every route name in a URL is percent-encoded.
"use strict";

const POLL_MS = 2000;
let selected = null;

/// An element with `class`, `text` (textContent), `data-*` and `title` only: no property
/// that could parse HTML can be set through here.
function el(tag, props, ...children) {
  const e = document.createElement(tag);
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("data-") || k === "title") e.setAttribute(k, v);
      else throw new Error(`el: unsupported property ${k}`);
    }
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return e;
}

function svgEl(tag, attrs) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

/// An admin API URL about one route: the name percent-encoded in the path, and every
/// query value encoded by URLSearchParams.
function routeUrl(base, name, suffix, query) {
  const path = suffix === undefined ? `${base}${encodeURIComponent(name)}` : `${base}${encodeURIComponent(name)}/${suffix}`;
  const q = new URLSearchParams(query || {}).toString();
  return q ? `${path}?${q}` : path;
}

async function getJson(path) {
  const r = await fetch(path, { cache: "no-store" });
  if (!r.ok) throw new Error(path + ": " + r.status);
  return r.json();
}

const pct = (v) => (v === null || v === undefined ? "–" : (v * 100).toFixed(v >= 0.9995 || v === 0 ? 0 : 2) + "%");
const num = (v, d = 1) => (v === null || v === undefined ? "–" : Number(v).toFixed(d));
const ms = (v) => (v === null || v === undefined ? "–" : (v < 10 ? v.toFixed(2) : v.toFixed(0)) + " ms");
const time = (t) => new Date(t * 1000).toLocaleTimeString();

/// A sparkline of `values` (nulls skipped) scaled to [0, max].
function spark(svg, values, max) {
  svg.replaceChildren();
  const pts = values.map((v, i) => [i, v]).filter(([, v]) => v !== null && v !== undefined);
  if (pts.length < 2) return svg;
  const top = max ?? Math.max(...pts.map(([, v]) => v), 1e-9);
  const w = 200, h = 40, n = values.length - 1 || 1;
  const line = pts.map(([i, v]) => `${((i / n) * w).toFixed(1)},${(h - (v / top) * (h - 2) - 1).toFixed(1)}`).join(" ");
  svg.append(svgEl("polyline", { points: line }));
  return svg;
}

function modeBadge(mode, percent) {
  const text = mode === "canary" && percent !== null && percent !== undefined ? `canary ${percent}%` : mode;
  return el("span", { class: `badge m-${mode}`, text });
}

const MODES = ["legacy", "shadow", "canary", "extracted"];

/// "hh:mm:ss – hh:mm:ss" over the samples.
function span(points) {
  return points.length ? `${time(points[0].t)} – ${time(points[points.length - 1].t)}` : "collecting…";
}

/// Routes by mode over time: one stacked column per sample, legacy at the bottom.
function modesChart(svg, points) {
  svg.replaceChildren();
  const w = 400, h = 60, n = points.length;
  if (!n) return;
  const colW = w / n;
  points.forEach((p, i) => {
    const total = MODES.reduce((a, m) => a + (p.by_mode[m] ?? 0), 0) || 1;
    const col = svgEl("g", { "data-t": String(p.t) });
    const title = svgEl("title");
    title.textContent = `${time(p.t)}: ` + MODES.map((m) => `${p.by_mode[m] ?? 0} ${m}`).join(", ");
    col.append(title);
    let y = h;
    for (const m of MODES) {
      const v = p.by_mode[m] ?? 0;
      if (!v) continue;
      const bh = (v / total) * h;
      y -= bh;
      col.append(svgEl("rect", { class: `m-${m}`, x: (i * colW).toFixed(2), y: y.toFixed(2), width: (colW + 0.5).toFixed(2), height: bh.toFixed(2) }));
    }
    svg.append(col);
  });
}

function renderProgress(d) {
  const share = d.progress.extracted_share;
  const points = d.progress.history;
  document.getElementById("share").textContent = pct(share);
  spark(document.getElementById("share-spark"), points.map((p) => p.extracted_share), 1);
  document.getElementById("share-span").textContent = span(points);
  modesChart(document.getElementById("modes-history"), points);
  document.getElementById("modes-span").textContent = span(points);
  const modes = document.getElementById("modes");
  modes.replaceChildren(
    ...MODES.map((m) =>
      el("div", { class: `mode-box m-${m}`, "data-mode": m },
        el("div", { class: "n", text: String(d.progress.by_mode[m] ?? 0) }),
        el("div", { class: "t", text: `${m} route${d.progress.by_mode[m] === 1 ? "" : "s"}` })))
  );
}

function sideCells(s) {
  const stats = s || {};
  return [
    el("td", { text: num(stats.rps) }),
    el("td", { text: pct(stats.error_rate) }),
    el("td", { text: ms(stats.p50_ms) }),
    el("td", { text: ms(stats.p99_ms) }),
  ];
}

function renderRoutes(d) {
  const body = document.querySelector("#routes tbody");
  const rows = d.routes.map((r) => {
    const recent = r.recent || {};
    // Rates need two samples; until then show totals' latency and error rates.
    const legacy = recent.legacy && recent.legacy.requests ? recent.legacy : { ...r.totals.legacy, rps: recent.legacy ? recent.legacy.rps : null };
    const extracted = recent.extracted && recent.extracted.requests ? recent.extracted : { ...r.totals.extracted, rps: recent.extracted ? recent.extracted.rps : null };
    const rate = r.totals.match_rate;
    const ap = r.autopilot;
    const autopilot = ap ? el("div", null, el("b", { text: ap.state }), el("div", { class: "next", text: ap.next })) : el("span", { class: "next", text: r.decision ? `set by ${r.decision.by}` : "off" });
    const matchCell = el("td", { class: "match", "data-route": r.name });
    if (r.shadowed || r.totals.compared > 0) {
      matchCell.append(
        el("span", { class: "rate " + (rate === null ? "" : rate >= 0.999 ? "ok" : "low"), text: pct(rate) }),
        el("span", { class: "count", text: ` of ${r.totals.compared}` }),
        spark(svgEl("svg", { class: "spark", viewBox: "0 0 200 40", preserveAspectRatio: "none" }), r.history.map((p) => p.match_rate), 1)
      );
    } else {
      matchCell.append(el("span", { class: "next", text: "not compared" }));
    }
    const tr = el("tr", { "data-route": r.name },
      el("td", null, el("b", { text: r.name }), el("div", { class: "next", text: r.path })),
      el("td", null, modeBadge(r.mode, r.percent)),
      el("td", null, autopilot),
      ...sideCells(legacy),
      ...sideCells(extracted),
      matchCell);
    if (r.name === selected) tr.classList.add("selected");
    tr.addEventListener("click", () => select(r.name));
    return tr;
  });
  body.replaceChildren(...rows);
}

function eventItem(e) {
  const change = e.from || e.to ? `${e.from ?? "∅"} → ${e.to ?? "∅"}` : e.kind;
  return el("li", null,
    el("span", { class: "at", text: time(e.at) }),
    el("span", { class: "actor", text: e.actor }),
    e.route ? el("b", { text: e.route + " " }) : null,
    el("span", { text: change + " — " + e.reason }));
}

// RFC 6901 pointer segment.
const seg = (k) => String(k).replace(/~/g, "~0").replace(/\//g, "~1");

/// Pretty JSON with the nodes at `marks` (pointer -> class) highlighted.
function jsonView(value, marks) {
  const pre = el("pre", { class: "json" });
  const walk = (v, ptr, indent, parent) => {
    const pad = "  ".repeat(indent);
    const holder = marks.has(ptr) ? el("span", { class: marks.get(ptr), "data-pointer": ptr }) : null;
    const out = holder || parent;
    if (Array.isArray(v)) {
      out.append("[");
      v.forEach((x, i) => {
        out.append("\n" + pad + "  ");
        walk(x, `${ptr}/${i}`, indent + 1, out);
        if (i < v.length - 1) out.append(",");
      });
      out.append((v.length ? "\n" + pad : "") + "]");
    } else if (v !== null && typeof v === "object") {
      const keys = Object.keys(v);
      out.append("{");
      keys.forEach((k, i) => {
        out.append("\n" + pad + "  " + JSON.stringify(k) + ": ");
        walk(v[k], `${ptr}/${seg(k)}`, indent + 1, out);
        if (i < keys.length - 1) out.append(",");
      });
      out.append((keys.length ? "\n" + pad : "") + "}");
    } else {
      out.append(JSON.stringify(v));
    }
    if (holder) parent.append(holder);
  };
  walk(value, "", 0, pre);
  return pre;
}

function bodyView(text, marks) {
  try {
    return jsonView(JSON.parse(text), marks);
  } catch (_) {
    return el("pre", { class: "json", text: text.length > 4000 ? text.slice(0, 4000) + "…" : text });
  }
}

/// Scrolls each diff column to its first highlighted field.
function revealHighlights(root) {
  for (const col of root.querySelectorAll(".diff .col")) {
    const mark = col.querySelector(".changed, .missing, .extra");
    if (mark) col.scrollTop = Math.max(0, mark.offsetTop - col.offsetTop - 60);
  }
}

/// " · body truncated (N bytes)" when the store kept only the start of the body
/// ([shadow] sample_body_bytes); the differences were found on the whole body.
function cut(side) {
  return side.body_truncated_from ? ` · body truncated (${side.body_truncated_from} bytes)` : "";
}

function renderDiff(m) {
  const diffs = (m.report.body && m.report.body.differences) || [];
  const legacyMarks = new Map(), candMarks = new Map();
  for (const d of diffs) {
    const cls = d.kind === "missing" ? "missing" : d.kind === "extra" ? "extra" : "changed";
    if (d.kind !== "extra") legacyMarks.set(d.pointer, cls);
    if (d.kind !== "missing") candMarks.set(d.pointer, cls);
  }
  const summary = diffs.slice(0, 6).map((d) => `${d.kind} ${d.pointer || "(root)"}`).join(", ") + (diffs.length > 6 ? ", …" : "");
  const status = m.report.status ? ` · status ${m.legacy.status} vs ${m.candidate.status}` : "";
  return el("div", { class: "diff" },
    el("div", { class: "head", text: `${m.request.method} ${m.request.uri} · ${new Date(m.at_unix_ms).toLocaleString()}${status} · ${summary}` }),
    el("div", { class: "cols" },
      el("div", { class: "col legacy" }, el("h4", { text: `legacy · ${m.legacy.status} · ${num(m.legacy.latency_ms, 1)} ms${cut(m.legacy)}` }), bodyView(m.legacy.body, legacyMarks)),
      el("div", { class: "col candidate" }, el("h4", { text: `extracted · ${m.candidate.status} · ${num(m.candidate.latency_ms, 1)} ms${cut(m.candidate)}` }), bodyView(m.candidate.body, candMarks))));
}

async function renderDetail() {
  if (!selected) return;
  const name = selected;
  document.getElementById("detail").hidden = false;
  document.getElementById("detail-title").textContent = name;
  const [fields, learned, diffs, events] = await Promise.all([
    getJson(routeUrl("/admin/shadow/", name, "fields", { limit: 10 })).catch(() => ({ fields: [] })),
    getJson(routeUrl("/admin/shadow/", name, "learned")).catch(() => ({ fields: [] })),
    getJson(routeUrl("/admin/shadow/", name, "diffs", { limit: 2 })).catch(() => ({ diffs: [] })),
    getJson(`/admin/events?${new URLSearchParams({ route: name, limit: 10 })}`).catch(() => ({ events: [] })),
  ]);
  const f = document.getElementById("fields");
  f.replaceChildren(...fields.fields.map((x) => el("li", null, x.pointer || "(body)", el("span", { class: "count", text: `×${x.count}` }))));
  if (!fields.fields.length) f.replaceChildren(el("li", { class: "next", text: "no differing field recorded" }));
  const l = document.getElementById("learned");
  l.replaceChildren(...(learned.fields.length ? learned.fields.map((x) => el("li", { text: `${x.pointer} ×${x.count}` })) : [el("li", { class: "next", text: "none" })]));
  const dv = document.getElementById("diffs");
  dv.replaceChildren(...(diffs.diffs.length ? diffs.diffs.map(renderDiff) : [el("p", { class: "next", text: "no mismatch stored" })]));
  revealHighlights(dv);
  const ev = document.getElementById("route-events");
  ev.replaceChildren(...(events.events.length ? events.events.map(eventItem) : [el("li", { class: "next", text: "no event" })]));
}

function select(name) {
  selected = name;
  const url = new URL(location.href);
  url.searchParams.set("route", name);
  history.replaceState(null, "", url);
  for (const tr of document.querySelectorAll("#routes tbody tr")) tr.classList.toggle("selected", tr.dataset.route === name);
  renderDetail().catch(showError);
}

function showError(e) {
  document.getElementById("updated").textContent = "error: " + e.message;
}

let ticks = 0;
async function poll() {
  try {
    const [d, ev] = await Promise.all([getJson("/admin/dashboard"), getJson("/admin/events?limit=20")]);
    document.getElementById("auth").textContent = "auth " + d.authentication;
    document.getElementById("version").textContent = "table " + d.version;
    document.getElementById("updated").textContent = "updated " + time(d.now);
    renderProgress(d);
    renderRoutes(d);
    const list = document.getElementById("events");
    list.replaceChildren(...(ev.events.length ? ev.events.map(eventItem) : [el("li", { class: "next", text: "no route change yet" })]));
    if (selected && ticks++ % 3 === 0) await renderDetail();
  } catch (e) {
    showError(e);
  }
}

const initial = new URLSearchParams(location.search).get("route");
if (initial) selected = initial;
poll().then(() => { if (selected) select(selected); });
setInterval(poll, POLL_MS);

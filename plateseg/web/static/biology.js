/* plateseg run page: the biology of a run — Z′ per plate with its evidence, and the
   dose-response of each compound (a table sortable by potency, the 4PL curve as inline SVG).
   Uses the helpers of app.js ($, el, api, fmt, enc, metricLabel); no library. */
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const svg = (tag, attrs = {}, ...children) => {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) { if (k === "text") node.textContent = v; else node.setAttribute(k, String(v)); }
  for (const c of children) node.append(c);
  return node;
};
const BAND_WORDS = { excellent: "excellent", marginal: "marginal", unusable: "unusable" };

/* Called by app.js whenever the heatmap's metric changes. */
async function drawBiology(runId, metric) {
  const q = `?metric=${enc(metric)}`;
  await Promise.all([
    api("GET", `/api/runs/${enc(runId)}/plate-qc${q}`).then(drawZPrime, (error) => showBiologyError("#zprime-card", "#zprime-plates", error)),
    api("GET", `/api/runs/${enc(runId)}/dose-response${q}`).then((dose) => drawDose(runId, dose), (error) => showBiologyError("#dose-card", "#dose-note", error)),
  ]);
}
function showBiologyError(card, slot, error) {
  $(card).hidden = false;
  $(slot).replaceChildren(el("p", { class: "error", text: error.message }));
}
window.drawBiology = drawBiology;

/* ---------- Z′ with its evidence ---------- */
function drawZPrime(qc) {
  $("#zprime-card").hidden = false;
  $("#zprime-metric").textContent = `${metricLabel(qc.metric)} (${qc.metric})`;
  const box = $("#zprime-plates"); box.replaceChildren();
  if (!qc.plates.length) {
    box.append(el("p", { class: "muted", text: "No Z′: the layout marks no positive and negative control wells with a value for this metric." }));
  }
  for (const p of qc.plates) {
    const value = p.z_prime === null ? "n/a" : p.z_prime.toFixed(2);
    const head = el("div", { class: "qc-head" },
      el("span", { class: "qc-plate", text: `Plate ${p.plate}` }),
      el("span", { class: `qc-z band-${p.band || "none"}`, "data-band": p.band || "none", text: `Z′ ${value}` }),
      el("span", { class: `qc-band band-${p.band || "none"}`, text: p.band ? BAND_WORDS[p.band] : "undefined" }));
    const row = (label, n, mean, sd) => el("tr", {}, el("th", { scope: "row", text: label }), el("td", { class: "num", text: fmt(n) }), el("td", { class: "num", text: fmt(mean) }), el("td", { class: "num", text: fmt(sd) }));
    const table = el("table", { class: "data qc-table" },
      el("thead", {}, el("tr", {}, el("th", { text: "Controls" }), el("th", { class: "num", text: "Wells" }), el("th", { class: "num", text: "Mean (μ)" }), el("th", { class: "num", text: "SD (σ)" }))),
      el("tbody", {}, row("Positive", p.n_pos, p.mean_pos, p.std_pos), row("Negative", p.n_neg, p.mean_neg, p.std_neg)));
    const extra = el("p", { class: "small muted" });
    if (p.mean_pos !== null && p.mean_neg !== null) extra.append(`|μp − μn| = ${fmt(Math.abs(p.mean_pos - p.mean_neg))}`);
    if (p.signal_to_background !== null) extra.append(` · signal/background ${fmt(p.signal_to_background)}`);
    const block = el("div", { class: "qc", "data-plate": p.plate }, head, table, extra);
    if (p.note) block.append(el("p", { class: "note", text: p.note }));
    box.append(block);
  }
  const legend = el("p", {}, el("b", { text: qc.formula }), el("br"), `over the well means of the layout's control wells; σ: ${qc.sigma}.`, el("br"), "Bands: ");
  qc.bands.forEach((b, i) => legend.append(el("span", { class: `qc-band band-${b.band}`, text: `${b.band} ${b.range}` }), i < qc.bands.length - 1 ? " " : ""));
  $("#zprime-method").replaceChildren(...legend.childNodes);
}

/* ---------- dose-response ---------- */
const DOSE_COLUMNS = [
  ["compound", "Compound", false], ["x50", "IC50 / EC50", true], ["ci", "95 % CI", false], ["hill_slope", "Hill slope", true],
  ["top", "Top", true], ["bottom", "Bottom", true], ["r_squared", "R²", true], ["n_wells", "Wells", true], ["n_concentrations", "Conc.", true], ["note", "Note", false],
];
let doseState = { key: "x50", dir: 1, selected: null, data: null };

function drawDose(runId, dose) {
  const fresh = !doseState.data || doseState.data.run_id !== dose.run_id;
  doseState.data = dose;
  if (fresh || !dose.compounds.some((c) => c.compound === doseState.selected)) doseState.selected = dose.compounds.length ? dose.compounds[0].compound : null;
  $("#dose-metric").textContent = `${metricLabel(dose.metric)} (${dose.metric})`;
  $("#dl-dose-csv").href = `/api/runs/${enc(runId)}/dose-response.csv?metric=${enc(dose.metric)}`;
  const card = $("#dose-card");
  card.hidden = false;
  if (!dose.compounds.length) {
    $("#dose-note").textContent = "The layout names no compound with concentrations: no dose-response to fit.";
    $("#dose-table thead").replaceChildren(); $("#dose-table tbody").replaceChildren(); $("#dose-chart").replaceChildren();
    $("#dl-dose-csv").hidden = true;
    return;
  }
  $("#dl-dose-csv").hidden = false;
  $("#dose-note").textContent = `Each point is a well's mean of the metric; ${dose.model}. CI: ${dose.ci}. Concentrations in the layout's unit.`;
  drawDoseTable();
  drawDoseChart();
}

function doseValue(c, key) {
  if (key === "ci") return c.ci_low;
  if (key === "note") return c.reason || (c.excluded.length ? `${c.excluded.length} left out` : "");
  return c[key];
}

function drawDoseTable() {
  const { data } = doseState;
  const head = $("#dose-table thead"), body = $("#dose-table tbody");
  const tr = el("tr");
  for (const [key, label, numeric] of DOSE_COLUMNS) {
    const active = doseState.key === key;
    const th = el("th", { class: (numeric ? "num" : "") + (active ? (doseState.dir === 1 ? " asc" : " desc") : ""), "data-key": key, tabindex: "0", scope: "col",
      "aria-sort": active ? (doseState.dir === 1 ? "ascending" : "descending") : "none", text: label });
    const sort = () => { doseState.dir = doseState.key === key ? -doseState.dir : 1; doseState.key = key; drawDoseTable(); };
    th.addEventListener("click", sort);
    th.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); } });
    tr.append(th);
  }
  head.replaceChildren(tr);
  const rows = [...data.compounds];
  const { key, dir } = doseState;
  rows.sort((a, b) => {
    const x = doseValue(a, key), y = doseValue(b, key);
    if (x === y) return a.compound < b.compound ? -1 : 1;
    if (x === null || x === undefined) return 1;  /* no number (a failed fit) sorts last either way */
    if (y === null || y === undefined) return -1;
    return (x < y ? -1 : 1) * dir;
  });
  body.replaceChildren();
  for (const c of rows) {
    const ok = c.status === "ok";
    const row = el("tr", { class: "pick" + (c.compound === doseState.selected ? " selected" : "") + (ok ? "" : " failed-fit"), "data-compound": c.compound, tabindex: "0" });
    const cells = {
      compound: c.compound,
      x50: ok ? `${c.kind} ${fmt(c.x50)}` : "–",
      ci: ok ? `${fmt(c.ci_low)} – ${fmt(c.ci_high)}` : "–",
      hill_slope: ok ? fmt(c.hill_slope, 2) : "–", top: ok ? fmt(c.top) : "–", bottom: ok ? fmt(c.bottom) : "–",
      r_squared: ok ? fmt(c.r_squared, 2) : "–", n_wells: fmt(c.n_wells), n_concentrations: fmt(c.n_concentrations),
      note: c.excluded.length ? `${c.excluded.length} left out` : "",
    };
    /* a failed fit: "–" for the IC50 and its reason across the fit's columns, never a number */
    const spanned = new Set(["ci", "hill_slope", "top", "bottom", "r_squared"]);
    for (const [k, , numeric] of DOSE_COLUMNS) {
      if (!ok && k === "ci") row.append(el("td", { class: "reason", colspan: String(spanned.size), "data-col": "reason", text: c.reason }));
      if (!ok && spanned.has(k)) continue;
      row.append(el("td", { class: numeric ? "num" : "", "data-col": k, text: cells[k] }));
    }
    const pick = () => { doseState.selected = c.compound; drawDoseTable(); drawDoseChart(); };
    row.addEventListener("click", pick);
    row.addEventListener("keydown", (e) => { if (e.key === "Enter") pick(); });
    body.append(row);
  }
}

function niceTicks(lo, hi, count = 5) {
  const step0 = (hi - lo) / count, mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= step0);
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function drawDoseChart() {
  const box = $("#dose-chart"); box.replaceChildren();
  const c = doseState.data.compounds.find((x) => x.compound === doseState.selected);
  if (!c) return;
  const W = 560, H = 340, m = { l: 58, r: 18, t: 34, b: 48 };
  const pts = [...c.points.map((p) => ({ ...p, out: false })), ...c.excluded.filter((p) => p.concentration > 0 && p.value !== null).map((p) => ({ ...p, out: true }))];
  const xs = pts.map((p) => Math.log10(p.concentration)), ys = pts.map((p) => p.value);
  for (const [x, y] of c.curve) { xs.push(x); ys.push(y); }
  if (!xs.length) { box.append(el("p", { class: "muted", text: `${c.compound}: no well with a concentration and a value.` })); return; }
  const x0 = Math.floor(Math.min(...xs) * 2) / 2 - 0.1, x1 = Math.ceil(Math.max(...xs) * 2) / 2 + 0.1;
  const yLo = Math.min(0, ...ys), yMax = Math.max(...ys), yHi = yMax > yLo ? yMax + 0.08 * (yMax - yLo) : yLo + 1;
  const yt = niceTicks(yLo, yHi), y0 = Math.min(yLo, yt[0]), y1 = Math.max(yHi, yt[yt.length - 1]);
  const X = (v) => m.l + ((v - x0) / (x1 - x0)) * (W - m.l - m.r), Y = (v) => H - m.b - ((v - y0) / (y1 - y0)) * (H - m.t - m.b);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "dose-svg", "aria-label": `${metricLabel(doseState.data.metric)} against log10 concentration for ${c.compound}` });
  root.append(svg("title", { text: `${c.compound}: dose-response` }));
  const grid = svg("g", { class: "grid" }), axes = svg("g", { class: "axes" });
  for (const v of yt) {
    grid.append(svg("line", { x1: m.l, x2: W - m.r, y1: Y(v), y2: Y(v) }));
    axes.append(svg("text", { x: m.l - 6, y: Y(v) + 4, "text-anchor": "end", text: fmt(v) }));
  }
  for (let d = Math.ceil(x0); d <= Math.floor(x1); d++) {
    grid.append(svg("line", { x1: X(d), x2: X(d), y1: m.t, y2: H - m.b }));
    axes.append(svg("text", { x: X(d), y: H - m.b + 16, "text-anchor": "middle", text: fmt(10 ** d) }));
  }
  axes.append(svg("line", { class: "axis", x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b }), svg("line", { class: "axis", x1: m.l, x2: m.l, y1: m.t, y2: H - m.b }));
  axes.append(svg("text", { class: "label", x: (m.l + W - m.r) / 2, y: H - 8, "text-anchor": "middle", text: "concentration (log scale)" }));
  axes.append(svg("text", { class: "label", x: 14, y: (m.t + H - m.b) / 2, "text-anchor": "middle", transform: `rotate(-90 14 ${(m.t + H - m.b) / 2})`, text: metricLabel(doseState.data.metric) }));
  root.append(grid, axes);
  const ok = c.status === "ok";
  if (ok) {
    const lx = Math.log10(c.x50);
    root.append(svg("rect", { class: "ci", x: X(Math.log10(c.ci_low)), y: m.t, width: Math.max(1, X(Math.log10(c.ci_high)) - X(Math.log10(c.ci_low))), height: H - m.t - m.b },
      svg("title", { text: `95 % CI ${fmt(c.ci_low)} – ${fmt(c.ci_high)}` })));
    for (const level of [c.top, c.bottom]) root.append(svg("line", { class: "plateau", x1: m.l, x2: W - m.r, y1: Y(level), y2: Y(level) }));
    root.append(svg("line", { class: "x50", x1: X(lx), x2: X(lx), y1: m.t, y2: H - m.b }));
    root.append(svg("path", { class: "curve", d: c.curve.map(([x, y], i) => `${i ? "L" : "M"}${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join("") }));
  }
  for (const p of pts) {
    const cx = X(Math.log10(p.concentration)), cy = Y(p.value);
    const tip = svg("title", { text: `${p.plate} ${p.well} · ${fmt(p.concentration)} · ${fmt(p.value)}${p.out ? ` · left out: ${p.reason}` : ""}` });
    root.append(p.out
      ? svg("path", { class: "point out", d: `M${cx - 4},${cy - 4}L${cx + 4},${cy + 4}M${cx - 4},${cy + 4}L${cx + 4},${cy - 4}`, "data-well": p.well }, tip)
      : svg("circle", { class: "point", cx, cy, r: 3.6, "data-well": p.well }, tip));
  }
  const title = ok ? `${c.compound} · ${c.kind} ${fmt(c.x50)} (95 % CI ${fmt(c.ci_low)} – ${fmt(c.ci_high)}) · Hill ${fmt(c.hill_slope, 2)}` : `${c.compound} · no fit`;
  root.append(svg("text", { class: "chart-title", x: m.l, y: 20, text: title }));
  box.append(root);
  const caption = el("figcaption", { class: "small" });
  if (!ok) caption.append(el("span", { class: "reason", text: `No IC50/EC50: ${c.reason}` }));
  else caption.append(el("span", { class: "muted", text: `Top ${fmt(c.top)} · bottom ${fmt(c.bottom)} · R² ${fmt(c.r_squared, 2)} · ${c.n_wells} wells` }));
  if (c.excluded.length) caption.append(el("span", { class: "muted", text: ` · left out: ${c.excluded.map((p) => `${p.well} (${p.reason})`).join("; ")}` }));
  box.append(caption);
}

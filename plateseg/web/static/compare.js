/* plateseg compare page: two runs of one experiment side by side — what each run was,
   a per-well scatter (A against B, identity line), a difference heatmap (B − A,
   diverging colours), every metric's mean in both runs and the wells that changed most.
   Uses the helpers of app.js ($, el, api, fmt, enc, metricInfo, metricLabel, diverging,
   isDark, colourBar, rowLetter, plateKeys); no library. */
"use strict";

const CMP_SVG = "http://www.w3.org/2000/svg";
const svgEl = (tag, attrs = {}, ...children) => {
  const node = document.createElementNS(CMP_SVG, tag);
  for (const [k, v] of Object.entries(attrs)) { if (k === "text") node.textContent = v; else node.setAttribute(k, String(v)); }
  for (const c of children) node.append(c);
  return node;
};
const signed = (v) => (v === null || v === undefined ? "–" : (v > 0 ? "+" : v < 0 ? "−" : "") + fmt(Math.abs(v)));
const when = (iso) => (iso ? iso.slice(0, 16).replace("T", " ") : "–");

async function initCompare() {
  const page = JSON.parse($("#compare-data").textContent);
  let data;
  try {
    data = await api("GET", `/api/compare?a=${enc(page.a)}&b=${enc(page.b)}&metric=${enc(page.metric)}`);
  } catch (error) {
    $("#compare-error").textContent = error.message;
    return;
  }
  const select = $("#compare-metric");
  for (const m of data.metrics) select.append(el("option", { value: m, text: metricLabel(m), title: `CellProfiler name: ${m}` }));
  select.value = data.metric;
  select.addEventListener("change", () => {
    const q = new URLSearchParams({ a: page.a, b: page.b, metric: select.value });
    window.location.assign(`/compare?${q}`);
  });
  $("#compare").hidden = false;
  drawWhat(data.a, data.b);
  drawScatter(data);
  drawDiffHeatmap(data);
  drawDeltas(data.deltas);
  drawChanged(data);
  document.body.dataset.compareReady = "true";
}

/* ---------- what each run was (the run page's "What this run was", twice) ---------- */
function whatRows(d) {
  const params = Object.entries(d.params || {}).map(([k, v]) => `${k}=${v === null ? "auto" : v}`).join(", ");
  const channels = Object.entries(d.channels || {}).map(([k, v]) => `${k}: ${v}`).join(", ");
  const map = Object.entries(d.map_settings || {}).map(([k, v]) => `${k}=${v}`).join(", ");
  return [
    ["Segmenter", d.segmenter + (d.secondary ? " + cells" : "")],
    ["Parameters", params || "defaults"],
    ["Model", d.model ? `${d.model.name} · SHA-256 ${d.model.sha256.slice(0, 12)}` : "none"],
    ["Channels", channels || "–"],
    ["File naming", namingText(d)],
    ["Map settings", map || "–"],
    ["Batch size / concurrency", `${d.batch_size ?? "–"} / ${d.max_concurrency ?? "–"}`],
    ["Engine", d.engine],
    ["Recipe hash", (d.recipe_hash || "–").slice(0, 12)],
    ["Started by", d.started_by || "–"],
    ["plateseg version", d.code_version || "–"],
    ["Images OK / failed", `${fmt(d.images_ok)} / ${fmt(d.images_failed)}`],
    ["Nuclei", fmt(d.objects)],
    ["Started / finished (UTC)", `${when(d.started_at)} / ${when(d.finished_at)}`],
  ];
}
function drawWhat(a, b) {
  const ra = whatRows(a), rb = whatRows(b);
  const body = $("#compare-what tbody"); body.replaceChildren();
  body.append(el("tr", {}, el("th", { scope: "row", text: "Run" }),
    el("td", {}, el("a", { class: "mono", href: `/runs/${enc(a.run_id)}`, text: a.run_id })),
    el("td", {}, el("a", { class: "mono", href: `/runs/${enc(b.run_id)}`, text: b.run_id }))));
  ra.forEach(([label, va], i) => {
    const vb = rb[i][1];
    // times and counts always differ; "changed" marks what the scientist chose differently
    const compared = !["Started / finished (UTC)", "Images OK / failed", "Nuclei", "Started by"].includes(label);
    body.append(el("tr", { class: compared && va !== vb ? "differs" : "", "data-row": label },
      el("th", { scope: "row", text: label }), el("td", { text: va }), el("td", { text: vb })));
  });
  const cardA = (d, cell) => { if (d.model && d.model.card) cell.append(" ", el("a", { href: d.model.card, text: "model card", target: "_blank" })); };
  const modelRow = body.querySelector('tr[data-row="Model"]');
  cardA(a, modelRow.children[1]); cardA(b, modelRow.children[2]);
}

/* ---------- scatter: A on x, B on y, the identity line ---------- */
function niceTicks(lo, hi, n = 5) {
  const span = hi - lo || Math.abs(hi) || 1;
  const raw = span / n, mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => span / s <= n) || 10 * mag;
  const ticks = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}
function drawScatter(data) {
  const points = data.wells.filter((w) => w.diff !== null);
  const label = metricLabel(data.metric);
  const box = $("#scatter"); box.replaceChildren();
  if (!points.length) { box.append(el("p", { class: "muted", text: "No well has a value in both runs." })); return; }
  const values = points.flatMap((w) => [w.a, w.b]);
  let lo = Math.min(...values), hi = Math.max(...values);
  const pad = (hi - lo || Math.abs(hi) || 1) * 0.06;
  lo -= pad; hi += pad;
  if (lo < 0 && Math.min(...values) >= 0) lo = 0;
  const W = 520, H = 440, m = { l: 64, r: 16, t: 14, b: 50 };
  const x = (v) => m.l + ((v - lo) / (hi - lo)) * (W - m.l - m.r);
  const y = (v) => H - m.b - ((v - lo) / (hi - lo)) * (H - m.t - m.b);
  const root = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, class: "scatter-svg", role: "img", "aria-label": `${label}: run B against run A, one point per well, ${points.length} wells` });
  const ticks = niceTicks(lo, hi);
  for (const t of ticks) {
    root.append(svgEl("line", { class: "grid", x1: x(t), x2: x(t), y1: m.t, y2: H - m.b }), svgEl("line", { class: "grid", x1: m.l, x2: W - m.r, y1: y(t), y2: y(t) }));
    root.append(svgEl("text", { x: x(t), y: H - m.b + 15, "text-anchor": "middle", text: fmt(t) }), svgEl("text", { x: m.l - 6, y: y(t) + 4, "text-anchor": "end", text: fmt(t) }));
  }
  root.append(svgEl("line", { class: "axis", x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b }), svgEl("line", { class: "axis", x1: m.l, x2: m.l, y1: m.t, y2: H - m.b }));
  root.append(svgEl("line", { class: "identity", x1: x(lo), y1: y(lo), x2: x(hi), y2: y(hi) }, svgEl("title", { text: "identity: B = A" })));
  root.append(svgEl("text", { class: "axis-label", x: (m.l + W - m.r) / 2, y: H - 10, "text-anchor": "middle", text: `Run A · ${label}` }));
  root.append(svgEl("text", { class: "axis-label", x: 14, y: (m.t + H - m.b) / 2, "text-anchor": "middle", transform: `rotate(-90 14 ${(m.t + H - m.b) / 2})`, text: `Run B · ${label}` }));
  const top = new Set(data.changed.slice(0, 10).map((w) => `${w.plate}:${w.well}`));
  const labelled = new Set(data.changed.slice(0, 3).map((w) => `${w.plate}:${w.well}`));
  const multi = data.plates.length > 1;
  for (const w of points) {
    const key = `${w.plate}:${w.well}`, name = multi ? `${w.plate} ${w.well}` : w.well;
    const cls = ["pt", w.control ? `ctl-${w.control}` : "", top.has(key) ? "changed" : ""].filter(Boolean).join(" ");
    root.append(svgEl("circle", { class: cls, cx: x(w.a), cy: y(w.b), r: 4, "data-well": w.well, "data-plate": w.plate },
      svgEl("title", { text: `${name}: A ${fmt(w.a)} · B ${fmt(w.b)} · B − A ${signed(w.diff)}` })));
    if (labelled.has(key)) root.append(svgEl("text", { class: "pt-label", x: x(w.a) + 6, y: y(w.b) - 6, text: name }));
  }
  box.append(root);
  const s = data.summary;
  const missing = s.n_wells - s.n_both;
  $("#scatter-note").textContent = `${s.n_both} wells with a value in both runs` + (missing ? ` (${missing} without: failed or not imaged in one run)` : "")
    + ` · Pearson r ${s.correlation === null ? "–" : s.correlation.toFixed(3)} · mean B − A ${signed(s.mean_diff)}`
    + " · dashed: B = A · red ring: the 10 wells that changed most · blue fill: negative controls, amber: positive";
}

/* ---------- difference heatmap: B − A per well, white at 0 ---------- */
function drawDiffHeatmap(data) {
  const box = $("#diff-heatmap"); box.replaceChildren();
  const limit = data.summary.diff_limit || 1;
  const wells = Object.fromEntries(data.wells.map((w) => [`${w.plate}:${w.well}`, w]));
  for (const plate of data.plates) {
    const grid = el("div", { class: "plate heat diff", "data-plate": plate.plate, role: "group", "aria-label": `Plate ${plate.plate}, B − A per well: arrow keys move between wells` });
    grid.style.setProperty("--cols", String(plate.columns));
    grid.append(el("div", { class: "corner" }));
    for (let c = 1; c <= plate.columns; c++) grid.append(el("div", { class: "colhead", text: String(c) }));
    for (let r = 0; r < plate.rows; r++) {
      grid.append(el("div", { class: "rowhead", text: rowLetter(r) }));
      for (let c = 1; c <= plate.columns; c++) {
        const name = rowLetter(r) + String(c).padStart(2, "0");
        const w = wells[`${plate.plate}:${name}`];
        if (!w) { grid.append(el("div", { class: "well none", title: `${name} · not in either run` })); continue; }
        const cell = el("div", {
          class: "well" + (w.diff === null ? " nodata" : "") + (w.control ? ` ctl-${w.control}` : ""),
          "data-well": name, "data-diff": w.diff === null ? "" : String(w.diff), role: "img",
          title: `${plate.plate} ${name} · A ${fmt(w.a)} · B ${fmt(w.b)} · B − A ${signed(w.diff)}${w.compound ? ` · ${w.compound}` : ""}${w.concentration !== null ? ` ${fmt(w.concentration)} µM` : ""}${w.control ? ` · ${w.control} control` : ""}`,
        });
        cell.setAttribute("aria-label", cell.title);
        if (w.diff !== null) {
          const colour = diverging(w.diff / limit);
          cell.style.background = colour;
        }
        grid.append(cell);
      }
    }
    if (data.plates.length > 1) box.append(el("h3", { text: `Plate ${plate.plate}` }));
    box.append(grid);
    plateKeys(grid);
  }
  const info = metricInfo(data.metric);
  $("#diff-bar").replaceWith(Object.assign(colourBar({
    label: `B − A · ${metricLabel(data.metric)}`, title: `CellProfiler name: ${data.metric} · ${info.per}`,
    low: -limit, high: limit, ramp: "diverging",
    note: `blue: lower in B, red: higher in B, white: unchanged; the ends are the largest change (±${fmt(limit)})`,
  }), { id: "diff-bar" }));
  const key = (swatch, words) => el("span", { class: "key" }, el("span", { class: `well sw ${swatch}` }), ` ${words}`);
  $("#diff-legend").replaceChildren(key("ctl-neg", "negative control"), " ", key("ctl-pos", "positive control"), " ",
    key("nodata", "no value in A or B"), " ", key("none", "not imaged"));
  $("#diff-legend").classList.add("heat-legend");
}

/* ---------- every metric: mean over wells in A and B ---------- */
function drawDeltas(deltas) {
  const body = $("#deltas tbody"); body.replaceChildren();
  for (const d of deltas) {
    const rel = d.relative === null ? "–" : `${d.relative > 0 ? "+" : d.relative < 0 ? "−" : ""}${fmt(Math.abs(100 * d.relative), 2)} %`;
    const dir = d.diff === null || d.diff === 0 ? "" : d.diff > 0 ? " up" : " down";
    body.append(el("tr", { "data-metric": d.metric },
      el("td", { text: metricLabel(d.metric), title: `CellProfiler name: ${d.metric} · wells with a value: A ${d.n_a}, B ${d.n_b}` }),
      el("td", { class: "num", text: fmt(d.mean_a) }), el("td", { class: "num", text: fmt(d.mean_b) }),
      el("td", { class: `num${dir}`, "data-col": "diff", text: signed(d.diff) }), el("td", { class: `num${dir}`, text: rel })));
  }
}

/* ---------- the wells that changed most ---------- */
function drawChanged(data) {
  $("#changed-metric").textContent = `${metricLabel(data.metric)}, largest |B − A| first`;
  const body = $("#changed tbody"); body.replaceChildren();
  if (!data.changed.length) body.append(el("tr", {}, el("td", { colspan: "6", class: "empty", text: "No well has a value in both runs." })));
  data.changed.forEach((w, i) => {
    const layout = [w.control ? `${w.control} control` : "", w.compound, w.concentration !== null ? `${fmt(w.concentration)} µM` : ""].filter(Boolean).join(" · ");
    const dir = w.diff > 0 ? " up" : w.diff < 0 ? " down" : "";
    body.append(el("tr", { "data-well": w.well, "data-plate": w.plate },
      el("td", { class: "num", text: String(i + 1) }),
      el("td", { class: "mono", text: data.plates.length > 1 ? `${w.plate} ${w.well}` : w.well }),
      el("td", { class: "small", text: layout || "–" }),
      el("td", { class: "num", text: fmt(w.a) }), el("td", { class: "num", text: fmt(w.b) }),
      el("td", { class: `num${dir}`, "data-col": "diff", text: signed(w.diff) })));
  });
}

document.addEventListener("DOMContentLoaded", () => { if ($("#compare-data")) initCompare(); });

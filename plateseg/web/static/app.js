/* plateseg web UI: small vanilla JS over the JSON API. No build step. */
"use strict";

const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
const $ = (sel, root = document) => root.querySelector(sel);
/* Ids in URL paths: plate names may hold "#", "?", "%" or spaces. */
const enc = encodeURIComponent;
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
};

async function api(method, url, body) {
  const init = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (method !== "GET") init.headers["X-CSRF-Token"] = csrf();
  if (body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
  const response = await fetch(url, init);
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  if (!response.ok) {
    const error = new Error((data && data.detail && (typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail))) || response.statusText);
    error.status = response.status; error.fields = (data && data.fields) || {};
    throw error;
  }
  return data;
}

function fmt(v, digits = 3) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  /* not "0.0000000000000000001" nor "25,784,540,333,250,234,000,…" */
  if ((v !== 0 && Math.abs(v) < 1e-4) || Math.abs(v) >= 1e9) return v.toExponential(digits - 1);
  if (Number.isInteger(v)) return v.toLocaleString("en-US");
  if (Math.abs(v) >= 1e5) return Math.round(v).toLocaleString("en-US");
  return Number(v.toPrecision(digits)).toLocaleString("en-US", { maximumSignificantDigits: digits });
}
function duration(s) {
  if (s === null || s === undefined) return "–";
  s = Math.max(0, Math.round(s));
  const m = Math.floor(s / 60), h = Math.floor(m / 60);
  return h ? `${h}h ${m % 60}m` : m ? `${m}m ${s % 60}s` : `${s}s`;
}

/* viridis, 5 stops */
const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
function viridis(t) {
  t = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
  const i = Math.min(Math.floor(t), VIRIDIS.length - 2), f = t - i;
  const c = VIRIDIS[i].map((a, k) => Math.round(a + (VIRIDIS[i + 1][k] - a) * f));
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}
/* Diverging blue–white–red (RdBu reversed, 5 stops) for differences: t in [-1, 1], 0 white. */
const DIVERGING = [[33, 102, 172], [146, 197, 222], [247, 247, 247], [244, 165, 130], [178, 24, 43]];
function diverging(t) {
  t = (Math.min(1, Math.max(-1, t)) + 1) / 2 * (DIVERGING.length - 1);
  const i = Math.min(Math.floor(t), DIVERGING.length - 2), f = t - i;
  const c = DIVERGING[i].map((a, k) => Math.round(a + (DIVERGING[i + 1][k] - a) * f));
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}
/* Dark backgrounds get white text, light ones black: whichever has the higher WCAG
   contrast with the "rgb(r, g, b)" background, at least 4.58:1 on any colour. */
function luminance(rgb) {
  const lin = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const [r, g, b] = rgb.match(/\d+/g).map(Number);
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}
function isDark(rgb) {
  const l = luminance(rgb);
  return 1.05 / (l + 0.05) > (l + 0.05) / 0.05;
}

/* Arrow keys move between the wells of a plate grid (heatmap, plate map, difference map):
   one tab stop per plate (roving tabindex), Home/End to the row's ends, Ctrl+Home/End to
   the plate's first and last well; Enter or Space activates a well as a click does. */
function rowIndex(letters) { return letters.length === 1 ? letters.charCodeAt(0) - 65 : 26 + letters.charCodeAt(1) - 65; }
function plateKeys(grid, current = null) {
  const wells = [...grid.querySelectorAll(".well[data-well]")];
  if (!wells.length) return;
  const rows = new Map();
  for (const w of wells) {
    const m = /^([A-Z]+)(\d+)$/.exec(w.dataset.well);
    w.plateRow = rowIndex(m[1]); w.plateCol = Number(m[2]);
    if (!rows.has(w.plateRow)) rows.set(w.plateRow, []);
    rows.get(w.plateRow).push(w);
  }
  for (const list of rows.values()) list.sort((a, b) => a.plateCol - b.plateCol);
  const order = [...rows.keys()].sort((a, b) => a - b);
  const start = wells.find((w) => w.dataset.well === current) || grid.querySelector(".well.selected[data-well]") || wells[0];
  for (const w of wells) w.tabIndex = w === start ? 0 : -1;
  const nearest = (list, col) => list.reduce((best, w) => (Math.abs(w.plateCol - col) < Math.abs(best.plateCol - col) ? w : best));
  grid.addEventListener("focusin", (event) => {
    const w = event.target.closest(".well[data-well]");
    if (!w) return;
    for (const x of wells) x.tabIndex = x === w ? 0 : -1;
  });
  grid.addEventListener("keydown", (event) => {
    const w = event.target.closest(".well[data-well]");
    if (!w || event.altKey || event.metaKey) return;
    const row = rows.get(w.plateRow), i = row.indexOf(w), r = order.indexOf(w.plateRow);
    let next = null;
    if (event.key === "ArrowRight") next = row[i + 1] || w;
    else if (event.key === "ArrowLeft") next = row[i - 1] || w;
    else if (event.key === "Home") next = event.ctrlKey ? rows.get(order[0])[0] : row[0];
    else if (event.key === "End") { const last = rows.get(order[order.length - 1]); next = event.ctrlKey ? last[last.length - 1] : row[row.length - 1]; }
    else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      const to = order[r + (event.key === "ArrowDown" ? 1 : -1)];
      next = to === undefined ? w : nearest(rows.get(to), w.plateCol);
    }
    if (!next) return;
    event.preventDefault();
    for (const x of wells) x.tabIndex = x === next ? 0 : -1;
    next.focus();
  });
}

/* Metric names in words, with their unit: the one table of the UI. The key is the
   CellProfiler-style name the results use; pages show it in a tooltip. */
const METRICS = {
  Count_Nuclei: { name: "Nuclei count", unit: "", per: "nuclei per field, well mean" },
  Count_Cells: { name: "Cell count", unit: "", per: "cells per field, well mean" },
  Image_ForegroundFraction: { name: "Foreground fraction", unit: "", per: "fraction of the field, well mean" },
  Threshold_FinalThreshold_Nuclei: { name: "Nuclear threshold", unit: "intensity", per: "well mean" },
};
const OBJECT_WORDS = { Nuclei: "nuclear", Cells: "cell", Cytoplasm: "cytoplasm" };
const SHAPE_UNITS = { Area: "px²", Perimeter: "px", MajorAxisLength: "px", MinorAxisLength: "px", EquivalentDiameter: "px", MaxFeretDiameter: "px", MinFeretDiameter: "px" };
const words = (camel) => camel.replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase();
function metricInfo(m) {
  if (METRICS[m]) return METRICS[m];
  let match = /^(Mean|Median)_(\w+?)_AreaShape_(\w+)$/.exec(m);
  if (match) return { name: `${match[1]} ${OBJECT_WORDS[match[2]] || match[2].toLowerCase()} ${words(match[3])}`, unit: SHAPE_UNITS[match[3]] || "", per: "per field, well mean" };
  match = /^(Mean|Median)_(\w+?)_Intensity_(\w+?)_(.+)$/.exec(m);
  if (match) return { name: `${match[1]} ${OBJECT_WORDS[match[2]] || match[2].toLowerCase()} ${words(match[3])}, ${match[4]}`, unit: "a.u.", per: "per field, well mean" };
  match = /^ImageQuality_PercentMaximal_(.+)$/.exec(m);
  if (match) return { name: `Saturated pixels, ${match[1]}`, unit: "%", per: "percent of the field at the maximum, well mean" };
  match = /^ImageQuality_(\w+?)_(.+)$/.exec(m);
  if (match) return { name: `${words(match[1]).replace(/^./, (c) => c.toUpperCase())}, ${match[2]}`, unit: "", per: "well mean" };
  match = /^Image_Intensity_(\w+?)_(.+)$/.exec(m);
  if (match) return { name: `Image ${words(match[1])}, ${match[2]}`, unit: "a.u.", per: "well mean" };
  match = /^QC_(\w+)$/.exec(m);
  if (match) return { name: `Fields flagged ${words(match[1])}`, unit: "fraction", per: "share of the well's fields with the QC flag" };
  match = /^Count_(\w+)$/.exec(m);
  if (match) return { name: `${match[1]} count`, unit: "", per: "per field, well mean" };
  return { name: m.replaceAll("_", " "), unit: "", per: "well mean" };
}
/* "Mean nuclear area (px²)": the name in words with its unit. */
function metricLabel(m) { const i = metricInfo(m); return i.unit ? `${i.name} (${i.unit})` : i.name; }

/* A labelled colour bar: ramp, low / middle / high ticks, the metric's name as its title. */
function colourBar({ label, title = "", low, high, ramp = "viridis", note = "", ids = false }) {
  const mid = low !== null && high !== null ? (low + high) / 2 : null;
  const tick = (v, id) => el("span", ids && id ? { id, text: fmt(v) } : { text: fmt(v) });
  const bar = el("div", { class: `colourbar ${ramp}`, "data-low": String(low), "data-high": String(high) },
    el("div", { class: "cb-label", title, text: label }),
    el("div", { class: "cb-ramp", role: "img", "aria-label": `${label}: colour scale from ${fmt(low)} to ${fmt(high)}` }),
    el("div", { class: "cb-ticks" }, tick(low, "scale-min"), tick(mid), tick(high, "scale-max")));
  if (note) bar.append(el("div", { class: "cb-note", text: note }));
  return bar;
}
function rowLetter(r) { const A = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"; return r < 26 ? A[r] : "A" + A[r - 26]; }

/* ---------- experiment page ---------- */
/* A well button's words: name, fields and its layout annotations. */
function wellWords(name, w) {
  let text = `${name} · ${w.fields.length} field${w.fields.length !== 1 ? "s" : ""}`;
  for (const [k, v] of Object.entries(w.layout)) if (v) text += ` · ${k}: ${v}`;
  return text;
}
/* The layout report of POST/GET …/layout: format, mapped and ignored columns, notes, warnings. */
const FORMAT_WORDS = { native: "native layout.csv", cellprofiler: "CellProfiler metadata CSV", grid: "plate-map grid sheet" };
function layoutReport(result) {
  const r = result.report, box = el("div", { class: "report ok" });
  box.append(el("p", {}, el("strong", { text: "Detected format: " }), el("span", { id: "layout-format", text: FORMAT_WORDS[r.format] || r.format }),
    ` · ${r.source} · ${fmt(r.rows)} row${r.rows !== 1 ? "s" : ""} read · ${fmt(r.wells)} well${r.wells !== 1 ? "s" : ""}${r.plate_format ? ` · ${r.plate_format}-well` : ""}`));
  const table = (caption, heads, rows) => {
    const t = el("table", { class: "data compact" }, el("caption", { text: caption }));
    t.append(el("thead", {}, el("tr", {}, ...heads.map((h) => el("th", { scope: "col", text: h })))));
    t.append(el("tbody", {}, ...rows.map((cells) => el("tr", {}, ...cells.map((c) => el("td", { text: c }))))));
    return el("div", { class: "table-scroll" }, t);
  };
  if (r.mapped.length) box.append(table("Mapped", ["Column", "Layout field"], r.mapped.map((m) => [m.source, m.field])));
  if (r.ignored.length) box.append(table("Ignored", ["Column", "Why"], r.ignored.map((m) => [m.source, m.reason])));
  if (r.notes.length) box.append(el("ul", { class: "notes small" }, ...r.notes.map((n) => el("li", { text: n }))));
  if (result.warnings.length) box.append(el("ul", { class: "warnings" }, ...result.warnings.map((n) => el("li", { class: "warn", text: n }))));
  return box;
}
function layoutProblems(error) {
  const problems = error.problems && error.problems.length ? error.problems : [error.message];
  return el("div", { class: "report bad" }, el("p", { class: "error", text: "The layout was not stored: fix these and upload it again." }),
    el("ul", { id: "layout-problems" }, ...problems.map((p) => el("li", { text: p }))));
}
function initExperiment() {
  const data = JSON.parse($("#exp-data").textContent);
  const experiment = data.experiment_id;
  const byWell = {};
  for (const plate of data.plate_maps) for (const [name, w] of Object.entries(plate.wells)) byWell[`${plate.plate}:${name}`] = w;
  document.querySelectorAll(".plate[data-plate]").forEach((grid) => plateKeys(grid));
  let selected = null;  /* [plate, button] of the open well */
  function showWell(plate, button) {
    const w = byWell[`${plate}:${button.dataset.well}`];
    $("#well-title").textContent = `${plate} · ${w.well}`;
    const kv = $("#well-layout"); kv.replaceChildren();
    for (const [k, v] of Object.entries(w.layout)) if (v) kv.append(el("dt", { text: k }), el("dd", { text: v }));
    $("#well-role").hidden = false;
    $("#role-select").value = w.layout.control || "none";
    if ($("#role-scope-plate")) $("#role-scope-plate").textContent = `this plate only (${plate})`;
    return w;
  }
  /* Repaint the plate map from a layout answer's wells (a plate's own row before the row for every plate). */
  function applyLayout(wells) {
    document.querySelectorAll(".plate[data-plate] .well.has").forEach((button) => {
      const plate = button.closest(".plate").dataset.plate, name = button.dataset.well;
      const w = byWell[`${plate}:${name}`];
      const row = wells.find((x) => x.plate === plate && x.well === name) || wells.find((x) => x.plate === null && x.well === name);
      w.layout = row ? { condition: row.condition, compound: row.compound, concentration: row.concentration === null ? "" : String(row.concentration), control: row.control } : {};
      button.classList.remove("ctl-neg", "ctl-pos", "ctl-none");
      button.classList.add(`ctl-${w.layout.control || "none"}`);
      const words = wellWords(name, w);
      button.title = words; button.setAttribute("aria-label", words);
    });
    if (selected) showWell(...selected);
    const stale = $("#layout-error"); if (stale) stale.remove();
  }
  document.querySelectorAll(".plate .well.has").forEach((button) => {
    button.addEventListener("click", () => {
      document.querySelectorAll(".well.selected").forEach((x) => x.classList.remove("selected"));
      button.classList.add("selected");
      const plate = button.closest(".plate").dataset.plate;
      selected = [plate, button];
      $("#role-status").textContent = "";
      const w = showWell(plate, button);
      const box = $("#well-fields"); box.replaceChildren();
      for (const f of w.fields) {
        const row = el("div", { class: "row" });
        for (const c of f.channels) {
          row.append(el("figure", {}, el("img", { src: `/api/experiments/${enc(experiment)}/fields/${enc(f.image_id)}/${enc(c)}.png`, alt: `${f.image_id} ${c}`, loading: "lazy" }), el("figcaption", { text: `field ${f.field} · ${c}` })));
        }
        box.append(row);
      }
    });
  });
  /* a well's control role: with several plates, on this plate only (its own layout row)
     or on every plate (the well's row for every plate), as the scientist chooses */
  const role = $("#role-select");
  role.addEventListener("change", async () => {
    if (!selected) return;
    const [plate, button] = selected, body = { control: role.value };
    const scope = document.querySelector('input[name="role-scope"]:checked');
    const several = data.plate_maps.length > 1, everyPlate = several && scope && scope.value === "all";
    if (several && !everyPlate) body.plate = plate;
    role.disabled = true; $("#role-status").textContent = "saving…";
    try {
      const result = await api("PATCH", `/api/experiments/${enc(experiment)}/layout/wells/${enc(button.dataset.well)}`, body);
      applyLayout(result.wells);
      $("#role-status").textContent = !several ? "saved" : everyPlate ? "saved on every plate" : `saved on ${plate} only`;
    } catch (error) {
      $("#role-status").textContent = `not saved: ${error.message}`;
      role.value = byWell[`${plate}:${button.dataset.well}`].layout.control || "none";
    } finally { role.disabled = false; }
  });
  /* upload a layout file: the report (or every problem), then the plate repainted */
  const form = $("#layout-form"), upload = $("#layout-upload");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = $("#layout-file").files[0];
    if (!file) return;
    const body = new FormData(); body.append("file", file);
    upload.disabled = true;
    const report = $("#layout-report"); report.replaceChildren(el("p", { class: "muted", text: "reading…" }));
    try {
      const response = await fetch(`/api/experiments/${enc(experiment)}/layout`, {
        method: "POST", body, credentials: "same-origin", headers: { Accept: "application/json", "X-CSRF-Token": csrf() },
      });
      let answer = null;
      try { answer = await response.json(); } catch (e) { answer = null; }
      if (!response.ok) {
        const error = new Error((answer && typeof answer.detail === "string" && answer.detail) || response.statusText);
        error.problems = (answer && answer.problems) || [];
        throw error;
      }
      report.replaceChildren(layoutReport(answer));
      applyLayout(answer.wells);
    } catch (error) {
      report.replaceChildren(layoutProblems(error));
    } finally { upload.disabled = false; }
  });
}

/* ---------- new run page ---------- */
function collectRecipe(form) {
  const params = {};
  form.querySelectorAll("[data-param]").forEach((input) => {
    const kind = input.dataset.kind;
    if (kind === "bool") params[input.dataset.param] = input.checked;
    else if (kind === "num") params[input.dataset.param] = input.value === "" ? null : Number(input.value);
    else params[input.dataset.param] = input.value;
  });
  const nuclei = $("#channel-nuclei").value;
  return { segmenter: $("#segmenter").value, params, channels: { nuclei }, planes: $("#planes").value };
}
/* The start request: plateseg run's options beside the recipe (empty fields: the defaults). */
function collectRun(form, experiment) {
  const recipe = collectRecipe(form);
  if ($("#secondary").checked) { recipe.channels.cells = $("#channel-cells").value; recipe.secondary = {}; }
  const body = { experiment_id: experiment, recipe };
  const naming = $("#naming").value === "regex" ? $("#naming-regex").value.trim() : $("#naming").value;
  if (naming) body.naming = naming;
  const whole = (id) => { const v = $(id).value.trim(); return v === "" ? null : Number(v); };
  if (whole("#batch-size") !== null) body.batch_size = whole("#batch-size");
  if (whole("#concurrency") !== null) body.concurrency = whole("#concurrency");
  if ($("#run-id").value.trim()) body.run_id = $("#run-id").value.trim();
  return body;
}
function showErrors(form, error) {
  form.querySelectorAll(".field-error").forEach((x) => { x.textContent = ""; });
  form.querySelectorAll(".invalid").forEach((x) => x.classList.remove("invalid"));
  $("#form-error").textContent = "";
  if (!error) return;
  let placed = false;
  for (const [name, message] of Object.entries(error.fields || {})) {
    const key = name.split(".")[0];
    const slot = form.querySelector(`.field-error[data-field="${key}"]`);
    if (slot) { slot.textContent = message; placed = true; }
    const input = form.querySelector(`[data-param="${key}"]`);
    if (input) input.classList.add("invalid");
  }
  if (!placed) $("#form-error").textContent = error.message;
}
/* Parameter edits survive a switch of segmenter (the page reloads with the new one's
   parameters): kept per experiment for this tab, restored where the name still exists. */
const EDITS_KEY = (experiment) => `plateseg:new-run:${experiment}`;
function keepEdits(form, experiment) {
  const edits = {};
  form.querySelectorAll("[data-param], #channel-nuclei, #planes").forEach((input) => {
    const key = input.dataset.param || input.id;
    edits[key] = input.type === "checkbox" ? input.checked : input.value;
  });
  sessionStorage.setItem(EDITS_KEY(experiment), JSON.stringify(edits));
}
function restoreEdits(form, experiment) {
  const saved = sessionStorage.getItem(EDITS_KEY(experiment));
  if (!saved) return;
  sessionStorage.removeItem(EDITS_KEY(experiment));
  const edits = JSON.parse(saved);
  form.querySelectorAll("[data-param], #channel-nuclei, #planes").forEach((input) => {
    const key = input.dataset.param || input.id;
    if (!(key in edits) || key === "model") return;  /* each segmenter lists its own models */
    if (input.type === "checkbox") input.checked = Boolean(edits[key]);
    else if (input.tagName !== "SELECT" || [...input.options].some((o) => o.value === edits[key])) input.value = edits[key];
  });
}
/* The preview's fields, picked on a small plate map of the experiment (the plate page's
   data, embedded as #preview-data): a click (or Enter on the focused well; the arrow keys
   move as on the plate page) picks or unpicks a well, at most two (a third replaces the
   first picked); a well with several fields gets a field menu in the list under the plate. */
const PICKS_KEY = (experiment) => `plateseg:new-run-picks:${experiment}`;
function previewPicker(plates) {
  const picks = [];  /* {plate, well, imageId} */
  const wells = {};
  const key = (plate, well) => `${plate}:${well}`;
  const box = $("#preview-plates"); box.replaceChildren();
  for (const plate of plates) {
    const grid = el("div", { class: "plate pick", "data-plate": plate.plate, role: "group", "aria-label": `Plate ${plate.plate}, ${plate.rows * plate.columns} wells: arrow keys move between wells, Enter picks a well for the preview` });
    grid.style.setProperty("--cols", String(plate.columns));
    grid.append(el("div", { class: "corner" }));
    for (let c = 1; c <= plate.columns; c++) grid.append(el("div", { class: "colhead", text: String(c) }));
    for (let r = 0; r < plate.rows; r++) {
      grid.append(el("div", { class: "rowhead", text: rowLetter(r) }));
      for (let c = 1; c <= plate.columns; c++) {
        const name = `${rowLetter(r)}${String(c).padStart(2, "0")}`, w = plate.wells[name];
        if (!w) { grid.append(el("div", { class: "well none", title: `${name} · no images` })); continue; }
        wells[key(plate.plate, name)] = w;
        const { condition, compound, concentration, control } = w.layout;  /* the plate page's order (tojson sorts keys) */
        const words = wellWords(name, { fields: w.fields, layout: { condition, compound, concentration, control } });
        const button = el("button", { type: "button", class: `well has ctl-${w.layout.control || "none"}`, "data-well": name, "data-words": words, title: words, "aria-label": words, "aria-pressed": "false" });
        button.addEventListener("click", () => toggle(plate.plate, name));
        grid.append(button);
      }
    }
    if (plates.length > 1) box.append(el("p", { class: "plate-name small", text: `Plate ${plate.plate}` }));
    box.append(el("div", { class: "plate-scroll" }, grid));
    plateKeys(grid);
  }
  function toggle(plate, well) {
    const i = picks.findIndex((p) => p.plate === plate && p.well === well);
    if (i >= 0) picks.splice(i, 1);
    else {
      if (picks.length === 2) picks.shift();
      picks.push({ plate, well, imageId: wells[key(plate, well)].fields[0].image_id });
    }
    draw(true);
  }
  function fieldOf(p) { return wells[key(p.plate, p.well)].fields.find((f) => f.image_id === p.imageId); }
  function draw(announce) {
    box.querySelectorAll(".plate[data-plate] .well.has").forEach((button) => {
      const plate = button.closest(".plate").dataset.plate;
      const i = picks.findIndex((p) => p.plate === plate && p.well === button.dataset.well);
      button.classList.toggle("picked", i >= 0);
      button.setAttribute("aria-pressed", String(i >= 0));
      button.textContent = i >= 0 ? String(i + 1) : "";
      const words = button.dataset.words + (i >= 0 ? ` · preview ${i + 1}` : "");  /* the visible number is in the name */
      button.title = words; button.setAttribute("aria-label", words);
    });
    const list = $("#preview-picks"); list.replaceChildren();
    picks.forEach((p, i) => {
      const w = wells[key(p.plate, p.well)];
      const item = el("li", { "data-well": p.well }, el("span", { class: "pick-name", text: `${plates.length > 1 ? p.plate + " " : ""}${p.well}` }));
      if (w.fields.length > 1) {
        const select = el("select", { id: `preview-field-${i + 1}`, "aria-label": `Field of ${p.plate} ${p.well} to preview` });
        for (const f of w.fields) select.append(el("option", { value: f.image_id, text: `field ${f.field}` }));
        select.value = p.imageId;
        select.addEventListener("change", () => { p.imageId = select.value; draw(true); });
        item.append(select);
      } else item.append(el("span", { class: "muted", text: `field ${fieldOf(p).field}` }));
      item.append(el("span", { class: "mono small muted pick-id", text: p.imageId }));
      const remove = el("button", { type: "button", class: "pick-remove", text: "Remove", "aria-label": `Remove ${p.plate} ${p.well} from the preview` });
      remove.addEventListener("click", () => { picks.splice(picks.indexOf(p), 1); draw(true); });
      item.append(remove);
      list.append(item);
    });
    if (!picks.length) list.append(el("li", { class: "muted", text: "No field picked: click a well on the plate." }));
    if (announce) $("#preview-pick-status").textContent = picks.length ? `Preview: ${picks.map((p) => `${p.plate} ${p.well} field ${fieldOf(p).field}`).join(" and ")}` : "No field picked for the preview";
  }
  /* the first two wells of the first plate (row by row), their first fields */
  function defaults() {
    box.querySelectorAll(".plate[data-plate] .well.has").forEach((button) => {
      if (picks.length < 2) picks.push({ plate: button.closest(".plate").dataset.plate, well: button.dataset.well, imageId: wells[key(button.closest(".plate").dataset.plate, button.dataset.well)].fields[0].image_id });
    });
  }
  function restore(ids) {
    for (const [k, w] of Object.entries(wells)) {
      for (const f of w.fields) if (ids.includes(f.image_id) && picks.length < 2) picks.push({ plate: k.slice(0, k.length - w.well.length - 1), well: w.well, imageId: f.image_id });
    }
  }
  return {
    ids: () => [...new Set(picks.map((p) => p.imageId))],
    start(saved) { if (saved && saved.length) restore(saved); if (!picks.length) defaults(); draw(false); },
  };
}
function initNewRun() {
  const form = $("#recipe-form"), experiment = form.dataset.experiment;
  const previewButton = $("#preview-button"), launch = $("#launch-button");
  restoreEdits(form, experiment);
  const picker = previewPicker(JSON.parse($("#preview-data").textContent));
  const saved = sessionStorage.getItem(PICKS_KEY(experiment));
  sessionStorage.removeItem(PICKS_KEY(experiment));
  picker.start(saved ? JSON.parse(saved) : null);
  $("#segmenter").addEventListener("change", () => {
    keepEdits(form, experiment);
    sessionStorage.setItem(PICKS_KEY(experiment), JSON.stringify(picker.ids()));
  });
  /* a preview drawn with other inputs is cleared, so it is never read as this recipe's */
  form.addEventListener("input", (event) => {
    const recipeInput = event.target.matches("[data-param], #channel-nuclei, #planes, #secondary, #channel-cells");
    if (!recipeInput || !$("#preview-results").querySelector("figure")) return;
    $("#preview-results").replaceChildren();
    $("#estimate").textContent = "";
    $("#preview-status").textContent = "the recipe changed: preview again";
  });
  $("#naming").addEventListener("change", () => { $("#naming-regex").disabled = $("#naming").value !== "regex"; });
  previewButton.addEventListener("click", async () => {
    const unique = picker.ids();
    if (!unique.length) { $("#preview-status").textContent = "pick a field on the plate first"; return; }
    previewButton.disabled = true; $("#preview-status").textContent = "segmenting…";
    try {
      const result = await api("POST", `/api/experiments/${enc(experiment)}/preview`, { recipe: collectRecipe(form), image_ids: unique });
      showErrors(form, null);
      const box = $("#preview-results"); box.replaceChildren();
      for (const f of result.fields) {
        box.append(el("figure", { class: "preview", "data-image": f.image_id },
          el("img", { src: f.overlay, alt: `outlines on ${f.image_id}` }),
          el("figcaption", {}, el("span", { text: f.image_id }), el("span", {}, el("span", { class: "count-big", text: fmt(f.object_count) }), " nuclei · " + fmt(f.seconds) + " s"))));
      }
      const e = result.estimate;
      $("#estimate").textContent = e.cost_usd !== null
        ? `Estimated cost of the full run (${fmt(e.fields)} fields): $${e.cost_usd.toFixed(4)} · ${e.basis}`
        : `Estimated time of the full run (${fmt(e.fields)} fields): ~${duration(e.seconds)} on ${e.basis}`;
      $("#preview-status").textContent = `${fmt(result.seconds_per_field)} s per field`;
    } catch (error) {
      showErrors(form, error); $("#preview-status").textContent = "fix the recipe and try again";
    } finally { previewButton.disabled = false; }
  });
  launch.addEventListener("click", async () => {
    launch.disabled = true;
    try {
      const run = await api("POST", "/api/runs", collectRun(form, experiment));
      window.location.assign(`/runs/${enc(run.run_id)}`);
    } catch (error) { showErrors(form, error); launch.disabled = false; }
  });
}

/* ---------- run page ---------- */
const TERMINAL = new Set(["SUCCEEDED", "FAILED", "ABORTED"]);
/* Why a run ended, in words: [pattern on the engine's error name, what it means]; the
   cause (the handler's message) follows where it says more. The raw error stays one
   click away (#run-error-raw). */
const RUN_ERRORS = [
  [/^Interrupted$/, "The run was interrupted: the server stopped while it ran."],
  [/Abort|Cancel/i, "The run was cancelled."],
  [/ExceedToleratedFailureThreshold/, "Too many batches failed (more than the run's tolerated failures), so the run stopped."],
  [/Timeout|TimedOut/, "A step ran past its time limit."],
  [/NoImagesError/, "No images to segment:"],
  [/AllImagesFailedError/, "Every image failed:"],
  [/ModelError/, "The segmentation model could not be used:"],
  [/ExperimentIdError|ExecutionInputError|RecipeError|InputError|NotFoundError|ResumeError|RunOwnershipError/, "The run's input was refused:"],
  [/Database/, "The results database could not be written:"],
  [/Store|ObjectNotFound/, "The image store could not be read:"],
  [/WorkerDied|ExitError|OutOfMemory|MemoryError/, "A worker process crashed or ran out of memory."],
  [/InternalError/, "The local engine hit an internal error."],
];
/* ABORTED is a cancel unless the server stopped under the run ("Interrupted"). */
function cancelledByUser(status, error) { return status === "ABORTED" && error !== "Interrupted"; }
function runErrorWords(status, error, cause) {
  if (cancelledByUser(status, error)) return "The run was cancelled.";
  if (!error) return "";
  const found = RUN_ERRORS.find(([pattern]) => pattern.test(error));
  if (!found) return `The run failed (${error})${cause ? `: ${cause}` : "."}`;
  const words = found[1];
  return words.endsWith(":") ? `${words} ${cause || error}` : words;
}
/* A run's status in words: Step Functions says ABORTED for a run the user cancelled. */
function statusWords(status) { return status === "ABORTED" ? "cancelled" : status.toLowerCase().replace(/_/g, " "); }
function initRun() {
  const initial = JSON.parse($("#run-data").textContent);
  const runId = initial.run_id;
  let loaded = false;
  const cancel = $("#cancel-button");
  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    try { render(await api("POST", `/api/runs/${runId}/cancel`)); } catch (error) { $("#run-error").textContent = error.message; }
  });
  let announced = null;
  /* the polite live region says the status when it changes, not every poll's counts */
  function announce(p, partial) {
    const key = `${p.status}:${partial}`;
    if (key === announced) return;
    announced = key;
    const text = p.status === "SUCCEEDED"
      ? (partial ? `Run succeeded, ${fmt(p.failed)} of ${fmt(p.total)} images failed` : `Run succeeded: ${fmt(p.succeeded)} of ${fmt(p.total)} images segmented`)
      : p.status === "ABORTED" ? "Run cancelled"
        : p.status === "FAILED" ? `Run failed${p.error ? `: ${p.error}` : ""}`
          : `Run ${p.status.toLowerCase().replace(/_/g, " ")}`;
    $("#run-announce").textContent = text;
  }
  function render(p) {
    const status = $("#run-status");
    /* "succeeded" only when every image did: a partial success has its own words and colour */
    const partial = p.status === "SUCCEEDED" && p.failed > 0;
    status.textContent = partial ? `succeeded, ${fmt(p.failed)} of ${fmt(p.total)} images failed` : statusWords(p.status);
    status.className = `status big s-${partial ? "succeeded_with_failures" : p.status.toLowerCase()}`;
    for (const k of ["succeeded", "running", "total"]) $(`#st-${k}`).textContent = fmt(p[k]);
    /* failed images, once the run has ended, link to the failures list with their causes */
    const failed = $("#st-failed");
    if (p.failed > 0 && TERMINAL.has(p.status)) {
      if (failed.firstElementChild?.getAttribute("href") !== "#failures-card" || failed.textContent !== fmt(p.failed)) {
        failed.replaceChildren(el("a", { href: "#failures-card", "aria-label": `${fmt(p.failed)} failed: see the failures list`, text: fmt(p.failed) }));
      }
    } else {
      failed.textContent = fmt(p.failed);
    }
    $("#st-phase").textContent = cancelledByUser(p.status, p.error) ? "cancelled" : p.phase;
    $("#st-throughput").textContent = p.throughput ? `${fmt(p.throughput)}/s` : "–";
    $("#st-elapsed").textContent = duration(p.elapsed_seconds);
    $("#st-eta").textContent = TERMINAL.has(p.status) ? "done" : duration(p.eta_seconds);
    const total = Math.max(p.total, 1);
    $("#bar-ok").style.width = `${(100 * p.succeeded) / total}%`;
    $("#bar-fail").style.width = `${(100 * p.failed) / total}%`;
    $("#bar-running").style.width = `${(100 * p.running) / total}%`;
    const bar = $("#progress-bar"), done = p.succeeded + p.failed;
    bar.setAttribute("aria-valuemax", String(p.total)); bar.setAttribute("aria-valuenow", String(done));
    bar.setAttribute("aria-valuetext", `${fmt(done)} of ${fmt(p.total)} images done${p.failed ? `, ${fmt(p.failed)} failed` : ""}${p.running ? `, ${fmt(p.running)} running` : ""}`);
    announce(p, partial);
    cancel.hidden = !p.can_cancel || TERMINAL.has(p.status); cancel.disabled = false;
    $("#run-error").textContent = TERMINAL.has(p.status) ? runErrorWords(p.status, p.error, p.cause) : "";
    $("#run-error-raw").hidden = !p.error;
    $("#run-error-detail").textContent = p.error ? `${p.error}${p.cause ? `: ${p.cause}` : ""}` : "";
    const retryable = p.can_retry && TERMINAL.has(p.status);
    $("#retry-button").hidden = !retryable;
    $("#retry-head").hidden = !retryable || p.status === "SUCCEEDED";  // no results card to hold it
    document.querySelectorAll(".retry-action").forEach((b) => { b.disabled = false; });
    $("#failure-note").textContent = retryable
      ? "Retry failed runs this run again: batches that fully succeeded are reused, failed images and batches are segmented again, and the results below are rewritten. Replace unreadable files in the store first."
      : "";
    if (p.status === "SUCCEEDED" && !loaded) { loaded = true; loadResults(runId); }
  }
  async function poll() {
    try {
      const p = await api("GET", `/api/runs/${runId}`);
      render(p);
      if (!TERMINAL.has(p.status)) setTimeout(poll, 700);
    } catch (error) { $("#run-error").textContent = error.message; setTimeout(poll, 3000); }
  }
  render(initial);
  if (!TERMINAL.has(initial.status)) setTimeout(poll, 300);
  document.querySelectorAll(".retry-action").forEach((button) => button.addEventListener("click", async () => {
    document.querySelectorAll(".retry-action").forEach((b) => { b.disabled = true; });
    try {
      const p = await api("POST", `/api/runs/${runId}/retry`);
      // follow the new execution like a new run; results come back when it succeeds
      loaded = false; $("#results").hidden = true; document.body.dataset.resultsReady = "false";
      $("#viewer-title").textContent = "Image viewer";
      $("#viewer").replaceChildren(el("p", { class: "muted", text: "Click a well in the heatmap or a row below." }));
      render(p); setTimeout(poll, 300);
    } catch (error) {
      $("#run-error").textContent = error.message;
      document.querySelectorAll(".retry-action").forEach((b) => { b.disabled = false; });
    }
  }));
}

async function loadResults(runId) {
  $("#results").hidden = false;
  $("#dl-images-csv").href = `/api/runs/${runId}/images.csv`;
  $("#dl-wells-csv").href = `/api/runs/${runId}/wells.csv`;
  $("#dl-parquet").href = `/api/runs/${runId}/images.parquet`;
  $("#dl-objects").href = `/api/runs/${runId}/objects.parquet`;
  const metrics = await api("GET", `/api/runs/${runId}/metrics`);
  const select = $("#metric"); select.replaceChildren();
  for (const m of metrics) select.append(el("option", { value: m, text: metricLabel(m), title: `CellProfiler name: ${m}` }));
  select.onchange = () => drawHeatmap(runId, select.value);
  initHeatControls(runId);
  heatView.metric = null;  // a retry's results: Z′ and dose-response are drawn again
  if (metrics.length) await drawHeatmap(runId, metrics[0]);
  else $("#heatmap").replaceChildren(el("p", { class: "muted", text: "No well metrics recorded (every image failed?)." }));
  const [images, failures, details] = await Promise.all([api("GET", `/api/runs/${runId}/images`), api("GET", `/api/runs/${runId}/failures`), api("GET", `/api/runs/${runId}/details`)]);
  drawDetails(details);
  viewerChannels(details);
  drawFailures(failures);
  drawImages(runId, images);
  document.body.dataset.resultsReady = "true";
}

/* "operetta (detected from the file names)", "imagexpress (given)", or "–" for a run
   that recorded none (shared with the compare page). */
function namingText(d) {
  if (!d.naming) return "–";
  return `${d.naming} (${d.naming_detected ? "detected from the file names" : "given"})`;
}

/* The run's recipe, model (with its pinned hash and card), naming, Map settings, engine
   and who started it with which plateseg version. */
function drawDetails(d) {
  const row = (label, value, title) => el("div", {}, el("dt", { text: label }), el("dd", { text: value, title: title || "" }));
  const params = Object.entries(d.params || {}).map(([k, v]) => `${k}=${v === null ? "auto" : v}`).join(", ");
  const channels = Object.entries(d.channels || {}).map(([k, v]) => `${k}: ${v}`).join(", ");
  const items = [row("Segmenter", d.segmenter + (d.secondary ? " + cells" : "")), row("Parameters", params || "defaults"), row("Channels", channels + (d.planes === "max" ? " (maximum projection of their planes)" : ""))];
  if (d.model) {
    const model = row("Model", `${d.model.name} · ${d.model.sha256.slice(0, 12)}`, `SHA-256 ${d.model.sha256}`);
    if (d.model.card) model.querySelector("dd").append(" ", el("a", { href: d.model.card, text: "model card", target: "_blank" }));
    items.push(model);
  }
  items.push(row("File naming", namingText(d)), row("Batch size / concurrency", `${d.batch_size ?? "–"} / ${d.max_concurrency ?? "–"}`), row("Engine", d.engine));
  items.push(row("Started by", d.started_by || "–"), row("plateseg version", d.code_version || "–"));
  items.push(row("Started / finished", `${(d.started_at || "–").slice(0, 19).replace("T", " ")} / ${d.finished_at.slice(0, 19).replace("T", " ")} UTC`));
  $("#run-details").replaceChildren(...items);
}

/* The run page's heatmap: the metric (or its spread across fields) on every plate, a
   labelled colour bar over a robust range, controls outlined, failed and empty wells. */
const heatView = { metric: null, stat: "mean", range: "robust", perPlate: false, values: false, data: null, focus: null };
let heatRequest = 0;  // the latest heatmap request: an older answer arriving later is dropped
async function drawHeatmap(runId, metric) {
  const changed = metric !== heatView.metric;
  heatView.metric = metric;
  const q = `metric=${enc(metric)}&stat=${heatView.stat}`;
  const mine = ++heatRequest;
  const data = await api("GET", `/api/runs/${enc(runId)}/heatmap?${q}`);
  if (mine === heatRequest) {
    heatView.data = data;
    paintHeatmap(runId);
  }
  if (changed && window.drawBiology) await window.drawBiology(runId, metric);
}
function heatRange(range) {
  if (!range || range.min === null) return [null, null];
  return heatView.range === "robust" ? [range.low, range.high] : [range.min, range.max];
}
function paintHeatmap(runId) {
  const data = heatView.data;
  const info = metricInfo(data.metric);
  const label = data.stat === "cv" ? `Spread of ${info.name.toLowerCase()} across fields: CV (%)` : metricLabel(data.metric);
  const title = `CellProfiler name: ${data.metric}` + (data.stat === "cv" ? " · CV = sample SD of the well's fields / their mean" : ` · ${info.per}`);
  const box = $("#heatmap"); box.replaceChildren();
  box.classList.toggle("show-values", heatView.values);
  const bars = $("#colourbars"); bars.replaceChildren();
  const plates = [...new Set(data.wells.map((w) => w.plate))];
  const note = (lo, hi, values) => {
    const below = values.filter((v) => v < lo).length, above = values.filter((v) => v > hi).length;
    const nth = (n) => `${n}${n % 10 === 1 && n % 100 !== 11 ? "st" : n % 10 === 2 && n % 100 !== 12 ? "nd" : n % 10 === 3 && n % 100 !== 13 ? "rd" : "th"}`;
    const what = heatView.range === "robust" ? `colours span the ${nth(data.percentiles[0])} to ${nth(data.percentiles[1])} percentile of the wells` : "colours span the lowest to the highest well";
    const ends = below || above ? `; ${below} below and ${above} above are drawn at the ends` : "";
    return `${what}${heatView.perPlate && plates.length > 1 ? " of this plate" : ""}${ends}`;
  };
  const [allLo, allHi] = heatRange(data);
  for (const plate of plates) {
    const list = data.wells.filter((w) => w.plate === plate);
    const wells = Object.fromEntries(list.map((w) => [w.well, w]));
    const [lo, hi] = heatView.perPlate ? heatRange(data.plates[plate]) : [allLo, allHi];
    const span = lo !== null && hi > lo ? hi - lo : 1;
    const grid = el("div", { class: "plate heat", "data-plate": plate, role: "group", "aria-label": `Plate ${plate} heatmap of ${label}: arrow keys move between wells, Enter opens a well's image` });
    grid.style.setProperty("--cols", String(data.columns));  /* CSSOM: allowed by the CSP, a style attribute is not */
    grid.append(el("div", { class: "corner" }));
    for (let c = 1; c <= data.columns; c++) grid.append(el("div", { class: "colhead", text: String(c) }));
    for (let r = 0; r < data.rows; r++) {
      grid.append(el("div", { class: "rowhead", text: rowLetter(r) }));
      for (let c = 1; c <= data.columns; c++) {
        const name = rowLetter(r) + String(c).padStart(2, "0");
        const w = wells[name];
        if (!w) { grid.append(el("div", { class: "well none", title: `${name} · not in this run` })); continue; }
        const notes = Object.entries(w.layout).filter(([, v]) => v).map(([k, v]) => `${k}: ${v}`).join(" · ");
        const shown = data.stat === "cv" ? (w.value === null ? "–" : `CV ${fmt(w.value)} %`) : fmt(w.value);
        const where = w.value === null || lo === null ? "" : w.value < lo ? " · below the colour range" : w.value > hi ? " · above the colour range" : "";
        const empty = w.value === null ? (w.failed && w.mean === null ? " · every field failed" : data.stat === "cv" ? ` · no spread from ${w.n_fields} field${w.n_fields === 1 ? "" : "s"}` : " · no value") : "";
        const cell = el("button", {
          class: "well" + (w.value === null ? " nodata" : "") + (w.failed ? " failed" : "") + (w.layout.control ? ` ctl-${w.layout.control}` : ""),
          "data-well": name, "data-value": w.value === null ? "" : String(w.value),
          title: `${plate} ${name} · ${shown}${empty}${where}${w.failed ? ` · ${w.failed} failed` : ""}${notes ? " · " + notes : ""}`,
        });
        if (w.value !== null) {
          const colour = viridis((w.value - lo) / span);
          cell.style.background = colour;
          if (isDark(colour)) cell.classList.add("on-dark");
          cell.append(el("span", { class: "v", text: fmt(w.value) }));
        }
        cell.setAttribute("aria-label", cell.title);
        cell.addEventListener("click", () => openWell(runId, plate, name));
        grid.append(cell);
      }
    }
    if (plates.length > 1) box.append(el("h3", { text: `Plate ${plate}` }));
    box.append(grid);
    plateKeys(grid, heatView.focus && heatView.focus.plate === plate ? heatView.focus.well : null);
    grid.addEventListener("focusin", (event) => { if (event.target.dataset.well) heatView.focus = { plate, well: event.target.dataset.well }; });
    if (heatView.perPlate && plates.length > 1) {
      const values = list.map((w) => w.value).filter((v) => v !== null);
      box.append(colourBar({ label: `${label} · plate ${plate}`, title, low: lo, high: hi, note: note(lo, hi, values) }));
    }
  }
  if (!(heatView.perPlate && plates.length > 1)) {
    const values = data.wells.map((w) => w.value).filter((v) => v !== null);
    bars.append(colourBar({ label, title, low: allLo, high: allHi, note: note(allLo, allHi, values), ids: true }));
  }
  const z = Object.entries(data.z_prime);
  $("#zprime").replaceChildren(...(z.length ? ["Z′ ", ...z.flatMap(([p, v]) => [el("b", { text: v === null ? "n/a" : v.toFixed(2) }), z.length > 1 ? ` (${p}) ` : ""])] : []));
  $("#zprime").title = "Z′ = 1 − 3(σpos + σneg)/|μpos − μneg| over the well means of the layout's control wells (sample σ, n − 1); its evidence is under Assay quality";
}
function initHeatControls(runId) {
  const stat = $("#heat-stat"), range = $("#heat-range"), perPlate = $("#heat-per-plate"), values = $("#heat-values");
  stat.onchange = () => { heatView.stat = stat.value; drawHeatmap(runId, heatView.metric); };
  range.onchange = () => { heatView.range = range.value; paintHeatmap(runId); };
  perPlate.onchange = () => { heatView.perPlate = perPlate.checked; paintHeatmap(runId); };
  values.onchange = () => { heatView.values = values.checked; $("#heatmap").classList.toggle("show-values", values.checked); };
}

let imageRows = [];
/* The run page's viewer: one well's fields as a montage (a tile per field, outlines on
   the chosen channel), or one field large. Channel and outlines stay as chosen across wells. */
const viewerState = { runId: null, channels: [], channel: null, outlines: true, well: null, zoom: null, contrast: {} };
/* Contrast per channel: the percentiles of the channel drawn black and white (overlay.png's
   low and high; the server's defaults until the scientist moves a slider). */
const CONTRAST = { low: 0.5, high: 99.8 };
function channelContrast() { return viewerState.contrast[viewerState.channel || ""] || CONTRAST; }
function fieldPicture(runId, imageId) {
  const q = new URLSearchParams();
  if (viewerState.channel) q.set("channel", viewerState.channel);
  if (!viewerState.outlines) q.set("outlines", "false");
  const { low, high } = channelContrast();
  if (low !== CONTRAST.low || high !== CONTRAST.high) { q.set("low", String(low)); q.set("high", String(high)); }
  const query = q.toString();
  return `/api/runs/${enc(runId)}/images/${enc(imageId)}/overlay.png${query ? "?" + query : ""}`;
}
function viewerChannels(details) {
  const roles = {};
  for (const [role, name] of Object.entries(details.channels || {})) (roles[name] = roles[name] || []).push(role);
  viewerState.channels = Object.entries(roles).map(([name, r]) => ({ name, label: `${name} (${r.join(", ")})` })).sort((a, b) => (a.name < b.name ? -1 : 1));
  if (!viewerState.channel && viewerState.channels.length) viewerState.channel = (details.channels || {}).nuclei || viewerState.channels[0].name;
}
function viewerControls(redraw) {
  const bar = el("div", { class: "toolbar viewer-controls" });
  if (viewerState.channels.length) {
    const select = el("select", { id: "viewer-channel" });
    for (const c of viewerState.channels) select.append(el("option", { value: c.name, text: c.label }));
    select.value = viewerState.channel;
    select.addEventListener("change", () => { viewerState.channel = select.value; redraw(); });
    bar.append(el("label", { class: "inline" }, "Channel ", select));
  }
  const outlines = el("input", { type: "checkbox", id: "viewer-outlines" });
  outlines.checked = viewerState.outlines;
  outlines.addEventListener("change", () => { viewerState.outlines = outlines.checked; redraw(); });
  bar.append(el("label", { class: "inline" }, outlines, " outlines"), contrastControls());
  return bar;
}
/* The shown channel's contrast: black and white points as percentiles of the field. A
   change redraws the pictures in place (the slider keeps the focus); each channel keeps its own. */
function contrastControls() {
  const name = viewerState.channel || "";
  const box = el("fieldset", { class: "contrast", id: "viewer-contrast" }, el("legend", { title: "black and white points: percentiles of the field's intensities" }, `Contrast${name ? ` of ${name}` : ""} `, el("span", { class: "muted small", text: "(percentiles)" })));
  const slider = (key, label, min, max, step) => {
    const input = el("input", { type: "range", id: `contrast-${key}`, min: String(min), max: String(max), step: String(step) });
    const shown = el("output", { for: input.id, id: `contrast-${key}-value` });
    const words = (v) => `${fmt(v)}th percentile`;
    const set = (v) => { input.value = String(v); shown.textContent = fmt(v); input.setAttribute("aria-valuetext", words(v)); };
    set(channelContrast()[key]);
    input.addEventListener("input", () => set(Number(input.value)));
    input.addEventListener("change", () => {
      viewerState.contrast[name] = { ...channelContrast(), [key]: Number(input.value) };
      refreshPictures();
    });
    box.append(el("label", { class: "inline" }, label, input, shown));
    return set;
  };
  const setLow = slider("low", "black at", 0, 49, 0.5);
  const setHigh = slider("high", "white at", 51, 100, 0.1);
  const reset = el("button", { type: "button", id: "contrast-reset", text: "Reset" });
  reset.addEventListener("click", () => { delete viewerState.contrast[name]; setLow(CONTRAST.low); setHigh(CONTRAST.high); refreshPictures(); });
  box.append(reset);
  return box;
}
function refreshPictures() {
  document.querySelectorAll("#viewer img[data-image]").forEach((img) => { img.src = fieldPicture(viewerState.runId, img.dataset.image); });
}
/* Hover an object of a field's picture: its label, area and mean intensity in the channel shown. */
async function attachTips(img, runId, imageId) {
  const channel = viewerState.channel ? `?channel=${enc(viewerState.channel)}` : "";
  const info = await api("GET", `/api/runs/${enc(runId)}/images/${enc(imageId)}/objects${channel}`);
  const tip = $("#tip");
  img.addEventListener("mousemove", (event) => {
    const rect = img.getBoundingClientRect();
    const x = ((event.clientX - rect.left) / rect.width) * info.width, y = ((event.clientY - rect.top) / rect.height) * info.height;
    let best = null;
    for (const o of info.objects) {
      const [y0, x0, y1, x1] = o.bbox;
      if (y >= y0 && y < y1 && x >= x0 && x < x1 && (!best || o.area < best.area)) best = o;
    }
    if (!best) { tip.hidden = true; return; }
    tip.hidden = false; tip.style.left = `${event.clientX + 14}px`; tip.style.top = `${event.clientY + 10}px`;
    tip.textContent = `object ${best.label} · area ${fmt(best.area)} px² · mean intensity${viewerState.channel ? ` (${viewerState.channel})` : ""} ${fmt(best.mean_intensity)} a.u.`;
  });
  img.addEventListener("mouseleave", () => { tip.hidden = true; });
  img.dataset.tips = "ready"; // hovering answers from now on (tests wait for this)
}
function wellFields(plate, well) {
  return imageRows.filter((r) => r.plate === plate && r.well === well).sort((a, b) => (a.field > b.field ? 1 : a.field < b.field ? -1 : 0));
}
function openWell(runId, plate, well) {
  const rows = wellFields(plate, well);
  if (!rows.length) return;
  viewerState.runId = runId; viewerState.well = { plate, well }; viewerState.zoom = null;
  drawMontage();
  $(".viewer").scrollIntoView({ block: "nearest" });
}
function drawMontage() {
  const { runId, well: { plate, well } } = viewerState;
  const rows = wellFields(plate, well);
  const ok = rows.filter((r) => r.status === "ok");
  const nuclei = ok.reduce((n, r) => n + (r.object_count || 0), 0);
  const ids = rows.length <= 3 ? rows.map((r) => r.image_id).join(", ") : `${rows[0].image_id} … ${rows[rows.length - 1].image_id}`;
  $("#viewer-title").replaceChildren(`${plate} ${well} · ${rows.length} field${rows.length === 1 ? "" : "s"} · ${fmt(nuclei)} nuclei in all `, el("span", { class: "viewer-ids mono", text: ids }));
  const box = $("#viewer"); box.replaceChildren(viewerControls(drawMontage));
  const montage = el("div", { class: "montage", "data-well": well });
  let first = true;
  for (const r of rows) {
    if (r.status !== "ok") {
      montage.append(el("figure", { class: "tile failed" }, el("p", { class: "error small", text: `${r.error}: ${r.cause}` }), el("figcaption", { text: `field ${r.field} · failed` })));
      continue;
    }
    const img = el("img", { src: fieldPicture(runId, r.image_id), "data-image": r.image_id, alt: `${viewerState.outlines ? "outlines on " : ""}${r.image_id}${viewerState.channel ? " " + viewerState.channel : ""}` });
    if (first) { img.id = "overlay"; first = false; }
    const open = el("button", { type: "button", class: "tile-open", "data-image": r.image_id, "aria-label": `Open field ${r.field} (${r.image_id}) large` }, img);
    open.addEventListener("click", () => openImage(runId, r));
    montage.append(el("figure", { class: "tile" }, open, el("figcaption", { text: `field ${r.field} · ${fmt(r.object_count)} nuclei` })));
    attachTips(img, runId, r.image_id);
  }
  box.append(montage);
}
async function openImage(runId, row) {
  viewerState.runId = runId; viewerState.zoom = row;
  const redraw = () => openImage(runId, row);
  $("#viewer-title").textContent = `${row.image_id} · ${fmt(row.object_count)} nuclei`;
  const box = $("#viewer"); box.replaceChildren();
  const back = el("button", { type: "button", id: "viewer-back", text: `All fields of ${row.well}` });
  back.addEventListener("click", () => { viewerState.well = { plate: row.plate, well: row.well }; viewerState.zoom = null; drawMontage(); });
  box.append(viewerControls(redraw));
  box.querySelector(".viewer-controls").prepend(back);
  if (row.status !== "ok") { box.append(el("p", { class: "error", text: `${row.error}: ${row.cause}` })); return; }
  const img = el("img", { src: fieldPicture(runId, row.image_id), "data-image": row.image_id, alt: `${viewerState.outlines ? "outlines on " : ""}${row.image_id}`, id: "overlay", class: "zoomed" });
  box.append(img);
  await attachTips(img, runId, row.image_id);
}

function drawFailures(failures) {
  const card = $("#failures-card");
  card.hidden = failures.length === 0;
  $("#failure-count").textContent = String(failures.length);
  const body = $("#failures tbody"); body.replaceChildren();
  for (const f of failures) body.append(el("tr", {}, el("td", { class: "mono", text: f.item_id }), el("td", { text: f.kind }), el("td", { text: f.error }), el("td", { text: f.cause })));
}

function drawImages(runId, rows) {
  imageRows = rows;
  const present = new Set(rows.flatMap((r) => Object.keys(r.metrics)));
  const metricNames = [...present].filter((m) => /^Mean_Nuclei_AreaShape_Area$|^Mean_Nuclei_Intensity_MeanIntensity_|^Image_ForegroundFraction$/.test(m)).sort().slice(0, 5);
  const columns = [["image_id", "Image"], ["well", "Well"], ["field", "Field"], ["status", "Status"], ["object_count", "Nuclei"], ...metricNames.map((m) => [m, metricLabel(m)]), ["cause", "Cause"]];
  const numeric = new Set(["field", "object_count", ...metricNames]);
  /* a failed image has no count: "–" (and sorted last), never a 0 that reads as "no nuclei" */
  const value = (r, k) => (k === "object_count" && r.status !== "ok" ? null : k in r ? r[k] : r.metrics[k]);
  let sortKey = "image_id", dir = 1;
  const head = $("#images thead"); head.replaceChildren();
  const tr = el("tr");
  for (const [k, label] of columns) {
    const th = el("th", { class: numeric.has(k) ? "num" : "", text: label, "data-key": k, scope: "col", tabindex: "0", "aria-sort": "none" });
    const sort = () => { dir = sortKey === k ? -dir : 1; sortKey = k; draw(); };
    th.addEventListener("click", sort);
    th.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); } });
    tr.append(th);
  }
  head.append(tr);
  const filter = $("#image-filter");
  function draw() {
    head.querySelectorAll("th").forEach((th) => th.classList.toggle("asc", th.dataset.key === sortKey && dir === 1));
    head.querySelectorAll("th").forEach((th) => th.classList.toggle("desc", th.dataset.key === sortKey && dir === -1));
    head.querySelectorAll("th").forEach((th) => th.setAttribute("aria-sort", th.dataset.key !== sortKey ? "none" : dir === 1 ? "ascending" : "descending"));
    const q = filter.value.trim().toLowerCase();
    const shown = rows.filter((r) => !q || [r.image_id, r.well, r.status, r.error, r.cause].some((v) => v && String(v).toLowerCase().includes(q)));
    shown.sort((a, b) => { const x = value(a, sortKey), y = value(b, sortKey); return (x === y ? 0 : x === null || x === undefined ? 1 : y === null || y === undefined ? -1 : x < y ? -1 : 1) * dir; });
    const body = $("#images tbody"); body.replaceChildren();
    for (const r of shown) {
      const row = el("tr", { "data-image": r.image_id });
      for (const [k] of columns) {
        const v = value(r, k);
        const td = el("td", { class: numeric.has(k) ? "num" : "", "data-col": k });
        if (k === "status") td.append(el("span", { class: `status s-${r.status === "ok" ? "succeeded" : "failed"}`, text: r.status }));
        else if (k === "image_id") { const a = el("a", { href: "#", text: v }); a.addEventListener("click", (e) => { e.preventDefault(); openImage(runId, r); }); td.append(a); }
        else td.textContent = numeric.has(k) ? fmt(v) : v || "";
        row.append(td);
      }
      body.append(row);
    }
    $("#image-count").textContent = `${shown.length} of ${rows.length}`;
  }
  filter.oninput = draw;
  draw();
}

document.addEventListener("DOMContentLoaded", () => {
  /* No inline styles or handlers (the CSP forbids them): plate widths and the segmenter switch live here. */
  document.querySelectorAll("[data-cols]").forEach((p) => p.style.setProperty("--cols", p.dataset.cols));
  const segmenter = $("select#segmenter");
  if (segmenter) segmenter.addEventListener("change", () => { location.search = "?segmenter=" + encodeURIComponent(segmenter.value); });
  if ($("#exp-data")) initExperiment();
  if ($("#recipe-form")) initNewRun();
  if ($("#run-data")) initRun();
});

/* plateseg models page: paint scribbles on fields, train a model, list/upload/delete models.
   Vanilla JS over /api/models, no build step. An IIFE over app.js's helpers ($, el, csrf:
   base.html loads app.js first on every page). */
(function () {
  "use strict";

  const NUCLEUS = 2, BACKGROUND = 1, MAX_FIELDS = 3;
  const COLOURS = { 2: [31, 196, 106], 1: [224, 54, 143] };
  const num = (v) => (v === null || v === undefined ? "–" : Number(v).toLocaleString("en-US"));
  const kib = (n) => (n >= 1048576 ? `${(n / 1048576).toFixed(1)} MiB` : `${Math.max(1, Math.round(n / 1024))} KiB`);

  /* JSON API call; errors carry .fields ({field: message}) from 422 answers. */
  async function call(method, url, body) {
    const init = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (method !== "GET") init.headers["X-CSRF-Token"] = csrf();
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    const response = await fetch(url, init);
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok) {
      const fields = (data && data.fields) || {};
      let message = response.statusText || `HTTP ${response.status}`;
      if (data && typeof data.detail === "string") message = data.detail;
      else if (data && Array.isArray(data.detail)) {
        /* FastAPI request validation: [{loc: ["body", "fields", 0, "rle"], msg}] */
        for (const d of data.detail) {
          const key = (d.loc || []).filter((p) => p !== "body")[0] || "form";
          fields[key] = fields[key] || d.msg;
        }
        message = data.detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
      }
      if (response.status === 413) message = "too large for the server's request limit (PLATESEG_WEB_MAX_BODY)";
      const error = new Error(message);
      error.status = response.status; error.fields = fields;
      throw error;
    }
    return data;
  }

  function showFieldErrors(root, error, fallback) {
    root.querySelectorAll(".field-error").forEach((x) => { x.textContent = ""; });
    root.querySelectorAll(".invalid").forEach((x) => x.classList.remove("invalid"));
    if (fallback) fallback.textContent = "";
    if (!error) return;
    let placed = false;
    for (const [name, message] of Object.entries(error.fields || {})) {
      const slot = root.querySelector(`.field-error[data-field="${name}"]`);
      if (slot) { slot.textContent = message; placed = true; }
    }
    if (!placed && fallback) fallback.textContent = error.message;
  }

  /* ---------- the model list ---------- */
  let models = [];
  function provenance(m) {
    const p = m.provenance || {};
    if (p.origin === "trained") {
      const px = p.labelled_pixels || {};
      return `trained on ${p.experiment_id} · ${(p.image_ids || []).length} field${(p.image_ids || []).length === 1 ? "" : "s"} of ${p.channel} · ${num((px.nucleus || 0) + (px.background || 0))} px labelled · ${p.train_seconds} s`;
    }
    if (p.origin === "uploaded") return `uploaded${p.filename ? " from " + p.filename : ""}`;
    if (p.origin === "shipped") return "shipped with plateseg (see plateseg/models/README.md)";
    if (p.training) return `plateseg train: ${p.training.images} image(s), ${p.training.trees} trees, depth ${p.training.max_depth}`;
    return p.problem || "no provenance recorded";
  }
  function experimentForUse() {
    const select = $("#train-experiment");
    return select ? select.value : "";
  }
  function useHref(m) {
    const exp = experimentForUse();
    if (!exp) return null;
    const channel = ($("#train-channel") || {}).value || "";
    const q = new URLSearchParams({ segmenter: m.segmenter, model: m.name });
    if (channel) q.set("nuclei", channel);
    return `/experiments/${encodeURIComponent(exp)}/new-run?${q}`;
  }
  function drawModels(fresh) {
    const body = $("#models tbody"); body.replaceChildren();
    $("#model-count").textContent = `${models.filter((m) => m.source === "store").length} stored · ${models.filter((m) => m.source === "shipped").length} shipped`;
    if (!models.length) body.append(el("tr", {}, el("td", { colspan: "3", class: "empty", text: "No models yet." })));
    for (const m of models) {
      const name = el("div", { class: "name" }, m.name, el("span", { class: `kind ${m.kind}`, text: m.kind }));
      const created = m.created ? new Date(m.created).toLocaleString([], { dateStyle: "medium", timeStyle: "short" }) : "";
      const row = el("tr", { "data-model": m.name, class: m.name === fresh ? "fresh" : "" },
        el("td", {}, name, el("div", { class: "prov", text: provenance(m) }), created ? el("div", { class: "prov", text: `stored ${created}` }) : ""),
        el("td", { class: "num", text: kib(m.size) }));
      const actions = el("td", { class: "row-actions" });
      const href = useHref(m);
      if (href) actions.append(el("a", { class: "button", href, title: "new run with this model", text: "Use" }));
      if (m.source === "store") {
        const del = el("button", { type: "button", class: "delete", title: "delete from the store", text: "Delete" });
        del.addEventListener("click", async () => {
          if (!window.confirm(`Delete model ${m.name} from the store?`)) return;
          del.disabled = true;
          try { await call("DELETE", `/api/models/${encodeURIComponent(m.name)}`); await refreshModels(); }
          catch (error) { $("#models-error").textContent = error.message; del.disabled = false; }
        });
        actions.append(" ", del);
      }
      row.append(actions);
      body.append(row);
    }
  }
  async function refreshModels(fresh) {
    try { models = await call("GET", "/api/models"); $("#models-error").textContent = ""; }
    catch (error) { $("#models-error").textContent = error.message; }
    drawModels(fresh);
  }

  /* ---------- upload ---------- */
  function initUpload() {
    const form = $("#upload-form");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = $("#upload-button");
      const file = $("#upload-file").files[0];
      if (!file) { showFieldErrors(form, { fields: { file: "choose an .onnx file" } }, $("#upload-error")); return; }
      const name = $("#upload-name").value.trim() || file.name.replace(/\.onnx$/i, "");
      const data = new FormData();
      data.append("name", name); data.append("file", file); data.append("replace", $("#upload-replace").checked ? "true" : "false");
      button.disabled = true; $("#upload-status").textContent = "checking…";
      try {
        const m = await call("POST", "/api/models", data);
        showFieldErrors(form, null, $("#upload-error"));
        $("#upload-status").textContent = `stored ${m.name} (${kib(m.size)})`;
        form.reset();
        await refreshModels(m.name);
      } catch (error) {
        showFieldErrors(form, error, $("#upload-error")); $("#upload-status").textContent = "";
      } finally { button.disabled = false; }
    });
  }

  /* ---------- the scribble trainer ---------- */
  const trainer = { experiment: null, detail: null, fields: [], current: -1, brush: NUCLEUS, drawing: null, pointer: null };
  let canvas, ctx;

  function fieldIds() {
    return trainer.detail ? trainer.detail.plate_maps.flatMap((p) => Object.values(p.wells).flatMap((w) => w.fields.map((f) => f.image_id))) : [];
  }
  function current() { return trainer.fields[trainer.current] || null; }

  async function loadExperiment(id) {
    trainer.experiment = id; trainer.fields = []; trainer.current = -1;
    trainer.detail = await call("GET", `/api/experiments/${encodeURIComponent(id)}`);
    const channels = $("#train-channel"); channels.replaceChildren();
    for (const c of trainer.detail.channels) channels.append(el("option", { value: c, text: c }));
    const select = $("#train-field"); select.replaceChildren();
    for (const f of fieldIds()) select.append(el("option", { value: f, text: f }));
    const name = $("#model-name");
    if (!name.dataset.touched) name.value = `nuclei-${id}`.replace(/[^A-Za-z0-9._-]/g, "-").slice(0, 64);
    drawTabs(); render(); drawModels();
    if (fieldIds().length) await addField(fieldIds()[0]);
  }

  function loadImage(field) {
    const channel = $("#train-channel").value;
    return new Promise((resolve, reject) => {
      const img = new Image();
      img.onload = () => resolve(img);
      img.onerror = () => reject(new Error(`cannot load ${field} (${channel})`));
      img.src = `/api/models/canvas/${encodeURIComponent(trainer.experiment)}/${encodeURIComponent(field)}/${encodeURIComponent(channel)}.png`;
    });
  }

  async function addField(imageId) {
    const existing = trainer.fields.findIndex((f) => f.imageId === imageId);
    if (existing >= 0) { select(existing); return; }
    if (trainer.fields.length >= MAX_FIELDS) { $("#train-error").textContent = `Paint on at most ${MAX_FIELDS} fields: remove one first.`; return; }
    $("#train-error").textContent = "";
    const img = await loadImage(imageId);
    const mask = document.createElement("canvas");
    mask.width = img.naturalWidth; mask.height = img.naturalHeight;
    trainer.fields.push({ imageId, img, mask, strokes: [] });
    select(trainer.fields.length - 1);
  }

  function select(index) {
    trainer.current = index;
    const f = current();
    if (f) {
      canvas.width = f.img.naturalWidth; canvas.height = f.img.naturalHeight; canvas.dataset.image = f.imageId;
      canvas.style.maxWidth = `calc(72vh * ${f.img.naturalWidth / f.img.naturalHeight})`;  /* tall fields fit the screen */
    }
    canvas.classList.toggle("empty", !f);
    $("#canvas-empty").hidden = Boolean(f);
    drawTabs(); render();
  }

  function removeField(index) {
    trainer.fields.splice(index, 1);
    select(Math.min(trainer.current, trainer.fields.length - 1));
  }

  function strokeCounts(f) {
    const n = { 1: 0, 2: 0 };
    for (const s of f.strokes) n[s.brush] += 1;
    return n;
  }

  function drawTabs() {
    const box = $("#field-tabs"); box.replaceChildren();
    trainer.fields.forEach((f, i) => {
      const n = strokeCounts(f);
      const close = el("span", { class: "x", role: "button", title: "remove this field", text: "×" });
      close.addEventListener("click", (event) => { event.stopPropagation(); removeField(i); });
      const tab = el("button", { type: "button", class: "field-tab" + (i === trainer.current ? " active" : ""), role: "tab", "data-image": f.imageId },
        f.imageId, el("span", { class: "n" }, el("b", { class: "fg", text: String(n[2]) }), " / ", el("b", { class: "bg", text: String(n[1]) })), close);
      tab.title = `${n[2]} nucleus and ${n[1]} background strokes`;
      tab.addEventListener("click", () => select(i));
      box.append(tab);
    });
    const total = trainer.fields.reduce((acc, f) => { const n = strokeCounts(f); acc[1] += n[1]; acc[2] += n[2]; return acc; }, { 1: 0, 2: 0 });
    $("#paint-stats").textContent = trainer.fields.length
      ? `${trainer.fields.length} of ${MAX_FIELDS} fields · ${total[2]} nucleus, ${total[1]} background strokes`
      : "";
    $("#add-field").disabled = trainer.fields.length >= MAX_FIELDS;
  }

  function paintStroke(target, s) {
    const [r, g, b] = COLOURS[s.brush];
    target.strokeStyle = target.fillStyle = `rgb(${r}, ${g}, ${b})`;
    target.lineWidth = s.size; target.lineCap = "round"; target.lineJoin = "round";
    if (s.points.length === 1) {
      target.beginPath(); target.arc(s.points[0][0], s.points[0][1], s.size / 2, 0, 2 * Math.PI); target.fill();
      return;
    }
    target.beginPath(); target.moveTo(s.points[0][0], s.points[0][1]);
    for (const [x, y] of s.points.slice(1)) target.lineTo(x, y);
    target.stroke();
  }

  function redrawMask(f) {
    const m = f.mask.getContext("2d");
    m.clearRect(0, 0, f.mask.width, f.mask.height);
    for (const s of f.strokes) paintStroke(m, s);
  }

  function render() {
    const f = current();
    if (!f) return;
    ctx.globalAlpha = 1; ctx.drawImage(f.img, 0, 0);
    ctx.globalAlpha = 0.6; ctx.drawImage(f.mask, 0, 0); ctx.globalAlpha = 1;
    if (trainer.pointer) {
      const [x, y] = trainer.pointer, r = brushSize() / 2;
      const [cr, cg, cb] = COLOURS[trainer.brush];
      ctx.lineWidth = Math.max(1, canvas.width / canvas.clientWidth);
      ctx.strokeStyle = `rgb(${cr}, ${cg}, ${cb})`;
      ctx.beginPath(); ctx.arc(x, y, r, 0, 2 * Math.PI); ctx.stroke();
    }
  }

  /* brush diameter in canvas pixels (the slider is in screen pixels) */
  function brushSize() {
    const scale = canvas.clientWidth ? canvas.width / canvas.clientWidth : 1;
    return Math.max(1, Number($("#brush-size").value) * scale);
  }
  function at(event) {
    const rect = canvas.getBoundingClientRect();
    return [((event.clientX - rect.left) / rect.width) * canvas.width, ((event.clientY - rect.top) / rect.height) * canvas.height];
  }

  function setBrush(value) {
    trainer.brush = value;
    document.querySelectorAll(".brush").forEach((b) => {
      const on = Number(b.dataset.brush) === value;
      b.classList.toggle("active", on); b.setAttribute("aria-checked", String(on));
    });
    render();
  }

  function initCanvas() {
    canvas = $("#scribble-canvas"); ctx = canvas.getContext("2d");
    canvas.classList.add("empty");
    canvas.addEventListener("pointerdown", (event) => {
      const f = current();
      if (!f || event.button !== 0) return;
      canvas.setPointerCapture(event.pointerId);
      trainer.drawing = { brush: trainer.brush, size: brushSize(), points: [at(event)] };
      f.strokes.push(trainer.drawing);
      paintStroke(f.mask.getContext("2d"), trainer.drawing);
      render();
    });
    canvas.addEventListener("pointermove", (event) => {
      trainer.pointer = at(event);
      const f = current();
      if (trainer.drawing && f) {
        trainer.drawing.points.push(trainer.pointer);
        redrawMask(f);
      }
      render();
    });
    const end = () => { if (trainer.drawing) { trainer.drawing = null; drawTabs(); } };
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
    canvas.addEventListener("pointerleave", () => { trainer.pointer = null; render(); });
    document.querySelectorAll(".brush").forEach((b) => b.addEventListener("click", () => setBrush(Number(b.dataset.brush))));
    const size = $("#brush-size");
    size.addEventListener("input", () => { $("#brush-size-value").textContent = `${size.value} px`; render(); });
    $("#undo").addEventListener("click", undo);
    $("#clear").addEventListener("click", () => { const f = current(); if (f) { f.strokes = []; redrawMask(f); drawTabs(); render(); } });
    document.addEventListener("keydown", (event) => {
      if (event.target instanceof HTMLInputElement || event.target instanceof HTMLSelectElement) return;
      if ((event.ctrlKey || event.metaKey) && event.key === "z") { event.preventDefault(); undo(); }
      else if (event.key === "f" || event.key === "F") setBrush(NUCLEUS);
      else if (event.key === "b" || event.key === "B") setBrush(BACKGROUND);
    });
  }
  function undo() {
    const f = current();
    if (f && f.strokes.length) { f.strokes.pop(); redrawMask(f); drawTabs(); render(); }
  }

  /* the label mask of one field, run-length encoded row by row: [value, length, …] */
  function encode(f) {
    const { width, height } = f.mask;
    const data = f.mask.getContext("2d").getImageData(0, 0, width, height).data;
    const rle = [];
    let value = -1, length = 0;
    for (let i = 0; i < width * height; i++) {
      const o = i * 4;
      const v = data[o + 3] < 128 ? 0 : data[o + 1] > data[o] ? NUCLEUS : BACKGROUND;
      if (v === value) length++;
      else { if (length) rle.push(value, length); value = v; length = 1; }
    }
    rle.push(value, length);
    return { image_id: f.imageId, height, width, rle };
  }

  async function train() {
    const root = $("#trainer"), button = $("#train-button");
    const painted = trainer.fields.filter((f) => f.strokes.length);
    if (!painted.length) { showFieldErrors(root, { fields: { scribbles: "paint some nucleus and background strokes first" } }, $("#train-error")); return; }
    const body = {
      name: $("#model-name").value.trim(), experiment_id: trainer.experiment, channel: $("#train-channel").value,
      fields: painted.map(encode), replace: $("#model-replace").checked,
    };
    button.disabled = true; button.classList.add("training"); button.textContent = "Training…";
    const started = performance.now();
    try {
      const result = await call("POST", "/api/models/train", body);
      showFieldErrors(root, null, $("#train-error"));
      showResult(result, (performance.now() - started) / 1000);
      await refreshModels(result.model.name);
    } catch (error) {
      showFieldErrors(root, error, $("#train-error"));
    } finally { button.disabled = false; button.classList.remove("training"); button.textContent = "Train model"; }
  }

  function showResult(result, wall) {
    const box = $("#train-previews"); box.replaceChildren();
    for (const p of result.previews) {
      box.append(el("figure", { class: "preview", "data-image": p.image_id },
        el("img", { src: p.overlay, alt: `outlines of ${result.model.name} on ${p.image_id}` }),
        el("figcaption", {}, el("span", { class: "mono", text: p.image_id }), el("span", {}, el("span", { class: "count-big", text: num(p.object_count) }), " nuclei"))));
    }
    const px = result.labelled;
    $("#train-summary").textContent = `${result.model.name} · ${kib(result.model.size)} · trained in ${result.seconds.toFixed(1)} s on ${num(px.nucleus)} nucleus and ${num(px.background)} background pixels · ${wall.toFixed(1)} s in all, with the preview`;
    $("#use-model").href = result.use_url;
    $("#train-result").hidden = false;
    $("#model-replace").checked = true;
    $("#train-result").scrollIntoView({ behavior: "smooth", block: "nearest" });
  }

  function initTrainer() {
    initCanvas();
    const pick = $("#train-experiment");
    pick.addEventListener("change", () => loadExperiment(pick.value).catch((e) => { $("#train-error").textContent = e.message; }));
    $("#train-channel").addEventListener("change", async () => {
      try {
        for (const f of trainer.fields) f.img = await loadImage(f.imageId);
        select(trainer.current); drawModels();
      } catch (error) { $("#train-error").textContent = error.message; }
    });
    $("#add-field").addEventListener("click", () => addField($("#train-field").value).catch((e) => { $("#train-error").textContent = e.message; }));
    $("#model-name").addEventListener("input", (event) => { event.target.dataset.touched = "1"; });
    $("#train-button").addEventListener("click", train);
    loadExperiment(pick.value)
      .then(() => { document.body.dataset.trainerReady = "true"; })
      .catch((e) => { $("#train-error").textContent = e.message; });
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (!$("#models-data")) return;
    models = JSON.parse($("#models-data").textContent);
    drawModels();
    initUpload();
    if ($("#train-experiment")) initTrainer();
  });
})();

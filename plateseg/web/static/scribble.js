/* plateseg models page: pick fields on the plate, paint corrections, train a pixel
   classifier. models-list.js (loaded first) holds the model list and the shared helpers;
   finetune.js adds the fine-tune job on top (all through window.platesegModels). Vanilla
   JS over /api/models and /api/finetune, no build step; app.js gives $, el, csrf.

   Each field keeps one label per canvas pixel (0 unlabelled, 1 background, 2 nucleus,
   3 separator) rebuilt from its list of strokes, so undo is exact and what is sent is
   what is shown. Tools: nucleus / background / split brushes, draw a missing nucleus
   (filled outline: nucleus inside, a separator ring on it), erase an outlined object
   (its pixels become background). */
(function () {
  "use strict";

  const BACKGROUND = 1, NUCLEUS = 2, SEPARATOR = 3, MAX_FIELDS = 3, RING = 4;
  const COLOURS = { 1: [224, 54, 143], 2: [31, 196, 106], 3: [40, 150, 255] };
  const OUTLINE = [255, 221, 0];
  const api = window.platesegModels;
  const { call, showFieldErrors, refreshModels, num, kib } = api;
  /* the list's "Use" links follow the experiment and channel chosen here */
  const drawModels = () => document.dispatchEvent(new CustomEvent("trainer-changed"));

  /* ---------- fields: the plate picker, tabs, the base model's objects ---------- */
  const trainer = { experiment: null, detail: null, fields: [], current: -1, tool: "nucleus", drawing: null, pointer: null, outlines: true };
  let canvas, ctx, scratch;
  const TOOLS = { nucleus: NUCLEUS, background: BACKGROUND, split: SEPARATOR };
  const fineTuning = () => $("#trainer").dataset.mode === "finetune";

  function fieldIds() {
    return trainer.detail ? trainer.detail.plate_maps.flatMap((p) => Object.values(p.wells).flatMap((w) => w.fields.map((f) => f.image_id))) : [];
  }
  function current() { return trainer.fields[trainer.current] || null; }
  function baseModel() { return ($("#ft-base") || {}).value || "nuclei-unet"; }

  async function loadExperiment(id) {
    trainer.experiment = id; trainer.fields = []; trainer.current = -1;
    trainer.detail = await call("GET", `/api/experiments/${encodeURIComponent(id)}`);
    const channels = $("#train-channel"); channels.replaceChildren();
    for (const c of trainer.detail.channels) channels.append(el("option", { value: c, text: c }));
    const select = $("#train-field"); select.replaceChildren();
    for (const f of fieldIds()) select.append(el("option", { value: f, text: f }));
    const name = $("#model-name");
    if (!name.dataset.touched) name.value = `nuclei-${id}`.replace(/[^A-Za-z0-9._-]/g, "-").slice(0, 64);
    drawPlate(); drawTabs(); render(); drawModels();
    document.dispatchEvent(new CustomEvent("experiment-loaded", { detail: { fields: fieldIds() } }));
    if (fieldIds().length) await addField(fieldIds()[0]);
  }

  function drawPlate() {
    const box = $("#plate-pick"); box.replaceChildren();
    if (!trainer.detail) return;
    for (const plate of trainer.detail.plate_maps) {
      const grid = el("div", { class: "plate mini", "data-plate": plate.plate });
      grid.style.setProperty("--cols", plate.columns);
      grid.append(el("div", { class: "corner" }));
      for (let c = 1; c <= plate.columns; c++) grid.append(el("div", { class: "colhead", text: String(c) }));
      for (let r = 0; r < plate.rows; r++) {
        const letter = r < 26 ? String.fromCharCode(65 + r) : "A" + String.fromCharCode(39 + r);
        grid.append(el("div", { class: "rowhead", text: letter }));
        for (let c = 1; c <= plate.columns; c++) {
          const w = plate.wells[`${letter}${String(c).padStart(2, "0")}`];
          if (!w) { grid.append(el("div", { class: "wellpick none" })); continue; }
          const cell = el("div", { class: "wellpick has", title: `${plate.plate} ${w.well}` });
          for (const f of w.fields) {
            const b = el("button", { type: "button", class: "fieldpick", "data-image": f.image_id, title: `${f.image_id}: click to correct this field` });
            b.addEventListener("click", () => addField(f.image_id).catch((e) => { $("#train-error").textContent = e.message; }));
            cell.append(b);
          }
          grid.append(cell);
        }
      }
      box.append(el("div", { class: "plate-name small muted", text: `Plate ${plate.plate} · click a field (a square in a well) to correct it` }), grid);
    }
    markPlate();
  }
  function markPlate() {
    document.querySelectorAll("#plate-pick .fieldpick").forEach((b) => {
      const i = trainer.fields.findIndex((f) => f.imageId === b.dataset.image);
      b.classList.toggle("picked", i >= 0);
      b.classList.toggle("painted", i >= 0 && trainer.fields[i].strokes.length > 0);
      b.classList.toggle("active", i >= 0 && i === trainer.current);
    });
  }

  /* how fields are read, as a run with the recipe's "planes" reads them: the first plane,
     or the maximum projection of the planes (plane files, or a Z-stack in one file) */
  function planes() { return ($("#train-planes") || {}).value || "first"; }

  /* the canvas picture; when it cannot load, the server's reason (a Z-stack read as its
     first plane says how to project it: here, the Z planes menu) */
  function loadImage(field) {
    const channel = $("#train-channel").value;
    const url = `/api/models/canvas/${encodeURIComponent(trainer.experiment)}/${encodeURIComponent(field)}/${encodeURIComponent(channel)}.png?${new URLSearchParams({ planes: planes() })}`;
    return new Promise((resolve, reject) => {
      const img = new Image();
      img.onload = () => resolve(img);
      img.onerror = async () => {
        const why = await call("GET", url).then(() => "", (error) => error.message);
        const hint = why.includes('"planes": "max"') ? " Choose Z planes: maximum projection." : "";
        reject(new Error(`cannot load ${field} (${channel})${why ? ": " + why : ""}${hint}`));
      };
      img.src = url;
    });
  }

  /* the base model's objects on a field: ids per canvas pixel and an outline layer */
  async function loadObjects(f) {
    f.ids = null; f.outline = null; f.objectCount = null;
    if (!fineTuning()) return;
    const q = new URLSearchParams({ channel: $("#train-channel").value, model: baseModel(), planes: planes() });
    const data = await call("GET", `/api/finetune/objects/${encodeURIComponent(trainer.experiment)}/${encodeURIComponent(f.imageId)}?${q}`);
    if (data.width !== f.mask.width || data.height !== f.mask.height) return;
    const ids = new Int32Array(data.width * data.height);
    let at = 0;
    for (let i = 0; i < data.rle.length; i += 2) { ids.fill(data.rle[i], at, at + data.rle[i + 1]); at += data.rle[i + 1]; }
    const layer = document.createElement("canvas");
    layer.width = data.width; layer.height = data.height;
    const lctx = layer.getContext("2d"), image = lctx.createImageData(data.width, data.height);
    const w = data.width;
    for (let i = 0; i < ids.length; i++) {
      const v = ids[i];
      if (!v) continue;
      const x = i % w;
      if (x === 0 || x === w - 1 || i < w || i >= ids.length - w || ids[i - 1] !== v || ids[i + 1] !== v || ids[i - w] !== v || ids[i + w] !== v) {
        image.data.set([...OUTLINE, 255], i * 4);
      }
    }
    lctx.putImageData(image, 0, 0);
    Object.assign(f, { ids, outline: layer, objectCount: data.count, objectModel: data.model });
  }
  async function reloadObjects() {
    for (const f of trainer.fields) {
      try { await loadObjects(f); } catch (error) { $("#train-error").textContent = error.message; }
    }
    drawTabs(); render();
  }

  async function addField(imageId) {
    const existing = trainer.fields.findIndex((f) => f.imageId === imageId);
    if (existing >= 0) { select(existing); return; }
    if (trainer.fields.length >= MAX_FIELDS) { $("#train-error").textContent = `Correct at most ${MAX_FIELDS} fields: remove one first.`; return; }
    $("#train-error").textContent = "";
    const img = await loadImage(imageId);
    const mask = document.createElement("canvas");
    mask.width = img.naturalWidth; mask.height = img.naturalHeight;
    const f = { imageId, img, mask, strokes: [], labels: new Uint8Array(mask.width * mask.height) };
    trainer.fields.push(f);
    select(trainer.fields.length - 1);
    try { await loadObjects(f); } catch (error) { $("#train-error").textContent = error.message; }
    drawTabs(); render();
  }

  function select(index) {
    trainer.current = index;
    const f = current();
    if (f) {
      canvas.width = f.img.naturalWidth; canvas.height = f.img.naturalHeight; canvas.dataset.image = f.imageId;
      canvas.style.maxWidth = `calc(72vh * ${f.img.naturalWidth / f.img.naturalHeight})`;  /* tall fields fit the screen */
      scratch.width = canvas.width; scratch.height = canvas.height;
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
    const n = { nucleus: 0, background: 0, split: 0, draw: 0, erase: 0 };
    for (const s of f.strokes) n[s.tool] += 1;
    return n;
  }
  function extras(n) {
    const parts = [];
    if (n.split) parts.push(`${n.split} split`);
    if (n.draw) parts.push(`${n.draw} drawn`);
    if (n.erase) parts.push(`${n.erase} erased`);
    return parts.length ? `, ${parts.join(", ")}` : "";
  }

  function drawTabs() {
    const box = $("#field-tabs"); box.replaceChildren();
    trainer.fields.forEach((f, i) => {
      const n = strokeCounts(f);
      const close = el("span", { class: "x", role: "button", title: "remove this field", text: "×" });
      close.addEventListener("click", (event) => { event.stopPropagation(); removeField(i); });
      const tab = el("button", { type: "button", class: "field-tab" + (i === trainer.current ? " active" : ""), role: "tab", "data-image": f.imageId },
        f.imageId, el("span", { class: "n" }, el("b", { class: "fg", text: String(n.nucleus + n.draw) }), " / ", el("b", { class: "bg", text: String(n.background + n.erase) })), close);
      tab.title = `${n.nucleus} nucleus and ${n.background} background strokes${extras(n)}`;
      tab.addEventListener("click", () => select(i));
      box.append(tab);
    });
    const total = { nucleus: 0, background: 0, split: 0, draw: 0, erase: 0 };
    for (const f of trainer.fields) { const n = strokeCounts(f); for (const k in total) total[k] += n[k]; }
    $("#paint-stats").textContent = trainer.fields.length
      ? `${trainer.fields.length} of ${MAX_FIELDS} fields · ${total.nucleus} nucleus, ${total.background} background strokes${extras(total)}`
      : "";
    $("#add-field").disabled = trainer.fields.length >= MAX_FIELDS;
    const f = current(), info = $("#outline-info");
    info.textContent = f && f.objectCount !== null && f.objectCount !== undefined && fineTuning()
      ? `${f.objectModel} finds ${num(f.objectCount)} objects on ${f.imageId} (yellow outlines)` : "";
    markPlate();
  }

  /* ---------- strokes → labels ---------- */
  function tracePath(target, points) {
    target.beginPath(); target.moveTo(points[0][0], points[0][1]);
    for (const [x, y] of points.slice(1)) target.lineTo(x, y);
  }
  function brushPath(target, s) {
    target.lineWidth = s.size; target.lineCap = "round"; target.lineJoin = "round";
    const [x0, y0] = s.points[0];
    if (s.points.every(([x, y]) => Math.abs(x - x0) < 0.5 && Math.abs(y - y0) < 0.5)) {
      target.beginPath(); target.arc(s.points[0][0], s.points[0][1], s.size / 2, 0, 2 * Math.PI); target.fill();
    } else { tracePath(target, s.points); target.stroke(); }
  }
  /* the canvas pixels a drawing covers (alpha >= 128 on the scratch canvas) */
  function covered(points, draw, pad) {
    const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
    const x0 = Math.max(0, Math.floor(Math.min(...xs) - pad)), y0 = Math.max(0, Math.floor(Math.min(...ys) - pad));
    const x1 = Math.min(scratch.width, Math.ceil(Math.max(...xs) + pad)), y1 = Math.min(scratch.height, Math.ceil(Math.max(...ys) + pad));
    if (x1 <= x0 || y1 <= y0) return new Int32Array(0);
    const s = scratch.getContext("2d", { willReadFrequently: true });
    s.clearRect(0, 0, scratch.width, scratch.height);
    s.fillStyle = s.strokeStyle = "#000";
    draw(s);
    const data = s.getImageData(x0, y0, x1 - x0, y1 - y0).data, found = [];
    for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) {
      if (data[((y - y0) * (x1 - x0) + (x - x0)) * 4 + 3] >= 128) found.push(y * scratch.width + x);
    }
    return Int32Array.from(found);
  }
  function finishStroke(f, s) {
    if (s.tool === "draw") {
      if (s.points.length < 3) return false;
      const inside = covered(s.points, (t) => { tracePath(t, s.points); t.closePath(); t.fill(); }, 2);
      if (inside.length < 9) return false;
      const ring = covered(s.points, (t) => { t.lineWidth = RING; t.lineJoin = "round"; tracePath(t, s.points); t.closePath(); t.stroke(); }, RING);
      s.writes = [[NUCLEUS, inside], [SEPARATOR, ring]];
    } else {
      s.writes = [[TOOLS[s.tool], covered(s.points, (t) => brushPath(t, s), s.size)]];
    }
    delete s.points;
    f.strokes.push(s);
    return true;
  }
  function rebuild(f) {
    f.labels.fill(0);
    for (const s of f.strokes) for (const [value, where] of s.writes) for (const i of where) f.labels[i] = value;
    const m = f.mask.getContext("2d"), image = m.createImageData(f.mask.width, f.mask.height);
    for (let i = 0; i < f.labels.length; i++) {
      const v = f.labels[i];
      if (v) image.data.set([...COLOURS[v], 255], i * 4);
    }
    m.putImageData(image, 0, 0);
  }

  function render() {
    const f = current();
    if (!f) return;
    ctx.globalAlpha = 1; ctx.drawImage(f.img, 0, 0);
    if (f.outline && trainer.outlines && fineTuning()) ctx.drawImage(f.outline, 0, 0);
    ctx.globalAlpha = 0.6; ctx.drawImage(f.mask, 0, 0); ctx.globalAlpha = 1;
    const d = trainer.drawing;
    const colour = (value) => `rgb(${COLOURS[value].join(", ")})`;
    if (d && d.points) {
      ctx.globalAlpha = 0.6;
      if (d.tool === "draw") {
        ctx.strokeStyle = colour(SEPARATOR); ctx.fillStyle = colour(NUCLEUS); ctx.lineWidth = RING;
        tracePath(ctx, d.points); ctx.closePath(); ctx.fill(); ctx.stroke();
      } else { ctx.strokeStyle = ctx.fillStyle = colour(TOOLS[d.tool]); brushPath(ctx, d); }
      ctx.globalAlpha = 1;
    }
    if (trainer.pointer && TOOLS[trainer.tool]) {
      const [x, y] = trainer.pointer, r = brushSize() / 2;
      ctx.lineWidth = Math.max(1, canvas.width / canvas.clientWidth);
      ctx.strokeStyle = colour(TOOLS[trainer.tool]);
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

  function setTool(tool) {
    if (!fineTuning() && !["nucleus", "background"].includes(tool)) tool = "nucleus";
    trainer.tool = tool;
    document.querySelectorAll(".brush").forEach((b) => {
      const on = b.dataset.tool === tool;
      b.classList.toggle("active", on); b.setAttribute("aria-checked", String(on));
    });
    canvas.dataset.tool = tool;
    render();
  }

  function erase(f, point) {
    const x = Math.floor(point[0]), y = Math.floor(point[1]);
    const id = f.ids ? f.ids[y * f.mask.width + x] : 0;
    if (!id) { $("#train-error").textContent = f.ids ? "No object there: click inside a yellow outline to erase it." : "The outlines are not loaded yet."; return; }
    $("#train-error").textContent = "";
    const where = [];
    for (let i = 0; i < f.ids.length; i++) if (f.ids[i] === id) where.push(i);
    f.strokes.push({ tool: "erase", writes: [[BACKGROUND, Int32Array.from(where)]] });
    rebuild(f); drawTabs(); render();
  }

  function initCanvas() {
    canvas = $("#scribble-canvas"); ctx = canvas.getContext("2d");
    scratch = document.createElement("canvas");
    canvas.classList.add("empty");
    canvas.addEventListener("pointerdown", (event) => {
      const f = current();
      if (!f || event.button !== 0) return;
      if (trainer.tool === "erase") { erase(f, at(event)); return; }
      canvas.setPointerCapture(event.pointerId);
      trainer.drawing = { tool: trainer.tool, size: brushSize(), points: [at(event)] };
      render();
    });
    canvas.addEventListener("pointermove", (event) => {
      trainer.pointer = at(event);
      if (trainer.drawing) trainer.drawing.points.push(trainer.pointer);
      render();
    });
    const end = () => {
      const f = current(), d = trainer.drawing;
      if (!d || !f) return;
      if (finishStroke(f, d)) rebuild(f);
      trainer.drawing = null;
      drawTabs(); render();
    };
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
    canvas.addEventListener("pointerleave", () => { trainer.pointer = null; render(); });
    document.querySelectorAll(".brush").forEach((b) => b.addEventListener("click", () => setTool(b.dataset.tool)));
    const size = $("#brush-size");
    size.addEventListener("input", () => { $("#brush-size-value").textContent = `${size.value} px`; render(); });
    $("#undo").addEventListener("click", undo);
    $("#clear").addEventListener("click", () => { const f = current(); if (f) { f.strokes = []; rebuild(f); drawTabs(); render(); } });
    $("#show-outlines").addEventListener("change", (event) => { trainer.outlines = event.target.checked; render(); });
    const keys = { f: "nucleus", b: "background", s: "split", d: "draw", e: "erase" };
    document.addEventListener("keydown", (event) => {
      if (event.target instanceof HTMLInputElement || event.target instanceof HTMLSelectElement) return;
      if ((event.ctrlKey || event.metaKey) && event.key === "z") { event.preventDefault(); undo(); }
      else if (keys[event.key.toLowerCase()] && !event.ctrlKey && !event.metaKey) setTool(keys[event.key.toLowerCase()]);
    });
  }
  function undo() {
    const f = current();
    if (f && f.strokes.length) { f.strokes.pop(); rebuild(f); drawTabs(); render(); }
  }

  /* the label mask of one field, run-length encoded row by row: [value, length, …];
     the pixel classifier knows no separator (sent as unlabelled) */
  function encode(f, separators) {
    const { width, height } = f.mask, rle = [];
    let value = -1, length = 0;
    for (let i = 0; i < width * height; i++) {
      let v = f.labels[i];
      if (v === SEPARATOR && !separators) v = 0;
      if (v === value) length++;
      else { if (length) rle.push(value, length); value = v; length = 1; }
    }
    rle.push(value, length);
    return { image_id: f.imageId, height, width, rle };
  }

  /* ---------- the pixel classifier ---------- */
  async function train() {
    const root = $("#trainer"), button = $("#train-button");
    const painted = trainer.fields.filter((f) => f.strokes.length);
    if (!painted.length) { showFieldErrors(root, { fields: { scribbles: "paint some nucleus and background strokes first" } }, $("#train-error")); return; }
    const body = {
      name: $("#model-name").value.trim(), experiment_id: trainer.experiment, channel: $("#train-channel").value,
      planes: planes(), fields: painted.map((f) => encode(f, false)), replace: $("#model-replace").checked,
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

  function setMode(mode) {
    $("#trainer").dataset.mode = mode;
    document.querySelectorAll('input[name="method"]').forEach((r) => { r.checked = r.value === mode; });
    setTool(trainer.tool);
    reloadObjects();
  }

  function initTrainer() {
    initCanvas();
    const pick = $("#train-experiment");
    pick.addEventListener("change", () => loadExperiment(pick.value).catch((e) => { $("#train-error").textContent = e.message; }));
    /* another channel or another reading of the planes: the same fields, pictures and
       outlines read anew (a field refused before, as a Z-stack read as its first plane,
       is tried again) */
    const reread = async () => {
      drawModels();
      try {
        $("#train-error").textContent = "";
        for (const f of trainer.fields) f.img = await loadImage(f.imageId);
        select(trainer.current); await reloadObjects();
        if (!trainer.fields.length && fieldIds().length) await addField(fieldIds()[0]);
      } catch (error) { $("#train-error").textContent = error.message; }
    };
    $("#train-channel").addEventListener("change", reread);
    $("#train-planes").addEventListener("change", reread);
    $("#add-field").addEventListener("click", () => addField($("#train-field").value).catch((e) => { $("#train-error").textContent = e.message; }));
    $("#model-name").addEventListener("input", (event) => { event.target.dataset.touched = "1"; });
    $("#train-button").addEventListener("click", train);
    document.querySelectorAll('input[name="method"]').forEach((r) => r.addEventListener("change", () => setMode(r.value)));
    setTool("nucleus");
    loadExperiment(pick.value)
      .then(() => { document.body.dataset.trainerReady = "true"; })
      .catch((e) => { $("#train-error").textContent = e.message; });
  }

  Object.assign(api, {
    reloadObjects, setMode, encode, planes,
    state: () => trainer,
    painted: () => trainer.fields.filter((f) => f.strokes.length),
  });

  document.addEventListener("DOMContentLoaded", () => {
    if ($("#models-data") && $("#train-experiment")) initTrainer();
  });
})();

/* plateseg models page: the models in the store (list, delete, "Use", model card) and the
   upload form; the helpers the trainer scripts share (window.platesegModels: call,
   showFieldErrors, refreshModels, number formats). scribble.js paints corrections and
   trains the pixel classifier, finetune.js runs fine-tune jobs. Vanilla JS, no build
   step, over app.js's helpers ($, el, csrf: base.html loads app.js first). */
(function () {
  "use strict";

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
  const projected = (p) => (p.planes === "max" ? " (maximum projection)" : "");
  function provenance(m) {
    const p = m.provenance || {};
    if (p.origin === "trained") {
      const px = p.labelled_pixels || {};
      return `trained on ${p.experiment_id} · ${(p.image_ids || []).length} field${(p.image_ids || []).length === 1 ? "" : "s"} of ${p.channel}${projected(p)} · ${num((px.nucleus || 0) + (px.background || 0))} px labelled · ${p.train_seconds} s`;
    }
    if (p.origin === "fine-tuned") {
      const a = (p.evaluation || {}).agreement || {};
      const agree = a.after !== undefined && a.after !== null ? ` · label agreement ${pct(a.before)} → ${pct(a.after)}` : "";
      return `fine-tuned from ${(p.base || {}).name} on ${p.experiment_id} · ${(p.fields || []).length} field(s)${projected(p)} · ${p.steps} steps, ${p.seconds} s${agree}`;
    }
    if (p.origin === "uploaded") return `uploaded${p.filename ? " from " + p.filename : ""}`;
    if (p.origin === "shipped") return "shipped with plateseg (see plateseg/models/README.md)";
    if (p.training) return `plateseg train: ${p.training.images} image(s), ${p.training.trees} trees, depth ${p.training.max_depth}`;
    return p.problem || "no provenance recorded";
  }
  const pct = (v) => (v === null || v === undefined ? "–" : `${(100 * v).toFixed(1)} %`);
  function useHref(m) {
    const exp = ($("#train-experiment") || {}).value || "";
    if (!exp) return null;
    /* a model runs on the channel it was taught on when the page's experiment has a
       channel of that name; otherwise on the page's channel menu */
    const menu = $("#train-channel");
    const taught = (m.provenance || {}).channel;
    const offered = menu ? Array.from(menu.options, (o) => o.value) : [];
    const channel = (taught && offered.includes(taught) ? taught : (menu || {}).value) || "";
    const q = new URLSearchParams({ segmenter: m.segmenter, model: m.name });
    if (channel) q.set("nuclei", channel);
    /* a model taught on projections runs on them (its card says so); any other model
       reads the fields as the page shows them */
    const planes = (m.provenance || {}).planes || ($("#train-planes") || {}).value;
    if (planes === "max") q.set("planes", "max");
    return `/experiments/${encodeURIComponent(exp)}/new-run?${q}`;
  }
  function drawModels(fresh) {
    const body = $("#models tbody"); body.replaceChildren();
    $("#model-count").textContent = `${models.filter((m) => m.source === "store").length} stored · ${models.filter((m) => m.source === "shipped").length} shipped`;
    if (!models.length) body.append(el("tr", {}, el("td", { colspan: "3", class: "empty", text: "No models yet." })));
    for (const m of models) {
      const name = el("div", { class: "name" }, m.name, el("span", { class: `kind ${m.kind}`, text: m.kind }));
      const created = m.created ? new Date(m.created).toLocaleString([], { dateStyle: "medium", timeStyle: "short" }) : "";
      const info = el("td", {}, name, el("div", { class: "prov", text: provenance(m) }), created ? el("div", { class: "prov", text: `stored ${created}` }) : "");
      if (m.source === "store" && (m.provenance || {}).origin === "fine-tuned") {
        info.append(el("div", { class: "prov" }, el("a", { href: `/api/finetune/cards/${encodeURIComponent(m.name)}`, class: "card-link", text: "model card" })));
      }
      const row = el("tr", { "data-model": m.name, class: m.name === fresh ? "fresh" : "" }, info, el("td", { class: "num", text: kib(m.size) }));
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
    document.dispatchEvent(new CustomEvent("models-changed"));
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

  window.platesegModels = { call, showFieldErrors, refreshModels, num, pct, kib, models: () => models };

  document.addEventListener("DOMContentLoaded", () => {
    if (!$("#models-data")) return;
    models = JSON.parse($("#models-data").textContent);
    drawModels();
    initUpload();
    document.addEventListener("trainer-changed", () => drawModels());
  });
})();

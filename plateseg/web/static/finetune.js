/* plateseg models page: fine-tune the base model from the corrections painted with
   scribble.js (window.platesegModels). Starts a job (POST /api/finetune), polls its
   progress, cancels it, and shows what the model learned: objects and label agreement
   before/after on each corrected field and on one field left unlabelled. */
(function () {
  "use strict";

  let api, job = null, timer = null;
  const pct = (v) => api.pct(v);

  function fillBases(selected) {
    const select = $("#ft-base"), keep = selected || select.value || "nuclei-unet";
    const names = api.models().filter((m) => m.kind === "nuclei-3class").map((m) => m.name);
    if (!names.includes(keep)) names.unshift(keep);
    select.replaceChildren(...names.map((n) => el("option", { value: n, text: n })));
    select.value = keep;
  }

  function fillCheckFields(ids) {
    const select = $("#ft-check");
    select.replaceChildren(el("option", { value: "", text: "auto: the first field you did not correct" }), ...ids.map((i) => el("option", { value: i, text: i })));
  }

  async function checkStatus() {
    try {
      const status = await api.call("GET", "/api/finetune/status");
      if (!status.available) {
        $("#mode-finetune").disabled = true;
        $("#ft-unavailable").textContent = status.reason;
        $("#ft-unavailable").hidden = false;
        api.setMode("forest");
      }
      if (status.running) { job = status.running; showProgress(job); poll(); }
    } catch (error) { $("#ft-error").textContent = error.message; }
  }

  function showProgress(p) {
    $("#ft-progress").hidden = false;
    $("#ft-bar-fill").style.width = `${Math.round(100 * (p.fraction || 0))}%`;
    $("#ft-bar").setAttribute("aria-valuenow", String(Math.round(100 * (p.fraction || 0))));
    const fold = p.folds ? ` (${p.fold} of ${p.folds})` : "";
    $("#ft-phase").textContent = `${p.phase}${fold}`;
    $("#ft-step").textContent = p.steps ? `step ${p.step} of ${p.steps}` : "";
    $("#ft-loss").textContent = p.loss === null || p.loss === undefined ? "" : `loss ${p.loss.toFixed(3)}`;
    $("#ft-elapsed").textContent = `${Math.round(p.elapsed_seconds)} s`;
    const running = p.status === "running";
    $("#ft-cancel").hidden = !running;
    $("#finetune-button").disabled = running;
    $("#ft-progress").dataset.status = p.status;
  }

  function poll() {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      try {
        const p = await api.call("GET", `/api/finetune/jobs/${job.job_id}`);
        job = p; showProgress(p);
        if (p.status === "running") { poll(); return; }
        finished(p);
      } catch (error) { $("#ft-error").textContent = error.message; $("#finetune-button").disabled = false; }
    }, 600);
  }

  function finished(p) {
    $("#finetune-button").classList.remove("training");
    if (p.status === "succeeded") { showResult(p); api.refreshModels(p.name); return; }
    if (p.status === "cancelled") $("#ft-error").textContent = "Cancelled: nothing was stored. Change the corrections or the time and fine-tune again.";
    else $("#ft-error").textContent = `The fine-tune failed: ${p.error}`;
  }

  async function start() {
    const root = $("#trainer");
    const painted = api.painted();
    api.showFieldErrors(root, null, $("#ft-error"));
    if (!painted.length) { api.showFieldErrors(root, { fields: { scribbles: "correct at least one field first: paint, draw, split or erase" } }, $("#ft-error")); return; }
    const state = api.state();
    const body = {
      name: $("#model-name").value.trim(), experiment_id: state.experiment, channel: $("#train-channel").value,
      planes: api.planes(), base: $("#ft-base").value, fields: painted.map((f) => api.encode(f, true)),
      steps: Number($("#ft-steps").value), seconds: Number($("#ft-seconds").value),
      leave_one_out: $("#ft-loo").checked, replace: $("#model-replace").checked,
    };
    if ($("#ft-check").value) body.check_field = $("#ft-check").value;
    $("#ft-result").hidden = true;
    $("#finetune-button").disabled = true; $("#finetune-button").classList.add("training");
    try {
      job = await api.call("POST", "/api/finetune", body);
      showProgress(job); poll();
    } catch (error) {
      api.showFieldErrors(root, error, $("#ft-error"));
      $("#finetune-button").disabled = false; $("#finetune-button").classList.remove("training");
    }
  }

  function agreementCell(a) {
    return a ? `${pct(a.all)}` : "–";
  }
  function change(before, after, better) {
    const arrow = el("span", { class: "arrow", text: " → " });
    const cls = after === before ? "same" : better ? "up" : "down";
    return [el("span", { class: "old", text: before }), arrow, el("b", { class: cls, text: after })];
  }

  function showResult(p) {
    const r = p.result, card = r.card || {}, name = r.model.name;
    const a = r.agreement || {};
    $("#ft-summary").textContent = `${name} · fine-tuned from ${card.base.name} in ${card.seconds} s (${card.steps} steps, loss ${card.loss}) · agreement with your labels ${pct(a.before)} → ${pct(a.after)}`;
    const body = $("#ft-table tbody"); body.replaceChildren();
    const figures = $("#ft-figures"); figures.replaceChildren();
    r.fields.forEach((f, i) => {
      const ab = f.agreement_before, aa = f.agreement_after;
      const row = el("tr", { "data-image": f.image_id },
        el("td", { class: "mono", text: f.image_id }),
        el("td", { text: f.labelled ? "corrected" : "not labelled" }),
        el("td", { class: "num before", text: api.num(f.before) }),
        el("td", { class: "num after", text: api.num(f.after) }),
        el("td", { class: "num" }, ...(f.labelled ? change(agreementCell(ab), agreementCell(aa), aa.all >= ab.all) : ["–"])));
      body.append(row);
      const pair = el("div", { class: "pair", "data-image": f.image_id });
      for (const which of ["before", "after"]) {
        const count = which === "before" ? f.before : f.after;
        const model = which === "before" ? card.base.name : name;
        pair.append(el("figure", { class: `ft-${which}` },
          el("img", { src: `/api/finetune/jobs/${p.job_id}/pictures/${i}/${which}.png`, alt: `${model} on ${f.image_id}` }),
          el("figcaption", {}, el("span", {}, el("b", { text: which }), ` · ${model}`), el("span", {}, el("span", { class: "count-big", text: api.num(count) }), " objects"))));
      }
      figures.append(el("div", { class: "pair-box" },
        el("h4", { class: "pair-title" }, el("span", { class: "mono", text: f.image_id }), el("span", { class: "muted small", text: f.labelled ? " corrected" : " not labelled: a field it never saw" })), pair));
    });
    const loo = r.leave_one_out;
    $("#ft-loo-result").textContent = loo
      ? `Leave-one-field-out (${loo.steps} steps each): agreement on the field left out ${pct(loo.before)} → ${pct(loo.after)}${loo.cancelled ? " (cut short)" : ""}`
      : "";
    $("#ft-use").href = r.use_url;
    $("#ft-card").href = `/api/finetune/cards/${encodeURIComponent(name)}`;
    $("#ft-result").hidden = false;
    $("#ft-result").dataset.model = name;
    $("#ft-result").scrollIntoView({ behavior: "smooth", block: "nearest" });
  }

  /* iterate: the new model becomes the base, the corrections stay */
  function again() {
    const name = $("#ft-result").dataset.model;
    fillBases(name);
    const m = /^(.*?)(?:-(\d+))?$/.exec(name);
    $("#model-name").value = `${m[1]}-${Number(m[2] || 1) + 1}`.slice(0, 64);
    $("#model-replace").checked = false;
    $("#ft-result").hidden = true; $("#ft-progress").hidden = true;
    api.reloadObjects();
    $("#scribble-canvas").scrollIntoView({ behavior: "smooth", block: "center" });
  }

  document.addEventListener("DOMContentLoaded", () => {
    api = window.platesegModels;
    if (!api || !$("#finetune-button")) return;
    fillBases();
    document.addEventListener("models-changed", () => fillBases());
    document.addEventListener("experiment-loaded", (event) => fillCheckFields(event.detail.fields));
    $("#ft-base").addEventListener("change", () => api.reloadObjects());
    $("#finetune-button").addEventListener("click", start);
    $("#ft-cancel").addEventListener("click", async () => {
      if (!job) return;
      $("#ft-cancel").disabled = true;
      try { job = await api.call("POST", `/api/finetune/jobs/${job.job_id}/cancel`); showProgress(job); }
      catch (error) { $("#ft-error").textContent = error.message; }
      finally { $("#ft-cancel").disabled = false; }
    });
    $("#ft-again").addEventListener("click", again);
    checkStatus();
  });
})();

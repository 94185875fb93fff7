// Project admin: import images, settings, jobs with live progress, members.
import { ApiError, csrfToken, del, get, patch, post, upload } from "../api.js";
import { add, clear, fill, errorText, h, num, progressBar, safeName, setProgress, timeAgo, toast, unavailable } from "../dom.js";
import { loadProject } from "../session.js";

const SECTIONS = [["import", "Import"], ["jobs", "Jobs"], ["settings", "Settings"], ["backbones", "Backbones"], ["members", "Members"]];

export async function render({ main, match, project }) {
  const section = match[2] || "import";
  const page = h("div", { class: "page" });
  main.append(page);
  if (project.role !== "admin") {
    page.append(h("div", { class: "notice" }, "Only admins can manage this project."));
    return;
  }
  page.append(h("nav", { class: "subnav", "aria-label": "Admin sections" },
    SECTIONS.map(([id, name]) => h("a", { href: `#/projects/${project.id}/admin/${id}`, class: id === section ? "active" : "",
      "aria-current": id === section ? "page" : null }, name))));
  const body = h("div");
  page.append(body);
  const views = { import: importView, jobs: jobsView, settings: settingsView, backbones: backbonesView, members: membersView };
  return (views[section] || importView)(body, project);
}

// ---------------------------------------------------------------- import
function importView(root, project) {
  const input = h("input", { type: "file", multiple: true, accept: "image/*,.zip,application/zip", id: "import-files",
    "aria-label": "Choose images or zip files", hidden: true, onchange: () => send([...input.files]) });
  const zone = h("div", { class: "dropzone", role: "button", tabindex: "0", "aria-label": "Drop images or zips here, or press Enter to choose files",
    onclick: () => input.click(), onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); } } },
  h("div", null, h("strong", null, "Drop images or a zip here"), " or click to choose files"),
  h("div", { class: "muted small", style: { marginTop: "6px" } }, "PNG, JPEG, WebP…; a zip laid out one folder per class keeps the folder names."));
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); send([...e.dataTransfer.files]); });
  const bar = progressBar(0, "Upload progress");
  bar.classList.add("big");
  const barText = h("div", { class: "muted small" });
  const progressBox = h("div", { hidden: true, style: { marginTop: "14px" } }, barText, bar);
  const result = h("div", { id: "import-result", style: { marginTop: "14px" } });
  const counts = h("span", { id: "import-counts" });
  const fromFolders = h("input", { type: "checkbox", id: "labels-from-folders" });
  root.append(h("div", { class: "panel" }, h("h2", null, `Import into ${project.name}`),
    h("p", { class: "muted small" }, counts, " Duplicates (same bytes) are found and skipped."),
    h("label", { class: "check-line small" }, fromFolders,
      " Keep a zip's class sub-folders as labels (shown as imported, not as an expert's; sub-folders that name no class are left unlabelled)"),
    zone, input, progressBox, result));
  import("../status.js").then((m) => root.prepend(m.statusLine(project.id)));
  // The counts follow imports, undos and teach batches (here, in another tab, or from the command line).
  let alive = true;
  let timer = null;
  function showCounts(p) {
    counts.textContent = `${num(p.sample_count)} samples so far, ${num(p.labelled_count)} labelled.`;
  }
  async function refreshCounts() {
    clearTimeout(timer);
    try { const p = await loadProject(project.id, true); if (alive) showCounts(p); } catch { /* next tick */ }
    if (alive) timer = setTimeout(refreshCounts, 5000);
  }
  showCounts(project);
  timer = setTimeout(refreshCounts, 5000);

  async function send(files) {
    if (!files.length) return;
    const bytes = files.reduce((a, f) => a + f.size, 0);
    progressBox.hidden = false;
    clear(result);
    setProgress(bar, 0);
    barText.textContent = `Uploading ${files.length} file${files.length > 1 ? "s" : ""} (${(bytes / 1e6).toFixed(1)} MB)…`;
    try {
      const res = await upload(`/projects/${project.id}/samples${fromFolders.checked ? "?labels_from_folders=true" : ""}`, files, (f, phase) => {
        setProgress(bar, f);
        if (phase === "processing") barText.textContent = "Uploaded; checking, hashing and thumbnailing…";
      });
      setProgress(bar, 1);
      barText.textContent = "Done.";
      showResult(res);
      refreshCounts();
    } catch (err) {
      setProgress(bar, 0);
      barText.textContent = "";
      if (err instanceof ApiError && err.detail && typeof err.detail === "object" && err.detail.rejected) {
        showResult({ created: 0, duplicates: 0, rejected: err.detail.rejected }, err.detail.message);
      } else {
        result.append(h("div", { class: "notice error", role: "alert" }, `Import failed: ${errorText(err)}`));
      }
    } finally { input.value = ""; }
  }

  function showResult(res, message) {
    fill(result, 
      h("div", { class: res.created ? "notice ok" : "notice", role: "status" },
        message ? `${message}. ` : "", `${num(res.created)} imported, ${num(res.duplicates)} duplicates, ${num(res.rejected.length)} rejected.`,
        res.labelled ? ` ${num(res.labelled)} labelled from their folders (imported labels).` : "",
        res.unknown_labels && res.unknown_labels.length ? ` Left unlabelled: ${res.unknown_labels.length === 1 ? "the folder" : "the folders"} ${res.unknown_labels.map((f) => `“${f}”`).join(", ")} ${res.unknown_labels.length === 1 ? "names" : "name"} no class of this project.` : ""));
    if (res.rejected.length) {
      const t = h("table", { class: "table", "aria-label": "Rejected files" },
        h("tr", null, h("th", null, "file"), h("th", null, "reason")),
        res.rejected.map((r) => h("tr", null, h("td", { class: "mono" }, safeName(r.filename)), h("td", null, r.reason))));
      result.append(h("div", { class: "panel", style: { marginTop: "12px" } }, h("h3", null, "Rejected files"), t));
    }
  }
  return () => { alive = false; clearTimeout(timer); };
}

// ---------------------------------------------------------------- jobs
function jobsView(root, project) {
  const list = h("div", { id: "job-list" });
  const start = (kind) => async () => {
    try {
      const job = await post(`/projects/${project.id}/jobs`, { kind, params: {} });
      toast(job.note || `${kind} job #${job.id} queued`, "ok", job.note ? 8000 : undefined);
      refresh();
    } catch (err) { toast(errorText(err), "error", 6000); }
  };
  root.append(
    h("div", { class: "panel" }, h("h2", null, "Start a job"),
      h("p", { class: "muted small" }, "Pretrain learns a representation of every image by self-supervision (slow; a GPU helps). ",
        "Fine-tune adapts that representation to the labels given so far (on MNIST a small gain from a few hundred labels on, a small loss at 100). ",
        "Train fits the estimator on the current labels and re-scores the queue (seconds)."),
      h("div", { class: "row" },
        h("button", { class: "btn primary", type: "button", id: "start-train", onclick: start("train") }, "Train now"),
        h("button", { class: "btn", type: "button", id: "start-pretrain", onclick: start("pretrain") }, "Pretrain backbone"),
        h("button", { class: "btn", type: "button", id: "start-finetune", onclick: start("finetune") }, "Fine-tune on labels"),
        h("button", { class: "btn", type: "button", id: "start-embed", onclick: start("embed") }, "Re-embed"))),
    h("div", { class: "panel" }, h("h2", null, "Jobs"), list));
  import("../backbone_history.js").then((m) => root.append(m.backboneHistory(project.id)));

  const rows = new Map();
  let timer = null;
  let alive = true;
  async function refresh() {
    let jobs;
    try { jobs = await get(`/projects/${project.id}/jobs`); } catch (err) { fill(list, h("div", { class: "notice error" }, errorText(err))); return; }
    if (!alive) return;
    if (!jobs.length) { fill(list, h("div", { class: "empty" }, "No jobs yet.")); return; }
    if (!rows.size) clear(list);
    for (const j of jobs.slice(0, 30).reverse()) {
      let r = rows.get(j.id);
      if (!r) { r = jobRow(j); rows.set(j.id, r); list.prepend(r.el); }
      r.update(j);
    }
    schedule(jobs.some((j) => j.state === "queued" || j.state === "running"));
  }
  // Poll GET /jobs/{id} for what is active, once a second; the list itself every few seconds.
  async function pollActive() {
    const active = [...rows.values()].filter((r) => r.active());
    await Promise.all(active.map((r) => get(`/jobs/${r.id}`).then((j) => r.update(j)).catch(() => {})));
    if (!alive) return;
    schedule(active.length > 0);
  }
  let ticks = 0;
  function schedule(fast) {
    clearTimeout(timer);
    if (!alive) return;
    timer = setTimeout(() => { ticks++; if (ticks % 5 === 0) refresh(); else pollActive(); }, fast ? 1000 : 5000);
  }
  function jobRow(j) {
    const bar = progressBar(j.progress, `Job ${j.id} progress`);
    const state = h("span", { class: "badge" });
    const msg = h("span", { class: "jmsg" });
    const when = h("span", { class: "muted small" });
    const cancel = h("button", { class: "btn ghost small danger", type: "button", "aria-label": `Cancel job ${j.id}`,
      onclick: async () => { try { r.update(await post(`/jobs/${j.id}/cancel`)); } catch (err) { toast(errorText(err), "error"); } } }, "Cancel");
    const el = h("div", { class: "job-row", "data-job-id": String(j.id) },
      h("span", { class: "mono" }, `#${j.id}`), h("strong", null, j.kind), state, h("div", null, msg, when), bar, cancel);
    const r = {
      id: j.id, el, job: j,
      active: () => r.job.state === "queued" || r.job.state === "running",
      update(job) {
        r.job = job;
        state.className = `badge ${job.state}`;
        state.textContent = job.state;
        el.dataset.state = job.state;
        setProgress(bar, job.progress);
        const res = job.result || {};
        const outcome = job.state === "succeeded" && res.model_version ? ` → model v${res.model_version}` +
          (res.accuracy_estimate != null ? `, ${Math.round(res.accuracy_estimate * 100)}% audit accuracy` : "") : "";
        const why = job.params && job.params.reason ? ` (auto: ${job.params.reason})` : "";
        msg.textContent = job.error ? `${job.message}: ${job.error}` : `${Math.round(job.progress * 100)}% · ${job.message || ""}${outcome}${why}${job.eta_seconds != null ? ` · ${job.eta_seconds < 60 ? "under a minute" : `about ${Math.round(job.eta_seconds / 60)} min`} left` : ""}`;
        msg.title = msg.textContent;
        when.textContent = ` ${timeAgo(job.finished_at || job.started_at || job.created_at)}`;
        cancel.hidden = !r.active();
      },
    };
    r.update(j);
    return r;
  }
  refresh();
  return () => { alive = false; clearTimeout(timer); };
}

// ---------------------------------------------------------------- settings
// The form is built from the server's own schema (ProjectSettingsPatch in /openapi.json), so a knob the
// API adds shows up here with its limits, and a choice it drops cannot be sent.
const SETTING_NAMES = {
  estimator: ["Estimator", "What learns from the labels on top of the embedding; co_training learns from two layers of the backbone at once."],
  strategy: ["Query strategy", "How the queue picks what to ask next."],
  retrain_every: ["Retrain every N labels", "A retrain is queued after this many new labels."],
  batch_size: ["Batch size", "Samples the strategy picks per round."],
  ssl_method: ["Self-supervised method", "How pretraining learns a representation without labels."],
  pretrain_budget_s: ["Pretraining chunk (s)", "Training between two checks of the backbone (CPU seconds, or GPU time); the first chunk is at most 120 s."],
  pretrain_total_budget_s: ["Pretraining budget (s)", "Background pretraining goes on, chunk after chunk, until this much training is done."],
  auto_pretrain: ["Pretrain after the first import", ""],
  auto_embed: ["Embed new samples as they arrive", ""],
  embedding_layer: ["Embedding layer", "Backbone blocks in the embedding: the last, the one before, the last k side by side (concat:k), or their weighted sum (weighted:k; weights learned on the labels from 20 on). A change re-embeds every sample."],
  lease_seconds: ["Lease (s)", "How long a queued sample stays reserved for one expert."],
  audit_fraction: ["Audit share", "Share of the queue drawn at random to measure accuracy honestly."],
  target_accuracy: ["Target accuracy", "The dashboard says how many labels this still needs."],
  review_confidence: ["Review when the model disagrees above", "Confidence above which a disagreeing label goes to review."],
  overlap: ["Second opinions (share)", "Share of samples (0 to 1) also served, after their first label, to another annotator who does not see it; the dashboard shows how far the two agree, and a disagreement goes to review."],
  overlap_classes: ["Second opinions on classes", "Classes, comma separated, whose every sample also gets a second opinion."],
  webhook_url: ["Webhook URL", "Called when a model version is ready."],
  webhook_secret: ["Webhook secret", "Signs webhook calls."],
};
// The choices (estimators, strategies, methods, layers) come only from the server's schema, which takes
// them from the ml registries (app/services/project_settings.py): a copy here would drift from them.
const FALLBACK_SCHEMA = {
  retrain_every: { type: "integer", minimum: 1 }, batch_size: { type: "integer", minimum: 1 }, lease_seconds: { type: "integer", minimum: 10 },
};

async function settingsSchema() {
  try {
    const doc = await get("/openapi.json");
    const op = doc.paths && doc.paths["/api/v1/projects/{pid}"] && doc.paths["/api/v1/projects/{pid}"].patch;
    if (!op) return null;
    const ref = (x) => (x && x.$ref ? doc.components.schemas[x.$ref.split("/").pop()] : x);
    const body = ref(op.requestBody.content["application/json"].schema);
    const settingsProp = body.properties.settings;
    const settings = ref((settingsProp.anyOf || [settingsProp]).find((x) => x.$ref || x.properties));
    const fields = {};
    for (const [k, v] of Object.entries(settings.properties || {})) fields[k] = (v.anyOf || [v]).find((x) => x.type !== "null") || v;
    return { fields, addClasses: "add_classes" in body.properties };
  } catch { return { fields: FALLBACK_SCHEMA, addClasses: false }; }
}

async function settingsView(root, project) {
  const schema = await settingsSchema();
  const can = Boolean(schema);
  const fields = schema ? schema.fields : FALLBACK_SCHEMA;
  const current = project.settings || {};
  const desc = h("textarea", { id: "set-description", "aria-label": "Description" });
  desc.value = project.description || "";
  const newClasses = h("input", { type: "text", id: "set-new-classes", placeholder: "new classes, comma separated", "aria-label": "Add classes" });
  const inputs = {};
  const controls = Object.entries(fields).filter(([key]) => !OWN_SECTIONS.has(key)).map(([key, f]) => {
    const [name, hint] = SETTING_NAMES[key] || [key.replace(/_/g, " "), f.description || ""];
    const id = `set-${key}`;
    const value = current[key];
    let input;
    if (f.enum) input = h("select", { id }, f.enum.map((o) => h("option", { value: o, selected: o === value }, o)));
    else if (f.type === "boolean") {
      input = h("input", { type: "checkbox", id, checked: Boolean(value) });
      inputs[key] = { el: input, read: () => input.checked, initial: Boolean(value) };
      return h("label", { class: "field check", for: id, title: hint }, h("span", { class: "row" }, input, name), hint ? h("span", { class: "muted small" }, hint) : null);
    } else if (f.type === "integer" || f.type === "number") {
      input = h("input", { type: "number", id, value: value ?? "", min: f.minimum ?? f.exclusiveMinimum, max: f.maximum, step: f.type === "integer" ? "1" : "any" });
    } else if (f.type === "array") {
      // A list of names (overlap_classes): comma separated; sent only when the list changed.
      input = h("input", { type: "text", id, value: (value || []).join(", "), autocomplete: "off" });
      const read = () => {
        const now = input.value.split(",").map((x) => x.trim()).filter(Boolean);
        return now.join(",") === (inputs[key].initial || []).join(",") ? inputs[key].initial : now;
      };
      inputs[key] = { el: input, read, initial: value ?? null };
      return h("label", { class: "field", for: id }, name, input, hint ? h("span", { class: "muted small hint" }, hint) : null);
    } else input = h("input", { type: key.includes("secret") ? "password" : "text", id, value: value ?? "", autocomplete: "off" });
    const read = () => {
      if (f.type === "integer" || f.type === "number") return input.value === "" ? null : Number(input.value);
      return input.value === "" ? null : input.value;
    };
    inputs[key] = { el: input, read, initial: value ?? null };
    return h("label", { class: "field", for: id }, name, input, hint ? h("span", { class: "muted small hint" }, hint) : null);
  });
  const form = h("form", { "aria-label": "Project settings", onsubmit: async (e) => {
    e.preventDefault();
    const settings = {};
    for (const [k, inp] of Object.entries(inputs)) {
      const v = inp.read();
      if (v !== inp.initial && !(v === null && inp.initial === undefined)) settings[k] = v;
    }
    const added = newClasses.value.split(",").map((c) => c.trim()).filter((c) => c && !project.classes.includes(c));
    const body = {};
    if (desc.value !== (project.description || "")) body.description = desc.value;
    if (Object.keys(settings).length) body.settings = settings;
    if (added.length) {
      if (schema && schema.addClasses) body.add_classes = added;
      else body.classes = [...project.classes, ...added];
    }
    if (!Object.keys(body).length) { toast("Nothing changed."); return; }
    try {
      const p = await patch(`/projects/${project.id}`, body);
      Object.assign(project, p);
      await loadProject(project.id, true);
      for (const [k, inp] of Object.entries(inputs)) inp.initial = (project.settings || {})[k] ?? null;
      newClasses.value = "";
      renderClasses();
      toast("Settings saved", "ok");
    } catch (err) {
      toast(err instanceof ApiError && err.missing ? "This server cannot change settings yet (no PATCH /projects/{pid})." : errorText(err), "error", 6000);
    }
  } },
  h("div", { class: "form-grid" }, controls),
  h("div", { style: { marginTop: "14px" } }, h("label", { class: "field", for: "set-description" }, "Description", desc)),
  h("div", { class: "row end", style: { marginTop: "14px" } }, h("button", { class: "btn primary", type: "submit", id: "save-settings", disabled: !can }, "Save settings")));
  const chips = h("div", { class: "row", id: "class-chips" });
  function renderClasses() { fill(chips, project.classes.map((c) => h("span", { class: "chip" }, c))); }
  renderClasses();
  add(root,
    can ? null : unavailable("Changing settings", "PATCH /api/v1/projects/{pid}"),
    h("div", { class: "panel" }, h("h2", null, "Classes"),
      h("p", { class: "muted small" }, "Classes can be added, never removed or renamed (labels refer to them)."),
      chips, h("div", { class: "row", style: { marginTop: "10px" } }, newClasses,
        h("span", { class: "muted small" }, "saved with the settings below"))),
    h("div", { class: "panel" }, h("h2", null, "Model, queue and automation"), form),
    inputSizePanel(project));
}

// ---------------------------------------------------------------- backbone input size
// Settings with a section of their own below, left out of the generic form.
const OWN_SECTIONS = new Set(["input_size", "backbone", "backbone_mode"]);
// Without a pretraining measured on this server: SimCLR on CIFAR-10 (32 px) ran 124 images/s on the
// 2-core reference machine (docs/benchmarks.md); the cost grows about with the pixel count.
const REFERENCE_IPS = { size: 32, ips: 124 };
const INPUT_CHOICES = [32, 48, 64, 96, 128, 160, 224];

function inputSizePanel(project) {
  const current = (project.settings || {}).input_size ?? null;
  const panel = h("div", { class: "panel", id: "input-size" });
  const auto = h("input", { type: "checkbox", id: "input-size-auto", checked: current === null });
  const size = h("input", { type: "number", id: "input-size-px", min: 16, max: 224, step: 4, value: current ?? 64,
    disabled: current === null, "aria-label": "Input size in pixels" });
  const cost = h("div", { id: "input-size-cost", class: "small" });
  const measured = h("p", { class: "muted small", id: "input-size-measured" });
  let reference = null; // {size, ips, measured: bool}
  auto.addEventListener("change", () => { size.disabled = auto.checked; showCost(); });
  size.addEventListener("input", showCost);

  function showCost() {
    if (!reference) return;
    const px = auto.checked ? (reference.measured ? reference.size : null) : Number(size.value);
    if (!px) { fill(cost, "Automatic: 32-96 px on a CPU from the images' own size (up to 224 px where a GPU pretrains)."); return; }
    const s = project.settings || {};
    const ips = reference.ips * (reference.size / px) ** 2;
    const per = (seconds) => (ips * seconds) / Math.max(1, project.sample_count || 1);
    const times = (x) => (x >= 10 ? Math.round(x).toLocaleString("en") : x.toFixed(1));
    fill(cost, h("strong", null, `${px} px`), `: about ${times(ips)} images/s`,
      reference.measured ? " on this machine" : " on a 2-core CPU (an estimate until the first pretraining here)",
      `. A ${Math.round((s.pretrain_budget_s || 300) / 60)}-minute pretraining sees each of the ${num(project.sample_count)} images about `,
      h("strong", null, `${times(per(s.pretrain_budget_s || 300))} times`),
      s.pretrain_total_budget_s ? `, the whole ${Math.round(s.pretrain_total_budget_s / 60)}-minute budget about ${times(per(s.pretrain_total_budget_s))} times` : "",
      ". Larger inputs keep finer detail; each image is seen less often in the same time.");
  }

  const save = h("button", { class: "btn primary", type: "button", id: "save-input-size", onclick: async () => {
    const value = auto.checked ? "auto" : Number(size.value);
    try {
      const p = await patch(`/projects/${project.id}`, { settings: { input_size: value } });
      Object.assign(project, p);
      toast(value === "auto" ? "Input size: automatic, from the next pretraining" : `Input size ${value} px from the next pretraining`, "ok");
    } catch (err) { toast(errorText(err), "error", 6000); }
  } }, "Save input size");
  panel.append(h("h2", null, "Backbone input size"),
    h("p", { class: "muted small" }, "The side, in pixels, at which the backbone sees each image (taken from the copy made at import, ",
      "256 px on its short side). A change takes effect at the next pretraining; the current backbone keeps its size until then."),
    measured,
    h("div", { class: "row" }, h("label", { class: "field check", for: "input-size-auto" }, h("span", { class: "row" }, auto, "Automatic")),
      h("label", { class: "field", for: "input-size-px" }, "Pixels (16-224, a multiple of 4)", size,
        h("span", { class: "muted small hint" }, `Common: ${INPUT_CHOICES.join(", ")}`)), save),
    cost);

  get(`/projects/${project.id}/versions?limit=20`).then((v) => {
    const last = (v.backbones || []).find((b) => b.params && b.params.image_size && b.metrics && b.metrics.images_per_s);
    if (last) {
      reference = { size: last.params.image_size, ips: last.metrics.images_per_s, measured: true };
      fill(measured, `Last pretraining: ${last.params.image_size} px (${last.params.input_size_from || "automatic"}), `,
        `${num(Math.round(last.metrics.images_per_s))} images/s measured.`);
    } else {
      reference = { ...REFERENCE_IPS, measured: false };
      fill(measured, "No pretraining has run here yet; the figures below are estimates from the reference machine.");
    }
    showCost();
  }).catch(() => { reference = { ...REFERENCE_IPS, measured: false }; showCost(); });
  return panel;
}

// ---------------------------------------------------------------- backbones (registered backbone files)
// Backbone files the organisation brings (POST /backbones, checked on the server before they are kept),
// and this project's choice of one (settings backbone + backbone_mode; left out of the Settings form).
const BACKBONE_MODES = [
  ["frozen", "Use it as it is", "Suggestions use its features at once; nothing is trained."],
  ["continue", "Keep training it on this project's images", "It adapts to your images in the background (self-supervised), starting from these weights."],
  ["finetune", "Fine-tune it on the labels", "Used as it is until “Fine-tune on labels” (under Jobs) adapts it to the labels given so far."],
];

async function backbonesView(root, project) {
  const list = h("tbody");
  const choice = h("select", { id: "backbone-choice", "aria-label": "Backbone of this project" });
  const mode = h("select", { id: "backbone-mode", "aria-label": "How the backbone is used" },
    BACKBONE_MODES.map(([v, name]) => h("option", { value: v }, name)));
  const modeHint = h("p", { class: "muted small", id: "backbone-mode-hint" });
  let backbones = [];
  const current = () => project.settings || {};

  function syncMode() {
    const chosen = backbones.find((b) => String(b.id) === choice.value);
    for (const opt of mode.options) opt.disabled = Boolean(chosen) && chosen.format === "onnx" && opt.value !== "frozen";
    if (mode.selectedOptions[0] && mode.selectedOptions[0].disabled) mode.value = "frozen";
    mode.disabled = !chosen;
    const m = BACKBONE_MODES.find(([v]) => v === mode.value);
    modeHint.textContent = !chosen ? "Loupe learns a backbone from this project's own images (self-supervision)."
      : chosen.format === "onnx" ? "An ONNX model can only be used as it is (it runs, but cannot be trained)." : m[2];
  }
  choice.onchange = syncMode;
  mode.onchange = syncMode;

  async function load() {
    backbones = await get("/backbones");
    const picked = current().backbone;
    fill(choice, h("option", { value: "" }, "None: learn one from this project's images"),
      backbones.map((b) => h("option", { value: String(b.id), selected: b.id === picked },
        `${b.name} (${b.format}${b.architecture ? ` ${b.architecture}` : ""}, ${b.embedding_dim} features, ${b.input_size} px)`)));
    mode.value = current().backbone_mode || "frozen";
    syncMode();
    fill(list, backbones.length ? backbones.map((b) => h("tr", { "data-backbone": String(b.id) },
      h("td", null, b.name), h("td", null, b.format, b.architecture ? h("span", { class: "muted" }, ` ${b.architecture}`) : null),
      h("td", { class: "num" }, num(b.embedding_dim)), h("td", { class: "num" }, `${b.input_size} px`),
      h("td", { class: "num", title: `SHA-256 ${b.sha256}` }, `${(b.size / 1e6).toFixed(1)} MB`),
      h("td", { class: "muted small" }, b.source_project_id ? `exported from project ${b.source_project_id}` : "uploaded"),
      h("td", null, h("a", { href: `/api/v1/backbones/${b.id}/file`, download: safeName(b.filename) }, "Download"), " ",
        h("button", { class: "btn small", type: "button", "data-delete-backbone": String(b.id), onclick: () => remove(b) }, "Delete"))))
      : h("tr", null, h("td", { colspan: "7", class: "muted" }, "No backbone files registered yet.")));
  }

  // Unregistering is for the organisation's admins (the server says 403 otherwise), and is refused, with the
  // projects named, while a project has the backbone as its choice.
  async function remove(b) {
    if (!window.confirm(`Delete the backbone file “${b.name}”? Projects that used it before keep what they learned from it.`)) return;
    try {
      await del(`/backbones/${b.id}`);
      toast(`Backbone “${b.name}” deleted.`, "ok", 4000);
      await load();
    } catch (err) { toast(errorText(err), "error", 8000); }
  }

  const save = h("button", { class: "btn primary", type: "button", id: "save-backbone", onclick: async () => {
    const settings = { backbone: choice.value ? Number(choice.value) : null };
    if (choice.value) settings.backbone_mode = mode.value;
    try {
      Object.assign(project, await patch(`/projects/${project.id}`, { settings }));
      await loadProject(project.id, true);
      toast(choice.value ? "Backbone chosen: the images are being re-embedded with it (see Jobs)."
        : "Back to learning a backbone from this project's images.", "ok", 5000);
    } catch (err) { toast(errorText(err), "error", 8000); }
  } }, "Use for this project");

  const file = h("input", { type: "file", id: "backbone-file", "aria-label": "Backbone file", accept: ".pth,.pt,.safetensors,.onnx,.ts" });
  const format = h("select", { id: "backbone-format", "aria-label": "File format" },
    [["torchvision", "torchvision architecture + state dict (.pth, .safetensors)"], ["torchscript", "TorchScript module"], ["onnx", "ONNX model"]]
      .map(([v, t]) => h("option", { value: v }, t)));
  const arch = h("input", { type: "text", id: "backbone-architecture", placeholder: "e.g. resnet18, resnet50, convnext_tiny", "aria-label": "Architecture" });
  const size = h("input", { type: "number", id: "backbone-input-size", min: 8, max: 1024, placeholder: "224", "aria-label": "Input size (px)" });
  const name = h("input", { type: "text", id: "backbone-name", placeholder: "a name your team knows it by", "aria-label": "Name", maxlength: 200 });
  const archField = h("label", { class: "field", for: "backbone-architecture" }, "Architecture", arch);
  format.onchange = () => { archField.hidden = format.value !== "torchvision"; };
  const outcome = h("div", { id: "backbone-result", role: "status" });
  const form = h("form", { "aria-label": "Register a backbone file", onsubmit: async (e) => {
    e.preventDefault();
    if (!file.files.length) { toast("Choose a file first.", "error"); return; }
    const body = new FormData();
    body.append("file", file.files[0], file.files[0].name);
    body.append("format", format.value);
    if (format.value === "torchvision") body.append("architecture", arch.value.trim());
    if (size.value) body.append("input_size", size.value);
    if (name.value.trim()) body.append("name", name.value.trim());
    fill(outcome, h("div", { class: "notice" }, "Checking the file: loading it and running it on a test batch…"));
    try {
      // Multipart with form fields (api.js's upload sends files only).
      const res = await fetch("/api/v1/backbones", { method: "POST", body, credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRF-Token": csrfToken() } });
      const data = await res.json().catch(() => ({}));
      if (!res.ok) throw new ApiError(res.status, data.detail);
      fill(outcome, h("div", { class: "notice ok" }, `Registered “${data.name}”: it gives ${num(data.embedding_dim)} features per image, from ${data.input_size} px inputs.`));
      form.reset();
      archField.hidden = false;
      await load();
    } catch (err) {
      fill(outcome, h("div", { class: "notice error", role: "alert" }, `Not registered: ${errorText(err)}`));
    }
  } },
  h("div", { class: "form-grid" },
    h("label", { class: "field", for: "backbone-file" }, "File", file),
    h("label", { class: "field", for: "backbone-format" }, "Format", format), archField,
    h("label", { class: "field", for: "backbone-input-size" }, "Input size (px, optional)", size,
      h("span", { class: "muted small hint" }, "Smaller is faster on a CPU; default: what the file says, else 224.")),
    h("label", { class: "field", for: "backbone-name" }, "Name", name)),
  h("div", { class: "row end", style: { marginTop: "14px" } }, h("button", { class: "btn primary", type: "submit", id: "register-backbone" }, "Check and register")),
  outcome);

  root.append(
    h("div", { class: "panel" }, h("h2", null, `Backbone of ${project.name}`),
      h("p", { class: "muted small" }, "The backbone turns each image into the features the suggestions are learned from. ",
        "A backbone your team already has, trained on similar images, can give good suggestions from the first labels."),
      h("div", { class: "form-grid" },
        h("label", { class: "field", for: "backbone-choice" }, "Backbone", choice),
        h("label", { class: "field", for: "backbone-mode" }, "How it is used", mode)),
      modeHint, h("div", { class: "row end" }, save)),
    h("div", { class: "panel" }, h("h2", null, "Registered backbone files"),
      h("table", { class: "table", "aria-label": "Registered backbones" },
        h("thead", null, h("tr", null, ["name", "format", "features", "input", "size", "source", ""].map((c) => h("th", null, c)))), list)),
    h("div", { class: "panel" }, h("h2", null, "Register a backbone file"),
      h("p", { class: "muted small" }, "Weights are never downloaded: bring the file. It is checked (it must load and run) before it is kept."),
      form));
  await load();
}

// ---------------------------------------------------------------- members
async function membersView(root, project) {
  const table = h("tbody");
  const user = h("input", { type: "text", id: "member-username", "aria-label": "Username", placeholder: "username", required: true });
  const role = h("select", { id: "member-role", "aria-label": "Role" }, ["annotator", "reviewer", "viewer"].map((r) => h("option", { value: r }, r)));
  const form = h("form", { class: "row", "aria-label": "Add a member", onsubmit: async (e) => {
    e.preventDefault();
    try {
      await post(`/projects/${project.id}/members`, { username: user.value.trim(), role: role.value });
      toast(`${user.value} is now ${role.value}`, "ok");
      user.value = "";
      load();
    } catch (err) { toast(errorText(err), "error", 6000); }
  } }, user, role, h("button", { class: "btn primary", type: "submit" }, "Add or change"));
  root.append(h("div", { class: "panel" }, h("h2", null, "Members"),
    h("p", { class: "muted small" }, "Annotators label; reviewers also settle disagreements; viewers see the dashboard. Admins see every project. Accounts are made under Users."),
    form, h("table", { class: "table", style: { marginTop: "12px" } },
      h("thead", null, h("tr", null, h("th", null, "user"), h("th", null, "role"), h("th", null, ""))), table)));
  const remove = (username) => async () => {
    try {
      await del(`/projects/${project.id}/members/${encodeURIComponent(username)}`);
      toast(`${username} is no longer a member (their labels stay)`, "ok");
      load();
    } catch (err) { toast(errorText(err), "error", 6000); }
  };
  async function load() {
    const ms = await get(`/projects/${project.id}/members`);
    fill(table, ms.length ? ms.map((m) => h("tr", { "data-member": m.username }, h("td", null, m.username),
      h("td", null, h("span", { class: "badge" }, m.role)),
      h("td", null, h("button", { class: "btn ghost small", type: "button", "aria-label": `Remove ${m.username}`,
        onclick: remove(m.username) }, "Remove"))))
      : h("tr", null, h("td", { colspan: "3", class: "muted" }, "No members yet.")));
  }
  await load();
}

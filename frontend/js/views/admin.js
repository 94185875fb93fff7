// Project admin: import images, settings, jobs with live progress, members.
import { ApiError, get, patch, post, upload } from "../api.js";
import { add, clear, fill, errorText, h, num, progressBar, setProgress, timeAgo, toast, unavailable } from "../dom.js";
import { loadProject } from "../app.js";

const SECTIONS = [["import", "Import"], ["jobs", "Jobs"], ["settings", "Settings"], ["members", "Members"]];
const ESTIMATORS = ["logistic", "label_spreading", "co_training", "finetune"];
const STRATEGIES = ["mixed", "least_confidence", "margin", "entropy", "kcenter", "cold_start", "random"];
const SSL_METHODS = ["simclr", "rotation", "masked_ae", "relative_patch", "jigsaw"];

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
  const views = { import: importView, jobs: jobsView, settings: settingsView, members: membersView };
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
  root.append(h("div", { class: "panel" }, h("h2", null, `Import into ${project.name}`),
    h("p", { class: "muted small" }, `${num(project.sample_count)} samples so far. Duplicates (same bytes) are found and skipped.`),
    zone, input, progressBox, result));

  async function send(files) {
    if (!files.length) return;
    const bytes = files.reduce((a, f) => a + f.size, 0);
    progressBox.hidden = false;
    clear(result);
    setProgress(bar, 0);
    barText.textContent = `Uploading ${files.length} file${files.length > 1 ? "s" : ""} (${(bytes / 1e6).toFixed(1)} MB)…`;
    try {
      const res = await upload(`/projects/${project.id}/samples`, files, (f, phase) => {
        setProgress(bar, f);
        if (phase === "processing") barText.textContent = "Uploaded; checking, hashing and thumbnailing…";
      });
      setProgress(bar, 1);
      barText.textContent = "Done.";
      showResult(res);
      loadProject(project.id, true).catch(() => {});
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
        message ? `${message}. ` : "", `${num(res.created)} imported, ${num(res.duplicates)} duplicates, ${num(res.rejected.length)} rejected.`));
    if (res.rejected.length) {
      const t = h("table", { class: "table", "aria-label": "Rejected files" },
        h("tr", null, h("th", null, "file"), h("th", null, "reason")),
        res.rejected.map((r) => h("tr", null, h("td", { class: "mono" }, r.filename), h("td", null, r.reason))));
      result.append(h("div", { class: "panel", style: { marginTop: "12px" } }, h("h3", null, "Rejected files"), t));
    }
  }
}

// ---------------------------------------------------------------- jobs
function jobsView(root, project) {
  const list = h("div", { id: "job-list" });
  const start = (kind) => async () => {
    try {
      const job = await post(`/projects/${project.id}/jobs`, { kind, params: {} });
      toast(`${kind} job #${job.id} queued`, "ok");
      refresh();
    } catch (err) { toast(errorText(err), "error", 6000); }
  };
  root.append(
    h("div", { class: "panel" }, h("h2", null, "Start a job"),
      h("p", { class: "muted small" }, "Pretrain learns a representation of every image by self-supervision (slow; a GPU helps). ",
        "Train fits the estimator on the current labels and re-scores the queue (seconds)."),
      h("div", { class: "row" },
        h("button", { class: "btn primary", type: "button", id: "start-train", onclick: start("train") }, "Train now"),
        h("button", { class: "btn", type: "button", id: "start-pretrain", onclick: start("pretrain") }, "Pretrain backbone"),
        h("button", { class: "btn", type: "button", id: "start-embed", onclick: start("embed") }, "Re-embed"))),
    h("div", { class: "panel" }, h("h2", null, "Jobs"), list));

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
        msg.textContent = job.error ? `${job.message}: ${job.error}` : `${Math.round(job.progress * 100)}% · ${job.message || ""}`;
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
async function settingsView(root, project) {
  const can = await canPatch(project);
  const s = project.settings || {};
  const desc = h("textarea", { id: "set-description", "aria-label": "Description" });
  desc.value = project.description || "";
  const newClasses = h("input", { type: "text", id: "set-new-classes", placeholder: "new classes, comma separated", "aria-label": "Add classes" });
  const sel = (id, label, options, value) => h("label", { class: "field", for: id }, label,
    h("select", { id, "aria-label": label }, options.map((o) => h("option", { value: o, selected: o === value }, o))));
  const numField = (id, label, value, min, max) => h("label", { class: "field", for: id }, label,
    h("input", { type: "number", id, min: String(min), max: String(max), value: value ?? "", "aria-label": label }));
  const form = h("form", { "aria-label": "Project settings", onsubmit: async (e) => {
    e.preventDefault();
    const settings = {};
    const val = (id) => root.querySelector(`#${id}`).value;
    settings.estimator = val("set-estimator");
    settings.strategy = val("set-strategy");
    settings.ssl_method = val("set-ssl");
    for (const [id, key] of [["set-retrain", "retrain_every"], ["set-batch", "batch_size"], ["set-lease", "lease_seconds"]]) {
      if (val(id) !== "") settings[key] = Number(val(id));
    }
    const added = newClasses.value.split(",").map((c) => c.trim()).filter(Boolean);
    const body = { description: desc.value, settings };
    if (added.length) body.classes = [...project.classes, ...added.filter((c) => !project.classes.includes(c))];
    try {
      const p = await patch(`/projects/${project.id}`, body);
      toast("Settings saved", "ok");
      Object.assign(project, p);
      await loadProject(project.id, true);
      newClasses.value = "";
      renderClasses();
    } catch (err) {
      toast(err instanceof ApiError && err.missing ? "This server cannot change settings yet (no PATCH /projects/{pid})." : errorText(err), "error", 6000);
    }
  } },
  h("div", { class: "form-grid" },
    sel("set-estimator", "Estimator", ESTIMATORS, s.estimator || "logistic"),
    sel("set-strategy", "Query strategy", STRATEGIES, s.strategy || "mixed"),
    sel("set-ssl", "Self-supervised method", SSL_METHODS, s.ssl_method || "simclr"),
    numField("set-retrain", "Retrain every N labels", s.retrain_every, 1, 100000),
    numField("set-batch", "Queue batch size", s.batch_size, 1, 100),
    numField("set-lease", "Lease seconds", s.lease_seconds, 10, 86400)),
  h("div", { style: { marginTop: "14px" } }, h("label", { class: "field", for: "set-description" }, "Description", desc)),
  h("div", { class: "row end", style: { marginTop: "14px" } }, h("button", { class: "btn primary", type: "submit", disabled: !can }, "Save settings")));
  const chips = h("div", { class: "row", id: "class-chips" });
  function renderClasses() { fill(chips, project.classes.map((c) => h("span", { class: "chip" }, c))); }
  renderClasses();
  add(root,
    can ? null : unavailable("Changing settings", "PATCH /api/v1/projects/{pid}"),
    h("div", { class: "panel" }, h("h2", null, "Classes"),
      h("p", { class: "muted small" }, "Classes can be added, never removed or renamed (labels refer to them)."),
      chips, h("div", { class: "row", style: { marginTop: "10px" } }, newClasses,
        h("span", { class: "muted small" }, "saved with the settings below"))),
    h("div", { class: "panel" }, h("h2", null, "Model and queue"), form));
}

async function canPatch(project) {
  try {
    const doc = await get("/openapi.json");
    return Boolean(doc.paths && doc.paths["/api/v1/projects/{pid}"] && doc.paths["/api/v1/projects/{pid}"].patch);
  } catch { return true; }
}

// ---------------------------------------------------------------- members
async function membersView(root, project) {
  const table = h("tbody");
  const user = h("input", { type: "text", id: "member-username", "aria-label": "Username", placeholder: "username", required: true });
  const role = h("select", { id: "member-role", "aria-label": "Role" }, h("option", { value: "annotator" }, "annotator"), h("option", { value: "viewer" }, "viewer"));
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
    h("p", { class: "muted small" }, "Annotators label; viewers see the dashboard. Admins see every project. Accounts are made under Users."),
    form, h("table", { class: "table", style: { marginTop: "12px" } },
      h("thead", null, h("tr", null, h("th", null, "user"), h("th", null, "role"))), table)));
  async function load() {
    const ms = await get(`/projects/${project.id}/members`);
    fill(table, ms.length ? ms.map((m) => h("tr", null, h("td", null, m.username), h("td", null, h("span", { class: "badge" }, m.role))))
      : h("tr", null, h("td", { colspan: "2", class: "muted" }, "No members yet.")));
  }
  await load();
}

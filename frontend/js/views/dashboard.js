// The project dashboard: is the model getting better, what is labelled, where it confuses classes,
// and how many more labels a target accuracy needs. Refreshes itself while open.
import { ApiError, get } from "../api.js";
import { clear, fill, h, num, pct, progressBar, timeAgo } from "../dom.js";
import { lineChart } from "../charts.js";
import { accuracyWithInterval, labelsUntilRetrain, targetText } from "../metrics.js";
import { agreementView } from "../agreement.js";

export async function render({ main, project }) {
  const pid = project.id;
  const stats = h("div", { class: "stats", "aria-label": "Project figures" });
  const curve = h("div", { id: "learning-curve" });
  const balance = h("div", { class: "bars", id: "class-balance" });
  const confusion = h("div", { id: "confusion" });
  const jobs = h("div", { id: "recent-jobs" });
  const activity = h("div", { id: "activity" });
  const agreement = h("div", { id: "agreement" });
  const rare = h("div", { class: "notice", id: "rare-classes", hidden: true, role: "status" });
  main.append(h("div", { class: "page" },
    h("div", { class: "page-head" }, h("div", null, h("h1", null, "Dashboard"),
      h("p", { class: "muted" }, "Accuracy is measured on a random audit set, so it is an honest estimate.")),
      exportControls(pid)),
    stats, rare,
    h("div", { class: "panel" }, h("h2", null, "Learning curve"),
      h("p", { class: "muted small" }, "Audit accuracy of each model version against the labels it was trained on."), curve),
    h("div", { class: "grid-2", style: { marginTop: "16px" } },
      h("div", { class: "panel" }, h("h2", null, "Class balance"), h("p", { class: "muted small" }, "Labelled samples per class."), balance),
      h("div", { class: "panel" }, h("h2", null, "Confusion on the audit set"),
        h("p", { class: "muted small" }, "Rows: the expert's label; columns: the model's."), confusion)),
    h("div", { class: "panel", style: { marginTop: "16px" } }, h("h2", null, "Agreement between annotators"), agreement),
    h("div", { class: "grid-2", style: { marginTop: "16px" } },
      h("div", { class: "panel" }, h("h2", null, "Model jobs"), jobs),
      h("div", { class: "panel" }, h("h2", null, "Activity"), activity))));

  let alive = true;
  async function refresh() {
    const m = await get(`/projects/${pid}/metrics`);
    if (!alive) return;
    renderStats(m);
    renderRare(m);
    renderCurve(m);
    renderBalance(m);
    renderConfusion(m);
    fill(agreement, agreementView(m.agreement, Boolean(agreement.querySelector("details[open]"))));
    get(`/projects/${pid}/jobs`).then((js) => alive && renderJobs(js)).catch(() => {});
    get(`/projects/${pid}/activity?limit=12`).then((a) => alive && renderActivity(a))
      .catch((err) => { if (alive) fill(activity, h("p", { class: "muted small" },
        err instanceof ApiError && err.missing ? "The activity feed is not available on this server yet." : err.message)); });
  }

  function stat(label, value, sub, id) {
    return h("div", { class: "stat", id }, h("div", { class: "stat-label" }, label), h("div", { class: "stat-value" }, value),
      sub ? h("div", { class: "stat-sub" }, sub) : null);
  }

  function renderStats(m) {
    const frac = m.sample_count ? m.labelled_count / m.sample_count : 0;
    const last = (m.learning_curve || []).at(-1);
    const ciPair = m.accuracy_ci || (last && last.ci_low != null ? [last.ci_low, last.ci_high] : null);
    const audited = m.audit_label_count != null ? ` on ${num(m.audit_label_count)} audit label${m.audit_label_count === 1 ? "" : "s"}` : "";
    const ci = ciPair ? `95% CI ${pct(ciPair[0], 0)}–${pct(ciPair[1], 0)}${audited}` :
      (m.model_version ? `on the audit set${audited}` : "no model yet");
    const target = m.labels_to_target;
    const [targetValue, targetSub] = target && target.status ? targetText(target, num, pct) : ["–", "needs a few model versions"];
    const retrain = m.retrain || { labels_to_go: labelsUntilRetrain(m, project), job: null };
    // "due" only when a retrain is queued or running; otherwise the labels still to go.
    const [retrainValue, retrainSub] = retrain.job ? [retrain.job.state === "running" ? "running" : "queued", `train job #${retrain.job.id}`] :
      retrain.labels_to_go > 0 ? [num(retrain.labels_to_go), "labels to go"] : ["next label", "the next label queues a retrain"];
    fill(stats, 
      h("div", { class: "stat", id: "stat-labelled" }, h("div", { class: "stat-label" }, "Labelled"),
        h("div", { class: "stat-value" }, num(m.labelled_count)), h("div", { class: "stat-sub" }, `of ${num(m.sample_count)} (${pct(frac, 1)})`),
        progressBar(frac, "Labelled fraction")),
      stat("Human labels", num(m.human_label_count), m.labelled_count > m.human_label_count
        ? `from the experts; ${num(m.labelled_count - m.human_label_count)} more imported with the data` : "from the experts", "stat-human"),
      // Samples someone marked unsure: neither labelled nor left to label, and not taught to the model.
      m.unsure_count ? stat("Unsure", num(m.unsure_count), `marked unsure, waiting for a reviewer's decision; the model does not learn from ${m.unsure_count === 1 ? "it" : "them"} until then`, "stat-unsure") : null,
      stat("Accuracy estimate", m.accuracy_estimate == null ? "–" : pct(m.accuracy_estimate), ci, "stat-accuracy"),
      stat("Model", m.model_version == null ? "none" : `v${m.model_number ?? m.model_version}`, last ? `${num(last.labels)} labels` : "train one in Admin", "stat-model"),
      stat("Next retrain", retrainValue, retrainSub, "stat-retrain"),
      target ? stat(`To ${pct(target.target, 0)} accuracy`, targetValue, targetSub, "stat-target")
        : stat("To target", "–", m.accuracy_estimate == null ? "needs an accuracy estimate first" : "needs a few model versions", "stat-target"),
      m.agreement != null ? stat("Agreement", typeof m.agreement === "number" ? pct(m.agreement) :
        (m.agreement.rate != null ? pct(m.agreement.rate) : "–"), typeof m.agreement === "object" ?
        `${num(m.agreement.second_opinions)} second opinions · ${num(m.agreement.open_reviews)} open reviews` : "between experts", "stat-agreement") : null);
  }

  function renderCurve(m) {
    const pts = (m.learning_curve || []).filter((p) => p.accuracy != null).map((p) => ({
      x: p.labels, y: p.accuracy, lo: p.ci_low, hi: p.ci_high,
      label: `v${p.number ?? p.model_version}: ${pct(p.accuracy)} at ${p.labels} labels`,
    }));
    const wasOpen = Boolean(curve.querySelector("details[open]"));
    clear(curve);
    if (!pts.length) {
      curve.append(h("div", { class: "empty" }, (m.learning_curve || []).length ?
        "Models are trained, but none has an audit accuracy yet: keep labelling (the audit set fills as you go)." :
        "No model yet. The curve starts with the first trained model."));
      return;
    }
    curve.append(lineChart(pts, { width: 1080, height: 300, xLabel: "labels the model was trained on", yLabel: "audit accuracy",
      yFormat: (v) => `${Math.round(v * 100)}%`, target: m.labels_to_target ? m.labels_to_target.target : null,
      title: "Learning curve: audit accuracy against labels" }));
    // The same figures as a table, for screen readers and for the exact numbers.
    const rows = (m.learning_curve || []).map((p) => h("tr", null, h("td", null, `v${p.number ?? p.model_version}`), h("td", null, num(p.labels)),
      h("td", null, p.accuracy == null ? "–" : pct(p.accuracy)),
      h("td", null, p.ci_low == null ? "–" : `${pct(p.ci_low, 0)}–${pct(p.ci_high, 0)}`)));
    curve.append(h("details", { class: "curve-table", open: wasOpen }, h("summary", null, "Show as a table"),
      h("table", { class: "table" }, h("tr", null, h("th", null, "model"), h("th", null, "labels"), h("th", null, "audit accuracy"), h("th", null, "95% CI")), rows)));
  }

  /** Classes with no or few labels, and a way to find candidates for each. */
  function renderRare(m) {
    const list = (m.classes_needing_labels || []);
    rare.hidden = !list.length || !m.labelled_count;
    if (rare.hidden) return;
    const teach = (params) => `#/projects/${pid}/teach?${new URLSearchParams(params)}`;
    fill(rare, h("strong", null, `${list.length} class${list.length === 1 ? " needs" : "es need"} examples`),
      h("ul", { class: "rare-list" }, list.map((c) => h("li", { "data-class": c.class }, h("strong", null, c.class), " — ",
        c.labels ? `only ${num(c.labels)} label${c.labels === 1 ? "" : "s"}` : "no labels",
        c.predicted === 0 ? "; the model never predicts it, so its suggestions will not bring it up" : "", " · ",
        c.labels ? h("a", { href: teach({ mode: "cluster", label: c.class }) }, "find more like them") :
          h("a", { href: teach({ mode: "unexplored", label: c.class }) }, "look for a first example in unexplored groups"),
        c.predicted ? [" · ", h("a", { href: teach({ mode: "suggestion", label: c.class }) }, "review what the model suggests as it")] : null))));
  }

  function renderBalance(m) {
    const entries = Object.entries(m.class_balance || {});
    const max = Math.max(1, ...entries.map(([, n]) => n));
    clear(balance);
    if (!entries.length) { balance.append(h("div", { class: "empty" }, "No classes.")); return; }
    for (const [c, n] of entries) {
      balance.append(h("div", { class: "bar-row", title: `${c}: ${n}` }, h("span", { class: "bname" }, c),
        h("div", { class: "bar-track" }, h("div", { class: "bar-fill", style: { width: `${(n / max) * 100}%` } })),
        h("span", { class: "bval" }, num(n))));
    }
  }

  function renderConfusion(m) {
    clear(confusion);
    const cm = m.confusion;
    if (!cm || !cm.matrix || !cm.matrix.length) {
      confusion.append(h("div", { class: "empty" }, cm === undefined ?
        "This server does not report the confusion matrix yet." : "No audit labels yet: it fills as experts label audit samples."));
      return;
    }
    const classes = cm.classes;
    const table = h("table", { class: "confusion", "aria-label": "Confusion matrix, rows true class, columns predicted class" });
    table.append(h("tr", null, h("th", { class: "axis-title" }, "true ↓ / model →"), classes.map((c) => h("th", { scope: "col" }, c))));
    cm.matrix.forEach((row, i) => {
      const total = row.reduce((a, b) => a + b, 0) || 1;
      table.append(h("tr", null, h("th", { scope: "row" }, classes[i]), row.map((n, j) => {
        const f = n / total;
        const bg = n === 0 ? "#fafbfc" : i === j ? `rgba(47,111,115,${0.15 + 0.75 * f})` : `rgba(179,64,58,${0.12 + 0.8 * f})`;
        return h("td", { style: { background: bg, color: f > 0.55 ? "#fff" : "inherit" }, title: `true ${classes[i]}, model ${classes[j]}: ${n}` }, n || "");
      })));
    });
    confusion.append(table);
  }

  function renderJobs(list) {
    clear(jobs);
    if (!list.length) { jobs.append(h("div", { class: "empty" }, "No jobs yet.")); return; }
    const t = h("table", { class: "table" });
    t.append(h("tr", null, h("th", null, "job"), h("th", null, "state"), h("th", null, "progress"), h("th", null, "when")));
    for (const j of list.slice(0, 6)) {
      t.append(h("tr", null, h("td", null, `#${j.id} ${j.kind}`), h("td", null, h("span", { class: `badge ${j.state}` }, j.state)),
        h("td", null, progressBar(j.progress, `Job ${j.id} progress`)), h("td", { class: "muted small nowrap" }, timeAgo(j.finished_at || j.started_at || j.created_at))));
    }
    jobs.append(t);
  }

  function renderActivity(a) {
    const events = Array.isArray(a) ? a : a.events || a.items || [];
    const people = Array.isArray(a) ? [] : a.annotators || [];
    const out = [];
    if (people.length) {
      out.push(h("table", { class: "table", "aria-label": "Annotators" },
        h("tr", null, h("th", null, "annotator"), h("th", null, "labels"), h("th", null, "undos"), h("th", null, "last")),
        people.map((p) => h("tr", null, h("td", null, p.username), h("td", null, num(p.labels)), h("td", null, num(p.undos)),
          h("td", { class: "muted small" }, timeAgo(p.last_at))))));
    }
    if (events.length) {
      out.push(h("ul", { class: "activity-list" }, events.slice(0, 8).map((e) => {
        const who = e.user || e.username || "Loupe";
        let what = e.event || e.summary || e.message || e.action || "";
        if (e.label != null) what += ` “${e.label}”`;
        if (e.sample_id) what += ` on #${e.sample_id}`;
        if (e.count) what += ` ×${e.count}`;
        return h("li", null, h("strong", null, who), " ", what, " ", h("span", { class: "muted small" }, timeAgo(e.at || e.created_at)));
      })));
    }
    fill(activity, out.length ? out : h("div", { class: "empty" }, "Nothing yet."));
  }

  await refresh();
  const timer = setInterval(() => refresh().catch(() => {}), 5000);
  return () => { alive = false; clearInterval(timer); };
}

// Export: the labels (each row's source says human or import) in four formats, and if asked the model's
// suggestions at or above a confidence (source "model"). GET /projects/{pid}/export.
function exportControls(pid) {
  const formats = [["csv", "CSV"], ["jsonl", "JSONL"], ["imagefolder", "ImageFolder zip"], ["coco", "COCO JSON"]];
  const withSuggestions = h("input", { type: "checkbox", id: "export-suggestions", "aria-label": "Include the model's suggestions" });
  const threshold = h("input", { type: "number", id: "export-threshold", min: "0", max: "1", step: "0.05", value: "0.9",
    "aria-label": "Lowest confidence of an exported suggestion", style: { width: "5.5em" } });
  // A held-out share for the team's own training: near-duplicates stay on one side (app/services/export_split.py).
  const withSplit = h("input", { type: "checkbox", id: "export-split", "aria-label": "Split into train and test" });
  const share = h("input", { type: "number", id: "export-test-share", min: "1", max: "99", step: "1", value: "20",
    "aria-label": "Percent of the samples held out for testing", style: { width: "4.5em" } });
  const links = formats.map(([f, name]) => h("a", { class: "btn small", download: "", "data-format": f, "aria-label": `Export labels as ${name}` }, name));
  function update() {
    const t = Number(threshold.value);
    const ok = threshold.value !== "" && t >= 0 && t <= 1;
    threshold.setCustomValidity(ok ? "" : "a confidence between 0 and 1");
    const p = Number(share.value);
    const splitOk = share.value !== "" && p >= 1 && p <= 99;
    share.setCustomValidity(splitOk ? "" : "a percentage between 1 and 99");
    for (const a of links) {
      a.href = `/api/v1/projects/${pid}/export?format=${a.dataset.format}${withSuggestions.checked && ok ? `&suggestions=${t}` : ""}`
        + `${withSplit.checked && splitOk ? `&test_share=${p / 100}` : ""}`;
    }
  }
  for (const el of [withSuggestions, withSplit]) el.addEventListener("change", update);
  for (const el of [threshold, share]) el.addEventListener("input", update);
  update();
  return h("div", { class: "export-box" },
    h("div", { class: "row export", role: "group", "aria-label": "Export the labels" }, h("span", { class: "muted small" }, "Export labels"), links),
    h("label", { class: "check-line small muted" }, withSuggestions, "with the model's suggestions at confidence ≥", threshold),
    h("label", { class: "check-line small muted", title: "Copies of one picture stay on one side, so the test set holds nothing the training set has seen" },
      withSplit, "split into train and test, holding out", share, "% for testing"));
}

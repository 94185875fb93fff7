// Data problems (issue 18): labels the model doubts (keep or relabel, one key each, both recorded),
// groups of near-duplicate images (label a group at once, or set the copies aside so the queue serves
// one of them) and outliers (blank, untypical, far from every class: set aside or bring back).
import { ApiError, get, post } from "../api.js";
import { errorText, fill, h, pct, toast } from "../dom.js";
import { isTyping, keyMap } from "../keys.js";
import { fillSnippets, isText, sampleVisual } from "../snippets.js";

const OUTLIER_REASONS = { blank: "Blank or nearly constant", atypical: "Unlike the rest of the pool",
  far_from_classes: "Far from every class" };

// A text project's samples show the start of their document (issue 19); render sets it.
let textProject = null;
const thumb = (sid, extra = {}) => textProject ? sampleVisual(textProject, sid, { cls: "problem-snippet" }) : h("img", { src: `/api/v1/samples/${sid}/thumbnail`, alt: `Sample ${sid}`,
  class: "problem-thumb", loading: "lazy", ...extra });

function notYet(err) {
  if (err instanceof ApiError && err.status === 409) return h("div", { class: "panel empty" }, errorText(err));
  return h("div", { class: "notice error" }, errorText(err));
}

// The view's own styles, loaded with it once.
function styles() {
  if (document.getElementById("problems-css")) return;
  document.head.append(h("link", { id: "problems-css", rel: "stylesheet", href: "css/problems.css" }));
}

export async function render({ main, project }) {
  styles();
  const pid = project.id;
  textProject = isText(project) ? project : null;
  const canLabel = ["admin", "annotator", "reviewer"].includes(project.role);
  const { keys, map } = keyMap(project.classes);
  const issues = h("div", { class: "problem-list", id: "label-issue-list" });
  const groups = h("div", { class: "problem-list", id: "duplicate-list" });
  const odd = h("div", { class: "problem-list", id: "outlier-list" });
  const leak = h("div", { id: "leak-warning" });
  main.append(h("div", { class: "page" },
    h("div", { class: "page-head" }, h("div", null, h("h1", null, "Data problems"),
      h("p", { class: "muted" }, "What the embeddings and the model say may be wrong in the data. On a focused label: ",
        h("kbd", null, "K"), " keeps it, a class key relabels it, ", h("kbd", null, "↓"), "/", h("kbd", null, "↑"), " move."))),
    h("section", { class: "problem-section", "aria-labelledby": "h-issues" },
      h("h2", { id: "h-issues" }, "Possibly mislabelled"), issues),
    h("section", { class: "problem-section", "aria-labelledby": "h-dups" },
      h("h2", { id: "h-dups" }, "Near-duplicates"), leak, groups),
    h("section", { class: "problem-section", "aria-labelledby": "h-odd" },
      h("h2", { id: "h-odd" }, "Outliers"), odd)));

  // ---- possibly mislabelled
  async function loadIssues() {
    let body;
    try { body = await get(`/projects/${pid}/label-issues?limit=50`); } catch (err) { fill(issues, notYet(err)); return; }
    if (!body.items.length) { fill(issues, h("div", { class: "panel empty" }, "No label is in doubt: the model agrees with the experts.")); return; }
    fill(issues, body.items.map(issueRow));
    if (textProject) fillSnippets(pid, issues);
  }

  function issueRow(item) {
    const el = h("article", { class: "panel problem issue", tabindex: "0", "data-sample-id": String(item.sample_id),
      "aria-label": `Label of sample ${item.sample_id}: ${item.label}, the model suggests ${item.suggested_label}` },
    thumb(item.sample_id, { class: "problem-img" }),
    h("div", { class: "problem-body" },
      h("div", { class: "row" }, h("span", null, "Labelled ", h("strong", { class: "issue-label" }, item.label),
        ", the model suggests ", h("strong", { class: "issue-suggested" }, item.suggested_label)),
      h("span", { class: "muted small" }, `#${item.sample_id} · doubt ${pct(item.score, 0)}`)),
      h("div", { class: "row neighbours", "aria-label": "Nearest labelled samples" },
        h("span", { class: "muted small" }, "Nearest labelled:"),
        (item.neighbours || []).map((n) => h("figure", { class: "neighbour", title: `similarity ${n.similarity}` },
          thumb(n.sample_id), h("figcaption", null, n.label)))),
      canLabel ? h("div", { class: "row", style: { marginTop: "8px" } },
        h("button", { class: "btn small", type: "button", onclick: () => keep(item, el) }, h("kbd", null, "K"), ` Keep ${item.label}`),
        h("button", { class: "btn small primary", type: "button", onclick: () => relabel(item, item.suggested_label, el) },
          keys[project.classes.indexOf(item.suggested_label)] ? h("kbd", null, keys[project.classes.indexOf(item.suggested_label)].toUpperCase()) : null,
          ` Relabel as ${item.suggested_label}`)) : null));
    el._item = item;
    return el;
  }

  function done(el) {
    const next = el.nextElementSibling;
    el.remove();
    if (next) next.focus();
    if (!issues.querySelector(".issue")) loadIssues();
  }

  async function keep(item, el) {
    try {
      await post(`/projects/${pid}/label-issues/${item.sample_id}/decision`, { decision: "keep" });
      toast(`#${item.sample_id} stays “${item.label}”`, "ok");
      done(el);
    } catch (err) { toast(errorText(err), "error", 6000); }
  }

  async function relabel(item, label, el) {
    if (label === item.label) { keep(item, el); return; }
    try {
      const stored = await post(`/projects/${pid}/labels`, { sample_id: item.sample_id, label });
      await post(`/projects/${pid}/label-issues/${item.sample_id}/decision`, { decision: "relabel", label });
      // Another person's label is never overwritten: the new one is a second opinion, and the
      // disagreement goes to the review list, where a reviewer settles it.
      const second = stored && stored.items && stored.items[0] && stored.items[0].opinion === "second";
      toast(second ? `#${item.sample_id}: “${label}” sent to review (the label was someone else's)`
        : `#${item.sample_id} is now “${label}”`, "ok", second ? 6000 : 3200);
      done(el);
    } catch (err) { toast(errorText(err), "error", 6000); }
  }

  // ---- near-duplicates
  async function loadGroups() {
    let body;
    try { body = await get(`/projects/${pid}/duplicates?limit=100`); } catch (err) { fill(groups, notYet(err)); return; }
    fill(leak, body.leak_warning ? h("div", { class: "notice warn", role: "status" }, body.leak_warning) : null);
    if (!body.groups.length) { fill(groups, h("div", { class: "panel empty" }, "No near-duplicates found.")); return; }
    fill(groups, body.groups.map(groupRow));
    if (textProject) fillSnippets(pid, groups);
  }

  function groupRow(g) {
    const out = new Set(g.excluded || []);
    const choice = h("select", { "aria-label": "Class for the whole group" },
      project.classes.map((c) => h("option", { value: c }, c)));
    const el = h("article", { class: "panel problem group", "data-sample-ids": g.sample_ids.join(","),
      "aria-label": `Group of ${g.sample_ids.length} near-duplicates` },
    h("div", { class: "row" }, h("strong", null, `${g.sample_ids.length} near-duplicates`),
      h("span", { class: "muted small" }, `similarity ≥ ${g.similarity.toFixed(3)}`),
      g.splits_audit ? h("span", { class: "chip unsure" }, "spans the audit sample") : null),
    h("div", { class: "row group-members" }, g.sample_ids.map((sid, i) => h("figure", {
      class: `neighbour${out.has(sid) ? " set-aside" : ""}`, "data-sample-id": String(sid) },
    thumb(sid), h("figcaption", null, `${g.labels[String(sid)] || ((g.awaiting_your_opinion || []).includes(sid) ? "awaits your opinion" : "unlabelled")}${i === 0 ? "" : out.has(sid) ? " · set aside" : ""}`)))),
    canLabel ? h("div", { class: "row", style: { marginTop: "8px" } },
      h("label", { class: "field inline" }, "Label all as ", choice),
      h("button", { class: "btn small primary", type: "button", onclick: () => labelGroup(g, choice.value) }, "Label group"),
      h("button", { class: "btn small", type: "button", onclick: () => setAside(g.sample_ids.slice(1), "duplicate") },
        "Keep the first, set the copies aside")) : null);
    return el;
  }

  async function labelGroup(g, label) {
    try {
      await post(`/projects/${pid}/labels`, g.sample_ids.map((sid) => ({ sample_id: sid, label })));
      toast(`${g.sample_ids.length} samples labelled “${label}”`, "ok");
      loadGroups();
    } catch (err) { toast(errorText(err), "error", 6000); }
  }

  async function setAside(ids, reason) {
    try {
      await post(`/projects/${pid}/exclusions`, { sample_ids: ids, reason });
      toast(`${ids.length} set aside: the queue will not serve ${ids.length === 1 ? "it" : "them"}`, "ok");
      loadGroups(); loadOutliers();
    } catch (err) { toast(errorText(err), "error", 6000); }
  }

  async function bringBack(ids) {
    try {
      await post(`/projects/${pid}/exclusions/remove`, { sample_ids: ids });
      toast(`${ids.length} back in the pool`, "ok");
      loadGroups(); loadOutliers();
    } catch (err) { toast(errorText(err), "error", 6000); }
  }

  // ---- outliers
  async function loadOutliers() {
    let body;
    try { body = await get(`/projects/${pid}/outliers?limit=30`); } catch (err) { fill(odd, notYet(err)); return; }
    if (!body.items.length) { fill(odd, h("div", { class: "panel empty" }, "No outliers found.")); return; }
    fill(odd, h("div", { class: "outlier-grid" }, body.items.map((o) => h("figure", {
      class: `panel outlier${o.excluded ? " set-aside" : ""}`, "data-sample-id": String(o.sample_id), "data-reason": o.reason },
    thumb(o.sample_id),
    h("figcaption", null, h("strong", null, OUTLIER_REASONS[o.reason] || o.reason),
      h("span", { class: "muted small" }, ` #${o.sample_id}${o.label ? ` · ${o.label}` : ""} · score ${o.score}`)),
    canLabel ? (o.excluded
      ? h("button", { class: "btn small", type: "button", onclick: () => bringBack([o.sample_id]) }, "Bring back")
      : h("button", { class: "btn small", type: "button", onclick: () => setAside([o.sample_id], o.reason === "blank" ? "blank" : "outlier") }, "Set aside")) : null))));
    if (textProject) fillSnippets(pid, odd);
  }

  function onKey(e) {
    if (isTyping(e) || e.ctrlKey || e.metaKey || e.altKey || !canLabel) return;
    const el = document.activeElement && document.activeElement.closest && document.activeElement.closest(".issue");
    if (!el) return;
    const k = e.key.toLowerCase();
    if (k === "k" && !map.has("k")) { e.preventDefault(); keep(el._item, el); }
    else if (map.has(k)) { e.preventDefault(); relabel(el._item, map.get(k), el); }
    else if (k === "arrowdown" || k === "j") { e.preventDefault(); (el.nextElementSibling || el).focus(); }
    else if (k === "arrowup") { e.preventDefault(); (el.previousElementSibling || el).focus(); }
  }
  window.addEventListener("keydown", onKey);
  await Promise.all([loadIssues(), loadGroups(), loadOutliers()]);
  const first = issues.querySelector(".issue");
  if (first) first.focus();
  return () => window.removeEventListener("keydown", onKey);
}

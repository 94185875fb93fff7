// Reviews: labels two experts disagree on, or that a confident model disputes. An admin or a project
// reviewer settles each with one click (or its class key, for the review in focus).
import { ApiError, get, post } from "../api.js";
import { errorText, fill, h, pct, timeAgo, toast, unavailable } from "../dom.js";
import { isTyping, keyMap } from "../keys.js";
import { commentItem } from "../notes.js";
import { fillSnippets, isText, sampleVisual } from "../snippets.js";

const REASONS = { annotators_disagree: "Experts disagree", model_disagrees: "A confident model disagrees",
  unsure: "An expert is unsure" };

export async function render({ main, project }) {
  const pid = project.id;
  const canResolve = project.role === "admin" || project.role === "reviewer";
  const { keys, map } = keyMap(project.classes);
  const list = h("div", { class: "review-list", id: "review-list" });
  const status = h("select", { id: "review-status", "aria-label": "Show reviews", onchange: () => load() },
    h("option", { value: "open" }, "open"), h("option", { value: "resolved" }, "resolved"), h("option", { value: "withdrawn" }, "withdrawn"));
  main.append(h("div", { class: "page" },
    h("div", { class: "page-head" }, h("div", null, h("h1", null, "Reviews"),
      h("p", { class: "muted" }, canResolve ? "Pick the right class; it becomes the sample's label. Keys work on the focused review." :
        "Reviewers and admins settle these.")), h("label", { class: "field", for: "review-status" }, "Show", status)),
    list));

  async function load() {
    let items;
    try { items = await get(`/projects/${pid}/reviews?status=${status.value}&limit=200`); } catch (err) {
      fill(list, err instanceof ApiError && err.missing ? unavailable("Reviews", "GET /api/v1/projects/{pid}/reviews") :
        h("div", { class: "notice error" }, errorText(err)));
      return;
    }
    if (!items.length) { fill(list, h("div", { class: "panel empty" }, status.value === "open" ? "No open reviews: the experts and the model agree." : `None ${status.value} yet.`)); return; }
    fill(list, items.map(row));
    if (isText(project)) fillSnippets(pid, list);
    const first = list.querySelector(".review");
    if (first && canResolve && status.value === "open") first.focus();
  }

  function row(r) {
    const opinions = (r.opinions || []).map((o) => h("span", { class: "chip" }, h("strong", null, o.label), ` ${o.username || "import"}${o.opinion === "second" ? " (2nd)" : ""}`));
    const d = r.detail || {};
    if (d.model) opinions.push(h("span", { class: "chip accent" }, h("strong", null, d.model), ` model ${d.confidence != null ? pct(d.confidence, 0) : ""}`));
    // An unsure mark: who, what they leaned to, and the label it holds back (none of them a label now).
    if (r.reason === "unsure") {
      opinions.push(h("span", { class: "chip unsure" }, `marked unsure by ${d.by || "someone"}`));
      if (d.guess) opinions.push(h("span", { class: "chip" }, "leans to ", h("strong", null, d.guess)));
      if (d.previous) opinions.push(h("span", { class: "chip" }, "was labelled ", h("strong", null, d.previous)));
    }
    const notes = (r.comments || []).length ? h("ol", { class: "comments" }, r.comments.map(commentItem)) : null;
    const el = h("article", { class: "panel review", tabindex: "0", "data-review-id": String(r.id), "aria-label": `Review of sample ${r.sample_id}` },
      sampleVisual(project, r.sample_id, { cls: isText(project) ? "review-text" : "review-img", full: true }),
      h("div", { class: "review-body" },
        h("div", { class: "row" }, h("strong", null, REASONS[r.reason] || r.reason), h("span", { class: "muted small" }, `#${r.sample_id} · ${timeAgo(r.created_at)}`)),
        h("div", { class: "row", style: { marginTop: "6px" } }, opinions),
        notes,
        canResolve && r.status === "open" ? h("div", { class: "row review-classes", style: { marginTop: "10px" } },
          project.classes.map((c, i) => h("button", { class: "btn small", type: "button", "aria-label": `Resolve as ${c}`, title: c, onclick: () => resolve(r, c, el) },
            keys[i] ? h("kbd", null, keys[i].toUpperCase()) : null, h("span", { class: "cname" }, c)))) : h("div", { class: "muted small" }, r.status)));
    el._review = r;
    return el;
  }

  async function resolve(r, label, el) {
    try {
      await post(`/reviews/${r.id}/resolve`, { label });
      toast(`#${r.sample_id} is now “${label}”`, "ok");
      const next = el.nextElementSibling;
      el.remove();
      if (next) next.focus();
      if (!list.querySelector(".review")) load();
    } catch (err) { toast(errorText(err), "error", 6000); }
  }

  function onKey(e) {
    if (isTyping(e) || e.ctrlKey || e.metaKey || e.altKey) return;
    const el = document.activeElement && document.activeElement.closest && document.activeElement.closest(".review");
    if (!el || !canResolve) return;
    const k = e.key.toLowerCase();
    if (map.has(k)) { e.preventDefault(); resolve(el._review, map.get(k), el); }
    else if (k === "arrowdown" || k === "j") { e.preventDefault(); (el.nextElementSibling || el).focus(); }
    else if (k === "arrowup" || k === "k") { e.preventDefault(); (el.previousElementSibling || el).focus(); }
  }
  window.addEventListener("keydown", onKey);
  await load();
  return () => window.removeEventListener("keydown", onKey);
}

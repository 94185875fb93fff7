// The project's backbones, newest first, each with the figure that decided whether the project uses
// it (a background pretraining chunk switches only to a backbone measurably better on the project's
// own labels): GET /projects/{pid}/versions, backbones[].metrics.switch. The admin's jobs view shows
// it with one line.
import { get } from "./api.js";
import { errorText, fill, h } from "./dom.js";

function verdict(b) {
  const v = (b.metrics || {}).switch;
  if (!v) return b.method === "finetune" ? "fine-tuned on the labels" : "";
  return v.reason;
}

function trained(b) {
  const p = b.params || {};
  const m = b.metrics || {};
  const part = p.chunk ? `chunk ${p.chunk}` : "";
  const secs = m.elapsed_s != null ? `${Math.round(m.elapsed_s)} s of ${Math.round(p.budget_seconds || 0)} s` : "";
  return [part, secs].filter(Boolean).join(", ");
}

export function backboneHistory(projectId) {
  const body = h("div", null, h("div", { class: "muted small" }, "Loading…"));
  const el = h("div", { class: "panel", id: "backbone-history" }, h("h2", null, "Backbones"),
    h("p", { class: "muted small" }, "Pretraining goes on in the background, in chunks; after each chunk the new backbone is ",
      "compared with the one in use on your labels (nearest-neighbour accuracy while labels are few, a cross-validated ",
      "probe once every class has 5), and the project switches only when it is better."), body);
  get(`/projects/${projectId}/versions?limit=30`).then((v) => {
    const rows = (v.backbones || []).map((b) => h("tr", { "data-backbone-version": String(b.id) },
      h("td", { class: "mono" }, `#${b.id}`), h("td", null, b.method),
      h("td", null, b.current ? h("span", { class: "badge succeeded" }, "in use") : ""),
      h("td", { class: "small" }, trained(b)), h("td", { class: "small" }, verdict(b))));
    fill(body, rows.length ? h("table", { class: "table", "aria-label": "Backbone versions" },
      h("tr", null, h("th", null, "version"), h("th", null, "method"), h("th", null, ""), h("th", null, "trained"),
        h("th", null, "why used or not")), rows) : h("div", { class: "empty" }, "No backbone yet."));
  }).catch((err) => fill(body, h("div", { class: "notice error" }, errorText(err))));
  return el;
}

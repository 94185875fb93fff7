import { get, post } from "../api.js";
import { errorText, h, num, pct, progressBar, toast } from "../dom.js";
import { accuracyWithInterval } from "../metrics.js";

export async function render({ main, me, go }) {
  const list = h("div", { class: "project-list", "aria-label": "Projects" });
  const head = h("div", { class: "page-head" },
    h("div", null, h("h1", null, "Projects"), h("p", { class: "muted" }, "Pick a project to label, teach or review.")));
  const page = h("div", { class: "page" }, head, list);
  main.append(page);
  if (me.is_admin) head.append(newProjectForm(go));

  const projects = await get("/projects");
  if (!projects.length) {
    list.append(h("div", { class: "panel empty" }, me.is_admin ? "No projects yet: create one." :
      "You are not a member of any project yet. Ask an admin to add you."));
    return;
  }
  for (const p of projects) {
    // GET /projects carries each project's estimate: no /metrics request per project.
    const acc = h("span", { class: "acc" }, p.accuracy_estimate == null
      ? (p.current_model_version ? "accuracy not yet estimated" : "no model yet")
      : `accuracy ${accuracyWithInterval(p.accuracy_estimate, p.accuracy_ci, p.audit_label_count, pct)} · model v${p.current_model_number ?? p.current_model_version}`);
    const card = h("article", { class: "panel project-card", "data-project": p.name, "aria-label": `Project ${p.name}` },
      h("div", { class: "row" }, h("h2", null, h("a", { href: `#/projects/${p.id}/${p.role === "viewer" ? "dashboard" : "label"}` }, p.name)),
        h("span", { class: "spacer" }), h("span", { class: "badge" }, p.role)),
      p.description ? h("p", { class: "muted small", style: { margin: 0 } }, p.description) : null,
      progressBar(p.sample_count ? p.labelled_count / p.sample_count : 0, `${p.name}: labelled fraction`),
      h("div", { class: "meta" },
        h("span", { class: "labelled" }, `${num(p.labelled_count)} / ${num(p.sample_count)} labelled`),
        acc),
      h("div", { class: "actions" },
        p.role !== "viewer" ? h("a", { class: "btn primary small", href: `#/projects/${p.id}/label` }, "Label") : null,
        p.role !== "viewer" ? h("a", { class: "btn small", href: `#/projects/${p.id}/teach` }, "Teach") : null,
        h("a", { class: "btn small", href: `#/projects/${p.id}/dashboard` }, "Dashboard"),
        p.role === "admin" ? h("a", { class: "btn ghost small", href: `#/projects/${p.id}/admin` }, "Admin") : null));
    list.append(card);
  }
}

function newProjectForm(go) {
  const name = h("input", { type: "text", "aria-label": "Project name", placeholder: "Name", required: true });
  const classes = h("input", { type: "text", "aria-label": "Classes, comma separated", placeholder: "Classes: cat, dog, bird", required: true });
  const form = h("form", { class: "row", "aria-label": "New project", hidden: true, onsubmit: async (e) => {
    e.preventDefault();
    try {
      const p = await post("/projects", { name: name.value.trim(),
        classes: classes.value.split(",").map((c) => c.trim()).filter(Boolean), description: "" });
      toast(`Project ${p.name} created`, "ok");
      go(`#/projects/${p.id}/admin/import`);
    } catch (err) { toast(errorText(err), "error", 6000); }
  } }, name, classes, h("button", { class: "btn primary", type: "submit" }, "Create"));
  const open = h("button", { class: "btn", type: "button", onclick: () => { form.hidden = false; open.hidden = true; name.focus(); } }, "New project");
  return h("div", null, open, form);
}

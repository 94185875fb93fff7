import { get, post } from "../api.js";
import { errorText, fill, h, num, pct, progressBar, setProgress, toast } from "../dom.js";
import { accuracyWithInterval } from "../metrics.js";

// The counts refresh while the list is open (an import, an undo or a teach batch in another tab, a CLI
// import) and whenever the tab comes back into view: GET /projects carries them all in one request.
const REFRESH_MS = 5000;

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
  const cards = new Map();
  for (const p of projects) {
    const card = projectCard(p);
    cards.set(p.id, card);
    list.append(card.el);
  }

  let alive = true;
  let timer = null;
  async function refresh() {
    clearTimeout(timer);
    try {
      for (const p of await get("/projects")) if (alive && cards.has(p.id)) cards.get(p.id).update(p);
    } catch { /* the next tick tries again */ }
    if (alive) timer = setTimeout(refresh, REFRESH_MS);
  }
  const onVisible = () => { if (document.visibilityState === "visible") refresh(); };
  document.addEventListener("visibilitychange", onVisible);
  timer = setTimeout(refresh, REFRESH_MS);
  return () => { alive = false; clearTimeout(timer); document.removeEventListener("visibilitychange", onVisible); };
}

function projectCard(p) {
  const labelled = h("span", { class: "labelled" });
  const acc = h("span", { class: "acc" });
  const bar = progressBar(0, `${p.name}: labelled fraction`);
  const el = h("article", { class: "panel project-card", "data-project": p.name, "aria-label": `Project ${p.name}` },
    h("div", { class: "row" }, h("h2", null, h("a", { href: `#/projects/${p.id}/${p.role === "viewer" ? "dashboard" : "label"}` }, p.name)),
      h("span", { class: "spacer" }), h("span", { class: "badge" }, p.role)),
    p.description ? h("p", { class: "muted small description", style: { margin: 0 } }, p.description) : null,
    bar,
    h("div", { class: "meta" }, labelled, acc),
    h("div", { class: "actions" },
      p.role !== "viewer" ? h("a", { class: "btn primary small", href: `#/projects/${p.id}/label` }, "Label") : null,
      p.role !== "viewer" ? h("a", { class: "btn small", href: `#/projects/${p.id}/teach` }, "Teach") : null,
      h("a", { class: "btn small", href: `#/projects/${p.id}/dashboard` }, "Dashboard"),
      p.role === "admin" ? h("a", { class: "btn ghost small", href: `#/projects/${p.id}/admin` }, "Admin") : null));
  function update(q) {
    labelled.textContent = `${num(q.labelled_count)} / ${num(q.sample_count)} labelled`;
    setProgress(bar, q.sample_count ? q.labelled_count / q.sample_count : 0);
    // GET /projects carries each project's estimate: no /metrics request per project.
    acc.textContent = q.accuracy_estimate == null
      ? (q.current_model_version ? "accuracy not yet estimated" : "no model yet")
      : `accuracy ${accuracyWithInterval(q.accuracy_estimate, q.accuracy_ci, q.audit_label_count, pct)} · model v${q.current_model_number ?? q.current_model_version}`;
  }
  update(p);
  return { el, update };
}

function newProjectForm(go) {
  const name = h("input", { type: "text", "aria-label": "Project name", placeholder: "Name", required: true });
  const classes = h("input", { type: "text", "aria-label": "Classes, comma separated", placeholder: "Classes: cat, dog, bird", required: true });
  const description = h("textarea", { "aria-label": "Description", placeholder: "Description (optional): what the images are, what the classes mean",
    rows: "2", maxlength: "10000" });
  // Chosen once: the import, the representation and the label view follow it (issue 19).
  const kind = h("select", { "aria-label": "Kind of samples", name: "kind" },
    h("option", { value: "image" }, "Images"), h("option", { value: "text" }, "Text documents"));
  const problem = h("div", { class: "notice error", role: "alert", hidden: true });
  const form = h("form", { class: "new-project", "aria-label": "New project", hidden: true, onsubmit: async (e) => {
    e.preventDefault();
    problem.hidden = true;
    try {
      const p = await post("/projects", { name: name.value.trim(), kind: kind.value,
        classes: classes.value.split(",").map((c) => c.trim()).filter(Boolean), description: description.value.trim() });
      close();
      toast(`Project ${p.name} created`, "ok");
      go(`#/projects/${p.id}/admin/import`);
    } catch (err) {
      fill(problem, errorText(err));
      problem.hidden = false;
    }
  } }, h("div", { class: "row" }, name, classes, kind), description, problem,
  h("div", { class: "row" }, h("button", { class: "btn primary", type: "submit" }, "Create"),
    h("button", { class: "btn ghost", type: "button", onclick: () => close() }, "Cancel")));
  const open = h("button", { class: "btn", type: "button", onclick: () => { form.hidden = false; open.hidden = true; name.focus(); } }, "New project");
  function close() {
    form.reset();
    form.hidden = true;
    problem.hidden = true;
    open.hidden = false;
  }
  form.addEventListener("keydown", (e) => { if (e.key === "Escape") { e.preventDefault(); close(); open.focus(); } });
  return h("div", null, open, form);
}

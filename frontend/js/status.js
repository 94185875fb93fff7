// The project's status line: what the workers are doing for the project, in the expert's words
// ("backbone improving, 62% trained; suggestions may get better in about 4 min", "embedding new
// images: 1,200 of 3,000", "model retraining"), from GET /projects/{pid}/status. The jobs behind it,
// with their progress and time left, are one hover (or focus) away. A view shows it with one line:
//   import("../status.js").then((m) => main.prepend(m.statusLine(project.id)));
// It polls while it is on the page (faster while work is under way), takes no room while nothing runs,
// and stops once its view is gone.
import { get } from "./api.js";
import { h } from "./dom.js";

const BUSY_MS = 4000;
const IDLE_MS = 15000;

function minutes(s) {
  return s == null ? "" : s < 60 ? ", under a minute left" : `, about ${Math.round(s / 60)} min left`;
}

function detail(jobs) {
  return jobs.map((j) => `job #${j.id} ${j.kind}: ${j.state}, ${Math.round(j.progress * 100)} %${minutes(j.eta_seconds)}`).join("\n");
}

export function statusLine(projectId) {
  const text = h("span", { class: "project-status-text" });
  const el = h("div", { class: "project-status muted small", role: "status", "aria-live": "polite", tabindex: "0",
    id: "project-status", hidden: true, style: { margin: "4px 0 8px" } }, text);
  let seen = false;
  async function tick() {
    if (seen && !el.isConnected) return; // the view was left
    seen = seen || el.isConnected;
    let busy = false;
    try {
      const s = await get(`/projects/${projectId}/status`, { quiet401: true });
      busy = s.busy;
      text.textContent = s.busy ? `Working: ${s.line}` : "";
      el.title = s.jobs.length ? detail(s.jobs) : "";
      el.dataset.busy = String(s.busy);
      el.hidden = !s.busy;
    } catch { /* keep the last line; the next tick tries again */ }
    setTimeout(tick, busy ? BUSY_MS : IDLE_MS);
  }
  setTimeout(tick, 0);
  return el;
}

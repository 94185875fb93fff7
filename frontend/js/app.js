// Loupe's browser UI: hash routes, a shell (top bar, project tabs), one view at a time.
import { ApiError, get, post, setUnauthorizedHandler } from "./api.js";
import { clear, fill, errorText, h } from "./dom.js";
import { loadProject, state } from "./session.js";
import * as login from "./views/login.js";
import * as projects from "./views/projects.js";
import * as label from "./views/label.js";
import * as teach from "./views/teach.js";
import * as dashboard from "./views/dashboard.js";
import * as admin from "./views/admin.js";
import * as account from "./views/account.js";
import * as reviews from "./views/reviews.js";
import * as samples from "./views/samples.js";
import * as problems from "./views/problems.js";

const ROUTES = [
  [/^\/login$/, login, {}],
  [/^\/projects$/, projects, {}],
  [/^\/projects\/(\d+)\/label$/, label, { tab: "label" }],
  [/^\/projects\/(\d+)\/teach$/, teach, { tab: "teach" }],
  [/^\/projects\/(\d+)\/dashboard$/, dashboard, { tab: "dashboard" }],
  [/^\/projects\/(\d+)\/reviews$/, reviews, { tab: "reviews" }],
  [/^\/projects\/(\d+)\/samples$/, samples, { tab: "samples" }],
  [/^\/projects\/(\d+)\/problems$/, problems, { tab: "problems" }],
  [/^\/projects\/(\d+)\/admin(?:\/(\w+))?$/, admin, { tab: "admin" }],
  [/^\/admin\/(users|tokens)$/, account, { tab: "global" }],
  [/^\/account$/, account, { tab: "account" }],
];

let cleanup = null;
let renderSeq = 0;

function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/projects";
  const [path, qs] = raw.split("?");
  return { path, query: new URLSearchParams(qs || "") };
}

async function route() {
  const seq = ++renderSeq;
  if (cleanup) { try { cleanup(); } catch (e) { console.error(e); } cleanup = null; }
  const { path, query } = parseHash();
  const hit = ROUTES.map(([re, view, meta]) => [path.match(re), view, meta]).find(([m]) => m);
  if (!hit) { go("#/projects"); return; }
  const [match, view, meta] = hit;
  if (view !== login && !state.me) {
    try { state.me = await get("/auth/me", { quiet401: true }); }
    catch { go(`#/login?next=${encodeURIComponent(location.hash)}`); return; }
  }
  const main = document.getElementById("main");
  const nav = document.getElementById("project-nav");
  let project = null;
  try {
    if (meta.tab && match[1] && /^\d+$/.test(match[1]) && path.startsWith("/projects/")) {
      project = await loadProject(Number(match[1]));
    }
  } catch (err) {
    if (seq !== renderSeq) return;
    renderShell(null, meta);
    fill(main, h("div", { class: "page" }, h("div", { class: "notice error" }, errorText(err))));
    return;
  }
  if (seq !== renderSeq) return;
  renderShell(project, meta);
  clear(main);
  main.focus({ preventScroll: true });
  try {
    const result = await view.render({ main, match, query, me: state.me, project, go, nav });
    if (seq !== renderSeq) { if (typeof result === "function") result(); return; }
    cleanup = typeof result === "function" ? result : null;
  } catch (err) {
    console.error(err);
    if (seq !== renderSeq) return;
    main.append(h("div", { class: "page" }, h("div", { class: "notice error" }, errorText(err))));
  }
}

function renderShell(project, meta) {
  const bar = document.getElementById("topbar");
  clear(bar);
  const me = state.me;
  const left = h("div", { class: "topbar-left" },
    h("a", { class: "brand", href: "#/projects", "aria-label": "Loupe, all projects" },
      h("span", { class: "brand-mark", "aria-hidden": "true" }), "Loupe"));
  if (project) {
    left.append(h("span", { class: "crumb-sep", "aria-hidden": "true" }, "/"),
      h("span", { class: "crumb", title: project.description || project.name }, project.name));
  }
  const right = h("div", { class: "topbar-right" });
  if (me) {
    if (me.is_admin) {
      right.append(h("a", { class: `toplink${meta.tab === "global" ? " active" : ""}`, href: "#/admin/users" }, "Users"));
    }
    right.append(
      h("a", { class: `toplink${meta.tab === "account" || location.hash === "#/admin/tokens" ? " active" : ""}`, href: "#/account", "aria-label": `Account: ${me.username}` },
        h("span", { class: "avatar", "aria-hidden": "true" }, me.username.slice(0, 1).toUpperCase()), me.username),
      h("button", { class: "btn ghost small", type: "button", "aria-label": "Sign out", onclick: logout }, "Sign out"));
  }
  bar.append(left, right);

  const nav = document.getElementById("project-nav");
  clear(nav);
  nav.hidden = !project;
  if (project) {
    const canLabel = ["admin", "annotator", "reviewer"].includes(project.role);
    const tabs = [
      canLabel && ["label", "Label", "L"],
      canLabel && ["teach", "Teach by neighbourhood", "T"],
      ["samples", "Samples", "S"],
      ["dashboard", "Dashboard", "D"],
      ["problems", "Data problems", "P"],
      (project.role === "admin" || project.role === "reviewer") && ["reviews", "Reviews", "R"],
      project.role === "admin" && ["admin", "Admin", "A"],
    ].filter(Boolean);
    nav.append(h("div", { class: "tabs" },
      tabs.map(([id, name]) => h("a", {
        class: `tab${meta.tab === id ? " active" : ""}`, "aria-current": meta.tab === id ? "page" : null,
        href: `#/projects/${project.id}/${id}`, "data-tab": id,
      }, name))));
  }
}

async function logout() {
  try { await post("/auth/logout"); } catch (err) { if (!(err instanceof ApiError)) console.error(err); }
  state.me = null;
  state.project = null;
  go("#/login");
}

setUnauthorizedHandler(() => {
  if (!location.hash.startsWith("#/login")) {
    state.me = null;
    go(`#/login?next=${encodeURIComponent(location.hash)}`);
  }
});

// "?" shows every keyboard shortcut.
const SHORTCUTS = [
  ["Label", [["1 … 9, 0, letters", "choose the class shown on its button"], ["Enter", "accept the suggestion"],
    ["Backspace or Ctrl+Z", "undo your last label (after a reload too)"],
    ["Tab to “My recent labels”, Enter", "reopen one of your last 50 labels to correct it"],
    ["S", "skip (the sample goes back to the queue)"],
    ["U", "unsure: the sample goes to review, not to the model (Backspace takes it back)"],
    ["+ / − or the wheel", "zoom"], ["drag", "pan"], ["double-click", "fit the image again"]]],
  ["Teach by neighbourhood", [["click or Space", "tick or untick a sample"], ["Ctrl+Enter", "label the ticked ones"],
    ["Ctrl+Z", "undo that batch"]]],
  ["Reviews", [["class key", "settle the focused review"], ["↑ / ↓ or J / K", "move between reviews"]]],
  ["Anywhere", [["?", "this list"], ["Esc", "close it"]]],
];
function toggleHelp() {
  let dlg = document.getElementById("help");
  if (!dlg) {
    dlg = h("dialog", { id: "help", class: "help", "aria-label": "Keyboard shortcuts" },
      h("div", { class: "row" }, h("h2", null, "Keyboard shortcuts"), h("span", { class: "spacer" }),
        h("button", { class: "btn ghost small", type: "button", "aria-label": "Close", onclick: () => dlg.close() }, "Close")),
      SHORTCUTS.map(([title, rows]) => h("section", null, h("h3", null, title),
        h("dl", { class: "keys" }, rows.map(([k, v]) => [h("dt", null, h("kbd", null, k)), h("dd", null, v)])))));
    document.body.append(dlg);
  }
  if (dlg.open) dlg.close(); else dlg.showModal();
}
window.addEventListener("keydown", (e) => {
  const t = e.target;
  if (e.key !== "?" || (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT"))) return;
  e.preventDefault();
  toggleHelp();
});

window.addEventListener("hashchange", route);
route();

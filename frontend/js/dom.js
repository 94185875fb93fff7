// Tiny DOM helpers: h() builds elements, toast() says something briefly, fmt* format numbers.

/** h("button", {class: "x", onclick}, "text", child) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "style" && typeof v === "object") Object.assign(el.style, v);
      else if (k === "dataset") Object.assign(el.dataset, v);
      else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
      else if (k === "value" || k === "checked" || k === "disabled" || k === "selected" || k === "hidden") el[k] = v;
      else if (v === true) el.setAttribute(k, "");
      else el.setAttribute(k, v);
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// Characters that change how a text reads without showing themselves: controls, and bidi overrides
// and isolates (U+202E turns "invoice\u202Egpj.exe" into "invoiceexe.jpg" on screen), zero-width ones.
const HIDDEN_CHARS = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/g;

/** A file name (as uploaded, so as anyone chose it) fit to show: each hidden character as [U+XXXX]. */
export function safeName(name) {
  return String(name ?? "").replace(HIDDEN_CHARS,
    (c) => `[U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}]`);
}

const SVG_NS = "http://www.w3.org/2000/svg";
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) el.setAttribute(k, v);
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) { while (el.firstChild) el.firstChild.remove(); return el; }

/** Replace el's children (arrays flattened, null/false skipped: native append would print them). */
export function fill(el, ...children) { clear(el); append(el, children); return el; }
export function add(el, ...children) { append(el, children); return el; }

let toastTimer = null;
let shownUntil = 0;
let deferred = null;
/** Say something briefly. The answer to the user's own action replaces whatever shows; a notice of
 * the service's own (`{ notice: true }`: a new model, say) waits until the current message has had its
 * time, so it never wipes the confirmation of a key the user has just pressed. */
export function toast(message, kind = "info", ms = 3200, { notice = false } = {}) {
  const box = document.getElementById("toast");
  if (!box) return;
  if (notice && Date.now() < shownUntil) {
    const first = deferred === null;
    deferred = { message, kind, ms };  // only the newest notice is worth showing late
    if (first) setTimeout(showDeferred, shownUntil - Date.now());
    return;
  }
  box.textContent = message;
  box.className = `toast show ${kind}`;
  shownUntil = Date.now() + ms;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.className = "toast"; }, ms);
}

function showDeferred() {
  const next = deferred;
  deferred = null;
  if (next === null) return;
  if (Date.now() < shownUntil) {  // a newer message of the user's own took the slot meanwhile
    deferred = next;
    setTimeout(showDeferred, shownUntil - Date.now());
    return;
  }
  toast(next.message, next.kind, next.ms);
}

export const pct = (x, digits = 1) => (x === null || x === undefined ? "–" : `${(x * 100).toFixed(digits)}%`);
export const num = (x) => (x === null || x === undefined ? "–" : Number(x).toLocaleString("en"));

export function progressBar(value, label) {
  const bar = h("div", { class: "progress", role: "progressbar", "aria-label": label || "progress",
    "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(Math.round((value || 0) * 100)) },
    h("div", { class: "progress-fill", style: { width: `${Math.max(0, Math.min(1, value || 0)) * 100}%` } }));
  return bar;
}

export function setProgress(bar, value) {
  const v = Math.max(0, Math.min(1, value || 0));
  bar.setAttribute("aria-valuenow", String(Math.round(v * 100)));
  bar.firstChild.style.width = `${v * 100}%`;
}

export function errorText(err) { return err && err.message ? err.message : String(err); }

/** A panel explaining that this server does not have a feature yet. */
export function unavailable(what, route) {
  return h("div", { class: "notice" }, h("strong", null, `${what} is not available on this server yet.`),
    " ", h("span", { class: "muted" }, `(It needs ${route}.)`));
}

export function timeAgo(iso) {
  if (!iso) return "";
  const d = (Date.now() - new Date(iso).getTime()) / 1000;
  if (d < 60) return "just now";
  if (d < 3600) return `${Math.round(d / 60)} min ago`;
  if (d < 86400) return `${Math.round(d / 3600)} h ago`;
  return new Date(iso).toLocaleDateString();
}

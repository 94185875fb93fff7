// The REST client: JSON in and out, the session cookie plus its CSRF header, errors as ApiError.
const BASE = "/api/v1";

export class ApiError extends Error {
  constructor(status, detail) {
    super(describe(detail) || `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
  }
  /** The route is not on this server (yet): the feature should hide or explain itself. */
  get missing() { return this.status === 404 || this.status === 405 || this.status === 501; }
}

/** An error's detail as one sentence a person reads: a rule's message as it is; FastAPI's list of
 * validation errors (`[{loc: ["body", "classes", 0], msg, type}]`) as "The classes (item 1) should have
 * at least 1 character." naming each field in words, never as a list or an object. The one place the
 * browser words an error (every view shows err.message). */
export function describe(detail) {
  if (!detail) return "";
  if (Array.isArray(detail)) return sentence(detail.map(validationClause).filter(Boolean));
  if (typeof detail === "object") return detail.message ? sentence([String(detail.message)]) : sentence(Object.entries(detail).map(([k, v]) => `${fieldWords([k])}: ${v}`));
  return sentence([String(detail)]);
}

const WHERE = new Set(["body", "query", "path", "header", "cookie"]);

function fieldWords(loc) {
  const parts = (loc || []).filter((p, i) => !(i === 0 && WHERE.has(p)));
  const names = parts.filter((p) => typeof p === "string").map((p) => p.replaceAll("_", " "));
  const items = parts.filter((p) => typeof p === "number").map((n) => `item ${n + 1}`);
  const name = names.length ? `the ${names.join(" ")}` : (loc && loc[0] === "body" ? "the request" : "a value");
  return items.length ? `${name} (${items.join(", ")})` : name;
}

function validationClause(e) {
  if (!e || typeof e !== "object") return e ? String(e) : "";
  const field = fieldWords(e.loc);
  if (e.type === "missing") return `${field} is missing`;
  if (e.type === "json_invalid") return `the request is not valid JSON (${e.msg || "it cannot be read"})`;
  const msg = String(e.msg || "is not valid").replace(/^Value error, /, "").replace(/^Assertion failed, /, "").replace(/\.$/, "");
  const lower = /^[A-Z][a-z]/.test(msg) ? msg.charAt(0).toLowerCase() + msg.slice(1) : msg;
  // "Input should be ..." / "String should have ..." say what the field should be.
  return /^(input|string|list|value|field|dictionary|object) /.test(lower)
    ? `${field} ${lower.replace(/^(input|string|list|value|field|dictionary|object) /, "")}`
    : `${field}: ${lower}`;
}

function sentence(clauses) {
  if (!clauses.length) return "";
  const joined = clauses.length === 1 ? clauses[0] : `${clauses.slice(0, -1).join("; ")}; and ${clauses.at(-1)}`;
  const s = joined.charAt(0).toUpperCase() + joined.slice(1);
  return /[.!?]$/.test(s) ? s : `${s}.`;
}

export function csrfToken() {
  const m = document.cookie.match(/(?:^|;\s*)loupe_csrf=([^;]*)/);
  return m ? decodeURIComponent(m[1]) : "";
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

// One id per tab (per page load): the queue leases samples to a user's tab, not only to the user, so
// two tabs of one annotator are never served the same samples.
export const CLIENT_ID = uuid();

/** api("GET", "/projects") -> parsed JSON; throws ApiError. */
export async function api(method, path, body, { headers = {}, raw = false, signal, quiet401 = false } = {}) {
  const opts = { method, headers: { Accept: "application/json", "X-Loupe-Client": CLIENT_ID, ...headers },
    credentials: "same-origin", signal };
  if (method !== "GET" && method !== "HEAD") opts.headers["X-CSRF-Token"] = csrfToken();
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const res = await fetch(BASE + path, opts);
  if (raw) return res;
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = text; }
  }
  if (!res.ok) {
    if (res.status === 401 && !quiet401) onUnauthorized();
    throw new ApiError(res.status, data && typeof data === "object" && "detail" in data ? data.detail : data);
  }
  return data;
}

export const get = (p, o) => api("GET", p, undefined, o);
export const post = (p, b, o) => api("POST", p, b, o);
export const patch = (p, b, o) => api("PATCH", p, b, o);
export const del = (p, o) => api("DELETE", p, undefined, o);

/** POST with retries on network errors and 5xx; an Idempotency-Key makes repeating it safe. */
export async function postIdempotent(path, body, { headers = {}, tries = 4 } = {}) {
  const key = uuid();
  let wait = 400;
  for (let i = 1; ; i++) {
    try {
      return await post(path, body, { headers: { "Idempotency-Key": key, ...headers } });
    } catch (err) {
      const retry = !(err instanceof ApiError) || err.status >= 500 || err.status === 409;
      if (!retry || i >= tries) throw err;
      await new Promise((r) => setTimeout(r, wait));
      wait *= 2;
    }
  }
}

export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Multipart upload with progress (fetch cannot report upload progress; XHR can). */
export function upload(path, files, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const f of files) form.append("files", f, f.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", BASE + path);
    xhr.setRequestHeader("X-CSRF-Token", csrfToken());
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total, "upload"); };
    xhr.upload.onload = () => onProgress(1, "processing");
    xhr.onload = () => {
      let data = null;
      try { data = JSON.parse(xhr.responseText); } catch { data = xhr.responseText; }
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else reject(new ApiError(xhr.status, data && data.detail !== undefined ? data.detail : data));
    };
    xhr.onerror = () => reject(new ApiError(0, "network error during upload"));
    xhr.send(form);
  });
}

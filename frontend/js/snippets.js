// A text project's documents where the other views show an image (issue 19): the sample browser, the
// teach view and the review list show the start of each document. A box is made empty and filled by
// one request per page (GET /projects/{pid}/snippets), not one per sample.
import { get } from "./api.js";
import { h } from "./dom.js";

const BATCH = 200;  // the API's most ids a request

export function isText(project) { return project.kind === "text"; }

// The sample's stand-in: a snippet box for a document, the thumbnail (or the image) for a picture.
export function sampleVisual(project, sid, { cls = "", full = false } = {}) {
  if (isText(project)) {
    return h("div", { class: `snippet ${cls}`.trim(), "data-snippet": String(sid), "aria-label": `Document ${sid}` }, "…");
  }
  return h("img", { src: `/api/v1/samples/${sid}/${full ? "image" : "thumbnail"}`, alt: `Sample ${sid}`, loading: "lazy", class: cls || null });
}

// Fills every empty snippet box under ``root`` with the start of its document.
export async function fillSnippets(pid, root) {
  const boxes = [...root.querySelectorAll("[data-snippet]:not([data-filled])")];
  for (let i = 0; i < boxes.length; i += BATCH) {
    const part = boxes.slice(i, i + BATCH);
    const qs = new URLSearchParams(part.map((b) => ["ids", b.dataset.snippet]));
    let items;
    try { ({ items } = await get(`/projects/${pid}/snippets?${qs}`)); } catch { continue; }
    const byId = new Map(items.map((it) => [String(it.sample_id), it.text]));
    for (const b of part) {
      b.textContent = byId.get(b.dataset.snippet) ?? "(no text)";
      b.dataset.filled = "1";
      b.title = b.textContent;
    }
  }
}

// The whole document of a text sample, for an opened sample (GET /samples/{sid}/text).
export function fullDocument(sid, id) {
  const box = h("div", { class: "document", id, tabindex: "0", "aria-label": `Document ${sid}` }, "…");
  get(`/samples/${sid}/text`).then((d) => { box.textContent = d.text; }).catch(() => { box.textContent = "(the document could not be read)"; });
  return box;
}

// "My recent labels": the label view's strip of the caller's last labels in a project, read from the
// server (GET /projects/{pid}/labels/mine), so it survives a reload. Each item is a button that reopens
// its sample for correction; the label view also asks it where its undo resumes after a reload (the
// newest live label or unsure mark).
import { get } from "./api.js";
import { fill, h } from "./dom.js";

export const RECENT = 50;

/** A strip item as the label view's queue item, to show its sample again (no suggestion: the expert
 * corrects their own label, the model's opinion of it was seen the first time). */
export function itemOf(r) {
  const current = r.current_label ?? null;
  return {
    sample_id: r.sample_id, filename: r.filename, width: r.width, height: r.height,
    image_url: r.image_url || `/api/v1/samples/${r.sample_id}/image`,
    thumbnail_url: r.thumbnail_url || `/api/v1/samples/${r.sample_id}/thumbnail`,
    suggestion: null, score: null, strategy: "correction", details: null, is_audit: false, model_version: null,
    reason: current == null ? "You reopened it: it has no label now." : `You labelled it “${current}”: choose a class to correct it.`,
    correcting: current != null,
  };
}

export class RecentStrip {
  /** @param {number} pid the project; @param {(r: object) => void} onOpen a strip item was chosen */
  constructor(pid, onOpen, { text = false } = {}) {
    this.pid = pid;
    this.onOpen = onOpen;
    this.text = text;  // a text project's documents have no thumbnail (issue 19): a mark stands for each
    this.items = [];  // newest first, one per sample (its newest revision of ours)
    this.el = h("div", { class: "history recent-strip", role: "group", "aria-label": "My recent labels: choose one to correct it" });
  }

  /** The server's newest labels of ours; the ones this page made after its answer stay in front. */
  async load() {
    const res = await get(`/projects/${this.pid}/labels/mine?limit=${RECENT}`);
    const newest = Math.max(0, ...res.items.map((r) => r.label_id));
    const mine = this.items.filter((r) => r.local && (r.label_id == null || r.label_id > newest));
    this.set([...mine, ...res.items]);
    return res.items;
  }

  /** A label given on this page: in front at once (one button added: this runs on every label, between
   * the key press and the next image), its id once the server answers. */
  add(item, label) {
    const { sample_id, filename, width, height, image_url, thumbnail_url } = item;
    const r = { sample_id, filename, width, height, image_url, thumbnail_url, label, current_label: label,
      label_id: null, live: true, local: true };
    for (const old of this.items.filter((x) => x.sample_id === r.sample_id)) old.el?.remove();
    this.items = [r, ...this.items.filter((x) => x.sample_id !== r.sample_id)];
    for (const old of this.items.splice(RECENT)) old.el?.remove();
    this.el.prepend(this.button(r));
    return r;
  }

  /** A label of this page undone: its button says so (the server's list follows). */
  undone(r) {
    r.live = false;
    if (r.el && r.el.isConnected) r.el.replaceWith(this.button(r));
  }

  /** Drop one (its label was not saved). */
  remove(r) {
    this.items = this.items.filter((x) => x !== r);
    r.el?.remove();
  }

  set(rows) {
    const seen = new Set();
    // Labels only: an unsure mark (in the server's list for the undo after a reload) reopens nothing, its
    // sample waits for a reviewer.
    this.items = rows.filter((r) => (r.action ?? "set") === "set")
      .filter((r) => !seen.has(r.sample_id) && seen.add(r.sample_id)).slice(0, RECENT);
    fill(this.el, this.items.map((r) => this.button(r)));
  }

  button(r) {
    const undone = !r.live;
    const name = `#${r.sample_id}: ${undone ? "undone" : r.label}`;
    r.el = h("button", {
      type: "button", class: `hist${undone ? " undone" : ""}`, "data-sample-id": String(r.sample_id),
      title: name, "aria-label": `Reopen ${name} to correct it`,
      // Blurred, so the next Enter or class key is the label view's, not a second click here.
      onclick: (e) => { e.currentTarget.blur(); this.onOpen(r); },
    }, this.text ? h("span", { class: "hist-doc", "aria-hidden": "true" }, "¶") :
      h("img", { src: r.thumbnail_url || `/api/v1/samples/${r.sample_id}/thumbnail`, alt: "", loading: "lazy" }),
    h("span", { class: "hist-label" }, undone ? "undone" : r.label));
    return r.el;
  }
}

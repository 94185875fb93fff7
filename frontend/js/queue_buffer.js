// The label view's buffer of leased queue items. It leases a few items ahead and decodes their images
// before they are shown, so label-and-next is instant; it keeps their leases alive while they wait and
// hands back what is skipped or left behind, so others can have it now rather than when the lease ends.
// Leasing is a POST (with the CSRF header, api.js): a GET of the queue only reads what is held.
import { post } from "./api.js";

const BUFFER_LOW = 4;      // refill when fewer than this many are waiting
const FETCH_MORE = 10;     // new items per refill

// What a text item holds in place of a decoded image's URL: it is ready as it arrives.
const TEXT_READY = "text:";

/** Let go of an item's decoded image. */
export function forget(item) {
  if (item && item.blobUrl) { if (item.blobUrl !== TEXT_READY) URL.revokeObjectURL(item.blobUrl); item.blobUrl = null; }
}

export class QueueBuffer {
  /**
   * @param {number} pid the project
   * @param {object} hooks ``onShow()`` when the current item changed (or there is none left),
   *   ``onReady()`` when a waiting image has been decoded, ``onError(err)`` when the queue could not be read.
   */
  constructor(pid, { onShow, onReady, onError }) {
    this.pid = pid;
    this.hooks = { onShow, onReady, onError };
    this.items = [];           // leased, waiting, in the queue's order
    this.current = null;       // the one on screen
    this.fetching = null;      // the refill or re-queue under way (a promise)
    this.exhausted = false;    // nothing new last time: look again in a while, not in a loop
    this.held = new Set();     // sample ids this page holds a lease on
    this.skipped = new Set();  // skipped here: handed back when the queue serves them again
    this.done = new Set();     // labelled here (the POST may still be on its way)
    this.alive = true;
    this.retry = null;
    this.renewal = null;
  }

  /** How many waiting items have their image decoded. */
  get ready() { return this.items.filter((it) => it.blobUrl).length; }

  release(ids) {
    if (ids.length) post(`/projects/${this.pid}/queue/release`, { sample_ids: ids }).catch(() => {});
  }

  async preload(item) {
    if (item.text != null) {  // a text project's item: its document came with it, nothing to decode
      item.blobUrl = TEXT_READY;
      this.hooks.onReady();
      return item;
    }
    try {
      const res = await fetch(item.image_url, { credentials: "same-origin" });
      if (!res.ok) throw new Error(`image ${res.status}`);
      const url = URL.createObjectURL(await res.blob());
      const pre = new Image();
      pre.src = url;
      await pre.decode().catch(() => {});
      item.blobUrl = url;
    } catch { item.blobUrl = null; }
    this.hooks.onReady();
    return item;
  }

  refill() {
    if (this.fetching || this.exhausted || !this.alive) return this.fetching;
    const limit = Math.min(100, this.held.size + FETCH_MORE);
    this.fetching = post(`/projects/${this.pid}/queue/lease?limit=${limit}`).then(async (res) => {
      const fresh = [];
      const again = [];
      for (const it of res.items) {
        if (this.skipped.has(it.sample_id)) { again.push(it.sample_id); continue; }
        // Held already, or labelled a moment ago (its POST may still be on the way): not new.
        if (this.held.has(it.sample_id) || this.done.has(it.sample_id)) continue;
        this.held.add(it.sample_id);
        fresh.push(it);
      }
      this.release(again);
      if (!fresh.length) {
        // Nothing new for now (all labelled, or leased to others): look again in a while, not in a loop.
        this.exhausted = true;
        clearTimeout(this.retry);
        this.retry = setTimeout(() => {
          this.exhausted = false;
          if (this.alive && this.items.length < BUFFER_LOW) { this.refill(); if (!this.current) this.hooks.onShow(); }
        }, 15000);
      }
      // The first item is shown as soon as it is decoded; the rest decode in the background.
      const loads = fresh.map((it) => this.preload(it));
      this.items.push(...fresh);
      if (!this.current && fresh.length) { await loads[0]; if (!this.current) this.advance(); }
      await Promise.all(loads);
      return true;
    }).catch((err) => {
      if (this.alive) this.hooks.onError(err);
      if (err.status === 403 || err.status === 404) this.exhausted = true;  // retrying will not help
      return false;
    }).then((ok) => {
      this.fetching = null;
      if (!this.current) this.hooks.onShow();
      if (this.alive && !this.exhausted && this.items.length < BUFFER_LOW) setTimeout(() => this.refill(), ok ? 300 : 3000);
    });
    return this.fetching;
  }

  /** The next waiting item on screen (or none), and a refill when few are left. */
  advance() {
    this.current = this.items.shift() || null;
    this.hooks.onShow();
    if (this.items.length < BUFFER_LOW) this.refill();
  }

  /** The current item was labelled: no longer held, and not new if the queue serves it again. */
  labelled(item) {
    this.done.add(item.sample_id);
    this.held.delete(item.sample_id);
  }

  /** Its label was not saved: it waits at the front again. */
  unsaved(item) {
    this.done.delete(item.sample_id);
    this.items.unshift(item);
  }

  /** An undone (or reopened) item comes back on screen, the one that was there waits first; a waiting
   * copy of the same sample goes, so it is not shown twice. */
  back(item) {
    for (const it of this.items.filter((x) => x.sample_id === item.sample_id && x !== item)) {
      if (!item.blobUrl) { item.blobUrl = it.blobUrl; it.blobUrl = null; } else forget(it);
    }
    this.items = this.items.filter((it) => it.sample_id !== item.sample_id);
    if (this.current) this.items.unshift(this.current);
    this.current = item;
    this.held.add(item.sample_id);
    this.done.delete(item.sample_id);
  }

  skip() {
    const it = this.current;
    if (!it) return;
    this.skipped.add(it.sample_id);
    this.held.delete(it.sample_id);
    this.release([it.sample_id]);
    forget(it);
    this.advance();
  }

  /** "Check again": skipped items count as new, and the queue is asked at once. */
  lookAgain() {
    this.exhausted = false;
    this.skipped.clear();
    this.refill();
  }

  /** A new model re-ranks the queue: hand back what we hold (not the one on screen), lease again, and
   * swap the buffer only once the new first items are decoded, so the expert never waits. */
  async requeue() {
    if (this.fetching) await this.fetching.catch(() => {});
    const old = new Map(this.items.map((it) => [it.sample_id, it]));
    const job = (async () => {
      if (old.size) await post(`/projects/${this.pid}/queue/release`, { sample_ids: [...old.keys()] }).catch(() => {});
      const keep = this.current ? 1 : 0;
      const res = await post(`/projects/${this.pid}/queue/lease?limit=${keep + FETCH_MORE}`);
      const fresh = res.items.filter((it) => !(this.current && it.sample_id === this.current.sample_id) &&
        !this.done.has(it.sample_id) && !this.skipped.has(it.sample_id));
      for (const it of fresh) { const was = old.get(it.sample_id); if (was && was.blobUrl) { it.blobUrl = was.blobUrl; was.blobUrl = null; } }
      await Promise.all(fresh.slice(0, 2).filter((it) => !it.blobUrl).map((it) => this.preload(it)));
      if (!this.alive) return;
      old.forEach((it) => forget(it));
      this.items = fresh;
      this.held = new Set([...(this.current ? [this.current.sample_id] : []), ...fresh.map((it) => it.sample_id)]);
      this.exhausted = false;
      this.hooks.onReady();
      if (!this.current) this.advance();
      fresh.slice(2).filter((it) => !it.blobUrl).forEach((it) => this.preload(it));
    })();
    this.fetching = job.catch(() => {}).finally(() => { this.fetching = null; });
    return this.fetching;
  }

  /** Keep the leases of what waits alive: asking for as many as we hold renews them (the queue serves
   * an annotator's own leases first); anything more it hands out is handed back. */
  keepLeases(leaseSeconds) {
    this.renewal = setInterval(() => {
      if (!this.held.size || this.fetching) return;
      post(`/projects/${this.pid}/queue/lease?limit=${Math.min(100, this.held.size)}`).then((res) => {
        this.release(res.items.filter((it) => !this.held.has(it.sample_id)).map((it) => it.sample_id));
      }).catch(() => {});
    }, Math.max(20, leaseSeconds / 2) * 1000);
  }

  /** The view is left: stop, and hand back everything held. */
  close() {
    this.alive = false;
    clearInterval(this.renewal);
    clearTimeout(this.retry);
    this.release([...this.held]);
    this.items.forEach((it) => forget(it));
  }
}

// Zoom (wheel, +/-) and pan (drag) for one image inside a viewport; small images scale by whole
// pixels so 8x8 digits stay crisp.
export class ZoomPan {
  constructor(viewport, img) {
    this.vp = viewport;
    this.img = img;
    this.w = 1; this.h = 1;
    this.zoom = 1; this.px = 0; this.py = 0;
    this.drag = null;
    this._wheel = (e) => { e.preventDefault(); if (e.target.closest("button")) return; const r = this.vp.getBoundingClientRect();
      this.zoomBy(Math.exp(-e.deltaY * 0.0015), e.clientX - r.left, e.clientY - r.top); };
    // One pointer pans; two (a tablet pinch) zoom around their midpoint.
    this.pointers = new Map();
    this._down = (e) => {
      if (e.button !== 0 || e.target.closest("button")) return;
      this.pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
      this.vp.setPointerCapture(e.pointerId);
      this.vp.classList.add("dragging");
      this._grab();
    };
    this._move = (e) => {
      if (!this.pointers.has(e.pointerId)) return;
      this.pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
      const pts = [...this.pointers.values()];
      if (pts.length >= 2 && this.pinch) {
        const d = Math.hypot(pts[0].x - pts[1].x, pts[0].y - pts[1].y);
        const r = this.vp.getBoundingClientRect();
        const factor = d / this.pinch.d;
        this.pinch.d = d;
        this.zoomBy(factor, (pts[0].x + pts[1].x) / 2 - r.left, (pts[0].y + pts[1].y) / 2 - r.top);
      } else if (this.drag) {
        this.px = this.drag.px + e.clientX - this.drag.x;
        this.py = this.drag.py + e.clientY - this.drag.y;
        this.apply();
      }
    };
    this._up = (e) => {
      this.pointers.delete(e.pointerId);
      if (!this.pointers.size) { this.drag = null; this.pinch = null; this.vp.classList.remove("dragging"); } else this._grab();
    };
    this._resize = () => this.apply();
    viewport.addEventListener("wheel", this._wheel, { passive: false });
    viewport.addEventListener("pointerdown", this._down);
    viewport.addEventListener("pointermove", this._move);
    viewport.addEventListener("pointerup", this._up);
    viewport.addEventListener("pointercancel", this._up);
    viewport.addEventListener("dblclick", (e) => { if (!e.target.closest("button")) this.reset(); });
    this.ro = new ResizeObserver(this._resize);
    this.ro.observe(viewport);
  }
  _grab() {
    const pts = [...this.pointers.values()];
    this.drag = pts.length === 1 ? { x: pts[0].x, y: pts[0].y, px: this.px, py: this.py } : null;
    this.pinch = pts.length >= 2 ? { d: Math.hypot(pts[0].x - pts[1].x, pts[0].y - pts[1].y) || 1 } : null;
  }
  setSize(w, h) { this.w = w || 1; this.h = h || 1; this.img.classList.toggle("smooth", Math.max(this.w, this.h) > 256); this.reset(); }
  reset() { this.zoom = 1; this.px = 0; this.py = 0; this.apply(); }
  fit() {
    const vw = this.vp.clientWidth, vh = this.vp.clientHeight;
    let f = Math.min((vw - 32) / this.w, (vh - 32) / this.h);
    if (f > 1) f = Math.floor(f);
    return Math.max(f, 0.01);
  }
  scale() { return this.fit() * this.zoom; }
  zoomBy(factor, cx, cy) {
    const vw = this.vp.clientWidth, vh = this.vp.clientHeight;
    if (cx === undefined) { cx = vw / 2; cy = vh / 2; }
    const old = this.scale();
    this.zoom = Math.max(0.25, Math.min(40, this.zoom * factor));
    const k = this.scale() / old;
    const dx = cx - vw / 2, dy = cy - vh / 2;
    this.px = dx - (dx - this.px) * k;
    this.py = dy - (dy - this.py) * k;
    this.apply();
  }
  apply() {
    const vw = this.vp.clientWidth, vh = this.vp.clientHeight, sc = this.scale();
    const w = this.w * sc, h = this.h * sc;
    Object.assign(this.img.style, { width: `${w}px`, height: `${h}px`, left: `${vw / 2 + this.px - w / 2}px`,
      top: `${vh / 2 + this.py - h / 2}px` });
    this.vp.dataset.zoom = this.zoom.toFixed(2);
  }
  destroy() { this.ro.disconnect(); }
}

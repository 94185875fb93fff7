// Hand-written SVG charts: a learning curve with its confidence band, nothing downloaded.
import { s } from "./dom.js";

function niceTicks(lo, hi, n = 5) {
  const span = hi - lo || 1;
  const step0 = span / n;
  const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((x) => x >= step0) || step0;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(Number(v.toFixed(10)));
  return out;
}

/** points: [{x, y, lo?, hi?, label?}]; target: y value drawn as a dashed line. */
export function lineChart(points, { width = 640, height = 280, xLabel = "", yLabel = "", target = null, yFormat = (v) => v, title = "" } = {}) {
  const m = { l: 52, r: 18, t: 16, b: 42 };
  const W = width - m.l - m.r, H = height - m.t - m.b;
  const xs = points.map((p) => p.x);
  const xMax = Math.max(10, ...xs) * 1.05;
  const ys = points.flatMap((p) => [p.y, p.lo, p.hi]).filter((v) => v != null);
  if (target != null) ys.push(target);
  let yLo = Math.max(0, Math.floor((Math.min(...ys, 1) - 0.05) * 10) / 10);
  if (!ys.length) yLo = 0;
  const yHi = 1;
  const X = (v) => m.l + (v / xMax) * W;
  const Y = (v) => m.t + (1 - (v - yLo) / (yHi - yLo)) * H;
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title || `${yLabel} against ${xLabel}` });
  if (title) svg.append(s("title", null, title));
  const grid = s("g", { class: "grid" });
  const axis = s("g", { class: "axis" });
  for (const t of niceTicks(yLo, yHi, 5)) {
    grid.append(s("line", { x1: m.l, x2: m.l + W, y1: Y(t), y2: Y(t) }));
    axis.append(s("text", { x: m.l - 8, y: Y(t) + 4, "text-anchor": "end" }, yFormat(t)));
  }
  for (const t of niceTicks(0, xMax, 6)) {
    axis.append(s("line", { x1: X(t), x2: X(t), y1: m.t + H, y2: m.t + H + 4 }));
    axis.append(s("text", { x: X(t), y: m.t + H + 18, "text-anchor": "middle" }, Math.round(t)));
  }
  axis.append(s("line", { x1: m.l, x2: m.l + W, y1: m.t + H, y2: m.t + H }));
  axis.append(s("text", { x: m.l + W / 2, y: height - 6, "text-anchor": "middle" }, xLabel));
  axis.append(s("text", { x: 12, y: m.t + H / 2, "text-anchor": "middle", transform: `rotate(-90 12 ${m.t + H / 2})` }, yLabel));
  svg.append(grid, axis);
  if (target != null) {
    svg.append(s("line", { class: "target", x1: m.l, x2: m.l + W, y1: Y(target), y2: Y(target) }),
      s("text", { class: "target-label", x: m.l + W - 4, y: Y(target) - 6, "text-anchor": "end" }, `target ${yFormat(target)}`));
  }
  const pts = points.filter((p) => p.y != null).sort((a, b) => a.x - b.x);
  const banded = pts.filter((p) => p.lo != null && p.hi != null);
  if (banded.length >= 2) {
    const d = banded.map((p, i) => `${i ? "L" : "M"}${X(p.x)},${Y(p.hi)}`).join("") +
      [...banded].reverse().map((p) => `L${X(p.x)},${Y(p.lo)}`).join("") + "Z";
    svg.append(s("path", { class: "band", d }));
  } else {
    for (const p of banded) svg.append(s("line", { class: "line", x1: X(p.x), x2: X(p.x), y1: Y(p.lo), y2: Y(p.hi), opacity: 0.4 }));
  }
  if (pts.length) {
    svg.append(s("path", { class: "line", d: pts.map((p, i) => `${i ? "L" : "M"}${X(p.x)},${Y(p.y)}`).join("") }));
    for (const p of pts) {
      svg.append(s("circle", { class: "dot", cx: X(p.x), cy: Y(p.y), r: 4.5, "data-x": p.x, "data-y": p.y },
        s("title", null, p.label || `${p.x}: ${yFormat(p.y)}`)));
    }
  }
  return svg;
}

// Which key picks which class. Single-character class names ("0".."9", "a", "b") are their own keys,
// so pressing 7 labels "7"; otherwise 1-9, 0, then letters (never s: that is skip; never u: unsure).
const RESERVED = new Set(["s", "u", "+", "-", "=", " ", "enter", "backspace"]);
const POSITIONAL = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0",
  ..."abcdefghijklmnopqrtvwxyz".split("")];

export function classKeys(classes) {
  const own = classes.map((c) => c.toLowerCase());
  const selfKeyed = own.every((c) => c.length === 1 && !RESERVED.has(c)) && new Set(own).size === own.length;
  if (selfKeyed) return own;
  return classes.map((_, i) => POSITIONAL[i] || null);
}

export function keyMap(classes) {
  const keys = classKeys(classes);
  const map = new Map();
  keys.forEach((k, i) => { if (k) map.set(k, classes[i]); });
  return { keys, map };
}

export function isTyping(e) {
  const t = e.target;
  if (document.querySelector("dialog[open]")) return true;  // the shortcuts list is up: keys are not for the view
  return t && (t.tagName === "INPUT" && !["checkbox", "radio", "range", "button"].includes(t.type) ||
    t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
}

export const STRATEGY_NAMES = {
  audit: "random audit sample (measures accuracy honestly)",
  overlap: "second opinion (another annotator's label is hidden)",
  random: "random sample (no model yet, or exploring)",
  least_confidence: "least confident", "least-confidence": "least confident",
  margin: "smallest margin between the top two classes",
  entropy: "highest entropy (most uncertain)",
  kcenter: "covers an unexplored region (k-center)",
  cold_start: "representative of a cluster (cold start)",
  mixed: "mix of uncertainty and coverage",
  typical_first: "mix of uncertainty and coverage (after the typical-first cold start)",
};
export const strategyName = (s) => STRATEGY_NAMES[s] || s || "unknown";

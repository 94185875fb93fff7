// The dashboard's agreement between annotators (GET /metrics: agreement): per pair in plain words,
// with the figures behind them (kappa, intervals, per class) one click away. Every figure that rests on
// few shared samples says so, with its interval.
import { h, num, pct } from "./dom.js";

/** Landis and Koch's words for a kappa: the usual reading of the scale. */
export function kappaWords(k) {
  if (k == null) return "not measurable";
  if (k < 0) return "worse than chance";
  if (k <= 0.2) return "slight";
  if (k <= 0.4) return "fair";
  if (k <= 0.6) return "moderate";
  if (k <= 0.8) return "substantial";
  return "almost perfect";
}

const kappaText = (k) => (k == null ? "–" : k.toFixed(2));
const interval = (ci, fmt) => (ci ? `${fmt(ci[0])} to ${fmt(ci[1])}` : "–");
const pct0 = (x) => pct(x, 0);

/** One pair as a sentence: how often they agree, how far beyond chance, and how sure that is. */
function pairSentence(p) {
  const who = `${p.annotators[0]} and ${p.annotators[1]}`;
  const agree = `${who} chose the same class for ${num(p.agreeing)} of ${num(p.n)} shared sample${p.n === 1 ? "" : "s"} (${pct0(p.agreement)}).`;
  const kappa = p.kappa == null
    ? " Agreement beyond chance cannot be measured yet: they have used only one class between them."
    : ` Beyond what chance would give: ${kappaWords(p.kappa)} agreement (kappa ${kappaText(p.kappa)}).`;
  const few = p.few_samples
    ? ` Only ${num(p.n)} shared samples: too few to be sure${p.kappa_ci ? `; kappa could be anywhere from ${kappaText(p.kappa_ci[0])} to ${kappaText(p.kappa_ci[1])}` : ""}.`
    : "";
  return h("li", { class: "agreement-pair", "data-pair": p.annotators.join("|"), "data-kappa": p.kappa == null ? "" : String(p.kappa) },
    agree, kappa, few ? h("span", { class: "few-samples" }, few) : null);
}

/** The classes they disagree on most, in words. */
function classSentence(classes) {
  const worst = classes.filter((c) => c.agreeing < c.n).sort((a, b) => a.agreement - b.agreement).slice(0, 3);
  if (!worst.length) return classes.length ? h("p", null, "On every class they used, they agreed each time.") : null;
  return h("p", null, "Most disagreement on ", worst.map((c, i) => [i ? (i === worst.length - 1 ? " and " : ", ") : "",
    h("strong", null, c.class), ` (both chose it on ${num(c.agreeing)} of the ${num(c.n)} sample${c.n === 1 ? "" : "s"} either did)`]), ".");
}

function pairTable(pairs) {
  return h("table", { class: "table", "aria-label": "Agreement per annotator pair" },
    h("tr", null, ["annotators", "shared samples", "raw agreement", "95% CI", "Cohen's kappa", "95% CI (bootstrap)", ""].map((t) => h("th", null, t))),
    pairs.map((p) => h("tr", null, h("td", null, p.annotators.join(" · ")), h("td", null, num(p.n)), h("td", null, pct0(p.agreement)),
      h("td", null, interval(p.agreement_ci, pct0)), h("td", { class: "kappa" }, kappaText(p.kappa)), h("td", null, interval(p.kappa_ci, kappaText)),
      h("td", { class: "muted small" }, p.few_samples ? "few samples" : ""))));
}

function classTable(classes, below) {
  return h("table", { class: "table", "aria-label": "Agreement per class" },
    h("tr", null, ["class", "samples either chose it", "both chose it", "agreement", "95% CI", ""].map((t) => h("th", null, t))),
    classes.map((c) => h("tr", null, h("td", null, c.class), h("td", null, num(c.n)), h("td", null, num(c.agreeing)), h("td", null, pct0(c.agreement)),
      h("td", null, interval(c.agreement_ci, pct0)), h("td", { class: "muted small" }, c.n < below ? "few samples" : ""))));
}

/** The panel's content for ``a`` (GET /metrics: agreement), kept open if the reader opened the detail. */
export function agreementView(a, wasOpen = false) {
  const pairs = (a && a.pairs) || [];
  const overlapLine = a && a.overlap > 0
    ? `${pct0(a.overlap)} of samples are labelled by two annotators, the second without seeing the first label` +
      (a.awaiting_second ? `; ${num(a.awaiting_second)} wait for their second opinion.` : ".")
    : "No overlap is set: samples get a second opinion only when someone labels an already labelled one. " +
      "An admin can set an overlap in the project's settings.";
  if (!pairs.length) {
    return [h("p", { class: "muted small" }, overlapLine),
      h("div", { class: "empty" }, "No two annotators have labelled the same samples yet.")];
  }
  return [h("p", { class: "muted small" }, overlapLine),
    h("ul", { class: "agreement-pairs" }, pairs.map(pairSentence)),
    classSentence(a.classes || []),
    h("details", { class: "agreement-details", open: wasOpen }, h("summary", null, "Technical detail"),
      pairTable(pairs),
      h("p", { class: "muted small" }, "Raw agreement: the share of shared samples given the same class (Wilson interval). " +
        "Cohen's kappa: agreement beyond what each annotator's class frequencies give by chance (1 perfect, 0 chance); " +
        `its interval is a bootstrap over the shared samples. Fewer than ${num(a.few_samples_below)} shared samples are marked.`),
      classTable(a.classes || [], a.few_samples_below || 30))];
}

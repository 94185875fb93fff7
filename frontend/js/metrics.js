// Figures derived from GET /metrics, with fallbacks for servers that do not report them yet.

/** Labels to go before the next automatic retrain. */
export function labelsUntilRetrain(m, project) {
  if (typeof m.labels_until_retrain === "number") return m.labels_until_retrain;
  const every = Number((project.settings || {}).retrain_every) || 20;
  const curve = m.learning_curve || [];
  const last = curve.length ? curve[curve.length - 1].labels || 0 : 0;
  return Math.max(0, every - (m.labelled_count - last));
}

/** An accuracy estimate never stands alone: its 95% interval and the audit labels it comes from. */
export function accuracyWithInterval(estimate, ci, auditLabels, pct) {
  if (estimate == null) return "";
  const n = auditLabels == null ? "" : ` on ${auditLabels} audit label${auditLabels === 1 ? "" : "s"}`;
  return ci && ci[0] != null ? `≈ ${pct(estimate, 0)} (95% CI ${pct(ci[0], 0)}–${pct(ci[1], 0)}${n})` : `≈ ${pct(estimate, 0)}${n}`;
}

/** What the dashboard says about the target accuracy (GET /metrics labels_to_target.status). */
export function targetText(t, num, pct) {
  const levels = t.curve_levels_at != null ? `: the fitted curve levels off near ${pct(t.curve_levels_at, 0)}` : "";
  switch (t.status) {
    case "reached": return ["reached", `the estimate is at the target, on ${num(t.audit_labels)} audit labels`];
    case "on_few_labels": return ["not yet sure", `the estimate is at the target, but on only ${num(t.audit_labels)} audit labels: keep labelling`];
    case "needs": return [num(t.labels_needed), "more labels, by the learning curve"];
    case "not_reachable": return ["not reachable", t.labels_needed == null && t.curve_levels_at != null && t.curve_levels_at < t.target
      ? `not with this model${levels}` : `not with this model: it would need more than the ${num(t.unlabelled)} unlabelled samples`];
    default: return ["–", "not enough model versions to say"];
  }
}

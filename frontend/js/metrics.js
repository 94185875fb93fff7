// Figures derived from GET /metrics, with fallbacks for servers that do not report them yet.

/** Labels to go before the next automatic retrain. */
export function labelsUntilRetrain(m, project) {
  if (typeof m.labels_until_retrain === "number") return m.labels_until_retrain;
  const every = Number((project.settings || {}).retrain_every) || 20;
  const curve = m.learning_curve || [];
  const last = curve.length ? curve[curve.length - 1].labels || 0 : 0;
  return Math.max(0, every - (m.labelled_count - last));
}

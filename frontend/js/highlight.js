// The words that drove the suggestion, marked in a text project's document (issue 19). The server
// finds them (GET /samples/{sid}/explanation: the model's n-gram weights for the suggested class, stored
// by the train job, or, once the project has its own encoder, the fall of the suggestion's log-odds
// when each word is dropped: its "method") with each occurrence's place; this marks those places,
// strongest terms first when a bigram and its own words overlap (the first to start and longest wins).
import { get } from "./api.js";
import { h } from "./dom.js";

export function markTerms(el, text, terms, method = "ngrams") {
  const spans = terms.flatMap((t) => t.spans.map(([s, e]) => ({ s, e, t })))
    .filter((sp) => sp.e <= text.length).sort((a, b) => a.s - b.s || b.e - a.e);
  const parts = [];
  let at = 0;
  for (const sp of spans) {
    if (sp.s < at) continue;
    parts.push(text.slice(at, sp.s), h("mark", { class: "drove", "data-term": sp.t.term,
      title: method === "occlusion"
        ? `without “${sp.t.term}” the odds of the suggestion fall ${Math.exp(sp.t.weight).toPrecision(3)}-fold`
        : `“${sp.t.term}” pulls towards the suggestion (weight ${sp.t.weight.toFixed(2)})` }, text.slice(sp.s, sp.e)));
    at = sp.e;
  }
  parts.push(text.slice(at));
  el.replaceChildren(...parts);
}

/** Marks ``it``'s document in ``el`` once its explanation arrives, if ``still()`` (the item is still on
 * screen). Never for an audit item: its suggestion is hidden, and so are the words behind it. */
export async function markWhy(el, it, still) {
  if (it.is_audit || !it.suggestion || it.text == null) return;
  if (!it.why) {
    let terms, method;
    try { ({ terms, method } = await get(`/samples/${it.sample_id}/explanation`)); } catch { return; }
    // None yet (the train job writes a new version's weights just after the queue switches to it): asked
    // again the next time the item is shown.
    if (!terms.length) return;
    it.why = terms;
    it.whyMethod = method;
  }
  if (!still()) return;
  const top = el.scrollTop;
  markTerms(el, it.text, it.why, it.whyMethod);
  el.scrollTop = top;
}

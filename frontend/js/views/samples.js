// Samples: the project's samples as a grid, with filters (status, human label, suggestion, confidence
// range, disagreement, audit, imported folder, file name) and orders (date, confidence, score, similarity
// to a chosen sample), pages by the API's cursor. Tick samples to label them together; open one to see
// its image at full size, its label history, and to correct it.
import { ApiError, get, postIdempotent } from "../api.js";
import { clear, errorText, fill, h, num, pct, safeName, timeAgo, toast, unavailable } from "../dom.js";
import { fillSnippets, fullDocument, isText, sampleVisual } from "../snippets.js";

const PAGE = 100;
const FILTERS = ["status", "label", "suggested", "min_confidence", "max_confidence", "q", "audit", "folder",
  "disagreement", "sort", "similar_to"];
const SORTS = [["created", "Oldest first"], ["-created", "Newest first"], ["confidence", "Least sure first"],
  ["-confidence", "Most sure first"], ["score", "Most informative first"]];
const SOURCES = { human: "", import: "imported", review: "review" };
const ACTIONS = { set: "label", undo: "undo", unsure: "marked unsure" };

export async function render({ main, project, query }) {
  const pid = project.id;
  const canLabel = ["admin", "annotator", "reviewer"].includes(project.role);
  const st = { items: [], cursor: null, selected: new Set(), open: null, seq: 0 };
  const params = Object.fromEntries(FILTERS.map((k) => [k, query.get(k) || ""]));
  // A text project's q searches the documents' words (an index: app/repos/texts.py), not file names.
  const text = isText(project);
  const qLabel = text ? "Words in the text" : "File name contains";

  const field = (label, input) => h("label", { class: "field" }, label, input);
  const choice = (name, opts, aria) => {
    const sel = h("select", { id: `samples-${name}`, name, "aria-label": aria, onchange: () => apply() },
      opts.map(([v, t]) => h("option", { value: v }, t)));
    sel.value = params[name];
    return sel;
  };
  const classOpts = [["", "any"], ...project.classes.map((c) => [c, c])];
  const inputs = {
    status: choice("status", [["", "any"], ["unlabelled", "unlabelled"], ["labelled", "labelled"],
      ["in_review", "in review"], ["unsure", "unsure"]], "Status"),
    label: choice("label", classOpts, "Human label"),
    suggested: choice("suggested", classOpts, "Model suggests"),
    disagreement: choice("disagreement", [["", "any"], ["annotators", "between experts"], ["model", "model vs label"]], "Disagreement"),
    audit: choice("audit", [["", "any"], ["true", "audit only"], ["false", "not audit"]], "Audit"),
    sort: choice("sort", SORTS.map(([v, t]) => [v === "created" ? "" : v, t]), "Order"),
  };
  for (const [name, ph, type] of [["min_confidence", "0", "number"], ["max_confidence", "1", "number"],
    ["q", text ? "words in the text" : "file name contains", "search"], ["folder", "imported folder", "text"]]) {
    inputs[name] = h("input", { id: `samples-${name}`, name, type, placeholder: ph, value: params[name],
      "aria-label": { min_confidence: "Confidence from", max_confidence: "Confidence to", q: qLabel, folder: "Imported folder" }[name],
      ...(type === "number" ? { min: "0", max: "1", step: "0.05", class: "narrow" } : {}),
      onchange: () => apply() });
  }
  const similarChip = h("span", { id: "samples-similar" });
  const grid = h("div", { class: "thumbs sample-grid", id: "sample-grid", role: "group", "aria-label": "Samples" });
  const more = h("button", { class: "btn", type: "button", id: "samples-more", hidden: true, onclick: () => load(false) }, "Show more");
  const info = h("p", { class: "muted small", id: "samples-info", "aria-live": "polite" });
  const bulkLabel = h("select", { id: "samples-bulk-label", "aria-label": "Label for the selected samples" },
    project.classes.map((c) => h("option", { value: c }, c)));
  const bulkCount = h("strong", { id: "samples-selected" }, "0");
  const bulk = h("div", { class: "row bulk-bar", hidden: true },
    bulkCount, " selected ·", bulkLabel,
    h("button", { class: "btn primary small", type: "button", id: "samples-bulk-apply", onclick: labelSelected }, "Label selected"),
    h("button", { class: "btn ghost small", type: "button", onclick: () => { st.selected.clear(); renderSelection(); } }, "Clear"));
  const detail = h("dialog", { class: "sample-detail", id: "sample-detail", "aria-label": "Sample" });

  main.append(h("div", { class: "page" },
    h("div", { class: "page-head" }, h("div", null, h("h1", null, "Samples"),
      h("p", { class: "muted" }, "Find samples by status, label, the model's suggestion and confidence; open one to see its history or correct it."))),
    h("div", { class: "panel filters" }, h("div", { class: "form-grid" },
      field("Status", inputs.status), field("Human label", inputs.label), field("Model suggests", inputs.suggested),
      field("Confidence", h("span", { class: "row" }, inputs.min_confidence, "–", inputs.max_confidence)),
      field("Disagreement", inputs.disagreement), field("Audit", inputs.audit),
      field(text ? "Words" : "File name", inputs.q), field("Folder", inputs.folder), field("Order", inputs.sort)), similarChip),
    canLabel ? bulk : null, info, grid, h("div", { class: "row", style: { marginTop: "14px" } }, more), detail));

  function current() {
    const out = {};
    for (const k of FILTERS) {
      const v = k === "similar_to" ? params.similar_to : inputs[k].value.trim();
      if (v) out[k] = v;
    }
    return out;
  }

  function apply() {
    params.similar_to = params.similar_to && inputs.sort.value === "" ? params.similar_to : "";
    sync();
    load(true);
  }

  function sync() {
    const qs = new URLSearchParams(current()).toString();
    history.replaceState(null, "", `#/projects/${pid}/samples${qs ? `?${qs}` : ""}`);
    fill(similarChip, params.similar_to ? h("span", { class: "chip accent" }, `Most like #${params.similar_to}`,
      h("button", { class: "btn ghost small", type: "button", "aria-label": "Stop ordering by similarity",
        onclick: () => { params.similar_to = ""; apply(); } }, "×")) : null);
  }

  async function load(fresh) {
    const seq = ++st.seq;
    const q = { ...current(), limit: String(PAGE) };
    if (q.similar_to) q.sort = "similarity";
    if (!fresh && st.cursor) q.cursor = st.cursor;
    let page;
    try { page = await get(`/projects/${pid}/samples?${new URLSearchParams(q)}`); } catch (err) {
      if (seq !== st.seq) return;
      fill(grid, err instanceof ApiError && err.status === 404 ? unavailable("Browsing samples", "GET /api/v1/projects/{pid}/samples") :
        h("div", { class: "notice error", id: "samples-error" }, errorText(err)));
      more.hidden = true;
      info.textContent = "";
      return;
    }
    if (seq !== st.seq) return;
    // The grid keeps the last page until the next arrives; data-shown names the filters it shows.
    if (fresh) { st.items = []; st.selected.clear(); clear(grid); grid.dataset.shown = new URLSearchParams(current()).toString(); }
    st.items.push(...page.items);
    st.cursor = page.next_cursor;
    grid.append(...page.items.map(card));
    if (text) fillSnippets(pid, grid);
    if (!st.items.length) grid.append(h("div", { class: "panel empty" }, "No sample matches these filters."));
    more.hidden = !page.next_cursor;
    info.textContent = `${num(st.items.length)} shown${page.next_cursor ? ", more below" : ""}.`;
    renderSelection();
  }

  function card(it) {
    const box = canLabel ? h("input", { type: "checkbox", "aria-label": `Select sample ${it.id}`,
      onchange: () => { if (box.checked) st.selected.add(it.id); else st.selected.delete(it.id); renderSelection(); } }) : null;
    const s = it.suggestion;
    const el = h("div", { class: `thumb sample${it.status === "labelled" ? " labelled" : ""}`, "data-sample-id": String(it.id),
      "data-label": it.label || "", "data-suggested": s ? s.label : "" },
    box,
    h("button", { class: "open", type: "button", "aria-label": `Open sample ${it.id}`, title: safeName(it.filename), onclick: () => open(it.id) },
      sampleVisual(project, it.id)),
    h("div", { class: "tmeta" },
      h("span", { class: "tlabel" }, it.label ? `✓ ${it.label}` : s ? s.label : "?"),
      h("span", { title: "the model's confidence" }, s && s.confidence != null ? pct(s.confidence, 0) : "")),
    it.similarity != null ? h("div", { class: "tmeta muted" }, `similarity ${it.similarity.toFixed(2)}`) : null,
    it.in_review ? h("span", { class: "badge warn", title: "a review of it is open" }, "review") : null,
    it.set_aside ? h("span", { class: "badge", "data-set-aside": it.set_aside,
      title: `set aside (${it.set_aside}): out of the queue and the figures; a label here counts once it is brought back (Data problems)` },
    "set aside") : null);
    el._box = box;
    return el;
  }

  function renderSelection() {
    for (const el of grid.querySelectorAll(".thumb")) {
      const on = st.selected.has(Number(el.dataset.sampleId));
      el.classList.toggle("in", on);
      if (el._box) el._box.checked = on;
    }
    bulkCount.textContent = String(st.selected.size);
    bulk.hidden = !st.selected.size;
  }

  async function labelSelected() {
    const ids = [...st.selected];
    const label = bulkLabel.value;
    try {
      await postIdempotent(`/projects/${pid}/labels`, ids.map((sample_id) => ({ sample_id, label })));
      toast(`${ids.length} sample${ids.length === 1 ? "" : "s"} labelled “${label}”`, "ok");
      await load(true);
    } catch (err) { toast(errorText(err), "error", 6000); }
  }

  async function open(sid) {
    st.open = sid;
    let d;
    try { d = await get(`/samples/${sid}`); } catch (err) { toast(errorText(err), "error", 6000); return null; }
    if (st.open !== sid) return null;
    fill(detail, detailBody(d));
    if (!detail.open) detail.showModal();
    return d;
  }

  function detailBody(d) {
    const s = d.suggestion;
    const facts = [
      ["File", safeName(d.filename)], text ? ["Kind", "text document"] : ["Size", `${d.width} × ${d.height}`],
      ["Label", d.blind ? "hidden until you give yours (another annotator's first label awaits your second opinion)"
        : d.label || "none yet"], ["Model suggests", s ? `${s.label}${s.confidence != null ? ` (${pct(s.confidence, 0)})` : ""}` : "–"],
      ["Score", d.score != null ? d.score.toFixed(3) : "–"], ["Audit", d.is_audit ? "yes" : "no"],
      ["Folder", d.source_folder || "–"], ["In review", d.in_review ? "yes" : "no"],
      ...(d.set_aside ? [["Set aside", `as ${d.set_aside}: out of the queue and the figures until brought back (Data problems)`]] : []),
    ];
    return [
      h("div", { class: "row detail-head" }, h("h2", null, `Sample #${d.id}`),
        h("button", { class: "btn ghost small", type: "button", "aria-label": "Close", onclick: () => { st.open = null; detail.close(); } }, "Close")),
      h("div", { class: "detail-body" },
        text ? fullDocument(d.id, "sample-full-text") :
          h("a", { href: `/api/v1/samples/${d.id}/image`, target: "_blank", rel: "noopener", class: "detail-img" },
            h("img", { src: `/api/v1/samples/${d.id}/image`, alt: `Sample ${d.id} at full size`, id: "sample-full" })),
        h("div", { class: "detail-side" },
          h("dl", { class: "facts", id: "sample-facts" }, facts.map(([k, v]) => [h("dt", null, k), h("dd", { "data-fact": k }, v)])),
          canLabel ? h("div", null, h("h3", null, d.blind ? "Give your opinion" : d.label ? "Correct the label" : "Label it"),
            h("div", { class: "row", id: "sample-classes" }, project.classes.map((c) => h("button", {
              class: `btn small${c === d.label ? " primary" : ""}`, type: "button", "aria-label": `Label as ${c}`,
              onclick: () => correct(d.id, c) }, c)))) : null,
          h("button", { class: "btn small", type: "button", id: "sample-similar", onclick: () => similar(d.id) }, "Show similar samples"))),
      h("h3", null, "History"), historyTable(d.history, d.blind),
    ];
  }

  function historyTable(rows, blind) {
    if (!rows.length) return h("p", { class: "muted", id: "sample-history" }, blind ? "Hidden until you label it." : "Never labelled.");
    return h("table", { class: "table revisions", id: "sample-history" },
      h("thead", null, h("tr", null, ["When", "Who", "What", "Label", "Model showed", "Kind"].map((t) => h("th", null, t)))),
      h("tbody", null, [...rows].reverse().map((r) => h("tr", { "data-label-id": String(r.id) },
        h("td", { title: r.created_at }, timeAgo(r.created_at)),
        h("td", null, r.username || (r.source === "import" ? "import" : "–")),
        h("td", null, ACTIONS[r.action] || r.action),
        h("td", null, r.label || "–"),
        h("td", null, r.suggested_label ? `${r.suggested_label}${r.suggested_confidence != null ? ` ${pct(r.suggested_confidence, 0)}` : ""}` : "–"),
        h("td", null, [r.opinion === "second" ? "second opinion" : "", SOURCES[r.source] ?? r.source].filter(Boolean).join(", ") || "primary")))));
  }

  async function correct(sid, label) {
    try {
      await postIdempotent(`/projects/${pid}/labels`, { sample_id: sid, label });
      toast(`#${sid} is now “${label}”`, "ok");
    } catch (err) { toast(errorText(err), "error", 6000); return; }
    const d = await open(sid);
    const el = grid.querySelector(`.thumb[data-sample-id="${sid}"]`);
    if (d && el && d.label) {  // the sample's label now (another's label stays; this one is a second opinion)
      el.dataset.label = d.label;
      el.classList.add("labelled");
      el.querySelector(".tlabel").textContent = `✓ ${d.label}`;
    }
  }

  function similar(sid) {
    st.open = null;
    detail.close();
    params.similar_to = String(sid);
    inputs.sort.value = "";
    sync();
    load(true);
  }

  sync();
  await load(true);
  return () => { if (detail.open) detail.close(); };
}

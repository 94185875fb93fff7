// Teach by neighbourhood: a grid of samples close to one sample in embedding space, or every
// unlabelled sample the model suggests as one class; a threshold slider picks how many; untick the
// wrong ones; one action labels the rest, and one action undoes it.
import { ApiError, del, get, postIdempotent } from "../api.js";
import { clear, errorText, fill, h, num, pct, s as svg, toast } from "../dom.js";
import { isTyping } from "../keys.js";
import { fillSnippets, isText, sampleVisual } from "../snippets.js";

const LIMIT = 200;
// Applying more than this many asks first, naming the count: two keystrokes must not label a hundred.
const CONFIRM_ABOVE = 20;
// Where the thresholds start: absolute values the user moves, never the view (a threshold relative to
// what is on screen sank after each batch and pre-ticked ever less certain tiles).
const START = { confidence: 0.95, similarity: 0.9 };

/** A small crosshair icon (SVG: no icon font to fetch, no glyph that a system font may lack). */
function crosshair() {
  return svg("svg", { viewBox: "0 0 16 16", width: "14", height: "14", "aria-hidden": "true" },
    svg("circle", { cx: "8", cy: "8", r: "5", fill: "none", stroke: "currentColor", "stroke-width": "1.5" }),
    svg("path", { d: "M8 0v5M8 11v5M0 8h5M11 8h5", stroke: "currentColor", "stroke-width": "1.5" }));
}

export async function render({ main, project, query }) {
  const pid = project.id;
  if (project.role === "viewer") {
    main.append(h("div", { class: "page" }, h("div", { class: "notice" }, "Viewers see the dashboard; teaching needs the annotator role.")));
    return;
  }
  const st = {
    mode: ["suggestion", "cluster", "neighbours", "unexplored"].includes(query.get("mode")) ? query.get("mode") :
      query.get("sample") ? "neighbours" : "suggestion",
    anchor: query.get("sample") ? Number(query.get("sample")) : null,
    cls: query.get("label") || project.classes[0],
    items: [], overrides: new Map(), thresholds: { ...START }, loading: false, lastBatch: null, source: "",
  };
  const kind = () => (st.mode === "suggestion" ? "confidence" : "similarity");
  const threshold = () => st.thresholds[kind()];

  // ---------- controls
  const modeBtns = {
    suggestion: h("button", { type: "button", "aria-pressed": "false", onclick: () => setMode("suggestion") }, "By suggestion"),
    cluster: h("button", { type: "button", "aria-pressed": "false", onclick: () => setMode("cluster") }, "Near a class"),
    neighbours: h("button", { type: "button", "aria-pressed": "false", onclick: () => setMode("neighbours") }, "Around a sample"),
    // Where a class that never comes up may hide: groups of similar samples nobody has labelled yet.
    unexplored: h("button", { type: "button", "aria-pressed": "false", onclick: () => setMode("unexplored") }, "Unexplored groups"),
  };
  const classSel = h("select", { id: "teach-class", "aria-label": "Suggested class to review",
    // Picking the class to review (or whose labelled samples to grow from) is the user's choice of label.
    onchange: () => { st.cls = classSel.value; applyLabel.value = st.cls; load(); } },
  project.classes.map((c) => h("option", { value: c, selected: c === st.cls }, c)));
  const anchorInput = h("input", { type: "number", id: "teach-anchor", min: "1", "aria-label": "Sample id to centre on",
    placeholder: "sample id", value: st.anchor || "", style: { width: "120px" } });
  const anchorForm = h("form", { class: "row", onsubmit: (e) => { e.preventDefault(); if (anchorInput.value) { st.anchor = Number(anchorInput.value); load(); } } },
    anchorInput, h("button", { class: "btn", type: "submit" }, "Show neighbours"));
  const pickLabelText = h("span", null, "Model suggests");
  const pickLabel = h("label", { class: "field", for: "teach-class" }, pickLabelText, classSel);
  const pickAnchor = h("div", { class: "field" }, h("span", null, "Centre on sample"), anchorForm);

  const slider = h("input", { type: "range", id: "teach-threshold", min: "0", max: "1", step: "0.01", value: String(threshold()),
    "aria-label": "Threshold", oninput: () => { st.thresholds[kind()] = Number(slider.value); renderSelection(); } });
  const sliderVal = h("output", { for: "teach-threshold", class: "mono" });
  const sliderName = h("span", null, "Confidence at least");
  // Empty until a person chooses it (or the anchor carries a person's label): never the model's guess.
  const applyLabel = h("select", { id: "teach-apply-label", "aria-label": "Label to apply" },
    h("option", { value: "", selected: !query.get("label") }, "— choose —"),
    project.classes.map((c) => h("option", { value: c, selected: c === query.get("label") }, c)));

  const countEl = h("span", { class: "count", id: "teach-count", "aria-live": "polite" });
  const applyBtn = h("button", { class: "btn primary", type: "button", id: "teach-apply", onclick: () => apply() }, "Label them");
  const undoBar = h("div", { class: "notice ok row", hidden: true, role: "status" });
  const confirmBar = h("div", { class: "notice warn row", id: "teach-confirm", hidden: true, role: "alertdialog" });
  const grid = h("div", { class: "thumbs", role: "group", "aria-label": "Samples to label" });
  const status = h("div", { class: "muted small" });
  const anchorBox = h("div", { class: "row", hidden: true });

  import("../status.js").then((m) => main.prepend(m.statusLine(project.id)));
  main.append(h("div", { class: "page" },
    h("div", { class: "page-head" }, h("div", null, h("h1", null, "Teach by neighbourhood"),
      h("p", { class: "muted" }, "Label many at once: check the grid, untick the wrong ones, apply one label to the rest.")),
      h("div", { class: "mode-switch", role: "group", "aria-label": "What to show" }, modeBtns.suggestion, modeBtns.cluster, modeBtns.neighbours,
        modeBtns.unexplored)),
    h("div", { class: "panel" },
      h("div", { class: "teach-controls" },
        h("div", null, pickLabel, pickAnchor),
        h("div", { class: "field" }, sliderName, h("div", { class: "slider-row" }, slider, sliderVal)),
        h("label", { class: "field", for: "teach-apply-label" }, "Label to apply", applyLabel)),
      anchorBox),
    h("div", { class: "apply-bar" }, countEl, h("span", { class: "spacer" }),
      h("span", { class: "muted small" }, h("kbd", null, "Ctrl"), "+", h("kbd", null, "Enter"), " apply · ", h("kbd", null, "Ctrl"), "+", h("kbd", null, "Z"), " undo"),
      h("button", { class: "btn ghost small", type: "button", onclick: () => setAll(true) }, "Tick all"),
      h("button", { class: "btn ghost small", type: "button", onclick: () => setAll(false) }, "Untick all"),
      applyBtn),
    confirmBar, undoBar, status, grid));

  function setMode(mode) {
    st.mode = mode;
    for (const [m, b] of Object.entries(modeBtns)) b.setAttribute("aria-pressed", String(mode === m));
    pickLabel.hidden = mode === "neighbours" || mode === "unexplored";
    pickLabelText.textContent = mode === "cluster" ? "Near the samples labelled" : "Model suggests";
    pickAnchor.hidden = mode !== "neighbours";
    sliderName.textContent = mode === "suggestion" ? "Confidence at least" : "Similarity at least";
    slider.value = String(threshold());
    load();
  }

  const value = (it) => (st.mode === "suggestion" ? (it.suggestion ? it.suggestion.confidence : 0) : (it.similarity ?? 0));
  const labellable = (it) => !it.status || it.status === "unlabelled";
  const included = (it) => labellable(it) && (st.overrides.has(it.sample_id) ? st.overrides.get(it.sample_id) : value(it) >= threshold());
  // The current model suggests another class than the one about to be applied.
  const disagrees = (it) => !!(it.suggestion && applyLabel.value && it.suggestion.label !== applyLabel.value);

  // ---------- data
  /** ``keep``: after a batch, what the user unticked stays unticked (it was wrong a moment ago). */
  async function load({ keep = false } = {}) {
    const seq = (st.seq = (st.seq || 0) + 1);  // a newer load wins; an older answer is dropped
    if (!keep) st.overrides.clear();
    hideConfirm();
    st.items = [];
    clear(grid);
    anchorBox.hidden = true;
    if (st.mode === "neighbours" && !st.anchor) {
      fill(status, "Enter a sample id, or open this view from the label view's “Teach its neighbours”.");
      renderSelection();
      return;
    }
    status.textContent = "Loading…";
    st.loading = true;
    try {
      const items = st.mode === "suggestion" ? await loadSuggestions(st.cls) :
        st.mode === "cluster" ? await loadCluster(st.cls) : st.mode === "unexplored" ? await loadUnexplored() :
          await loadNeighbours(st.anchor);
      if (seq !== st.seq) return;
      st.items = items;
      st.source = items.source || "";
      if (items.applyLabel !== undefined) applyLabel.value = items.applyLabel;
      if (items.anchor) { anchorBox.hidden = false; fill(anchorBox, items.anchor); if (isText(project)) fillSnippets(pid, anchorBox); }
      status.textContent = st.items.length ? st.source : st.mode === "unexplored" ?
        "No unexplored groups: every group of similar samples has labels (or the model predates this view)." : st.mode === "cluster" ? `Nothing near “${st.cls}” yet: label a few “${st.cls}” first.` : (st.mode === "suggestion" ?
        `No unlabelled sample is suggested as “${st.cls}”${project.current_model_version ? "" : " (there is no model yet: label some and train)"}.` : "No neighbours found.");
    } catch (err) {
      fill(status, h("div", { class: "notice" }, errorText(err)));
    } finally { st.loading = false; }
    renderGrid();
  }

  async function loadSuggestions(cls) {
    try {
      const res = await get(`/projects/${pid}/suggestions?label=${encodeURIComponent(cls)}&limit=${LIMIT}`);
      res.items.source = `${res.items.length} unlabelled samples the model suggests as “${cls}”, most confident first.`;
      return res.items;
    } catch (err) {
      if (!(err instanceof ApiError) || !err.missing) throw err;
    }
    // This server has no /suggestions yet: join the current predictions with the unlabelled samples.
    const preds = await get(`/projects/${pid}/predictions?limit=100000`);
    if (!preds.model_version) return [];
    const unl = new Set();
    let cursor = "";
    for (let page = 0; page < 20; page++) {
      const res = await get(`/projects/${pid}/samples?status=unlabelled&limit=1000${cursor ? `&cursor=${cursor}` : ""}`);
      res.items.forEach((s) => unl.add(s.id));
      if (!res.next_cursor) break;
      cursor = encodeURIComponent(res.next_cursor);
    }
    const items = preds.items.filter((p) => p.label === cls && unl.has(p.sample_id))
      .sort((a, b) => b.confidence - a.confidence).slice(0, LIMIT)
      .map((p) => ({ sample_id: p.sample_id, status: "unlabelled", label: null, similarity: null,
        suggestion: { label: p.label, confidence: p.confidence }, thumbnail_url: `/api/v1/samples/${p.sample_id}/thumbnail` }));
    items.source = `${items.length} unlabelled samples model v${preds.model_version} suggests as “${cls}”, most confident first.`;
    return items;
  }

  /** Typical samples of groups nobody has labelled: nothing is pre-ticked (no threshold covers them);
   * tick the ones of the class you are looking for. */
  async function loadUnexplored() {
    const res = await get(`/projects/${pid}/unexplored?limit=${LIMIT}`);
    res.items.source = `${res.items.length} typical samples of groups nobody has labelled yet: tick the ones that are “${applyLabel.value || "…"}”.`;
    return res.items;
  }

  async function loadNeighbours(sid) {
    let res;
    try {
      res = await get(`/projects/${pid}/neighbours?sample_id=${sid}&limit=${LIMIT}`);
    } catch (err) {
      if (err instanceof ApiError && err.missing && !/sample/i.test(err.message)) {
        throw new Error("Neighbourhoods need the API's GET /projects/{pid}/neighbours, which this server does not have yet. “By suggestion” works.");
      }
      throw err;
    }
    let anchor = null;
    try { anchor = await get(`/samples/${sid}`); } catch { /* shown without its details */ }
    const items = res.items.filter((it) => it.sample_id !== sid).sort((a, b) => (b.similarity ?? 0) - (a.similarity ?? 0));
    items.anchor = [isText(project) ? sampleVisual(project, sid, { cls: "anchor-text" }) :
      h("img", { src: `/api/v1/samples/${sid}/thumbnail`, alt: `Sample ${sid}`, class: "anchor-img" }),
      h("div", null, h("strong", null, `Around #${sid}`),
        h("div", { class: "muted small" }, anchor ? (anchor.label ? `labelled “${anchor.label}”` : "unlabelled") : ""))];
    // The anchor's own label, given by a person; otherwise nothing until the user picks one (the model's
    // guess was preset here, and a wrong guess went onto a whole neighbourhood).
    items.applyLabel = anchor && anchor.label && project.classes.includes(anchor.label) ? anchor.label : "";
    items.source = `${items.length} samples nearest to #${sid} in the embedding space, most similar first.`;
    return items;
  }

  /** The neighbourhood of a class: nearest samples to those already labelled as it, each scored by its
   * best similarity to any of them (one request: the server merges). */
  async function loadCluster(cls) {
    const seeds = (await get(`/projects/${pid}/samples?status=labelled&label=${encodeURIComponent(cls)}&limit=20`)).items.map((x) => x.id);
    if (!seeds.length) return [];
    const query = seeds.map((sid) => `sample_id=${sid}`).join("&");
    const page = await get(`/projects/${pid}/neighbours?${query}&limit=${LIMIT}`).catch((err) => {
      if (err instanceof ApiError && err.missing && !/sample/i.test(err.message)) throw new Error("Neighbourhoods need the API's GET /projects/{pid}/neighbours.");
      throw err;
    });
    const items = page.items;
    items.applyLabel = cls;
    items.source = `${items.length} samples nearest to ${seeds.length} labelled “${cls}” in the embedding space, most similar first.`;
    return items;
  }

  // ---------- grid
  function renderGrid() {
    clear(grid);
    for (const it of st.items) {
      const box = h("input", { type: "checkbox", "aria-label": `Include sample ${it.sample_id}`, disabled: !labellable(it),
        onchange: () => { st.overrides.set(it.sample_id, box.checked); renderSelection(); } });
      const v = value(it);
      const card = h("div", { class: "thumb", "data-sample-id": String(it.sample_id), "data-value": String(v ?? ""),
        "data-suggested": it.suggestion ? it.suggestion.label : "",
        onclick: (e) => { if (e.target === box || e.target.closest("button") || !labellable(it)) return;
          box.checked = !box.checked; st.overrides.set(it.sample_id, box.checked); renderSelection(); } },
      box,
      isText(project) ? sampleVisual(project, it.sample_id) : h("img", { src: it.thumbnail_url, alt: `Sample ${it.sample_id}`, loading: "lazy" }),
      h("div", { class: "tmeta" },
        h("span", { class: "tlabel" }, it.label ? `✓ ${it.label}` : it.suggestion ? it.suggestion.label : "?"),
        h("span", { title: st.mode === "suggestion" ? "confidence" : "similarity" }, v == null ? "" : pct(v, 0))),
      st.mode !== "suggestion" ? h("button", { class: "centre", type: "button", "aria-label": `Centre on sample ${it.sample_id}`,
        title: "Centre the grid on this sample", onclick: () => { st.anchor = it.sample_id; anchorInput.value = String(it.sample_id); setMode("neighbours"); } }, crosshair()) : null);
      it._box = box; it._card = card;
      grid.append(card);
    }
    if (isText(project)) fillSnippets(pid, grid);
    renderSelection();
  }

  function renderSelection() {
    hideConfirm();
    sliderVal.textContent = Number(threshold()).toFixed(2);
    let n = 0, against = 0;
    for (const it of st.items) {
      const inc = included(it);
      if (inc) n++;
      if (inc && disagrees(it)) against++;
      if (it._box) {
        it._box.checked = inc;
        it._card.classList.toggle("in", inc);
        it._card.classList.toggle("out", !inc && labellable(it) && value(it) >= threshold());
        it._card.classList.toggle("below", !inc && value(it) < threshold());
        it._card.classList.toggle("disagree", inc && disagrees(it));
      }
    }
    const lbl = applyLabel.value;
    fill(countEl, h("strong", null, num(n)), ` of ${num(st.items.filter(labellable).length)} would be labelled `,
      lbl ? h("strong", null, `“${lbl}”`) : h("em", null, "(choose a label to apply)"),
      lbl ? h("span", { class: against ? "disagree-count warn" : "disagree-count muted", id: "teach-disagree",
        "data-count": String(against), title: "ticked tiles whose current suggestion is another class" },
      ` · the model disagrees on ${num(against)}`) : null);
    applyBtn.disabled = n === 0 || !lbl;
    applyBtn.textContent = !lbl ? "Choose a label" : n ? `Label ${num(n)} as “${lbl}”` : "Label them";
  }
  applyLabel.addEventListener("change", renderSelection);

  function setAll(on) {
    for (const it of st.items) if (labellable(it)) st.overrides.set(it.sample_id, on);
    renderSelection();
  }

  // ---------- apply and undo, each one action
  function hideConfirm() { confirmBar.hidden = true; clear(confirmBar); }

  async function apply(confirmed = false) {
    const chosen = st.items.filter(included);
    const label = applyLabel.value;
    if (!chosen.length || !label) return;
    if (chosen.length > CONFIRM_ABOVE && !confirmed) {
      const against = chosen.filter(disagrees).length;
      fill(confirmBar, h("span", null, h("strong", null, `Label ${num(chosen.length)} samples as “${label}”?`),
        against ? ` The current model thinks ${num(against)} of them are something else.` : ""),
      h("span", { class: "spacer" }),
      h("button", { class: "btn small primary", type: "button", id: "teach-confirm-yes", onclick: () => apply(true) },
        `Yes, label ${num(chosen.length)}`),
      h("button", { class: "btn small ghost", type: "button", onclick: () => hideConfirm() }, "Cancel"));
      confirmBar.hidden = false;
      confirmBar.querySelector("#teach-confirm-yes").focus();
      return;
    }
    hideConfirm();
    applyBtn.disabled = true;
    try {
      const res = await postIdempotent(`/projects/${pid}/labels`,
        chosen.map((it) => ({ sample_id: it.sample_id, label })), { headers: { "X-Label-Batch": "1" } });
      st.lastBatch = { batchId: res.batch_id || null, ids: res.items.map((r) => r.id), count: res.created, label };
      showUndo();
      toast(`Labelled ${res.created} as “${label}”.`, "ok");
      await load({ keep: true });
    } catch (err) {
      toast(`Nothing was labelled: ${errorText(err)}`, "error", 6000);
      applyBtn.disabled = false;
      // Some were labelled meanwhile (another tab, another annotator): show what is left.
      if (err instanceof ApiError && err.status === 409) await load({ keep: true });
    }
  }

  function showUndo() {
    const b = st.lastBatch;
    undoBar.hidden = !b;
    if (!b) return;
    fill(undoBar, h("span", null, `Labelled ${num(b.count)} samples as “${b.label}”.`), h("span", { class: "spacer" }),
      h("button", { class: "btn small", type: "button", id: "teach-undo", onclick: () => undo() }, "Undo this batch"));
  }

  async function undo() {
    const b = st.lastBatch;
    if (!b) { toast("Nothing to undo."); return; }
    st.lastBatch = null;
    undoBar.hidden = true;
    try {
      let done = false;
      if (b.batchId) {
        try { await del(`/label-batches/${encodeURIComponent(b.batchId)}`); done = true; }
        catch (err) { if (!(err instanceof ApiError) || !err.missing) throw err; }
      }
      if (!done) {
        // No batch route on this server: undo label by label, a few at a time.
        const queue = [...b.ids];
        const worker = async () => { while (queue.length) await del(`/labels/${queue.shift()}`); };
        await Promise.all([worker(), worker(), worker(), worker()]);
      }
      toast(`Undone: ${b.count} samples are unlabelled again.`);
      await load();
    } catch (err) {
      st.lastBatch = b;
      showUndo();
      toast(`Undo failed: ${errorText(err)}`, "error", 6000);
    }
  }

  function onKey(e) {
    if (isTyping(e)) return;
    if ((e.ctrlKey || e.metaKey) && e.key === "Enter") { e.preventDefault(); apply(); }
    else if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "z") { e.preventDefault(); undo(); }
  }
  window.addEventListener("keydown", onKey);

  setMode(st.mode);
  return () => window.removeEventListener("keydown", onKey);
}

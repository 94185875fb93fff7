// The label view: one large image (a text project: the document, scrolling, its start in view), the
// model's suggestion and why it asked, keys for everything, and a local buffer of leased items whose
// images are already decoded (queue_buffer.js), so label-and-next is instant.
import { del, get, postIdempotent } from "../api.js";
import { clear, errorText, fill, h, num, pct, progressBar, safeName, setProgress, toast } from "../dom.js";
import { isTyping, keyMap, strategyName } from "../keys.js";
import { ZoomPan } from "../zoom.js";
import { labelsUntilRetrain } from "../metrics.js";
import { forget, QueueBuffer } from "../queue_buffer.js";
import { itemOf, RECENT, RecentStrip } from "../recent_labels.js";
import { CommentsPanel, GuidelinesPanel } from "../notes.js";
import { markWhy } from "../highlight.js";

const UNDO_DEPTH = 50;

export async function render({ main, project }) {
  const pid = project.id;
  if (project.role === "viewer") {
    main.append(h("div", { class: "page" }, h("div", { class: "notice" }, "Viewers see the dashboard; labelling needs the annotator role."),
      h("p", null, h("a", { href: `#/projects/${pid}/dashboard` }, "Open the dashboard"))));
    return;
  }
  const { keys, map } = keyMap(project.classes);
  const st = {
    undo: [], session: 0, labelled: project.labelled_count, total: project.sample_count,
    metrics: null, sinceMetrics: 0, pending: 0, undoing: 0, writes: 0, modelVersion: project.current_model_version, busyUndo: false,
  };
  // The page's label writes (labels and undos) go out one after another, in the order the keys were
  // pressed: sent together, a slow request let a later key's label be stored first, and the annotator's
  // undo of their last label was refused (the server lets an annotator undo only their newest).
  let writes = Promise.resolve();
  function inOrder(write) {
    const done = writes.catch(() => {}).then(write);
    writes = done;
    return done;
  }
  const queue = new QueueBuffer(pid, {
    onShow: () => show(),
    onReady: () => markReady(),
    onError: (err) => toast(`Could not load the queue: ${errorText(err)}`, "error"),
  });

  // ---------- layout
  const img = h("img", { alt: "", id: "label-image", draggable: "false" });
  const zoomControls = h("div", { class: "zoom-controls" },
    h("button", { class: "btn ghost", type: "button", "aria-label": "Zoom out", onclick: () => zoom.zoomBy(1 / 1.25) }, "−"),
    h("button", { class: "btn ghost", type: "button", "aria-label": "Fit the image (reset zoom)", onclick: () => zoom.reset() }, "Fit"),
    h("button", { class: "btn ghost", type: "button", "aria-label": "Zoom in", onclick: () => zoom.zoomBy(1.25) }, "+"));
  const viewport = h("div", { class: "viewport", "aria-label": "Image: scroll or +/- to zoom, drag to pan, double-click to reset" }, img, zoomControls);
  // A text project's document in place of the image: it scrolls, and each new one starts at its top.
  const isText = project.kind === "text";
  const textView = h("div", { class: "text-view", id: "label-text", tabindex: "0", role: "document",
    "aria-label": "Document to label (scrolls)", hidden: !isText });
  const zoom = new ZoomPan(viewport, img);
  const headInfo = h("span", { class: "sample-info" }, "loading…");
  const position = h("span", { class: "muted small" });
  const stage = h("section", { class: "stage", "aria-label": "Sample to label" },
    h("div", { class: "stage-head" }, headInfo, position),
    viewport, textView,
    h("div", { class: "stage-foot" },
      h("span", null, h("kbd", null, "Enter"), " accept · ", h("kbd", null, "⌫"), " undo · ", h("kbd", null, "S"), " skip · ", h("kbd", null, "U"), " unsure · ",
        h("kbd", null, "+"), h("kbd", null, "−"), " zoom · ", h("kbd", null, "?"), " all keys"),
      h("a", { class: "teach-link", href: `#/projects/${pid}/teach`, "aria-label": "Teach the neighbours of this sample" }, "Teach its neighbours →")));
  const done = h("div", { class: "done-box", hidden: true });
  stage.insertBefore(done, viewport.nextSibling);

  const sugLabel = h("div", { class: "suggestion-label", "aria-live": "polite" }, "–");
  const sugConf = progressBar(0, "Suggestion confidence");
  const sugText = h("div", { class: "small muted" });
  const sugBox = h("div", { class: "suggestion none" }, sugLabel,
    h("div", { class: "conf-bar" }, sugText, sugConf));
  const why = h("dl", { class: "why", "aria-label": "Why this sample was asked" });
  const classBtns = project.classes.map((c, i) => h("button", {
    class: "btn class-btn", type: "button", "data-class": c, title: c, "aria-label": `Label as ${c}${keys[i] ? ` (key ${keys[i]})` : ""}`,
    // Blurred after a click, so a later Space or Enter is a shortcut, not a second click on this button.
    onclick: (e) => { e.currentTarget.blur(); choose(c); },
  }, keys[i] ? h("kbd", null, keys[i].toUpperCase()) : null, h("span", { class: "cname" }, c)));
  // Many classes: "/" opens a filter; Enter takes the first match.
  const manyClasses = project.classes.length > 12;
  const classFilter = h("input", { type: "search", id: "class-filter", placeholder: "/ to find a class, Enter to choose",
    "aria-label": "Find a class", hidden: !manyClasses,
    oninput: () => {
      const q = classFilter.value.trim().toLowerCase();
      classBtns.forEach((b) => { b.hidden = Boolean(q) && !b.dataset.class.toLowerCase().includes(q); });
    },
    onkeydown: (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        const hit = classBtns.find((b) => !b.hidden);
        if (hit && classFilter.value.trim()) { resetFilter(); choose(hit.dataset.class); }
      } else if (e.key === "Escape") { e.preventDefault(); resetFilter(); }
    } });
  function resetFilter() { classFilter.value = ""; classBtns.forEach((b) => { b.hidden = false; }); classFilter.blur(); }
  const sessionCount = h("div", { class: "stat-value", id: "session-count" }, "0");
  const untilRetrain = h("div", { class: "stat-value", id: "until-retrain" }, "–");
  const untilSub = h("div", { class: "stat-sub" }, "labels until the next retrain");
  const projectCount = h("div", { class: "stat-sub", id: "project-count" });
  // The last labels of ours, from the server: each reopens its sample for a correction.
  const recent = new RecentStrip(pid, (r) => reopen(r), { text: isText });
  const acceptBtn = h("button", { class: "btn primary", type: "button", "aria-label": "Accept suggestion (Enter)", onclick: () => accept() },
    "Accept");
  const undoBtn = h("button", { class: "btn", type: "button", "aria-label": "Undo last label (Backspace)", onclick: () => undo() }, "Undo");
  const skipBtn = h("button", { class: "btn", type: "button", "aria-label": "Skip (S)", onclick: () => skip() }, "Skip");
  // Not sure: the sample goes to the review list, and is no label (to train on or count) until decided.
  const unsureBtn = h("button", { class: "btn", type: "button", id: "unsure-btn", "aria-label": "Unsure: send to review (U)",
    onclick: (e) => { e.currentTarget.blur(); unsure(); } }, "Unsure");
  const comments = new CommentsPanel();
  const guidelines = new GuidelinesPanel(project);

  const side = h("aside", { class: "side", "aria-label": "Labelling controls" },
    h("div", { class: "panel" }, h("h3", null, "Model suggests"), sugBox, why,
      h("div", { class: "actions-row" }, acceptBtn, skipBtn, unsureBtn, undoBtn)),
    h("div", { class: "panel" }, h("h3", null, "Choose a class"), classFilter, h("div", { class: `classes${project.classes.every((c) => c.length <= 3) ? " compact" : ""}` }, classBtns)),
    h("div", { class: "panel" }, comments.el),
    guidelines.el,
    h("div", { class: "panel" },
      h("div", { class: "counter" },
        h("div", null, h("div", { class: "stat-label" }, "This session"), sessionCount, projectCount),
        h("div", null, h("div", { class: "stat-label" }, "Retrain"), untilRetrain, untilSub)),
      h("h3", { class: "recent-head" }, "My recent labels"), recent.el));
  main.append(h("div", { class: "label-layout" }, stage, side));
  import("../status.js").then((m) => side.prepend(m.statusLine(project.id)));

  // ---------- the current item
  /** How many waiting items have their image decoded (a test hook, and honest about the buffer). */
  function markReady() {
    stage.dataset.ready = String(queue.ready);
    position.textContent = queue.current ? `${queue.items.length} more ready` : "";
  }

  function show() {
    const it = queue.current;
    classBtns.forEach((b) => b.classList.remove("suggested"));
    if (!it || comments.sampleId !== it.sample_id) comments.show(it ? it.sample_id : null);
    if (!it) {
      viewport.hidden = true;
      textView.hidden = true;
      done.hidden = false;
      fill(done, queue.fetching ? h("div", null, "Loading the next samples…") : h("div", null,
        h("h2", null, "Nothing left in your queue"),
        h("p", null, queue.exhausted ? "Every sample is labelled or leased to someone else." : ""),
        h("button", { class: "btn", type: "button", onclick: () => { queue.lookAgain(); show(); } }, "Check again")));
      headInfo.textContent = "";
      stage.removeAttribute("data-sample-id");
      setSuggestion(null);
      clear(why);
      return;
    }
    viewport.hidden = isText;
    textView.hidden = !isText;
    done.hidden = true;
    if (isText) showText(it);
    else {
      img.src = it.blobUrl || it.image_url;
      img.alt = `Sample ${it.sample_id}`;
      zoom.setSize(it.width, it.height);
    }
    stage.dataset.sampleId = String(it.sample_id);
    stage.dataset.filename = it.filename;
    fill(headInfo, h("strong", null, `#${it.sample_id}`), " ", h("span", { class: "muted", title: safeName(it.filename) },
      isText ? safeName(it.filename) : `${it.width}×${it.height} px`),
      // A second opinion (the project's overlap): someone labelled it; their label is not shown.
      it.second_opinion ? [" ", h("span", { class: "badge second-opinion", title: "Another annotator labelled this " +
        "sample; label it as you see it. Their label is not shown; the two are compared on the dashboard." },
      "second opinion")] : null);
    stage.dataset.secondOpinion = it.second_opinion ? "1" : "";
    markReady();
    // On audit samples the suggestion stays hidden: the expert's label must not lean on the model,
    // or the accuracy it measures would flatter the model.
    setSuggestion(it.is_audit ? null : it.suggestion, it.is_audit);
    // The reason in the expert's words; scores, clusters and the strategy one click away.
    fill(why,
      h("dt", null, "Why asked"), h("dd", { class: "why-reason" }, it.reason || strategyName(it.strategy)),
      h("dt", null, "Model"), h("dd", null, it.strategy === "correction" ? "–" :
        it.model_version == null ? "none yet" : `v${it.model_number ?? it.model_version}`),
      h("dt", { class: "why-more-head" }, ""), h("dd", null, h("details", { class: "why-details" }, h("summary", null, "Technical detail"),
        h("div", { class: "mono small" }, it.details || "–"),
        h("div", { class: "muted small" }, `strategy ${it.strategy || "–"} · score ${it.score == null ? "–" : it.score.toFixed(3)}`))));
    stage.querySelector(".teach-link").href = `#/projects/${pid}/teach?sample=${it.sample_id}`;
    it.shownAt = performance.now();
    if (st.swapStart != null) {
      // Key press to the next frame with the new image: what "no visible wait" means, measured.
      const t0 = st.swapStart;
      st.swapStart = null;
      requestAnimationFrame(() => { stage.dataset.swapMs = String(Math.round(performance.now() - t0)); });
    }
  }

  /** The document on screen from its top: the queue item's first 2,000 characters at once, the whole
   * text (``GET /samples/{sid}/text``) when it is longer or not carried (a reopened label). */
  function showText(it) {
    textView.textContent = it.text ?? "";
    textView.scrollTop = 0;
    const still = () => queue.current === it;
    markWhy(textView, it, still);  // the words that drove the suggestion (highlight.js)
    if (it.text != null && it.text.length < 2000) return;
    get(`/samples/${it.sample_id}/text`).then((r) => {
      it.text = r.text;
      if (still()) { const top = textView.scrollTop; textView.textContent = r.text; textView.scrollTop = top; markWhy(textView, it, still); }
    }).catch((err) => toast(`Could not load the text of #${it.sample_id}: ${errorText(err)}`, "error"));
  }

  function setSuggestion(sug, audit = false) {
    if (!sug) {
      sugBox.classList.add("none");
      sugLabel.textContent = audit ? "hidden" : "none yet";
      sugText.textContent = !queue.current ? "" : audit ? "An audit sample: label it on your own, so the accuracy estimate stays honest." :
        st.modelVersion == null ? "No model yet: your labels train the first one." : "The model has no suggestion for this one.";
      setProgress(sugConf, 0);
      acceptBtn.disabled = true;
      return;
    }
    sugBox.classList.remove("none");
    sugLabel.textContent = sug.label;
    sugText.textContent = `confidence ${pct(sug.confidence, 0)}`;
    setProgress(sugConf, sug.confidence);
    acceptBtn.disabled = false;
    const b = classBtns.find((x) => x.dataset.class === sug.label);
    if (b) b.classList.add("suggested");
  }

  // ---------- actions
  function choose(label, startedAt = performance.now()) {
    const it = queue.current;
    if (!it || !queue.alive) return;
    st.swapStart = startedAt;
    const duration = Math.round(performance.now() - (it.shownAt || performance.now()));
    const btn = classBtns.find((b) => b.dataset.class === label);
    if (btn) { btn.classList.add("flash"); setTimeout(() => btn.classList.remove("flash"), 160); }
    // A correction of a sample labelled before changes its label, not how many are labelled.
    const entry = { item: it, label, id: null, correcting: Boolean(it.correcting) };
    st.pending += 1;
    st.writes += 1;
    entry.promise = inOrder(() => postIdempotent(`/projects/${pid}/labels`, { sample_id: it.sample_id, label, duration_ms: duration }))
      .then((res) => {
        entry.id = res.items[0].id;
        entry.recent.label_id = entry.id;
        // Someone labelled it meanwhile: ours is a second opinion: no more labelled samples, no new label.
        if (res.items[0].opinion === "second") {
          entry.second = true;
          if (!entry.undone) { if (!entry.correcting) st.labelled -= 1; if (st.until != null) st.until += 1; renderCounts(); }
        }
        return entry.id;
      })
      .finally(() => { st.pending -= 1; });
    entry.promise.catch((err) => {
      if (!queue.alive) return;
      toast(`Label for #${it.sample_id} was not saved: ${errorText(err)}`, "error", 6000);
      const i = st.undo.indexOf(entry);
      if (i >= 0) { st.undo.splice(i, 1); if (entry.correcting) corrected(-1); else counted(-1, -1); }
      recent.remove(entry.recent);
      queue.unsaved(it);
    });
    st.undo.push(entry);
    if (st.undo.length > UNDO_DEPTH) forget(st.undo.shift().item);
    queue.labelled(it);
    if (entry.correcting) corrected(1); else counted(1);
    entry.recent = recent.add(it, label);
    queue.advance();
    maybeRefreshMetrics();
  }

  /** The sample on screen marked unsure (``POST /samples/{sid}/unsure``): it leaves the queue for the
   * review list; Backspace takes the mark back, as it takes back a label. */
  function unsure() {
    const it = queue.current;
    if (!it || !queue.alive) return;
    st.swapStart = performance.now();
    const entry = { item: it, label: null, id: null, unsure: true, correcting: Boolean(it.correcting) };
    st.pending += 1;
    st.writes += 1;
    entry.promise = inOrder(() => postIdempotent(`/samples/${it.sample_id}/unsure`, {}))
      .then((res) => { entry.id = res.label_id; return entry.id; })
      .finally(() => { st.pending -= 1; });
    entry.promise.catch((err) => {
      if (!queue.alive) return;
      toast(`#${it.sample_id} was not marked unsure: ${errorText(err)}`, "error", 6000);
      const i = st.undo.indexOf(entry);
      if (i >= 0) st.undo.splice(i, 1);
      queue.unsaved(it);
    });
    st.undo.push(entry);
    if (st.undo.length > UNDO_DEPTH) forget(st.undo.shift().item);
    queue.labelled(it);
    // A labelled sample put in doubt (a correction) is one labelled sample fewer until a reviewer decides.
    if (entry.correcting) { st.labelled -= 1; renderCounts(); }
    toast(`#${it.sample_id} marked unsure: it goes to review (⌫ takes it back).`);
    queue.advance();
  }

  function accept() {
    const it = queue.current;
    if (!it) return;
    if (!it.suggestion || it.is_audit) { toast(it.is_audit ? "Audit sample: pick the class yourself." : "No suggestion yet: pick a class with its key."); return; }
    choose(it.suggestion.label);
  }

  async function undo() {
    if (st.busyUndo) return;
    const entry = st.undo.pop();
    // Nothing labelled on this page (a reload, or more than its depth undone): the server's newest.
    if (!entry) { undoFromServer(); return; }
    st.busyUndo = true;
    queue.back(entry.item);
    show();
    st.undoing += 1;
    st.writes += 1;
    // An undo is no new label: the labels until the next retrain stay as they are.
    entry.undone = true;
    if (entry.unsure) { if (entry.correcting) { st.labelled += 1; renderCounts(); } }
    else if (entry.second || entry.correcting) { st.session -= 1; renderCounts(); } else counted(-1, 0);
    if (entry.recent) recent.undone(entry.recent);
    try {
      await inOrder(async () => del(`/labels/${await entry.promise}`));
      toast(entry.unsure ? `Undone: #${entry.item.sample_id} is no longer marked unsure.` :
        entry.correcting ? `Undone: #${entry.item.sample_id} has its earlier label again.` :
        `Undone: #${entry.item.sample_id} is unlabelled again.`);
    } catch (err) {
      toast(`Undo failed: ${errorText(err)}`, "error", 6000);
    } finally { st.busyUndo = false; st.undoing -= 1; }
    loadRecent();
  }

  /** Undo the caller's newest live label as the server knows it (the one DELETE /labels/{id} allows),
   * and show its sample again, as an undo on this page does. */
  async function undoFromServer() {
    st.busyUndo = true;
    st.undoing += 1;
    st.writes += 1;
    try {
      // The newest label or unsure mark still live (a mark: its review not yet decided).
      const last = (await recent.load()).find((r) => r.live);
      if (!last) { toast(`Nothing to undo in your last ${RECENT} labels.`); return; }
      await inOrder(() => del(`/labels/${last.label_id}`));
      if (!queue.alive) return;
      const again = (await get(`/samples/${last.sample_id}`)).label;
      queue.back(itemOf({ ...last, current_label: again }));
      show();
      toast(last.action === "unsure" ? `Undone: #${last.sample_id} is no longer marked unsure.` :
        again == null ? `Undone: #${last.sample_id} is unlabelled again.` :
        `Undone: #${last.sample_id} has its earlier label “${again}” again.`);
    } catch (err) {
      toast(`Undo failed: ${errorText(err)}`, "error", 6000);
    } finally { st.busyUndo = false; st.undoing -= 1; }
    loadRecent();
    refreshMetrics();
  }

  /** A strip item chosen: its sample on screen, to label again (a new revision replaces ours). */
  function reopen(r) {
    if (!queue.alive || (queue.current && queue.current.sample_id === r.sample_id)) return;
    queue.back(itemOf(r));
    show();
  }

  function loadRecent() { recent.load().catch(() => { /* the strip stays as it is */ }); }

  function skip() { queue.skip(); }

  /** ``d`` labelled samples more (or fewer); ``toRetrain`` new labels towards the retrain (undos: 0). */
  function counted(d, toRetrain = d) {
    st.session += d;
    st.labelled += d;
    if (st.until != null) st.until = Math.max(0, st.until - toRetrain);
    renderCounts();
  }

  function renderCounts() {
    sessionCount.textContent = num(st.session);
    if (st.session > 0 && st.firstAt == null) st.firstAt = performance.now();
    const minutes = st.firstAt == null ? 0 : (performance.now() - st.firstAt) / 60000;
    const rate = st.session >= 5 && minutes > 0.2 ? ` · ${Math.round(st.session / minutes)}/min` : "";
    projectCount.textContent = `${num(st.labelled)} / ${num(st.total)} in the project${rate}`;
    if (st.until == null) { untilRetrain.textContent = "–"; return; }
    untilRetrain.textContent = st.until > 0 ? num(st.until) : "now";
    untilSub.textContent = st.until > 0 ? "labels until the next retrain" : "retrain due or running";
  }

  /** A correction given (``d`` 1) or taken back (-1): a label of this session and towards the retrain,
   * no more labelled samples. */
  function corrected(d) {
    st.session += d;
    if (st.until != null && d > 0) st.until = Math.max(0, st.until - d);
    renderCounts();
  }

  // ---------- metrics: labels until retrain, and a fresh queue when a new model arrives
  async function refreshMetrics() {
    try {
      // Counts taken while a label or an undo was on its way may or may not include it (its commit and
      // this read race): they replace ours only if nothing was in flight from before the request to after.
      const quiet = () => st.pending === 0 && st.undoing === 0;
      const before = st.writes, wasQuiet = quiet();
      const m = await get(`/projects/${pid}/metrics`);
      st.metrics = m;
      if (wasQuiet && quiet() && st.writes === before) {
        st.labelled = m.labelled_count;
        st.until = labelsUntilRetrain(m, project);
      }
      st.total = m.sample_count;
      renderCounts();
      if (m.model_version !== st.modelVersion) {
        const first = st.modelVersion == null;
        st.modelVersion = m.model_version;
        const v = m.model_number ?? m.model_version;
        toast(first ? `The first model (v${v}) is ready: suggestions are on.` :
          `Model v${v} is ready: your queue now follows it.`, "ok", 4500, { notice: true });
        queue.requeue();
      }
    } catch { /* the counters stay as they are */ }
  }
  function maybeRefreshMetrics() {
    st.sinceMetrics += 1;
    if (st.sinceMetrics >= 5) { st.sinceMetrics = 0; refreshMetrics(); }
  }
  // ---------- keyboard
  function onKey(e) {
    if (isTyping(e) || e.altKey) return;
    const k = e.key.toLowerCase();
    if ((e.ctrlKey || e.metaKey) && k === "z") { e.preventDefault(); undo(); return; }
    if (e.ctrlKey || e.metaKey) return;
    if (k === "enter") {
      // Enter always accepts here, unless focus is on a link or on a control outside this view.
      if (e.target.tagName === "A" || e.target.closest(".recent-strip") || (e.target !== document.body && !e.target.closest(".label-layout, main"))) return;
      e.preventDefault(); accept(); return;
    }
    if (k === "backspace") { e.preventDefault(); undo(); return; }
    if (k === "s") { e.preventDefault(); skip(); return; }
    if (k === "u") { e.preventDefault(); unsure(); return; }
    if (k === "/" && manyClasses) { e.preventDefault(); classFilter.focus(); return; }
    if (k === "+" || k === "=") { e.preventDefault(); zoom.zoomBy(1.25); return; }
    if (k === "-" || k === "_") { e.preventDefault(); zoom.zoomBy(1 / 1.25); return; }
    if (map.has(k)) { e.preventDefault(); choose(map.get(k), e.timeStamp); }
  }
  window.addEventListener("keydown", onKey);
  const poll = setInterval(refreshMetrics, 15000);
  queue.keepLeases(Number((project.settings || {}).lease_seconds) || 300);

  renderCounts();
  show();
  refreshMetrics();
  loadRecent();
  guidelines.load();
  queue.refill();

  return () => {
    window.removeEventListener("keydown", onKey);
    clearInterval(poll);
    zoom.destroy();
    queue.close();
  };
}

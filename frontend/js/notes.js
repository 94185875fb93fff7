// Notes beside the labels (issue 17 item 4): a sample's comments, and the project's guidelines with
// examples per class. The guidelines' HTML is rendered by the server (raw HTML escaped, safe link
// schemes only); it is put into the page only after a second pass here keeps known tags and attributes.
import { api, get, post, upload } from "./api.js";
import { errorText, fill, h, timeAgo, toast } from "./dom.js";
import { fillSnippets, isText, sampleVisual } from "./snippets.js";

const TAGS = new Set(["h1", "h2", "h3", "h4", "h5", "h6", "p", "br", "hr", "em", "strong", "s", "del", "code", "pre",
  "blockquote", "ul", "ol", "li", "a", "img", "table", "thead", "tbody", "tr", "th", "td"]);
const ATTRS = { a: ["href", "title", "target", "rel"], img: ["src", "alt", "title", "loading"], ol: ["start"],
  th: ["style"], td: ["style"] };
const SAFE_URL = /^(https?:|mailto:|\/|#|[^:]*$)/i;

/** A fragment of the server's guidelines HTML, with anything unexpected left out. */
export function safeFragment(html) {
  const doc = new DOMParser().parseFromString(`<body>${html}</body>`, "text/html");  // inert: nothing runs
  const out = document.createDocumentFragment();
  const copy = (node, into) => {
    for (const c of node.childNodes) {
      if (c.nodeType === Node.TEXT_NODE) { into.append(c.textContent); continue; }
      if (c.nodeType !== Node.ELEMENT_NODE) continue;
      const tag = c.tagName.toLowerCase();
      if (!TAGS.has(tag)) { copy(c, into); continue; }
      const el = document.createElement(tag);
      for (const a of ATTRS[tag] || []) {
        const v = c.getAttribute(a);
        if (v == null || a === "style") continue;
        if ((a === "href" || a === "src") && !SAFE_URL.test(v.trim())) continue;
        el.setAttribute(a, v);
      }
      copy(c, el);
      into.append(el);
    }
  };
  copy(doc.body, out);
  return out;
}

/** The comments of the sample on screen, and a box to add one. */
export class CommentsPanel {
  constructor() {
    this.sampleId = null;
    this.list = h("ol", { class: "comments", id: "comments", "aria-live": "polite" });
    this.count = h("span", { class: "muted small", id: "comment-count" });
    this.text = h("textarea", { id: "comment-text", rows: "2", maxlength: "2000", placeholder: "A note on this sample (Ctrl+Enter)",
      "aria-label": "Comment on this sample", onkeydown: (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); this.send(); } } });
    this.btn = h("button", { class: "btn small", type: "button", id: "comment-send", onclick: () => this.send() }, "Comment");
    this.el = h("details", { class: "comments-box", id: "comments-box" },
      h("summary", null, "Comments ", this.count), this.list, h("div", { class: "row" }, this.text, this.btn));
  }

  async show(sampleId) {
    this.sampleId = sampleId;
    if (sampleId == null) { fill(this.list); this.count.textContent = ""; return; }
    try {
      const items = await get(`/samples/${sampleId}/comments`);
      if (this.sampleId !== sampleId) return;  // another sample came on screen meanwhile
      this.render(items);
    } catch { /* the panel stays as it was */ }
  }

  render(items) {
    this.count.textContent = items.length ? `(${items.length})` : "";
    if (items.length) this.el.open = true;
    fill(this.list, items.map(commentItem));
  }

  async send() {
    const text = this.text.value.trim();
    if (!text || this.sampleId == null) return;
    const sid = this.sampleId;
    try {
      await post(`/samples/${sid}/comments`, { text });
      this.text.value = "";
      this.text.blur();
      if (this.sampleId === sid) this.show(sid);
      toast(`Comment saved on #${sid}.`, "ok");
    } catch (err) { toast(`Comment not saved: ${errorText(err)}`, "error", 6000); }
  }
}

export function commentItem(c) {
  return h("li", { class: "comment" }, h("span", { class: "comment-text" }, c.text),
    h("span", { class: "muted small" }, ` — ${c.username || "someone"}, ${timeAgo(c.created_at)}`));
}

const OPEN_KEY = "loupe.guidelines.open";

/** The project's guidelines, collapsible, with example thumbnails per class; an admin edits them here. */
export class GuidelinesPanel {
  constructor(project) {
    this.project = project;
    this.body = h("div", { class: "guidelines-body", id: "guidelines-body" }, h("span", { class: "muted small" }, "loading…"));
    this.examples = h("div", { class: "guidelines-examples", id: "guidelines-examples" });
    const editBtn = project.role === "admin" ? h("button", { class: "btn small ghost", type: "button", id: "guidelines-edit",
      onclick: () => this.edit() }, "Edit") : null;
    this.el = h("details", { class: "panel guidelines", id: "guidelines", open: localStorage.getItem(OPEN_KEY) === "1",
      ontoggle: () => localStorage.setItem(OPEN_KEY, this.el.open ? "1" : "0") },
    h("summary", null, h("h3", null, "Guidelines")), editBtn, this.body, this.examples);
    this.data = null;
  }

  async load() {
    try {
      this.data = await get(`/projects/${this.project.id}/guidelines`);
    } catch (err) { fill(this.body, h("span", { class: "muted small" }, `Guidelines unavailable: ${errorText(err)}`)); return; }
    this.render();
  }

  render() {
    const g = this.data;
    fill(this.body, g.html ? safeFragment(g.html) : h("p", { class: "muted small" },
      this.project.role === "admin" ? "No guidelines yet: Edit to write them (Markdown)." : "No guidelines yet."));
    const rows = Object.entries(g.examples).filter(([, xs]) => xs.length);
    fill(this.examples, rows.length ? h("h4", null, "Examples") : null, rows.map(([c, xs]) => h("div", { class: "example-row", "data-class": c },
      h("span", { class: "example-class", title: c }, c),
      xs.map((e) => isText(this.project)
        // A text project's example: the start of its document (issue 19), whole on hover.
        ? sampleVisual(this.project, e.sample_id, { cls: "example-snippet" })
        : h("a", { href: e.image_url, target: "_blank", rel: "noopener", title: `#${e.sample_id}${e.chosen ? "" : " (the model is surest of it)"}` },
          h("img", { src: e.thumbnail_url, alt: `${c} example #${e.sample_id}`, class: "example-thumb", loading: "lazy" }))))));
    if (isText(this.project)) fillSnippets(this.project.id, this.examples);
  }

  edit() {
    const g = this.data || { markdown: "", examples: {} };
    const chosen = Object.fromEntries(Object.entries(g.examples).map(([c, xs]) => [c, xs.filter((e) => e.chosen).map((e) => e.sample_id)]));
    const text = h("textarea", { id: "guidelines-markdown", rows: "12", "aria-label": "Guidelines (Markdown)" });
    text.value = g.markdown;
    const inputs = this.project.classes.map((c) => h("input", { type: "text", "data-class": c, value: (chosen[c] || []).join(", "),
      "aria-label": `Example sample ids for ${c}`, placeholder: "sample ids, or empty: the surest labelled ones" }));
    // An image for the guidelines: uploaded, and its Markdown put where the cursor is.
    const picker = h("input", { type: "file", accept: "image/*", id: "guidelines-image", "aria-label": "Add an image to the guidelines",
      onchange: async () => {
        if (!picker.files.length) return;
        try {
          const res = await upload(`/projects/${this.project.id}/guidelines/images`, [...picker.files], () => {});
          const md = res.items.map((i) => i.markdown).join("\n");
          const at = text.selectionStart ?? text.value.length;
          text.value = `${text.value.slice(0, at)}${md}${text.value.slice(at)}`;
          toast("Image added: save to keep it in the guidelines.", "ok");
        } catch (err) { toast(`Image not added: ${errorText(err)}`, "error", 8000); }
        picker.value = "";
      } });
    const save = async () => {
      const examples = {};
      inputs.forEach((i) => {
        const ids = i.value.split(/[\s,]+/).filter(Boolean).map(Number);
        if (ids.length) examples[i.dataset.class] = ids;
      });
      try {
        this.data = await api("PUT", `/projects/${this.project.id}/guidelines`, { markdown: text.value, examples });
        toast("Guidelines saved.", "ok");
        this.render();
      } catch (err) { toast(`Guidelines not saved: ${errorText(err)}`, "error", 8000); }
    };
    fill(this.body, h("form", { class: "guidelines-form", onsubmit: (e) => { e.preventDefault(); save(); } },
      h("p", { class: "muted small" }, "Markdown. ", h("code", null, "![alt](sample:123)"), " shows sample 123's image."),
      text,
      h("label", { class: "field" }, "Add an image ", picker),
      h("h4", null, "Examples per class"),
      this.project.classes.map((c, i) => h("label", { class: "field example-field" }, h("span", { class: "cname" }, c), inputs[i])),
      h("div", { class: "row" }, h("button", { class: "btn primary small", type: "submit", id: "guidelines-save" }, "Save"),
        h("button", { class: "btn small", type: "button", onclick: () => this.render() }, "Cancel"))));
    fill(this.examples);
    this.el.open = true;
    text.focus();
  }
}

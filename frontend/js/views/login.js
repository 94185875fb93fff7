import { get, post } from "../api.js";
import { errorText, h } from "../dom.js";
import { state } from "../session.js";

export async function render({ main, query, go }) {
  const user = h("input", { type: "text", id: "login-username", name: "username", autocomplete: "username", required: true, autofocus: true });
  const pass = h("input", { type: "password", id: "login-password", name: "password", autocomplete: "current-password", required: true });
  const err = h("div", { class: "notice error", role: "alert", hidden: true });
  const submit = h("button", { class: "btn primary", type: "submit" }, "Sign in");
  const form = h("form", { "aria-label": "Sign in", onsubmit: async (e) => {
    e.preventDefault();
    err.hidden = true;
    submit.disabled = true;
    try {
      await post("/auth/login", { username: user.value.trim(), password: pass.value }, { quiet401: true });
      state.me = await get("/auth/me");
      const next = query.get("next");
      go(next && next.startsWith("#/") && !next.startsWith("#/login") ? next : "#/projects");
    } catch (ex) {
      err.textContent = ex.status === 401 ? "Wrong username or password." : errorText(ex);
      err.hidden = false;
      pass.select();
    } finally {
      submit.disabled = false;
    }
  } },
  h("label", { class: "field", for: "login-username" }, "Username", user),
  h("label", { class: "field", for: "login-password" }, "Password", pass),
  err, submit);
  main.append(h("div", { class: "login-wrap" }, h("div", { class: "panel login" },
    h("h1", null, "Sign in to Loupe"),
    h("p", { class: "muted" }, "Label a few, and the model learns the rest."),
    form)));
  user.focus();
}

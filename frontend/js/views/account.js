// Accounts: every user's API tokens (#/account), and for admins the users (#/admin/users).
import { ApiError, del, get, patch, post } from "../api.js";
import { fill, errorText, h, timeAgo, toast, unavailable } from "../dom.js";

export async function render({ main, match, me }) {
  const which = match[1] === "users" ? "users" : "tokens";
  const page = h("div", { class: "page" });
  main.append(page);
  page.append(h("nav", { class: "subnav", "aria-label": "Account sections" },
    h("a", { href: "#/account", class: which === "tokens" ? "active" : "" }, "API tokens"),
    me.is_admin ? h("a", { href: "#/admin/users", class: which === "users" ? "active" : "" }, "Users") : null));
  if (which === "users") {
    if (!me.is_admin) { page.append(h("div", { class: "notice" }, "Only admins manage users.")); return; }
    await usersView(page, me);
  } else {
    await tokensView(page, me);
    passwordView(page);
  }
}

// Your own password: the current one proves it is you; your other sign-ins end, this one stays.
function passwordView(root) {
  const field = (id, label, autocomplete) => h("input", { type: "password", id, "aria-label": label, placeholder: label.toLowerCase(), required: true, autocomplete });
  const current = field("password-current", "Current password", "current-password");
  const fresh = field("password-new", "New password (8 or more characters)", "new-password");
  fresh.minLength = 8;
  root.append(h("div", { class: "panel" }, h("h2", null, "Password"),
    h("form", { class: "row", "aria-label": "Change your password", onsubmit: async (e) => {
      e.preventDefault();
      try {
        await post("/users/me/password", { current_password: current.value, new_password: fresh.value });
        current.value = ""; fresh.value = "";
        toast("Password changed; your other sign-ins have ended", "ok");
      } catch (err) { toast(errorText(err), "error", 6000); }
    } }, current, fresh, h("button", { class: "btn", type: "submit" }, "Change password"))));
}

async function usersView(root, me) {
  const body = h("tbody");
  const name = h("input", { type: "text", id: "user-name", "aria-label": "New username", placeholder: "username", required: true, autocomplete: "off" });
  const pw = h("input", { type: "password", id: "user-password", "aria-label": "Password (8 or more characters)", placeholder: "password (8+ characters)", required: true, minlength: "8", autocomplete: "new-password" });
  const admin = h("input", { type: "checkbox", id: "user-admin" });
  const form = h("form", { class: "row", "aria-label": "Create a user", onsubmit: async (e) => {
    e.preventDefault();
    try {
      await post("/users", { username: name.value.trim(), password: pw.value, is_admin: admin.checked });
      toast(`User ${name.value} created`, "ok");
      name.value = ""; pw.value = ""; admin.checked = false;
      load();
    } catch (err) { toast(errorText(err), "error", 6000); }
  } }, name, pw, h("label", { class: "row small", for: "user-admin" }, admin, "admin"),
  h("button", { class: "btn primary", type: "submit" }, "Create user"));
  root.append(h("div", { class: "panel" }, h("h2", null, "Users"),
    h("p", { class: "muted small" }, "Give a user a project role under the project's Admin → Members."), form,
    h("table", { class: "table", style: { marginTop: "12px" } },
      h("thead", null, h("tr", null, h("th", null, "user"), h("th", null, "role"), h("th", null, "active"), h("th", null, "created"), h("th", null, ""))), body)));
  async function load() {
    const users = await get("/users");
    fill(body, users.map((u) => h("tr", null, h("td", null, u.username),
      h("td", null, h("span", { class: "badge" }, u.is_admin ? "admin" : "user")), h("td", null, u.is_active === false ? "no" : "yes"),
      h("td", { class: "muted small" }, timeAgo(u.created_at)), h("td", null, u.username === me.username ? null : activeButton(u)))));
  }
  // Deactivating ends the user's sessions and API tokens at once.
  function activeButton(u) {
    const verb = u.is_active === false ? "Activate" : "Deactivate";
    return h("button", { class: `btn ghost small${verb === "Deactivate" ? " danger" : ""}`, type: "button", "aria-label": `${verb} ${u.username}`, onclick: async () => {
      try { await patch(`/users/${u.id}`, { is_active: verb === "Activate" }); toast(`${u.username} ${verb.toLowerCase()}d`); load(); } catch (err) { toast(errorText(err), "error"); }
    } }, verb);
  }
  await load();
}

async function tokensView(root, me) {
  const panel = h("div", { class: "panel" }, h("h2", null, "API tokens"),
    h("p", { class: "muted small" }, "For scripts and integrations: send ", h("code", null, "Authorization: Bearer <token>"),
      `. A token acts as ${me.username}; it is shown once.`));
  root.append(panel);
  let tokens;
  try { tokens = await get("/tokens"); } catch (err) {
    if (err instanceof ApiError && err.missing) { panel.append(unavailable("Managing API tokens", "GET/POST /api/v1/tokens and DELETE /api/v1/tokens/{id}")); return; }
    throw err;
  }
  const fresh = h("div", { id: "token-fresh" });
  const name = h("input", { type: "text", id: "token-name", "aria-label": "Token name", placeholder: "name, e.g. import-script", required: true });
  // A token that outlives its script is a standing risk: 90 days unless the maker chooses otherwise.
  const expiry = h("select", { id: "token-expiry", "aria-label": "Token expires after" },
    [["30", "expires in 30 days"], ["90", "expires in 90 days"], ["365", "expires in a year"], ["", "never expires"]]
      .map(([days, text]) => h("option", { value: days, selected: days === "90" }, text)));
  const body = h("tbody");
  panel.append(h("form", { class: "row", "aria-label": "Create a token", onsubmit: async (e) => {
    e.preventDefault();
    try {
      const days = Number(expiry.value);
      const expires_at = days ? new Date(Date.now() + days * 86400e3).toISOString() : null;
      const t = await post("/tokens", { name: name.value.trim(), expires_at });
      name.value = "";
      const copy = h("button", { class: "btn small", type: "button", onclick: () => navigator.clipboard?.writeText(t.token).then(() => toast("Copied"), () => toast("Select and copy it by hand")) }, "Copy");
      fill(fresh, h("div", { class: "notice ok", style: { marginTop: "12px" } },
        h("div", null, h("strong", null, `Token “${t.name}”`), ": copy it now, it will not be shown again."),
        h("div", { class: "row", style: { marginTop: "8px" } }, h("div", { class: "token-once", "aria-label": "New token" }, t.token), copy)));
      load();
    } catch (err) { toast(errorText(err), "error", 6000); }
  } }, name, expiry, h("button", { class: "btn primary", type: "submit" }, "Create token")), fresh,
  h("table", { class: "table", style: { marginTop: "12px" } },
    h("thead", null, h("tr", null, h("th", null, "name"), h("th", null, "created"), h("th", null, "last used"), h("th", null, "expires"), h("th", null, "status"), h("th", null, ""))), body));
  function show(list) {
    const items = Array.isArray(list) ? list : list.items || [];
    fill(body, items.length ? items.map((t) => h("tr", null, h("td", null, t.name), h("td", { class: "muted small" }, timeAgo(t.created_at)),
      h("td", { class: "muted small" }, t.last_used_at ? timeAgo(t.last_used_at) : "never"),
      h("td", { class: "muted small token-expires", title: t.expires_at || "" }, t.expires_at ? new Date(t.expires_at).toLocaleDateString() : "never"),
      h("td", null, t.revoked_at ? h("span", { class: "badge cancelled" }, `revoked ${timeAgo(t.revoked_at)}`) :
        t.expires_at && new Date(t.expires_at) < new Date() ? h("span", { class: "badge" }, "expired") : h("span", { class: "badge succeeded" }, "active")),
      h("td", null, t.revoked_at ? null : h("button", { class: "btn ghost small danger", type: "button", "aria-label": `Revoke token ${t.name}`, onclick: async () => {
        try { await del(`/tokens/${t.id}`); toast(`Token ${t.name} revoked`); load(); } catch (err) { toast(errorText(err), "error"); }
      } }, "Revoke")))) : h("tr", null, h("td", { colspan: "6", class: "muted" }, "No tokens yet.")));
  }
  async function load() { show(await get("/tokens")); }
  show(tokens);
}

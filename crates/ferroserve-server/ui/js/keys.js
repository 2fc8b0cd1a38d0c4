// API keys (admins): create one (its token shown once, here), list them,
// revoke one after a confirmation.

import { call, seg } from "./api.js";
import { h, replace, table, when, failure } from "./dom.js";
import { confirmChange } from "./confirm.js";

const ROLES = ["reader", "predictor", "deployer", "admin"];

function createForm(refresh, status) {
  const name = h("input", { id: "key-name", name: "name", required: true, pattern: "[A-Za-z0-9_.@\\-]{1,128}" });
  const role = h("select", { id: "key-role", name: "role" }, ROLES.map((r) => h("option", { value: r }, r)));
  const models = h("input", { id: "key-models", name: "models", placeholder: "every model", "aria-describedby": "key-models-help" });
  const form = h("form", {
    class: "card grid-form",
    onsubmit: async (event) => {
      event.preventDefault();
      const patterns = models.value.split(",").map((m) => m.trim()).filter(Boolean);
      try {
        const key = await call("/api/v1/keys", {
          method: "POST",
          body: { name: name.value, role: role.value, models: patterns },
        });
        const token = h("input", { id: "new-token", readonly: true, value: key.token, size: 70, "aria-label": "New token" });
        replace(status, h("div", { class: "card", role: "status" },
          h("p", {}, `Key ${key.name} (${key.role}) created. Copy its token now: it is not shown again.`),
          token));
        token.select();
        form.reset();
        await refresh();
      } catch (error) {
        replace(status, failure(error));
      }
    },
  },
  h("h2", {}, "Create a key"),
  h("label", { for: "key-name" }, "Name"), name,
  h("label", { for: "key-role" }, "Role"), role,
  h("label", { for: "key-models" }, "Models"), h("span", {}, models,
    h("span", { id: "key-models-help", class: "muted" }, " comma-separated names or patterns (fraud-*); empty: every model")),
  h("button", { type: "submit" }, "Create key"));
  return form;
}

export async function keysPage(main, session) {
  document.title = "Keys · ferroserve";
  const status = h("div", { "aria-live": "polite" });
  const list = h("div", { id: "keys" });
  const refresh = async () => {
    const listed = await call("/api/v1/keys");
    replace(list, table("Keys", ["Name", "Role", "Models", "Created", "Last used", "Expires", "State", ""],
      listed.keys.map((key) => [
        key.name, key.role, key.models.length ? key.models.join(", ") : "every model",
        `${when(key.created_at)} by ${key.created_by}`, when(key.last_used_at), when(key.expires_at),
        key.revoked_at ? h("span", { class: "muted" }, `revoked ${when(key.revoked_at)}`) : "active",
        key.revoked_at ? "" : h("button", {
          type: "button", class: "quiet revoke", dataset: { key: key.name },
          onclick: async () => {
            const ok = await confirmChange(`Revoke ${key.name}?`,
              [`Every request with the key ${key.name} (${key.role}) is refused from now on.`], "Revoke");
            if (!ok) return;
            try {
              await call(`/api/v1/keys/${seg(key.id)}`, { method: "DELETE" });
              await refresh();
            } catch (error) {
              replace(status, failure(error));
            }
          },
        }, "Revoke"),
      ])));
  };
  if (!session.may("admin")) {
    replace(main, h("h1", {}, "Keys"), h("p", {}, "Only admins manage keys."));
    return;
  }
  replace(main, h("h1", {}, "Keys"), status, createForm(refresh, status), list);
  await refresh();
}

// A model's serving config as an editor: the config in force as JSON,
// stored as a new revision after a confirmation, with the server's
// validation errors shown in place.

import { call, seg } from "./api.js";
import { h, replace, failure } from "./dom.js";
import { confirmChange } from "./confirm.js";

export async function configEditor(name, refresh) {
  const current = await call(`/api/v1/models/${seg(name)}/serving-config`);
  const editor = h("textarea", {
    id: "config-text", rows: 10, cols: 60, spellcheck: "false", "aria-describedby": "config-help config-error",
  }, JSON.stringify(current.config, null, 2));
  const error = h("div", { id: "config-error", "aria-live": "assertive" });
  const form = h("form", {
    class: "card",
    onsubmit: async (event) => {
      event.preventDefault();
      let config;
      try {
        config = JSON.parse(editor.value);
      } catch (e) {
        replace(error, failure(new Error(`not JSON: ${e.message}`)));
        editor.focus();
        return;
      }
      const next = (current.revision ?? 0) + 1;
      const ok = await confirmChange(`Store serving config revision ${next}?`, [
        `The serving config of ${name} becomes this revision and applies at once: ` +
        "which version serves, batching, limits, monitoring.",
      ], "Store revision");
      if (!ok) return;
      try {
        const answer = await call(`/api/v1/models/${seg(name)}/serving-config`, { method: "PUT", body: config });
        replace(error, h("p", { class: "ok", role: "status" },
          `Revision ${answer.revision.revision} stored; ${name} serves version ${answer.serving.serving_version ?? "nothing"}.`));
        await refresh();
      } catch (e) {
        replace(error, failure(e));
        editor.focus();
      }
    },
  },
  h("label", { for: "config-text" }, `Revision ${current.revision ?? "none yet"} (JSON)`),
  editor,
  h("p", { id: "config-help", class: "muted" },
    "Fields left out take the server's defaults; the server checks the config before storing it."),
  error,
  h("button", { type: "submit" }, "Store revision"));
  return h("section", { "aria-labelledby": "config-title" },
    h("h2", { id: "config-title" }, "Serving config"), form);
}

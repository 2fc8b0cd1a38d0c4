// The confirmation every change goes through: a modal dialog that says
// what will change, answered by its two buttons or Escape.

import { h, replace } from "./dom.js";

/** Asks in the page's dialog; resolves true when confirmed. */
export function confirmChange(title, lines, ok) {
  const dialog = document.getElementById("confirm");
  replace(document.getElementById("confirm-title"), title);
  replace(document.getElementById("confirm-body"), lines.map((line) => h("p", {}, line)));
  replace(document.getElementById("confirm-ok"), ok);
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

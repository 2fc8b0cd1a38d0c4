// Building the page: elements from data, never from HTML strings (every
// value a server or user gave is text).

/** An element `tag` with attributes (`on*` keys become listeners) and children. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

/** Appends `children` (nodes, text; null and false are skipped) to `el`. */
export function append(el, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces the content of `el` with `children`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/**
 * Calls `refresh` every `ms` while `alive()` (the page is still shown),
 * showing a failure in `status` and trying again the next time.
 */
export function every(ms, alive, refresh, status) {
  const tick = async () => {
    if (!alive()) return;
    try {
      await refresh();
    } catch (error) {
      replace(status, failure(error));
    }
    setTimeout(tick, ms);
  };
  setTimeout(tick, ms);
}

/** A date from unix milliseconds, in the reader's locale. */
export function when(ms) {
  return ms ? new Date(ms).toLocaleString() : "";
}

/** A table with a caption, header cells and rows of cells. */
export function table(caption, headers, rows) {
  return h("div", { class: "scroll" },
    h("table", {},
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, headers.map((name) => h("th", { scope: "col" }, name)))),
      h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((cell) => h("td", {}, cell))))),
    ));
}

/** An alert that says what went wrong. */
export function failure(error) {
  return h("p", { class: "error", role: "alert" }, error.message || String(error));
}

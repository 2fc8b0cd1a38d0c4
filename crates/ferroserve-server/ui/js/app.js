// The UI's shell: who is signed in, the theme, and which page the address
// (#/..., so every view has a link) shows.

import { call, signIn, signOut } from "./api.js";
import { h, replace, failure } from "./dom.js";
import { overview } from "./overview.js";
import { modelPage } from "./model.js";
import { rolloutPage } from "./rollout.js";
import { jobsPage } from "./jobs.js";
import { keysPage } from "./keys.js";
import { livePage } from "./live.js";
import { driftPage } from "./drift.js";

/** Who is signed in, and what their role may do (the server decides). */
export const session = {
  who: null,
  may(access) {
    return Boolean(this.who && this.who.may && this.who.may.includes(access));
  },
};

const THEME = "ferroserve.theme";

function applyTheme(theme) {
  if (theme) document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
}

function toggleTheme() {
  const dark = document.documentElement.dataset.theme
    ? document.documentElement.dataset.theme === "dark"
    : matchMedia("(prefers-color-scheme: dark)").matches;
  const next = dark ? "light" : "dark";
  localStorage.setItem(THEME, next);
  applyTheme(next);
}

function showWho() {
  const who = session.who;
  document.getElementById("nav-keys").hidden = !session.may("admin");
  replace(document.getElementById("who"),
    who ? [h("span", { class: "name" }, who.name), " ", h("span", { class: "role" }, who.role)] : []);
  document.getElementById("sign-out").hidden = !who || who.anonymous;
}

function signInPage(main, reason) {
  document.title = "Sign in · ferroserve";
  const input = h("input", {
    id: "key", name: "key", type: "password", required: true, autocomplete: "off",
    spellcheck: "false", "aria-describedby": "key-help",
  });
  const message = h("div", { "aria-live": "assertive" }, reason ? failure(reason) : null);
  const form = h("form", {
    class: "card narrow",
    onsubmit: async (event) => {
      event.preventDefault();
      try {
        session.who = await signIn(input.value.trim());
        showWho();
        location.hash = "#/";
        await show();
      } catch (error) {
        replace(message, failure(error));
        input.focus();
      }
    },
  },
  h("h1", {}, "Sign in"),
  h("label", { for: "key" }, "API key"),
  input,
  h("p", { id: "key-help", class: "muted" },
    "Paste a key made with ferroserve keys create. It is kept for this tab only."),
  message,
  h("button", { type: "submit" }, "Sign in"));
  replace(main, form);
  input.focus();
}

/** Counts the pages shown: a page's refresh loop ends once another shows. */
let shown = 0;

/** Shows the page the address names. */
async function show() {
  const page = ++shown;
  const alive = () => page === shown;
  const main = document.getElementById("main");
  if (!session.who) {
    try {
      const who = await call("/api/v1/whoami");
      // Callers without a key that may not read the registry sign in first.
      if (who.anonymous && !who.may.includes("read")) return signInPage(main);
      session.who = who;
    } catch (error) {
      if (error.status === 401 || error.status === 403) return signInPage(main);
      return replace(main, failure(error));
    }
  }
  showWho();
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  try {
    if (parts[0] === "jobs") await jobsPage(main, session, alive);
    else if (parts[0] === "keys") await keysPage(main, session);
    else if (parts[0] === "live") await livePage(main, session, alive);
    else if (parts[0] === "models" && parts[1] && parts[2] === "drift") {
      await driftPage(main, parts[1], session, alive);
    } else if (parts[0] === "models" && parts[1] && parts[2] === "rollout") {
      await rolloutPage(main, parts[1], session, alive);
    } else if (parts[0] === "models" && parts[1]) await modelPage(main, parts[1], session);
    else await overview(main, session, alive);
  } catch (error) {
    if (error.status === 401) {
      signOut();
      session.who = null;
      return signInPage(main, error);
    }
    replace(main, failure(error));
  }
}

applyTheme(localStorage.getItem(THEME));
document.getElementById("theme").addEventListener("click", toggleTheme);
document.getElementById("sign-out").addEventListener("click", () => {
  signOut();
  session.who = null;
  showWho();
  signInPage(document.getElementById("main"));
});
addEventListener("hashchange", async () => {
  await show();
  document.getElementById("main").focus();
});
show();

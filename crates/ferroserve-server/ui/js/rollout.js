// A model's rollout: its step and the canary's weight, each gate's figure
// against its limit, the decisions, and the controls (start, pause,
// resume, promote, abort). Refreshed every second while shown.

import { call, seg, ApiError } from "./api.js";
import { every, h, replace, table, when, failure } from "./dom.js";
import { confirmChange } from "./confirm.js";

const ACTIVE = ["progressing", "paused", "awaiting_approval"];
const REFRESH_MS = 1000;

/** The running or latest rollout of `name`, or null when it never had one. */
async function current(name) {
  try {
    return await call(`/api/v1/models/${seg(name)}/rollout`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return null;
    throw error;
  }
}

function figure(value) {
  return value === null || value === undefined ? "—" : Number(value).toPrecision(3);
}

function statusView(r, controls) {
  const steps = r.steps.map((percent, i) =>
    h("li", { class: i === r.step ? "current" : i < r.step ? "done" : "" }, `${percent} %`));
  return [
    h("p", { id: "rollout-state" },
      h("strong", {}, r.state.replaceAll("_", " ")),
      ` — version ${r.canary_version} against version ${r.stable_version}, since ${when(r.created_at)}`),
    h("p", {},
      h("label", { for: "rollout-weight" }, "Canary weight "),
      h("meter", { id: "rollout-weight", min: 0, max: 100, value: r.weight }, `${r.weight} %`),
      " ", h("span", { id: "rollout-weight-text" }, `${r.weight} %`),
      ` — step ${r.step + 1} of ${r.steps.length}`),
    h("ol", { class: "steps", "aria-label": "Steps" }, steps),
    controls,
    r.gates.length === 0
      ? h("p", { class: "muted" }, "The gates have not been checked in this step yet.")
      : table("Gates (last check)", ["Gate", "Figure", "Limit", "Verdict", "Failed in a row", "Detail"],
      r.gates.map((g) => [
        g.gate.replaceAll("_", " "), figure(g.value), figure(g.limit),
        h("span", { class: g.verdict === "pass" ? "ok" : g.verdict === "fail" ? "error" : "muted" }, g.verdict),
        String(g.consecutive_failures), g.detail,
      ])),
    r.window
      ? h("p", { class: "muted" },
        `Window of ${figure(r.window.seconds)} s: stable ${r.window.stable.requests ?? 0} requests, ` +
        `canary ${r.window.canary.requests ?? 0} requests (this server).`)
      : null,
    h("h2", {}, "Decisions"),
    h("ol", { class: "timeline" }, r.decisions.slice().reverse().map((d) => h("li", {},
      h("time", { datetime: new Date(d.at).toISOString() }, when(d.at)), " ",
      h("strong", {}, d.action.replaceAll("_", " ")), ` by ${d.actor}: ${d.reason}`))),
  ];
}

function actions(name, r, refresh, status) {
  if (!ACTIVE.includes(r.state)) return null;
  const act = (action, title, lines) => h("button", {
    type: "button",
    class: action === "abort" ? "quiet" : "",
    onclick: async () => {
      if (!(await confirmChange(title, lines, title))) return;
      try {
        await call(`/api/v1/models/${seg(name)}/rollout/${action}`, { method: "POST" });
        await refresh();
      } catch (error) {
        replace(status, failure(error));
      }
    },
  }, action[0].toUpperCase() + action.slice(1));
  return h("div", { class: "inline" },
    r.state === "progressing"
      ? act("pause", "Pause", [`The rollout of ${name} stays at ${r.weight} % until resumed.`])
      : act("resume", "Resume", [`The rollout of ${name} goes on from ${r.weight} %.`]),
    r.state === "awaiting_approval"
      ? act("promote", "Promote", [`Version ${r.canary_version} takes all of ${name}'s traffic.`])
      : null,
    act("abort", "Abort", [`All of ${name}'s traffic goes back to version ${r.stable_version}.`]));
}

function startForm(name, versions, servingVersion, refresh, status) {
  const candidates = versions.filter((v) => v.status.state === "ready" && String(v.version) !== servingVersion);
  if (!candidates.length) return h("p", { class: "muted" }, "No other ready version to roll out.");
  const field = (id, label, attrs) => [h("label", { for: id }, label), h("input", { id, name: id, ...attrs })];
  const version = h("select", { id: "rollout-version", name: "version" },
    candidates.slice().reverse().map((v) => h("option", { value: String(v.version) }, String(v.version))));
  const form = h("form", {
    class: "card grid-form",
    onsubmit: async (event) => {
      event.preventDefault();
      const data = new FormData(form);
      const body = {
        version: Number(data.get("version")),
        steps: String(data.get("steps")).split(",").map((s) => Number(s.trim())).filter((n) => n),
        step_seconds: Number(data.get("step_seconds")),
        step_min_requests: Number(data.get("step_min_requests")),
        check_interval_ms: Number(data.get("check_interval_ms")),
        gates: { p99_ratio: { max: Number(data.get("max_p99_ratio")) } },
      };
      const ok = await confirmChange(`Roll out version ${body.version}?`, [
        `Version ${body.version} of ${name} takes ${body.steps.join(" %, then ")} % of the traffic ` +
        `that names no version, each step at least ${body.step_seconds} s and ${body.step_min_requests} canary requests.`,
        `Version ${servingVersion} keeps the rest; a failing gate rolls back to it.`,
      ], "Start rollout");
      if (!ok) return;
      try {
        await call(`/api/v1/models/${seg(name)}/rollout`, { method: "POST", body });
        await refresh();
      } catch (error) {
        replace(status, failure(error));
      }
    },
  },
  h("h2", {}, "Start a rollout"),
  h("label", { for: "rollout-version" }, "Canary version"), version,
  field("steps", "Steps (canary %)", { value: "10,50,100", required: true }),
  field("step_seconds", "Shortest step (s)", { type: "number", min: 1, value: 60, required: true }),
  field("step_min_requests", "Fewest canary requests per step", { type: "number", min: 1, value: 200, required: true }),
  field("check_interval_ms", "Check the gates every (ms)", { type: "number", min: 100, value: 5000, required: true }),
  field("max_p99_ratio", "Most canary p99 / stable p99", { type: "number", min: 1, step: "0.1", value: 1.5, required: true }),
  h("button", { type: "submit" }, "Start rollout"));
  return form;
}

export async function rolloutPage(main, name, session, alive) {
  document.title = `Rollout of ${name} · ferroserve`;
  const status = h("div", { "aria-live": "polite" });
  const body = h("div", { id: "rollout" });
  replace(main,
    h("p", {}, h("a", { href: `#/models/${seg(name)}` }, `← ${name}`)),
    h("h1", {}, `Rollout of ${name}`), status, body);
  const refresh = async () => {
    const [r, listed, serving] = await Promise.all([
      current(name),
      call(`/api/v1/models/${seg(name)}/versions`),
      call(`/api/v1/models/${seg(name)}/serving`).catch(() => null),
    ]);
    const canDeploy = session.may("deploy");
    const running = r && ACTIVE.includes(r.state);
    replace(body,
      r ? statusView(r, canDeploy ? actions(name, r, refresh, status) : null)
        : h("p", {}, "No rollout yet."),
      canDeploy && !running
        ? startForm(name, listed.versions, serving?.serving_version, refresh, status) : null);
    return running;
  };
  await refresh();
  // Not while the start form is being filled in.
  every(REFRESH_MS, alive, async () => {
    const form = body.querySelector("form");
    if (!form || !form.contains(document.activeElement)) await refresh();
  }, status);
}

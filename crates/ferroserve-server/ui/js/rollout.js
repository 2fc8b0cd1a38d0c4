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

/** The gates the start form sets beyond the p99 ratio's limit, with the server's defaults. */
const GATES = [
  { gate: "error_rate", label: "5xx rate rise", max: 0.01, step: "0.001", critical: true },
  { gate: "fallback_rate", label: "fallback rate rise", max: 0.01, step: "0.001", critical: false },
  { gate: "prediction_psi", label: "predicted-class PSI", max: 0.2, step: "0.01", critical: false },
];

/** The rollout settings of the start form's fields (`data`, a FormData). */
function settingsOf(data) {
  const number = (key) => Number(data.get(key));
  const gates = {
    p99_ratio: { max: number("max_p99_ratio"), slack_ms: number("p99_slack_ms"), critical: data.has("p99_ratio_critical") },
  };
  for (const { gate } of GATES) gates[gate] = { max: number(`${gate}_max`), critical: data.has(`${gate}_critical`) };
  const sticky = String(data.get("sticky_header") || "").trim();
  return {
    version: number("version"),
    steps: String(data.get("steps")).split(",").map((s) => Number(s.trim())).filter((n) => n),
    step_seconds: number("step_seconds"),
    step_min_requests: number("step_min_requests"),
    check_interval_ms: number("check_interval_ms"),
    failure_threshold: number("failure_threshold"),
    approve_final: data.has("approve_final"),
    ...(sticky ? { sticky_header: sticky } : {}),
    gates,
  };
}

/** The settings a start form holds behind "More settings": every other gate and rule, at the server's defaults. */
function moreSettings(field) {
  const check = (id, label, checked) => [h("label", { for: id }, label), h("input", { id, name: id, type: "checkbox", checked })];
  return h("details", { class: "more" },
    h("summary", {}, "More settings"),
    h("div", { class: "grid-form" },
      field("failure_threshold", "Failed checks in a row that roll back", { type: "number", min: 1, value: 2, required: true }),
      check("approve_final", "Wait for a promote before the last step", false),
      field("sticky_header", "Sticky header (one caller, one version)", { placeholder: "x-user-id" }),
      field("p99_slack_ms", "p99 differences ignored up to (ms)", { type: "number", min: 0, step: "0.5", value: 5, required: true }),
      check("p99_ratio_critical", "p99 ratio rolls back at once", false),
      GATES.flatMap(({ gate, label, max, step, critical }) => [
        field(`${gate}_max`, `Most ${label}`, { type: "number", min: 0, step, value: max, required: true }),
        check(`${gate}_critical`, `${label[0].toUpperCase()}${label.slice(1)} rolls back at once`, critical),
      ])));
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
      const body = settingsOf(new FormData(form));
      const ok = await confirmChange(`Roll out version ${body.version}?`, [
        `Version ${body.version} of ${name} takes ${body.steps.join(" %, then ")} % of the traffic ` +
        `that names no version, each step at least ${body.step_seconds} s and ${body.step_min_requests} canary requests.`,
        `Version ${servingVersion} keeps the rest; a failing gate rolls back to it.`,
        body.approve_final ? "It waits for a promote before the last step." : null,
      ].filter(Boolean), "Start rollout");
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
  moreSettings(field),
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

// Overview: every model with what it serves, its rollout or traffic split,
// its traffic of the last second (from the live stream), its breaker and
// drift, and the server's health.

import { call, seg, ApiError } from "./api.js";
import { h, replace, table } from "./dom.js";
import { followLive } from "./live.js";

const ACTIVE = ["progressing", "paused", "awaiting_approval"];

/** `request`'s answer, or null when the server answers 404. */
async function orNone(request) {
  try {
    return await request;
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return null;
    throw error;
  }
}

/** How requests that name no version are shared: a running rollout, else the serving config's A/B split and shadow. */
function trafficCell(name, rollout, config) {
  if (rollout && ACTIVE.includes(rollout.state)) {
    return h("a", { href: `#/models/${seg(name)}/rollout` },
      `rollout ${rollout.state.replaceAll("_", " ")}: v${rollout.canary_version} at ${rollout.weight} %`);
  }
  const traffic = config?.config?.traffic ?? {};
  const parts = [];
  const split = traffic.split ?? [];
  if (split.length) {
    const total = split.reduce((sum, arm) => sum + arm.weight, 0);
    parts.push(`A/B: ${split.map((arm) => `v${arm.version} ${Math.round((100 * arm.weight) / total)} %`).join(", ")}`);
  }
  if (traffic.shadow) parts.push(`shadow v${traffic.shadow.version} ${traffic.shadow.percent} %`);
  return parts.length ? h("span", { class: "traffic", dataset: { model: name } }, parts.join("; ")) : "—";
}

function driftCell(name, drift) {
  const versions = drift ? drift.versions : [];
  const drifted = versions.some((v) => v.latest && v.latest.dataset_drift);
  const watched = versions.some((v) => v.windows_closed > 0);
  return h("a", { href: `#/models/${seg(name)}/drift`, class: drifted ? "warn" : "" },
    drifted ? "drifted" : watched ? "ok" : "no window yet");
}

/** A cell the live stream fills: `field` of model `name`. */
function liveCell(name, field) {
  return h("span", { class: "live", dataset: { model: name, field } }, "—");
}

async function modelRow(model) {
  const base = `/api/v1/models/${seg(model.name)}`;
  const [serving, versions, details, rollout, drift, config] = await Promise.all([
    call(`${base}/serving`).catch(() => null),
    call(`${base}/versions`),
    call(base),
    orNone(call(`${base}/rollout`)),
    call(`${base}/drift`).catch(() => null),
    call(`${base}/serving-config`).catch(() => null),
  ]);
  const served = serving && serving.serving_version;
  const version = versions.versions.find((v) => String(v.version) === served);
  const aliases = Object.entries(details.aliases || {}).map(([alias, v]) => `${alias} → ${v}`);
  return [
    h("a", { href: `#/models/${seg(model.name)}` }, model.name),
    h("span", { class: "serving", dataset: { model: model.name } }, served ?? "nothing"),
    version ? version.stage : "",
    aliases.join(", "),
    trafficCell(model.name, rollout, config),
    liveCell(model.name, "rps"),
    liveCell(model.name, "p99"),
    liveCell(model.name, "errors"),
    liveCell(model.name, "breaker"),
    driftCell(model.name, drift),
    serving && serving.degraded ? h("span", { class: "warn" }, `degraded: ${serving.degraded}`) : "ok",
  ];
}

/** Sums each model's versions of one live tick into the overview's cells. */
function fillLive(main, tick) {
  const byModel = new Map();
  for (const v of tick.versions) {
    const m = byModel.get(v.model) || { rps: 0, errors: 0, p99: null, breaker: "closed" };
    m.rps += v.requests_per_s;
    m.errors += v.errors_per_s;
    if (v.p99_ms !== null && v.p99_ms !== undefined) m.p99 = Math.max(m.p99 ?? 0, v.p99_ms);
    if (v.breaker !== "closed") m.breaker = v.breaker;
    byModel.set(v.model, m);
  }
  for (const cell of main.querySelectorAll("span.live")) {
    const m = byModel.get(cell.dataset.model);
    const text = {
      rps: m ? m.rps.toFixed(1) : "0.0",
      p99: m && m.p99 !== null ? `${m.p99.toFixed(2)} ms` : "—",
      errors: m && m.rps > 0 ? `${((100 * m.errors) / m.rps).toFixed(1)} %` : "—",
      breaker: m ? m.breaker : "—",
    }[cell.dataset.field];
    cell.textContent = text;
    cell.classList.toggle("warn", cell.dataset.field === "breaker" && text !== "closed" && text !== "—");
  }
}

export async function overview(main, session, alive) {
  document.title = "Overview · ferroserve";
  const [listed, ready] = await Promise.all([
    call("/api/v1/models"),
    fetch("/readyz").then((r) => r.ok, () => false),
  ]);
  const rows = await Promise.all(listed.models.map(modelRow));
  const status = h("div", { "aria-live": "polite" });
  replace(main,
    h("h1", {}, "Overview"),
    h("p", { class: ready ? "ok" : "warn", id: "health" }, ready ? "Server ready" : "Server not ready"),
    status,
    rows.length
      ? table("Models (traffic: the last second on this server)",
        ["Model", "Serving version", "Stage", "Aliases", "Traffic", "Requests / s", "p99", "Error rate",
          "Breaker", "Drift", "State"], rows)
      : h("p", {}, "No models yet: register one with ferroserve models register."),
    session.may("deploy") ? null : h("p", { class: "muted" }, `Signed in as a ${session.who.role}: read only.`),
  );
  if (rows.length) followLive((tick) => fillLive(main, tick), alive, status);
}
